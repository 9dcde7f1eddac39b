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


def save(fig, directory: Path, stem: str) -> Path:  # noqa: ANN001
    """Save ``stem.png`` (150 dpi) and ``stem.svg``; returns the PNG path."""
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    png = directory / f"{stem}.png"
    fig.savefig(png, dpi=150)
    fig.savefig(directory / f"{stem}.svg")
    plt.close(fig)
    return png
