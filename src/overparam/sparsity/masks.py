"""Binary masks over an ensemble's stacked weights and magnitude pruning.

Masks are tensors shaped like the stacked parameters ``[K, ...]`` (one mask per member) and
hold 0/1 in the parameter's dtype; they are layout-agnostic, so they apply to the ensemble's own
storage. Only weights of fully connected and convolutional layers (tensors of two or more
dimensions per member) are pruned; biases and normalization parameters stay dense, as in Frankle
& Carbin 2019 (arXiv:1803.03635).

Magnitude pruning keeps, per member, exactly ``round(density * n)`` weights of largest magnitude
among the prunable ones: over all prunable tensors together (``global``) or tensor by tensor
(``layerwise``), counting only the surviving weights (pruned ones never come back). Ties break by
position (``torch.topk`` on a stable order), so the planned density is met exactly.
"""

from __future__ import annotations

import math

import torch

Masks = dict[str, torch.Tensor]


def prunable(params: dict[str, torch.Tensor]) -> list[str]:
    """Names of the stacked parameters that are weights (>= 2 dims per member)."""
    return [n for n, p in params.items() if p.dim() >= 3]


def ones_like(params: dict[str, torch.Tensor]) -> Masks:
    return {n: torch.ones_like(params[n]) for n in prunable(params)}


def density(masks: Masks) -> list[float]:
    """Fraction of prunable weights kept, per member."""
    kept = sum(m.flatten(1).double().sum(1) for m in masks.values())
    total = sum(m[0].numel() for m in masks.values())
    return (kept / total).tolist()


def _keep_top(scores: torch.Tensor, alive: torch.Tensor, keep: int) -> torch.Tensor:
    """0/1 mask keeping the ``keep`` largest ``scores`` among ``alive`` entries (flat)."""
    s = torch.where(alive > 0, scores, torch.full_like(scores, -1.0))
    out = torch.zeros_like(scores)
    if keep > 0:
        out[torch.topk(s, keep, sorted=False).indices] = 1.0
    return out


def magnitude_prune(params: dict[str, torch.Tensor], masks: Masks, target: float,
                    scope: str = "global") -> Masks:
    """New masks with density ``target`` (of all prunable weights) by weight magnitude."""
    if scope not in ("global", "layerwise"):
        raise ValueError(f"scope={scope!r}: global or layerwise")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target density {target}: in (0, 1]")
    names = list(masks)
    k_members = next(iter(masks.values())).shape[0]
    new = {n: torch.zeros_like(masks[n]) for n in names}
    for k in range(k_members):
        if scope == "global":
            scores = torch.cat([params[n][k].detach().abs().flatten() for n in names])
            alive = torch.cat([masks[n][k].flatten() for n in names])
            keep = int(round(target * scores.numel()))
            flat = _keep_top(scores, alive, min(keep, int(alive.sum())))
            i = 0
            for n in names:
                size = masks[n][k].numel()
                new[n][k] = flat[i:i + size].view_as(masks[n][k])
                i += size
        else:
            for n in names:
                scores = params[n][k].detach().abs().flatten()
                alive = masks[n][k].flatten()
                keep = int(round(target * scores.numel()))
                new[n][k] = _keep_top(scores, alive, min(keep, int(alive.sum()))).view_as(
                    masks[n][k])
    return new


def random_like(masks: Masks, generators: list[torch.Generator]) -> Masks:
    """Random masks with the same number of kept weights per tensor and member; member k's
    positions are drawn from ``generators[k]`` (tensors in the order of ``masks``)."""
    out = {n: torch.zeros_like(m) for n, m in masks.items()}
    for k, g in enumerate(generators):
        for n, m in masks.items():
            keep = int(m[k].sum())
            idx = torch.randperm(m[k].numel(), generator=g)[:keep].to(m.device)
            out[n][k].view(-1)[idx] = 1.0
    return out


def schedule(targets: list[float], rate: float) -> list[float]:
    """Densities of successive pruning rounds landing exactly on every target (descending).

    Between two levels the fewest rounds that prune at most ``rate`` of the survivors each are
    used, with equal geometric steps (``m = ceil(log(t / d) / log(1 - rate))`` rounds of factor
    ``(t / d) ** (1 / m)``); ``rate=0`` prunes in one shot to each level.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"per-round rate {rate}: in [0, 1)")
    out, d = [], 1.0
    for t in sorted(targets, reverse=True):
        if not 0.0 < t < d:
            raise ValueError(f"target densities must be distinct and in (0, 1): {targets}")
        m = 1 if rate == 0 else max(1, math.ceil(math.log(t / d) / math.log(1 - rate) - 1e-9))
        step = (t / d) ** (1.0 / m)
        out += [d * step ** i for i in range(1, m)] + [t]
        d = t
    return out


def apply_(params: dict[str, torch.Tensor], masks: Masks) -> None:
    """Zero the pruned weights in place."""
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)


