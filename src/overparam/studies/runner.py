"""Run a study into an output directory, and rebuild its report from the store.

``run_study`` checks everything it can before writing anything -- the settings, that ``--out``
is a writable directory, that every data set the plan needs is on disk or can be downloaded --
so that a run that cannot start leaves no ``study.json`` or ``runs.sqlite`` behind.
``reanalyze`` only reads: it trains, probes and computes nothing; a study whose runs or probes are
not all stored gets a partial report saying what is there and what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overparam.config import run_id
from overparam.errors import ConfigError
from overparam.report.tables import Table
from overparam.store import RunStore
from overparam.studies.base import Missing, Study, StudyContext, StudyReport, study_json


def check_out(out: Path) -> None:
    """``out`` must be a directory, or not exist yet below a writable one (tried by writing a
    temporary file there: permission bits say nothing for root or a read-only mount)."""
    import tempfile

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", str(out), "a directory (this path is a file)")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError("out", str(out), f"a directory ({probe} is a file)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError:
        raise ConfigError("out", str(out), f"a writable directory ({probe} is not writable)"
                          ) from None


def check_data(plan: Sequence[Any]) -> None:
    """Every data set that needs files (MNIST, CIFAR-10) is on disk or downloads now."""
    from overparam.data.dataset import load_raw
    from overparam.data.registry import NEEDS_FILES

    for name in sorted({p.config.data.name for p in plan} & NEEDS_FILES):
        load_raw(name)


def run_study(study: Study, preset: str, overrides: Sequence[str] = (), out: Path = Path("runs"),
              device: str = "cpu", show_progress: bool = False, executor: Any = None
              ) -> tuple[StudyReport, Path]:
    """Train what the store lacks, measure, analyze; write ``out/<study>/report.md``."""
    cfg = study.config(preset, overrides)
    out = Path(out)
    check_out(out)
    check_data(study.plan(cfg))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with RunStore(out / "runs.sqlite") as store:
        ctx = StudyContext(out, store, device=device, show_progress=show_progress,
                           executor=executor)
        directory = ctx.figure_dir(study.name)
        (directory / "study.json").write_text(study_json(study.name, preset, cfg))
        study.run(cfg, ctx)
        report = study.analyze(cfg, ctx, preset).finalize()
    report.wall_s = time.perf_counter() - t0
    return report, report.write(directory)


def load_study_config(study: Study, out: Path) -> tuple[Any, str] | None:
    """The settings and preset a study last ran with in ``out`` (None when it never ran)."""
    spec_path = Path(out) / study.name / "study.json"
    if not spec_path.exists():
        return None
    spec = json.loads(spec_path.read_text())
    fields = {f.name for f in dataclasses.fields(study.Config)}
    cfg = study.Config(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in spec["config_full"].items() if k in fields})
    return cfg, spec["preset"]


def reanalyze(study: Study, out: Path) -> tuple[StudyReport, Path] | None:
    """Rebuild a study's report from ``out/<study>/study.json`` and the store, reading only."""
    got = load_study_config(study, out)
    if got is None:
        return None
    cfg, preset = got
    with RunStore(Path(out) / "runs.sqlite") as store:
        ctx = StudyContext(Path(out), store, readonly=True)
        try:
            report = study.analyze(cfg, ctx, preset).finalize()
        except Missing as e:
            report = partial_report(study, cfg, preset, store, str(e))
    return report, report.write(Path(out) / study.name)


def partial_report(study: Study, cfg: Any, preset: str, store: RunStore, first_missing: str
                   ) -> StudyReport:
    """What an incomplete study has stored: per planned configuration, the seeds stored and
    their mean accuracies; the probes stored; the first thing the analysis missed."""
    from overparam.stats import summarize

    rep = StudyReport(study.name, preset)
    rows, stored, planned = [], 0, 0
    for p in study.plan(cfg):
        runs = [r for s in p.seeds if (r := store.get(run_id(p.config, s))) is not None]
        stored += len(runs)
        planned += len(p.seeds)
        row = {"configuration": ", ".join(f"{k}={v}" for k, v in p.tags) or p.config.model.name,
               "seeds stored": f"{len(runs)} of {len(p.seeds)}"}
        for key in ("train_acc", "test_acc"):
            vals = [r["result"][key] for r in runs if r["result"].get(key) is not None]
            row[key.replace("_", " ") + " (%)"] = (f"{100 * summarize(vals).mean:.2f}"
                                                   if vals else "missing")
        rows.append(row)
    probes = store.probe_counts([run_id(p.config, s) for p in study.plan(cfg) for s in p.seeds])
    rep.notes.append(
        f"**INCOMPLETE** — this report is partial: {stored} of {planned} planned runs are "
        f"stored; the analysis stopped at the first missing piece: {first_missing}. Stored "
        "probes: " + (", ".join(f"{k} on {v} runs" for k, v in sorted(probes.items()))
                      or "none") + f". Run `overparam run {study.name} --preset {preset}` with "
        "the same settings and --out to finish (stored runs are kept).")
    if rows:
        rep.tables.append(Table(f"{study.name}: stored runs per planned configuration",
                                list(rows[0]), rows))
    return rep
