"""``overparam reproduce``: every registered study at one preset, one combined report.

This module sits above the studies: it runs them (each resumable through the shared store),
joins their verdicts and the numbers they expose (``StudyReport.facts``) into the blueprint's
joint discussion (section VI-F), and renders ``report.md`` and a self-contained ``report.html``
with :mod:`overparam.report`. ``overparam report`` rebuilds the same files from the store alone.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


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


JOINT = (
    ("sharpness", "batch_sharpness_accuracy", "batch size -> sharpness -> generalization"),
    ("double_descent", "dd_flatness", "double descent <-> flatness"),
    ("ntk_width", "movement_width", "width -> movement (the NTK regime)"),
    ("ntk_width", "kernel_movement_width", "width -> kernel movement (the NTK regime)"),
    ("lottery", "ticket_matches_dense", "sparse tickets"),
    ("lottery", "ticket_beats_reinit", "tickets need their initialization"),
)


def joint_discussion(verdicts: list[Any]) -> list[str]:
    """The blueprint's discussion (section VI-F) as measured: how the mechanisms connect, each
    link the verdict its study decided (in this report's Holm family)."""
    lines = ["## Joint discussion: how the mechanisms connect", ""]
    by_id = {(v.study, v.claim_id): v for v in verdicts}
    for study, claim_id, heading in JOINT:
        v = by_id.get((study, claim_id))
        if v is not None:
            lines.append(f"- {heading}: " + v.line()[2:])
    if len(lines) == 2:
        lines.append("No study produced the numbers this section joins.")
    return lines + [""]


def verdict_counts(verdicts: Sequence[Any]) -> str:
    """``"3 SUPPORTED, 1 NOT SUPPORTED, 2 INCONCLUSIVE"`` for decided verdicts or their
    ``verdicts.json`` records (``"no claims"`` when there are none)."""
    from overparam.studies.verdicts import MARKS

    marks = [v["verdict"] if isinstance(v, Mapping) else v.mark for v in verdicts]
    if not marks:
        return "no claims"
    return ", ".join(f"{marks.count(m)} {m}" for m in MARKS.values())


def write_reproduce_report(out: Path, preset: str, studies: Mapping[str, Any],
                           overrides: Mapping[str, list[str]] | None = None,
                           device: str = "cpu", show_progress: bool = False,
                           executor: Any = None) -> Path:
    """Run every registered study at ``preset`` into ``out``; write ``out/report.md`` and a
    self-contained ``out/report.html``. Finished runs are read from the store, so a second call
    only rewrites the reports. With ``show_progress``, stderr gets ``study k/N: NAME`` before
    each study and ``NAME: 3 SUPPORTED, 1 NOT SUPPORTED, 2 INCONCLUSIVE in 85 s`` after it (the
    study's own Holm family; the combined report adjusts over all claims together).

    With a pool of two or more workers, the studies that train nothing (closed forms and exact
    labs, computed in one process) run *beside* the others, one after another in a second
    process at the lowest CPU priority (``nice 19``): they take the cycles the training studies
    leave idle (single-process phases, the tail of a stage) and delay them hardly at all. They
    write only their computed results; SQLite serializes the two writers. Their numbers do not
    depend on where they ran (each is a deterministic computation, cached by its settings)."""
    from overparam.progress import duration, note
    from overparam.studies.runner import run_study

    out.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    t0 = time.perf_counter()
    beside = ({n: c for n, c in studies.items() if trains_nothing(c, preset, overrides.get(n, []))}
              if getattr(executor, "workers", 1) >= 2 else {})
    in_turn = {n: c for n, c in studies.items() if n not in beside}
    reports: dict[str, Any] = {}
    lane = BesideLane(out, preset, overrides, device, beside) if beside else None
    if lane is not None:
        note(f"beside the others, at low CPU priority (they train nothing): {', '.join(beside)}",
             show_progress)

    def summary(name: str, tag: str = "") -> None:
        note(f"{name}: {verdict_counts(reports[name].verdicts)} in "
             f"{duration(reports[name].wall_s or 0.0)}{tag}", show_progress)

    try:
        for k, (name, cls) in enumerate(in_turn.items(), 1):
            note(f"study {k}/{len(in_turn)}: {name}", show_progress)
            reports[name], _ = run_study(cls(), preset, overrides.get(name, []), out, device,
                                         show_progress=show_progress, executor=executor)
            summary(name)
            for done in (lane.finished() if lane is not None else []):
                reports[done[0]] = done[1]
                summary(done[0], " (beside)")
        for name, report in (lane.rest() if lane is not None else []):
            reports[name] = report
            summary(name, " (beside)")
    except BaseException:
        if lane is not None:  # do not wait for the beside study under way
            lane.close(wait=False)
        raise
    if lane is not None:
        lane.close()
    ordered = {name: reports[name] for name in studies}
    return write_combined_report(out, preset, ordered, time.perf_counter() - t0)


def trains_nothing(cls: type, preset: str, overrides: Sequence[str]) -> bool:
    """Whether a study plans no training run at these settings (it only computes)."""
    study = cls()
    return not study.plan(study.config(preset, overrides))


def _lowest_priority() -> None:
    """A beside worker's start: nice 19 and one torch thread."""
    import os

    from overparam.runtime import configure_process

    try:
        os.nice(19)
    except OSError:  # not permitted here: it only runs at normal priority
        pass
    configure_process()


def run_beside(path: str, preset: str, overrides: list[str], out: str, device: str) -> Any:
    """Run the study class at ``path`` (``"module:Class"``) in this (beside) process."""
    import importlib

    from overparam.studies.runner import run_study

    module, attr = path.split(":")
    cls = getattr(importlib.import_module(module), attr)
    report, _ = run_study(cls(), preset, overrides, Path(out), device)
    return report


class BesideLane:
    """Studies run one after another in a second process at the lowest CPU priority."""

    def __init__(self, out: Path, preset: str, overrides: Mapping[str, list[str]],
                 device: str, studies: Mapping[str, type]):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                                        initializer=_lowest_priority)
        self.futures = [(name, self.pool.submit(
            run_beside, f"{cls.__module__}:{cls.__qualname__}", preset,
            list(overrides.get(name, [])), str(out), device)) for name, cls in studies.items()]

    def finished(self) -> list[tuple[str, Any]]:
        """The studies finished since the last call, in order (a study's error is raised)."""
        out = []
        while self.futures and self.futures[0][1].done():
            name, future = self.futures.pop(0)
            out.append((name, future.result()))
        return out

    def rest(self) -> list[tuple[str, Any]]:
        """Wait for the remaining studies, in order."""
        out = []
        while self.futures:
            name, future = self.futures.pop(0)
            out.append((name, future.result()))
        return out

    def close(self, wait: bool = True) -> None:
        for _, future in self.futures:
            future.cancel()
        self.pool.shutdown(wait=wait, cancel_futures=True)


