"""The lottery chain on ordinary runs: a process pool gives the in-process tables, and a chain
killed with SIGKILL at any point resumes to the same tables with every run stored once."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from overparam.cli import main
from overparam.store import RunStore
from overparam.weights import WeightStore
from tests.studies.test_studies import TINY

ARGV = [x for item in TINY["lottery"] for x in ("--set", item)]


def tables(out):
    """The report's tables (seeds.csv, the per-seed listing, holds measured wall times)."""
    return {p.name: p.read_text() for p in sorted((out / "lottery").glob("*.csv"))
            if p.name != "seeds.csv"}


def stored(out):
    with RunStore(out / "runs.sqlite") as s:
        return {r["run_id"]: {k: v for k, v in r["result"].items() if k != "wall_s"}
                for r in s.runs()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("inprocess")
    assert main(["run", "lottery", "--out", str(out), *ARGV]) == 0
    return out


def test_chain_is_ordinary_runs(reference):
    runs = stored(reference)
    assert len(runs) == 20  # dense + 4 rounds of tickets + 2x2 controls + the twins, 2 seeds
    weights = WeightStore(reference / "weights")
    with RunStore(reference / "runs.sqlite") as s:
        for r in s.runs():
            assert weights.has(r["run_id"])
            masked = any(i["kind"] == "mask" for i in r["config"].get("interventions", []))
            assert weights.has(r["run_id"], "mask") == masked
    names = {p.name for p in (reference / "weights").iterdir()}
    assert not [n for n in names if n.startswith("lottery_")]  # no private files


def test_process_pool_gives_the_same_tables(reference, tmp_path):
    assert main(["run", "lottery", "--out", str(tmp_path), "--workers", "2", *ARGV]) == 0
    assert tables(tmp_path) == tables(reference)
    assert stored(tmp_path) == stored(reference)


def _count(path):
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("kill_after", [1, 7, 13, 20])
def test_killed_chain_resumes_to_the_same_tables(reference, tmp_path, kill_after):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "overparam.cli", "run", "lottery", "--out",
                             str(tmp_path), *ARGV], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(tmp_path / "runs.sqlite") < kill_after and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main(["run", "lottery", "--out", str(tmp_path), *ARGV]) == 0
    assert stored(tmp_path) == stored(reference)  # every run exactly once, the same numbers
    assert tables(tmp_path) == tables(reference)
