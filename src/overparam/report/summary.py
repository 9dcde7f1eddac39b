"""Reports from a run store: one table of every stored configuration, and the reproduce report.

Tables give mean ± std over seeds and the 95% percentile-bootstrap CI of the mean, as Markdown
and CSV.
"""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overparam.stats import summarize


def environment() -> dict[str, str]:
    """Versions, device and git commit of this run."""
    import numpy
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(),
            "device": device or "cpu", "torch_threads": str(torch.get_num_threads()),
            "git_commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


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


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def write_store_report(out: Path) -> Path:
    """``out/report.md`` and ``out/runs.csv`` summarizing every configuration in the store."""
    store_path = out / "runs.sqlite"
    if not store_path.exists():
        from overparam.errors import ConfigError

        raise ConfigError("out", str(out), "a directory holding runs.sqlite (from train/run --out)")
    rows = config_table(store_path)
    cols = ["config_id", "seeds", "train_acc", "test_acc", "config"]
    write_csv(out / "runs.csv", rows, cols)
    text = ("# Stored runs\n\nAccuracies in %: mean ± std over seeds [95% bootstrap CI].\n\n"
            + markdown_table(rows, cols))
    (out / "report.md").write_text(text)
    return out / "report.md"


def write_reproduce_report(out: Path, preset: str, studies: Mapping[str, Any],
                           overrides: Mapping[str, list[str]] | None = None,
                           device: str = "cpu", show_progress: bool = False,
                           executor: Any = None) -> Path:
    """Run every registered study at ``preset`` into ``out`` and write ``out/report.md``.

    Finished runs are read from the store, so a second call only rewrites the reports.
    """
    from overparam.studies.runner import run_study

    out.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    t0 = time.perf_counter()
    sections, summary = [], []
    for name, cls in studies.items():
        report, path = run_study(cls(), preset, overrides.get(name, []), out, device,
                                 show_progress=show_progress, executor=executor)
        summary.append((name, report))
        body = report.markdown().replace("](", f"]({name}/")
        sections.append(body)
    env = environment()
    lines = [f"# overparam reproduce ({preset} preset)", "",
             f"Total wall time {time.perf_counter() - t0:.1f} s.", "", "## Verdicts", ""]
    for name, report in summary:
        lines.append(f"### {name} ({report.wall_s:.1f} s)")
        lines += [v.line() for v in report.verdicts] + [""]
    lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n" + "\n".join(sections))
    return path
