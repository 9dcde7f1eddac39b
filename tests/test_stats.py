import numpy as np
import pytest
from scipy import stats as sps

from overparam.stats import (
    bootstrap_ci,
    hedges_g,
    holm,
    mean_std,
    summarize,
    t_interval,
    tost,
    welch,
)


def test_welch_matches_scipy():
    g = np.random.default_rng(0)
    for _ in range(5):
        a, b = g.normal(0, 1, 5), g.normal(0.5, 2, 7)
        ours = welch(a, b)
        ref = sps.ttest_ind(a, b, equal_var=False)
        assert ours.t == pytest.approx(ref.statistic, rel=1e-12)
        assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
        assert ours.df == pytest.approx(ref.df, rel=1e-12)


def test_welch_constant_groups_have_no_test():
    assert welch([1, 1, 1], [1, 1, 1]).p is None
    assert welch([1, 1, 1], [2, 2, 2]).p is None
    assert not welch([1, 1, 1], [2, 2, 2]).significant


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


@pytest.mark.parametrize("n", [3, 5])
def test_table_intervals_cover_95_percent_of_normal_means(n):
    """The interval the tables show covers the true mean 93-97.5% of the time at the seed
    counts we use (a percentile bootstrap of 3 values covers about 75%)."""
    g = np.random.default_rng(n)
    reps, hits, boot_hits = 4000, 0, 0
    for _ in range(reps):
        x = g.normal(1.0, 2.0, n)
        s = summarize(x)
        hits += s.ci_low <= 1.0 <= s.ci_high
        lo, hi = bootstrap_ci(x, n_boot=200, seed=int(g.integers(1 << 30)))
        boot_hits += lo <= 1.0 <= hi
    assert 0.93 <= hits / reps <= 0.975
    assert boot_hits / reps < 0.90  # why the bootstrap is not the default
    assert t_interval([2.0, 4.0]) == pytest.approx(
        (3.0 - sps.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2),
         3.0 + sps.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2)))
    with pytest.raises(ValueError, match="bootstrap"):
        summarize([1.0, 2.0, 3.0], method="bootstrap")


def test_tost_matches_statsmodels_and_the_interval_identity():
    from statsmodels.stats.weightstats import ttost_ind

    g = np.random.default_rng(7)
    for _ in range(20):
        a, b = g.normal(0.62, 0.01, 3), g.normal(0.63, 0.02, 5)
        margin = float(g.uniform(0.005, 0.05))
        ours = tost(a, b, margin)
        p, lower, upper = ttost_ind(a, b, -margin, margin, usevar="unequal")
        assert ours.p == pytest.approx(p, rel=1e-9)
        assert ours.p_lower == pytest.approx(lower[1], rel=1e-9)
        assert ours.p_upper == pytest.approx(upper[1], rel=1e-9)
        # rejecting at 5% <=> the 90% Welch interval lies inside the margin
        assert (ours.p < 0.05) == (-margin < ours.ci[0] and ours.ci[1] < margin)
    assert tost([1, 1, 1], [1, 1, 1], 0.1).p is None
    with pytest.raises(ValueError):
        tost([1, 2], [1, 2], 0.0)


def test_holm_worked_example_and_statsmodels():
    from statsmodels.stats.multitest import multipletests

    # Holm (1979): sorted p 0.005, 0.01, 0.03, 0.04 over m = 4 tests -> 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    g = np.random.default_rng(0)
    for m in (1, 2, 7, 13):
        p = g.uniform(0, 0.2, m)
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())
