"""Verdicts a referee can check: each claim with its test, its arms' training targets, Holm.

A :class:`Verdict` is decided by :func:`finalize`, never by the study alone:

* an arm that missed its training target (:class:`Arm`) makes it INCONCLUSIVE, naming the arm
  and by how much -- a comparison with an untrained arm is no evidence either way;
* a claim with a test and no p (both arms constant) is INCONCLUSIVE;
* the p-values of one report's verdicts are adjusted together by Holm's step-down method
  (strong family-wise control at ``ALPHA``) and the adjusted p decides: a difference claim is
  SUPPORTED when its direction holds (``criteria``) and adjusted p < ALPHA, NOT SUPPORTED
  otherwise; an equivalence claim ("comparable", "matches"; TOST with a stated margin) is
  SUPPORTED when equivalence is shown, NOT SUPPORTED when the (1 - 2 ALPHA) interval of the
  difference lies wholly outside the margin, INCONCLUSIVE in between (too few seeds to tell);
* a claim without a test (a closed form, a deterministic check) is decided by ``criteria``.

A claim with several conditions that must all hold is tested as an intersection-union test:
its p is the largest of the conditions' p-values (Berger 1982).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from overparam.stats import holm, summarize, tost, welch

ALPHA = 0.05
MARKS = {True: "SUPPORTED", False: "NOT SUPPORTED", None: "INCONCLUSIVE"}


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison and whether it met its training target."""

    name: str
    target: str
    met: bool
    achieved: str

    def text(self) -> str:
        return f"{self.name}: {self.achieved} (target {self.target})"


def acc_arm(name: str, train_acc: Sequence[float], target: float = 0.99) -> Arm:
    """Every seed's final training accuracy must reach ``target``."""
    low = min(train_acc)
    short = "" if low >= target else f", {100 * (target - low):.1f} pp short"
    return Arm(name, f"train acc >= {100 * target:g}%", low >= target,
               f"lowest seed {100 * low:.2f}%{short}")


def loss_arm(name: str, met: Sequence[bool], losses: Sequence[float], target: float) -> Arm:
    """Every seed stopped at (or below) the training-loss target within its budget."""
    worst = max(losses)
    short = "" if all(met) else f", {sum(not m for m in met)} seed(s) never reached it"
    return Arm(name, f"train loss <= {target:g}", all(met),
               f"highest seed {worst:.4g}{short}")


def budget_arm(name: str, note: str) -> Arm:
    """An arm with no accuracy target (e.g. under-parameterized by design): a fixed budget."""
    return Arm(name, "the protocol's budget", True, note)


