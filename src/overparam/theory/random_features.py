"""Model-wise double descent of min-norm least squares on isotropic Gaussian features.

Data: ``x ~ N(0, I_D)``, ``y = x^T beta + sigma eps`` with ``||beta||^2 = 1`` spread evenly over the D
features. The model regresses ``y`` on the first ``p`` features with the minimum-norm least-squares
solution ``beta_hat = X_p^+ y`` (the limit of gradient descent from zero). Its expected test risk
``E (y - x_p^T beta_hat)^2`` has the closed form (Belkin, Hsu & Xu 2019, arXiv:1903.07571, Thm 1;
Hastie, Montanari, Rosset & Tibshirani 2019, arXiv:1903.08560, isotropic case), with
``b_in = ||beta_p||^2 = p / D`` and ``b_out = 1 - b_in``:

* ``p <= n - 2``: ``(b_out + sigma^2) (1 + p / (n - p - 1))``
* ``p >= n + 2``: ``b_in (1 - n / p) + (b_out + sigma^2) (1 + n / (p - n - 1))``
* infinite in between: the risk peaks at the interpolation threshold ``p = n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def closed_form_risk(p: int, n: int, d: int, sigma: float) -> float:
    """Expected test risk of min-norm least squares on the first ``p`` of ``d`` features."""
    b_in = p / d
    b_out = 1.0 - b_in
    if p <= n - 2:
        return (b_out + sigma ** 2) * (1.0 + p / (n - p - 1.0))
    if p >= n + 2:
        return b_in * (1.0 - n / p) + (b_out + sigma ** 2) * (1.0 + n / (p - n - 1.0))
    return float("inf")


@dataclass
class RandomFeaturesResult:
    ps: np.ndarray
    n: int
    d: int
    sigma: float
    risk_mean: np.ndarray
    risk_std: np.ndarray
    closed_form: np.ndarray

    def peak_p(self) -> int:
        return int(self.ps[int(np.nanargmax(self.risk_mean))])


def simulate(ps: Sequence[int], n: int = 100, d: int = 400, sigma: float = 0.5,
             trials: int = 200, n_test: int = 1000, seed: int = 0) -> RandomFeaturesResult:
    """Monte-Carlo test risk of min-norm least squares for each model size ``p``."""
    ps = np.asarray(ps, dtype=int)
    if ps.min() < 1 or ps.max() > d:
        raise ValueError(f"model sizes must lie in [1, d={d}]")
    g = np.random.default_rng(seed)
    beta = np.full(d, 1.0 / np.sqrt(d))
    risks = np.zeros((trials, len(ps)))
    for t in range(trials):
        x = g.standard_normal((n, d))
        y = x @ beta + sigma * g.standard_normal(n)
        xt = g.standard_normal((n_test, d))
        yt = xt @ beta + sigma * g.standard_normal(n_test)
        for j, p in enumerate(ps):
            coef = np.linalg.lstsq(x[:, :p], y, rcond=None)[0]  # min-norm solution
            risks[t, j] = np.mean((yt - xt[:, :p] @ coef) ** 2)
    closed = np.array([closed_form_risk(int(p), n, d, sigma) for p in ps])
    return RandomFeaturesResult(ps, n, d, sigma, risks.mean(0), risks.std(0, ddof=1), closed)
