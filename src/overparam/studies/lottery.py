"""Lottery tickets: iterative magnitude pruning with rewinding and its controls (blueprint IV-G,
V-F; Frankle & Carbin 2019, arXiv:1803.03635; Frankle et al. 2020, arXiv:1912.05671).

Question: does a sparse subnetwork found by pruning, rewound to its initialization, train to the
dense network's accuracy, and is that owed to the mask *and* the initial weights?

The chain is a sequence of ordinary runs (ordinary run ids, the store, the executor): the dense
run, then one run per pruning round whose :class:`~overparam.sparsity.lottery.Mask` intervention
names the previous round as its parent -- it prunes ``rate`` of the surviving weights (global or
layer-wise magnitude), rewinds to initialization (or iteration k, a
:class:`~overparam.train.interventions.Snapshot` of the dense run) and retrains with the mask
enforced, landing exactly on the blueprint's levels (70, 50, 30, 20, 10, 5% remaining). At each
level two controls train the same budget: the same mask from a fresh random initialization, and
a random mask of the same per-layer density from the rewound weights. At ``barrier_density`` a
second copy of each ticket trains with another data order and the linear-mode-connectivity error
barrier between the two copies is measured. Each run starts as soon as the run it reads (its
parent's stored weights and mask) has landed, so the controls and twins of one level train on
the other workers while the chain's next round trains (the seeds of a run are one ensemble); a
chain killed at any point resumes at the first missing run.

Every arm has a training target (train accuracy >= ``target_acc`` at the end of its budget):
a control that never trains makes "ticket beats reinit" a statement about trainability, not
about tickets, so an arm that misses its target makes the claim INCONCLUSIVE. "Matches the dense
model" is an equivalence claim, tested by TOST within ``equivalence_margin``.

Quick preset: mlp_w256 on MNIST-1D with Adam at 1.2e-3 and a constant rate, as Frankle & Carbin
train their MNIST networks (their batch 60 and 50k iterations become batch 128 and 50 epochs per
round here, to fit CPU minutes), 3 seeds, about 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from overparam.config import TrainConfig
from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct
from overparam.studies.settings import Training
from overparam.studies.verdicts import acc_arm, tost_test, welch_test

ARMS = ("ticket", "reinit", "random")
TWIN_OFFSET = 1_000_000  # the second copy's data order: replicate seed + this offset


@dataclass(frozen=True)
class LotteryConfig(Training):
    epochs: int = 50
    lr: float = 1.2e-3
    lr_scaling: str = "none"
    optimizer: str = "adam"
    schedule: str = "constant"
    model: str = "mlp_w256"
    targets: tuple[float, ...] = (0.7, 0.5, 0.3, 0.2, 0.1, 0.05)  # fractions remaining
    rate: float = 0.2  # of the surviving weights per round; 0: one shot to each level
    scope: str = "global"
    rewind_step: int = 0
    controls: bool = True
    barrier_density: float = 0.1
    target_acc: float = 0.99
    equivalence_margin: float = 0.02  # "matches": within 2 pp test accuracy (TOST)


PRESETS = {
    "quick": LotteryConfig(),
    # The blueprint (IV-G, V-F): CIFAR-10, its CNN retrained 60 epochs, 5 seeds, levels 70..5%
    # remaining, reinit control at 90% pruned; its Appendix A optimizer (SGD, momentum 0.9, LR
    # 0.01, cosine). Channel count missing from the text: c = 32 assumed.
    "paper": LotteryConfig(data="cifar10", model="cnn_c32", epochs=60, seeds=5, optimizer="sgd",
                           lr=0.01, schedule="cosine"),
}


def dense_config(cfg: LotteryConfig) -> TrainConfig:
    """The dense run (with a snapshot at the rewind step when rewinding past initialization)."""
    from overparam.train.interventions import Snapshot

    base = cfg.train_config(cfg.model)
    if cfg.rewind_step > 0:
        return replace(base, interventions=(Snapshot(step=cfg.rewind_step),))
    return base


def chain(cfg: LotteryConfig) -> list[PlannedRun]:
    """Every run of the chain, tagged with its round, density and arm, in training order."""
    from overparam.sparsity.lottery import SCOPES, Mask
    from overparam.sparsity.masks import schedule
    from overparam.train.interventions import DataOrder

    if cfg.scope not in SCOPES:
        raise ConfigError("scope", cfg.scope, " or ".join(SCOPES))
    try:
        rounds = schedule(list(cfg.targets), cfg.rate)
    except ValueError as e:
        raise ConfigError("targets/rate", f"{cfg.targets}/{cfg.rate}", str(e)) from None
    seeds = cfg.seed_ids
    base = cfg.train_config(cfg.model)
    parent = dense_config(cfg)
    runs = [PlannedRun(parent, seeds, (("round", 0), ("density", 1.0), ("arm", "dense")))]

    def masked(**settings: Any) -> TrainConfig:
        mask = Mask(parent=parent, density=d, scope=cfg.scope, rewind_step=cfg.rewind_step,
                    **settings)
        return replace(base, interventions=(mask,))

    for r, d in enumerate(rounds, start=1):
        ticket = masked()
        arms = [("ticket", ticket)]
        if d in cfg.targets and cfg.controls:
            arms += [("reinit", masked(init="reinit")), ("random", masked(random=True))]
        if abs(d - cfg.barrier_density) < 1e-12:
            arms.append(("twin", replace(ticket, interventions=(
                *ticket.interventions, DataOrder(offset=TWIN_OFFSET)))))
        runs += [PlannedRun(c, seeds, (("round", r), ("density", d), ("arm", a)))
                 for a, c in arms]
        parent = ticket
    return runs


# -- verdicts: plain numbers in, a verdict out ----------------------------------------------------
Arm = tuple[list[float], list[float]]  # per-seed (test accuracies, train accuracies)


def ticket_matches_dense(ticket: Arm, dense: Arm, margin: float, target: float) -> Verdict:
    """The 10% ticket's test accuracy is within ``margin`` of the dense model's (TOST)."""
    t = tost_test(ticket[0], dense[0], margin)
    return Verdict("a ticket keeping 10% of the weights matches the dense model",
                   f"ticket at 10% vs dense: {t.text}", p=t.p, test=f"TOST ±{100 * margin:g} pp",
                   equivalence=True, outside=t.outside, claim_id="ticket_matches_dense",
                   blueprint="-1.15 pp at 10% remaining (CIFAR-10)",
                   ours=t.ours, effect=t.effect,
                   arms=(acc_arm("ticket at 10%", ticket[1], target),
                         acc_arm("dense", dense[1], target)))


def ticket_beats_reinit(ticket: Arm, reinit: Arm, target: float) -> Verdict:
    """At 10% remaining the ticket beats its mask from a fresh initialization (Welch)."""
    w = welch_test(ticket[0], reinit[0])
    return Verdict("at 90% pruned the ticket beats the same mask from a random reinitialization",
                   w.text, criteria=w.diff > 0, p=w.p, test="Welch",
                   claim_id="ticket_beats_reinit", blueprint="+2.80 pp (83.72% vs 80.92%)",
                   ours=w.ours, effect=w.effect,
                   arms=(acc_arm("ticket at 10%", ticket[1], target),
                         acc_arm("reinit at 10%", reinit[1], target)))


class Lottery(Study):
    name = "lottery"
    CAPTIONS = {
        "accuracy_vs_remaining": (
            "Iterative magnitude pruning: test accuracy against the fraction of weights "
            "remaining for winning tickets (rewound to their initialization or an early step), "
            "randomly reinitialized tickets and random masks (mean over seeds, 95% CI bands); "
            "dashed: the dense network (Frankle & Carbin 2019)."
        ),
    }
    Config = LotteryConfig
    PRESETS = PRESETS

    def plan(self, cfg: LotteryConfig) -> list[PlannedRun]:
        return chain(cfg)

    def measure(self, cfg: LotteryConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        for p in plan:
            if p.tag("arm") == "twin":
                for s in p.seeds:
                    self._barrier(ctx, plan, p, s)

    def _barrier(self, ctx: StudyContext, plan: list[PlannedRun], twin: PlannedRun, seed: int
                 ) -> dict[str, Any]:
        """Test-error barrier between a ticket and its twin (another data order)."""
        from overparam.probes.landscape import mode_connectivity_barrier

        ticket = next(p for p in plan if p.tag("arm") == "ticket" and
                      p.tag("round") == twin.tag("round"))
        spec = {"probe": "lmc_barrier", "twin_offset": TWIN_OFFSET, "n_points": 11}

        def compute() -> dict[str, Any]:
            data = ctx.data(ticket.config.data)
            res = mode_connectivity_barrier(ctx.model(ticket.config, seed, data),
                                            ctx.model(twin.config, seed, data),
                                            data.x_test, data.y_test, n_points=11)
            return {"barrier": res.barrier, "error_curve": res.error.tolist()}

        return ctx.probe(ticket.config, seed, spec, compute)

    def analyze(self, cfg: LotteryConfig, ctx: StudyContext, preset: str) -> StudyReport:
        from overparam.report.figures import band, figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        acc: dict[tuple[str, float], list[float]] = {}
        train: dict[tuple[str, float], list[float]] = {}
        measured: dict[float, float] = {}
        for p in plan:
            if p.tag("arm") == "twin":
                continue
            res = [r["result"] for r in ctx.results(p)]
            acc[(p.tag("arm"), p.tag("density"))] = [r["test_acc"] for r in res]
            train[(p.tag("arm"), p.tag("density"))] = [r["train_acc"] for r in res]
            if p.tag("arm") == "ticket":
                measured[p.tag("density")] = float(np.mean([r["density_measured"] for r in res]))
        dense_acc = acc[("dense", 1.0)]
        rows = [{"remaining (%)": 100, "ticket test acc (%)": pct(summarize(dense_acc)),
                 "ticket train acc (%)": pct(summarize(train[("dense", 1.0)])),
                 "reinit test acc (%)": "", "random-mask test acc (%)": "",
                 "ticket vs reinit": ""}]
        for d in sorted(cfg.targets, reverse=True):
            row = {"remaining (%)": round(100 * d, 2),
                   "ticket test acc (%)": pct(summarize(acc[("ticket", d)])),
                   "ticket train acc (%)": pct(summarize(train[("ticket", d)])),
                   "measured density (%)": f"{100 * measured[d]:.3f}"}
            if ("reinit", d) in acc:
                row["reinit test acc (%)"] = pct(summarize(acc[("reinit", d)]))
                row["reinit train acc (%)"] = pct(summarize(train[("reinit", d)]))
                row["ticket vs reinit"] = welch_test(acc[("ticket", d)], acc[("reinit", d)]).text
            if ("random", d) in acc:
                row["random-mask test acc (%)"] = pct(summarize(acc[("random", d)]))
                row["random-mask train acc (%)"] = pct(summarize(train[("random", d)]))
            rows.append(row)
        rep.tables.append(Table(
            f"Lottery tickets: {cfg.model} on {cfg.data}, {cfg.scope} magnitude pruning, "
            f"{cfg.rate:.0%} per round, rewind to step {cfg.rewind_step}",
            ["remaining (%)", "measured density (%)", "ticket train acc (%)", "ticket test acc (%)",
             "reinit train acc (%)", "reinit test acc (%)", "random-mask train acc (%)",
             "random-mask test acc (%)", "ticket vs reinit"], rows))
        def arm(key: tuple[str, float]) -> Arm:
            return acc[key], train[key]

        if ("ticket", 0.1) in acc:
            rep.verdicts.append(ticket_matches_dense(arm(("ticket", 0.1)), arm(("dense", 1.0)),
                                                     cfg.equivalence_margin, cfg.target_acc))
        if ("ticket", 0.1) in acc and ("reinit", 0.1) in acc:
            rep.verdicts.append(ticket_beats_reinit(arm(("ticket", 0.1)), arm(("reinit", 0.1)),
                                                    cfg.target_acc))
        for twin in (p for p in plan if p.tag("arm") == "twin"):
            b = summarize([self._barrier(ctx, plan, twin, s)["barrier"] for s in twin.seeds])
            rep.notes.append(
                f"Linear mode connectivity of tickets at {twin.tag('density'):.0%} remaining "
                f"(two copies, different data orders; Frankle et al. 2020): test-error barrier "
                f"{b.fmt(100)} pp (stable when close to 0).")
        fig, ax = figure()
        for arm, label in (("ticket", "ticket (rewound)"), ("reinit", "same mask, reinitialized"),
                           ("random", "random mask, rewound")):
            pts = sorted((d, v) for (a, d), v in acc.items() if a == arm and d in cfg.targets)
            if not pts:
                continue
            sums = [summarize(v) for _, v in pts]
            band(ax, [100 * d for d, _ in pts], [100 * s.mean for s in sums],
                 [100 * s.ci_low for s in sums], [100 * s.ci_high for s in sums], label)
        s = summarize(dense_acc)
        ax.axhline(100 * s.mean, color="k", ls="--", lw=1, label="dense")
        ax.set_xscale("log")
        levels = sorted(100 * d for d in cfg.targets)
        ax.set_xticks(levels, [f"{v:g}" for v in levels])  # a label at every pruning level
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{cfg.model} on {cfg.data}, {cfg.seeds} seeds (95% CI)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "accuracy_vs_remaining"))
        return rep
