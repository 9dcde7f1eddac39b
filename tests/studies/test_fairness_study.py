"""The fairness study end to end through the CLI on a tiny problem (a rerun and `overparam
report` compute nothing), its settings' validation, and its verdict functions on numbers whose
answer is known."""

import json
import sqlite3

import numpy as np
import pytest

import overparam.studies as studies
from overparam.cli import main
from overparam.errors import ConfigError
from overparam.store import RunStore
from overparam.studies.base import StudyContext
from overparam.studies.fairness import (
    Fairness,
    equivalence_verdict,
    reduction_verdict,
    zero_gap_verdict,
)
from overparam.studies.verdicts import Arm, finalize

TINY = ["n=40", "n_val=20", "n_test=40", "d_core=8", "d_spurious=8", "widths=4,200", "seeds=2",
        "steps=40"]
CLAIMS = {"under_mindiff_reduces", "over_train_gap_zero", "over_mindiff_no_effect",
          "over_mindiff_flood_reduces", "over_mindiff_wd_reduces", "over_mindiff_es_reduces"}


def counts(path):
    with sqlite3.connect(path) as c:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "computed")}


def test_runs_caches_and_reports_read_only(tmp_path, capsys, monkeypatch):
    argv = ["run", "fairness", "--preset", "quick", "--out", str(tmp_path)]
    assert main(argv + [x for item in TINY for x in ("--set", item)]) == 0
    assert "### Verdicts" in capsys.readouterr().out
    study = tmp_path / "fairness"
    records = {r["claim_id"]: r for r in json.loads((study / "verdicts.json").read_text())}
    assert set(records) == CLAIMS
    assert sorted(p.name for p in study.glob("*.png")) == [
        "accuracy_vs_width.png", "test_gap_vs_width.png", "train_gap_vs_width.png",
        "trajectory.png"]
    before = counts(tmp_path / "runs.sqlite")
    assert before == {"runs": 0, "computed": 2 * 2}  # one result per width x seed
    report = (study / "report.md").read_text()
    assert "Test FNR gap" in report and "MinDiff + early stopping" in report

    # everything the analysis reads is stored: a read-only context raises Missing otherwise
    cfg = Fairness().config("quick", TINY)
    with RunStore(tmp_path / "runs.sqlite") as store:
        ctx = StudyContext(tmp_path, store, readonly=True)
        Fairness().run(cfg, ctx)
        unit = Fairness()._unit(cfg, ctx, 200, 1)
    assert set(unit["arms"]) == {"baseline", "mindiff", "mindiff_flood", "mindiff_wd",
                                 "mindiff_es", "flood", "wd", "es"}
    assert unit["finite"] and unit["steps"] == 40
    monkeypatch.setattr(studies, "STUDIES", {"fairness": Fairness})
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert counts(tmp_path / "runs.sqlite") == before
    assert (study / "report.md").read_text() == report


@pytest.mark.parametrize(("item", "field"), [
    ("widths=50,20", "widths"), ("widths=100,200", "widths"), ("agreement=1.0", "agreement"),
    ("seeds=1", "seeds"), ("lr=1.5", "lr"), ("flood=0", "flood"), ("margin=0", "margin"),
    ("over=0.5", "over"), ("n=x", "n")])
def test_bad_settings_name_the_field(item, field, tmp_path, capsys):
    with pytest.raises(ConfigError, match=rf"invalid {field}="):
        Fairness().config("quick", [item])
    assert main(["run", "fairness", "--out", str(tmp_path / "x"), "--set", item]) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_presets_validate():
    quick, paper = Fairness().config("quick"), Fairness().config("paper")
    assert quick.seeds >= 5 and paper.seeds > quick.seeds
    assert paper.n > quick.n and max(paper.widths) > max(quick.widths)
    for cfg in (quick, paper):
        regimes = [cfg.regime(w) for w in cfg.widths]
        assert regimes.count("under") >= 2 and regimes.count("over") >= 2


def test_reduction_verdict_tells_a_reduction_from_none():
    g = np.random.default_rng(0)
    base = {20: list(0.3 + 0.05 * g.standard_normal(8)), 50: list(0.4 + 0.05 *
                                                                  g.standard_normal(8))}
    lower = {w: [v - 0.05 + 0.005 * g.standard_normal() for v in vs] for w, vs in base.items()}
    same = {w: [v + 0.005 * g.standard_normal() for v in vs] for w, vs in base.items()}
    assert finalize([reduction_verdict("x", "c", lower, base, "b")])[0].mark == "SUPPORTED"
    assert finalize([reduction_verdict("x", "c", same, base, "b")])[0].mark == "NOT SUPPORTED"
    # one width reduced, the other not: the intersection-union test does not pass
    mixed = {20: lower[20], 50: same[50]}
    assert finalize([reduction_verdict("x", "c", mixed, base, "b")])[0].mark == "NOT SUPPORTED"
    missed = Arm("MinDiff", "stationary", False, "ratio 0.1")
    assert finalize([reduction_verdict("x", "c", lower, base, "b", arms=(missed,))]
                    )[0].mark == "INCONCLUSIVE"


def test_equivalence_verdict_needs_the_interval_inside_the_margin():
    g = np.random.default_rng(1)
    base = {1600: list(0.4 + 0.05 * g.standard_normal(10))}
    close = {1600: [v + 0.002 * g.standard_normal() for v in base[1600]]}
    far = {1600: [v - 0.08 + 0.002 * g.standard_normal() for v in base[1600]]}
    noisy = {1600: [v + 0.06 * g.standard_normal() for v in base[1600]][:3]}
    base3 = {1600: base[1600][:3]}
    assert finalize([equivalence_verdict("x", "c", close, base, 0.03, "b")])[0].mark == \
        "SUPPORTED"
    assert finalize([equivalence_verdict("x", "c", far, base, 0.03, "b")])[0].mark == \
        "NOT SUPPORTED"
    assert finalize([equivalence_verdict("x", "c", noisy, base3, 0.03, "b")])[0].mark == \
        "INCONCLUSIVE"


def test_zero_gap_verdict_is_an_exact_check():
    fit = Arm("baseline", "train acc 100%", True, "100%")
    zero = {"baseline": {1600: [0.0, 0.0]}, "mindiff": {1600: [0.0, 0.0]}}
    test = {1600: [0.4, 0.5]}
    assert finalize([zero_gap_verdict(zero, test, (fit,))])[0].mark == "SUPPORTED"
    one = {"baseline": {1600: [0.0, 1 / 26]}, "mindiff": {1600: [0.0, 0.0]}}
    assert finalize([zero_gap_verdict(one, test, (fit,))])[0].mark == "NOT SUPPORTED"
