"""The training settings every study shares, declared once.

A study's config subclasses :class:`Training` and adds its own fields; the fields stay flat, so
``--set epochs=5`` or ``--set lr_scaling=none`` reach them the same way in every study. The
learning-rate scaling rule is explicit: ``lr`` is the rate at ``base_batch`` and ``lr_scaling``
(``linear``, ``sqrt`` or ``none``) says how a run at another batch size gets its rate (Goyal et
al. 2017, arXiv:1706.02677, for linear; Krizhevsky 2014, arXiv:1404.5997, for sqrt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overparam.config import LR_SCALINGS, DataConfig, ModelConfig, OptimConfig, TrainConfig
from overparam.errors import ConfigError


def described(default: Any, text: str) -> Any:
    """A field with its meaning, shown by ``overparam show STUDY``."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Training:
    """The shared settings; each field's ``help`` is what ``overparam show`` prints for it."""

    data: str = described("mnist1d", "data set (see `overparam list`)")
    n_train: int = described(0, "training examples, a seeded subset; 0: the whole training set")
    epochs: int = described(20, "passes over the training set per run")
    batch_size: int = described(128, "mini-batch size")
    lr: float = described(0.01, "learning rate at batch size base_batch")
    lr_scaling: str = described("linear", "how the LR follows the batch size: linear, sqrt or none")
    base_batch: int = described(128, "the batch size at which lr is given")
    momentum: float = described(0.9, "heavy-ball momentum, in [0, 1)")
    optimizer: str = described("sgd", "sgd, adam or gd (full batch)")
    schedule: str = described("cosine", "learning-rate schedule: cosine (annealed to 0) or constant")
    seeds: int = described(3, "replicates per configuration, seeds 0..seeds-1 (a count; "
                          "`overparam train --seeds` takes ids)")

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid shared setting."""
        from overparam.data.registry import DATASETS

        if self.data not in DATASETS:
            raise ConfigError("data", self.data, "one of " + ", ".join(DATASETS))
        for name in ("epochs", "batch_size", "base_batch"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ConfigError(name, v, "a positive integer")
        if not (isinstance(self.n_train, int) and self.n_train >= 0):
            raise ConfigError("n_train", self.n_train, "0 (the whole training set) or a positive "
                              "integer")
        if not (isinstance(self.seeds, int) and self.seeds >= 2):
            raise ConfigError("seeds", self.seeds, "an integer >= 2: intervals and tests need at "
                              "least two seeds per configuration")
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError("lr_scaling", self.lr_scaling, "one of " + ", ".join(LR_SCALINGS))
        self.optim_config()  # optimizer, schedule, lr > 0, momentum in [0, 1)

    @property
    def seed_ids(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    def data_config(self, **changes: Any) -> DataConfig:
        """The data set of this study (``changes`` override, e.g. ``label_noise``)."""
        return DataConfig(**{"name": self.data, "n_train": self.n_train or None, **changes})

    def optim_config(self, **changes: Any) -> OptimConfig:
        """This study's optimizer, LR, momentum, scaling rule and schedule (``changes``
        override)."""
        return OptimConfig(**{"name": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                              "schedule": self.schedule,
                              "lr_scaling": self.lr_scaling, "base_batch_size": self.base_batch,
                              **changes})

    def train_config(self, model: str | ModelConfig, **changes: Any) -> TrainConfig:
        """One training configuration of ``model`` (a name or a ModelConfig) with these
        settings (``changes`` override ``data``, ``optim``, ``epochs``, ``batch_size`` ...)."""
        if isinstance(model, str):
            model = ModelConfig(name=model)
        fields = {"data": self.data_config(), "model": model,
                  "optim": self.optim_config(), "epochs": self.epochs,
                  "batch_size": self.batch_size, **changes}
        return TrainConfig(**fields)
