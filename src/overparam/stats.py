"""Statistics of multi-seed results: intervals, Welch's test, equivalence, multiplicity.

* ``std`` is the sample standard deviation (ddof=1), as in mean +- std tables.
* ``t_interval``: the interval every table shows, ``mean +- t_{n-1, 0.975} s / sqrt(n)``
  (Student 1908). Exact for normal data at any n >= 2; a percentile bootstrap of 3 seeds covers
  the mean only about 75% of the time (tested by simulation: ``tests/test_stats.py``).
* ``bootstrap_ci``: percentile bootstrap (Efron & Tibshirani 1993) of the mean, seeded; offered
  for n >= 20, where its coverage is close to nominal.
* ``welch``: two-sided Welch's unequal-variance t-test (Welch 1947): t = (m_a - m_b) / sqrt(s_a^2/n_a
  + s_b^2/n_b), Welch-Satterthwaite degrees of freedom, p from the t distribution (scipy). When
  both groups are constant there is no test: ``p`` is None and the verdict is INCONCLUSIVE.
* ``tost``: equivalence of two means within a stated margin by two one-sided Welch tests
  (Schuirmann 1987): H0 ``|m_a - m_b| >= margin`` is rejected at level alpha iff the
  (1 - 2 alpha) Welch interval of the difference lies inside ``(-margin, margin)``.
* ``holm``: Holm's (1979) step-down adjustment of a family of p-values (strong FWER control).
* ``hedges_g``: standardized mean difference with pooled std and small-sample correction.
* ``spearman_permutation``: Spearman's rank correlation with an exact-in-the-limit permutation
  p-value (ties by average ranks), for the few-seed monotonicity claims.
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
    p: float | None  # None: both groups constant, no test
    mean_diff: float
    effect_size: float

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < 0.05


@dataclass(frozen=True)
class TostResult:
    """Two one-sided tests of ``|mean(a) - mean(b)| < margin``; ``p`` is the larger of the two
    one-sided p-values (None when both groups are constant); ``ci`` the (1 - 2 alpha) Welch
    interval of the difference."""

    margin: float
    mean_diff: float
    p: float | None
    p_lower: float | None
    p_upper: float | None
    ci: tuple[float, float]
    df: float


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


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN bounds for a single value)."""
    from scipy import stats as sps

    a = _arr(values)
    if a.size < 2:
        return float("nan"), float("nan")
    m, s = float(a.mean()), float(a.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2.0, a.size - 1)) * s / math.sqrt(a.size)
    return m - half, m + half


def summarize(values: Sequence[float], level: float = 0.95, method: str = "t",
              n_boot: int = 1000, seed: int = 0) -> Summary:
    """Mean, std and the ``level`` interval of the mean: Student t (default), or the percentile
    bootstrap (``method="bootstrap"``, only for n >= 20)."""
    a = _arr(values)
    m, s = mean_std(a)
    if method == "t":
        lo, hi = t_interval(a, level)
    elif method == "bootstrap":
        if a.size < 20:
            raise ValueError(f"a percentile bootstrap of {a.size} values under-covers: use the "
                             "t interval below n = 20")
        lo, hi = bootstrap_ci(a, n_boot=n_boot, level=level, seed=seed)
    else:
        raise ValueError(f"method={method!r}: t or bootstrap")
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
        return WelchResult(t, float(x.size + y.size - 2), None, diff, hedges_g(x, y))
    t = diff / math.sqrt(se2)
    df = _welch_df(va, vb, x.size, y.size)
    p = float(2.0 * sps.t.sf(abs(t), df))
    return WelchResult(float(t), float(df), p, diff, hedges_g(x, y))


def _welch_df(va: float, vb: float, na: int, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom of ``va + vb`` (variances of the two means)."""
    return (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))


def tost(a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05
         ) -> TostResult:
    """Equivalence of ``mean(a)`` and ``mean(b)`` within ``margin`` (two one-sided Welch tests).

    ``p_lower`` tests H0 ``diff <= -margin``, ``p_upper`` tests H0 ``diff >= margin``; the
    equivalence p-value is their maximum.
    """
    from scipy import stats as sps

    if not margin > 0:
        raise ValueError(f"margin={margin}: a positive number")
    x, y = _arr(a), _arr(b)
    if x.size < 2 or y.size < 2:
        raise ValueError("an equivalence test needs at least two values per group")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    if va + vb == 0:
        return TostResult(margin, diff, None, None, None, (diff, diff),
                          float(x.size + y.size - 2))
    se = math.sqrt(va + vb)
    df = _welch_df(va, vb, x.size, y.size)
    p_lower = float(sps.t.sf((diff + margin) / se, df))
    p_upper = float(sps.t.cdf((diff - margin) / se, df))
    half = float(sps.t.ppf(1.0 - alpha, df)) * se
    return TostResult(margin, diff, max(p_lower, p_upper), p_lower, p_upper,
                      (diff - half, diff + half), float(df))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: with p sorted ascending, the i-th (1-based)
    gets ``max_{j <= i} min(1, (m - j + 1) p_(j))``."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def spearman_permutation(x: Sequence[float], y: Sequence[float], n_perm: int = 10000,
                         seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho (Pearson correlation of average ranks), its two-sided permutation p-value
    ``(1 + #{|rho_perm| >= |rho|}) / (1 + n_perm)`` over random permutations of ``y``, and
    scipy's asymptotic p-value."""
    from scipy.stats import rankdata, spearmanr

    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0:
        return float("nan"), float("nan"), float("nan")
    rho = float(rx @ ry) / denom
    g = np.random.default_rng(seed)
    perms = np.argsort(g.random((n_perm, len(ry))), axis=1)
    null = (ry[perms] @ rx) / denom
    p = (1 + int(np.sum(np.abs(null) >= abs(rho) - 1e-12))) / (1 + n_perm)
    return rho, float(p), float(spearmanr(x, y).pvalue)
