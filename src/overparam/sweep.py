"""Run configurations x seeds against a run store, skipping finished runs.

For each configuration, the seeds whose run ids are not yet stored are trained together as one
ensemble; each finished replicate lands in the store in its own transaction. A sweep killed at any
point and started again trains only what is missing; nothing lands twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from overparam.config import TrainConfig, config_id, run_id, to_canonical_dict
from overparam.store import RunStore


def run_config(cfg: TrainConfig, seeds: Sequence[int], store: RunStore | None = None,
               device: str = "cpu", progress: Callable[[int, int], None] | None = None,
               data: Any = None) -> list[dict[str, Any]]:
    """Final results of every seed of ``cfg`` (trained now or read from ``store``), seed order."""
    from overparam.train import train

    ids = {s: run_id(cfg, s) for s in seeds}
    done = store.finished(ids.values()) if store is not None else set()
    todo = [s for s in seeds if ids[s] not in done]
    fresh: dict[int, dict[str, Any]] = {}
    if todo:
        results = train(cfg, todo, data=data, device=device, progress=progress)
        for r in results:
            summary = r.summary()
            fresh[r.seed] = summary
            if store is not None:
                store.put(r.run_id, config_id(cfg), "train", r.seed, to_canonical_dict(cfg),
                          summary, r.history)
    out = []
    for s in seeds:
        if s in fresh:
            out.append(fresh[s])
        else:
            stored = store.get(ids[s]) if store is not None else None
            out.append(stored["result"] if stored else {})
    return out


def run_sweep(configs: Sequence[TrainConfig], seeds: Sequence[int], store: RunStore,
              device: str = "cpu", on_config: Callable[[int, int], None] | None = None
              ) -> list[list[dict[str, Any]]]:
    """Every configuration's per-seed results; finished runs are read, the rest trained."""
    out = []
    for i, cfg in enumerate(configs):
        out.append(run_config(cfg, seeds, store, device))
        if on_config is not None:
            on_config(i + 1, len(configs))
    return out
