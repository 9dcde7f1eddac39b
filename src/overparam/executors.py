"""Where training tasks run: in-process, a process pool, or Ray; the driver alone writes.

A task trains one configuration x seeds (an ensemble) and returns, per seed, the final
metrics, the per-epoch history, the per-step series and the final weights and intervention
artifacts as numpy arrays. The configuration travels as its canonical dict, interventions
included (the worker rebuilds them by kind); the weights directory travels with it, because an
intervention may read another run's stored weights (a lottery round reads its parent's). The driver -- the only
writer of the run store -- saves the weights and inserts each run in its own transaction as
results arrive; a run already stored is never inserted again, so a retried task cannot land
twice. A worker process that dies (killed, out of memory) has its task retried: the process pool
is rebuilt and unfinished tasks are resubmitted (``retries`` times at most); Ray retries tasks of
dead workers itself (``max_retries``). Every executor runs each worker with one torch thread.

By default (``make_executor("auto")``, the CLI's default) tasks run on a pool of one-thread
worker processes, one per core this process may use (:func:`default_workers`: the affinity
mask, ``$OVERPARAM_WORKERS`` overrides), and in-process when there is one core. The pool is
started on the first task and kept for every later ``run`` (a staged study, every study of
``reproduce``), so the workers import torch once; ``close`` shuts it down. A task's result does
not depend on where it ran (tested: a pool and in-process store identical metrics).

``run(fn, tasks, after)`` takes dependencies: ``after[i]`` is the set of tasks that must have
finished -- and been landed by the caller, which consumes each result before asking for the
next -- before task i starts. A chain of runs that read their parents' weights (lottery rounds)
is thus submitted link by link while independent tasks fill the other workers, instead of
waiting for a whole stage at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from overparam.errors import ConfigError

EXECUTORS = ("auto", "local", "process", "ray")
Task = tuple[dict[str, Any], tuple[int, ...], str, str | None]


def train_task(config: dict[str, Any], seeds: tuple[int, ...], device: str,
               weights_dir: str | None = None) -> list[dict[str, Any]]:
    """Train ``config`` x ``seeds`` in this process; plain data back (no torch tensors)."""
    from overparam.config import TrainConfig, from_dict
    from overparam.runtime import configure_process
    from overparam.sweep import plain_result
    from overparam.train import train

    configure_process()
    hook = os.environ.get("OVERPARAM_TEST_CRASH_ONCE")
    if hook and not os.path.exists(hook):  # test hook: kill this worker once, mid-task
        open(hook, "w").close()
        os._exit(1)
    cfg = from_dict(TrainConfig, config)
    results = train(cfg, list(seeds), device=device, keep_state=True, weights_dir=weights_dir)
    return [plain_result(r) for r in results]


def _waiting(tasks: Sequence[Task], after: Sequence[set[int]] | None) -> dict[int, set[int]]:
    """Task index -> the indices it waits for (``after[i]``: tasks that must have finished, and
    their results been consumed by the caller, before task i starts)."""
    if after is None:
        return {i: set() for i in range(len(tasks))}
    if len(after) != len(tasks) or any(not set(d) <= set(range(len(tasks))) for d in after):
        raise ValueError("after: one set of task indices per task")
    return {i: set(d) for i, d in enumerate(after)}


class LocalExecutor:
    """Tasks one after another in this process."""

    name = "local"

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task],
            after: Sequence[set[int]] | None = None) -> Iterator[tuple[Task, Any]]:
        done: set[int] = set()
        waiting = _waiting(tasks, after)
        while waiting:
            i = next((i for i, d in waiting.items() if d <= done), None)
            if i is None:
                raise ValueError("the tasks' dependencies form a cycle")
            del waiting[i]
            yield tasks[i], fn(*tasks[i])
            done.add(i)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of ``workers`` spawned processes, started on the first task and reused by every
    later ``run`` until ``close``; a dead worker's tasks are resubmitted to a fresh pool."""

    name = "process"

    def __init__(self, workers: int, retries: int = 2):
        if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
            raise ConfigError("workers", workers, "a positive integer")
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    def _drop_pool(self) -> None:
        """Forget a broken pool (its processes are dead or dying; nothing to wait for)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task],
            after: Sequence[set[int]] | None = None) -> Iterator[tuple[Task, Any]]:
        waiting = _waiting(tasks, after)
        done: set[int] = set()
        attempts = [0] * len(tasks)
        futures: dict[Any, int] = {}
        try:
            while waiting or futures:
                pool = self._get_pool()
                for i in [i for i, d in waiting.items() if d <= done]:
                    del waiting[i]
                    futures[pool.submit(fn, *tasks[i])] = i
                if not futures:
                    raise ValueError("the tasks' dependencies form a cycle")
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                broken = []
                for f in finished:
                    i = futures.pop(f)
                    try:
                        out = f.result()
                    except BrokenProcessPool:
                        broken.append(i)
                        continue
                    yield tasks[i], out  # the caller lands it before its dependants start
                    done.add(i)
                if broken:  # resubmit every unfinished task to a fresh pool
                    for f, i in futures.items():
                        f.cancel()
                        broken.append(i)
                    futures.clear()
                    self._drop_pool()
                    for i in broken:
                        attempts[i] += 1
                        if attempts[i] > self.retries:
                            raise RuntimeError(f"a worker died {self.retries + 1} times "
                                               f"running {tasks[i][0]}")
                        waiting[i] = set()
        finally:
            for f in futures:  # the caller stopped early, or a task failed
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Ray core tasks on an existing cluster (``address``) or a local one (``num_cpus``)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 retries: int = 2):
        try:
            import ray
        except ImportError:
            raise ConfigError("executor", "ray", "installed: pip install 'overparam[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
            src = os.environ.get("OVERPARAM_TEST_CRASH_ONCE")
            if src:
                env["env_vars"]["OVERPARAM_TEST_CRASH_ONCE"] = src
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count(), runtime_env=env,
                         include_dashboard=False, log_to_driver=False)
            self.started = True
        self.retries = retries

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task],
            after: Sequence[set[int]] | None = None) -> Iterator[tuple[Task, Any]]:
        remote = self.ray.remote(num_cpus=1, max_retries=self.retries)(fn)
        waiting = _waiting(tasks, after)
        done: set[int] = set()
        refs: dict[Any, int] = {}
        while waiting or refs:
            for i in [i for i, d in waiting.items() if d <= done]:
                del waiting[i]
                refs[remote.remote(*tasks[i])] = i
            if not refs:
                raise ValueError("the tasks' dependencies form a cycle")
            ready, _ = self.ray.wait(list(refs), num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                yield tasks[i], self.ray.get(ref)
                done.add(i)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def default_workers() -> int:
    """Worker processes by default: ``$OVERPARAM_WORKERS`` when set, else the cores this process
    may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    env = os.environ.get("OVERPARAM_WORKERS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError("OVERPARAM_WORKERS", env, "a positive integer")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_executor(name: str = "auto", workers: int | None = None,
                  address: str | None = None):  # noqa: ANN201
    """``auto``: a process pool of ``workers`` (default :func:`default_workers`), in-process when
    that is 1; ``local``: in-process; ``process``: a pool of ``workers``; ``ray``: Ray tasks on
    ``address`` or a local cluster of ``workers`` CPUs."""
    if workers is not None and not (isinstance(workers, int) and not isinstance(workers, bool)
                                    and workers >= 1):
        raise ConfigError("workers", workers, "a positive integer")
    if name == "auto":
        n = workers if workers is not None else default_workers()
        return LocalExecutor() if n == 1 else ProcessExecutor(n)
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers if workers is not None else default_workers())
    if name == "ray":
        return RayExecutor(address, num_cpus=workers)
    raise ConfigError("executor", name, "one of " + ", ".join(EXECUTORS))
