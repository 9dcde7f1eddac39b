"""Run a study into an output directory and rebuild its report from the store."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overparam.store import RunStore
from overparam.studies.base import Study, StudyContext, StudyReport, study_json


def run_study(study: Study, preset: str, overrides: Sequence[str] = (), out: Path = Path("runs"),
              device: str = "cpu", show_progress: bool = False, executor: Any = None
              ) -> tuple[StudyReport, Path]:
    """Train what the store lacks, measure, analyze; write ``out/<study>/report.md``."""
    cfg = study.config(preset, overrides)
    study.plan(cfg)  # invalid settings fail here, before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with RunStore(out / "runs.sqlite") as store:
        ctx = StudyContext(out, store, device=device, show_progress=show_progress,
                           executor=executor)
        directory = ctx.figure_dir(study.name)
        (directory / "study.json").write_text(study_json(study.name, preset, cfg))
        study.run(cfg, ctx)
        report = study.analyze(cfg, ctx, preset)
    report.wall_s = time.perf_counter() - t0
    return report, report.write(directory)


def reanalyze(study: Study, out: Path, device: str = "cpu") -> tuple[StudyReport, Path] | None:
    """Rebuild a study's report from ``out/<study>/study.json`` and the store (no training)."""
    spec_path = Path(out) / study.name / "study.json"
    if not spec_path.exists():
        return None
    spec = json.loads(spec_path.read_text())
    full = spec["config_full"]
    fields = {f.name: f for f in dataclasses.fields(study.Config)}
    cfg = study.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in full.items()
                          if k in fields})
    with RunStore(Path(out) / "runs.sqlite") as store:
        ctx = StudyContext(Path(out), store, device=device)
        report = study.analyze(cfg, ctx, spec["preset"])
    return report, report.write(ctx.figure_dir(study.name))
