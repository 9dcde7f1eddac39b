"""Shared pieces of the blueprint studies: summaries over seeds, Welch verdict strings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from overparam.stats import Summary, summarize, welch


def summary_of(results: Sequence[dict[str, Any]], key: str) -> Summary:
    return summarize([r["result"][key] for r in results])


def pct(s: Summary) -> str:
    """``mean ± std [lo, hi]`` in percent."""
    return s.fmt(100)


def welch_str(a: Sequence[float], b: Sequence[float], scale: float = 100.0, unit: str = "pp"
              ) -> tuple[str, float]:
    """Difference of means, Welch t, df and p as text; and p."""
    w = welch(a, b)
    return (f"diff {w.mean_diff * scale:+.2f} {unit}, Welch t={w.t:.2f}, df={w.df:.1f}, "
            f"p={w.p:.3g}, g={w.effect_size:.2f}", w.p)


def errors(results: Sequence[dict[str, Any]], key: str = "test_acc") -> list[float]:
    return [1.0 - r["result"][key] for r in results]