def write_combined_report(out: Path, preset: str, reports: Mapping[str, Any],
                          wall_s: float | None = None) -> Path:
    """``out/report.md`` and the self-contained ``out/report.html`` joining study reports.

    The total wall time is kept in ``out/reproduce.json`` so that a rebuild (``overparam
    report``, ``wall_s`` None) still shows the time measured; each study's own settings and wall
    time come with its report (``out/<study>/settings.json``, see
    :func:`overparam.studies.runner.record_settings`)."""
    from overparam.report.html import combined_page
    from overparam.studies.verdicts import claims_table, finalize, write_verdicts

    wall_s = total_wall_time(out, wall_s)
    sections = [r.markdown().replace("](", f"]({name}/") for name, r in reports.items()]
    # one family: every verdict of this report, Holm-adjusted together
    verdicts = finalize([v for r in reports.values() for v in r.verdicts])
    title = combined_title(preset, reports)
    lines = [f"# {title}", ""]
    if wall_s is not None:
        lines += [f"Total wall time {wall_s:.1f} s (studies whose runs were already stored only "
                  "re-analyze).", ""]
    lines += ["Every claim below: the source paper's figure, ours with its 95% t interval, the "
              "test, its p and the p adjusted by Holm's method over all "
              f"{sum(v.p_adj is not None for v in verdicts)} tested claims of this report, the "
              "verdict, and what was controlled. A claim whose arms missed their training "
              "targets is INCONCLUSIVE. Each study's section below adjusts over its own claims "
              "only.", "", claims_table(verdicts, "Claims").markdown(), "## Settings", ""]
    lines += [f"- {name}: {r.settings_label()}; wall time "
              + (f"{r.wall_s:.1f} s" if r.wall_s is not None else "not recorded")
              for name, r in reports.items()] + ["", "## Verdicts", ""]
    for name, report in reports.items():
        took = f" ({report.wall_s:.1f} s)" if report.wall_s is not None else ""
        lines.append(f"### {name}{took}")
        lines += [v.line() for v in verdicts if v.study == name] + [""]
    lines += joint_discussion(verdicts)
    env = environment()
    lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()] + [""]
    text = "\n".join(lines) + "\n" + "\n".join(sections)
    path = out / "report.md"
    path.write_text(text)
    write_verdicts(out / "verdicts.json", verdicts)
    by_id = {(v.study, v.claim_id): v for v in verdicts}
    joint = [(h, by_id[(s, c)]) for s, c, h in JOINT if (s, c) in by_id]
    (out / "report.html").write_text(combined_page(
        out, title, reports, verdicts, {n: study_about(n) for n in reports}, joint, wall_s, env))
    return path


def combined_title(preset: str, reports: Mapping[str, Any]) -> str:
    """``overparam reproduce (quick preset)``; never says only "preset" when a study ran with
    ``--set`` overrides."""
    changed = [n for n, r in reports.items() if getattr(r, "overrides", ())]
    if not changed:
        return f"overparam reproduce ({preset} preset)"
    return (f"overparam reproduce ({preset} preset with overrides in "
            + ", ".join(changed) + ")")


def total_wall_time(out: Path, wall_s: float | None) -> float | None:
    """Record a measured total in ``out/reproduce.json``; with None, read the recorded one."""
    import json

    path = Path(out) / "reproduce.json"
    if wall_s is not None:
        path.write_text(json.dumps({"wall_s": wall_s}) + "\n")
        return wall_s
    try:
        got = json.loads(path.read_text()).get("wall_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(got) if isinstance(got, (int, float)) else None


def study_about(name: str) -> str:
    """What a registered study tests: its module docstring's first paragraph and question."""
    import importlib

    from overparam.report.html import study_summary
    from overparam.studies import REGISTRY

    if name not in REGISTRY:
        return ""
    try:
        module = importlib.import_module(REGISTRY[name].split(":")[0])
    except ImportError:
        return ""
    return study_summary(module.__doc__)
