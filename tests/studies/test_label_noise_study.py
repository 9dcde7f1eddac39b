"""label_noise: its statistics against sklearn / scipy / by hand, its settings and paper plan,
and a tiny end-to-end run through the CLI (run, rerun from the store, read-only report)."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from overparam.cli import main
from overparam.errors import ConfigError
from overparam.store import RunStore
from overparam.studies.label_noise import (
    LabelNoise,
    auroc,
    error_ratio_test,
    peak_decay,
    precision_recall,
)

TINY = ["data=digits", "n_train=90", "batch_size=30", "epochs=3", "seeds=2", "model=mlp_w8_d2",
        "noise_levels=0.3", "toy_n=24", "toy_d=2", "toy_trials=2", "toy_steps=200",
        "toy_fractions=0.1,0.2"]


def test_auroc_against_sklearn_with_ties():
    g = np.random.default_rng(0)
    labels = g.random(300) < 0.3
    scores = np.round(g.normal(labels * 0.8, 1.0), 1)  # rounding makes ties
    assert len(np.unique(scores)) < 300
    assert math.isclose(auroc(scores, labels), roc_auc_score(labels, scores), rel_tol=1e-12)
    assert auroc([0.0, 0.0, 1.0], [False, True, True]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        auroc([0.1, 0.2], [True, True])


def test_precision_recall_against_sklearn():
    g = np.random.default_rng(1)
    labels = g.random(200) < 0.4
    scores = g.normal(labels.astype(float), 1.0)
    p, r = precision_recall(scores, labels, 0.5)
    assert math.isclose(p, precision_score(labels, scores > 0.5), rel_tol=1e-12)
    assert math.isclose(r, recall_score(labels, scores > 0.5), rel_tol=1e-12)
    assert precision_recall([0.0, 0.1], [True, False], 0.5) == (1.0, 0.0)


def test_peak_decay_skips_unevaluated_epochs():
    hist = [{"epoch": 1, "test_acc": 0.3}, {"epoch": 2}, {"epoch": 3, "test_acc": 0.6},
            {"epoch": 4, "test_acc": 0.5}, {"epoch": 5, "test_acc": 0.45}]
    peak, epoch, decay = peak_decay(hist)
    assert (peak, epoch) == (0.6, 3) and decay == pytest.approx(0.15)


def test_error_ratio_test_against_scipy():
    ls = [[1.0, 1.2, 0.9, 1.1], [2.0, 1.5, 1.7, 1.9]]
    sop = [[0.1, 0.2, 0.3, 0.05], [1.9, 1.0, 1.8, 0.5]]
    means, p = error_ratio_test(ls, sop)
    d = [np.log(ls[i]) - np.log(sop[i]) for i in range(2)]
    assert means == pytest.approx([float(np.mean(x)) for x in d])
    ps = [stats.ttest_1samp(x, 0.0, alternative="greater").pvalue for x in d]
    assert p == pytest.approx(max(ps))


def test_settings_and_paper_plan():
    study = LabelNoise()
    for bad in ("noise_levels=0.4,0.2", "noise_levels=1.0", "lr_u=0", "init_std=-1",
                "margin=0", "fit_acc=1.5", "toy_n=10", "toy_fractions=0", "toy_trials=1",
                "data=linear", "model=resnet", "eval_every=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            study.config("quick", [bad])
    plan = study.plan(study.config("paper"))
    assert len(plan) == 1 + 2 * 4 and all(len(p.seeds) == 3 for p in plan)
    assert {p.config.model.name for p in plan} == {"cnn_c96"}
    assert all(p.config.data.name == "cifar10" and p.config.epochs == 300 and
               p.config.optim.lr == 0.02 and p.config.optim.weight_decay == 5e-4 and
               p.config.optim.momentum == 0.9 and p.config.batch_size == 128 for p in plan)
    sop = [p for p in plan if p.tag("arm") == "sop"]
    assert [p.config.data.label_noise for p in sop] == [0.2, 0.4, 0.6, 0.8]
    assert all(p.config.interventions[0].kind == "sop" and p.config.interventions[0].lr_u == 10
               for p in sop)
    quick = study.plan(study.config("quick"))
    assert [(p.tag("arm"), p.tag("noise")) for p in quick] == [
        ("clean", 0.0), ("ce", 0.2), ("sop", 0.2), ("ce", 0.4), ("sop", 0.4), ("ce", 0.6),
        ("sop", 0.6)]
    assert all(p.config.eval_every == 1 and p.config.data.name == "mnist1d" for p in quick)


def test_end_to_end_rerun_and_readonly_report(tmp_path, capsys):
    argv = ["run", "label_noise", "--preset", "quick", "--out", str(tmp_path)]
    for item in TINY:
        argv += ["--set", item]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "### Verdicts" in first

    def counts():
        with RunStore(tmp_path / "runs.sqlite") as s:
            c = s._conn
            return tuple(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                         for t in ("runs", "probes", "computed"))

    n = counts()
    assert n == (3 * 2, 2, 1)  # clean, CE, SOP x 2 seeds; a probe per SOP seed; the toy
    assert main(argv) == 0  # nothing left to train or compute: the same report
    again = capsys.readouterr().out
    strip = [line for line in again.splitlines() if not line.startswith("report:")]
    assert strip == [line for line in first.splitlines() if not line.startswith("report:")]
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert counts() == n
    out = tmp_path / "label_noise"
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert {v["claim_id"] for v in verdicts} == {
        "ln_memorization_r30", "ln_sop_vs_clean_r30", "ln_sop_vs_ce_r30", "ln_detection_r30",
        "ln_toy_error", "ln_toy_support"}
    assert all(v["verdict"] in ("SUPPORTED", "NOT SUPPORTED", "INCONCLUSIVE") for v in verdicts)
    assert {p.name for p in out.glob("*.png")} == {
        "test_accuracy_curves.png", "noise_norm_histogram.png", "toy_recovery.png"}
    assert "INCOMPLETE" not in (out / "report.md").read_text()
