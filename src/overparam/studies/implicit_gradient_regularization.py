"""Implicit gradient regularization: gradient descent follows a modified flow that penalizes the
gradient norm (Barrett & Dherin 2021, "Implicit gradient regularization", arXiv:2009.11162).

Question: gradient descent with step h follows, to O(h^2), the flow of the modified loss
``E~ = E + (h / 4) ||grad E||^2`` (backward error analysis, their Thm 3.1), so larger steps
penalize the gradient norm more, find flatter minima and -- their Sec. 5-6 -- generalize better;
does that hold, and does adding the term explicitly to a small-h run reproduce the effect?

(a) Exact lab, the two-parameter model ``E(a, b) = 1/2 (y - a b x)^2`` (their Sec. 3,
:mod:`overparam.theory.modified_flow`), over a grid of initial points (the unit of
replication): GD with ``h = T / k`` against the gradient flow and the modified flow integrated
by scipy's DOP853 at ``rtol = 1e-12``; the log-log slopes of the errors at fixed time T (claimed 2
and 1) and after one step (3 and 2), each an equivalence claim (TOST of the mean slope over the
grid, margin ``order_margin``); GD run to convergence at a ladder of h ends at flatter minima
(smaller ``|a - b|`` and Hessian trace ``x^2 (a^2 + b^2)``) at every initial point; and the exact
quadratic identity (GD is the flow of ``-ln(1 - h lambda) / h``).
(b) MNIST-1D, full-batch GD (no momentum, constant step) on ``model`` at several stable h,
all trained for the same time ``T = h * steps`` (the paper's comparison: the flow time, not the
step count, is held fixed). R_IG ``= ||grad E||^2 / P`` (P parameters) is logged at every step
by the gradient-penalty intervention at ``lam = 0`` (a measurement only: the penalty enters the
loss multiplied by zero) and averaged over the trajectory. Claims: R_IG is smaller at the
largest h than at the smallest (Welch on log10), test accuracy is higher (Welch), and an
explicit regularizer -- the smallest h plus ``mu ||grad E||^2`` with ``mu = h_large / 4`` by
double backpropagation (:class:`~overparam.train.interventions.GradPenalty`) -- recovers most
of the gap: its test accuracy lies above the midpoint of the two GD arms (a one-sided Welch test
of the contrast), reported as the fraction of the gap recovered with Fieller's 95% interval.
Every trained arm must reach ``target_acc`` training accuracy within its time budget.

Quick preset: ``n_train`` = 1,000 MNIST-1D samples (a subset, so that full-batch steps are
cheap enough for the small-h arms' thousands of steps on a CPU), ``mlp_w64`` (3 hidden layers,
11,594 parameters), h = 0.1, 0.2, 0.4 and T = 250 (2,500, 1,250 and 625 steps). The time: in
pilots (3 seeds) GD reached 99% training accuracy at t = 150-165 with h = 0.2 and at t = 225-235
with h = 0.8 -- at the edge of stability larger steps make *less* progress per unit of time --
and the explicit arm trains slower than plain GD, so T leaves every arm room to meet its
target. The largest h is 0.4, not 0.8: with h = 0.2 and mu = 0.2, GD on the penalized loss
diverged for one seed in a pilot (the penalty multiplies the curvature that GD must keep under
2/h by about 1 + 2 mu lambda_max), so the explicit arm runs at h = 0.1, mu = 0.1. The table also
shows R_IG where each run's training loss first reaches ``match_loss`` (descriptive: at the edge
of stability that single step is noisy). 5 seeds; about 3 minutes of one CPU core, most of it
the double backpropagation that logs R_IG and trains the explicit arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.errors import ConfigError
from overparam.stats import summarize, tost
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import acc_arm, welch_test


@dataclass(frozen=True)
class IGRConfig(Training):
    # (a) the two-parameter model E(a, b) = 1/2 (y - a b x)^2
    a0s: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    b0s: tuple[float, ...] = (0.75, 1.5, 2.5)
    x: float = 1.0
    y: float = 2.0
    horizon: float = 1.0  # T of the error-order runs
    ks: tuple[int, ...] = (32, 64, 128, 256, 512)  # h = horizon / k
    flat_hs: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1)
    order_margin: float = 0.15  # slopes "match" 2 and 1 (3 and 2) within this margin (TOST)
    # (b) full-batch GD on MNIST-1D
    n_train: int = 1000
    seeds: int = 5
    model: str = "mlp_w64"
    hs: tuple[float, ...] = (0.1, 0.2, 0.4)
    time: float = 250.0  # every arm trains for h * steps = time
    mu: float | None = None  # explicit regularizer on the smallest h; None: largest h / 4
    target_acc: float = 0.99
    match_loss: float = 0.1  # R_IG also shown where each run's training loss first reaches this

    def check(self) -> None:
        super().check()
        for name in ("a0s", "b0s", "ks", "flat_hs", "hs"):
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) >= (2 if name != "b0s" else 1)):
                raise ConfigError(name, v, "a tuple of at least two values")
        if sorted(self.hs) != list(self.hs) or len(set(self.hs)) != len(self.hs) or \
                self.hs[0] <= 0:
            raise ConfigError("hs", self.hs, "increasing positive step sizes")
        if sorted(self.flat_hs) != list(self.flat_hs) or self.flat_hs[0] <= 0:
            raise ConfigError("flat_hs", self.flat_hs, "increasing positive step sizes")
        if sorted(self.ks) != list(self.ks) or self.ks[0] < 2:
            raise ConfigError("ks", self.ks, "increasing step counts >= 2")
        for name in ("x", "y", "horizon", "time", "order_margin", "match_loss"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(name, v, "a positive number")
        if any(a == b for a in self.a0s for b in self.b0s):
            raise ConfigError("b0s", self.b0s, "values different from every a0 (a balanced start "
                              "a0 = b0 is already the flattest minimum's direction)")
        if any(v <= 0 for v in (*self.a0s, *self.b0s)):
            raise ConfigError("a0s", self.a0s, "positive initial values (one branch of ab = y/x)")
        worst = max(self.a0s) ** 2 + max(self.b0s) ** 2 + 2 * self.y / self.x
        if self.flat_hs[-1] * self.x ** 2 * worst >= 2:
            raise ConfigError("flat_hs", self.flat_hs, f"steps below 2 / (x^2 (a^2 + b^2)) = "
                              f"{2 / (self.x ** 2 * worst):.3g} (GD stable on the grid)")
        if self.mu is not None and not (isinstance(self.mu, (int, float)) and self.mu > 0):
            raise ConfigError("mu", self.mu, "None (largest h / 4) or a positive number")
        if not 0 < self.target_acc <= 1:
            raise ConfigError("target_acc", self.target_acc, "a fraction in (0, 1]")
        for h in self.hs:
            if round(self.time / h) < 1:
                raise ConfigError("time", self.time, f"at least one step at h={h:g}")

    @property
    def explicit_mu(self) -> float:
        return self.mu if self.mu is not None else self.hs[-1] / 4


PRESETS = {
    "quick": IGRConfig(),
    # Barrett & Dherin's Sec. 5: an MLP on MNIST trained by full-batch GD at a range of
    # learning rates for a fixed time; the width and depth are assumed (5 layers of 400 ReLU
    # units), the time and the steps scaled to a GPU.
    "paper": IGRConfig(data="mnist", n_train=0, model="mlp_w400_d5", hs=(0.025, 0.05, 0.1, 0.2),
                       time=500.0, seeds=5, a0s=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
                       b0s=(0.25, 0.75, 1.25, 1.75, 2.25), ks=(64, 128, 256, 512, 1024),
                       flat_hs=(0.005, 0.01, 0.02, 0.05, 0.1)),
}


# -- statistics: the fraction of a gap closed ------------------------------------------------------
@dataclass(frozen=True)
class GapFraction:
    """``fraction = (mean(treated) - mean(base)) / (mean(target) - mean(base))`` with Fieller's
    interval; ``p_most``: one-sided Welch p of H0 ``mean(treated) <= (mean(base) +
    mean(target)) / 2`` (the treated arm is not past the midpoint of the gap)."""

    fraction: float
    low: float
    high: float
    closed: float
    gap: float
    p_most: float | None
    df: float

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def text(self, scale: float = 100.0) -> str:
        ci = f"[{self.low:.2f}, {self.high:.2f}]" if self.bounded else "[unbounded]"
        return (f"{self.fraction:.2f} {ci} of a {self.gap * scale:+.2f} pp gap "
                f"({self.closed * scale:+.2f} pp closed)")


def gap_fraction(base: Sequence[float], target: Sequence[float], treated: Sequence[float],
                 level: float = 0.95) -> GapFraction:
    """The share of the gap from ``base`` to ``target`` that ``treated`` closes.

    With group means m and variances of the means ``v = s^2 / n`` (independent groups),
    numerator ``N = m_t - m_b`` and denominator ``D = m_g - m_b`` share ``m_b``:
    ``Var N = v_t + v_b``, ``Var D = v_g + v_b``, ``Cov(N, D) = v_b``. Fieller's (1954) interval
    is the set of f where ``|N - f D| <= t sqrt(Var N - 2 f Cov + f^2 Var D)``: the roots of a
    quadratic, bounded when D is significantly non-zero (otherwise the interval is unbounded and
    reported as such). The t quantile takes the Welch-Satterthwaite degrees of freedom of the
    contrast ``m_t - f m_g - (1 - f) m_b`` at the point estimate.
    """
    from scipy import stats as sps

    groups = [np.asarray(v, dtype=np.float64) for v in (base, target, treated)]
    if any(g.size < 2 for g in groups):
        raise ValueError("each group needs at least two values")
    (mb, mg, mt), (vb, vg, vt) = ([g.mean() for g in groups],
                                  [g.var(ddof=1) / g.size for g in groups])
    ns = [g.size for g in groups]
    num, den = mt - mb, mg - mb
    f = num / den if den != 0 else math.nan
    df = _contrast_df([-(1 - f), -f, 1.0] if math.isfinite(f) else [-1.0, 0.0, 1.0],
                      [vb, vg, vt], ns)
    t = float(sps.t.ppf(0.5 + level / 2, df)) if math.isfinite(df) else math.inf
    a = den ** 2 - t ** 2 * (vg + vb)
    b = -2 * (num * den - t ** 2 * vb)
    c = num ** 2 - t ** 2 * (vt + vb)
    disc = b * b - 4 * a * c
    if a > 0 and disc >= 0:
        r = math.sqrt(disc)
        low, high = (-b - r) / (2 * a), (-b + r) / (2 * a)
    else:
        low, high = -math.inf, math.inf
    # one-sided test of the midpoint contrast m_t - (m_b + m_g) / 2 > 0
    var_mid = vt + 0.25 * (vb + vg)
    if var_mid > 0:
        mid = mt - 0.5 * (mb + mg)
        p = float(sps.t.sf(mid / math.sqrt(var_mid),
                           _contrast_df([-0.5, -0.5, 1.0], [vb, vg, vt], ns)))
    else:
        p = None
    return GapFraction(float(f), float(low), float(high), float(num), float(den), p, float(df))


def missed_note(arms: dict[str, tuple[Sequence[int], Sequence[float], Sequence[float]]],
                target: float) -> str | None:
    """A note naming every arm with seeds under the training ``target`` (diverged ones
    included) and the mean test accuracy of its other seeds -- descriptive only: the verdicts
    that use such an arm are INCONCLUSIVE. ``arms``: name -> (seeds, train acc, test acc)."""
    parts = []
    for name, (seeds, train, test) in arms.items():
        bad = [s for s, a in zip(seeds, train) if not a >= target]  # NaN counts as missed
        if bad:
            good = [t for a, t in zip(train, test) if a >= target]
            parts.append(f"{name}: seed(s) {', '.join(map(str, bad))} under "
                         f"{100 * target:g}% training accuracy (lowest "
                         f"{100 * np.nanmin(train):.2f}%)" + (
                             f", its other {len(good)} seeds test at {100 * np.mean(good):.2f}%"
                             if good else ""))
    return None if not parts else (
        "Training targets missed (the verdicts using these arms are INCONCLUSIVE; the numbers "
        "of the other seeds are descriptive only): " + "; ".join(parts) + ".")


def sci(values: Sequence[float]) -> str:
    """``mean ± std [lo, hi]`` (95% t interval) in 3 significant digits, for small numbers."""
    s = summarize(values)
    return f"{s.mean:.3g} ± {s.std:.2g} [{s.ci_low:.3g}, {s.ci_high:.3g}]"


def _contrast_df(coef: Sequence[float], var_means: Sequence[float], ns: Sequence[int]) -> float:
    """Welch-Satterthwaite degrees of freedom of ``sum_i c_i m_i`` (independent means)."""
    terms = [c * c * v for c, v in zip(coef, var_means)]
    denom = sum(t * t / (n - 1) for t, n in zip(terms, ns))
    return sum(terms) ** 2 / denom if denom > 0 else math.inf


# -- verdicts as plain functions -----------------------------------------------------------------
def order_verdict(claim_id: str, claim: str, slopes: dict[str, Sequence[float]],
                  expected: dict[str, float], margin: float, blueprint: str) -> Verdict:
    """Each named slope's mean over the instances equals its expected order within ``margin``
    (one-sample TOST each; the claim's p is the larger, an intersection-union test)."""
    parts, ps, outside, ours = [], [], False, []
    for name, want in expected.items():
        vals = np.asarray(slopes[name], dtype=np.float64)
        t = tost(vals, [want, want], margin)
        s = summarize(vals)
        lo, hi = t.ci
        outside = outside or lo >= margin or hi <= -margin  # ci: of mean slope - want
        ps.append(t.p)
        parts.append(f"{name.replace('_', ' ')}: slope {s.mean:.3f} ± {s.std:.3f} "
                     f"(90% CI [{lo + want:.3f}, {hi + want:.3f}]) vs {want:g} ± {margin:g}")
        ours.append(f"{s.mean:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]")
    p = None if any(v is None for v in ps) else max(ps)
    return Verdict(claim, "; ".join(parts) + f" over {len(vals)} initial points",
                   p=p, test="TOST per slope (IUT)", claim_id=claim_id, equivalence=True,
                   outside=outside, blueprint=blueprint, ours=" / ".join(ours),
                   controls="exact flows (DOP853, rtol 1e-12)")


def flatness_verdict(hs: Sequence[float], imbalance: np.ndarray, trace: np.ndarray) -> Verdict:
    """At every initial point (rows), GD's end point is strictly more balanced (|a - b|) and
    flatter (Hessian trace) at each larger h (columns; column 0: the gradient flow, h -> 0)."""
    dec_i = np.all(np.diff(imbalance, axis=1) < 0, axis=1)
    dec_t = np.all(np.diff(trace, axis=1) < 0, axis=1)
    ok = bool(dec_i.all() and dec_t.all())
    drop = 1 - trace[:, -1] / trace[:, 0]
    s = summarize(drop)
    bal = summarize(1 - imbalance[:, -1] / imbalance[:, 0])
    return Verdict(
        "two-parameter model: larger h ends at a flatter minimum (smaller abs(a - b), smaller "
        "Hessian trace) from every initial point",
        f"strictly decreasing along flow, h = {', '.join(f'{h:g}' for h in hs)} at "
        f"{int((dec_i & dec_t).sum())} of {len(dec_i)} initial points; trace at h={hs[-1]:g} "
        f"{100 * s.mean:.2f}% below the flow's (mean, 95% CI [{100 * s.ci_low:.2f}, "
        f"{100 * s.ci_high:.2f}]), abs(a - b) {100 * bal.mean:.1f}% below ([{100 * bal.ci_low:.1f}, "
        f"{100 * bal.ci_high:.1f}])", criteria=ok, claim_id="larger_h_flatter",
        blueprint="Barrett & Dherin Fig. 1: larger h, flatter minimum nearer a = b",
        ours=f"trace {100 * s.mean:.2f}% lower [{100 * s.ci_low:.2f}, {100 * s.ci_high:.2f}], "
        f"abs(a - b) {100 * bal.mean:.1f}% lower [{100 * bal.ci_low:.1f}, "
        f"{100 * bal.ci_high:.1f}]",
        controls="deterministic, every initial point")


def quadratic_verdict(max_rel: float) -> Verdict:
    return Verdict(
        "quadratic: GD is exactly the flow of the modified quadratic with rate -ln(1 - h "
        "lambda) / h", f"max relative abs(GD - modified flow) over the (lambda, h, k) grid "
        f"{max_rel:.2g} (criterion <= 1e-12)", criteria=max_rel <= 1e-12,
        claim_id="quadratic_exact", blueprint="backward error analysis: E~ = E + (h/4) E'^2 "
        "is the first-order term of the exact rate", ours=f"{max_rel:.2g}",
        controls="closed form")


def rig_verdict(h_small: float, h_large: float, rig_small: Sequence[float],
                rig_large: Sequence[float], acc_small: Sequence[float],
                acc_large: Sequence[float], target: float) -> Verdict:
    """R_IG averaged along the trajectory is smaller at the largest h (Welch on log10)."""
    w = welch_test(np.log10(rig_large), np.log10(rig_small), scale=1.0, unit="decades")
    return Verdict(
        "MNIST-1D GD: the implicit regularizer R_IG along the trajectory is smaller at larger h",
        f"trajectory mean R_IG {np.mean(rig_large):.3g} at h={h_large:g} vs "
        f"{np.mean(rig_small):.3g} at h={h_small:g}; log10: {w.text}", criteria=w.diff < 0,
        p=w.p, test="Welch (log10)", claim_id="rig_smaller_at_larger_h", effect=w.effect,
        blueprint="Barrett & Dherin Fig. 3: R_IG falls as h grows", ours=w.ours,
        arms=(acc_arm(f"GD h={h_small:g}", acc_small, target),
              acc_arm(f"GD h={h_large:g}", acc_large, target)),
        controls="equal time h x steps")


def accuracy_verdict(h_small: float, h_large: float, test_small: Sequence[float],
                     test_large: Sequence[float], acc_small: Sequence[float],
                     acc_large: Sequence[float], target: float) -> Verdict:
    w = welch_test(test_large, test_small)
    return Verdict(
        "MNIST-1D GD: larger h gives higher test accuracy at equal time",
        f"h={h_large:g} vs h={h_small:g}: {w.text}", criteria=w.diff > 0, p=w.p, test="Welch",
        claim_id="test_acc_higher_at_larger_h", effect=w.effect,
        blueprint="Barrett & Dherin Fig. 3: test accuracy rises with h", ours=w.ours,
        arms=(acc_arm(f"GD h={h_small:g}", acc_small, target),
              acc_arm(f"GD h={h_large:g}", acc_large, target)),
        controls="equal time h x steps")


def explicit_verdict(h_small: float, h_large: float, mu: float, test_small: Sequence[float],
                     test_large: Sequence[float], test_reg: Sequence[float],
                     train: dict[str, Sequence[float]], target: float) -> Verdict:
    """The explicit arm recovers most (more than half) of the small-to-large-h gap."""
    g = gap_fraction(test_small, test_large, test_reg)
    return Verdict(
        f"MNIST-1D: small h plus the explicit regularizer mu ‖grad E‖² (mu = {mu:g}) recovers "
        "most of the test-accuracy gap to large h",
        f"fraction recovered {g.text()} (Fieller 95%); explicit arm vs the gap's midpoint: "
        f"one-sided Welch p={g.p_most:.3g}" if g.p_most is not None else
        f"fraction recovered {g.text()}", criteria=g.gap > 0 and g.fraction > 0.5,
        p=g.p_most, test="one-sided Welch contrast vs midpoint", claim_id="explicit_recovers_gap",
        blueprint="Barrett & Dherin Sec. 6: explicit gradient regularization raises test "
        "accuracy at small h", ours=f"{g.fraction:.2f} " + (
            f"[{g.low:.2f}, {g.high:.2f}]" if g.bounded else "[unbounded]"),
        arms=tuple(acc_arm(name, accs, target) for name, accs in train.items()),
        controls="equal time h x steps; mu = h_large / 4" if mu == h_large / 4 else
        "equal time h x steps")


# -- the study -------------------------------------------------------------------------------------
class ImplicitGradientRegularization(Study):
    name = "implicit_gradient_regularization"
    CAPTIONS = {
        "error_orders": (
            "Two-parameter model: distance between gradient descent after t/h steps and the "
            "gradient flow (slope ~1) or Barrett & Dherin's modified flow (slope ~2) against "
            "the step size h, at a fixed time and after one step (geometric mean over starts; "
            "slopes in the legend)."
        ),
        "flatness": (
            "Two-parameter model: Hessian trace at the minimum reached by GD (solid) and by its "
            "modified flow (dashed), relative to gradient flow's, against the step size h, one "
            "line per start: larger steps end at flatter minima."
        ),
        "mnist1d_gd": (
            "MNIST-1D, full-batch GD: left, the implicit regularizer R_IG = ||grad E||^2 / P "
            "along the trajectory per step size (median over seeds); right, test accuracy at "
            "equal time T against the step size h (mean, 95% CI band) and the smallest h with "
            "the explicit regularizer mu ||grad E||^2 added (square)."
        ),
    }
    Config = IGRConfig
    PRESETS = PRESETS

    def _gd(self, cfg: IGRConfig, h: float, lam: float) -> Any:
        from overparam.train.interventions import GradNorm, GradPenalty

        # both log the series grad_norm_sq of the plain loss: the explicit arm's penalty term
        # needs double backpropagation, the plain GD arms read it off their gradients
        log = GradPenalty(lam=lam) if lam > 0 else GradNorm()
        return cfg.train_config(
            cfg.model, steps=int(round(cfg.time / h)), interventions=(log,),
            optim=OptimConfig(name="gd", lr=h, momentum=0.0, lr_scaling="none",
                              schedule="constant"))

    def plan(self, cfg: IGRConfig) -> list[PlannedRun]:
        runs = [PlannedRun(self._gd(cfg, h, 0.0), cfg.seed_ids, (("arm", "gd"), ("h", h)))
                for h in cfg.hs]
        runs.append(PlannedRun(self._gd(cfg, cfg.hs[0], cfg.explicit_mu), cfg.seed_ids,
                               (("arm", "explicit"), ("h", cfg.hs[0]))))
        return runs

    def measure(self, cfg: IGRConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        self._lab(cfg, ctx)

    def _lab(self, cfg: IGRConfig, ctx: StudyContext) -> dict[str, Any]:
        """Part (a): error orders, end points, the quadratic; computed once (store)."""
        spec = {"what": "two_parameter_lab", "a0s": list(cfg.a0s), "b0s": list(cfg.b0s),
                "x": cfg.x, "y": cfg.y, "horizon": cfg.horizon, "ks": list(cfg.ks),
                "flat_hs": list(cfg.flat_hs)}
        return ctx.computed(self.name, spec, lambda: two_parameter_lab(cfg))

    def analyze(self, cfg: IGRConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        self._report_lab(cfg, self._lab(cfg, ctx), ctx, rep)
        self._report_mnist(cfg, ctx, rep)
        return rep

    # -- (a) -----------------------------------------------------------------------------------
    def _report_lab(self, cfg: IGRConfig, lab: dict[str, Any], ctx: StudyContext,
                    rep: StudyReport) -> None:
        from overparam.report.figures import figure, save

        slopes = {k: np.asarray(v) for k, v in lab["slopes"].items()}
        rep.verdicts.append(order_verdict(
            "global_order", "two-parameter model: at fixed time, GD is O(h^2) from the modified "
            "flow and O(h) from the gradient flow", slopes,
            {"global_mod": 2.0, "global_flow": 1.0}, cfg.order_margin,
            "Barrett & Dherin Thm 3.1: O(h^2) vs O(h)"))
        rep.verdicts.append(order_verdict(
            "local_order", "two-parameter model: one GD step is O(h^3) from the modified flow "
            "and O(h^2) from the gradient flow", slopes, {"local_mod": 3.0, "local_flow": 2.0},
            cfg.order_margin, "Barrett & Dherin Thm 3.1: O(h^3) vs O(h^2)"))
        imb, tr = np.asarray(lab["imbalance"]), np.asarray(lab["trace"])
        rep.verdicts.append(flatness_verdict(cfg.flat_hs, imb, tr))
        rep.verdicts.append(quadratic_verdict(lab["quadratic_max_rel"]))
        names = {"global_mod": "GD vs modified flow at T", "global_flow": "GD vs gradient flow "
                 "at T", "local_mod": "one step vs modified flow", "local_flow": "one step vs "
                 "gradient flow"}
        rep.tables.append(Table(
            f"Two-parameter model: log-log slopes of GD's error against h = {cfg.horizon:g} / k, "
            f"k = {', '.join(map(str, cfg.ks))}, over {len(slopes['global_mod'])} initial points",
            ["error", "expected order", "slope mean ± std [95% CI]"],
            [{"error": names[k], "expected order": e, "slope mean ± std [95% CI]":
              summarize(slopes[k]).fmt(1, 3)} for k, e in
             (("global_mod", 2), ("global_flow", 1), ("local_mod", 3), ("local_flow", 2))]))
        share = np.asarray(lab["share_explained"])
        rows = [{"h": "0 (gradient flow)", "abs(a - b) at the minimum": summarize(imb[:, 0]).fmt(1, 4),
                 "Hessian trace": summarize(tr[:, 0]).fmt(1, 4), "GD steps": "",
                 "drift explained by the modified flow": ""}]
        for j, h in enumerate(cfg.flat_hs):
            rows.append({"h": h, "abs(a - b) at the minimum": summarize(imb[:, j + 1]).fmt(1, 4),
                         "Hessian trace": summarize(tr[:, j + 1]).fmt(1, 4),
                         "GD steps": f"{np.mean(lab['steps'][j]):.0f}",
                         "drift explained by the modified flow": summarize(share[:, j]).fmt(1)})
        rep.tables.append(Table(
            f"Two-parameter model (x={cfg.x:g}, y={cfg.y:g}): where GD ends, mean ± std [95% CI] "
            "over the initial points", ["h", "abs(a - b) at the minimum", "Hessian trace",
                                        "GD steps", "drift explained by the modified flow"],
            rows))
        rep.notes.append(
            "Drift explained: (c_flow - c_modified) / (c_flow - c_GD) with c = |a - b| at the end "
            "point; the modified flow accounts for GD's drift toward the flat minimum to first "
            "order in h (share -> 1 as h -> 0); at the larger steps higher-order terms of the "
            "backward error series carry the rest.")
        rows = [{"lambda": lam, "h": h, "h lambda": lam * h,
                 "exact modified rate -ln(1-h lambda)/h": ex, "IGR rate lambda + h lambda^2/2": ig,
                 "max rel. abs(GD - modified flow)": err}
                for lam, h, ex, ig, err in lab["quadratic"]]
        rep.tables.append(Table("Quadratic E = lambda theta^2 / 2: GD as the exact flow of a "
                                "modified quadratic", list(rows[0]), rows))
        fig, (ax1, ax2) = figure(10, 4, ncols=2)
        hs = np.asarray(lab["hs"])
        for ax, keys, title in ((ax1, ("global_mod", "global_flow"), f"at fixed time "
                                 f"T={cfg.horizon:g}"), (ax2, ("local_mod", "local_flow"),
                                                        "after one step")):
            for k in keys:
                err = np.asarray(lab["errors"][k])
                gm = np.exp(np.log(err).mean(0))
                ax.plot(hs, gm, "o-", label=f"{names[k]} (slope {slopes[k].mean():.2f})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("step size h")
            ax.set_ylabel("||theta_GD - theta(t)|| (geometric mean)")
            ax.set_title(f"Two-parameter model, {title}")
            ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "error_orders"))
        fig, ax = figure(7, 4.5)
        tm = np.asarray(lab["trace_modified_flow"])
        from matplotlib import colormaps

        colors = colormaps["viridis"](np.linspace(0, 0.95, len(lab["starts"])))
        for i, (a0, b0) in enumerate(lab["starts"]):
            (line,) = ax.plot(cfg.flat_hs, tr[i, 1:] / tr[i, 0], "o-", lw=0.9, ms=3,
                              color=colors[i], label=f"({a0:g}, {b0:g})")
            ax.plot(cfg.flat_hs, tm[i] / tr[i, 0], "--", lw=0.8, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("step size h")
        ax.set_ylabel("Hessian trace at the minimum / gradient flow's")
        ax.set_title("GD (solid) and its modified flow (dashed) end flatter")
        ax.legend(title="start (a0, b0)", fontsize=6, title_fontsize=7, ncol=3)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "flatness"))

    # -- (b) -----------------------------------------------------------------------------------
    def _report_mnist(self, cfg: IGRConfig, ctx: StudyContext, rep: StudyReport) -> None:
        from overparam.models import build, count_params
        from overparam.report.figures import band, figure, save

        plan = self.plan(cfg)
        data = ctx.data(plan[0].config.data)
        n_params = count_params(build(cfg.model, data.input_shape, data.num_classes,
                                      device="meta"))
        arms: dict[str, dict[str, Any]] = {}
        for p in plan:
            res = ctx.results(p)
            series = [ctx.series(p.config, s, "grad_norm_sq") for s in p.seeds]
            key = f"GD h={p.tag('h'):g}" if p.tag("arm") == "gd" else \
                f"GD h={p.tag('h'):g} + mu={cfg.explicit_mu:g} explicit"
            arms[key] = {
                "h": p.tag("h"), "steps": p.config.steps, "arm": p.tag("arm"),
                "train": [r["result"]["train_acc"] for r in res],
                "test": [r["result"]["test_acc"] for r in res],
                "loss": [r["result"]["train_loss"] for r in res],
                "rig": [float(np.mean(v)) / n_params for _, v in series],
                "rig_at": [_at_loss(_losses(r, len(v)), v / n_params, cfg.match_loss)
                           for r, (_, v) in zip(res, series)],
                "curve": (np.asarray(series[0][0]) * p.tag("h"),
                          np.median([np.asarray(v) for _, v in series], axis=0) / n_params)}
        small, large = arms[f"GD h={cfg.hs[0]:g}"], arms[f"GD h={cfg.hs[-1]:g}"]
        reg = next(a for a in arms.values() if a["arm"] == "explicit")
        rep.verdicts.append(rig_verdict(cfg.hs[0], cfg.hs[-1], small["rig"], large["rig"],
                                        small["train"], large["train"], cfg.target_acc))
        rep.verdicts.append(accuracy_verdict(cfg.hs[0], cfg.hs[-1], small["test"],
                                             large["test"], small["train"], large["train"],
                                             cfg.target_acc))
        rep.verdicts.append(explicit_verdict(
            cfg.hs[0], cfg.hs[-1], cfg.explicit_mu, small["test"], large["test"], reg["test"],
            {k: arms[k]["train"] for k in (f"GD h={cfg.hs[0]:g}", f"GD h={cfg.hs[-1]:g}")}
            | {"explicit": reg["train"]}, cfg.target_acc))
        g = gap_fraction(small["test"], large["test"], reg["test"])
        note = missed_note({k: (cfg.seed_ids, a["train"], a["test"]) for k, a in arms.items()},
                           cfg.target_acc)
        if note:
            rep.notes.append(note)
        rep.facts.update({"igr_gap_pp": 100 * g.gap, "igr_fraction_recovered": g.fraction,
                          "igr_fraction_lo": g.low, "igr_fraction_hi": g.high})
        rows = [{"arm": k, "h": a["h"], "steps": a["steps"], "time h x steps": a["h"] * a["steps"],
                 "train acc (%)": summarize(a["train"]).fmt(100),
                 "test acc (%)": summarize(a["test"]).fmt(100),
                 "final train loss": summarize(a["loss"]).fmt(1, 4),
                 "R_IG (trajectory mean)": sci(a["rig"]),
                 f"R_IG at E={cfg.match_loss:g}": sci(a["rig_at"])}
                for k, a in arms.items()]
        rep.tables.append(Table(
            f"MNIST-1D (n={data.n_train}), {cfg.model} ({n_params:,} parameters), full-batch GD, "
            f"equal time T={cfg.time:g}, {cfg.seeds} seeds (mean ± std [95% CI])",
            list(rows[0]), rows))
        rep.notes.append(
            f"Explicit arm: GD at h={cfg.hs[0]:g} on E + mu ||grad E||^2, mu = "
            f"{cfg.explicit_mu:g}; with its own implicit term its modified loss is E + "
            f"({cfg.hs[0]:g}/4 + {cfg.explicit_mu:g}) ||grad E||^2. Fraction of the gap "
            f"recovered: {g.text()}; Fieller interval, {g.df:.1f} df. R_IG = ||grad E||^2 / P "
            "logged before every step by the gradient-penalty intervention at lam = 0 "
            "(a measurement; the fused MLP step is off for these runs).")
        fig, (ax1, ax2) = figure(10, 4, ncols=2)
        for k, a in arms.items():
            t, v = a["curve"]
            ax1.plot(t, v, lw=1, label=k)
        ax1.set_yscale("log")
        ax1.set_xlabel("time t = h x step")
        ax1.set_ylabel("R_IG = ||grad E||^2 / P (seed median)")
        ax1.set_title("Implicit regularizer along the trajectory")
        ax1.legend(fontsize=7)
        gd = [a for a in arms.values() if a["arm"] == "gd"]
        sums = [summarize(a["test"]) for a in gd]
        band(ax2, [a["h"] for a in gd], [100 * s.mean for s in sums],
             [100 * s.ci_low for s in sums], [100 * s.ci_high for s in sums], "GD (95% CI)")
        s = summarize(reg["test"])
        ax2.errorbar([cfg.hs[0]], [100 * s.mean], yerr=[[100 * (s.mean - s.ci_low)],
                                                        [100 * (s.ci_high - s.mean)]],
                     fmt="s", color="C3", label=f"h={cfg.hs[0]:g} + explicit mu={cfg.explicit_mu:g}")
        ax2.set_xscale("log")
        ax2.set_xlabel("step size h")
        ax2.set_ylabel("test accuracy (%)")
        ax2.set_title(f"Equal time T={cfg.time:g}, {cfg.seeds} seeds")
        ax2.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "mnist1d_gd"))