@dataclass
class Verdict:
    """One claim, its statistic and test, its arms; ``supported`` is set by :func:`finalize`."""

    claim: str
    statistic: str
    criteria: bool | None = None
    p: float | None = None
    test: str = ""
    claim_id: str = ""
    blueprint: str = ""
    ours: str = ""
    effect: float | None = None
    arms: tuple[Arm, ...] = ()
    controls: str = ""
    equivalence: bool = False
    outside: bool = False  # equivalence claims: the interval lies wholly outside the margin
    p_adj: float | None = None
    supported: bool | None = None
    study: str = ""
    reason: str = ""

    @property
    def missed(self) -> list[Arm]:
        return [a for a in self.arms if not a.met]

    @property
    def tested(self) -> bool:
        return bool(self.test) and self.p is not None and not self.missed

    def decide(self) -> None:
        if self.missed:
            self.supported = None
            self.reason = "targets or controls not met: " + "; ".join(
                a.text() for a in self.missed)
        elif self.test and self.p is None:
            self.supported, self.reason = None, "no test possible (both arms constant)"
        elif not self.test or self.p is None:
            self.supported = self.criteria
        elif self.equivalence:
            shown = self.p_adj is not None and self.p_adj < ALPHA
            self.supported = True if shown else (False if self.outside else None)
            if self.supported is None:
                self.reason = "equivalence not shown: the interval straddles the margin"
        else:
            self.supported = bool(self.criteria) and self.p_adj is not None and \
                self.p_adj < ALPHA

    @property
    def mark(self) -> str:
        return MARKS[self.supported]

    def p_text(self) -> str:
        if not self.test:
            return ""
        if self.p is None:
            return "no p"
        adj = f", Holm-adjusted p={self.p_adj:.3g}" if self.p_adj is not None else ""
        return f"p={self.p:.3g}{adj}"

    def line(self) -> str:
        extra = "; ".join(x for x in (self.p_text(), self.reason) if x)
        return (f"- **{self.mark}** — {self.claim}: {self.statistic}"
                + (f" [{extra}]" if extra else ""))

    def record(self) -> dict[str, Any]:
        """One object of ``verdicts.json``."""
        return {"study": self.study, "claim_id": self.claim_id, "claim": self.claim,
                "verdict": self.mark, "statistic": self.statistic, "test": self.test,
                "p": _num(self.p), "p_adjusted": _num(self.p_adj), "effect_size": _num(self.effect),
                "ours": self.ours, "blueprint": self.blueprint, "controls": self.controls,
                "reason": self.reason,
                "arms": [{"name": a.name, "target": a.target, "met": a.met,
                          "achieved": a.achieved} for a in self.arms]}


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def finalize(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Holm-adjust the p-values of the verdicts that have a test (and whose arms met their
    targets) as one family, then decide every verdict. Returns decided copies."""
    out = [replace(v) for v in verdicts]
    tested = [v for v in out if v.tested]
    for v, adj in zip(tested, holm([v.p for v in tested]) if tested else []):
        v.p_adj = adj
    for v in out:
        if not v.tested:
            v.p_adj = None
        v.decide()
    return out


# -- tests as text -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """A two-sample comparison, with the text a report shows."""

    text: str
    p: float | None
    diff: float
    effect: float
    outside: bool = False
    ours: str = ""  # the difference with its 95% Welch interval, for the claims table
    extra: dict[str, Any] = field(default_factory=dict)


def _diff_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Welch interval of ``mean(a) - mean(b)`` (a point when both groups are constant)."""
    import numpy as np
    from scipy import stats as sps

    x, y = np.asarray(a, float), np.asarray(b, float)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    d = float(x.mean() - y.mean())
    if va + vb == 0:
        return d, d
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(sps.t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb)
    return d - half, d + half


def _ours(a: Sequence[float], b: Sequence[float], diff: float, scale: float, unit: str) -> str:
    lo, hi = _diff_ci(a, b)
    return f"{diff * scale:+.3g} [{lo * scale:+.3g}, {hi * scale:+.3g}] {unit}".rstrip()


def welch_test(a: Sequence[float], b: Sequence[float], scale: float = 100.0, unit: str = "pp"
               ) -> Comparison:
    """Welch's test of ``mean(a) - mean(b)``: difference, t, df, p and Hedges' g as text."""
    w = welch(a, b)
    p = "no p (both arms constant)" if w.p is None else f"p={w.p:.3g}"
    return Comparison(f"diff {w.mean_diff * scale:+.2f} {unit}, Welch t={w.t:.2f}, "
                      f"df={w.df:.1f}, {p}, g={w.effect_size:.2f}".replace("  ", " "),
                      w.p, w.mean_diff, w.effect_size, ours=_ours(a, b, w.mean_diff, scale, unit))


def tost_test(a: Sequence[float], b: Sequence[float], margin: float, scale: float = 100.0,
              unit: str = "pp") -> Comparison:
    """TOST equivalence of ``mean(a)`` and ``mean(b)`` within ``margin`` as text."""
    t = tost(a, b, margin, alpha=ALPHA)
    g = welch(a, b).effect_size
    lo, hi = t.ci
    outside = lo >= margin or hi <= -margin
    p = "no p (both arms constant)" if t.p is None else f"TOST p={t.p:.3g}"
    return Comparison(f"diff {t.mean_diff * scale:+.2f} {unit}, {100 * (1 - 2 * ALPHA):.0f}% CI "
                      f"[{lo * scale:+.2f}, {hi * scale:+.2f}] vs margin ±{margin * scale:g} {unit}, "
                      f"{p}", t.p, t.mean_diff, g, outside,
                      ours=_ours(a, b, t.mean_diff, scale, unit))


def mean_ci(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """``mean [lo, hi]`` (95% t interval) for the claims table."""
    s = summarize(values)
    return (f"{s.mean * scale:.{digits}f} [{s.ci_low * scale:.{digits}f}, "
            f"{s.ci_high * scale:.{digits}f}]")


def claims_table(verdicts: Sequence[Verdict], title: str = "Claims") -> Any:
    """One row per claim: the blueprint's figure, ours with its 95% interval, the test and its
    raw and Holm-adjusted p, the verdict, and what was controlled (targets met, matched loss)."""
    from overparam.report.tables import Table

    rows = []
    for v in verdicts:
        controls = "; ".join(x for x in (
            ("targets met" if not v.missed else "target missed: " + ", ".join(
                a.name for a in v.missed)) if v.arms else "", v.controls) if x)
        rows.append({"study": v.study, "claim": v.claim, "blueprint": v.blueprint or "",
                     "ours [95% CI]": v.ours, "test": v.test,
                     "p": "" if v.p is None else f"{v.p:.3g}",
                     "Holm p": "" if v.p_adj is None else f"{v.p_adj:.3g}",
                     "verdict": f"**{v.mark}**", "controls": controls})
    return Table(title, ["study", "claim", "blueprint", "ours [95% CI]", "test", "p", "Holm p",
                         "verdict", "controls"], rows)


def write_verdicts(path: Any, verdicts: Sequence[Verdict]) -> None:
    """``verdicts.json``: one object per claim, for diffing results across versions."""
    import json
    from pathlib import Path

    Path(path).write_text(json.dumps([v.record() for v in verdicts], indent=1, sort_keys=True)
                          + "\n")
