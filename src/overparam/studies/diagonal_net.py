"""Diagonal linear networks: does the init scale move gradient descent from the min-l2 (kernel)
to the min-l1 (rich) interpolant, through Woodworth et al.'s ``Q_alpha`` interpolants?

Source: Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020, "Kernel and
rich regimes in overparametrized models" (arXiv:2002.09277), Theorem 1: gradient flow on
``w = u*u - v*v`` from ``u = v = alpha 1`` for under-determined least squares converges to
``argmin Q_alpha(w) s.t. Xw = y`` (:mod:`overparam.theory.diagonal`), which tends to the min-l2
interpolant as ``alpha -> inf`` and to the min-l1 one as ``alpha -> 0``. Seed 004 (Sec. 7.1,
Theorem 7.1) states the opposite direction: "Small alpha: bias toward kernel regime, minimal
feature learning; large alpha: stronger feature learning". This study measures which it is.

Protocol (the project issue's small-scale design of the paper's sparse-regression experiment):
``X`` (n x d) iid N(0, 1), ``w*`` k-sparse with N(0, 1) values, ``y = X w*`` (no noise);
gradient descent on ``(u, v)`` -- a small step that approximates gradient flow (relative step
``rel_step``; GD's O(step) deviation from the flow's limit is described in the theory module) --
for a log ladder of ``alpha``, every (alpha, seed) to a training loss ``||Xw - y||^2 / (2n) <=
loss_target``; references per instance: min-l1 (``scipy.optimize.linprog``), min-l2 (pinv), and
the ``Q_alpha`` interpolant from an independent convex solver (its dual, damped Newton). Claims:
the GD limit equals the ``Q_alpha`` interpolant at every alpha (the exact claim, within
``match_tol``); it matches min-l1 at the smallest alpha and min-l2 at the largest (one-sample TOST
of the relative l2 distance against 0, margin ``margin``); seed 004's direction (TOST against the
kernel interpolant at the smallest alpha); and the rich limit's better recovery of ``w*``
(Welch). Everything trains no torch model and is cached in the store by its settings.

Quick preset: d=100, n=40, k=5, 9 alphas from 1e-3 to 10, 5 seeds; about 20 s of CPU (30 s wall
on 2 cores shared with other jobs; the smallest alphas take up to ~6e5 GD steps). Paper preset: a 5x larger instance of the same
design, 20 seeds, a quarter-decade ladder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.verdicts import loss_arm, tost_test, welch_test

SEED004 = ("seed 004 Thm 7.1: 'Small alpha: bias toward kernel regime, minimal feature "
           "learning; Large alpha: stronger feature learning'")


@dataclass(frozen=True)
class DiagonalNetConfig:
    d: int = 100
    n: int = 40
    k: int = 5
    alphas: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
    seeds: int = 5
    rel_step: float = 0.01  # c: each step moves every log(u_i), log(v_i) by at most c
    stability: float = 1.6  # eta * (curvature bound) at most this (< 2: stable)
    loss_target: float = 1e-10
    max_steps: int = 1_000_000
    match_tol: float = 1e-2  # the exact claim: relative l2 distance GD vs Q_alpha solver
    margin: float = 0.05  # TOST margin of "matches min-l1 / min-l2" (relative l2 distance)

    def __post_init__(self) -> None:
        for name in ("d", "n", "k", "seeds", "max_steps"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ConfigError(name, v, "a positive integer")
        if not self.n < self.d:
            raise ConfigError("n", self.n, f"fewer samples than dimensions (d={self.d}): "
                              "an under-determined problem")
        if not self.k <= self.n:
            raise ConfigError("k", self.k, f"a sparsity at most n={self.n}")
        if self.seeds < 2:
            raise ConfigError("seeds", self.seeds, "an integer >= 2 (intervals need two)")
        a = self.alphas
        if len(a) < 2 or any(not (x > 0) for x in a) or list(a) != sorted(set(a)):
            raise ConfigError("alphas", a, "at least two positive init scales, increasing")
        if not 0 < self.rel_step <= 0.5:
            raise ConfigError("rel_step", self.rel_step, "a relative step in (0, 0.5]")
        if not 0 < self.stability < 2:
            raise ConfigError("stability", self.stability, "a number in (0, 2)")
        for name in ("loss_target", "match_tol", "margin"):
            v = getattr(self, name)
            if not (isinstance(v, float | int) and v > 0):
                raise ConfigError(name, v, "a positive number")


PRESETS = {
    "quick": DiagonalNetConfig(),
    "paper": DiagonalNetConfig(d=500, n=200, k=25, seeds=20, max_steps=3_000_000,
                               alphas=tuple(float(f"{10 ** (e / 4):.4g}")
                                            for e in range(-12, 5))),
}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def compute(cfg: DiagonalNetConfig) -> dict[str, Any]:
    """Train every (seed, alpha) and solve the references; JSON-ready per-seed lists."""
    from overparam.theory.diagonal import (
        min_l1_interpolant,
        min_l2_interpolant,
        q_alpha_interpolant,
        sparse_regression,
        train_diagonal,
    )

    probs = [sparse_regression(cfg.d, cfg.n, cfg.k, seed) for seed in range(cfg.seeds)]
    na = len(cfg.alphas)
    x = np.stack([p[0] for p in probs for _ in cfg.alphas])
    y = np.stack([p[1] for p in probs for _ in cfg.alphas])
    alpha = np.array([a for _ in probs for a in cfg.alphas])
    run = train_diagonal(x, y, alpha, rel_step=cfg.rel_step, stability=cfg.stability,
                         target=cfg.loss_target, max_steps=cfg.max_steps)
    out: dict[str, Any] = {k: [] for k in (
        "l1", "l2", "to_l1", "to_l2", "to_q", "recovery", "loss", "met", "steps", "movement",
        "ref_l1_norm", "ref_l2_norm", "ref_l1_recovery", "ref_l2_recovery", "q_iterations")}
    for s, (xs, ys, w_star) in enumerate(probs):
        w1, w2 = min_l1_interpolant(xs, ys), min_l2_interpolant(xs, ys)
        out["ref_l1_norm"].append(float(np.abs(w1).sum()))
        out["ref_l2_norm"].append(float(np.linalg.norm(w2)))
        out["ref_l1_recovery"].append(_rel(w1, w_star))
        out["ref_l2_recovery"].append(_rel(w2, w_star))
        rows = {k: [] for k in ("l1", "l2", "to_l1", "to_l2", "to_q", "recovery", "loss",
                                "met", "steps", "movement", "q_iterations")}
        for j, a in enumerate(cfg.alphas):
            i = s * na + j
            w = run.w[i]
            q = q_alpha_interpolant(xs, ys, a)
            rows["l1"].append(float(np.abs(w).sum()))
            rows["l2"].append(float(np.linalg.norm(w)))
            rows["to_l1"].append(_rel(w, w1))
            rows["to_l2"].append(_rel(w, w2))
            rows["to_q"].append(_rel(w, q.w))
            rows["recovery"].append(_rel(w, w_star))
            rows["loss"].append(float(run.loss[i]))
            rows["met"].append(bool(run.met[i]))
            rows["steps"].append(int(run.steps[i]))
            rows["movement"].append(float(run.movement[i]))
            rows["q_iterations"].append(int(q.iterations))
        for k, v in rows.items():
            out[k].append(v)
    return out


# -- verdicts: plain functions of numbers ------------------------------------------------------
def q_alpha_verdict(alphas: list[float], to_q: list[list[float]], loss: list[list[float]],
                    met: list[list[bool]], target: float, tol: float) -> Verdict:
    """The exact claim: at every alpha and seed, the GD limit is within ``tol`` (relative l2) of
    the Q_alpha interpolant. ``to_q[s][j]``: seed s, alpha j."""
    arr = np.asarray(to_q)
    worst = float(arr.max())
    j = int(np.unravel_index(arr.argmax(), arr.shape)[1])
    per = ", ".join(f"{a:g}: {arr[:, i].max():.1e}" for i, a in enumerate(alphas))
    return Verdict(
        "the GD limit is Woodworth et al.'s Q_alpha-minimizing interpolant at every init scale",
        f"max relative l2 distance GD vs the convex solver {worst:.2e} (at alpha={alphas[j]:g}) "
        f"over {arr.size} runs, tolerance {tol:g} (GD's O(step) bias); worst per alpha: {per}",
        criteria=worst <= tol, claim_id="q_alpha_limit",
        blueprint="Woodworth et al. 2020 Thm 1: the gradient-flow limit minimizes Q_alpha "
                  "among interpolants (exact)",
        ours=f"max {worst:.2e}", arms=tuple(
            loss_arm(f"alpha={a:g}", [m[i] for m in met], [ls[i] for ls in loss], target)
            for i, a in enumerate(alphas)),
        controls="independent dual Newton solver; every run at the loss target")


def limit_verdict(which: str, alpha: float, dist: list[float], loss: list[float],
                  met: list[bool], target: float, margin: float) -> Verdict:
    """GD at the extreme alpha matches min-l1 (``which='l1'``) or min-l2: one-sample TOST of the
    per-seed relative l2 distance against 0 with the stated margin."""
    t = tost_test(dist, [0.0] * len(dist), margin, scale=100.0, unit="%")
    regime = "rich (min-l1)" if which == "l1" else "kernel (min-l2)"
    return Verdict(
        f"at alpha={alpha:g} gradient descent finds the {regime} interpolant",
        f"relative l2 distance ||w - w_{which}|| / ||w_{which}||, {len(dist)} seeds: "
        f"{summarize(dist).fmt(1, 4)}; one-sample TOST vs 0: {t.text}",
        p=t.p, test=f"one-sample TOST (margin {margin:g})", equivalence=True,
        outside=t.outside, claim_id=f"{which}_limit", effect=t.effect,
        blueprint=("Woodworth et al.: alpha -> 0 gives min-l1" if which == "l1" else
                   "Woodworth et al.: alpha -> inf gives min-l2 (the kernel regime)"),
        ours=f"{np.mean(dist):.2e} (95% CI {summarize(dist).ci_low:.2e}, "
             f"{summarize(dist).ci_high:.2e})",
        arms=(loss_arm(f"alpha={alpha:g}", met, loss, target),))


def seed004_verdict(alpha_small: float, alpha_large: float, to_l2_small: list[float],
                    to_l1_small: list[float], move_small: list[float],
                    move_large: list[float], loss: list[float], met: list[bool], target: float,
                    margin: float) -> Verdict:
    """Seed 004's direction: small alpha gives the kernel regime. Tested as its prediction
    that the small-alpha limit matches the kernel (min-l2) interpolant (TOST, margin)."""
    t = tost_test(to_l2_small, [0.0] * len(to_l2_small), margin, scale=100.0, unit="%")
    rich = np.mean(to_l1_small) < np.mean(to_l2_small)
    why = (". The direction is backwards: small init is the rich regime" if rich else
           ". The small-init limit is nearer the kernel interpolant than the rich one")
    return Verdict(
        "seed 004: small initialization gives the kernel regime (its limit is the kernel, "
        "min-l2, interpolant; minimal feature learning)",
        f"at alpha={alpha_small:g}: distance to min-l2 {summarize(to_l2_small).fmt(1, 3)} but "
        f"to min-l1 {summarize(to_l1_small).fmt(1, 4)}; parameters moved "
        f"{np.mean(move_small):.3g}x their init norm (vs {np.mean(move_large):.3g}x at "
        f"alpha={alpha_large:g}); one-sample TOST of the min-l2 distance vs 0: {t.text}{why}",
        p=t.p, test=f"one-sample TOST (margin {margin:g})", equivalence=True, outside=t.outside,
        claim_id="seed004_small_init", blueprint=SEED004,
        ours=f"distance to min-l2 {np.mean(to_l2_small):.3g}, to min-l1 "
             f"{np.mean(to_l1_small):.2g}",
        arms=(loss_arm(f"alpha={alpha_small:g}", met, loss, target),))


def recovery_verdict(alpha_small: float, alpha_large: float, rec_small: list[float],
                     rec_large: list[float], arms: tuple) -> Verdict:
    """The rich limit recovers the sparse ``w*`` better than the kernel one (Welch)."""
    w = welch_test(rec_small, rec_large, scale=100.0, unit="% of ||w*||")
    return Verdict(
        "the rich regime generalizes better on sparse regression: smaller recovery error "
        f"||w - w*|| / ||w*|| at alpha={alpha_small:g} than at alpha={alpha_large:g}",
        f"{np.mean(rec_small):.3g} vs {np.mean(rec_large):.3g}: {w.text}",
        criteria=w.diff < 0, p=w.p, test="Welch", claim_id="sparse_recovery", effect=w.effect,
        blueprint="Woodworth et al. Sec. 1/Fig. 1: small init generalizes better on sparse "
                  "problems", ours=w.ours, arms=arms)


class DiagonalNet(Study):
    name = "diagonal_net"
    CAPTIONS = {
        "norms_vs_alpha": (
            "l1 and l2 norms of the interpolant gradient descent reaches on the diagonal "
            "network w = u^2 - v^2, divided by the minimum of each norm among all interpolants, "
            "against the initialization scale alpha (mean over problem instances, 95% CI "
            "bands). Small alpha tends to the minimum-l1 solution, large alpha to the "
            "minimum-l2 one (Woodworth et al. 2020)."
        ),
        "distances_vs_alpha": (
            "Relative distance of the gradient-descent limit to the minimum-l1 interpolant, the "
            "minimum-l2 interpolant and Woodworth et al.'s Q_alpha interpolant, against the "
            "initialization scale alpha (mean over instances, 95% CI bands); dotted: the "
            "tolerance of the claims."
        ),
        "recovery_vs_alpha": (
            "Recovery error of the sparse ground truth w* by the gradient-descent limit against "
            "the initialization scale alpha (mean over instances, 95% CI band); horizontal "
            "lines: the minimum-l1 and minimum-l2 interpolants' errors."
        ),
    }
    Config = DiagonalNetConfig
    PRESETS = PRESETS

    def _spec(self, cfg: DiagonalNetConfig) -> dict[str, Any]:
        keep = ("d", "n", "k", "alphas", "seeds", "rel_step", "stability", "loss_target",
                "max_steps")
        full = dataclasses.asdict(cfg)
        return {"what": "diagonal_gd", **{k: (list(full[k]) if isinstance(full[k], tuple)
                                             else full[k]) for k in keep}}

    def _results(self, cfg: DiagonalNetConfig, ctx: StudyContext) -> dict[str, Any]:
        return ctx.computed(self.name, self._spec(cfg), lambda: compute(cfg))

    def run(self, cfg: DiagonalNetConfig, ctx: StudyContext) -> None:
        self._results(cfg, ctx)

    def analyze(self, cfg: DiagonalNetConfig, ctx: StudyContext, preset: str) -> StudyReport:
        res = self._results(cfg, ctx)
        rep = StudyReport(self.name, preset)
        alphas = list(cfg.alphas)
        col = {k: np.asarray(res[k], dtype=float) for k in (
            "l1", "l2", "to_l1", "to_l2", "to_q", "recovery", "loss", "steps", "movement")}
        met = [[bool(v) for v in row] for row in res["met"]]
        l1_ratio = col["l1"] / np.asarray(res["ref_l1_norm"])[:, None]
        l2_ratio = col["l2"] / np.asarray(res["ref_l2_norm"])[:, None]

        # tables
        rows = []
        for j, a in enumerate(alphas):
            rows.append({
                "alpha": a, "||w||_1 / min ||w||_1": summarize(l1_ratio[:, j]).fmt(1, 4),
                "||w||_2 / min ||w||_2": summarize(l2_ratio[:, j]).fmt(1, 4),
                "dist. to min-l1": float(col["to_l1"][:, j].mean()),
                "dist. to min-l2": float(col["to_l2"][:, j].mean()),
                "dist. to Q_alpha (max)": float(col["to_q"][:, j].max()),
                "recovery error": summarize(col["recovery"][:, j]).fmt(1, 3),
                "param. movement": float(col["movement"][:, j].mean()),
                "GD steps (max)": int(col["steps"][:, j].max()),
                "train loss (max)": float(col["loss"][:, j].max())})
        rep.tables.append(Table(
            f"Diagonal linear network vs init scale (d={cfg.d}, n={cfg.n}, k={cfg.k}, "
            f"{cfg.seeds} seeds; distances relative l2, mean over seeds)", list(rows[0]), rows))
        rep.tables.append(Table("References per instance", ["seed", "min ||w||_1", "min ||w||_2",
                                                            "min-l1 recovery error",
                                                            "min-l2 recovery error"],
                                [{"seed": s, "min ||w||_1": res["ref_l1_norm"][s],
                                  "min ||w||_2": res["ref_l2_norm"][s],
                                  "min-l1 recovery error": res["ref_l1_recovery"][s],
                                  "min-l2 recovery error": res["ref_l2_recovery"][s]}
                                 for s in range(cfg.seeds)]))

        # verdicts
        lo, hi = 0, len(alphas) - 1
        loss = [list(r) for r in col["loss"]]
        rep.verdicts.append(q_alpha_verdict(alphas, res["to_q"], loss, met, cfg.loss_target,
                                            cfg.match_tol))
        for which, j in (("l1", lo), ("l2", hi)):
            rep.verdicts.append(limit_verdict(
                which, alphas[j], list(col[f"to_{which}"][:, j]), list(col["loss"][:, j]),
                [m[j] for m in met], cfg.loss_target, cfg.margin))
        rep.verdicts.append(seed004_verdict(
            alphas[lo], alphas[hi], list(col["to_l2"][:, lo]), list(col["to_l1"][:, lo]),
            list(col["movement"][:, lo]), list(col["movement"][:, hi]), list(col["loss"][:, lo]),
            [m[lo] for m in met], cfg.loss_target, cfg.margin))
        rep.verdicts.append(recovery_verdict(
            alphas[lo], alphas[hi], list(col["recovery"][:, lo]), list(col["recovery"][:, hi]),
            tuple(loss_arm(f"alpha={alphas[j]:g}", [m[j] for m in met], list(col["loss"][:, j]),
                           cfg.loss_target) for j in (lo, hi))))
        rep.notes.append(
            f"Gradient descent approximates gradient flow with a relative step c={cfg.rel_step:g} "
            "(no log-coordinate moves by more than c per step); GD's limit is the Q-interpolant "
            "of a slightly smaller, coordinate-wise init scale (Even et al. 2023, "
            "arXiv:2302.08982), an O(c) deviation: the largest distance to the Q_alpha solver, "
            f"{col['to_q'].max():.1e}, is that bias plus the residual at the loss target.")
        rep.facts.update({"diag_max_dist_q": float(col["to_q"].max()),
                          "diag_small_alpha_dist_l1": float(col["to_l1"][:, lo].mean()),
                          "diag_large_alpha_dist_l2": float(col["to_l2"][:, hi].mean())})
        self._figures(cfg, ctx, rep, col, l1_ratio, l2_ratio, res)
        return rep

    def _figures(self, cfg: DiagonalNetConfig, ctx: StudyContext, rep: StudyReport,
                 col: dict[str, np.ndarray], l1_ratio: np.ndarray, l2_ratio: np.ndarray,
                 res: dict[str, Any]) -> None:
        from overparam.report.figures import band, figure, save

        out = ctx.figure_dir(self.name)
        a = list(cfg.alphas)
        title = f"d={cfg.d}, n={cfg.n}, k={cfg.k}, {cfg.seeds} seeds (95% CI)"

        def bands(ax: Any, arr: np.ndarray, label: str) -> None:
            sums = [summarize(arr[:, j]) for j in range(arr.shape[1])]
            band(ax, a, [s.mean for s in sums], [s.ci_low for s in sums],
                 [s.ci_high for s in sums], label)

        fig, ax = figure()
        bands(ax, l1_ratio, "||w||_1 / min-l1 interpolant's ||w||_1")
        bands(ax, l2_ratio, "||w||_2 / min-l2 interpolant's ||w||_2")
        ax.axhline(1.0, color="k", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("init scale alpha (u = v = alpha at start)")
        ax.set_ylabel("norm ratio (1 = that norm's minimum)")
        ax.set_title(f"Norms of the GD solution, {title}", fontsize=9)
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "norms_vs_alpha"))

        fig, ax = figure()
        for key, label in (("to_l1", "to the min-l1 interpolant"),
                           ("to_l2", "to the min-l2 interpolant"),
                           ("to_q", "to the Q_alpha interpolant (convex solver)")):
            bands(ax, np.maximum(col[key], 1e-16), label)
        ax.axhline(cfg.match_tol, color="k", lw=1, ls=":", label=f"tolerance {cfg.match_tol:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("init scale alpha")
        ax.set_ylabel("relative l2 distance ||w - w_ref|| / ||w_ref||")
        ax.set_title(f"GD limit vs references, {title}", fontsize=9)
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "distances_vs_alpha"))

        fig, ax = figure()
        bands(ax, col["recovery"], "GD on the diagonal network")
        for key, label, ls in (("ref_l1_recovery", "min-l1 interpolant", "--"),
                               ("ref_l2_recovery", "min-l2 interpolant", ":")):
            ax.axhline(float(np.mean(res[key])), color="k", lw=1, ls=ls, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("init scale alpha")
        ax.set_ylabel("recovery error ||w - w*|| / ||w*||")
        ax.set_title(f"Recovery of the sparse w*, {title}", fontsize=9)
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "recovery_vs_alpha"))
