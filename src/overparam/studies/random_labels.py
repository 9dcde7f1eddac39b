"""Randomization tests: an over-parameterized network fits random labels and random inputs.

Zhang, Bengio, Hardt, Recht & Vinyals 2017 ("Understanding deep learning requires rethinking
generalization", arXiv:1611.03530, Sec. 2): the same network and training procedure that
generalize on true labels reach 100% training accuracy on random labels, on partially
corrupted labels, on shuffled pixels (one fixed permutation), random pixels (a permutation per
image) and Gaussian inputs; fitting random labels takes only a small constant factor longer
than true labels (Sec. 1.1, Fig. 1b); test error rises with the corruption level (Fig. 1c);
and explicit regularization (weight decay) changes little (Table 1).

Arms (each trained to its epoch budget, seeds as one ensemble): true labels; label noise at each
level of ``noise_levels``; random labels; shuffled pixels; random pixels; Gaussian inputs;
true and random labels with weight decay. Every arm's training target: its final training
accuracy (a clean pass over the training set) at least ``fit_acc`` = 99.9% (at most one of
1,000 samples wrong). *Epochs to fit* of a run: the first epoch whose running training accuracy
(the mean over that epoch's mini-batches) reaches ``fit_acc``.

Label noise here and in Zhang et al. differ. Their corruption level p relabels each sample
independently with probability p by a class drawn uniformly from all C classes, which keeps
the true class with probability 1/C: a Binomial number of wrong labels, p (1 - 1/C) of them on
average. Our ``label_noise`` p (:mod:`overparam.data.transforms`) moves exactly round(p n)
labels to a *different* class: a fraction p is wrong. Our p = 0.2 ... 0.8 are their
p = 0.22 ... 0.89; their p = 1 is our random labels (about 90% wrong). Figures and the trend
test use the fraction of wrong training labels, measured.

Claims: every arm fits (deterministic, all seeds); random-label test accuracy is chance (1/C)
within ``chance_margin`` (TOST); fitting random labels is slower than true labels by less than
``max_slowdown`` (one-sided Welch tests on log epochs, intersection-union); test error rises
with the noise level (Spearman over all runs, the OLS slope with its 95% interval, and means
increasing at every level); weight decay leaves true-label test accuracy within ``margin``
(TOST); shuffled pixels leave an MLP's test accuracy within ``margin`` (TOST; exact in
distribution: the first layer's i.i.d. initialization is invariant to a fixed permutation of
the inputs, so the trained network's accuracy has the same law).

Quick preset: Zhang et al.'s MLP 1x512 (``mlp_w512_d2``, 26,122 parameters, 26 per training
sample) on 1,000 MNIST-1D training samples (Greydanus & Kobak 2020, arXiv:2011.14439; 1,000
keeps all eleven arms with four seeds within CPU minutes while the network stays 26x
over-parameterized; every test uses the 1,000 test samples); SGD with momentum 0.9 at batch 128
(Zhang et al.'s), a constant learning rate 0.05 (theirs: 0.01 decayed by 0.95 per epoch;
constant keeps epochs-to-fit free of a schedule, 0.05 lets random labels fit within the 150
epochs), weight decay 5e-4 in the regularized arms. About one CPU minute (44 runs, fused MLP steps).
Paper preset: their MLP 3x512 on CIFAR-10 (50,000 samples) at learning rate 0.01, 5 seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import Arm, acc_arm, mean_ci, tost_test


@dataclass(frozen=True)
class RandomLabelsConfig(Training):
    n_train: int = 1000
    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.05
    lr_scaling: str = "none"
    schedule: str = "constant"
    seeds: int = 4
    model: str = "mlp_w512_d2"
    noise_levels: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    weight_decay: float = 5e-4  # the regularized arms (true and random labels)
    fit_acc: float = 0.999  # training target and the accuracy that counts as fitted
    chance_margin: float = 0.02  # random labels: test accuracy within chance +- 2 pp (TOST)
    margin: float = 0.02  # weight decay, shuffled pixels: test accuracy within +- 2 pp (TOST)
    max_slowdown: float = 10.0  # "a small constant factor": random labels fit < 10x slower

    def check(self) -> None:
        super().check()
        from overparam.models.registry import parse_name

        parse_name(self.model)
        levels = self.noise_levels
        if not levels or any(not 0.0 < p < 1.0 for p in levels) or list(levels) != sorted(
                set(levels)):
            raise ConfigError("noise_levels", levels, "increasing rates in (0, 1), at least one")
        if not self.weight_decay > 0:
            raise ConfigError("weight_decay", self.weight_decay, "a positive number (the "
                              "regularized arms)")
        if not 0.0 < self.fit_acc <= 1.0:
            raise ConfigError("fit_acc", self.fit_acc, "an accuracy in (0, 1]")
        for name in ("chance_margin", "margin"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(name, getattr(self, name), "a margin in (0, 1)")
        if not self.max_slowdown > 1.0:
            raise ConfigError("max_slowdown", self.max_slowdown, "a factor > 1")


QUICK = RandomLabelsConfig()
# Zhang et al.'s MLP 3x512 on CIFAR-10, their learning rate for MLPs (0.01; constant here, their
# per-epoch decay of 0.95 is not one of our schedules), batch 128, momentum 0.9, 5 seeds.
PAPER = RandomLabelsConfig(data="cifar10", n_train=0, model="mlp_w512_d4", lr=0.01, epochs=300,
                           seeds=5)


def variants(cfg: RandomLabelsConfig) -> list[tuple[str, str, dict[str, Any], float]]:
    """``(key, label, data changes, weight decay)`` of every arm."""
    out: list[tuple[str, str, dict[str, Any], float]] = [("true", "true labels", {}, 0.0)]
    out += [(f"noise_{p:g}", f"label noise {p:g}", {"label_noise": p}, 0.0)
            for p in cfg.noise_levels]
    out += [("random", "random labels", {"random_labels": True}, 0.0),
            ("shuffled", "shuffled pixels", {"inputs": "shuffled_pixels"}, 0.0),
            ("random_pixels", "random pixels", {"inputs": "random_pixels"}, 0.0),
            ("gaussian", "Gaussian inputs", {"inputs": "gaussian"}, 0.0),
            ("true_wd", f"true labels, weight decay {cfg.weight_decay:g}", {},
             cfg.weight_decay),
            ("random_wd", f"random labels, weight decay {cfg.weight_decay:g}",
             {"random_labels": True}, cfg.weight_decay)]
    return out


def fit_epoch(history: list[dict[str, float]], target: float) -> int | None:
    """The first epoch whose running training accuracy reaches ``target`` (None: never)."""
    return next((int(h["epoch"]) for h in history if h.get("train_acc", 0.0) >= target), None)


# -- statistics ----------------------------------------------------------------------------------
def log_ratio(a: list[float], b: list[float], level: float = 0.95) -> dict[str, float]:
    """Ratio of geometric means ``exp(mean log a - mean log b)`` with its Welch interval
    (Welch-Satterthwaite df on the log scale); ``t`` and ``df`` of the log difference."""
    from scipy import stats as sps

    x, y = np.log(np.asarray(a, float)), np.log(np.asarray(b, float))
    d = float(x.mean() - y.mean())
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if va + vb == 0:
        return {"ratio": math.exp(d), "lo": math.exp(d), "hi": math.exp(d), "t": math.nan,
                "df": math.nan, "se": 0.0, "d": d}
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return {"ratio": math.exp(d), "lo": math.exp(d - half), "hi": math.exp(d + half),
            "t": d / se, "df": df, "se": se, "d": d}


def slowdown_test(random: list[float], true: list[float], max_factor: float
                  ) -> tuple[dict[str, float], float | None]:
    """Intersection-union test of ``1 < ratio < max_factor`` for the ratio of geometric mean
    epochs-to-fit: one-sided Welch tests of ``log ratio > 0`` and ``log ratio < log max_factor``;
    p = the larger (None when both arms are constant)."""
    from scipy import stats as sps

    r = log_ratio(random, true)
    if r["se"] == 0:
        return r, None
    p_slower = float(sps.t.sf(r["d"] / r["se"], r["df"]))
    p_small = float(sps.t.cdf((r["d"] - math.log(max_factor)) / r["se"], r["df"]))
    return r, max(p_slower, p_small)


def trend(x: list[float], y: list[float]) -> dict[str, float]:
    """Spearman's rho (scipy) of ``y`` on ``x`` over all runs and the OLS slope of ``y`` on
    ``x`` with its 95% t interval (n - 2 df)."""
    from scipy import stats as sps

    rho, p = sps.spearmanr(x, y)
    fit = sps.linregress(x, y)
    half = float(sps.t.ppf(0.975, len(x) - 2)) * fit.stderr
    return {"rho": float(rho), "p": float(p), "slope": float(fit.slope),
            "lo": float(fit.slope - half), "hi": float(fit.slope + half)}


# -- verdicts: plain numbers in, a verdict out ---------------------------------------------------
@dataclass
class ArmResult:
    """Per-seed numbers of one arm."""

    key: str
    label: str
    train: list[float]
    test: list[float]
    fit: list[int | None]
    wrong: float  # fraction of wrong training labels
    history: list[list[dict[str, float]]]


def fits_verdict(arms: list[ArmResult], target: float, epochs: int) -> Verdict:
    """Every arm reaches ``target`` training accuracy, every seed (deterministic)."""
    low = {a.label: min(a.train) for a in arms}
    missed = [k for k, v in low.items() if v < target]
    worst = min(low, key=low.get)
    return Verdict(
        "an over-parameterized MLP fits every randomization to 100% training accuracy",
        f"lowest final training accuracy over {len(arms)} arms x {len(arms[0].train)} seeds: "
        f"{100 * low[worst]:.2f}% ({worst}); target {100 * target:g}% within {epochs} epochs"
        + (f"; missed by: {', '.join(missed)}" if missed else ""),
        criteria=not missed, claim_id="rl_fits_all",
        blueprint="100% training accuracy on random labels, shuffled and random pixels and "
                  "Gaussian inputs (Inception, CIFAR-10, Fig. 1a), with or without weight "
                  "decay (Table 1)",
        ours=f"min train acc {100 * low[worst]:.2f}%", controls="every seed of every arm")


def chance_verdict(random: ArmResult, chance: float, margin: float, target: float,
                   majority: float) -> Verdict:
    """Random-label test accuracy equals chance within ``margin`` (TOST against the constant
    ``chance``, i.e. a one-sample t test each side)."""
    t = tost_test(random.test, [chance] * len(random.test), margin)
    return Verdict(
        f"random labels: test accuracy is chance ({100 * chance:g}%) within "
        f"±{100 * margin:g} pp", f"test acc {mean_ci(random.test)}%; vs chance: {t.text}; "
        f"(the test set's most frequent class holds {100 * majority:.1f}%)", p=t.p,
        test=f"TOST ±{100 * margin:g} pp", equivalence=True, outside=t.outside,
        claim_id="rl_random_chance", blueprint="test accuracy at chance, 10% on CIFAR-10 "
        "(Sec. 2.1, Table 1)", ours=f"{mean_ci(random.test)}% (chance {100 * chance:g}%)",
        effect=t.effect, arms=(acc_arm(random.label, random.train, target),))


def slowdown_verdict(random: ArmResult, true: ArmResult, max_factor: float, target: float
                     ) -> tuple[Verdict, dict[str, float]]:
    """Random labels take longer to fit than true labels, by less than ``max_factor``."""
    arms = [acc_arm(random.label, random.train, target), acc_arm(true.label, true.train, target)]
    for a in (random, true):
        never = sum(e is None for e in a.fit)
        arms.append(Arm(f"{a.label} (epochs to fit)", f"running train acc >= "
                        f"{100 * target:g}% within the budget", never == 0,
                        f"{len(a.fit) - never}/{len(a.fit)} seeds reached it"))
    claim = (f"fitting random labels takes longer than true labels, by a small constant factor "
             f"(< {max_factor:g}x)")
    if any(e is None for e in random.fit + true.fit):
        return Verdict(claim, "some seed never reached the target: no ratio",
                       claim_id="rl_slowdown", arms=tuple(arms)), {}
    r, p = slowdown_test([float(e) for e in random.fit], [float(e) for e in true.fit],
                         max_factor)
    ok = r["ratio"] > 1.0 and r["ratio"] < max_factor
    return Verdict(
        claim, f"epochs to fit: random labels {np.mean(random.fit):.1f}, true labels "
        f"{np.mean(true.fit):.1f}; ratio of geometric means {r['ratio']:.2f} "
        f"[95% CI {r['lo']:.2f}, {r['hi']:.2f}]" + ("" if p is None else f", IUT p={p:.3g}"),
        criteria=ok, p=p, test=f"one-sided Welch on log epochs: > 1 and < {max_factor:g} (IUT)",
        claim_id="rl_slowdown", blueprint="random labels: convergence slower by a small "
        "constant factor (Sec. 1.1, Fig. 1b)",
        ours=f"x{r['ratio']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]", arms=tuple(arms)), r


def trend_verdict(levels: list[ArmResult], target: float) -> tuple[Verdict, dict[str, float]]:
    """Test error rises with the fraction of wrong labels: Spearman over all runs, the OLS
    slope, and the mean test error increasing at every level; all must hold."""
    x = [a.wrong for a in levels for _ in a.test]
    y = [1 - v for a in levels for v in a.test]
    tr = trend(x, y)
    means = [1 - float(np.mean(a.test)) for a in levels]
    monotone = all(b > a for a, b in zip(means, means[1:]))
    ok = tr["rho"] > 0 and tr["lo"] > 0 and monotone
    return Verdict(
        "test error increases monotonically with the fraction of wrong labels",
        f"mean test error {' < '.join(f'{100 * m:.1f}%' for m in means)} at wrong-label "
        f"fractions {', '.join(f'{a.wrong:.2g}' for a in levels)} "
        f"({'monotone' if monotone else 'not monotone'}); Spearman rho={tr['rho']:.3f} "
        f"(p={tr['p']:.3g}, {len(x)} runs); OLS slope {100 * tr['slope']:.1f} pp per unit "
        f"[95% CI {100 * tr['lo']:.1f}, {100 * tr['hi']:.1f}]", criteria=ok, p=tr["p"],
        test="Spearman + OLS slope + monotone means", claim_id="rl_noise_trend",
        blueprint="test error rises steadily with the corruption level p, to 90% at p = 1 "
                  "(Fig. 1c)",
        ours=f"slope {100 * tr['slope']:.1f} [{100 * tr['lo']:.1f}, {100 * tr['hi']:.1f}] "
             f"pp/unit; rho={tr['rho']:.2f}",
        arms=tuple(acc_arm(a.label, a.train, target) for a in levels)), tr


def equivalence_verdict(a: ArmResult, b: ArmResult, margin: float, target: float,
                        claim: str, claim_id: str, blueprint: str) -> Verdict:
    """Test accuracies of arms ``a`` and ``b`` within ``margin`` (TOST)."""
    t = tost_test(a.test, b.test, margin)
    return Verdict(claim, f"{a.label} {mean_ci(a.test)}% vs {b.label} {mean_ci(b.test)}%: "
                   f"{t.text}", p=t.p, test=f"TOST ±{100 * margin:g} pp", equivalence=True,
                   outside=t.outside, claim_id=claim_id, blueprint=blueprint, ours=t.ours,
                   effect=t.effect, arms=(acc_arm(a.label, a.train, target),
                                          acc_arm(b.label, b.train, target)))


class RandomLabels(Study):
    name = "random_labels"
    CAPTIONS = {
        "training_curves": (
            "Training loss (left) and training accuracy (right) along training for true labels, "
            "partially and fully random labels, and shuffled, random and Gaussian inputs (mean "
            "over seeds; dashed: with weight decay); dotted: the fit target (Zhang et al. "
            "2017)."
        ),
        "corruption": (
            "Left: epochs to fit the training set against the fraction of wrong labels. Right: "
            "test error against the same fraction, with chance marked (mean over seeds, 95% CI "
            "bands; cf. Zhang et al. 2017, Fig. 1b-c)."
        ),
    }
    Config = RandomLabelsConfig
    PRESETS = {"quick": QUICK, "paper": PAPER}

    def plan(self, cfg: RandomLabelsConfig) -> list[PlannedRun]:
        return [PlannedRun(cfg.train_config(cfg.model, data=cfg.data_config(**changes),
                                            optim=cfg.optim_config(weight_decay=wd)),
                           cfg.seed_ids, (("variant", key), ("label", label)))
                for key, label, changes, wd in variants(cfg)]

    def _arm(self, ctx: StudyContext, p: PlannedRun, fit_acc: float) -> ArmResult:
        res = ctx.results(p)
        ds = ctx.data(p.config.data)
        clean = ds.info.get("clean_y_train")
        wrong = 0.0 if clean is None else float(
            (ds.y_train != clean.to(ds.y_train.device)).float().mean())
        return ArmResult(p.tag("variant"), p.tag("label"),
                         [r["result"]["train_acc"] for r in res],
                         [r["result"]["test_acc"] for r in res],
                         [fit_epoch(r["history"], fit_acc) for r in res], wrong,
                         [r["history"] for r in res])

    def analyze(self, cfg: RandomLabelsConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        arms = {p.tag("variant"): self._arm(ctx, p, cfg.fit_acc) for p in plan}
        true, random = arms["true"], arms["random"]
        ds = ctx.data(plan[0].config.data)
        chance = 1.0 / ds.num_classes
        counts = np.bincount(ds.y_test.cpu().numpy(), minlength=ds.num_classes)
        majority = float(counts.max() / counts.sum())
        true_fit = [e for e in true.fit if e is not None]
        rows = []
        for a in arms.values():
            fits = [e for e in a.fit if e is not None]
            ratio = ""
            if fits and len(fits) == len(a.fit) and true_fit and len(true_fit) == len(true.fit):
                r = log_ratio(fits, true_fit)
                ratio = f"{r['ratio']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
            rows.append({
                "arm": a.label, "wrong labels": a.wrong,
                "train acc (%)": summarize(a.train).fmt(100),
                "test acc (%)": summarize(a.test).fmt(100),
                "epochs to fit": (summarize(fits).fmt(1, 1) if len(fits) >= 2 else
                                  ", ".join("never" if e is None else str(e) for e in a.fit)),
                "not fitted (seeds)": sum(e is None for e in a.fit),
                "vs true labels (x)": ratio})
        n_params = _n_params(cfg.model, ds)
        rep.tables.append(Table(
            f"Randomization tests: {cfg.model} ({n_params:,} parameters) on {cfg.data}, "
            f"{ds.n_train:,} training samples, {cfg.epochs} epochs, {cfg.seeds} seeds",
            ["arm", "wrong labels", "train acc (%)", "test acc (%)", "epochs to fit",
             "not fitted (seeds)", "vs true labels (x)"], rows))
        levels = [true] + [arms[f"noise_{p:g}"] for p in cfg.noise_levels]
        rep.verdicts.append(fits_verdict(list(arms.values()), cfg.fit_acc, cfg.epochs))
        rep.verdicts.append(chance_verdict(random, chance, cfg.chance_margin, cfg.fit_acc,
                                           majority))
        slow, ratio = slowdown_verdict(random, true, cfg.max_slowdown, cfg.fit_acc)
        rep.verdicts.append(slow)
        tv, tr = trend_verdict(levels, cfg.fit_acc)
        rep.verdicts.append(tv)
        rep.verdicts.append(equivalence_verdict(
            arms["true_wd"], true, cfg.margin, cfg.fit_acc,
            f"weight decay changes true-label test accuracy by less than {100 * cfg.margin:g} pp",
            "rl_weight_decay", "explicit regularization is neither necessary nor sufficient "
            "for generalization; weight decay changes CIFAR-10 test accuracy by a few points "
            "(Sec. 3, Table 1)"))
        rep.verdicts.append(equivalence_verdict(
            arms["shuffled"], true, cfg.margin, cfg.fit_acc,
            f"shuffled pixels leave the MLP's test accuracy unchanged (within "
            f"{100 * cfg.margin:g} pp)", "rl_shuffled_invariance",
            "exact in distribution: an MLP's i.i.d. first layer absorbs a fixed input "
            "permutation"))
        rep.facts.update({"rl_random_test_acc": float(np.mean(random.test)),
                          "rl_true_test_acc": float(np.mean(true.test)),
                          "rl_slowdown_ratio": ratio.get("ratio"),
                          "rl_trend_slope": tr["slope"], "rl_trend_rho": tr["rho"]})
        rep.notes.append(
            "Label noise: Zhang et al. relabel each sample with probability p by a uniform "
            "class (keeping the true one with probability 1/C: p(1 - 1/C) wrong on average); "
            "our label_noise p moves exactly round(p n) labels to a different class, so a "
            f"fraction p is wrong. Our levels {', '.join(f'{p:g}' for p in cfg.noise_levels)} "
            "are their p = " + ", ".join(f"{p / (1 - chance):.2f}" for p in cfg.noise_levels)
            + f"; random labels (their p = 1) leave {100 * random.wrong:.1f}% wrong here.")
        rep.notes.append(
            "Shuffled pixels and an MLP: a run on shuffled inputs equals (to float64 rounding) "
            "the run on real inputs whose first-layer columns are permuted back, so the two arms "
            "have the same distribution of test accuracy (the i.i.d. initialization does not "
            "see the permutation); their difference here, "
            f"{100 * (np.mean(arms['shuffled'].test) - np.mean(true.test)):+.2f} pp, is "
            f"sampling variation of the initialization over {cfg.seeds} seeds.")
        rp, ga = arms["random_pixels"], arms["gaussian"]
        rep.notes.append(
            f"Random pixels keep each input's values and permute their positions: test "
            f"accuracy {100 * np.mean(rp.test):.1f}% against {100 * np.mean(ga.test):.1f}% "
            f"for Gaussian inputs (chance {100 * chance:g}%), so the values alone carry some "
            f"class information here. Both fit faster than true labels (epochs to fit "
            f"{_mean_fit(rp)}, {_mean_fit(ga)} vs {_mean_fit(true)}); Zhang et al. (Fig. 1a) "
            f"also see random pixels and Gaussian inputs converge faster than random labels.")
        rep.notes.append(
            f"Epochs to fit: the first epoch whose running training accuracy (mean over its "
            f"mini-batches, before each step) reaches {100 * cfg.fit_acc:g}%. Chance is 1/C = "
            f"{100 * chance:g}% for a predictor independent of the test labels.")
        self._figures(cfg, ctx, rep, arms, levels, random, chance)
        return rep

    def _figures(self, cfg: RandomLabelsConfig, ctx: StudyContext, rep: StudyReport,
                 arms: dict[str, ArmResult], levels: list[ArmResult], random: ArmResult,
                 chance: float) -> None:
        from overparam.report.figures import band, figure, save

        out = ctx.figure_dir(self.name)
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_acc) = figure(11, 4, ncols=2)
        colors = plt.get_cmap("tab20")
        for i, a in enumerate(arms.values()):
            epochs = [h["epoch"] for h in a.history[0]]
            n = min(len(h) for h in a.history)
            style = {"color": colors(2 * i % 20 + (2 * i // 20)), "lw": 1.2,
                     "ls": "--" if a.key.endswith("_wd") else "-"}
            for ax, key in ((ax_loss, "train_loss"), (ax_acc, "train_acc")):
                vals = np.array([[h[key] for h in hist[:n]] for hist in a.history])
                scale = 100.0 if key == "train_acc" else 1.0
                ax.plot(epochs[:n], scale * vals.mean(0), label=a.label, **style)
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("training loss (cross-entropy, running mean)")
        ax_acc.set_ylabel("training accuracy (%, running mean)")
        ax_acc.axhline(100 * cfg.fit_acc, color="k", ls="--", lw=0.8,
                       label=f"fit target {100 * cfg.fit_acc:g}%")
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
        ax_acc.legend(fontsize=7)
        ax_loss.set_title(f"Fitting randomizations: {cfg.model}, {cfg.seeds}-seed mean")
        rep.figures.append(save(fig, out, "training_curves"))

        fig, (ax_t, ax_e) = figure(11, 4, ncols=2)
        pts = levels + [random]
        xs = [a.wrong for a in pts]
        fits = [[e for e in a.fit if e is not None] for a in pts]
        ok = [i for i, f in enumerate(fits) if len(f) >= 2]
        sums = [summarize(fits[i]) for i in ok]
        band(ax_t, [xs[i] for i in ok], [s.mean for s in sums], [s.ci_low for s in sums],
             [s.ci_high for s in sums], "epochs to fit (95% CI)")
        ax_t.set_xlabel("fraction of wrong training labels")
        ax_t.set_ylabel("epochs to fit (running train acc "
                        f">= {100 * cfg.fit_acc:g}%)")
        ax_t.set_title("Time to fit vs label corruption (cf. Zhang Fig. 1b)")
        ax_t.legend(fontsize=8)
        sums = [summarize([1 - v for v in a.test]) for a in pts]
        band(ax_e, xs, [100 * s.mean for s in sums], [100 * s.ci_low for s in sums],
             [100 * s.ci_high for s in sums], "test error (95% CI)")
        for ax, y in ((ax_t, np.mean(fits[-1]) if fits[-1] else None),
                      (ax_e, sums[-1].mean * 100)):
            if y is not None:
                ax.annotate("random labels", (xs[-1], y), textcoords="offset points",
                            xytext=(-70, 8), fontsize=8)
        ax_e.axhline(100 * (1 - chance), color="k", ls="--", lw=0.8,
                     label=f"chance ({100 * (1 - chance):g}% error)")
        ax_e.set_xlabel("fraction of wrong training labels")
        ax_e.set_ylabel("test error (%)")
        ax_e.set_title("Test error vs label corruption (cf. Zhang Fig. 1c)")
        ax_e.legend(fontsize=8)
        rep.figures.append(save(fig, out, "corruption"))


def _mean_fit(a: ArmResult) -> str:
    fits = [e for e in a.fit if e is not None]
    return f"{np.mean(fits):.1f}" if len(fits) == len(a.fit) else "not all fitted"


def _n_params(model: str, ds: Any) -> int:
    from overparam.models import build, count_params

    return count_params(build(model, ds.input_shape, ds.num_classes, device="meta"))


__all__ = ["RandomLabels", "RandomLabelsConfig"]
