"""Edge of stability: does full-batch GD's sharpness rise to 2/eta and hover there? (Cohen, Kaur,
Li, Kolter & Talwalkar 2021, "Gradient descent on neural networks typically occurs at the edge of
stability", arXiv:2103.00065.)

Question: gradient descent with step size eta on a quadratic with top curvature lambda is stable
only while ``lambda < 2/eta`` (the iterate's component along that eigenvector is multiplied by
``1 - eta lambda`` each step). Cohen et al. observe *progressive sharpening* -- the top Hessian
eigenvalue ``lambda_max`` of the training loss rises during training -- up to that threshold, and
then an *edge of stability*: ``lambda_max`` hovers at or just above ``2/eta`` while the loss keeps
falling over long stretches, non-monotonically. With heavy-ball momentum ``beta`` (PyTorch's
``v <- beta v + g``, ``w <- w - eta v``) the stability threshold of a quadratic is
``(2 + 2 beta)/eta``, and sharpness hovers there instead (their Sec. 4 / App. D). With
cross-entropy the sharpness finally falls once the data are fitted (the curvature of the
logistic loss shrinks with the margin; their App. C). Under gradient flow (the ``eta -> 0`` limit)
nothing caps the sharpness: it keeps rising past the 2/eta of the GD runs, which part from the
flow once they reach it (their Fig. 1/Sec. 3).

Protocol (their small-scale protocol, on MNIST-1D instead of a 5,000-sample CIFAR-10 subset): a
fully connected network of two hidden layers of width 200 with tanh (their architecture; and the
ReLU version), full-batch GD at constant step, mean squared error ``1/2 sum_c (f_c - onehot_c)^2``
as the main loss (theirs) and cross-entropy as the contrast, 500 training samples; a ladder of
step sizes; ``lambda_max`` of every member every ``every`` steps on the whole training set by
Lanczos (the sharpness-tracker intervention, a per-step series in the store); gradient flow
approximated by GD at a small step ``flow_lr`` (stable: its own ``lambda_max`` stays far below its
``2/flow_lr``), compared with the GD runs at equal *time* ``t = eta x step``.

Per arm: the peak of ``lambda_max`` against its threshold, the first step at which it reaches
``0.9 x`` threshold, the mean ratio ``lambda_max / threshold`` after that step (hovering), and how
often the training loss rises from one step to the next before and after it (per 100 steps; GD
is one step per epoch, so the per-epoch history is per step).

Every arm has a training target: final training accuracy >= ``target_acc`` within the step budget
(the gradient-flow reference excepted: its budget is a time horizon, not a fit); an arm that misses
it makes the verdicts that use it INCONCLUSIVE, saying which and by how much.

Quick preset: 7 arms x 3 seeds x 2,000 steps on 500 samples (on 1,000 samples 2,000 steps left the
eta = 0.15 and 0.2 arms 1.2-1.3 pp short of the 99% target and 3,000 steps cost 10 CPU minutes,
measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.errors import ConfigError
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import acc_arm, budget_arm

REACHED = 0.9  # lambda_max >= 0.9 x threshold counts as reaching it
HOVER = (0.85, 1.25)  # after the crossing, the mean lambda_max / threshold lies in this band
COLLAPSE = 0.5  # cross-entropy: the final lambda_max below half its peak counts as a collapse


@dataclass(frozen=True)
class EdgeOfStabilityConfig(Training):
    n_train: int = 500
    lr_scaling: str = "none"
    model: str = "tanhmlp_w200_d3"
    relu_model: str = "mlp_w200_d3"
    lrs: tuple[float, ...] = (0.15, 0.2, 0.25)  # the MSE ladder: 2/eta = 13.3, 10, 8
    relu_lr: float = 0.2
    # with beta = 0.9: threshold (2 + 2 beta)/eta = 38; at eta = 0.2 and 0.3 (thresholds 19 and
    # 12.7) GD with this momentum diverged within its first 100 steps (measured)
    momentum_lr: float = 0.1
    beta: float = 0.9
    ce_lr: float = 0.2
    flow_lr: float = 0.04
    steps: int = 2000
    every: int = 50
    eval_every: int = 50  # test-set evaluations (GD takes one step per epoch)
    hessian_samples: int = 1000
    target_acc: float = 0.99  # each arm's training target, reached within the step budget

    def check(self) -> None:
        super().check()
        for name in ("relu_lr", "momentum_lr", "ce_lr", "flow_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "a positive step size")
        if not self.lrs or min(self.lrs) <= 0:
            raise ConfigError("lrs", self.lrs, "positive step sizes")
        if not 0.0 < self.beta < 1.0:
            raise ConfigError("beta", self.beta, "a momentum in (0, 1)")
        if self.flow_lr >= min(self.lrs):
            raise ConfigError("flow_lr", self.flow_lr,
                              f"a step below the GD ladder's smallest ({min(self.lrs)})")
        if not 0 < self.every <= self.steps:
            raise ConfigError("every", self.every, f"a step interval in [1, steps={self.steps}]")


PRESETS = {
    "quick": EdgeOfStabilityConfig(),
    # Cohen et al.'s CIFAR-10 protocol: a 5,000-sample subset, the same fully connected network,
    # step sizes 2/30 .. 2/120 (tanh, MSE); 5 seeds (the blueprint's count).
    "paper": EdgeOfStabilityConfig(data="cifar10", n_train=5000, lrs=(2 / 30, 2 / 60, 2 / 120),
                                   relu_lr=2 / 60, momentum_lr=3.8 / 60, ce_lr=2 / 60,
                                   flow_lr=0.005, steps=5000, every=100, hessian_samples=5000,
                                   eval_every=100, seeds=5),
}


@dataclass(frozen=True)
class Arm:
    """One arm of the study: which network, loss, step, momentum; its stability threshold."""

    label: str
    role: str  # "mse", "relu", "momentum", "ce", "flow"
    model: str
    loss: str
    lr: float
    beta: float = 0.0

    @property
    def threshold(self) -> float:
        return (2.0 + 2.0 * self.beta) / self.lr


def arms(cfg: EdgeOfStabilityConfig) -> list[Arm]:
    out = [Arm(f"MSE, tanh, eta={lr:g}", "mse", cfg.model, "mse", lr) for lr in cfg.lrs]
    out += [Arm(f"MSE, ReLU, eta={cfg.relu_lr:g}", "relu", cfg.relu_model, "mse", cfg.relu_lr),
            Arm(f"MSE, tanh, eta={cfg.momentum_lr:g}, momentum {cfg.beta:g}", "momentum",
                cfg.model, "mse", cfg.momentum_lr, cfg.beta),
            # "auto" is cross-entropy on class labels (and keeps the run ids of that default)
            Arm(f"cross-entropy, tanh, eta={cfg.ce_lr:g}", "ce", cfg.model, "auto", cfg.ce_lr),
            Arm(f"gradient flow (GD, eta={cfg.flow_lr:g}), MSE, tanh", "flow", cfg.model, "mse",
                cfg.flow_lr)]
    return out


def _nanmean(values: Any) -> float:
    """Mean of the finite values; nan (without a warning) when there are none."""
    v = np.asarray(values, dtype=float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def crossing(steps: np.ndarray, lam: np.ndarray, threshold: float) -> int | None:
    """The first measured step at which lambda_max >= REACHED x threshold (None: never)."""
    hit = np.nonzero(lam >= REACHED * threshold)[0]
    return int(steps[hit[0]]) if len(hit) else None


def rises_per_100(loss: np.ndarray) -> float:
    """How often the loss rose from one step to the next, per 100 steps (nan: < 2 steps)."""
    return 100.0 * float((np.diff(loss) > 0).mean()) if len(loss) > 1 else float("nan")


def hover_ratio(steps: np.ndarray, lam: np.ndarray, threshold: float, cross: int | None
                ) -> float:
    """Mean lambda_max / threshold over the measurements after the crossing (nan: none)."""
    if cross is None or not (after := steps > cross).any():
        return float("nan")
    return float(lam[after].mean() / threshold)


@dataclass
class Measured:
    """Per seed of one arm: its series and what the analysis reads off them."""

    arm: Arm
    steps: list[np.ndarray]
    lam: list[np.ndarray]
    loss: list[np.ndarray]
    train_acc: list[float]
    test_acc: list[float]

    @property
    def peaks(self) -> list[float]:
        return [float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")
                for v in self.lam]

    @property
    def crossings(self) -> list[int | None]:
        return [crossing(s, v, self.arm.threshold) for s, v in zip(self.steps, self.lam)]

    @property
    def hover(self) -> list[float]:
        return [hover_ratio(s, v, self.arm.threshold, c)
                for s, v, c in zip(self.steps, self.lam, self.crossings)]

    def rises(self) -> tuple[list[float], list[float]]:
        """Loss rises per 100 steps before and after each seed's crossing. ``loss[i]`` is the
        loss after step ``i + 1``: before the crossing at step c are ``loss[:c]``, after it
        ``loss[c - 1:]``."""
        before, after = [], []
        for ls, c in zip(self.loss, self.crossings):
            before.append(rises_per_100(ls[:c] if c else ls))
            after.append(rises_per_100(ls[c - 1:]) if c else float("nan"))
        return before, after

    def target(self, target_acc: float) -> Any:
        if self.arm.role == "flow":
            return budget_arm(self.arm.label, "a time horizon, not a fit")
        return acc_arm(self.arm.label, self.train_acc, target_acc)


def at_time(steps: np.ndarray, lam: np.ndarray, lr: float, t: float) -> float:
    """lambda_max of a run with step ``lr`` at time ``t = lr x step`` (linear interpolation)."""
    return float(np.interp(t, steps * lr, lam))


class EdgeOfStability(Study):
    name = "edge_of_stability"
    CAPTIONS = {
        "sharpness_vs_time_mse": (
            "Left: top Hessian eigenvalue of the training loss (MSE, tanh network) against time "
            "eta x step for full-batch GD at each step size (bold: seed 0, thin: the other "
            "seeds) with each 2/eta dashed, and gradient flow (dotted black). GD's sharpness "
            "rises to 2/eta and hovers there (Cohen et al. 2021). Right: the training loss of "
            "seed 0, falling non-monotonically at the edge of stability."
        ),
        "sharpness_relu_momentum_ce": (
            "Top Hessian eigenvalue against step, every seed, for three variants: a ReLU "
            "network, heavy-ball momentum (threshold (2 + 2 beta)/eta) and cross-entropy loss "
            "(dashed: each run's stability threshold)."
        ),
    }
    Config = EdgeOfStabilityConfig
    PRESETS = PRESETS

    def plan(self, cfg: EdgeOfStabilityConfig) -> list[PlannedRun]:
        from overparam.train.interventions import SharpnessTracker

        tracker = SharpnessTracker(every=cfg.every, samples=cfg.hessian_samples)
        return [PlannedRun(cfg.train_config(
            arm.model, steps=cfg.steps, interventions=(tracker,), loss=arm.loss,
            eval_every=cfg.eval_every,
            optim=OptimConfig(name="gd", lr=arm.lr, momentum=arm.beta, lr_scaling="none",
                              schedule="constant")), cfg.seed_ids, (("arm", arm),))
            for arm in arms(cfg)]

    def analyze(self, cfg: EdgeOfStabilityConfig, ctx: StudyContext, preset: str
                ) -> StudyReport:
        rep = StudyReport(self.name, preset)
        measured = [_measure(ctx, p) for p in self.plan(cfg)]
        by_role: dict[str, list[Measured]] = {}
        for m in measured:
            by_role.setdefault(m.arm.role, []).append(m)
        rep.tables.append(Table(
            f"Sharpness of full-batch GD on {cfg.data} (n={cfg.n_train}), {cfg.steps} steps, "
            f"{cfg.seeds} seeds; lambda_max on all training samples every {cfg.every} steps",
            ["arm", "threshold", "peak lambda_max", "peak / threshold",
             "step reaching 0.9 x threshold", "lambda_max / threshold after",
             "loss rises per 100 steps before", "after", "final lambda_max",
             "final train loss", "final train acc (%)", "test acc (%)"],
            [_row(m) for m in measured]))
        rep.verdicts += _verdicts(cfg, by_role)
        rep.notes.append(
            f"Thresholds: 2/eta without momentum, (2 + 2 beta)/eta with heavy-ball momentum beta "
            f"(the stability bound of GD with momentum on a quadratic). 'After' is measured from "
            f"the first step at which lambda_max reaches {REACHED} x threshold. Gradient flow is "
            f"approximated by GD at eta={cfg.flow_lr:g} and compared at equal time eta x step.")
        rep.figures += _figures(cfg, ctx, by_role)
        return rep


def _measure(ctx: StudyContext, p: PlannedRun) -> Measured:
    res = ctx.results(p)
    series = [ctx.series(p.config, s, "lambda_max") for s in p.seeds]
    return Measured(p.tag("arm"), [np.asarray(st) for st, _ in series],
                    [np.asarray(v, dtype=float) for _, v in series],
                    # a diverged step's loss is stored as null: nan here
                    [np.array([h["train_loss"] for h in r["history"]], dtype=float)
                     for r in res],
                    [r["result"]["train_acc"] for r in res], [r["result"]["test_acc"] for r in res])


def _verdicts(cfg: EdgeOfStabilityConfig, by_role: dict[str, list[Measured]]) -> list[Verdict]:
    target = cfg.target_acc
    gd = by_role["mse"] + by_role["relu"]
    out = [Verdict(
        "full-batch GD with MSE sharpens until lambda_max reaches 2/eta (tanh ladder and ReLU)",
        "; ".join(f"{m.arm.label}: peak {np.mean(m.peaks):.3g} = "
                  f"{np.mean(m.peaks) / m.arm.threshold:.2f} x 2/eta (lowest seed "
                  f"{min(m.peaks) / m.arm.threshold:.2f})" for m in gd),
        criteria=all(min(m.peaks) >= REACHED * m.arm.threshold for m in gd),
        claim_id="reaches_2_over_eta",
        blueprint="Cohen et al. 2021: progressive sharpening until lambda_max reaches 2/eta",
        ours=", ".join(f"{np.mean(m.peaks) / m.arm.threshold:.2f}" for m in gd),
        arms=tuple(m.target(target) for m in gd),
        controls=f"every seed's peak >= {REACHED} x 2/eta (deterministic, no test)")]
    hov = [(m, [h for h in m.hover if np.isfinite(h)]) for m in gd]
    out.append(Verdict(
        "after reaching it, lambda_max hovers at 2/eta (does not keep rising) while training "
        "continues",
        "; ".join(f"{m.arm.label}: mean lambda_max / (2/eta) after the crossing "
                  + (f"{np.mean(h):.2f} (seeds {min(h):.2f}-{max(h):.2f})" if h else "n/a")
                  for m, h in hov),
        criteria=all(len(h) == len(m.hover) and HOVER[0] <= min(h) and max(h) <= HOVER[1]
                     for m, h in hov),
        claim_id="hovers_at_2_over_eta",
        blueprint="Cohen et al. 2021: lambda_max hovers just above 2/eta",
        ours=", ".join(f"{np.mean(h):.2f}" if h else "n/a" for _, h in hov),
        arms=tuple(m.target(target) for m in gd),
        controls=f"every seed's post-crossing mean ratio in [{HOVER[0]}, {HOVER[1]}]"))
    rises = [(m, *m.rises()) for m in gd]
    out.append(Verdict(
        "at the edge the loss falls non-monotonically: it rises more often after the crossing "
        "than before",
        "; ".join(f"{m.arm.label}: {_nanmean(b):.1f} vs {_nanmean(a):.1f} rises per 100 "
                  f"steps" for m, b, a in rises),
        criteria=all(_nanmean(a) > _nanmean(b) for _, b, a in rises),
        claim_id="non_monotone_at_edge",
        blueprint="Cohen et al. 2021: the loss decreases non-monotonically at the edge",
        ours=", ".join(f"{_nanmean(b):.1f} -> {_nanmean(a):.1f}" for _, b, a in rises),
        arms=tuple(m.target(target) for m in gd),
        controls="mean over seeds, before vs after each seed's crossing"))
    mom = by_role["momentum"][0]
    h = [x for x in mom.hover if np.isfinite(x)]
    plain = 2.0 / mom.arm.lr
    out.append(Verdict(
        "with momentum beta the sharpness rises to (2 + 2 beta)/eta instead of 2/eta",
        f"{mom.arm.label}: threshold {mom.arm.threshold:.3g} (2/eta = {plain:.3g}); peak "
        f"{np.mean(mom.peaks):.3g} = {np.mean(mom.peaks) / mom.arm.threshold:.2f} x threshold; "
        f"after the crossing " + (f"{np.mean(h):.2f} x threshold" if h else "never crossed"),
        criteria=(min(mom.peaks) >= REACHED * mom.arm.threshold and len(h) == len(mom.hover)
                  and HOVER[0] <= min(h) and max(h) <= HOVER[1]),
        claim_id="momentum_threshold",
        blueprint="Cohen et al. 2021: with heavy-ball momentum the threshold is (2 + 2 beta)/eta",
        ours=f"{np.mean(mom.peaks) / mom.arm.threshold:.2f}",
        arms=(mom.target(target),),
        controls=f"peak >= {REACHED} x and hovering in [{HOVER[0]}, {HOVER[1]}] x (2+2beta)/eta"))
    ce = by_role["ce"][0]
    final = [float(v[-1]) for v in ce.lam]
    drop = [f / p for f, p in zip(final, ce.peaks)]
    out.append(Verdict(
        "with cross-entropy the sharpness falls once the data are fitted",
        f"{ce.arm.label}: peak {np.mean(ce.peaks):.3g} ({np.mean(ce.peaks) / ce.arm.threshold:.2f}"
        f" x 2/eta), final {np.mean(final):.3g} = {np.mean(drop):.2f} x peak",
        criteria=max(drop) < COLLAPSE, claim_id="cross_entropy_collapse",
        blueprint="Cohen et al. 2021 (App. C): with cross-entropy, sharpness drops late in "
                  "training",
        ours=f"final/peak {np.mean(drop):.2f}", arms=(ce.target(target),),
        controls=f"every seed's final lambda_max < {COLLAPSE} x its peak"))
    flow = by_role["flow"][0]
    horizon = cfg.steps * flow.arm.lr
    lam_t = [max(float(v.max()), 0.0) for v in flow.lam]
    over = {m.arm.label: m.arm.threshold for m in by_role["mse"]}
    stable = max(lam_t) < REACHED * flow.arm.threshold
    out.append(Verdict(
        "under gradient flow the sharpness keeps rising past the 2/eta at which the GD runs "
        "hover",
        f"gradient flow (eta={flow.arm.lr:g}, stable: max lambda_max {max(lam_t):.3g} vs its "
        f"2/eta = {flow.arm.threshold:.3g}) by time {horizon:g}: lambda_max "
        f"{np.mean(lam_t):.3g} (lowest seed {min(lam_t):.3g}); GD thresholds "
        + ", ".join(f"{t:.3g}" for t in over.values()),
        criteria=stable and min(lam_t) > max(over.values()), claim_id="flow_exceeds_2_over_eta",
        blueprint="Cohen et al. 2021: gradient flow's sharpness rises past 2/eta where GD's "
                  "stops",
        ours=f"{min(lam_t):.3g} vs {max(over.values()):.3g}",
        arms=(flow.target(target),),
        controls="the flow's own lambda_max stays below 0.9 x its 2/eta (it is stable)"))
    return out


def _row(m: Measured) -> dict[str, Any]:
    cross = [c for c in m.crossings if c is not None]
    hov = [h for h in m.hover if np.isfinite(h)]
    before, after = m.rises()
    return {"arm": m.arm.label, "threshold": m.arm.threshold,
            "peak lambda_max": f"{np.mean(m.peaks):.3g} ± {np.std(m.peaks, ddof=1):.2g}",
            "peak / threshold": np.mean(m.peaks) / m.arm.threshold,
            "step reaching 0.9 x threshold": (f"{np.mean(cross):.0f} ({len(cross)} of "
                                              f"{len(m.crossings)} seeds)" if cross else "never"),
            "lambda_max / threshold after": float(np.mean(hov)) if hov else "n/a",
            "loss rises per 100 steps before": float(_nanmean(before)),
            "after": float(_nanmean(after)) if cross else "n/a",
            "final lambda_max": float(np.mean([v[-1] for v in m.lam])),
            "final train loss": float(np.mean([ls[-1] for ls in m.loss])),
            "final train acc (%)": 100 * float(np.mean(m.train_acc)),
            "test acc (%)": 100 * float(np.mean(m.test_acc))}


def _figures(cfg: EdgeOfStabilityConfig, ctx: StudyContext, by_role: dict[str, list[Measured]]
             ) -> list[Any]:
    from overparam.report.figures import figure, save

    out = []
    fig, (ax1, ax2) = figure(11, 4.2, ncols=2)
    flow = by_role["flow"][0]
    for m in by_role["mse"] + by_role["flow"]:
        style = {"color": "black", "ls": ":"} if m.arm.role == "flow" else {}
        (line,) = ax1.plot(m.steps[0] * m.arm.lr, m.lam[0], lw=1.2, label=m.arm.label, **style)
        for st, lam in zip(m.steps[1:], m.lam[1:]):
            ax1.plot(st * m.arm.lr, lam, lw=0.6, alpha=0.4, color=line.get_color())
        if m.arm.role != "flow":
            ax1.axhline(m.arm.threshold, color=line.get_color(), ls="--", lw=0.8)
        t = np.arange(1, len(m.loss[0]) + 1) * m.arm.lr
        ax2.plot(t, m.loss[0], lw=0.8, color=line.get_color(), label=m.arm.label)
    horizon = cfg.steps * max(m.arm.lr for m in by_role["mse"])
    for ax in (ax1, ax2):
        ax.set_xlim(0, horizon)
        ax.set_xlabel("time (eta x step)")
    ax1.set_ylabel("top Hessian eigenvalue (dashed: 2/eta)")
    ax1.set_title("MSE, tanh: sharpness against 2/eta", fontsize=10)
    ax1.legend(fontsize=7)
    ax2.set_yscale("log")
    ax2.set_ylabel("training loss (seed 0)")
    ax2.set_title(f"training loss (flow to time {cfg.steps * flow.arm.lr:g})", fontsize=10)
    out.append(save(fig, ctx.figure_dir("edge_of_stability"), "sharpness_vs_time_mse"))
    fig, axes = figure(11, 4.2, ncols=3)
    for ax, m in zip(axes, by_role["relu"] + by_role["momentum"] + by_role["ce"]):
        for st, lam in zip(m.steps, m.lam):
            ax.plot(st, lam, lw=0.8, alpha=0.8)
        ax.axhline(m.arm.threshold, color="black", ls="--", lw=0.8,
                   label="(2 + 2 beta)/eta" if m.arm.beta else "2/eta")
        ax.set_title(m.arm.label, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("top Hessian eigenvalue (each seed)")
    out.append(save(fig, ctx.figure_dir("edge_of_stability"), "sharpness_relu_momentum_ce"))
    return out
