import numpy as np
import pytest
from scipy import stats as sps

from overparam.stats import bootstrap_ci, hedges_g, mean_std, summarize, welch


def test_welch_matches_scipy():
    g = np.random.default_rng(0)
    for _ in range(5):
        a, b = g.normal(0, 1, 5), g.normal(0.5, 2, 7)
        ours = welch(a, b)
        ref = sps.ttest_ind(a, b, equal_var=False)
        assert ours.t == pytest.approx(ref.statistic, rel=1e-12)
        assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
        assert ours.df == pytest.approx(ref.df, rel=1e-12)


def test_welch_constant_groups():
    assert welch([1, 1, 1], [1, 1, 1]).p == 1.0
    assert welch([1, 1, 1], [2, 2, 2]).p == 0.0


def test_bootstrap_matches_direct_resampling_and_scipy():
    x = np.array([0.81, 0.84, 0.79, 0.86, 0.83])
    lo, hi = bootstrap_ci(x, n_boot=1000, seed=3)
    g = np.random.default_rng(3)
    means = x[g.integers(0, 5, size=(1000, 5))].mean(1)
    assert lo == np.quantile(means, 0.025) and hi == np.quantile(means, 0.975)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="percentile",
                        random_state=np.random.default_rng(1)).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.006) and hi == pytest.approx(ref.high, abs=0.006)
    assert lo <= x.mean() <= hi
    assert bootstrap_ci(x, seed=3) == (lo, hi)


def test_summary_and_effect_size():
    m, s = mean_std([1.0, 2.0, 3.0])
    assert (m, s) == (2.0, 1.0)
    summ = summarize([1.0, 2.0, 3.0])
    assert summ.n == 3 and "±" in summ.fmt()
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]
    pooled = np.sqrt((3 * np.var(a, ddof=1) + 3 * np.var(b, ddof=1)) / 6)
    assert hedges_g(a, b) == pytest.approx(-1 / pooled * (1 - 3 / (4 * 8 - 9)))
