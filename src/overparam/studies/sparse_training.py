"""Dynamic sparse training: does over-parameterization *in time* let a sparse network match a
dense one? (Seed 003, Sec. 2.1-3.2; Liu, Yin, Mocanu & Pechenizkiy 2021, "Do we actually need
dense over-parameterization? In-time over-parameterization in sparse training",
arXiv:2102.02887; SET: Mocanu et al. 2018, arXiv:1707.04780; RigL: Evci, Gale, Menick, Castro &
Elsen 2020, arXiv:1911.11134.)

Question: a network trained at a fixed density D whose connectivity is re-drawn during training
(prune the smallest weights, grow new ones at random -- SET -- or where the dense gradient is
largest -- RigL) explores, over time, a fraction ``R_s`` of all weights (Liu et al.'s
in-time over-parameterization rate). Does that exploration beat a static random mask of the same
density, approach the dense network, and does accuracy rise with ``R_s``? Liu et al. add that
exploration must be *reliable*: updating too often (tiny update interval ``delta_t``) explores
more but the new weights are judged before they have grown, so accuracy drops.

Protocol: MNIST-1D's own small MLP protocol (Greydanus 2020, "Scaling down deep learning",
arXiv:2011.14439: the 40-256-256-10 ReLU MLP, Adam at 1e-2, batch 100, constant rate), at
``steps`` (2,000 of its 8,000, i.e. 50 epochs; all arms the same step budget, as the DST
literature compares at equal epochs); the sparse arms draw a random ERK mask per seed
(:mod:`overparam.sparsity.dst`) and either keep it (static) or update it every ``delta_t`` steps
until 75% of training with a cosine-decayed prune fraction from 0.3 (RigL's schedule; SET's
zeta = 0.3). Arms: static / SET /
RigL at densities 5, 10, 20%, a dense control, and a delta_t ladder for SET at 5%: 2 steps (very
small), 50 (the main value, 1.25 epochs; RigL's ImageNet value is 100, ITOP's CIFAR value 1,500
steps = 4 epochs) and 500 (12.5 epochs). Weights of sparse layers keep the dense initialization
(as in RigL and ITOP; no sparsity-aware rescaling). Seeds train as one vectorized ensemble.

Training targets: the dense arm must fit (train accuracy >= ``target_acc``); a sparse arm must
have trained (train accuracy >= ``sparse_target_acc``, eight times chance): a sparse network that
cannot fit the training set at this budget is part of the outcome compared, not a failed run, so
the sparse target asks only that the arm trained. An arm that misses makes its claims
INCONCLUSIVE (:func:`overparam.studies.verdicts.finalize`).

Claims: (a) ``R_s`` is non-decreasing in training time and at most 1 (every arm and seed,
deterministic); (b) SET and RigL beat static at every density (one-sided Welch per density,
intersection-union over densities, Holm over the report); (c) SET and RigL match dense at the
lowest density (TOST within ``equivalence_margin``), with the gap at every density in a table;
(d) accuracy rises with ``R_s`` over the delta_t ladder (seed 003's statement; Spearman, permutation
p, Fisher-z interval); (e) the smallest delta_t underperforms the main one despite a higher
``R_s`` (Liu et al.'s reliable exploration); (f) the largest delta_t (infrequent exploration)
underperforms the main one (seed 003: "when the exploration is too infrequent, performance
degrades").

Quick preset: 12 runs x 3 seeds x 2,000 steps; 2 min 56 s with 2 workers on the shared 2-core
machine under a load of about 5 (1 min 48 s of CPU time), about 1 minute on two idle cores.
Paper preset: the ITOP paper's CIFAR-10 protocol scaled to this lab's CNN (``cnn_c64``, 250
epochs, batch 128, SGD with momentum 0.9 at 0.1, cosine; ERK; delta_t 1,500 steps with a ladder
around it; densities 5, 10, 20%; 3 seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import TrainConfig
from overparam.errors import ConfigError
from overparam.stats import summarize, welch
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct
from overparam.studies.settings import Training, described
from overparam.studies.verdicts import Arm, acc_arm, tost_test

DST = ("set", "rigl")
NAMES = {"static": "static", "set": "SET", "rigl": "RigL", "dense": "dense"}


@dataclass(frozen=True)
class SparseTrainingConfig(Training):
    model: str = described("mlp_w256_d3", "the network (MNIST-1D's 40-256-256-10 MLP)")
    steps: int = described(2000, "optimizer steps of every arm (equal budget; replaces epochs)")
    batch_size: int = 100
    base_batch: int = 100
    lr: float = 0.01
    lr_scaling: str = "none"
    optimizer: str = "adam"
    schedule: str = "constant"
    densities: tuple[float, ...] = described((0.05, 0.1, 0.2), "densities of the sparse arms")
    methods: tuple[str, ...] = described(("static", "set", "rigl"), "static, set, rigl")
    distribution: str = described("erk", "layer densities: erk or uniform")
    delta_t: int = described(50, "the main update interval (steps)")
    ladder: tuple[int, ...] = described((2, 50, 500), "update intervals of the ladder (incl. "
                                    "delta_t)")
    ladder_method: str = described("set", "the method of the delta_t ladder")
    ladder_density: float = described(0.05, "the density of the delta_t ladder")
    prune_fraction: float = described(0.3, "initial prune fraction p0 (cosine-decayed)")
    end_fraction: float = described(0.75, "fraction of training after which the mask is fixed")
    target_acc: float = described(0.95, "the dense arm's training target (train accuracy)")
    sparse_target_acc: float = described(0.8, "a sparse arm's training target (train accuracy)")
    equivalence_margin: float = described(0.02, "'matches dense': TOST margin (test accuracy)")
    permutations: int = described(10000, "permutations of the Spearman test")

    def check(self) -> None:
        from overparam.sparsity.dst import DISTRIBUTIONS, METHODS, DynamicSparse

        super().check()
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConfigError("steps", self.steps, "a positive integer")
        if not self.densities or len(set(self.densities)) != len(self.densities) or not all(
                0.0 < d < 1.0 for d in self.densities):
            raise ConfigError("densities", self.densities, "distinct fractions in (0, 1)")
        if not self.methods or len(set(self.methods)) != len(self.methods) or not set(
                self.methods) <= set(METHODS):
            raise ConfigError("methods", self.methods, "distinct names among "
                              + ", ".join(METHODS))
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError("distribution", self.distribution, " or ".join(DISTRIBUTIONS))
        if self.ladder_method not in DST or self.ladder_method not in self.methods:
            raise ConfigError("ladder_method", self.ladder_method,
                              "set or rigl, one of the methods")
        if self.ladder_density not in self.densities:
            raise ConfigError("ladder_density", self.ladder_density, "one of the densities "
                              f"{self.densities}")
        if (len(set(self.ladder)) != len(self.ladder) or self.delta_t not in self.ladder
                or not all(isinstance(v, int) and v >= 1 for v in self.ladder)):
            raise ConfigError("ladder", self.ladder, "distinct update intervals >= 1 that "
                              f"include delta_t={self.delta_t}")
        for name, value in (("target_acc", self.target_acc),
                            ("sparse_target_acc", self.sparse_target_acc),
                            ("equivalence_margin", self.equivalence_margin)):
            if not 0.0 < value < 1.0:
                raise ConfigError(name, value, "a fraction in (0, 1)")
        if not (isinstance(self.permutations, int) and self.permutations >= 100):
            raise ConfigError("permutations", self.permutations, "an integer >= 100")
        # the intervention's own checks name their fields (prune_fraction, end_fraction, ...)
        DynamicSparse(density=self.densities[0], method=self.ladder_method,
                      distribution=self.distribution, delta_t=self.delta_t,
                      prune_fraction=self.prune_fraction, end_fraction=self.end_fraction)

    def sparse(self, method: str, d: float, delta_t: int) -> TrainConfig:
        from overparam.sparsity.dst import DynamicSparse

        iv = (DynamicSparse(density=d, method="static", distribution=self.distribution)
              if method == "static" else
              DynamicSparse(density=d, method=method, distribution=self.distribution,
                            delta_t=delta_t, prune_fraction=self.prune_fraction,
                            end_fraction=self.end_fraction))
        return self.train_config(self.model, steps=self.steps, interventions=(iv,))


PRESETS = {
    "quick": SparseTrainingConfig(),
    # Liu et al. 2021's CIFAR-10 protocol (their code's README: 250 epochs, batch 128, SGD at
    # 0.1, ERK, update interval 1,500 steps) on this lab's CNN; 3 seeds.
    "paper": SparseTrainingConfig(data="cifar10", model="cnn_c64", steps=250 * 391,
                                  batch_size=128, base_batch=128, lr=0.1, optimizer="sgd",
                                  momentum=0.9, schedule="cosine", delta_t=1500,
                                  ladder=(100, 1500, 10000), target_acc=0.99,
                                  sparse_target_acc=0.9),
}


def arm_label(method: str, d: float | None = None, delta_t: int | None = None) -> str:
    if method == "dense":
        return "dense"
    label = f"{NAMES[method]} {100 * d:g}%"
    return label + (f", ΔT={delta_t}" if delta_t is not None and method != "static" else "")


# -- statistics and verdicts: plain numbers in ---------------------------------------------------
@dataclass
class ArmResult:
    """Per-seed numbers of one arm."""

    label: str
    test: list[float]
    train: list[float]
    itop: list[float]
    density: list[float]
    updates: list[int]
    curves: list[tuple[list[int], list[float]]]  # R_s series per seed
    overlap: list[float]  # mean grown_overlap per seed (nan: no updates)

    def target(self, acc: float) -> Arm:
        return acc_arm(self.label, self.train, acc)


def one_sided_welch(a: list[float], b: list[float]) -> tuple[float | None, float]:
    """p of H1: mean(a) > mean(b) by Welch's test, and the difference."""
    w = welch(a, b)
    if w.p is None:
        return None, w.mean_diff
    return (w.p / 2 if w.t > 0 else 1 - w.p / 2), w.mean_diff


