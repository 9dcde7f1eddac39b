"""SGD's implicit regularizer made explicit: does penalizing micro-batch gradient norms give
large-batch training small-batch generalization? (Smith, Dherin, Barrett & De 2021, "On the
origin of implicit regularization in stochastic gradient descent", arXiv:2101.12176; Novack,
Kaur, Marwah, Garg & Lipton 2023, "Disentangling the mechanisms behind implicit regularization
in SGD", arXiv:2211.15853.)

Question: SGD with learning rate eps and batches of size B follows, to second order, the flow of
the modified loss ``C + (eps / 4) mean_k ||grad C_k||^2`` over its mini-batches C_k (Smith et
al., Sec. 2), i.e. ``C + (eps / 4) ||grad C||^2 + (eps / 4) mean_k ||grad C_k - grad C||^2``: the
second, noise term grows as B shrinks (about ``(eps / 4B) tr Sigma``), so the regularization
strength depends on eps / B. If that term is why small batches generalize better, adding it
explicitly to large-batch SGD -- ``lam mean_j ||grad L_j||^2`` over micro-batches j of the small
batch size, by double backpropagation (:class:`~overparam.train.interventions.GradPenalty` with
``micro_batch``) -- should close the small/large-batch gap (Novack et al.: it does on CIFAR-10
ResNet-18, 89.8% -> 91.8% vs 92.6% small-batch), while the same penalty on the whole large batch
(``micro_batch`` = the batch: no noise term) should not.

Protocol (Novack et al.'s code budgets every arm in equal optimizer steps at equal LR): plain SGD
(no momentum, no weight decay), the same LR ``lr`` and ``steps`` for the small-batch arm (SB),
the large-batch arm (LB), LB + the micro-batch penalty and LB + the full-batch penalty. ``lam``
defaults to ``(lr / 4)(1 - small_batch / large_batch)``: the coefficient that makes the added
noise term equal the difference between SB's and LB's implicit noise terms,
``(eps / 4) tr Sigma (1 / B_s - 1 / B_l)`` (it also adds ``lam ||grad C||^2``). Control of the
eps / B scaling (Smith et al. Sec. 4, small B): for each ``ratio_batches`` B' an arm at
``lr B' / small_batch`` for the same number of epochs as SB (so the same flow time
``eps x steps``), tested equivalent to SB within ``equivalence_margin`` (TOST).

Claims (Welch or TOST, Holm over the report): SB beats LB; the micro-batch penalty closes most
of the gap (its test accuracy lies above the gap's midpoint: one-sided Welch test of the
contrast), reported as the fraction closed with Fieller's 95% interval; the micro-batch penalty
beats the full-batch penalty; the full-batch penalty brings no gain over LB (TOST); same eps / B,
same test accuracy (TOST). Every arm must reach ``target_acc`` training accuracy in its budget
(a cosine schedule to zero in the quick preset lets the noisy SB arm converge).

Quick preset: MNIST-1D (4,000 samples), ``mlp_w128``, eps = 0.6, B = 32 vs 128 (4 micro-batches
of 32 per large batch), 3,000 steps (24 epochs for SB: in pilots SB at 1,500 steps stayed near
90% training accuracy and tested *below* LB), 5 seeds; about 2 minutes of one CPU core (4.5
minutes of wall time while other jobs shared the 2 cores), most of it the double
backpropagation of the penalties. Paper preset: Novack et al.'s
CIFAR-10 protocol (40,000 training images, B = 128 vs 5,120, micro-batches of 128, eps = 0.1,
lam = 0.01 from their table, constant LR, no momentum) on the blueprint's CNN in place of
ResNet-18; their ResNet computes BatchNorm statistics per micro-batch, ours over the whole large
batch (GradPenalty chunks the per-sample losses of one forward pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig, TrainConfig
from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.implicit_gradient_regularization import (
    GapFraction,
    gap_fraction,
    missed_note,
)
from overparam.studies.settings import Training
from overparam.studies.verdicts import acc_arm, tost_test, welch_test


@dataclass(frozen=True)
class SGDRegularizerConfig(Training):
    model: str = "mlp_w128"
    lr: float = 0.6
    momentum: float = 0.0
    schedule: str = "cosine"
    lr_scaling: str = "none"
    small_batch: int = 32
    large_batch: int = 128
    steps: int = 3000
    lam: float | None = None  # None: (lr / 4)(1 - small_batch / large_batch)
    ratio_batches: tuple[int, ...] = (16,)
    equivalence_margin: float = 0.015  # "same accuracy": within 1.5 pp (TOST)
    target_acc: float = 0.99
    seeds: int = 5

    def check(self) -> None:
        super().check()
        for name in ("small_batch", "large_batch", "steps"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(name, v, "a positive integer")
        if self.large_batch <= self.small_batch or self.large_batch % self.small_batch:
            raise ConfigError("large_batch", self.large_batch,
                              f"a multiple of small_batch={self.small_batch} larger than it "
                              "(the penalty's micro-batches tile the large batch)")
        if self.n_train and self.large_batch > self.n_train:
            raise ConfigError("large_batch", self.large_batch,
                              f"at most n_train={self.n_train}")
        if self.lam is not None and not (isinstance(self.lam, (int, float)) and
                                         math.isfinite(self.lam) and self.lam > 0):
            raise ConfigError("lam", self.lam, "None ((lr / 4)(1 - small/large)) or a positive "
                              "number")
        for b in self.ratio_batches:
            if not (isinstance(b, int) and b >= 1 and b != self.small_batch):
                raise ConfigError("ratio_batches", self.ratio_batches,
                                  f"positive batch sizes other than small_batch="
                                  f"{self.small_batch}")
            if round(self.steps * self.small_batch / b) < 1:
                raise ConfigError("ratio_batches", self.ratio_batches,
                                  "batch sizes with at least one step at SB's epoch budget")
        if not (isinstance(self.equivalence_margin, (int, float)) and
                self.equivalence_margin > 0):
            raise ConfigError("equivalence_margin", self.equivalence_margin, "a positive number")
        if not 0 < self.target_acc <= 1:
            raise ConfigError("target_acc", self.target_acc, "a fraction in (0, 1]")

    @property
    def penalty(self) -> float:
        if self.lam is not None:
            return float(self.lam)
        return self.lr / 4 * (1 - self.small_batch / self.large_batch)


PRESETS = {
    "quick": SGDRegularizerConfig(),
    "paper": SGDRegularizerConfig(
        data="cifar10", n_train=40000, model="cnn_c32", lr=0.1, schedule="constant",
        small_batch=128, large_batch=5120, steps=5000, lam=0.01, ratio_batches=(64,),
        equivalence_margin=0.01, target_acc=0.95, seeds=5),
}

ARMS = ("SB", "LB", "LB + micro-batch penalty", "LB + full-batch penalty")


class SGDRegularizer(Study):
    name = "sgd_regularizer"
    CAPTIONS = {
        "sgd_regularizer": (
            "Left: test accuracy at equal steps and learning rate for small- and large-batch "
            "SGD, large batch with the micro-batch gradient penalty, and the controls (each "
            "seed a dot; mean with 95% CI). Right: the penalty term mean_j ||grad L_j||^2 along "
            "training (median over seeds, moving mean): the term SGD's modified loss adds "
            "(Smith et al. 2021)."
        ),
    }
    Config = SGDRegularizerConfig
    PRESETS = PRESETS

    def _run(self, cfg: SGDRegularizerConfig, batch: int, lr: float, steps: int,
             micro: int | None = None) -> TrainConfig:
        from overparam.train.interventions import GradPenalty

        iv = () if micro is None else (GradPenalty(lam=cfg.penalty, micro_batch=micro),)
        return cfg.train_config(
            cfg.model, batch_size=batch, steps=steps, interventions=iv,
            optim=OptimConfig(name="sgd", lr=lr, momentum=cfg.momentum, lr_scaling="none",
                              schedule=cfg.schedule))

    def plan(self, cfg: SGDRegularizerConfig) -> list[PlannedRun]:
        s, b, lr, n = cfg.small_batch, cfg.large_batch, cfg.lr, cfg.steps
        runs = [
            PlannedRun(self._run(cfg, s, lr, n), cfg.seed_ids, (("arm", ARMS[0]), ("batch", s))),
            PlannedRun(self._run(cfg, b, lr, n), cfg.seed_ids, (("arm", ARMS[1]), ("batch", b))),
            PlannedRun(self._run(cfg, b, lr, n, s), cfg.seed_ids,
                       (("arm", ARMS[2]), ("batch", b), ("micro", s))),
            PlannedRun(self._run(cfg, b, lr, n, 0), cfg.seed_ids,
                       (("arm", ARMS[3]), ("batch", b), ("micro", b)))]
        for r in cfg.ratio_batches:
            runs.append(PlannedRun(self._run(cfg, r, lr * r / s, int(round(n * s / r))),
                                   cfg.seed_ids, (("arm", f"SB at B={r}, same lr/B"),
                                                  ("batch", r), ("ratio", True))))
        return runs

    def analyze(self, cfg: SGDRegularizerConfig, ctx: StudyContext, preset: str
                ) -> StudyReport:
        from overparam.report.figures import figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        # -- load
        arms: dict[str, dict[str, Any]] = {}
        for p in plan:
            res = [r["result"] for r in ctx.results(p)]
            micro = p.tag("micro")
            series = [ctx.series(p.config, s, "grad_norm_sq") for s in p.seeds] \
                if micro is not None else []
            arms[p.tag("arm")] = {
                "batch": p.tag("batch"), "lr": p.config.optim.lr, "steps": p.config.steps,
                "micro": micro, "ratio": bool(p.tag("ratio")),
                "train": [r["train_acc"] for r in res], "test": [r["test_acc"] for r in res],
                "loss": [r["train_loss"] for r in res],
                "penalty": [float(np.mean(v)) for _, v in series],
                "curve": (np.asarray(series[0][0]), np.median([v for _, v in series], axis=0))
                if series else None}
        n = ctx.data(plan[0].config.data).n_train
        # -- statistics and verdicts
        verdicts, g = sgd_verdicts(cfg, arms)
        rep.verdicts.extend(verdicts)
        rep.facts.update({"sgd_gap_pp": 100 * g.gap, "sgd_fraction_closed": g.fraction,
                          "sgd_fraction_lo": g.low, "sgd_fraction_hi": g.high})
        # -- tables
        rows = []
        for name, a in arms.items():
            rows.append({
                "arm": name, "batch": a["batch"], "lr": a["lr"], "lr / B": a["lr"] / a["batch"],
                "steps": a["steps"], "epochs": round(a["steps"] * a["batch"] / n, 1),
                "penalty": "" if a["micro"] is None else (
                    f"{cfg.penalty:.4g} x the whole batch" if a["micro"] == a["batch"] else
                    f"{cfg.penalty:.4g} x micro-batches of {a['micro']}"),
                "train acc (%)": summarize(a["train"]).fmt(100),
                "test acc (%)": summarize(a["test"]).fmt(100),
                "final train loss": summarize(a["loss"]).fmt(1, 4),
                "mean penalty term": summarize(a["penalty"]).fmt(1, 4) if a["penalty"] else ""})
        rep.tables.append(Table(
            f"{cfg.data} ({n:,} samples), {cfg.model}, SGD without momentum, {cfg.schedule} LR, "
            f"{cfg.seeds} seeds (mean ± std [95% CI])", list(rows[0]), rows))
        rep.notes.append(
            f"Fraction of the SB/LB gap closed by the micro-batch penalty: {g.text()}; "
            f"Fieller's interval of a ratio of mean differences ({g.df:.1f} df), unbounded when "
            f"the gap itself is not significantly non-zero. lam = {cfg.penalty:.4g}"
            + (" = (lr / 4)(1 - B_s / B_l)." if cfg.lam is None else " (set).")
            + " Mean penalty term: mean_j ||grad L_j||^2 over the micro-batches (or the whole "
            "batch), averaged over the steps.")
        note = missed_note({k: (cfg.seed_ids, a["train"], a["test"]) for k, a in arms.items()},
                           cfg.target_acc)
        if note:
            rep.notes.append(note)
        # -- figures
        fig, (ax1, ax2) = figure(10, 4, ncols=2)
        names = list(arms)
        for i, name in enumerate(names):
            s = summarize(arms[name]["test"])
            ax1.errorbar([i], [100 * s.mean], yerr=[[100 * (s.mean - s.ci_low)],
                                                    [100 * (s.ci_high - s.mean)]], fmt="o",
                         capsize=4, label=name)
            ax1.scatter([i] * len(arms[name]["test"]), [100 * v for v in arms[name]["test"]],
                        s=8, color="gray", alpha=0.6)
        ax1.set_xticks(range(len(names)))
        ax1.set_xticklabels([f"{_short(nm)}\nB={arms[nm]['batch']}" for nm in names],
                            fontsize=7)
        ax1.set_ylabel("test accuracy (%)")
        ax1.set_title(f"Equal steps ({cfg.steps}) and LR ({cfg.lr:g}), 95% CI")
        for name in (ARMS[2], ARMS[3]):
            st, v = arms[name]["curve"]
            (line,) = ax2.plot(st, v, lw=0.5, alpha=0.3)
            w = max(1, len(v) // 60)  # moving average over 1/60 of the run
            ax2.plot(st[w - 1:], np.convolve(v, np.ones(w) / w, mode="valid"), lw=1.5,
                     color=line.get_color(), label=f"{name} (moving mean of {w})")
        ax2.set_yscale("log")
        ax2.set_xlabel("step")
        ax2.set_ylabel("penalty term mean_j ||grad L_j||^2 (seed median)")
        ax2.set_title("The penalized quantity along training")
        ax2.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "sgd_regularizer"))
        return rep


def sgd_verdicts(cfg: SGDRegularizerConfig, arms: dict[str, dict[str, Any]]
                 ) -> tuple[list[Verdict], GapFraction]:
    """The claims from per-seed numbers: ``arms`` maps each arm's name (:data:`ARMS`, plus the
    eps/B control arms, flagged ``ratio``) to its ``train`` and ``test`` accuracies, ``batch``
    and ``lr``. Returns the verdicts and the gap fraction closed by the micro-batch penalty."""
    out: list[Verdict] = []
    sb, lb, pen, full = (arms[a] for a in ARMS)
    target = cfg.target_acc

    def arm(name: str) -> Any:
        return acc_arm(name, arms[name]["train"], target)

    w = welch_test(sb["test"], lb["test"])
    out.append(Verdict(
        f"small-batch SGD (B={cfg.small_batch}) generalizes better than large-batch "
        f"(B={cfg.large_batch}) at equal steps and LR", w.text, criteria=w.diff > 0, p=w.p,
        test="Welch", claim_id="small_batch_better", effect=w.effect, ours=w.ours,
        blueprint="Novack et al. CIFAR-10 ResNet-18: 92.64% vs 89.83% (+2.8 pp)",
        arms=(arm(ARMS[0]), arm(ARMS[1])), controls="equal steps and LR"))
    g = gap_fraction(lb["test"], sb["test"], pen["test"])
    wp = welch_test(pen["test"], lb["test"])
    out.append(Verdict(
        f"the micro-batch gradient-norm penalty (lam={cfg.penalty:.4g}, micro-batches of "
        f"{cfg.small_batch}) closes most of the small/large-batch gap",
        f"fraction closed {g.text()} (Fieller 95%); vs LB: {wp.text}; past the gap's "
        f"midpoint: one-sided Welch p={_p(g.p_most)}",
        criteria=g.gap > 0 and g.fraction > 0.5, p=g.p_most,
        test="one-sided Welch contrast vs midpoint", claim_id="penalty_closes_gap",
        effect=wp.effect, ours=f"{g.fraction:.2f} " + (
            f"[{g.low:.2f}, {g.high:.2f}]" if g.bounded else "[unbounded]"),
        blueprint="Novack et al.: LB + GN 91.75% closes 68% of the 2.81 pp gap "
        "(CIFAR-10 ResNet-18)", arms=(arm(ARMS[0]), arm(ARMS[1]), arm(ARMS[2])),
        controls="equal steps and LR"))
    wm = welch_test(pen["test"], full["test"])
    out.append(Verdict(
        "the penalty works through micro-batches: micro-batch penalty beats the same penalty "
        "on the whole large batch", wm.text, criteria=wm.diff > 0, p=wm.p, test="Welch",
        claim_id="micro_beats_full", effect=wm.effect, ours=wm.ours,
        blueprint="Novack et al.: the gain fades as the micro-batch grows to the batch "
        "(65.09% at micro-batch 2,560)", arms=(arm(ARMS[2]), arm(ARMS[3])),
        controls="same lam, steps and LR"))
    m = cfg.equivalence_margin
    tf = tost_test(full["test"], lb["test"], m)
    out.append(Verdict(
        "control: the full-batch penalty brings no gain over plain large-batch SGD",
        tf.text, p=tf.p, test=f"TOST ±{100 * m:g} pp", claim_id="full_penalty_no_gain",
        equivalence=True, outside=tf.outside, effect=tf.effect, ours=tf.ours,
        blueprint="Smith et al.: the full-batch term (eps/4) ‖grad C‖² is already in LB's "
        "implicit regularizer", arms=(arm(ARMS[3]), arm(ARMS[1])), controls="same lam"))
    ratio = [a for a in arms if arms[a].get("ratio")]
    if ratio:
        tests = [tost_test(arms[a]["test"], sb["test"], m) for a in ratio]
        ps = [t.p for t in tests]
        out.append(Verdict(
            f"same lr/B = {cfg.lr / cfg.small_batch:.4g}, same test accuracy (small B, "
            "equal epochs)", "; ".join(f"B={arms[a]['batch']} (lr {arms[a]['lr']:g}) vs "
                                       f"B={cfg.small_batch}: {t.text}"
                                       for a, t in zip(ratio, tests)),
            p=None if None in ps else max(ps), test=f"TOST ±{100 * m:g} pp (IUT)",
            claim_id="same_ratio_same_accuracy", equivalence=True,
            outside=any(t.outside for t in tests), ours=" / ".join(t.ours for t in tests),
            blueprint="Smith et al. Sec. 4: for small B the test accuracy depends on eps/B",
            arms=tuple(arm(a) for a in (*ratio, ARMS[0])),
            controls="equal epochs (equal eps x steps)"))
    return out, g


def _p(p: float | None) -> str:
    return "none (constant arms)" if p is None else f"{p:.3g}"


def _short(name: str) -> str:
    return {"LB + micro-batch penalty": "LB+micro pen.", "LB + full-batch penalty":
            "LB+full pen."}.get(name, "same lr/B" if name.startswith("SB at") else name)
