"""Matplotlib helpers (Agg backend): lines with confidence bands, saved as PNG and SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def figure(width: float = 6.0, height: float = 4.0, ncols: int = 1):  # noqa: ANN201
    """A figure and its axes (a tuple of ``ncols`` axes side by side when ``ncols > 1``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height))
    for ax in (axes if ncols > 1 else [axes]):
        ax.grid(True, alpha=0.3)
    return fig, axes


def band(ax, x: Sequence[float], mean: Sequence[float], lo: Sequence[float],  # noqa: ANN001
         hi: Sequence[float], label: str, color: str | None = None, marker: str = "o") -> None:
    """A mean line with a shaded confidence band."""
    (line,) = ax.plot(x, mean, marker=marker, ms=4, label=label, color=color)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def tick_label(value: float) -> str:
    """A log-axis tick label: plain digits from 0.0001 to 999,999 (``0.02``, ``300``, ``20,000``), else a
    power of ten with one significant digit (``2×10⁻⁵``), never a sum of both."""
    import math

    if value <= 0 or not math.isfinite(value):
        return ""
    if 1e4 <= value < 1e6 and value == round(value):
        return f"{int(round(value)):,}"
    if 1e-4 <= value < 1e4:
        return f"{value:g}"
    exp = math.floor(math.log10(value) + 1e-9)
    mant = round(value / 10 ** exp, 1)
    head = "" if mant == 1 else f"{mant:g}\\times"
    return f"${head}10^{{{exp}}}$"


def tidy_log_ticks(ax) -> None:  # noqa: ANN001
    """Log axes that span less than 2.5 decades get labelled ticks at 1, 2 and 5 of each
    decade (and 3 below one decade) in plain digits (matplotlib labels every minor tick there in scientific notation,
    labels that overlap); wider ones keep one label per decade and unlabelled minor ticks."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or isinstance(axis.get_major_locator(), FixedLocator):
            continue  # not log, or ticks the figure placed itself
        lo, hi = sorted(limits)
        if lo <= 0 or not math.isfinite(hi):
            continue
        axis.set_minor_formatter(NullFormatter())
        decades = math.log10(hi / lo)
        if decades < 2.5:
            subs = (1.0, 2.0, 5.0) if decades >= 1 else (1.0, 2.0, 3.0, 5.0)
            axis.set_major_locator(LogLocator(base=10, subs=subs))
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: tick_label(v)))


def save(fig, directory: Path, stem: str) -> Path:  # noqa: ANN001
    """Save ``stem.png`` (150 dpi) and ``stem.svg``; returns the PNG path."""
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    for ax in fig.axes:
        tidy_log_ticks(ax)
    fig.tight_layout()
    png = directory / f"{stem}.png"
    fig.savefig(png, dpi=150)
    fig.savefig(directory / f"{stem}.svg")
    plt.close(fig)
    return png
