"""The sparse_training study end to end through the CLI (tiny settings), its read-only report,
its settings' validation and its plain-number statistics against scipy."""

import json
import math
import sqlite3

import numpy as np
import pytest
from scipy import stats as sps

from overparam.cli import main
from overparam.config import run_id
from overparam.errors import ConfigError
from overparam.store import RunStore
from overparam.studies.sparse_training import (
    ArmResult,
    SparseTraining,
    monotone_rs,
    one_sided_welch,
    spearman_ci,
)

TINY = ["model=mlp_w16_d3", "steps=24", "seeds=2", "n_train=200", "densities=0.1,0.3",
        "ladder_density=0.1", "delta_t=4", "ladder=1,4,12", "permutations=200"]


def counts(path):
    with sqlite3.connect(path) as c:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "probes", "computed", "series")}


def test_study_runs_and_reports_read_only(tmp_path, capsys):
    argv = ["run", "sparse_training", "--out", str(tmp_path)]
    for item in TINY:
        argv += ["--set", item]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "### Verdicts" in first
    study = SparseTraining()
    plan = study.plan(study.config("quick", TINY))
    assert len(plan) == 1 + 3 * 2 + 2  # dense, 3 methods x 2 densities, 2 more ladder steps
    with RunStore(tmp_path / "runs.sqlite") as s:
        for p in plan:
            for seed in p.seeds:
                got = s.series(run_id(p.config, seed))
                if p.tag("method") == "dense":
                    assert "itop_rate" not in got
                    continue
                steps, values = got["itop_rate"]
                assert steps[0] == 0 and steps[-1] == 24 and np.all(np.diff(values) >= 0)
                if p.tag("method") != "static":  # updates after 4, 8, ..., < 18 = 0.75 x 24
                    dt = p.tag("delta_t")
                    assert list(steps[1:-1]) == list(range(dt, 18, dt))
    verdicts = json.loads((tmp_path / "sparse_training" / "verdicts.json").read_text())
    assert [v["claim_id"] for v in verdicts] == [
        "itop_rate_monotone", "set_beats_static", "rigl_beats_static", "set_matches_dense",
        "rigl_matches_dense", "accuracy_rises_with_itop_rate", "delta_t_too_small",
        "delta_t_too_large"]
    assert verdicts[0]["verdict"] == "SUPPORTED"
    pngs = sorted(p.name for p in (tmp_path / "sparse_training").glob("*.png"))
    assert pngs == ["accuracy_vs_density.png", "accuracy_vs_itop_rate.png",
                    "itop_rate_vs_step.png"]
    report = (tmp_path / "sparse_training" / "report.md").read_text()
    before = counts(tmp_path / "runs.sqlite")
    assert main(["report", "--out", str(tmp_path)]) == 0  # read-only rebuild
    assert counts(tmp_path / "runs.sqlite") == before
    assert (tmp_path / "sparse_training" / "report.md").read_text() == report


@pytest.mark.parametrize("item, field", [
    ("ladder=1,12", "ladder"), ("ladder_method=static", "ladder_method"),
    ("ladder_density=0.5", "ladder_density"), ("densities=0.1,1.5", "densities"),
    ("methods=set,snip", "methods"), ("distribution=er", "distribution"),
    ("prune_fraction=1.5", "dynamic_sparse.prune_fraction"),
    ("end_fraction=0", "dynamic_sparse.end_fraction"), ("sparse_target_acc=2", "sparse_target"),
])
def test_bad_settings_name_their_field(item, field):
    with pytest.raises(ConfigError, match=field):
        SparseTraining().config("quick", [*TINY, item])


def test_paper_preset_is_the_itop_cifar_protocol_scaled():
    cfg = SparseTraining().config("paper")
    plan = SparseTraining().plan(cfg)
    assert cfg.data == "cifar10" and cfg.model == "cnn_c64" and cfg.seeds >= 3
    assert cfg.delta_t == 1500 and cfg.steps == 250 * 391  # 250 epochs of batch 128
    assert all(p.config.optim.name == "sgd" and p.config.optim.lr == 0.1 for p in plan)
    assert {p.tag("density") for p in plan} == {1.0, 0.05, 0.1, 0.2}


def test_statistics_against_scipy_and_closed_forms():
    a, b = [0.71, 0.69, 0.74], [0.62, 0.66, 0.61]
    p, diff = one_sided_welch(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert p == pytest.approx(ref.pvalue, rel=1e-10) and diff == pytest.approx(np.mean(a) -
                                                                               np.mean(b))
    p_rev, _ = one_sided_welch(b, a)
    assert p_rev == pytest.approx(1 - ref.pvalue, rel=1e-10)
    # Fisher-z interval: tanh(atanh(rho) +- 1.96 sqrt(1.06 / (n - 3)))
    lo, hi = spearman_ci(0.5, 12)
    half = sps.norm.ppf(0.975) * math.sqrt(1.06 / 9)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(0.5) - half),
                                      math.tanh(math.atanh(0.5) + half)), rel=1e-12)


def test_monotone_rs_catches_a_decrease():
    def arm(values):
        return ArmResult("x", [0.5], [0.9], [values[-1]], [values[0]], [2], [
            (list(range(len(values))), values)], [0.0])

    assert monotone_rs([arm([0.1, 0.2, 0.2, 0.3])]).criteria is True
    assert monotone_rs([arm([0.1, 0.3, 0.2, 0.3])]).criteria is False
    assert monotone_rs([arm([0.1, 0.5, 1.2])]).criteria is False
