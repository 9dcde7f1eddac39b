"""The learning-rate study: its rank statistics against scipy and an exact permutation
enumeration, its verdicts as plain functions, and a tiny end-to-end run whose report rebuild
computes nothing."""

import itertools
import json
import sqlite3

import numpy as np
import pytest
from scipy.stats import spearmanr

from overparam.cli import main
from overparam.errors import ConfigError
from overparam.stats import spearman_permutation
from overparam.studies.base import apply_overrides
from overparam.studies.learning_rate import (
    PRESETS,
    LearningRate,
    stability_verdicts,
)
from overparam.studies.verdicts import finalize

TINY = ["n_train=300", "model=mlp_w16_d3", "batch_size=32", "lrs=0.2,0.4,0.8",
        "target_loss=2.1", "every=5", "max_steps=300", "hessian_samples=100", "trace_probes=4",
        "permutations=200", "seeds=2"]


def test_spearman_matches_scipy_and_an_exact_permutation_test():
    g = np.random.default_rng(0)
    x = [0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 0.8]  # ties, as with seeds x rates
    y = list(-np.array(x) + g.normal(0, 0.15, len(x)))
    rho, p, p_scipy = spearman_permutation(x, y, n_perm=20000, seed=1)
    ref = spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12)
    assert p_scipy == pytest.approx(ref.pvalue, rel=1e-12)
    # the exact permutation p-value: every one of the 7! orderings of y
    exact = np.mean([abs(spearmanr(x, [y[i] for i in perm]).statistic) >= abs(rho) - 1e-12
                     for perm in itertools.permutations(range(len(y)))])
    assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / 20000) + 1e-4


def test_stability_verdicts_as_plain_numbers():
    lam = {0.1: [10.0, 11.0], 0.2: [6.0, 7.0], 0.4: [4.0, 4.5]}
    acc = {0.1: [0.60, 0.61], 0.2: [0.66, 0.65], 0.4: [0.62, 0.63]}
    bound, edge = finalize(stability_verdicts([0.1, 0.2, 0.4], lam, acc, ()))
    assert bound.mark == "SUPPORTED"  # largest lambda_max eta / 2 = 0.9
    assert edge.mark == "SUPPORTED"  # best eta = 0.2 (interior), 6.5 * 0.1 = 0.65
    lam[0.4] = [5.5, 4.0]  # 5.5 * 0.2 = 1.1 > 1: the bound fails on one run
    assert finalize(stability_verdicts([0.1, 0.2, 0.4], lam, acc, ()))[0].mark == \
        "NOT SUPPORTED"
    acc[0.4] = [0.7, 0.7]  # the best rate is the largest tried: not bracketed
    assert finalize(stability_verdicts([0.1, 0.2, 0.4], lam, acc, ()))[1].mark == \
        "INCONCLUSIVE"


def test_config_errors():
    cfg = PRESETS["quick"]
    for bad in ("lrs=0.4,0.2,0.8", "lrs=0.1,0.2", "every=1", "target_loss=0"):
        with pytest.raises(ConfigError):
            apply_overrides(cfg, [bad]).check()
    assert [p.tag("lr") for p in LearningRate().plan(cfg)] == list(cfg.lrs)
    assert all(p.config.optim.momentum == 0 and p.config.interventions[0].target ==
               cfg.target_loss for p in LearningRate().plan(cfg))


def _counts(path):
    with sqlite3.connect(path) as c:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "probes", "computed", "series")}


def test_tiny_run_and_a_read_only_rebuild(tmp_path):
    argv = ["run", "learning_rate", "--preset", "quick", "--out", str(tmp_path)]
    assert main([*argv, *[x for item in TINY for x in ("--set", item)]]) == 0
    out = tmp_path / "learning_rate"
    verdicts = {v["claim_id"]: v for v in json.loads((out / "verdicts.json").read_text())}
    assert set(verdicts) == {"lr_lambda_max", "lr_trace", "lr_epsilon", "sharpness_test_error",
                             "stability_bound", "best_lr_near_edge"}
    assert all(v["p"] is not None for k, v in verdicts.items() if k.startswith("lr_"))
    report = (out / "report.md").read_text()
    assert {p.name for p in out.glob("*.png")} == {"sharpness_vs_lr.png",
                                                   "accuracy_and_stability_vs_lr.png"}
    before = _counts(tmp_path / "runs.sqlite")
    assert before["runs"] == 6 and before["probes"] == 18  # 3 probes x 6 runs
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert _counts(tmp_path / "runs.sqlite") == before
    assert (out / "report.md").read_text() == report
