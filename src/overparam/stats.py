"""Statistics of multi-seed results: mean and std, bootstrap CI, Welch's t-test, effect size.

* ``std`` is the sample standard deviation (ddof=1), as in mean +- std tables.
* ``bootstrap_ci``: percentile bootstrap (Efron & Tibshirani 1993) of the mean with ``n_boot``
  resamples (1,000 by default, the blueprint's protocol) from a seeded generator.
* ``welch``: two-sided Welch's unequal-variance t-test (Welch 1947): t = (m_a - m_b) / sqrt(s_a^2/n_a
  + s_b^2/n_b), Welch-Satterthwaite degrees of freedom, p from the t distribution (scipy).
* ``hedges_g``: standardized mean difference with pooled std and small-sample correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def fmt(self, scale: float = 1.0, digits: int = 2) -> str:
        """``mean ± std [lo, hi]`` with values multiplied by ``scale``."""
        return (f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f} "
                f"[{self.ci_low * scale:.{digits}f}, {self.ci_high * scale:.{digits}f}]")


@dataclass(frozen=True)
class WelchResult:
    t: float
    df: float
    p: float
    mean_diff: float
    effect_size: float

    @property
    def significant(self) -> bool:
        return self.p < 0.05


def _arr(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("no values")
    return a


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = _arr(values)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean."""
    a = _arr(values)
    if a.size == 1:
        return float(a[0]), float(a[0])
    g = np.random.default_rng(seed)
    idx = g.integers(0, a.size, size=(n_boot, a.size))
    means = a[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def summarize(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> Summary:
    a = _arr(values)
    m, s = mean_std(a)
    lo, hi = bootstrap_ci(a, n_boot=n_boot, seed=seed)
    return Summary(int(a.size), m, s, lo, hi)


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Hedges' g of ``a - b`` (pooled std, small-sample corrected); 0 when both are constant."""
    x, y = _arr(a), _arr(b)
    nx, ny = x.size, y.size
    if nx + ny <= 2:
        return float("nan")
    pooled = ((nx - 1) * x.var(ddof=1 if nx > 1 else 0) + (ny - 1) * y.var(ddof=1 if ny > 1 else 0)
              ) / (nx + ny - 2)
    diff = x.mean() - y.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    correction = 1.0 - 3.0 / (4.0 * (nx + ny) - 9.0)
    return float(diff / math.sqrt(pooled) * correction)


def welch(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Two-sided Welch's t-test of mean(a) != mean(b)."""
    from scipy import stats as sps

    x, y = _arr(a), _arr(b)
    if x.size < 2 or y.size < 2:
        raise ValueError("Welch's test needs at least two values per group")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    se2 = va + vb
    if se2 == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return WelchResult(t, float(x.size + y.size - 2), 1.0 if diff == 0 else 0.0, diff,
                           hedges_g(x, y))
    t = diff / math.sqrt(se2)
    df = se2 ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    p = float(2.0 * sps.t.sf(abs(t), df))
    return WelchResult(float(t), float(df), p, diff, hedges_g(x, y))
