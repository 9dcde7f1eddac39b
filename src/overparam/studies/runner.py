"""Run a study into an output directory, and rebuild its report from the store.

``run_study`` checks everything it can before writing anything -- its arguments, the settings,
that ``--out`` is a writable directory, that every data set the plan needs is on disk or can be
downloaded -- so that a run that cannot start leaves no ``study.json`` or ``runs.sqlite`` behind;
a study that starts with some of its runs already stored says so ("resuming: k of N runs already
stored"). ``reanalyze`` only reads: it trains, probes and computes nothing; a study whose runs or
probes are not all stored gets a partial report saying what is there and what is missing.
``describe`` and ``estimate`` answer ``overparam show``: every setting with its type, preset value
and meaning, and the plan with a time estimate from the wall time of runs already measured.

This module is imported with :mod:`overparam.studies` (``overparam list`` reads the registry):
it imports the store, numpy and the study protocol only inside its functions.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overparam.config import run_id
from overparam.errors import ConfigError

if TYPE_CHECKING:
    from overparam.store import RunStore
    from overparam.studies.base import Study, StudyReport


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


def resolve_study(study: Any) -> Study:
    """A study instance from an instance, a study class or a registered name."""
    import importlib

    from overparam.studies import REGISTRY
    from overparam.studies.base import Study

    if isinstance(study, Study):
        return study
    if isinstance(study, type) and issubclass(study, Study):
        return study()
    if not isinstance(study, str) or study not in REGISTRY:
        raise ConfigError("study", study, "a registered study name (one of "
                          + ", ".join(REGISTRY) + ") or a Study")
    module, attr = REGISTRY[study].split(":")
    try:
        return getattr(importlib.import_module(module), attr)()
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise ConfigError("study", study, f"a study whose module is there ({module} is not "
                          "written yet)") from None


def _check_run_args(preset: Any, overrides: Any, out: Any, device: Any, executor: Any) -> None:
    """Clear errors for the public arguments of :func:`run_study`."""
    from overparam.train import check_device

    if not isinstance(preset, str):
        raise ConfigError("preset", preset, "a preset name such as 'quick' or 'paper'")
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError("overrides", overrides, "a list of 'KEY=VALUE' strings, e.g. "
                          "['epochs=5', 'seeds=3']")
    if not isinstance(out, (str, Path)):
        raise ConfigError("out", out, "a directory path (str or pathlib.Path)")
    check_device(device)
    if executor is not None and not (hasattr(executor, "run") and hasattr(executor, "close")):
        raise ConfigError("executor", executor, "None (in-process) or an executor from "
                          "overparam.executors.make_executor")


def run_study(study: Any, preset: str = "quick", overrides: Sequence[str] = (),
              out: Path = Path("runs"), device: str = "cpu", show_progress: bool = False,
              executor: Any = None) -> tuple[StudyReport, Path]:
    """Train what the store lacks, measure, analyze; write ``out/<study>/report.md``.

    ``study`` is a :class:`~overparam.studies.base.Study`, its class or its registered name;
    ``overrides`` are ``KEY=VALUE`` strings (``--set``); ``executor`` None trains in-process.
    ``show_progress`` prints progress on stderr (:mod:`overparam.progress`)."""
    from overparam.progress import note
    from overparam.store import RunStore
    from overparam.studies.base import StudyContext, study_json

    _check_run_args(preset, overrides, out, device, executor)
    study = resolve_study(study)
    cfg = study.config(preset, overrides)
    out = Path(out)
    check_out(out)
    plan = study.plan(cfg)
    check_data(plan)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with RunStore(out / "runs.sqlite") as store:
        planned = {run_id(p.config, s) for p in plan for s in p.seeds}
        stored = len(store.finished(planned))
        if stored:
            note(f"{study.name}: resuming: {stored} of {len(planned)} runs already stored",
                 show_progress)
        ctx = StudyContext(out, store, device=device, show_progress=show_progress,
                           executor=executor, study=study.name)
        directory = ctx.figure_dir(study.name)
        (directory / "study.json").write_text(study_json(study.name, preset, cfg))
        study.run(cfg, ctx)
        report = study.report(cfg, ctx, preset)
    report.wall_s = time.perf_counter() - t0
    report.overrides = tuple(overrides)
    report.wall_s = record_settings(directory, preset, overrides, cfg, report.wall_s,
                                    trained=len(planned) - stored)
    return report, write_report(report, out, directory)


SETTINGS = "settings.json"


def record_settings(directory: Path, preset: str, overrides: Sequence[str], cfg: Any,
                    wall_s: float, trained: int) -> float:
    """Write ``directory/settings.json``: the preset, the ``--set`` overrides and the measured
    wall time, so that ``overparam report`` (which rebuilds from the store) keeps them. A run
    that trained nothing (everything was stored) with the same settings keeps the earlier
    measured wall time. Returns the wall time recorded."""
    from overparam.config import canonical_json

    config = json.loads(canonical_json(cfg))
    old = read_settings(directory)
    rerun = None
    if old and trained == 0 and old.get("config") == config and old.get("wall_s") is not None:
        wall_s, rerun = float(old["wall_s"]), wall_s
    (directory / SETTINGS).write_text(json.dumps(
        {"preset": preset, "overrides": list(overrides), "wall_s": wall_s,
         "rerun_wall_s": rerun, "runs_trained": trained, "config": config},
        sort_keys=True, indent=1) + "\n")
    return wall_s


def read_settings(directory: Path) -> dict[str, Any] | None:
    """``directory/settings.json`` as written by :func:`record_settings` (None if absent or
    unreadable)."""
    path = Path(directory) / SETTINGS
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None


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
    from overparam.store import RunStore
    from overparam.studies.base import Missing, StudyContext

    got = load_study_config(study, out)
    if got is None:
        return None
    cfg, preset = got
    with RunStore(Path(out) / "runs.sqlite") as store:
        ctx = StudyContext(Path(out), store, readonly=True)
        try:
            report = study.report(cfg, ctx, preset)
        except Missing as e:
            report = partial_report(study, cfg, preset, store, str(e))
    from overparam.config import canonical_json

    settings = read_settings(Path(out) / study.name)
    if (settings and settings.get("preset") == preset
            and settings.get("config") == json.loads(canonical_json(cfg))):  # as measured
        report.overrides = tuple(str(o) for o in settings.get("overrides") or ())
        wall = settings.get("wall_s")
        report.wall_s = float(wall) if isinstance(wall, (int, float)) else None
    return report, write_report(report, Path(out), Path(out) / study.name)


def write_report(report: StudyReport, out: Path, directory: Path) -> Path:
    """The study's report files, and ``seeds.csv``: one row per stored run of the study
    (configuration x seed; settings, final metrics, the plan's labels), when it trained any."""
    from overparam.results import seed_table

    path = report.write(directory)
    table = seed_table(out, report.study)
    if len(table):
        tmp = directory / "seeds.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(directory / "seeds.csv")
    return path


def partial_report(study: Study, cfg: Any, preset: str, store: RunStore, first_missing: str
                   ) -> StudyReport:
    """What an incomplete study has stored: per planned configuration, the seeds stored and
    their mean accuracies; the probes stored; the first thing the analysis missed."""
    from overparam.report.tables import Table
    from overparam.stats import summarize
    from overparam.studies.base import StudyReport

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


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``--set`` key of a study: its type, the preset's value, the value in use, meaning."""

    name: str
    type: str
    default: Any  # the preset's value
    value: Any  # after --set overrides
    help: str


def describe(study: Study, preset: str, overrides: Sequence[str] = ()) -> tuple[Any, list[Setting]]:
    """The resolved settings of ``study`` at ``preset`` with ``overrides`` (validated), and one
    :class:`Setting` per field of its config, in declaration order."""
    cfg = study.config(preset, overrides)
    base = study.PRESETS[preset]
    helps = setting_help(type(cfg))
    rows = []
    for f in dataclasses.fields(cfg):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        rows.append(Setting(f.name, kind, getattr(base, f.name), getattr(cfg, f.name),
                            helps.get(f.name, "")))
    return cfg, rows


def setting_help(cls: type) -> dict[str, str]:
    """What each field of a study config means, from (first found along the class's MRO):
    ``dataclasses.field(metadata={"help": ...})``; a ``HELP`` dict on the class; else the
    field's comment in the source (at the end of its line, or the comment lines just above
    it). A field with none of these is absent (``show`` still lists its type and value)."""
    names = [f.name for f in dataclasses.fields(cls)]
    out: dict[str, str] = {}
    mro = [c for c in cls.__mro__ if dataclasses.is_dataclass(c)]
    for name in names:
        for c in mro:
            f = c.__dict__.get("__dataclass_fields__", {}).get(name)
            if f is not None and f.metadata.get("help"):
                out[name] = str(f.metadata["help"])
                break
        else:
            for c in mro:
                table = c.__dict__.get("HELP")
                if isinstance(table, dict) and table.get(name):
                    out[name] = str(table[name])
                    break
            else:
                for c in mro:
                    got = source_comments(c).get(name)
                    if got:
                        out[name] = got
                        break
    return out


def source_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in the class body's source: the comment at the end of the
    field's line, else the comment lines directly above it (empty when the source is not
    available)."""
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}
    # indentation of the class body's statements
    body_col = next((len(t.string) for t in tokens if t.type == tokenize.INDENT), None)
    out: dict[str, str] = {}
    above: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == tokenize.COMMENT and tok.start[1] == body_col:
            above.append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NL and tok.line.strip() == "":
            above = []
        elif (tok.type == tokenize.NAME and tok.start[1] == body_col and i + 1 < len(tokens)
              and tokens[i + 1].string == ":"):
            line = tok.start[0]
            trailing = [t.string.lstrip("#").strip() for t in tokens[i:]
                        if t.start[0] == line and t.type == tokenize.COMMENT]
            text = trailing[0] if trailing else " ".join(above)
            if text:
                out[tok.string] = text
            above = []
        elif tok.type == tokenize.NAME and tok.start[1] == body_col:
            above = []  # a method or another statement: comments above it are not a field's
        i += 1
    return out


def estimate(plan: Sequence[Any], out: Path, workers: int = 1) -> dict[str, Any]:
    """How much of ``plan`` is stored in ``out`` and how long the rest should take to train.

    The estimate is measured, not modelled: a missing run costs the mean ``wall_s`` of the stored
    runs of its own configuration (other seeds) when there are any, else the median ``wall_s`` of
    every stored run in ``out``; the sum is divided by ``min(workers, configurations left)``.
    Probes, computations and the analysis are not included. ``seconds`` is None when ``out`` holds
    no measured run."""
    import statistics

    from overparam.config import config_id
    from overparam.store import RunStore

    planned = [(p.config, s) for p in plan for s in p.seeds]
    info: dict[str, Any] = {"configurations": len(plan), "runs": len(planned), "stored": 0,
                            "measured": 0, "seconds": None, "missing": len(planned)}
    path = Path(out) / "runs.sqlite"
    if not path.is_file():
        return info
    with RunStore(path) as store:
        ids = {run_id(c, s): (c, s) for c, s in planned}
        done = store.finished(ids)
        walls: dict[str, list[float]] = {}
        for r in store.runs():
            w = r["result"].get("wall_s")
            if isinstance(w, (int, float)) and w >= 0:
                walls.setdefault(r["config_id"], []).append(float(w))
    every = [w for ws in walls.values() for w in ws]
    missing = [c for rid, (c, _) in ids.items() if rid not in done]
    info.update(stored=len(done), measured=len(every), missing=len(missing))
    if every:
        typical = statistics.median(every)
        cost = [statistics.fmean(walls[cid]) if (cid := config_id(c)) in walls else typical
                for c in missing]
        lanes = max(1, min(workers, len({config_id(c) for c in missing})))
        info["seconds"] = sum(cost) / lanes
    return info
