"""Loss-landscape slices and linear mode connectivity.

* ``interpolate``: the loss (and error) along ``theta(a) = (1 - a) theta_A + a theta_B`` between
  two models (Goodfellow, Vinyals & Saxe 2015, arXiv:1412.6544), or along ``theta + a d`` for a
  direction ``d``. Floating-point buffers (BatchNorm running statistics) are interpolated too.
* ``slice_2d``: the loss on ``theta + a d1 + b d2`` over a grid, with ``d1, d2`` random
  filter-normalized directions, biases and BatchNorm parameters left unperturbed (Li et al. 2018,
  arXiv:1712.09913, ``ignore='biasbn'``).
* ``mode_connectivity_barrier``: the error barrier of Frankle et al. 2020 (arXiv:1912.05671),
  ``max_a E(theta(a)) - (E(theta_A) + E(theta_B)) / 2``, on a grid of ``a`` in [0, 1].

Models are evaluated in evaluation mode on cloned buffers; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from overparam.probes._functional import mode
from overparam.probes.perturb import filter_normalized_like

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: t.detach() for n, t in
            list(model.named_parameters()) + list(model.named_buffers())}


@torch.no_grad()
def evaluate_state(model: nn.Module, state: dict[str, torch.Tensor], loss_fn: LossFn,
                   inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 4096
                   ) -> tuple[float, float]:
    """Mean loss and classification error (NaN for non-integer targets) of ``model`` with
    ``state`` substituted, in evaluation mode."""
    loss, wrong, n = 0.0, 0.0, len(inputs)
    state = {k: v.clone() for k, v in state.items()}
    with mode(model, False):
        for i in range(0, n, batch_size):
            x, y = inputs[i:i + batch_size], targets[i:i + batch_size]
            out = functional_call(model, state, (x,))
            loss += float(loss_fn(out, y)) * len(x)
            if not y.is_floating_point():
                wrong += float((out.argmax(-1) != y).sum())
    err = wrong / n if not targets.is_floating_point() else float("nan")
    return loss / n, err


@dataclass
class LineResult:
    alphas: np.ndarray
    loss: np.ndarray
    error: np.ndarray


def interpolate(model_a: nn.Module, model_b: nn.Module | None, loss_fn: LossFn,
                inputs: torch.Tensor, targets: torch.Tensor,
                alphas: Sequence[float] | None = None,
                direction: dict[str, torch.Tensor] | None = None) -> LineResult:
    """Loss and error along the segment A -> B (or along ``theta_A + a * direction``)."""
    alphas = np.linspace(0.0, 1.0, 21) if alphas is None else np.asarray(alphas, dtype=float)
    sa = _state(model_a)
    if (model_b is None) == (direction is None):
        raise ValueError("give exactly one of model_b and direction")
    sb = _state(model_b) if model_b is not None else None
    losses, errors = [], []
    for a in alphas:
        state = {}
        for k, ta in sa.items():
            if sb is not None:
                tb = sb[k]
                state[k] = torch.lerp(ta, tb, float(a)) if ta.is_floating_point() else ta
            else:
                d = direction.get(k) if direction is not None else None
                state[k] = ta + float(a) * d if d is not None else ta
        loss, err = evaluate_state(model_a, state, loss_fn, inputs, targets)
        losses.append(loss)
        errors.append(err)
    return LineResult(alphas, np.array(losses), np.array(errors))


def random_direction(model: nn.Module, seed: int = 0, ignore_1d: bool = True
                     ) -> dict[str, torch.Tensor]:
    """A filter-normalized random direction over the model's parameters."""
    g = torch.Generator().manual_seed(seed)
    names = [n for n, _ in model.named_parameters()]
    theta = [p.detach() for _, p in model.named_parameters()]
    return dict(zip(names, filter_normalized_like(theta, g, ignore_1d)))


@dataclass
class SliceResult:
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray  # [len(alphas), len(betas)]


def slice_2d(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
             extent: float = 1.0, resolution: int = 21, seed: int = 0) -> SliceResult:
    """Loss on a 2-D grid ``theta + a d1 + b d2`` with filter-normalized ``d1, d2``."""
    d1 = random_direction(model, seed)
    d2 = random_direction(model, seed + 1)
    grid = np.linspace(-extent, extent, resolution)
    base = _state(model)
    loss = np.zeros((resolution, resolution))
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            state = {k: (t + float(a) * d1[k] + float(b) * d2[k]) if k in d1 else t
                     for k, t in base.items()}
            loss[i, j] = evaluate_state(model, state, loss_fn, inputs, targets)[0]
    return SliceResult(grid, grid.copy(), loss)


@dataclass
class BarrierResult:
    alphas: np.ndarray
    error: np.ndarray
    loss: np.ndarray
    barrier: float


def mode_connectivity_barrier(model_a: nn.Module, model_b: nn.Module, inputs: torch.Tensor,
                              targets: torch.Tensor, n_points: int = 11,
                              loss_fn: LossFn = F.cross_entropy) -> BarrierResult:
    """Frankle et al.'s error barrier between two trained copies (module docstring)."""
    line = interpolate(model_a, model_b, loss_fn, inputs, targets,
                       alphas=np.linspace(0.0, 1.0, n_points))
    barrier = float(line.error.max() - 0.5 * (line.error[0] + line.error[-1]))
    return BarrierResult(line.alphas, line.error, line.loss, barrier)


def plot_line(result: LineResult, label: str = "", ax=None):  # noqa: ANN001, ANN201
    """Loss (left axis) and error (right axis) along a line; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 3.5))
    ax = ax or fig.add_subplot(111)
    ax.plot(result.alphas, result.loss, "o-", color="C0", label=f"loss {label}".strip())
    ax.set_xlabel("interpolation coefficient α")
    ax.set_ylabel("loss", color="C0")
    if not np.all(np.isnan(result.error)):
        ax2 = ax.twinx()
        ax2.plot(result.alphas, 100 * result.error, "s--", color="C1")
        ax2.set_ylabel("error (%)", color="C1")
    fig.tight_layout()
    return fig


def plot_slice(result: SliceResult, log: bool = True):  # noqa: ANN201
    """Contour plot of a 2-D slice; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    z = np.log10(np.maximum(result.loss, 1e-12)) if log else result.loss
    cs = ax.contourf(result.alphas, result.betas, z.T, levels=30, cmap="viridis")
    ax.contour(result.alphas, result.betas, z.T, levels=15, colors="white", linewidths=0.4,
               linestyles="solid")
    fig.colorbar(cs, ax=ax, label="log10 loss" if log else "loss")
    ax.plot([0], [0], "r*", markersize=10)
    ax.set_xlabel("direction 1 (filter-normalized)")
    ax.set_ylabel("direction 2 (filter-normalized)")
    fig.tight_layout()
    return fig