def monotone_rs(arms: list[ArmResult], tol: float = 1e-12) -> Verdict:
    """(a) ``R_s`` non-decreasing along every seed's series, at most 1, starting at the measured
    density and ending at the run's result."""
    bad = []
    for a in arms:
        for k, (steps, vals) in enumerate(a.curves):
            v = np.asarray(vals, float)
            ok = (np.all(np.diff(np.asarray(steps)) > 0) and np.all(np.diff(v) >= -tol)
                  and v.max() <= 1 + tol and abs(v[-1] - a.itop[k]) <= tol
                  and abs(v[0] - a.density[k]) <= tol)
            if not ok:
                bad.append(f"{a.label} seed {k}")
    top = max(max(a.itop) for a in arms)
    return Verdict(
        "the in-time over-parameterization rate R_s never decreases during training and is at "
        "most 1 (every arm and seed)",
        f"{sum(len(a.curves) for a in arms)} series checked; largest final R_s {top:.3f}; "
        + ("violations: " + ", ".join(bad) if bad else "no violation"),
        criteria=not bad, claim_id="itop_rate_monotone",
        blueprint="Liu et al. 2021: R_s = |union of active weights over time| / #weights",
        ours=f"max R_s {top:.3f}; {len(bad)} violations",
        controls="starts at the measured density; deterministic check, no test")


