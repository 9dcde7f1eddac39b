"""Matplotlib helpers (Agg backend): lines with confidence bands, saved as PNG and SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def figure(width: float = 6.0, height: float = 4.0):  # noqa: ANN201
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(True, alpha=0.3)
    return fig, ax


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
