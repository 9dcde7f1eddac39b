"""Iterative magnitude pruning with rewinding (Frankle & Carbin 2019, arXiv:1803.03635; Frankle
et al. 2020, arXiv:1912.05671) for K seeds at once, and its controls.

One IMP chain per member of an ensemble: train densely; then, round by round, prune the
smallest-magnitude surviving weights (:func:`overparam.sparsity.masks.magnitude_prune`), rewind
the survivors to their values at initialization (``rewind_step=0``) or at iteration k of the dense
run, and retrain with the mask enforced after every optimizer step (pruned weights and their
optimizer state -- momentum, Adam moments -- set to zero). Controls at a density: the same mask
with a fresh random initialization (``reinit``), and a random mask of the same per-layer density
from the rewound weights (``random``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from overparam.config import TrainConfig, derive_seed
from overparam.data.dataset import Dataset
from overparam.sparsity.masks import Masks, apply_
from overparam.train import Ensemble, HookContext, Hooks, SeedResult, train
from overparam.train.loop import build_members


class MaskEnforcer:
    """``post_step`` hook: pruned weights and their optimizer state back to exactly zero."""

    def __init__(self, ens: Ensemble, masks: Masks):
        self.masks = masks
        names = list(ens.params)
        self.index = {n: names.index(n) for n in masks}

    def __call__(self, ctx: HookContext) -> None:
        opt = ctx.optimizer
        with torch.no_grad():
            for n, m in self.masks.items():
                ctx.ensemble.params[n].mul_(m)
                i = self.index[n]
                for state in (opt.state, opt.state2):
                    if state:
                        state[i].mul_(m)


class Snapshot:
    """``post_step`` hook keeping a copy of the stacked parameters after step ``step``."""

    def __init__(self, step: int):
        self.step = step
        self.params: dict[str, torch.Tensor] | None = None

    def __call__(self, ctx: HookContext) -> None:
        if ctx.step + 1 == self.step:
            self.params = {n: p.detach().clone() for n, p in ctx.ensemble.params.items()}


def fresh_ensemble(cfg: TrainConfig, seeds: list[int], data: Dataset, device: str,
                   dtype: torch.dtype, source: str = "init") -> Ensemble:
    """An ensemble initialized from each seed's ``source`` stream (``init`` or ``reinit``)."""
    if source == "init":
        members = build_members(cfg, seeds, data)
    else:
        members = build_members(cfg, [derive_seed(s, source) % (2 ** 31) for s in seeds], data)
    return Ensemble([m.to(device=device, dtype=dtype) for m in members])


def train_dense(cfg: TrainConfig, seeds: list[int], data: Dataset, device: str = "cpu",
                dtype: torch.dtype = torch.float32, rewind_step: int = 0
                ) -> tuple[list[SeedResult], Ensemble, dict[str, torch.Tensor]]:
    """The dense run: results, the trained ensemble and the rewind point (stacked)."""
    ens = fresh_ensemble(cfg, seeds, data, device, dtype)
    init = {n: p.detach().clone() for n, p in ens.params.items()}
    hooks = Hooks()
    snap = None
    if rewind_step > 0:
        snap = Snapshot(rewind_step)
        hooks.post_step.append(snap)
    results = train(cfg, seeds, data=data, device=device, dtype=dtype, hooks=hooks,
                    ensemble=ens)
    rewind = init if snap is None else snap.params
    if rewind is None:
        raise ValueError(f"rewind_step={rewind_step} is beyond the run's "
                         f"{results[0].extra['steps']} steps")
    return results, ens, rewind


def train_masked(cfg: TrainConfig, seeds: list[int], data: Dataset, start: dict[str, torch.Tensor],
                 masks: Masks, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 ens: Ensemble | None = None,
                 extra: Callable[[Ensemble], None] | None = None
                 ) -> tuple[list[SeedResult], Ensemble]:
    """Train from ``start`` (stacked weights; masked first) with the masks enforced."""
    if ens is None:
        ens = fresh_ensemble(cfg, seeds, data, device, dtype)
    with torch.no_grad():
        for n, p in ens.params.items():
            p.copy_(start[n])
    apply_(ens.params, masks)
    if extra is not None:
        extra(ens)
    hooks = Hooks(post_step=[MaskEnforcer(ens, masks)])
    results = train(cfg, seeds, data=data, device=device, dtype=dtype, hooks=hooks, ensemble=ens)
    return results, ens