def dst_beats_static(method: str, dst: dict[float, ArmResult], static: dict[float, ArmResult],
                     sparse_target: float) -> Verdict:
    """(b) ``method`` beats static at every density: one-sided Welch per density, p the largest
    (intersection-union test)."""
    tests = {d: one_sided_welch(dst[d].test, static[d].test) for d in sorted(dst)}
    ps = [p for p, _ in tests.values()]
    p = None if any(v is None for v in ps) else max(ps)
    parts = [f"{100 * d:g}%: {100 * diff:+.2f} pp (one-sided p={pd:.3g})" if pd is not None else
             f"{100 * d:g}%: {100 * diff:+.2f} pp (no p)" for d, (pd, diff) in tests.items()]
    arms = tuple(x.target(sparse_target) for d in sorted(dst) for x in (dst[d], static[d]))
    return Verdict(
        f"{NAMES[method]} beats a static random mask at equal density (every density)",
        "test accuracy " + "; ".join(parts), criteria=all(diff > 0 for _, diff in tests.values()),
        p=p, test="one-sided Welch per density, largest p (IUT)",
        claim_id=f"{method}_beats_static",
        blueprint="Liu et al. 2021, Evci et al. 2020: dynamic sparse training outperforms "
                  "static sparse training at the same density",
        ours=", ".join(f"{100 * diff:+.2f}" for _, diff in tests.values()) + " pp",
        arms=arms, controls="equal density (same ERK counts), equal steps")


