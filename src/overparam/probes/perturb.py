"""Sensitivity of the training loss to weight perturbations (flatness).

* ``perturbation_sensitivity``: the blueprint's analysis (section IV-E): ``theta + eps`` with
  ``eps ~ N(0, sigma^2 I)`` at seven magnitudes (0.0005 to 0.05), five samples each, reporting the
  relative increase ``(L(theta + eps) - L(theta)) / L(theta)`` of the loss (mean and sample std).
  With ``filter_normalized=True`` the noise is ``sigma * d`` with ``d`` a filter-normalized Gaussian
  direction (Li et al. 2018, arXiv:1712.09913), which removes the scale dependence that Dinh et al.
  2017 (arXiv:1703.04933) point out.
* ``epsilon_sharpness``: Keskar et al. 2017 (arXiv:1609.04836), full-space version:
  ``100 * (max_{|y_i| <= eps (|theta_i| + 1)} L(theta + y) - L(theta)) / (1 + L(theta))``, the
  maximum found by L-BFGS-B within the box (10 iterations by default, as in the paper).

The loss is evaluated in evaluation mode by default on cloned buffers; the model is not changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from overparam.probes._functional import FunctionalModel, ParamSelector, batches, flatten, unflatten

DEFAULT_SIGMAS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PerturbationResult:
    sigmas: list[float]
    base_loss: float
    mean: list[float]
    std: list[float]
    samples: list[list[float]]
    filter_normalized: bool

    def rows(self) -> list[dict[str, float]]:
        return [{"sigma": s, "rel_increase_mean": m, "rel_increase_std": d}
                for s, m, d in zip(self.sigmas, self.mean, self.std)]


def loss_of(f: FunctionalModel, theta: Sequence[torch.Tensor], loss_fn: LossFn,
            inputs: torch.Tensor, targets: torch.Tensor, batch_size: int | None = None) -> float:
    """Mean loss over the whole set (mini-batch sweep weighted by batch size)."""
    total = 0.0
    with torch.no_grad():
        for x, y, w in batches(inputs, targets, batch_size):
            total += w * float(loss_fn(f(theta, x), y))
    return total


def filter_normalized_like(theta: Sequence[torch.Tensor], g: torch.Generator,
                           ignore_1d: bool = True) -> list[torch.Tensor]:
    """A Gaussian direction with each filter rescaled to the norm of the same filter of ``theta``.

    A filter is a slice along the first axis (a convolution's output channel, a linear layer's
    output unit). One-dimensional tensors (biases, BatchNorm) get a zero direction when
    ``ignore_1d`` (Li et al.'s ``ignore='biasbn'``), otherwise their own norm.
    """
    out = []
    for t in theta:
        d = torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)
        if t.dim() <= 1:
            if ignore_1d:
                d.zero_()
            else:
                d.mul_(t.norm() / d.norm().clamp_min(1e-30))
        else:
            dn = d.flatten(1).norm(dim=1).clamp_min(1e-30)
            tn = t.flatten(1).norm(dim=1)
            d.mul_((tn / dn).view(-1, *([1] * (t.dim() - 1))))
        out.append(d)
    return out


def perturbation_sensitivity(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                             targets: torch.Tensor, sigmas: Sequence[float] = DEFAULT_SIGMAS,
                             n_samples: int = 5, seed: int = 0, filter_normalized: bool = False,
                             params: ParamSelector = None, batch_size: int | None = None,
                             train: bool = False) -> PerturbationResult:
    """Relative loss increase under random weight noise at each ``sigma`` (module docstring)."""
    f = FunctionalModel(model, params, train=train)
    base = loss_of(f, f.theta, loss_fn, inputs, targets, batch_size)
    g = torch.Generator().manual_seed(seed)
    means, stds, samples = [], [], []
    for sigma in sigmas:
        rel = []
        for _ in range(n_samples):
            if filter_normalized:
                noise = filter_normalized_like(f.theta, g)
            else:
                noise = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(t)
                         for t in f.theta]
            theta = [t + sigma * e for t, e in zip(f.theta, noise)]
            rel.append((loss_of(f, theta, loss_fn, inputs, targets, batch_size) - base) / base)
        arr = np.array(rel)
        means.append(float(arr.mean()))
        stds.append(float(arr.std(ddof=1)) if len(arr) > 1 else 0.0)
        samples.append(rel)
    return PerturbationResult(list(sigmas), base, means, stds, samples, filter_normalized)


def epsilon_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                      targets: torch.Tensor, epsilon: float = 1e-3, max_iter: int = 10,
                      params: ParamSelector = None, batch_size: int | None = None,
                      train: bool = False, seed: int = 0) -> float:
    """Keskar et al.'s epsilon-sharpness (in percent) by L-BFGS-B in the box ``C_epsilon``."""
    from scipy.optimize import minimize

    f = FunctionalModel(model, params, train=train)
    theta0 = flatten(f.theta).detach()
    base = loss_of(f, f.theta, loss_fn, inputs, targets, batch_size)
    bound = (epsilon * (theta0.abs() + 1.0)).double().cpu().numpy()

    def neg_loss_and_grad(y: np.ndarray) -> tuple[float, np.ndarray]:
        yt = torch.as_tensor(y, dtype=theta0.dtype, device=theta0.device)
        theta = [t.requires_grad_(True) for t in
                 [p.detach().clone() for p in unflatten(theta0 + yt, f.theta)]]
        total = torch.zeros((), dtype=torch.float64, device=theta0.device)
        with torch.enable_grad():
            for x, t, w in batches(inputs, targets, batch_size):
                total = total + w * loss_fn(f(theta, x), t).double()
            grads = torch.autograd.grad(total, theta)
        return -float(total.detach()), -flatten(grads).double().cpu().numpy()

    rng = np.random.default_rng(seed)
    y0 = rng.uniform(-1, 1, size=bound.shape) * bound * 1e-3
    res = minimize(neg_loss_and_grad, y0, jac=True, method="L-BFGS-B",
                   bounds=list(zip(-bound, bound)), options={"maxiter": max_iter})
    worst = max(-float(res.fun), base)
    return 100.0 * (worst - base) / (1.0 + base)
