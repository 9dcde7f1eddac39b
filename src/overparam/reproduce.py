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
from collections.abc import Mapping
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


def joint_discussion(reports: dict[str, Any]) -> list[str]:
    """The blueprint's discussion (section VI-F) as measured: how the mechanisms connect."""
    lines = ["## Joint discussion: how the mechanisms connect", ""]
    sh = reports.get("sharpness")
    if sh is not None and "sh_rho_batch_lambda" in sh.facts:
        f = sh.facts
        chain = f["sh_supported"]  # the sharpness study's own verdict on this chain
        lines.append(
            f"- **{'SUPPORTED' if chain else 'NOT SUPPORTED'}** — batch size -> sharpness -> "
            f"generalization (contributions 2-3): over {f['sh_runs']} SGD runs Spearman "
            f"rho(batch, lambda_max)={f['sh_rho_batch_lambda']:.2f} (p={f['sh_p_batch_lambda']:.2g}) "
            f"and rho(lambda_max, test acc)={f['sh_rho_lambda_acc']:.2f} "
            f"(p={f['sh_p_lambda_acc']:.2g}); small vs large batch lambda_max "
            f"{f['sh_lambda_small']:.3g} vs {f['sh_lambda_large']:.3g}, test acc "
            f"{100 * f['sh_acc_small']:.2f}% vs {100 * f['sh_acc_large']:.2f}%.")
    dd = reports.get("double_descent")
    if dd is not None and "dd_rho_params_lambda" in dd.facts:
        f = dd.facts
        ok = (f["dd_rho_params_lambda"] < 0 and f["dd_p_params_lambda"] < 0.05
              and f["dd_rho_lambda_error"] > 0 and f["dd_p_lambda_error"] < 0.05)
        lines.append(
            f"- **{'SUPPORTED' if ok else 'NOT SUPPORTED'}** — double descent <-> flatness "
            f"(contribution 4: past the interpolation threshold larger models find flatter "
            f"minima that generalize better): over the {f['dd_runs_beyond']} runs from width "
            f"{f['dd_threshold_width']} on, Spearman rho(parameters, lambda_max)="
            f"{f['dd_rho_params_lambda']:.2f} (p={f['dd_p_params_lambda']:.2g}), "
            f"rho(lambda_max, test error)={f['dd_rho_lambda_error']:.2f} "
            f"(p={f['dd_p_lambda_error']:.2g}).")
    nt = reports.get("ntk_width")
    if nt is not None and "ntk_slope" in nt.facts:
        f = nt.facts
        ok = f["ntk_supported"]  # the ntk_width study's own verdict
        lines.append(
            f"- **{'SUPPORTED' if ok else 'NOT SUPPORTED'}** — width -> movement (the NTK "
            f"regime): relative parameter movement scales as width^{f['ntk_slope']:.2f} "
            f"[95% CI {f['ntk_lo']:.2f}, {f['ntk_hi']:.2f}] over widths {f['ntk_widths']} "
            f"(theory -0.5).")
    lt = reports.get("lottery")
    if lt is not None:
        lines += [v.line() for v in lt.verdicts]
    if len(lines) == 2:
        lines.append("No study produced the numbers this section joins.")
    return lines + [""]


def write_reproduce_report(out: Path, preset: str, studies: Mapping[str, Any],
                           overrides: Mapping[str, list[str]] | None = None,
                           device: str = "cpu", show_progress: bool = False,
                           executor: Any = None) -> Path:
    """Run every registered study at ``preset`` into ``out``; write ``out/report.md`` and a
    self-contained ``out/report.html``. Finished runs are read from the store, so a second call
    only rewrites the reports."""
    from overparam.studies.runner import run_study

    out.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    t0 = time.perf_counter()
    reports = {}
    for name, cls in studies.items():
        reports[name], _ = run_study(cls(), preset, overrides.get(name, []), out, device,
                                     show_progress=show_progress, executor=executor)
    return write_combined_report(out, preset, reports, time.perf_counter() - t0)


def write_combined_report(out: Path, preset: str, reports: Mapping[str, Any],
                          wall_s: float | None = None) -> Path:
    """``out/report.md`` and the self-contained ``out/report.html`` joining study reports."""
    from overparam.report.html import markdown_to_html

    sections = [r.markdown().replace("](", f"]({name}/") for name, r in reports.items()]
    lines = [f"# overparam reproduce ({preset} preset)", ""]
    if wall_s is not None:
        lines += [f"Total wall time {wall_s:.1f} s (studies whose runs were already stored only "
                  "re-analyze).", ""]
    lines += ["## Verdicts", ""]
    for name, report in reports.items():
        took = f" ({report.wall_s:.1f} s)" if report.wall_s is not None else ""
        lines.append(f"### {name}{took}")
        lines += [v.line() for v in report.verdicts] + [""]
    lines += joint_discussion(dict(reports))
    lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in environment().items()] + [""]
    text = "\n".join(lines) + "\n" + "\n".join(sections)
    path = out / "report.md"
    path.write_text(text)
    (out / "report.html").write_text(markdown_to_html(text, out, f"overparam reproduce ({preset})"))
    return path
