"""Study verdicts as plain functions of numbers: no store, no training."""

import pytest

from overparam.studies.double_descent import h4_verdict, min_norm_verdict, peak_verdict
from overparam.studies.lottery import ticket_beats_reinit, ticket_matches_dense
from overparam.studies.ntk_width import exponent_verdict, loglog_fit
from overparam.studies.optimizers import adam_comparable_verdict, batch_size_verdict
from overparam.studies.verdicts import Verdict, acc_arm, finalize

TRAINED = [1.0, 1.0, 1.0]


def decided(v):
    return finalize([v])[0]


def test_a_missed_training_target_makes_a_claim_inconclusive():
    strong = ([0.70, 0.71, 0.72], TRAINED)
    untrained = ([0.20, 0.25, 0.22], [0.30, 0.35, 0.31])
    v = decided(ticket_beats_reinit(strong, untrained, target=0.99))
    assert v.supported is None and "reinit at 10%" in v.reason and "69.0 pp short" in v.reason
    v = decided(ticket_beats_reinit(strong, ([0.60, 0.61, 0.62], TRAINED), target=0.99))
    assert v.supported is True and v.p_adj == v.p


def test_equivalence_is_shown_by_tost_not_by_a_large_p():
    dense = ([0.620, 0.625, 0.630], TRAINED)
    close = decided(ticket_matches_dense(([0.621, 0.624, 0.628], TRAINED), dense, 0.02, 0.99))
    assert close.supported is True and close.test.startswith("TOST")
    noisy = decided(ticket_matches_dense(([0.55, 0.70, 0.62], TRAINED), dense, 0.02, 0.99))
    assert noisy.supported is None and "straddles" in noisy.reason  # Welch p would be large
    far = decided(ticket_matches_dense(([0.50, 0.51, 0.52], TRAINED), dense, 0.02, 0.99))
    assert far.supported is False
    assert decided(adam_comparable_verdict(dense, dense, 32, 0.02, 0.99)).supported is True


def test_holm_adjusts_a_reports_claims_together():
    vs = [Verdict(f"c{i}", "", criteria=True, p=p, test="Welch")
          for i, p in enumerate([0.01, 0.04, 0.03, 0.005])]
    out = finalize(vs)
    assert [v.p_adj for v in out] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [v.supported for v in out] == [True, False, False, True]
    untested = finalize([Verdict("no test", "", criteria=False)])[0]
    assert untested.supported is False and untested.p_adj is None
    constant = finalize([Verdict("constant arms", "", criteria=True, p=None, test="Welch")])[0]
    assert constant.supported is None


def test_batch_size_claim_needs_every_arm_trained():
    arms = [(32, ([0.64, 0.65, 0.66], TRAINED)), (256, ([0.62, 0.63, 0.62], TRAINED)),
            (2048, ([0.60, 0.61, 0.60], [0.91, 0.92, 0.90]))]
    v = decided(batch_size_verdict(arms, 0.99))
    assert v.supported is None and "SGD batch 2048" in v.reason
    arms[-1] = (2048, ([0.60, 0.61, 0.60], TRAINED))
    assert decided(batch_size_verdict(arms, 0.99)).supported is True


def test_double_descent_peak_is_located_from_training_error():
    widths, xs = [8, 16, 32, 64, 128], [100, 200, 400, 800, 1600]
    tr = [[0.3] * 3, [0.1] * 3, [0.0] * 3, [0.0] * 3, [0.0] * 3]
    te = [[0.50, 0.51, 0.52], [0.55, 0.56, 0.54], [0.62, 0.63, 0.61], [0.56, 0.57, 0.55],
          [0.50, 0.49, 0.51]]
    peak = decided(peak_verdict("mlp", widths, xs, tr, te))
    assert peak.supported is True and "threshold w=32" in peak.statistic
    h4 = decided(h4_verdict("mlp", widths, tr, te))
    assert h4.supported is True
    # the highest test error elsewhere does not move the tested point
    te[0] = [0.70, 0.71, 0.72]
    assert "threshold w=32" in peak_verdict("mlp", widths, xs, tr, te).statistic
    never = decided(peak_verdict("mlp", widths, xs, [[0.2] * 3] * 5, te))
    assert never.supported is None


def test_exponent_band_and_min_norm():
    ws = [w for w in (32, 64, 128, 256, 512, 1024) for _ in range(3)]
    half = [w ** -0.5 * (1 + 0.03 * ((i * 7) % 5)) for i, w in enumerate(ws)]
    fit = loglog_fit(ws, half)
    assert fit.slope == pytest.approx(-0.5, abs=0.02) and fit.df == 4
    arms = (acc_arm("all", [1.0]),)
    assert decided(exponent_verdict("x", "x", [fit], 0.15, arms)).supported is True
    steep = loglog_fit(ws, [w ** -1.0 * (1 + 0.03 * ((i * 7) % 5)) for i, w in enumerate(ws)])
    exact = loglog_fit([32, 64, 128], [32 ** -0.5, 64 ** -0.5, 128 ** -0.5])
    assert exact.equivalence_p(-0.5, 0.15) == 0.0
    assert decided(exponent_verdict("x", "x", [steep], 0.15, arms)).supported is False
    ok = min_norm_verdict([50, 100, 200], 100, [1.0, 50.0, 1.5], [1.0, float("inf"), 1.55], 10)
    assert decided(ok).supported is True


def test_the_claims_table_difference_interval_is_welchs():
    from scipy import stats as sps

    from overparam.studies.verdicts import _diff_ci, welch_test

    a, b = [0.61, 0.64, 0.66], [0.58, 0.60, 0.585, 0.59]
    ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert _diff_ci(a, b) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert welch_test(a, b).ours == (f"{100 * (sum(a) / 3 - sum(b) / 4):+.3g} "
                                     f"[{100 * ref.low:+.3g}, {100 * ref.high:+.3g}] pp")
