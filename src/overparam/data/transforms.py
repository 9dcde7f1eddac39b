"""Seeded data transforms: training subset, label noise, random labels, standardization.

All randomness comes from ``numpy.random.Generator`` objects seeded from the data seed and the
transform's name (:func:`overparam.config.derive_seed`); nothing touches a global RNG.

Label noise (Zhang et al. 2017, arXiv:1611.03530; Nakkiran et al. 2020, arXiv:1912.02292) at
rate ``p`` picks exactly ``round(p * n)`` training samples and moves each label to a class drawn
uniformly among the *other* ``C - 1`` classes, so a noisy label is always wrong.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from overparam.errors import ConfigError
from overparam.seeds import derive_seed

if TYPE_CHECKING:
    from overparam.config import DataConfig
    from overparam.data.dataset import Dataset


def rng(seed: int, source: str) -> np.random.Generator:
    """A numpy Generator for one named source of randomness of data seed ``seed``."""
    return np.random.default_rng(derive_seed(seed, source))


def subset_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct indices of ``range(n_total)`` in a seeded random order."""
    if n > n_total:
        raise ConfigError("n_train", n, f"at most the training set size ({n_total})")
    return np.sort(rng(seed, "subset").permutation(n_total)[:n])


def noisy_labels(y: np.ndarray, rate: float, num_classes: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Labels with exactly ``round(rate * n)`` entries moved to a wrong class, and that mask."""
    g = rng(seed, "label_noise")
    n = len(y)
    k = int(round(rate * n))
    flip = np.zeros(n, dtype=bool)
    flip[g.permutation(n)[:k]] = True
    shift = g.integers(1, num_classes, size=n)
    out = np.where(flip, (y + shift) % num_classes, y)
    return out.astype(np.int64), flip


def random_labels(n: int, num_classes: int, seed: int) -> np.ndarray:
    """Labels drawn uniformly at random (Zhang et al. 2017)."""
    return rng(seed, "random_labels").integers(0, num_classes, size=n).astype(np.int64)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``x``: channel axis 1 for images ``[n, C, H, W]``, one channel
    for flat or 1-D inputs."""
    if x.dim() == 4:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
    else:
        mean = x.mean().reshape([1] * x.dim())
        std = x.std().reshape([1] * x.dim())
    return mean, std.clamp_min(1e-12)


def apply(ds: Dataset, cfg: DataConfig) -> Dataset:
    """Apply the transforms of ``cfg`` in order: subset, label noise / random labels, standardize."""
    info = dict(ds.info)
    x, y = ds.x_train, ds.y_train
    if cfg.n_train is not None:
        idx = subset_indices(len(y), cfg.n_train, cfg.seed)
        x, y = x[torch.as_tensor(idx)], y[torch.as_tensor(idx)]
        info["n_train"] = cfg.n_train
    if cfg.label_noise > 0 or cfg.random_labels:
        if ds.task != "classification":
            field = "label_noise" if cfg.label_noise > 0 else "random_labels"
            raise ConfigError(field, getattr(cfg, field),
                              f"only for classification data, not {ds.name}")
        info["clean_y_train"] = y.clone()
        if cfg.random_labels:
            y = torch.as_tensor(random_labels(len(y), ds.num_classes, cfg.seed))
        else:
            new, flip = noisy_labels(y.numpy(), cfg.label_noise, ds.num_classes, cfg.seed)
            y = torch.as_tensor(new)
            info["noisy_mask"] = torch.as_tensor(flip)
            info["n_noisy"] = int(flip.sum())
    x_test = ds.x_test
    if cfg.standardize:
        mean, std = channel_stats(x)
        x = (x - mean) / std
        x_test = (x_test - mean) / std
        info["standardize_mean"] = mean.flatten().tolist()
        info["standardize_std"] = std.flatten().tolist()
    return replace(ds, x_train=x.contiguous(), y_train=y, x_test=x_test.contiguous(), info=info)