def dst_matches_dense(method: str, d: float, dst: ArmResult, dense: ArmResult, margin: float,
                      sparse_target: float, target: float) -> Verdict:
    """(c) ``method`` at density ``d`` is within ``margin`` of dense (TOST)."""
    t = tost_test(dst.test, dense.test, margin)
    return Verdict(
        f"{NAMES[method]} at {100 * d:g}% density matches the dense network",
        f"{dst.label} vs dense: {t.text}", p=t.p, test=f"TOST ±{100 * margin:g} pp",
        equivalence=True, outside=t.outside, claim_id=f"{method}_matches_dense",
        blueprint="Seed 003 / Liu et al. 2021: DST matches dense even at extreme sparsity "
                  "(98% sparse ResNet-34 on CIFAR-100)", ours=t.ours, effect=t.effect,
        arms=(dst.target(sparse_target), dense.target(target)), controls="equal steps")


def spearman_ci(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval of Spearman's rho, standard error ``sqrt(1.06 / (n - 3))`` (Fieller,
    Hartley & Pearson 1957)."""
    from scipy.stats import norm

    if n <= 3 or not math.isfinite(rho):
        return float("nan"), float("nan")
    z = math.atanh(max(min(rho, 1 - 1e-12), -1 + 1e-12))
    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(1.06 / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def accuracy_rises_with_rs(ladder: list[ArmResult], n_perm: int, sparse_target: float
                           ) -> tuple[Verdict, dict[str, float]]:
    """(d) Spearman's rho between final ``R_s`` and test accuracy over the ladder's runs."""
    from overparam.stats import spearman_permutation

    rs = [v for a in ladder for v in a.itop]
    acc = [v for a in ladder for v in a.test]
    rho, p, p_sc = spearman_permutation(rs, acc, n_perm, seed=3)
    lo, hi = spearman_ci(rho, len(rs))
    return Verdict(
        "test accuracy rises with the in-time over-parameterization rate R_s (delta_t ladder)",
        f"Spearman rho(R_s, test acc) = {rho:.3f} [{lo:.2f}, {hi:.2f}] over {len(rs)} runs "
        f"({', '.join(a.label for a in ladder)}), permutation p={p:.3g} (scipy p={p_sc:.3g})",
        criteria=bool(rho > 0), p=None if not math.isfinite(p) else p,
        test="Spearman, permutation", claim_id="accuracy_rises_with_itop_rate",
        blueprint="Seed 003 (Liu et al. 2021): test accuracy increases with the rate of "
                  "parameter exploration, controlled by the update interval",
        ours=f"rho={rho:.2f} [{lo:.2f}, {hi:.2f}]",
        arms=tuple(a.target(sparse_target) for a in ladder),
        controls="same method, density and steps; R_s varied by delta_t only"
    ), {"rho": rho, "p": p, "lo": lo, "hi": hi}


def interval_verdict(other: ArmResult, main: ArmResult, which: str, sparse_target: float
                     ) -> Verdict:
    """(e) / (f): the main delta_t beats a very small (``which="small"``: despite a higher R_s)
    or a very large one (``"large"``); one-sided Welch of main > other."""
    p, diff = one_sided_welch(main.test, other.test)
    rs_o, rs_m = float(np.mean(other.itop)), float(np.mean(main.itop))
    if which == "small":
        claim = (f"updating too often ({other.label}) underperforms {main.label} despite a "
                 "higher R_s (unreliable exploration)")
        criteria = diff > 0 and min(other.itop) > max(main.itop)
        blueprint = ("Liu et al. 2021: with a too-small update interval the newly grown weights "
                     "are pruned before they have grown; exploration must be reliable")
    else:
        claim = f"exploring too infrequently ({other.label}) underperforms {main.label}"
        criteria = diff > 0
        blueprint = "Seed 003: when the exploration is too infrequent, performance degrades"
    ptext = f"one-sided Welch p={p:.3g}" if p is not None else "no p"
    return Verdict(
        claim, f"{main.label} minus {other.label}: {100 * diff:+.2f} pp test accuracy "
        f"({ptext}); final R_s {rs_m:.3f} vs {rs_o:.3f}",
        criteria=criteria, p=p, test="one-sided Welch", claim_id=f"delta_t_too_{which}",
        blueprint=blueprint, ours=f"{100 * diff:+.2f} pp; R_s {rs_m:.3f} vs {rs_o:.3f}",
        arms=(main.target(sparse_target), other.target(sparse_target)),
        controls="same method, density and steps")


# -- the study -----------------------------------------------------------------------------------
class SparseTraining(Study):
    name = "sparse_training"
    CAPTIONS = {
        "itop_rate_vs_step": (
            "In-time over-parameterization rate R_s, the fraction of prunable weights that have "
            "been active at some step, along training for each update interval of the ladder "
            "(mean over seeds); it only grows, and a smaller interval explores more weights "
            "(Liu et al. 2021)."
        ),
        "accuracy_vs_density": (
            "Test accuracy against density for static sparse training, SET and RigL at an equal "
            "step budget (mean over seeds, 95% CI bands), with the dense network's mean "
            "(dashed) and 95% CI (grey band)."
        ),
        "accuracy_vs_itop_rate": (
            "Test accuracy against the final R_s, each point a seed: static, SET and RigL at "
            "every density, and the update-interval ladder (crosses); dashed: the dense "
            "network's mean."
        ),
    }
    Config = SparseTrainingConfig
    PRESETS = PRESETS

    def plan(self, cfg: SparseTrainingConfig) -> list[PlannedRun]:
        seeds = cfg.seed_ids
        runs = [PlannedRun(cfg.train_config(cfg.model, steps=cfg.steps), seeds,
                           (("method", "dense"), ("density", 1.0), ("delta_t", None),
                            ("role", "dense")))]
        for m in cfg.methods:
            for d in cfg.densities:
                dt = None if m == "static" else cfg.delta_t
                runs.append(PlannedRun(cfg.sparse(m, d, cfg.delta_t), seeds,
                                       (("method", m), ("density", d), ("delta_t", dt),
                                        ("role", "grid"))))
        for dt in sorted(cfg.ladder):
            if dt != cfg.delta_t:
                runs.append(PlannedRun(
                    cfg.sparse(cfg.ladder_method, cfg.ladder_density, dt), seeds,
                    (("method", cfg.ladder_method), ("density", cfg.ladder_density),
                     ("delta_t", dt), ("role", "ladder"))))
        return runs

    def analyze(self, cfg: SparseTrainingConfig, ctx: StudyContext, preset: str
                ) -> StudyReport:
        rep = StudyReport(self.name, preset)
        # -- load
        plan = self.plan(cfg)
        arms = {(p.tag("method"), p.tag("density"), p.tag("delta_t")): _load(ctx, p)
                for p in plan}
        dense = arms[("dense", 1.0, None)]
        grid = {m: {d: arms[(m, d, None if m == "static" else cfg.delta_t)]
                    for d in cfg.densities} for m in cfg.methods}
        ladder = [arms[(cfg.ladder_method, cfg.ladder_density, dt)] for dt in sorted(cfg.ladder)]
        main = arms[(cfg.ladder_method, cfg.ladder_density, cfg.delta_t)]
        sparse = [a for k, a in arms.items() if k[0] != "dense"]
        # -- tables
        rep.tables.append(_grid_table(cfg, grid, dense))
        rep.tables.append(_ladder_table(cfg, ladder, main))
        layers = _layer_densities(ctx, plan)
        if layers:
            rep.notes.append("Measured layer densities of the final masks (seed 0): " + "; ".join(
                f"{arm_label(m, d)}: " + ", ".join(f"{n} {100 * v:.1f}%" for n, v in ld.items())
                for (m, d), ld in layers.items()) + ".")
        # -- verdicts
        sp = cfg.sparse_target_acc
        rep.verdicts.append(monotone_rs(sparse))
        if "static" in grid:
            rep.verdicts += [dst_beats_static(m, grid[m], grid["static"], sp)
                             for m in DST if m in grid]
        low = min(cfg.densities)
        rep.verdicts += [dst_matches_dense(m, low, grid[m][low], dense, cfg.equivalence_margin,
                                           sp, cfg.target_acc) for m in DST if m in grid]
        verdict, rho = accuracy_rises_with_rs(ladder, cfg.permutations, sp)
        rep.verdicts.append(verdict)
        means = [float(np.mean(a.test)) for a in sorted(ladder, key=lambda a: np.mean(a.itop))]
        rising = all(b > a for a, b in zip(means, means[1:]))
        rep.notes.append(
            "Exploration ladder, in order of R_s: " + "; ".join(
                f"{a.label}: R_s {np.mean(a.itop):.3f}, test {100 * np.mean(a.test):.2f}%"
                for a in sorted(ladder, key=lambda a: np.mean(a.itop)))
            + f". Seed 003 states that accuracy increases with the exploration rate; here the "
            f"mean test accuracy {'rises' if rising else 'does not rise'} monotonically with "
            f"R_s (Spearman rho {rho['rho']:.2f}, 95% interval [{rho['lo']:.2f}, "
            f"{rho['hi']:.2f}] over {cfg.seeds * len(ladder)} runs).")
        if min(cfg.ladder) < cfg.delta_t:
            rep.verdicts.append(interval_verdict(ladder[0], main, "small", sp))
        if max(cfg.ladder) > cfg.delta_t:
            rep.verdicts.append(interval_verdict(ladder[-1], main, "large", sp))
        rep.notes.append(
            f"All arms: {cfg.steps} steps of {cfg.optimizer} (lr {cfg.lr:g}, batch "
            f"{cfg.batch_size}, {cfg.schedule}); {cfg.distribution.upper()} layer densities; "
            f"masks updated every delta_t steps until {100 * cfg.end_fraction:g}% of training, "
            f"prune fraction {cfg.prune_fraction:g} cosine-decayed. Training targets: dense "
            f"train acc >= {100 * cfg.target_acc:g}%, sparse >= {100 * cfg.sparse_target_acc:g}%"
            " (trained; a sparse net that cannot fit at this budget is part of the outcome).")
        rep.facts.update({"dst_rho_rs_acc": rho["rho"],
                          **{f"dst_gap_{m}_{100 * d:g}_pp": 100 * (np.mean(grid[m][d].test)
                                                                 - np.mean(dense.test))
                             for m in grid for d in cfg.densities}})
        # -- figures
        rep.figures += _figures(cfg, ctx, grid, ladder, dense)
        return rep


def _load(ctx: StudyContext, p: PlannedRun) -> ArmResult:
    res = [r["result"] for r in ctx.results(p)]
    label = arm_label(p.tag("method"), p.tag("density"), p.tag("delta_t"))
    if p.tag("method") == "dense":
        return ArmResult(label, [r["test_acc"] for r in res], [r["train_acc"] for r in res],
                         [1.0] * len(res), [1.0] * len(res), [0] * len(res), [], [])
    curves, overlap = [], []
    for s in p.seeds:
        st, v = ctx.series(p.config, s, "itop_rate")
        curves.append((list(st), list(v)))
        got = ctx.store.series(_rid(p.config, s), "grown_overlap").get("grown_overlap")
        overlap.append(float(np.mean(got[1])) if got and len(got[1]) else float("nan"))
    return ArmResult(label, [r["test_acc"] for r in res], [r["train_acc"] for r in res],
                     [r["itop_rate"] for r in res], [r["density_measured"] for r in res],
                     [r["dst_updates"] for r in res], curves, overlap)


def _rid(cfg: TrainConfig, seed: int) -> str:
    from overparam.config import run_id

    return run_id(cfg, seed)


def _layer_densities(ctx: StudyContext, plan: list[PlannedRun]
                     ) -> dict[tuple[str, float], dict[str, float]]:
    """Per-layer density of seed 0's final mask, one arm per density (read from the stored
    ``mask`` artifact; nothing is computed)."""
    from overparam.weights import WeightStore

    store = WeightStore(ctx.weights_dir)
    out = {}
    for p in plan:
        if p.tag("role") != "grid" or any(d == p.tag("density") for _, d in out):
            continue
        rid = _rid(p.config, p.seeds[0])
        if store.has(rid, "mask"):
            mask = store.load(rid, "mask")
            out[(p.tag("method"), p.tag("density"))] = {
                n: float(np.asarray(m).mean()) for n, m in mask.items()}
    return out


def _grid_table(cfg: SparseTrainingConfig, grid: dict[str, dict[float, ArmResult]],
                dense: ArmResult) -> Table:
    rows = [{"method": "dense", "density (%)": 100.0, "test acc (%)": pct(summarize(dense.test)),
             "train acc (%)": pct(summarize(dense.train)), "final R_s": 1.0}]
    for m, by_d in grid.items():
        for d, a in sorted(by_d.items()):
            gap = tost_test(a.test, dense.test, cfg.equivalence_margin)
            rows.append({"method": NAMES[m], "density (%)": 100 * d,
                         "measured density (%)": 100 * float(np.mean(a.density)),
                         "test acc (%)": pct(summarize(a.test)),
                         "train acc (%)": pct(summarize(a.train)),
                         "final R_s": summarize(a.itop).fmt(1, 3),
                         "updates": int(np.mean(a.updates)),
                         "gap to dense [95% CI]": gap.ours})
    return Table(f"Sparse training on {cfg.data}: {cfg.model}, {cfg.steps} steps, "
                 f"{cfg.seeds} seeds, {cfg.distribution.upper()}, ΔT={cfg.delta_t}",
                 ["method", "density (%)", "measured density (%)", "train acc (%)",
                  "test acc (%)", "gap to dense [95% CI]", "final R_s", "updates"], rows,
                 name="sparse_training_grid")


def _ladder_table(cfg: SparseTrainingConfig, ladder: list[ArmResult], main: ArmResult) -> Table:
    rows = []
    for dt, a in zip(sorted(cfg.ladder), ladder):
        p, diff = one_sided_welch(main.test, a.test) if a is not main else (None, 0.0)
        rows.append({"ΔT (steps)": dt, "updates": int(np.mean(a.updates)),
                     "final R_s": summarize(a.itop).fmt(1, 3),
                     "grown re-visits (%)": 100 * float(np.nanmean(a.overlap))
                     if np.isfinite(a.overlap).any() else "n/a",
                     "train acc (%)": pct(summarize(a.train)),
                     "test acc (%)": pct(summarize(a.test)),
                     f"ΔT={cfg.delta_t} minus this (pp)": "" if a is main else
                     f"{100 * diff:+.2f} (one-sided p={p:.3g})" if p is not None else
                     f"{100 * diff:+.2f}"})
    return Table(f"Update-interval ladder: {NAMES[cfg.ladder_method]} at "
                 f"{100 * cfg.ladder_density:g}% density, {cfg.seeds} seeds",
                 ["ΔT (steps)", "updates", "final R_s", "grown re-visits (%)", "train acc (%)",
                  "test acc (%)", f"ΔT={cfg.delta_t} minus this (pp)"], rows,
                 name="sparse_training_ladder")


def _figures(cfg: SparseTrainingConfig, ctx: StudyContext,
             grid: dict[str, dict[float, ArmResult]], ladder: list[ArmResult], dense: ArmResult
             ) -> list[Any]:
    from overparam.report.figures import band, figure, save

    out = []
    directory = ctx.figure_dir("sparse_training")
    fig, ax = figure()
    for a in ladder:
        steps = np.asarray(a.curves[0][0])
        vals = np.mean([np.interp(steps, s, v) for s, v in a.curves], axis=0)
        ax.step(steps, vals, where="post", label=a.label)
    ax.set_xlabel("training step")
    ax.set_ylabel("R_s (fraction of weights ever active)")
    ax.set_title(f"In-time over-parameterization rate ({cfg.seeds}-seed mean)", fontsize=10)
    ax.legend(fontsize=8)
    out.append(save(fig, directory, "itop_rate_vs_step"))

    fig, ax = figure()
    for m, by_d in grid.items():
        ds = sorted(by_d)
        sums = [summarize(by_d[d].test) for d in ds]
        band(ax, [100 * d for d in ds], [100 * s.mean for s in sums],
             [100 * s.ci_low for s in sums], [100 * s.ci_high for s in sums], NAMES[m])
    s = summarize(dense.test)
    ax.axhline(100 * s.mean, color="k", ls="--", lw=1, label="dense")
    ax.axhspan(100 * s.ci_low, 100 * s.ci_high, color="k", alpha=0.08, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("density (% of weights active)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{cfg.model} on {cfg.data}, equal steps (95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    out.append(save(fig, directory, "accuracy_vs_density"))

    fig, ax = figure()
    markers = {"static": "s", "set": "o", "rigl": "^"}
    for m, by_d in grid.items():
        xs = [v for a in by_d.values() for v in a.itop]
        ys = [100 * v for a in by_d.values() for v in a.test]
        ax.scatter(xs, ys, marker=markers[m], alpha=0.7, label=f"{NAMES[m]} (ΔT={cfg.delta_t})"
                   if m != "static" else "static")
    for a in ladder:
        if a.label not in {x.label for by_d in grid.values() for x in by_d.values()}:
            ax.scatter(a.itop, [100 * v for v in a.test], marker="x", label=a.label)
    ax.axhline(100 * s.mean, color="k", ls="--", lw=1, label="dense")
    ax.set_xlabel("final R_s (fraction of weights ever active)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against exploration (each point a seed)", fontsize=10)
    ax.legend(fontsize=7)
    out.append(save(fig, directory, "accuracy_vs_itop_rate"))
    return out
