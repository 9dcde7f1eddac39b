"""Max margin: the implicit bias of (steepest) descent on linearly separable data.

Question: on separable data the logistic loss has no minimizer -- ``||w_t|| -> inf`` -- so which
*direction* does training pick? Soudry, Hoffer, Nacson, Gunasekar & Srebro (2018,
arXiv:1710.10345, Thm 3): gradient descent with a constant step ``eta < 2/beta`` has
``w(t) = w_hat log t + rho(t)``, ``rho`` bounded, ``w_hat`` the l2 hard-margin SVM solution; the
direction converges to the SVM's, but the angle and the margin gap only as ``O(1/log t)`` (so
``1 - cos``, which is ``theta^2 / 2``, as ``O(1/log^2 t)``; also Ji & Telgarsky 2018,
arXiv:1803.07300). Gunasekar, Lee, Soudry & Srebro (2018,
arXiv:1802.08246): steepest descent w.r.t. a norm converges to *that norm's* max-margin
direction -- greedy coordinate descent (l1 steepest descent) to the l1 max margin (a linear
program), sign descent (l_inf) to the l_inf max margin. Normalized steps converge much faster
(Nacson, Lee, Gunasekar, Savarese, Srebro & Soudry 2019, arXiv:1803.01905; Ji & Telgarsky 2021,
arXiv:1906.04540: ``O(1/t)`` margin rates for ``eta_t ~ 1/L``).

Protocol (:mod:`overparam.theory.margins`): ``instances`` random problems per setting, each
``n`` points from two Gaussian classes in ``d`` dimensions, ``x ~ N(c + y mu, I)`` with
``||2 mu|| = separation``, redrawn until separable; setting ``homogeneous`` (``c = 0``, no bias)
and ``bias`` (``||c|| = offset``, a constant feature 1 appended: the bias is a weight and sits
inside every norm, as it does for GD on a model with a bias parameter). References: the l2 SVM
as a QP (SLSQP) cross-checked against scikit-learn's ``SVC(kernel="linear")`` at C = ``svc_c``;
the l1 and l_inf max margins by ``linprog``. Methods, all from ``w = 0`` on the mean ``loss``
(logistic; exponential on request): plain GD at ``eta = gd_lr / beta`` for ``gd_steps`` steps; normalized steepest descent
(``eta_t = normalized_lr / (B^2 L(w_t))``) w.r.t. l2 (normalized GD), l1 (coordinate descent)
and l_inf (sign descent) for ``normalized_steps`` steps. Checkpoints are log-spaced.

Claims (each over all instances of both settings): the two SVM solvers agree; GD grows as
``w_hat log t`` (the slope of ``w`` against ``log t`` over the last decade matches ``w_hat``,
TOST); GD's angle and margin gap shrink as ``1/(alpha + beta log t)``, not as a power of t (a
fit on ``[T/100, T/10]`` extrapolated to ``T``: TOST within 5% of the measured value, while a
power-law fit on the same window over-predicts the decay); normalized GD is far closer to the
SVM after the same number of steps (Welch on log10 angles); each normalized steepest descent
reaches its own norm's max margin (TOST within 2%) and beats the other two methods in that norm
(Welch each, IUT). Nothing is tuned toward the answer: step sizes are the theorems' (GD: 1/beta
inside Soudry's ``eta < 2/beta``; steepest descent: Gunasekar's bound ``1/(B^2 L)``).

Every compared method has a training target: all problems separated (training accuracy 100%) at
the steps compared; a method that misses it makes the claim INCONCLUSIVE.

Quick preset: n=40, d=10, 10 instances per setting (20 problems), 10^5 GD steps, 10^4 normalized
steps. No small-scale literature protocol beyond toy sets exists (Soudry et al.'s Figure 1 is a 2-D
set with four support vectors; it is a unit test here), so the quick preset is many random
problems. About 9 s of CPU (30 s wall on the shared, loaded 2-core machine), computed once and
cached in the store; a rerun or ``overparam report`` only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.verdicts import Arm, acc_arm, mean_ci, tost_test, welch_test

SETTINGS = ("homogeneous", "bias")
STEEPEST = {"ngd": "l2", "cd": "l1", "sign": "linf"}  # method -> the norm it descends in
LABELS = {"ref_l1": "l1 max margin (linprog)", "ref_l2": "l2 SVM (QP)",
          "ref_linf": "l_inf max margin (linprog)", "gd": "GD (constant step)",
          "ngd": "normalized GD (l2)", "cd": "coordinate descent (l1)",
          "sign": "sign descent (l_inf)"}
COLORS = {"gd": "C0", "ngd": "C1", "cd": "C2", "sign": "C3"}
STYLES = {"homogeneous": "-", "bias": "--"}
NORM_LABEL = {"l1": "l1", "l2": "l2", "linf": "l_inf"}
SOLVER_COS = 1e-9  # the QP and SVC directions: 1 - cos below this
SOLVER_NORM = 1e-5  # ... and their norms within this relative difference
GROWTH_MARGIN = 0.10  # GD's growth rate |dw/dlog t| / |w_hat| equivalent to 1 within +-10%
VELOCITY_COS_MARGIN = 0.01  # ... and 1 - cos(dw/dlog t, w_hat) below 0.01
EXTRAPOLATION_MARGIN = 0.05  # the 1/log t fit predicts the gap at T within +-5%
RATIO_MARGIN = 0.02  # a steepest descent reaches its norm's max margin within 2%


@dataclass(frozen=True)
class MaxMarginConfig:
    n: int = 40  # points per problem (half per class)
    d: int = 10  # input dimension (d + 1 weights with a bias)
    separation: float = 5.0  # distance between the two class means
    offset: float = 3.0  # distance of the classes' midpoint from the origin ("bias" setting)
    instances: int = 10  # random problems per setting
    settings: tuple[str, ...] = SETTINGS
    loss: str = "logistic"
    gd_steps: int = 100_000
    gd_lr: float = 1.0  # GD step in units of 1/beta, beta = sigma_max(Z)^2 / (4n)
    normalized_steps: int = 10_000
    normalized_lr: float = 1.0  # eta in eta_t = eta / (B^2 L(w_t))
    per_decade: int = 8  # checkpoints per factor 10 of steps
    svc_c: float = 1e10
    seed: int = 0

    def __post_init__(self) -> None:
        from overparam.theory.margins import LOSSES

        for name, low in (("n", 4), ("d", 2), ("instances", 2), ("gd_steps", 100),
                          ("normalized_steps", 100), ("per_decade", 2)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ConfigError(name, getattr(self, name), f"an integer >= {low}")
        if self.n % 2:
            raise ConfigError("n", self.n, "an even number (n/2 points per class)")
        for name in ("separation", "gd_lr", "normalized_lr", "svc_c"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "a positive number")
        if not self.offset >= 0:
            raise ConfigError("offset", self.offset, "a number >= 0")
        if not self.settings or len(set(self.settings)) != len(self.settings) or \
                not set(self.settings) <= set(SETTINGS):
            raise ConfigError("settings", self.settings,
                              "distinct values among " + ", ".join(SETTINGS))
        if self.loss not in LOSSES:
            raise ConfigError("loss", self.loss, "one of " + ", ".join(LOSSES))
        if self.normalized_steps > self.gd_steps:
            raise ConfigError("normalized_steps", self.normalized_steps,
                              f"at most gd_steps={self.gd_steps} (GD is compared at that step)")
        if self.seed < 0:
            raise ConfigError("seed", self.seed, "a non-negative integer")


PRESETS = {
    "quick": MaxMarginConfig(),
    # Ten times longer horizons (10^6 GD steps, 10^5 normalized steps) and 25 problems per
    # setting: numpy on CPU, a few minutes.
    "paper": MaxMarginConfig(instances=25, gd_steps=1_000_000, normalized_steps=100_000),
}


# -- the computation (no store) ------------------------------------------------------------------
def problems(cfg: MaxMarginConfig, setting: str) -> tuple[np.ndarray, list[int]]:
    """The ``instances`` problems of a setting, ``(K, n, d')`` signed examples, and the number of
    draws each took to be separable (instance i of setting s: generator ``[seed, s, i]``)."""
    from overparam.theory.margins import gaussian_classes

    s = SETTINGS.index(setting)
    out = [gaussian_classes(cfg.n, cfg.d, cfg.separation,
                            np.random.default_rng([cfg.seed, s, i]), bias=setting == "bias",
                            offset=cfg.offset) for i in range(cfg.instances)]
    return np.stack([z for z, _ in out]), [a for _, a in out]


def _monitor(z: np.ndarray, w: np.ndarray, refs: dict[str, np.ndarray], own: str
             ) -> dict[str, Any]:
    """Angle to the own norm's reference, training accuracy (the fraction of positive margins)
    and margin ratios ``gamma_p(w) / gamma_p*`` in every norm, per checkpoint and instance
    (``w``: ``(C, K, d)``)."""
    from overparam.theory.margins import NORMS, angle, margin, norm

    return {"theta": angle(w, refs[own][None]).tolist(),
            "train_acc": ((z[None] @ w[..., None])[..., 0] > 0).mean(axis=-1).tolist(),
            "margin_ratio": {p: (margin(z[None], w, p) * norm(refs[p], p)[None]).tolist()
                             for p in NORMS}}


def lab(cfg: MaxMarginConfig, setting: str) -> dict[str, Any]:
    """Everything the analysis reads for one setting, as plain lists (JSON for the store)."""
    from overparam.theory import margins as mm

    z, attempts = problems(cfg, setting)
    refs = {p: np.stack([mm.max_margin(zk, p) for zk in z]) for p in mm.NORMS}
    svc = np.stack([mm.max_margin_l2_svc(zk, cfg.svc_c) for zk in z])
    qp = refs["l2"]
    out: dict[str, Any] = {
        "setting": setting, "attempts": attempts,
        "gamma": {p: (1.0 / mm.norm(refs[p], p)).tolist() for p in mm.NORMS},
        "n_support": [int(np.sum(zk @ wk <= 1 + 1e-6)) for zk, wk in zip(z, qp)],
        "qp_min_margin": [float((zk @ wk).min()) for zk, wk in zip(z, qp)],
        "svc_angle": mm.angle(svc, qp).tolist(),
        "svc_norm_rel": (np.linalg.norm(svc, axis=1) / np.linalg.norm(qp, axis=1) - 1).tolist()}
    big_t, small_t = cfg.gd_steps, cfg.normalized_steps
    at = mm.checkpoints(big_t, cfg.per_decade, [big_t // 10, big_t // 100, small_t])
    lr = cfg.gd_lr / mm.smoothness(z, cfg.loss)
    gd = mm.gradient_descent(z, big_t, lr, at, cfg.loss)
    i_end, i_dec = list(gd.steps).index(big_t), list(gd.steps).index(big_t // 10)
    velocity = (gd.w[i_end] - gd.w[i_dec]) / np.log(big_t / (big_t // 10))
    out["gd"] = {"steps": gd.steps.tolist(), "lr_times_beta": cfg.gd_lr,
                 **_monitor(z, gd.w, refs, "l2"),
                 "norm": np.linalg.norm(gd.w, axis=-1).tolist(),
                 "log10_loss": (gd.log_loss / np.log(10)).tolist(),
                 "velocity_angle": mm.angle(velocity, qp).tolist(),
                 "velocity_norm_ratio": (np.linalg.norm(velocity, axis=1)
                                         / np.linalg.norm(qp, axis=1)).tolist()}
    finals = {f"ref_{p}": refs[p] for p in mm.NORMS}
    finals["gd"] = gd.w[i_end]
    at = mm.checkpoints(small_t, cfg.per_decade, [small_t // 100])
    for method, p in STEEPEST.items():
        tr = mm.steepest_descent(z, p, small_t, cfg.normalized_lr, at, cfg.loss)
        out[method] = {"steps": tr.steps.tolist(), **_monitor(z, tr.w, refs, p)}
        finals[method] = tr.w[-1]
    out["directions"] = {key: {p: (mm.margin(z, w, p) * mm.norm(refs[p], p)).tolist()
                               for p in mm.NORMS} for key, w in finals.items()}
    return out


# -- statistics and verdicts (plain functions of numbers) -----------------------------------------
def one_minus_cos(theta: Any) -> np.ndarray:
    """``1 - cos(theta) = 2 sin^2(theta / 2)``, without cancellation for tiny angles."""
    return 2.0 * np.sin(0.5 * np.asarray(theta, dtype=np.float64)) ** 2


def extrapolation_errors(steps: list[int], gap: np.ndarray, end: int) -> dict[str, np.ndarray]:
    """Per instance (``gap``: ``(C, K)``), fit on the checkpoints in ``[end/100, end/10]`` and
    predict the gap at ``end``: relative errors ``prediction / measured - 1`` of the
    ``1/(alpha + beta log t)`` model and of a power law ``c t^-p``; also the fitted ``beta``
    and ``p``, and the slope of ``log gap`` against ``log(1/log t)`` over ``[end/100, end]``."""
    from overparam.theory.margins import inverse_log_fit, log_log_exponent, power_fit

    t = np.asarray(steps, dtype=np.float64)
    win = (t >= end / 100) & (t <= end / 10)
    late = t >= end / 100
    i_end = int(np.flatnonzero(t == end)[0])
    inv, pw, beta, p, expo = [], [], [], [], []
    for k in range(gap.shape[1]):
        g = np.maximum(gap[:, k], 1e-300)
        fi, fp = inverse_log_fit(t[win], g[win]), power_fit(t[win], g[win])
        inv.append(1.0 / fi(np.log(end)) / g[i_end] - 1.0)
        pw.append(float(np.exp(fp(np.log(end)))) / g[i_end] - 1.0)
        beta.append(fi.slope)
        p.append(-fp.slope)
        expo.append(log_log_exponent(t[late], g[late]))
    return {"inverse_log": np.array(inv), "power": np.array(pw), "beta": np.array(beta),
            "p": np.array(p), "exponent": np.array(expo)}


def solver_verdict(angles: list[float], norm_rel: list[float], qp_min: list[float]) -> Verdict:
    """The QP and SVC solutions agree (deterministic check over all instances)."""
    gap = float(np.max(one_minus_cos(angles)))
    rel = float(np.max(np.abs(norm_rel)))
    feasible = float(np.min(qp_min))
    ok = gap <= SOLVER_COS and rel <= SOLVER_NORM and feasible >= 1 - 1e-9
    return Verdict(
        "the l2 max-margin direction: the QP (SLSQP) and scikit-learn's SVC agree",
        f"over {len(angles)} problems: max 1 - cos = {gap:.2e} (tolerance "
        f"{SOLVER_COS:g}), max |norm ratio - 1| = {rel:.2e} (tolerance {SOLVER_NORM:g}), QP "
        f"min_i z_i.w = {feasible:.10f} (>= 1 - 1e-9)", criteria=ok, claim_id="svm_solvers",
        blueprint="the hard-margin SVM is the reference direction (Soudry et al. 2018)",
        ours=f"1 - cos <= {gap:.1e}", controls="two independent solvers")


def growth_verdict(norm_ratio: list[float], angles: list[float], big_t: int,
                   arms: tuple[Arm, ...] = ()) -> Verdict:
    """GD's iterates grow as ``w_hat log t``: over the last decade, ``|dw / dlog t| / |w_hat|``
    equals 1 (TOST within ``GROWTH_MARGIN``) and ``1 - cos(dw / dlog t, w_hat)`` is below
    ``VELOCITY_COS_MARGIN`` (TOST against 0); IUT: the larger p."""
    gap = one_minus_cos(angles)
    a = tost_test(norm_ratio, [1.0] * len(norm_ratio), GROWTH_MARGIN, scale=1.0, unit="")
    b = tost_test(gap, [0.0] * len(angles), VELOCITY_COS_MARGIN, scale=1.0, unit="")
    ps = [a.p, b.p]
    return Verdict(
        "GD on the logistic loss grows as w_hat log t (w_hat: the l2 SVM solution with margin "
        "1), so its direction converges to the SVM's", f"over steps {big_t // 10:,}..{big_t:,}, "
        f"|dw/dlog t| / |w_hat| = {mean_ci(norm_ratio, 1.0, 3)}: {a.text}; 1 - cos(dw/dlog t, "
        f"w_hat) = {mean_ci(gap, 1.0, 4)}: {b.text}",
        p=None if None in ps else max(ps), test="TOST x2 (IUT)", equivalence=True,
        outside=a.outside or b.outside, claim_id="gd_log_growth", arms=arms,
        blueprint="w(t) = w_hat log t + rho(t), rho bounded (Soudry et al. 2018, Thm 3); seed "
                  "004: 'gradient descent converges to maximum-margin classifiers in linearly "
                  "separable settings'",
        ours=f"growth ratio {mean_ci(norm_ratio, 1.0, 3)}",
        controls=f"margins +-{GROWTH_MARGIN:g} (ratio), {VELOCITY_COS_MARGIN:g} (1 - cos)")


def rate_verdict(what: str, claim_id: str, err: dict[str, np.ndarray], end: int,
                 arms: tuple[Arm, ...] = ()) -> Verdict:
    """The gap shrinks as ``1/(alpha + beta log t)``: its extrapolation from ``[T/100, T/10]``
    to ``T`` is right within ``EXTRAPOLATION_MARGIN`` (TOST) while a power law's over-predicts
    the decay (mean relative error < 0, Welch against 0); IUT."""
    inv, pw = err["inverse_log"], err["power"]
    a = tost_test(inv, [0.0] * len(inv), EXTRAPOLATION_MARGIN, scale=100.0, unit="%")
    b = welch_test(pw, [0.0] * len(pw), scale=100.0, unit="%")
    ps = [a.p, b.p]
    return Verdict(
        f"GD's {what} shrinks like 1/log t, not like a power of t",
        f"fitted on steps {end // 100:,}..{end // 10:,}, predicted at {end:,}: 1/(alpha + beta "
        f"log t) off by {a.text}; power law c t^-p off by {b.text} (p = "
        f"{summarize(err['p']).fmt(1, 3)})", criteria=b.diff < 0,
        p=None if None in ps else max(ps), test="TOST + Welch vs 0 (IUT)", equivalence=False,
        claim_id=claim_id, arms=arms,
        blueprint=f"the {what} is O(1/log t) (Soudry et al. 2018)",
        ours=f"1/log t error {mean_ci(inv, 100.0, 2)} %; power-law error "
             f"{mean_ci(pw, 100.0, 2)} %", effect=b.effect,
        controls=f"out-of-sample; equivalence margin +-{100 * EXTRAPOLATION_MARGIN:g}%")


def normalized_verdict(theta_gd: list[float], theta_ngd: list[float], steps: int,
                       exponent: np.ndarray, arms: tuple[Arm, ...] = ()) -> Verdict:
    """Normalized GD is closer to the SVM direction than GD after the same number of steps
    (Welch on log10 of the angles)."""
    w = welch_test(np.log10(theta_ngd), np.log10(theta_gd), scale=1.0, unit="decades")
    return Verdict(
        "normalized GD (eta_t = eta / (B^2 L)) converges to the SVM direction much faster than "
        "GD", f"angle to the SVM after {steps:,} steps: normalized GD "
        f"{summarize(theta_ngd).fmt(1, 4)} rad, GD {summarize(theta_gd).fmt(1, 4)} rad; log10 "
        f"angle {w.text}; normalized GD's margin gap ~ t^-p with p = "
        f"{summarize(exponent).fmt(1, 2)}", criteria=w.diff < 0, p=w.p, test="Welch",
        claim_id="normalized_faster", effect=w.effect, arms=arms,
        blueprint="polynomial instead of logarithmic rates (Nacson et al. 2019; O(1/t) margin, "
                  "Ji & Telgarsky 2021)", ours=f"{w.ours} (log10 angle)",
        controls="same problems, same number of steps")


def steepest_verdict(method: str, ratio: list[float], angles: list[float], steps: int,
                     arms: tuple[Arm, ...] = ()) -> Verdict:
    """A normalized steepest descent reaches its own norm's max margin: margin ratio equivalent
    to 1 within ``RATIO_MARGIN`` (TOST)."""
    p = STEEPEST[method]
    t = tost_test(ratio, [1.0] * len(ratio), RATIO_MARGIN, scale=100.0, unit="%")
    cos = np.cos(angles)
    return Verdict(
        f"{LABELS[method]} converges to the {NORM_LABEL[p]} max-margin solution",
        f"after {steps:,} steps: {NORM_LABEL[p]} margin / max {NORM_LABEL[p]} margin = "
        f"{summarize(ratio).fmt(1, 4)}: {t.text}; cosine to the reference "
        f"{summarize(cos).fmt(1, 5)} (lowest {cos.min():.5f})",
        p=t.p, test="TOST", equivalence=True, outside=t.outside, claim_id=f"{method}_{p}",
        arms=arms,
        blueprint=("steepest descent w.r.t. a norm -> that norm's max margin (Gunasekar et al. "
                   "2018)" if p != "l2" else
                   "normalized GD's limit is the l2 SVM direction (Nacson et al. 2019)"),
        ours=f"{mean_ci(ratio, 100.0, 2)} % of the max margin",
        controls=f"margin +-{100 * RATIO_MARGIN:g}%; reference: "
                 + ("QP/SVC" if p == "l2" else "linprog"))


def own_norm_verdict(final: dict[str, dict[str, list[float]]], arms: tuple[Arm, ...] = ()
                     ) -> Verdict:
    """Each steepest descent has the largest margin in its own norm among the three (Welch for
    each of the 6 pairs; IUT: the largest p). ``final[method][norm]``: margin ratios."""
    parts, ps, diffs = [], [], []
    for method, p in STEEPEST.items():
        for other in STEEPEST:
            if other == method:
                continue
            w = welch_test(final[method][p], final[other][p], scale=100.0, unit="%")
            diffs.append(w.diff)
            ps.append(w.p)
            parts.append(f"{NORM_LABEL[p]} margin, {method} - {other}: {w.ours}")
    return Verdict(
        "each steepest descent maximizes its own norm's margin, not the others'",
        "; ".join(parts), criteria=min(diffs) > 0, p=None if None in ps else max(ps),
        test="Welch x6 (IUT)", claim_id="own_norm", arms=arms,
        blueprint="the limit depends on the geometry of the update (Gunasekar et al. 2018)",
        ours=f"smallest difference {100 * min(diffs):+.2f}% of the max margin",
        controls="same problems and steps")


class MaxMargin(Study):
    name = "max_margin"
    CAPTIONS = {
        "gd_direction": (
            "Separable logistic regression: left, angle between the iterate and the l2 "
            "max-margin (SVM) direction against the step for GD and normalized GD; middle, "
            "1/angle against log t (a straight line is the 1/log t rate of Soudry et al. 2018); "
            "right, 1 - cos against 1/log t (mean over problems, 95% CI bands; one line style "
            "per data setting)."
        ),
        "margin_gaps": (
            "Margin gap 1 - gamma(w_t) / gamma* of each method measured in the norm of its own "
            "geometry (GD: l2, coordinate descent: l1, sign descent: l-infinity) against the "
            "step (mean over problems, 95% CI bands)."
        ),
    }
    Config = MaxMarginConfig
    PRESETS = PRESETS

    def _lab(self, cfg: MaxMarginConfig, ctx: StudyContext, setting: str) -> dict[str, Any]:
        """One setting's computation, cached in the store by its settings."""
        spec = {"what": f"max_margin_{setting}", "version": 1, "setting": setting,
                **{k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in cfg.__dict__.items() if k != "settings"}}
        return ctx.computed(self.name, spec, lambda: lab(cfg, setting))

    def measure(self, cfg: MaxMarginConfig, ctx: StudyContext, plan: list) -> None:
        with ctx.progress("max_margin: problems", len(cfg.settings)) as tick:
            for s in cfg.settings:
                self._lab(cfg, ctx, s)
                tick()

    def analyze(self, cfg: MaxMarginConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        # load
        labs = {s: self._lab(cfg, ctx, s) for s in cfg.settings}
        pool = _Pool(labs)
        big_t, small_t = cfg.gd_steps, cfg.normalized_steps
        # statistics
        gd_err = {s: extrapolation_errors(r["gd"]["steps"], np.array(r["gd"]["theta"]), big_t)
                  for s, r in labs.items()}
        gd_gap = {s: extrapolation_errors(
            r["gd"]["steps"], 1 - np.array(r["gd"]["margin_ratio"]["l2"]), big_t)
            for s, r in labs.items()}
        ngd_exp = np.concatenate([extrapolation_errors(
            r["ngd"]["steps"], 1 - np.array(r["ngd"]["margin_ratio"]["l2"]), small_t)["p"]
            for r in labs.values()])
        cos_exp = {s: extrapolation_errors(r["gd"]["steps"],
                                           one_minus_cos(r["gd"]["theta"]), big_t)
                   for s, r in labs.items()}
        # tables
        rep.tables.append(self._solver_table(labs))
        rep.tables.append(self._gd_table(labs, big_t))
        rep.tables.append(self._rate_table(labs, gd_err, gd_gap, cos_exp))
        rep.tables.append(self._norm_table(labs))
        # figures
        out = ctx.figure_dir(self.name)
        rep.figures.append(self._angle_figure(labs, out))
        rep.figures.append(self._margin_figure(labs, out))
        # verdicts and notes
        rep.verdicts += self._verdicts(pool, gd_err, gd_gap, ngd_exp, big_t, small_t)
        rep.notes += self._notes(pool, gd_err, cos_exp, big_t)
        rep.facts.update({"gd_angle_at_T": float(np.mean(pool.at("gd", "theta", big_t))),
                          "ngd_angle": float(np.mean(pool.at("ngd", "theta", small_t)))})
        return rep

    def _verdicts(self, pool: _Pool, gd_err: dict, gd_gap: dict, ngd_exp: np.ndarray,
                  big_t: int, small_t: int) -> list[Verdict]:
        def arm(method: str, step: int) -> Arm:
            """Every problem separated (training accuracy 100%) at ``step``."""
            return acc_arm(f"{LABELS[method]} at step {step:,}",
                           pool.at(method, "train_acc", step), target=1.0)

        def pooled(err: dict) -> dict[str, np.ndarray]:
            return {k: np.concatenate([e[k] for e in err.values()])
                    for k in ("inverse_log", "power", "p")}

        gd_arm = (arm("gd", big_t // 100),)  # the rate fits start there
        out = [solver_verdict(pool.flat("svc_angle"), pool.flat("svc_norm_rel"),
                              pool.flat("qp_min_margin")),
               growth_verdict(pool.flat("gd", "velocity_norm_ratio"),
                              pool.flat("gd", "velocity_angle"), big_t, (arm("gd", big_t // 10),)),
               rate_verdict("angle to the SVM direction", "gd_angle_rate", pooled(gd_err), big_t,
                            gd_arm),
               rate_verdict("margin gap 1 - gamma/gamma*", "gd_margin_rate", pooled(gd_gap),
                            big_t, gd_arm),
               normalized_verdict(pool.at("gd", "theta", small_t),
                                  pool.at("ngd", "theta", small_t), small_t, ngd_exp,
                                  (arm("gd", small_t), arm("ngd", small_t)))]
        final = {m: {p: pool.at(m, ("margin_ratio", p), small_t) for p in STEEPEST.values()}
                 for m in STEEPEST}
        out += [steepest_verdict(m, final[m][p], pool.at(m, "theta", small_t), small_t,
                                 (arm(m, small_t),)) for m, p in STEEPEST.items()]
        out.append(own_norm_verdict(final, tuple(arm(m, small_t) for m in STEEPEST)))
        return out

    def _notes(self, pool: _Pool, gd_err: dict, cos_exp: dict, big_t: int) -> list[str]:
        expo = np.concatenate([e["exponent"] for e in gd_err.values()])
        expo_cos = np.concatenate([e["exponent"] for e in cos_exp.values()])
        t_loss = [np.mean([t * 10 ** v for v in pool.at("gd", "log10_loss", t)])
                  for t in (big_t // 10, big_t)]
        return [
            "Rate of plain GD, read two ways. The angle theta is O(1/log t) and 1 - cos = "
            "2 sin^2(theta/2) is O(1/log^2 t): against 1/log t on log-log axes their slopes tend "
            "to 1 and 2 (the project's issue pairs 1 - cos with 1/log t; the exact relation "
            f"gives 1/log^2 t). Measured over steps {big_t // 100:,}..{big_t:,}: slope of theta "
            f"{summarize(expo).fmt(1, 2)}, of 1 - cos {summarize(expo_cos).fmt(1, 2)} (mean ± "
            "std [95% CI]). At finite t the offset in theta ~ 1/(alpha + beta log t) bends these "
            "slopes instance by instance, which is why the rate claims are tested by "
            "extrapolating the 1/(alpha + beta log t) form instead of by the slope.",
            f"Training loss: L(w_t) = O(1/t) (Soudry et al. 2018); measured t L(w_t) = "
            f"{t_loss[0]:.3g} at step {big_t // 10:,} and {t_loss[1]:.3g} at step {big_t:,} (mean "
            "over problems; constant for an exact 1/t), while the angle shrinks only "
            "logarithmically.",
            "With a bias the inputs carry a constant feature 1, so the bias weight is inside the "
            "norm that is maximized (as for GD on a model with a bias parameter); the SVM with an "
            "unpenalized intercept is a different problem. SVC fits an unpenalized intercept, so "
            "it is run on the symmetrized set {(z_i, +1), (-z_i, -1)}, whose optimal intercept "
            "is 0."]

    # -- tables ------------------------------------------------------------------------------
    def _solver_table(self, labs: dict[str, dict[str, Any]]) -> Table:
        rows = []
        for s, r in labs.items():
            rows.append({"setting": s, "problems": len(r["attempts"]),
                         "draws until separable": f"{np.mean(r['attempts']):.2f}",
                         "l2 max margin": summarize(r["gamma"]["l2"]).fmt(1, 3),
                         "l1 max margin": summarize(r["gamma"]["l1"]).fmt(1, 3),
                         "l_inf max margin": summarize(r["gamma"]["linf"]).fmt(1, 3),
                         "support vectors": summarize(r["n_support"]).fmt(1, 1),
                         "QP vs SVC: max 1 - cos": float(np.max(one_minus_cos(r["svc_angle"]))),
                         "QP vs SVC: max |norm ratio - 1|":
                             float(np.max(np.abs(r["svc_norm_rel"])))})
        return Table("Max-margin references per setting (mean ± std [95% CI] over problems)",
                     list(rows[0]), rows)

    def _gd_table(self, labs: dict[str, dict[str, Any]], big_t: int) -> Table:
        rows = []
        for s, r in labs.items():
            g = r["gd"]
            for i, t in enumerate(g["steps"]):
                if not (t >= 10 and np.isclose(np.log10(t), round(np.log10(t)))) and t != big_t:
                    continue
                th = np.array(g["theta"][i])
                rows.append({"setting": s, "step": int(t),
                             "angle to SVM (rad)": summarize(th).fmt(1, 4),
                             "1 - cos": float(np.mean(one_minus_cos(th))),
                             "margin / SVM margin": summarize(g["margin_ratio"]["l2"][i]).fmt(1, 4),
                             "|w| / log t": summarize(np.array(g["norm"][i]) / np.log(t)).fmt(1, 3),
                             "t x loss": float(np.mean(t * 10 ** np.array(g["log10_loss"][i])))})
        return Table("Plain GD on the logistic loss over time (eta = 1/beta; mean ± std [95% CI])",
                     list(rows[0]), rows)

    def _rate_table(self, labs: dict[str, dict[str, Any]], gd_err: dict, gd_gap: dict,
                    cos_exp: dict) -> Table:
        rows = []
        for s in labs:
            for name, e in (("angle theta", gd_err[s]), ("margin gap", gd_gap[s])):
                rows.append({"setting": s, "gap": name,
                             "1/log t fit: error at T (%)": summarize(e["inverse_log"]).fmt(100, 2),
                             "power-law fit: error at T (%)": summarize(e["power"]).fmt(100, 2),
                             "power-law exponent p": summarize(e["p"]).fmt(1, 3),
                             "beta (1/gap per unit log t)": summarize(e["beta"]).fmt(1, 3),
                             "slope vs 1/log t": summarize(e["exponent"]).fmt(1, 2)})
            rows.append({"setting": s, "gap": "1 - cos",
                         "slope vs 1/log t": summarize(cos_exp[s]["exponent"]).fmt(1, 2)})
        return Table("Rate of plain GD: fits on steps T/100..T/10 predicting T; slopes on "
                     "log-log axes over T/100..T", list(rows[0]), rows)

    def _norm_table(self, labs: dict[str, dict[str, Any]]) -> Table:
        rows = []
        for s, r in labs.items():
            for key in LABELS:  # references first, then the methods
                row = {"setting": s, "direction": LABELS[key]}
                for p in NORM_LABEL:
                    row[f"{NORM_LABEL[p]} margin / max"] = summarize(
                        r["directions"][key][p]).fmt(1, 4)
                rows.append(row)
        return Table("Margins of each direction in each norm, as a fraction of that norm's max "
                     "margin (GD after gd_steps, the others after normalized_steps; mean ± std "
                     "[95% CI])", list(rows[0]), rows)

    # -- figures -----------------------------------------------------------------------------
    def _angle_figure(self, labs: dict[str, dict[str, Any]], out: Any) -> Any:
        from overparam.report.figures import figure, save

        fig, (a1, a2, a3) = figure(width=15.0, height=4.4, ncols=3)
        anchor = None
        for s, r in labs.items():
            for method in ("gd", "ngd"):
                t = np.array(r[method]["steps"], dtype=float)
                _band(a1, t, np.array(r[method]["theta"]), f"{LABELS[method]}, {s}",
                      COLORS[method], STYLES[s], floor=1e-6)
            t = np.array(r["gd"]["steps"], dtype=float)
            keep = t >= 10
            theta = np.array(r["gd"]["theta"])[keep]
            _band(a2, np.log(t[keep]), 1.0 / theta, f"GD, {s}", COLORS["gd"], STYLES[s])
            gap = one_minus_cos(theta)
            _band(a3, 1.0 / np.log(t[keep]), gap, f"GD, {s}", COLORS["gd"], STYLES[s],
                  floor=1e-9)
            anchor = anchor or (1.0 / np.log(t[keep][-1]), float(gap[-1].mean()))
        x = np.geomspace(anchor[0], 1.0 / np.log(10.0), 20)
        for slope, style, text in ((1, ":", "slope 1: ~1/log t"),
                                   (2, "-.", "slope 2: ~1/log^2 t")):
            a3.plot(x, anchor[1] * (x / x[0]) ** slope, "k" + style, lw=1, label=text)
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel("step t")
        a1.set_ylabel("angle to the l2 SVM direction (rad)")
        a1.set_title("Direction error: GD vs normalized GD")
        a2.set_xlabel("log t")
        a2.set_ylabel("1 / angle (1/rad)")
        a2.set_title("GD: 1/angle against log t (a line: ~1/log t)")
        a3.set_xscale("log")
        a3.set_yscale("log")
        a3.set_xlabel("1 / log t")
        a3.set_ylabel("1 - cos(w_t, w_svm)")
        a3.set_title("GD: 1 - cos against 1/log t (t grows leftward)")
        for ax in (a1, a2, a3):
            ax.legend(fontsize=7)
        return save(fig, out, "gd_direction")

    def _margin_figure(self, labs: dict[str, dict[str, Any]], out: Any) -> Any:
        from overparam.report.figures import figure, save

        fig, ax = figure(width=7.0, height=4.6)
        own = {"gd": "l2", **STEEPEST}
        for s, r in labs.items():
            for method, p in own.items():
                t = np.array(r[method]["steps"], dtype=float)
                gap = 1 - np.array(r[method]["margin_ratio"][p])
                keep = (t >= 10) & (gap.min(axis=1) > 0)
                _band(ax, t[keep], gap[keep], f"{LABELS[method]}: {NORM_LABEL[p]}, {s}",
                      COLORS[method], STYLES[s], floor=1e-7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step t")
        ax.set_ylabel("margin gap 1 - gamma(w_t) / gamma* (own norm)")
        ax.set_title("Each method against its own norm's max margin")
        ax.legend(fontsize=7)
        return save(fig, out, "margin_gaps")


def _band(ax: Any, x: np.ndarray, values: np.ndarray, label: str, color: str, style: str,
          floor: float | None = None) -> None:
    """Mean over instances (``values``: ``(points, instances)``) with its 95% t band; ``floor``
    keeps the band's lower edge positive on log axes."""
    from overparam.report.figures import band

    sums = [summarize(v) for v in values]
    low = [x.ci_low if floor is None else max(x.ci_low, floor) for x in sums]
    band(ax, x, [x.mean for x in sums], low, [x.ci_high for x in sums], label, color=color,
         marker="")
    ax.lines[-1].set_linestyle(style)


class _Pool:
    """Values of all settings' instances, concatenated (the claims pool both settings)."""

    def __init__(self, labs: dict[str, dict[str, Any]]):
        self.labs = labs

    def flat(self, *keys: str) -> list[float]:
        out: list[float] = []
        for r in self.labs.values():
            v = r
            for k in keys:
                v = v[k]
            out += list(v)
        return out

    def at(self, method: str, field: str | tuple[str, str], step: int) -> list[float]:
        """``field`` (e.g. ``theta`` or ``("margin_ratio", "l1")``) of ``method`` at ``step``."""
        out: list[float] = []
        for r in self.labs.values():
            m = r[method]
            v = m[field] if isinstance(field, str) else m[field[0]][field[1]]
            out += list(v[m["steps"].index(step)])
        return out
