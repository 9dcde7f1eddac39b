"""Edge of stability: does full-batch GD's sharpness rise to 2/eta? (Cohen, Kaur, Li, Kolter &
Talwalkar 2021, arXiv:2103.00065.)

Question: gradient descent with step size eta is stable on a quadratic only while the top
Hessian eigenvalue lambda_max stays below 2/eta. Cohen et al. observe *progressive sharpening*
(lambda_max rises during training) up to that threshold, then an *edge of stability* where
lambda_max hovers near 2/eta while the loss keeps falling, non-monotonically. With
cross-entropy the sharpness finally collapses once the data are fitted (their appendix); mean
squared error, momentum ((2 + 2 beta)/eta) and gradient flow as the reference are the full
study's, still to come.

Protocol: full-batch GD (no momentum, constant step) on a 2-hidden-layer tanh MLP of width 200
(their fully connected architecture) on 1,000 MNIST-1D samples, cross-entropy, a ladder of step
sizes; the sharpness tracker intervention measures lambda_max of every member every ``every``
steps on the first ``hessian_samples`` training samples (Lanczos), logged as a per-step series in
the store. Per step size: the peak of lambda_max against 2/eta, the step at which it first
reaches 0.9 * 2/eta, and how often the training loss rises from one step to the next before and
after that step (GD is one step per epoch, so the per-epoch history is per step).

Every arm has a training target: final training accuracy >= ``target_acc`` within the step
budget; an arm that misses it makes the verdict INCONCLUSIVE, saying which and by how much.

Quick preset: 3 step sizes x 3 seeds x 1,000 steps, about 2.5 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import acc_arm

REACHED = 0.9  # lambda_max >= 0.9 * 2/eta counts as reaching the threshold


@dataclass(frozen=True)
class EdgeOfStabilityConfig(Training):
    n_train: int = 1000
    lr_scaling: str = "none"
    model: str = "tanhmlp_w200_d3"
    lrs: tuple[float, ...] = (0.2, 0.4, 0.8)
    steps: int = 1000
    every: int = 25
    hessian_samples: int = 1000
    target_acc: float = 0.99  # each arm's training target, reached within the step budget


PRESETS = {
    "quick": EdgeOfStabilityConfig(),
    # Cohen et al.'s CIFAR-10 protocol: a 5,000-sample subset, the same fully connected
    # network, step sizes 2/30 .. 2/120 for tanh; 5 seeds (the blueprint's count).
    "paper": EdgeOfStabilityConfig(data="cifar10", n_train=5000, lrs=(2 / 30, 2 / 60, 2 / 120),
                                   steps=3000, every=50, hessian_samples=5000, seeds=5),
}


def crossing(steps: np.ndarray, lam: np.ndarray, lr: float) -> int | None:
    """The first measured step at which lambda_max >= REACHED * 2/lr (None: never)."""
    hit = np.nonzero(lam >= REACHED * 2.0 / lr)[0]
    return int(steps[hit[0]]) if len(hit) else None


def loss_rises(loss: np.ndarray) -> int:
    """How many times the loss rose from one step to the next."""
    return int((np.diff(loss) > 0).sum()) if len(loss) > 1 else 0


def threshold_verdict(peaks: dict[float, list[float]], train_acc: dict[float, list[float]],
                      target_acc: float) -> Verdict:
    """Progressive sharpening to the edge: at every step size every seed's peak lambda_max is
    at least 0.9 * 2/eta. ``peaks``, ``train_acc``: per step size, per seed. An arm whose
    final training accuracy misses ``target_acc`` makes the verdict INCONCLUSIVE."""
    ratios = ", ".join(f"eta={lr:g}: peak {np.mean(p):.3g} = {np.mean(p) * lr / 2:.2f} x 2/eta"
                       for lr, p in peaks.items())
    short = {lr: min(p) * lr / 2 for lr, p in peaks.items() if min(p) < REACHED * 2 / lr}
    return Verdict(
        "full-batch GD sharpens until lambda_max reaches the stability threshold 2/eta",
        ratios + (f"; below {REACHED} x 2/eta: " + ", ".join(
            f"eta={lr:g} (lowest seed {r:.2f})" for lr, r in short.items()) if short else ""),
        criteria=not short, claim_id="reaches_2_over_eta",
        blueprint="Cohen et al. 2021: lambda_max rises to 2/eta and hovers there",
        ours=", ".join(f"{np.mean(p) * lr / 2:.2f}" for lr, p in peaks.items()),
        arms=tuple(acc_arm(f"eta={lr:g}", a, target_acc) for lr, a in train_acc.items()),
        controls="deterministic criterion per seed (no test)")


class EdgeOfStability(Study):
    name = "edge_of_stability"
    Config = EdgeOfStabilityConfig
    PRESETS = PRESETS

    def plan(self, cfg: EdgeOfStabilityConfig) -> list[PlannedRun]:
        from overparam.train.interventions import SharpnessTracker

        tracker = SharpnessTracker(every=cfg.every, samples=cfg.hessian_samples)
        return [PlannedRun(cfg.train_config(
            cfg.model, steps=cfg.steps, interventions=(tracker,),
            optim=OptimConfig(name="gd", lr=lr, momentum=0.0, lr_scaling="none",
                              schedule="constant")), cfg.seed_ids, (("lr", lr),))
            for lr in cfg.lrs]

    def analyze(self, cfg: EdgeOfStabilityConfig, ctx: StudyContext, preset: str
                ) -> StudyReport:
        from overparam.report.figures import figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        rows, peaks, curves, accs = [], {}, {}, {}
        for p in plan:
            lr = p.tag("lr")
            res = ctx.results(p)
            series = [ctx.series(p.config, s, "lambda_max") for s in p.seeds]
            losses = [np.array([h["train_loss"] for h in r["history"]]) for r in res]
            peaks[lr] = [float(lam.max()) for _, lam in series]
            accs[lr] = [r["result"]["train_acc"] for r in res]
            cross = [crossing(st, lam, lr) for st, lam in series]
            # losses[i] is the loss after step i + 1: before the crossing at step c are
            # losses[:c], after it losses[c - 1:]
            before = [loss_rises(ls[:c] if c else ls) for ls, c in zip(losses, cross)]
            after = [loss_rises(ls[c - 1:]) if c else 0 for ls, c in zip(losses, cross)]
            curves[lr] = (series, losses)
            rows.append(_row(lr, peaks[lr], cross, before, after, res))
        rep.tables.append(Table(
            f"Sharpness of full-batch GD: {cfg.model} on {cfg.data} (n={cfg.n_train}), "
            f"cross-entropy, {cfg.steps} steps, {cfg.seeds} seeds",
            ["eta", "2/eta", "peak lambda_max", "peak x eta/2", "step reaching 0.9 x 2/eta",
             "loss rises before", "loss rises after", "final train loss", "final train acc (%)"],
            rows))
        rep.verdicts.append(threshold_verdict(peaks, accs, cfg.target_acc))
        rep.notes.append(
            "Cross-entropy: once the data are fitted the loss's curvature shrinks with the loss "
            "and lambda_max falls away from 2/eta (Cohen et al. 2021, appendix); the hovering "
            "phase is the stretch between the crossing and that collapse.")
        fig, (ax1, ax2) = figure(10, 4, ncols=2)
        for lr, (series, losses) in curves.items():
            (line,) = ax1.plot(*series[0], lw=1.2, label=f"eta={lr:g}")
            for st, lam in series[1:]:
                ax1.plot(st, lam, lw=0.6, alpha=0.5, color=line.get_color())
            ax1.axhline(2 / lr, color=line.get_color(), ls="--", lw=0.8)
            ax2.plot(np.arange(1, len(losses[0]) + 1), losses[0], lw=1, color=line.get_color(),
                     label=f"eta={lr:g}")
        ax1.set_xlabel("step")
        ax1.set_ylabel("top Hessian eigenvalue (dashed: 2/eta)")
        ax1.legend(fontsize=8)
        ax2.set_yscale("log")
        ax2.set_xlabel("step")
        ax2.set_ylabel("training loss (seed 0)")
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "sharpness_vs_step"))
        return rep


def _row(lr: float, peaks: list[float], cross: list[int | None], before: list[int],
         after: list[int], res: list[dict[str, Any]]) -> dict[str, Any]:
    reached = [c for c in cross if c is not None]
    return {"eta": lr, "2/eta": f"{2 / lr:.3g}",
            "peak lambda_max": f"{np.mean(peaks):.3g} ± {np.std(peaks, ddof=1):.2g}",
            "peak x eta/2": f"{np.mean(peaks) * lr / 2:.2f}",
            "step reaching 0.9 x 2/eta": (f"{np.mean(reached):.0f} ({len(reached)} of "
                                          f"{len(cross)} seeds)" if reached else "never"),
            "loss rises before": f"{np.mean(before):.1f}",
            "loss rises after": f"{np.mean(after):.1f}",
            "final train loss": f"{np.mean([r['result']['train_loss'] for r in res]):.3g}",
            "final train acc (%)": f"{100 * np.mean([r['result']['train_acc'] for r in res]):.1f}"}
