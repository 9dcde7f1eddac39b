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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from overparam.errors import ConfigError

EXECUTORS = ("local", "process", "ray")
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


class LocalExecutor:
    """Tasks one after another in this process."""

    name = "local"

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Task, Any]]:
        for t in tasks:
            yield t, fn(*t)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of ``workers`` spawned processes; a dead worker's tasks are resubmitted."""

    name = "process"

    def __init__(self, workers: int, retries: int = 2):
        if workers < 1:
            raise ConfigError("workers", workers, "a positive integer")
        self.workers = workers
        self.retries = retries

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing as mp

        return ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Task, Any]]:
        pending = list(tasks)
        attempts = {i: 0 for i in range(len(pending))}
        index = {id(t): i for i, t in enumerate(pending)}
        while pending:
            pool = self._pool()
            futures = {pool.submit(fn, *t): t for t in pending}
            broken = False
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for f in done:
                        t = futures.pop(f)
                        try:
                            out = f.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        pending.remove(t)
                        yield t, out
                    if broken:
                        break
            finally:
                pool.shutdown(wait=not broken, cancel_futures=True)
            if broken:
                for t in pending:
                    attempts[index[id(t)]] += 1
                    if attempts[index[id(t)]] > self.retries:
                        raise RuntimeError(f"a worker died {self.retries + 1} times running "
                                           f"{t[0]}")

    def close(self) -> None:
        pass


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

    def run(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[Task, Any]]:
        remote = self.ray.remote(num_cpus=1, max_retries=self.retries)(fn)
        refs = {remote.remote(*t): t for t in tasks}
        while refs:
            done, _ = self.ray.wait(list(refs), num_returns=1)
            for ref in done:
                t = refs.pop(ref)
                yield t, self.ray.get(ref)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_executor(name: str, workers: int = 2, address: str | None = None):  # noqa: ANN201
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(address, num_cpus=workers)
    raise ConfigError("executor", name, "one of " + ", ".join(EXECUTORS))
