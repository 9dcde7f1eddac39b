"""The same sweep in-process, on a process pool and on Ray: identical ids and metrics; a dead
worker's task is retried and its runs land exactly once."""

import importlib.util

import pytest

from overparam.executors import ProcessExecutor, make_executor
from overparam.store import RunStore
from overparam.studies import run_study
from overparam.studies.optimizers import Optimizers

TINY = ["batch_sizes=32,64,128", "lrs=0.05,0.05,0.05", "epochs=2", "seeds=2", "n_train=512"]
HAS_RAY = importlib.util.find_spec("ray") is not None


def stored(path):
    with RunStore(path / "runs.sqlite") as s:
        out = {}
        for r in s.runs():
            res = {k: v for k, v in r["result"].items() if k != "wall_s"}
            out[r["run_id"]] = (res, s.history(r["run_id"]))
        return out


def sweep(path, executor):
    try:
        run_study(Optimizers(), "quick", TINY, path, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    return stored(path)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("local"), None)


def test_process_pool_matches_in_process(local, tmp_path):
    got = sweep(tmp_path, ProcessExecutor(2))
    assert got.keys() == local.keys() and len(got) == 6 * 2  # 3 SGD, Adam, 2 GD arms
    assert got == local


@pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed")
def test_ray_matches_in_process(local, tmp_path):
    got = sweep(tmp_path, make_executor("ray", workers=2))
    assert got == local


@pytest.mark.parametrize("kind", ["process", pytest.param(
    "ray", marks=pytest.mark.skipif(not HAS_RAY, reason="the ray extra is not installed"))])
def test_killed_worker_is_retried_and_lands_once(local, tmp_path, monkeypatch, kind):
    marker = tmp_path / "crashed"
    monkeypatch.setenv("OVERPARAM_TEST_CRASH_ONCE", str(marker))
    got = sweep(tmp_path / "out", make_executor(kind, workers=2))
    assert marker.exists()  # a worker really died
    assert got == local
    with RunStore(tmp_path / "out" / "runs.sqlite") as s:
        assert s.count() == len(local)