def _losses(run: dict[str, Any], steps: int) -> np.ndarray:
    """E(theta_t) for t = 0 .. steps - 1 of a full-batch GD run: its per-epoch training loss
    (one step per epoch, the loss of the batch before the step)."""
    loss = np.array([h["train_loss"] for h in run["history"]], dtype=np.float64)
    if loss.size < steps:
        raise ValueError(f"{loss.size} epochs of history for {steps} logged steps: not GD")
    return loss[:steps]


def _at_loss(loss: np.ndarray, values: np.ndarray, level: float) -> float:
    """``values`` at the first step whose training loss is <= ``level`` (NaN: never)."""
    hit = np.nonzero(loss <= level)[0]
    return float(values[hit[0]]) if hit.size else math.nan


def two_parameter_lab(cfg: IGRConfig) -> dict[str, Any]:
    """Part (a) as plain numbers: per initial point the error orders, the end points of the
    gradient flow, of GD and of the modified flow at each h, and the quadratic identity."""
    from overparam.theory import modified_flow as mf

    starts = [(a, b) for a in cfg.a0s for b in cfg.b0s]
    errors: dict[str, list[list[float]]] = {k: [] for k in ("global_mod", "global_flow",
                                                           "local_mod", "local_flow")}
    slopes: dict[str, list[float]] = {k: [] for k in errors}
    hs: tuple[float, ...] = ()
    imbalance, trace, share, trace_mod = [], [], [], []
    steps: list[list[int]] = [[] for _ in cfg.flat_hs]
    for start in starts:
        o = mf.error_orders(start, cfg.x, cfg.y, cfg.horizon, cfg.ks)
        hs = o.hs
        for k in errors:
            errors[k].append(list(getattr(o, k)))
            slopes[k].append(o.slopes[k])
        flow_end = mf.flow_minimum(start, cfg.x, cfg.y)
        row_i, row_t, row_s, row_m = [flow_end.imbalance], [flow_end.trace], [], []
        for j, h in enumerate(cfg.flat_hs):
            end = mf.gd_minimum(start, cfg.x, cfg.y, h)
            settle = max(3 * end.steps * h, 40 / (2 * cfg.x * cfg.y))
            mod = mf.modified_flow_minimum(start, cfg.x, cfg.y, h, settle)
            row_i.append(end.imbalance)
            row_t.append(end.trace)
            row_m.append(mod.trace)
            row_s.append((flow_end.imbalance - mod.imbalance) /
                         (flow_end.imbalance - end.imbalance))
            steps[j].append(end.steps)
        imbalance.append(row_i)
        trace.append(row_t)
        share.append(row_s)
        trace_mod.append(row_m)
    quad, worst = [], 0.0
    for lam in (0.5, 2.0, 10.0):
        for h in (0.01, 0.05, 0.09):
            rate = mf.quadratic_modified_rate(lam, h)
            err = max(abs(mf.quadratic_gd(1.0, lam, h, k) - mf.quadratic_flow(1.0, rate, k * h))
                      / abs(mf.quadratic_gd(1.0, lam, h, k)) for k in (1, 10, 100))
            worst = max(worst, err)
            quad.append([lam, h, rate, mf.quadratic_igr_rate(lam, h), err])
    return {"starts": starts, "hs": list(hs), "errors": errors, "slopes": slopes,
            "imbalance": imbalance, "trace": trace, "trace_modified_flow": trace_mod,
            "share_explained": share, "steps": steps,
            "quadratic": quad, "quadratic_max_rel": worst}
