"""The run table of a store: one row per stored configuration (Markdown and CSV).

Tables give mean ± std over seeds and the 95% t interval of the mean. This module
only reads the store and renders; the combined reproduce report is :mod:`overparam.reproduce`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from overparam.report.tables import Table
from overparam.stats import summarize


def config_table(store_path: Path) -> list[dict[str, Any]]:
    """One row per stored configuration with seed count and summarized metrics."""
    from overparam.store import RunStore

    rows = []
    with RunStore(store_path) as store:
        by_config: dict[str, list[dict[str, Any]]] = {}
        for run in store.runs():
            by_config.setdefault(run["config_id"], []).append(run)
    for cid, runs in by_config.items():
        cfg = runs[0]["config"]
        row: dict[str, Any] = {"config_id": cid[:12], "config": json.dumps(cfg, sort_keys=True),
                               "seeds": len(runs)}
        for key in ("train_acc", "test_acc"):
            vals = [r["result"][key] for r in runs if r["result"].get(key) is not None]
            if vals:
                s = summarize(vals)
                row[key] = s.fmt(100)
        rows.append(row)
    return rows


def write_store_report(out: Path) -> Path:
    """``out/runs.md`` and ``out/runs.csv`` summarizing every configuration in the store (the
    reproduce report keeps ``out/report.md``)."""
    store_path = out / "runs.sqlite"
    if not store_path.exists():
        from overparam.errors import ConfigError

        raise ConfigError("out", str(out), "a directory holding runs.sqlite (from train/run --out)")
    table = Table("Stored runs", ["config_id", "seeds", "train_acc", "test_acc", "config"],
                  config_table(store_path))
    table.write_csv(out / "runs.csv")
    text = ("# Stored runs\n\nAccuracies in %: mean ± std over seeds [95% t interval].\n\n"
            + table.markdown_body())
    (out / "runs.md").write_text(text)
    return out / "runs.md"
