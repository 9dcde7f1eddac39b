"""Lottery tickets as an intervention: a pruning mask derived from a parent run, enforced.

Iterative magnitude pruning with rewinding (Frankle & Carbin 2019, arXiv:1803.03635; Frankle et
al. 2020, arXiv:1912.05671) is a chain of ordinary runs: the dense run, then round r, a run whose
:class:`Mask` names round r-1 as its ``parent``. At start, per member (seed): the parent's final
weights (and the parent's own mask, stored beside them as the artifact ``mask``) are pruned to
``density`` by magnitude (:func:`overparam.sparsity.masks.magnitude_prune`, global or
layer-wise, counting surviving weights only); the member starts from the rewind point -- the
chain's initialization (``rewind_step = 0``: the run's own init stream, the same model and seed
as the dense root) or the root's snapshot after k steps (the root carries
:class:`overparam.train.interventions.Snapshot`) -- masked. During training the mask is enforced
by parameter: gradients of pruned weights are zeroed after backward, and after every step the
pruned weights and the optimizer's state for them (momentum, Adam's moments) are set to zero.

Controls are the same intervention with other settings: ``init="reinit"`` keeps the mask and
starts from a fresh initialization (the ``reinit`` stream); ``random=True`` draws a random mask
with the magnitude mask's number of weights per tensor (per member, from the seed's
``random_mask`` stream) and starts from the rewind point. The mask lands as the run's artifact
``mask``, so the next round (and a resumed chain) reads it instead of recomputing the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from overparam.config import Intervention, TrainConfig
from overparam.errors import ConfigError
from overparam.seeds import derive_seed
from overparam.sparsity.masks import Masks, density, magnitude_prune, ones_like, random_like
from overparam.train.interventions import Active, Run, Snapshot, Step

SCOPES = ("global", "layerwise")
INITS = ("rewind", "reinit")


@dataclass(frozen=True)
class Mask(Intervention):
    """Prune ``parent``'s trained weights to ``density`` and train under that mask."""

    kind: ClassVar[str] = "mask"
    NESTED: ClassVar[tuple[str, ...]] = ("parent",)
    parent: TrainConfig
    density: float
    scope: str = "global"
    random: bool = False
    init: str = "rewind"
    rewind_step: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.parent, TrainConfig):
            raise ConfigError("mask.parent", self.parent, "a TrainConfig")
        if not (isinstance(self.density, (int, float)) and 0.0 < self.density <= 1.0):
            raise ConfigError("mask.density", self.density, "a fraction in (0, 1]")
        if self.scope not in SCOPES:
            raise ConfigError("mask.scope", self.scope, " or ".join(SCOPES))
        if self.init not in INITS:
            raise ConfigError("mask.init", self.init, " or ".join(INITS))
        if not (isinstance(self.rewind_step, int) and self.rewind_step >= 0):
            raise ConfigError("mask.rewind_step", self.rewind_step, "a non-negative integer")

    def root(self) -> TrainConfig:
        """The chain's dense run (the first ancestor without a mask)."""
        cfg = self.parent
        while (m := mask_of(cfg)) is not None:
            cfg = m.parent
        return cfg

    def start(self, run: Run) -> Active:
        return _Mask(self, run)


def mask_of(cfg: TrainConfig) -> Mask | None:
    """The :class:`Mask` intervention of ``cfg``, if any."""
    return next((i for i in cfg.interventions if isinstance(i, Mask)), None)


class _Mask(Active):
    def __init__(self, cfg: Mask, run: Run):
        self.run = run
        ens = run.ensemble
        parent = ens.stack(run.parent_states(cfg.parent))
        names = list(ones_like(parent))
        old: Masks = (ens.stack(run.parent_states(cfg.parent, "mask"), names)
                      if mask_of(cfg.parent) is not None else ones_like(parent))
        masks = magnitude_prune(parent, old, cfg.density, cfg.scope)
        if cfg.random:
            masks = random_like(masks, [torch.Generator().manual_seed(
                derive_seed(s, "random_mask")) for s in run.seeds])
        self.masks = masks
        if cfg.init == "reinit":
            from overparam.train.loop import build_members

            fresh = build_members(run.cfg, [derive_seed(s, "reinit") % 2 ** 31 for s in run.seeds],
                                  run.data)
            ens.load_stacked(ens.stack([m.state_dict() for m in fresh]))
        elif cfg.rewind_step > 0:
            snap = Snapshot(step=cfg.rewind_step).artifact
            ens.load_stacked(ens.stack(run.parent_states(cfg.root(), snap)))
        # rewind_step 0: the members' own initialization is the chain's (same model and seeds)
        with torch.no_grad():
            for n, m in self.masks.items():
                ens.params[n].mul_(m)

    def post_backward(self, step: Step) -> None:
        with torch.no_grad():
            for n, m in self.masks.items():
                g = self.run.ensemble.params[n].grad
                if g is not None:
                    g.mul_(m)

    def post_step(self, step: Step) -> None:
        with torch.no_grad():
            for n, m in self.masks.items():
                p = self.run.ensemble.params[n]
                p.mul_(m)
                for state in step.optimizer.state_of(p):
                    state.mul_(m)

    def results(self) -> list[dict[str, Any]]:
        return [{"density_measured": d} for d in density(self.masks)]

    def artifacts(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        return {"mask": self.run.ensemble.unstack(self.masks)}
