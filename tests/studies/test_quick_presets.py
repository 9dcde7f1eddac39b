"""The quick presets of Studies I end to end, as `overparam run` runs them (a few minutes).

Marked slow: deselect with ``-m "not slow"``; CI runs them.
"""

import pytest

from overparam.cli import main
from overparam.store import RunStore

pytestmark = pytest.mark.slow


def test_double_descent_quick_preset(tmp_path, capsys):
    assert main(["run", "double_descent", "--preset", "quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("SUPPORTED") >= 2 and "min-norm least squares" in out
    with RunStore(tmp_path / "runs.sqlite") as s:
        runs = s.runs()
    fixed = [r for r in runs if not r["config"].get("interventions")]
    assert len(fixed) == (10 + 4) * 3  # widths + sample sizes other than n_train, 3 seeds
    matched = [r for r in runs if r["config"].get("interventions")]
    assert matched and all(r["result"]["target_met"] for r in matched)  # widths past threshold


def test_optimizers_then_sharpness_quick_presets(tmp_path, capsys):
    assert main(["run", "optimizers", "--preset", "quick", "--out", str(tmp_path)]) == 0
    with RunStore(tmp_path / "runs.sqlite") as s:
        n = s.count()
    assert n == 10 * 3  # 7 SGD batch sizes, Adam, the blueprint's GD arm, the stable-LR GD arm
    capsys.readouterr()
    assert main(["run", "sharpness", "--preset", "quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    with RunStore(tmp_path / "runs.sqlite") as s:
        # the sharpness study reuses the optimizers' runs and adds one matched-loss arm per
        # SGD batch size
        assert s.count() == n + 7 * 3
    assert "top Hessian eigenvalue" in out and "Perturbation" in out and "### Claims" in out
