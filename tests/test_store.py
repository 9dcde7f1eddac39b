import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from overparam.config import DataConfig, ModelConfig, TrainConfig, run_id
from overparam.store import RunStore


def test_put_get_and_no_duplicates(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as s:
        hist = [{"epoch": 1, "test_acc": 0.5, "train_loss": float("nan")}, {"epoch": 2, "test_acc": 0.6}]
        assert s.put("r1", "c1", "train", 0, {"a": 1}, {"test_acc": 0.6}, hist)
        assert not s.put("r1", "c1", "train", 0, {"a": 1}, {"test_acc": 0.7}, hist)
        assert s.get("r1")["result"] == {"test_acc": 0.6}
        assert s.history("r1") == [{"epoch": 1, "test_acc": 0.5, "train_loss": None},
                                   {"epoch": 2, "test_acc": 0.6}]
        assert s.finished(["r1", "r2"]) == {"r1"}
        mode = s._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_failed_transaction_leaves_nothing(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as s:
        bad = [{"epoch": 1, "x": 1.0}, {"epoch": 1, "x": 2.0}]  # duplicate primary key
        with pytest.raises(sqlite3.IntegrityError):
            s.put("r1", "c1", "train", 0, {}, {}, bad)
        assert s.count() == 0 and s.history("r1") == []


SWEEP = textwrap.dedent("""
    import sys, time
    import torch
    torch.set_num_threads(1)
    from overparam.config import DataConfig, ModelConfig, TrainConfig
    from overparam.store import RunStore
    from overparam.sweep import run_sweep
    configs = [TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(name=f"mlp_w{w}"),
                           epochs=2) for w in (8, 16, 24, 32, 40, 48)]
    store = RunStore(sys.argv[1])
    run_sweep(configs, [0, 1], store)
    print("done")
""")


def _configs():
    return [TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(name=f"mlp_w{w}"),
                        epochs=2) for w in (8, 16, 24, 32, 40, 48)]


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(db)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    landed = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(db, timeout=30) as c:
                try:
                    landed = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:
                    landed = 0
            if landed >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with RunStore(db) as s:
        before = s.count()
        assert 2 <= before < 12
        for r in s.runs():  # every landed run is whole: final result and both epochs
            assert [h["epoch"] for h in s.history(r["run_id"])] == [1, 2]
            assert "test_acc" in r["result"]
    out = subprocess.run([sys.executable, str(script), str(db)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    expected = {run_id(c, s) for c in _configs() for s in (0, 1)}
    with RunStore(db) as s:
        rows = s.runs()
        assert len(rows) == 12 and {r["run_id"] for r in rows} == expected
        n_metrics = s._conn.execute("SELECT COUNT(DISTINCT run_id) FROM metrics").fetchone()[0]
        assert n_metrics == 12
