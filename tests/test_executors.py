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


def test_pool_is_kept_across_runs_until_closed():
    """A staged study calls ``run`` many times: the same worker processes serve every call (no
    new torch import per stage); ``close`` ends them and a later ``run`` starts a new pool."""
    import os

    ex = ProcessExecutor(2)
    try:
        first = {pid for _, pid in ex.run(os.getpid, [()] * 4)}
        second = {pid for _, pid in ex.run(os.getpid, [()] * 4)}
        pool = ex._pool
        assert pool is not None and len(first | second) <= 2 and os.getpid() not in first
        assert {p.pid for p in pool._processes.values()} >= first | second
        ex.close()
        assert ex._pool is None
        third = {pid for _, pid in ex.run(os.getpid, [()] * 2)}
        assert third.isdisjoint(first | second)  # a fresh pool
    finally:
        ex.close()


def test_default_workers_and_auto(monkeypatch):
    import os

    from overparam.errors import ConfigError
    from overparam.executors import LocalExecutor, default_workers

    monkeypatch.delenv("OVERPARAM_WORKERS", raising=False)
    assert default_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OVERPARAM_WORKERS", "3")
    assert default_workers() == 3 and make_executor().workers == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("OVERPARAM_WORKERS", bad)
        with pytest.raises(ConfigError, match="OVERPARAM_WORKERS"):
            default_workers()
    assert isinstance(make_executor("auto", 1), LocalExecutor)
    assert make_executor("auto", 2).workers == 2
    assert isinstance(make_executor("local", 1), LocalExecutor)
    for bad in (0, True, 1.5):
        with pytest.raises(ConfigError, match="workers"):
            make_executor("auto", bad)


@pytest.mark.parametrize("make", [lambda: make_executor("local"), lambda: ProcessExecutor(2)])
def test_a_dependant_starts_only_after_its_parent_landed(tmp_path, make):
    """Task i stats file i, which the caller writes when it consumes task i's parent: a task
    submitted before its parent's result was consumed fails (FileNotFoundError)."""
    import os

    files = [tmp_path / f"f{i}" for i in range(6)]
    files[0].touch()
    files[4].touch()
    tasks = [(str(f),) for f in files]
    # a chain 0 -> 1 -> 2 -> 3 and an independent pair 4 -> 5
    after = [set(), {0}, {1}, {2}, set(), {4}]
    child = {0: 1, 1: 2, 2: 3, 4: 5}
    executor = make()
    order = []
    try:
        for task, out in executor.run(os.stat, tasks, after):
            i = tasks.index(task)
            assert out.st_size == 0
            order.append(i)
            if i in child:
                files[child[i]].touch()
    finally:
        executor.close()
    assert sorted(order) == list(range(6))
    assert order.index(0) < order.index(1) < order.index(2) < order.index(3)
    assert order.index(4) < order.index(5)


def test_dependencies_are_checked():
    ex = make_executor("local")
    with pytest.raises(ValueError, match="one set of task indices"):
        list(ex.run(abs, [(1,), (2,)], [set()]))
    with pytest.raises(ValueError, match="cycle"):
        next(iter(ex.run(abs, [(1,), (2,)], [{1}, {0}])))
