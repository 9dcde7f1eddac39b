"""Label noise and sparse over-parameterization (SOP): memorization, its cure, the linear toy.

Question: an over-parameterized network trained by cross-entropy on noisy labels first learns
the clean signal, then memorizes the wrong labels and its test accuracy decays; does modelling
the noise by a sparse over-parameterized term ``s_i = u_i o u_i - v_i o v_i`` per sample (SOP)
keep the network near a clean-label model, and does ``||s_i||`` find the noisy labels? Source:
Liu, Zhu, Qu & You 2022, "Robust Training under Label Noise by Over-parameterization", ICML,
arXiv:2202.14026 (seed 003, Sec. 2.3 and 3.3); the method is :mod:`overparam.train.sop`, the
linear theory :mod:`overparam.theory.noisy_regression`.

Arms (each trained to its epoch budget, seeds as one ensemble; test accuracy every
``eval_every`` epochs): a clean-label reference (cross-entropy, no noise); at each noise level
``r``: plain cross-entropy (CE) and SOP, on the same noisy labels. Training targets: the clean
arm fits its labels (final training accuracy >= ``fit_acc``); the CE arm memorizes its noisy
labels (training accuracy *on the noisy labels* >= ``fit_acc``: memorization is what claim (a)
is about); SOP's model of the labels, ``argmax(softmax(f_i) + s_i)``, fits the noisy labels
(>= ``fit_acc``: in the paper's objective ``f + s`` is fitted to them while ``s`` absorbs the
noise).

Noise: our ``label_noise`` r moves exactly round(r n) labels to a *different* class
(:mod:`overparam.data.transforms`). The authors' symmetric noise draws the new label uniformly
over all C classes, so a fraction 1/C of their "noisy" samples keep the true label: our r equals
their rate ``r C / (C - 1)`` (0.2, 0.4, 0.6 are their 0.22, 0.44, 0.67 for C = 10). We report
ours.

Claims (per noise level unless said otherwise; one Holm family):

(a) ``ln_memorization_r*``: CE's test accuracy peaks then decays. ``peak - final`` is positive
    by construction (a maximum over epochs), so it is compared with the same statistic of the
    clean arm, which has the selection effect and no noisy labels (Welch);
(b) ``ln_sop_vs_clean_r*``: SOP's final test accuracy equals the clean model's within
    ``margin`` (TOST); ``ln_sop_vs_ce_r*``: and is above CE's final (Welch);
(c) ``ln_detection_r*``: ``||s_i||`` separates noisy from clean samples: AUROC above chance
    (0.5; one-sample t over seeds), with precision and recall of ``||s_i|| > threshold``;
(d) the linear toy ``y = X w* + s*`` with a sparse corruption: gradient descent on
    ``(w, u, v)`` from a small init is less biased than least squares at every corruption
    fraction (``ln_toy_error``: paired one-sided t on log error ratios, intersection-union) and
    recovers ``supp(s*)`` (``ln_toy_support``: mean precision and recall >= 0.95 at every
    fraction; deterministic). LAD (the small-init limit, a linear program) is the reference.

Quick preset: MNIST-1D (Greydanus & Kobak 2020, arXiv:2011.14439; 4,000 training samples), an
MLP with two hidden layers of 256 (78,858 parameters, 20 per sample), noise 0.2, 0.4, 0.6, SGD
with momentum 0.9 at batch 128 (the authors'), cosine schedule over 60 epochs, 5 seeds (with 3,
the Welch tests have about 2 degrees of freedom). The learning rate is 0.05: at the authors'
0.02 the clean MLP fits 96% of its training set in 80 epochs (measured), short of the 99%
target. SOP: lr_u = lr_v = 10 (the authors' CIFAR-10 rates as we read their Table A.1, see
:mod:`overparam.train.sop`), plain SGD, init std 1e-8; no augmentation, no weight decay. The
toy: n = 200, d = 20, 10 instances per fraction, alpha = 1e-3, 5,000 steps. Runtime: 2.2
minutes wall on the lab's 2 CPU cores shared with other jobs (load about 5), about 90
CPU-seconds in all (7 runs x 5 seeds; the 4 cross-entropy runs take the fused MLP step, SOP's 3
take autograd).
Paper preset: CIFAR-10 at noise 0.2-0.8 with the authors' protocol (SGD at 0.02, momentum 0.9,
batch 128, cosine over 300 epochs, as in the released config; weight decay 5e-4 for CIFAR-10 as
we read the paper, the released CIFAR-100 config has 1e-3), 3 seeds; PreAct ResNet-18 is not in
the lab, so the blueprint's largest CNN, ``cnn_c96`` (4.15M parameters), stands in; no
augmentation (the authors augment).
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
from overparam.studies.verdicts import Arm, acc_arm, mean_ci, tost_test, welch_test

HIST_EDGES = tuple(np.linspace(0.0, 1.5, 31).tolist())  # ‖s_i‖ histogram bins (last: >= 1.45)


@dataclass(frozen=True)
class LabelNoiseConfig(Training):
    epochs: int = 60
    lr: float = 0.05
    lr_scaling: str = "none"
    seeds: int = 5
    model: str = "mlp_w256_d3"
    noise_levels: tuple[float, ...] = (0.2, 0.4, 0.6)
    weight_decay: float = 0.0
    eval_every: int = 1  # test accuracy every epoch: the peak must be seen
    lr_u: float = 10.0  # SOP's plain-SGD rates for u and v, and their init std
    lr_v: float = 10.0
    init_std: float = 1e-8
    fit_acc: float = 0.99  # every arm's training target (see the module docstring)
    margin: float = 0.02  # SOP vs clean: equal within +-2 pp (TOST)
    threshold: float = 0.5  # ‖s_i‖ above it flags sample i as noisy
    toy_n: int = 200
    toy_d: int = 20
    toy_fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4)
    toy_trials: int = 10
    toy_scale: float = 5.0  # corruptions are +-scale x (1 + U(0, 1)); clean responses have std ~1
    toy_alpha: float = 1e-3
    toy_steps: int = 5000
    toy_threshold: float = 0.5  # |s_i| above it counts as in the support

    def check(self) -> None:
        super().check()
        from overparam.models.registry import parse_name

        parse_name(self.model)
        if self.data in ("linear", "teacher"):
            raise ConfigError("data", self.data, "a classification data set (SOP models labels)")
        _rates("noise_levels", self.noise_levels)
        _rates("toy_fractions", self.toy_fractions)
        for name in ("lr_u", "lr_v", "init_std", "threshold", "toy_scale", "toy_alpha",
                     "toy_threshold"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(name, v, "a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError("weight_decay", self.weight_decay, "a number >= 0")
        if not 0.0 < self.fit_acc <= 1.0:
            raise ConfigError("fit_acc", self.fit_acc, "an accuracy in (0, 1]")
        if not 0.0 < self.margin < 1.0:
            raise ConfigError("margin", self.margin, "a margin in (0, 1)")
        for name, low in (("eval_every", 1), ("toy_d", 1), ("toy_trials", 2), ("toy_steps", 1)):
            if getattr(self, name) < low:
                raise ConfigError(name, getattr(self, name), f"an integer >= {low}")
        if self.toy_n <= self.toy_d:
            raise ConfigError("toy_n", self.toy_n, f"more samples than toy_d={self.toy_d}")


def _rates(name: str, values: tuple[float, ...]) -> None:
    if not values or any(not 0.0 < p < 1.0 for p in values) or list(values) != sorted(
            set(values)):
        raise ConfigError(name, values, "increasing rates in (0, 1), at least one")


QUICK = LabelNoiseConfig()
PAPER = LabelNoiseConfig(data="cifar10", model="cnn_c96", epochs=300, lr=0.02, seeds=3,
                         weight_decay=5e-4, noise_levels=(0.2, 0.4, 0.6, 0.8), toy_n=1000,
                         toy_d=100, toy_trials=20, toy_steps=20000)


# -- statistics: plain numbers in, numbers out ---------------------------------------------------
def auroc(scores: Any, positive: Any) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` class: the Mann-Whitney
    statistic ``(R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)`` with mid-ranks for ties."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both classes")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_recall(scores: Any, positive: Any, threshold: float) -> tuple[float, float]:
    """Precision and recall of ``scores > threshold`` (precision 1 when nothing is flagged)."""
    flagged = np.asarray(scores, dtype=float) > threshold
    pos = np.asarray(positive, dtype=bool)
    tp = float(np.sum(flagged & pos))
    return (tp / flagged.sum() if flagged.any() else 1.0), tp / max(int(pos.sum()), 1)


def curve(history: list[dict[str, float]]) -> tuple[list[int], list[float]]:
    """Epochs and test accuracies of the evaluated epochs of one run."""
    pts = [(int(h["epoch"]), float(h["test_acc"])) for h in history
           if h.get("test_acc") is not None]
    return [e for e, _ in pts], [a for _, a in pts]


def peak_decay(history: list[dict[str, float]]) -> tuple[float, int, float]:
    """``(peak test accuracy, its epoch, peak - final)`` over the evaluated epochs."""
    epochs, acc = curve(history)
    i = int(np.argmax(acc))
    return acc[i], epochs[i], acc[i] - acc[-1]


def error_ratio_test(err_ls: list[list[float]], err_sop: list[list[float]]
                     ) -> tuple[list[float], float]:
    """Per fraction, the mean of ``log(err_LS / err_SOP)`` over instances; the
    intersection-union p of "positive at every fraction" (the largest one-sided one-sample t
    p-value; scipy)."""
    from scipy import stats as sps

    means, ps = [], []
    for a, b in zip(err_ls, err_sop):
        d = np.log(np.asarray(a)) - np.log(np.asarray(b))
        means.append(float(d.mean()))
        ps.append(float(sps.ttest_1samp(d, 0.0, alternative="greater").pvalue))
    return means, max(ps)


@dataclass
class ArmResult:
    """Per-seed numbers of one trained arm."""

    key: str
    label: str
    noise: float
    train: list[float]  # the target's accuracy (SOP: f + s on the noisy labels)
    test: list[float]
    peak: list[float]
    peak_epoch: list[int]
    decay: list[float]
    history: list[list[dict[str, float]]]

    def target(self, fit_acc: float) -> Arm:
        return acc_arm(self.label, self.train, fit_acc)


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


# -- verdicts ------------------------------------------------------------------------------------
def memorization_verdict(ce: ArmResult, clean: ArmResult, fit_acc: float) -> Verdict:
    w = welch_test(ce.decay, clean.decay)
    r = _pct(ce.noise)
    return Verdict(
        f"noise {r}: CE's test accuracy peaks then decays (memorization)",
        f"peak - final test acc: CE {mean_ci(ce.decay)} pp (peak {mean_ci(ce.peak)}% at epoch "
        f"{np.mean(ce.peak_epoch):.0f}) vs clean arm {mean_ci(clean.decay)} pp; {w.text}",
        criteria=w.diff > 0, p=w.p, test="Welch (vs the clean arm's peak - final)",
        claim_id=f"ln_memorization_r{round(100 * ce.noise)}", effect=w.effect, ours=w.ours,
        blueprint="CE on noisy labels overfits: test accuracy rises then falls as the wrong "
                  "labels are memorized (Liu et al. 2022, their CE vs SOP curves on CIFAR-10)",
        arms=(ce.target(fit_acc), clean.target(fit_acc)),
        controls="peak - final of the clean arm: the same max-over-epochs selection")


def sop_clean_verdict(sop: ArmResult, clean: ArmResult, margin: float, fit_acc: float
                      ) -> Verdict:
    t = tost_test(sop.test, clean.test, margin)
    return Verdict(
        f"noise {_pct(sop.noise)}: SOP's final test accuracy matches the clean-label model "
        f"(within ±{100 * margin:g} pp)",
        f"SOP {mean_ci(sop.test)}% vs clean {mean_ci(clean.test)}%: {t.text}", p=t.p,
        test=f"TOST ±{100 * margin:g} pp", equivalence=True, outside=t.outside,
        claim_id=f"ln_sop_vs_clean_r{round(100 * sop.noise)}", effect=t.effect, ours=t.ours,
        blueprint="seed 003: over-parameterized models with SOP achieve 'remarkable "
                  "robustness' to label noise (Sec. 2.3); no clean-label number is quoted",
        arms=(sop.target(fit_acc), clean.target(fit_acc)))


def sop_ce_verdict(sop: ArmResult, ce: ArmResult, fit_acc: float) -> Verdict:
    w = welch_test(sop.test, ce.test)
    return Verdict(
        f"noise {_pct(sop.noise)}: SOP's final test accuracy is above CE's",
        f"SOP {mean_ci(sop.test)}% vs CE {mean_ci(ce.test)}%: {w.text}", criteria=w.diff > 0,
        p=w.p, test="Welch", claim_id=f"ln_sop_vs_ce_r{round(100 * sop.noise)}",
        effect=w.effect, ours=w.ours,
        blueprint="SOP outperforms standard cross-entropy training under label noise (seed "
                  "003, Sec. 3.3; Liu et al. 2022, CIFAR-10/100 results)",
        arms=(sop.target(fit_acc), ce.target(fit_acc)))


def detection_verdict(sop: ArmResult, sep: list[dict[str, float]], threshold: float,
                      fit_acc: float) -> Verdict:
    au = [s["auroc"] for s in sep]
    w = welch_test(au, [0.5] * len(au), scale=1.0, unit="")
    prec = [s["precision"] for s in sep]
    rec = [s["recall"] for s in sep]
    return Verdict(
        f"noise {_pct(sop.noise)}: ‖s_i‖ separates noisy from clean samples",
        f"AUROC {mean_ci(au, 1.0, 3)} vs chance 0.5 ({w.text}); at ‖s_i‖ > {threshold:g}: "
        f"precision {mean_ci(prec)}%, recall {mean_ci(rec)}%", criteria=w.diff > 0, p=w.p,
        test="one-sample t (AUROC > 0.5)", claim_id=f"ln_detection_r{round(100 * sop.noise)}",
        ours=f"AUROC {mean_ci(au, 1.0, 3)}",
        blueprint="the learned s separates the corrupted labels from the clean ones (Liu et "
                  "al. 2022; exact separation in their linear analysis)",
        arms=(sop.target(fit_acc),))


def toy_verdicts(cfg: LabelNoiseConfig, toy: dict[str, list]) -> list[Verdict]:
    means, p = error_ratio_test(toy["err_ls"], toy["err_sop"])
    ls = [float(np.mean(v)) for v in toy["err_ls"]]
    sop = [float(np.mean(v)) for v in toy["err_sop"]]
    fr = ", ".join(_pct(f) for f in cfg.toy_fractions)
    setting = (f"n={cfg.toy_n}, d={cfg.toy_d}, {cfg.toy_trials} instances per fraction, "
               f"alpha={cfg.toy_alpha:g}")
    err = Verdict(
        "linear toy: GD on the over-parameterized model (w, u o u - v o v) is less biased than "
        "least squares at every corruption fraction",
        f"mean ‖w - w*‖: LS {', '.join(f'{v:.3g}' for v in ls)} vs SOP-GD "
        f"{', '.join(f'{v:.3g}' for v in sop)} at {fr} corrupted ({setting}); mean log "
        f"ratios {', '.join(f'{m:.2f}' for m in means)}", criteria=all(m > 0 for m in means),
        p=p, test="one-sided one-sample t on log(err_LS / err_SOP) per fraction, IUT",
        claim_id="ln_toy_error", ours=f"ratio x{math.exp(min(means)):.3g} at the worst fraction",
        blueprint="least squares is biased by the corruption; the over-parameterized model "
                  "recovers w* (Liu et al. 2022, linear analysis)")
    prec = [float(np.mean(v)) for v in toy["prec_sop"]]
    rec = [float(np.mean(v)) for v in toy["rec_sop"]]
    sup = Verdict(
        "linear toy: GD from a small init recovers the support of the sparse corruption",
        f"abs(s_i) > {cfg.toy_threshold:g}: mean precision {', '.join(f'{v:.3f}' for v in prec)}, "
        f"recall {', '.join(f'{v:.3f}' for v in rec)} at {fr} corrupted ({setting})",
        criteria=min(prec) >= 0.95 and min(rec) >= 0.95, claim_id="ln_toy_support",
        ours=f"min precision {min(prec):.3f}, min recall {min(rec):.3f}",
        blueprint="exact separation of sparse noise from low-rank data under incoherence "
                  "(Liu et al. 2022, linear analysis)",
        controls="deterministic: mean precision and recall >= 0.95 at every fraction")
    return [err, sup]


class LabelNoise(Study):
    name = "label_noise"
    CAPTIONS = {
        "test_accuracy_curves": (
            "Test accuracy along training of plain cross-entropy and of SOP on labels with the "
            "given fraction moved to a wrong class, beside the model trained on clean labels "
            "(mean over seeds, 95% CI bands): cross-entropy peaks early, then memorizes the "
            "wrong labels (Arpit et al. 2017; Liu et al. 2022)."
        ),
        "noise_norm_histogram": (
            "Distribution of the learned per-sample noise norm ‖s_i‖ at the end of SOP "
            "training, for samples whose label is clean and whose label is wrong (all seeds "
            "pooled, log density); dashed: the threshold of the precision and recall in the "
            "tables."
        ),
        "toy_recovery": (
            "Linear toy y = X w* + s* with a sparse corruption s*: left, estimation error ‖w - "
            "w*‖ of least squares, of gradient descent on the over-parameterized model from a "
            "small initialization (SOP-GD) and of least absolute deviations, its "
            "small-initialization limit (median and 10-90% of instances); right, precision and "
            "recall of SOP-GD's recovered corruption support."
        ),
    }
    Config = LabelNoiseConfig
    PRESETS = {"quick": QUICK, "paper": PAPER}

    def plan(self, cfg: LabelNoiseConfig) -> list[PlannedRun]:
        from overparam.train.sop import SparseOverparam

        def run(arm: str, noise: float, sop: bool) -> PlannedRun:
            data = cfg.data_config(label_noise=noise) if noise else cfg.data_config()
            extra = (SparseOverparam(lr_u=cfg.lr_u, lr_v=cfg.lr_v, init_std=cfg.init_std),) \
                if sop else ()
            return PlannedRun(cfg.train_config(
                cfg.model, data=data, optim=cfg.optim_config(weight_decay=cfg.weight_decay),
                eval_every=cfg.eval_every, interventions=extra), cfg.seed_ids,
                (("arm", arm), ("noise", noise)))

        out = [run("clean", 0.0, False)]
        for r in cfg.noise_levels:
            out += [run("ce", r, False), run("sop", r, True)]
        return out

    # -- measurements (computed once, then read from the store) ---------------------------------
    def measure(self, cfg: LabelNoiseConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        for p in plan:
            if p.tag("arm") == "sop":
                self._separation(cfg, ctx, p)
        self._toy(cfg, ctx)

    def _separation(self, cfg: LabelNoiseConfig, ctx: StudyContext, p: PlannedRun
                    ) -> list[dict[str, Any]]:
        """Per seed: AUROC of ``‖s_i‖`` (and of ``u_i^2``) for noisy vs clean training
        samples, precision and recall at ``threshold``, histograms of ``‖s_i‖``."""
        from overparam.config import run_id
        from overparam.weights import WeightStore

        spec = {"probe": "sop_separation", "threshold": cfg.threshold, "edges": HIST_EDGES}

        def compute(seed: int) -> dict[str, Any]:
            art = WeightStore(ctx.weights_dir).load(run_id(p.config, seed), "sop")
            noisy = ctx.data(p.config.data).info["noisy_mask"].cpu().numpy().astype(bool)
            s = art["s_norm"].double().cpu().numpy()
            u2 = np.clip(art["u"].double().cpu().numpy()[:, 0] ** 2, 0.0, 1.0)
            y = ctx.data(p.config.data).y_train.cpu().numpy()
            v2 = np.clip(art["v"].double().cpu().numpy() ** 2, 0.0, 1.0)
            v2[np.arange(y.size), y] = 0.0  # s_v lives off the label
            prec, rec = precision_recall(s, noisy, cfg.threshold)
            clipped = np.clip(s, 0.0, HIST_EDGES[-1])
            return {"auroc": auroc(s, noisy), "auroc_u2": auroc(u2, noisy), "precision": prec,
                    "recall": rec, "flagged": int((s > cfg.threshold).sum()),
                    "n_noisy": int(noisy.sum()), "n": int(noisy.size),
                    "frac_u_active": float(np.mean(u2 > 0.5)),
                    "frac_v_active": float(np.mean(v2.max(1) > 0.5)),
                    "hist_noisy": np.histogram(clipped[noisy], HIST_EDGES)[0].tolist(),
                    "hist_clean": np.histogram(clipped[~noisy], HIST_EDGES)[0].tolist()}

        return [ctx.probe(p.config, s, spec, lambda s=s: compute(s)) for s in p.seeds]

    def _toy(self, cfg: LabelNoiseConfig, ctx: StudyContext) -> dict[str, list]:
        """The linear toy over all fractions and instances (numpy float64), computed once."""
        from overparam.theory.noisy_regression import run_grid

        args = {"n": cfg.toy_n, "d": cfg.toy_d, "fractions": list(cfg.toy_fractions),
                "trials": cfg.toy_trials, "scale": cfg.toy_scale, "alpha": cfg.toy_alpha,
                "steps": cfg.toy_steps, "threshold": cfg.toy_threshold}
        return ctx.computed(self.name, {"what": "noisy_regression", **args},
                            lambda: run_grid(**{**args, "fractions": tuple(cfg.toy_fractions)}))

    def _arm(self, ctx: StudyContext, p: PlannedRun) -> ArmResult:
        res = ctx.results(p)
        arm, noise = p.tag("arm"), float(p.tag("noise"))
        key = "sop_fit_acc" if arm == "sop" else "train_acc"
        label = {"clean": "clean labels (CE)", "ce": f"CE, noise {_pct(noise)}",
                 "sop": f"SOP, noise {_pct(noise)} (f + s)"}[arm]
        peaks = [peak_decay(r["history"]) for r in res]
        return ArmResult(f"{arm}_{noise:g}", label, noise, [r["result"][key] for r in res],
                         [r["result"]["test_acc"] for r in res], [x[0] for x in peaks],
                         [x[1] for x in peaks], [x[2] for x in peaks],
                         [r["history"] for r in res])

    # -- analysis: load, statistics, tables, figures, verdicts ----------------------------------
    def analyze(self, cfg: LabelNoiseConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        arms = {(p.tag("arm"), float(p.tag("noise"))): self._arm(ctx, p) for p in plan}
        seps = {float(p.tag("noise")): self._separation(cfg, ctx, p) for p in plan
                if p.tag("arm") == "sop"}
        toy = self._toy(cfg, ctx)
        clean = arms[("clean", 0.0)]
        ds = ctx.data(plan[0].config.data)
        classes = ds.num_classes

        rows = []
        for a in arms.values():
            rows.append({"arm": a.label, "wrong labels": a.noise,
                         "target acc (%)": summarize(a.train).fmt(100),
                         "peak test acc (%)": summarize(a.peak).fmt(100),
                         "peak epoch": float(np.mean(a.peak_epoch)),
                         "final test acc (%)": summarize(a.test).fmt(100),
                         "peak - final (pp)": summarize(a.decay).fmt(100)})
        rep.tables.append(Table(
            f"Label noise on {cfg.data}: {cfg.model}, {cfg.epochs} epochs, {cfg.seeds} seeds "
            f"(target acc: training accuracy on the arm's own labels; SOP: of f + s)",
            ["arm", "wrong labels", "target acc (%)", "peak test acc (%)", "peak epoch",
             "final test acc (%)", "peak - final (pp)"], rows))
        rep.tables.append(Table(
            f"Noisy-label detection by ‖s_i‖ (SOP), threshold {cfg.threshold:g}",
            ["noise", "AUROC ‖s_i‖", "AUROC u_i^2", "precision (%)", "recall (%)",
             "flagged / noisy"],
            [{"noise": r, "AUROC ‖s_i‖": summarize([s["auroc"] for s in sep]).fmt(1, 3),
              "AUROC u_i^2": summarize([s["auroc_u2"] for s in sep]).fmt(1, 3),
              "precision (%)": summarize([s["precision"] for s in sep]).fmt(100),
              "recall (%)": summarize([s["recall"] for s in sep]).fmt(100),
              "flagged / noisy": f"{np.mean([s['flagged'] for s in sep]):.0f} / "
                                 f"{sep[0]['n_noisy']}"} for r, sep in seps.items()]))
        rep.tables.append(Table(
            f"Linear toy y = X w* + s*: n={cfg.toy_n}, d={cfg.toy_d}, corruptions +-"
            f"{cfg.toy_scale:g} x (1 + U(0,1)), {cfg.toy_trials} instances, GD from "
            f"alpha={cfg.toy_alpha:g} for {cfg.toy_steps} steps",
            ["corrupted", "‖w_LS - w*‖", "‖w_SOP - w*‖", "‖w_LAD - w*‖",
             "‖w_SOP - w_LAD‖", "SOP precision", "SOP recall", "LAD precision",
             "LAD recall", "SOP final loss (max)"],
            [{"corrupted": f, "‖w_LS - w*‖": summarize(toy["err_ls"][i]).fmt(1, 3),
              "‖w_SOP - w*‖": f"{np.mean(toy['err_sop'][i]):.3g}",
              "‖w_LAD - w*‖": f"{np.mean(toy['err_lad'][i]):.3g}",
              "‖w_SOP - w_LAD‖": f"{np.mean(toy['gap_lad'][i]):.3g}",
              "SOP precision": float(np.mean(toy["prec_sop"][i])),
              "SOP recall": float(np.mean(toy["rec_sop"][i])),
              "LAD precision": float(np.mean(toy["prec_lad"][i])),
              "LAD recall": float(np.mean(toy["rec_lad"][i])),
              "SOP final loss (max)": f"{max(toy['loss_sop'][i]):.2g}"}
             for i, f in enumerate(cfg.toy_fractions)]))

        for r in cfg.noise_levels:
            ce, sop = arms[("ce", r)], arms[("sop", r)]
            rep.verdicts += [memorization_verdict(ce, clean, cfg.fit_acc),
                             sop_clean_verdict(sop, clean, cfg.margin, cfg.fit_acc),
                             sop_ce_verdict(sop, ce, cfg.fit_acc),
                             detection_verdict(sop, seps[r], cfg.threshold, cfg.fit_acc)]
        rep.verdicts += toy_verdicts(cfg, toy)

        for r in cfg.noise_levels:
            tag = round(100 * r)
            rep.facts.update({
                f"ln_ce_decay_r{tag}": float(np.mean(arms[("ce", r)].decay)),
                f"ln_sop_minus_clean_r{tag}": float(np.mean(arms[("sop", r)].test)
                                                    - np.mean(clean.test)),
                f"ln_sop_minus_ce_r{tag}": float(np.mean(arms[("sop", r)].test)
                                                 - np.mean(arms[("ce", r)].test)),
                f"ln_auroc_r{tag}": float(np.mean([s["auroc"] for s in seps[r]]))})
        rep.notes.append(
            "Label noise: ours moves exactly round(r n) labels to a different class (always "
            "wrong); the authors' symmetric noise redraws a label uniformly over all C classes, "
            f"so our r = {', '.join(f'{r:g}' for r in cfg.noise_levels)} are their "
            + ", ".join(f"{r * classes / (classes - 1):.2f}" for r in cfg.noise_levels) + ".")
        rep.notes.append(
            "Targets: CE's training accuracy is measured on the noisy labels (memorization); "
            "SOP's is that of argmax(softmax(f) + s), its model of the noisy labels. Peak - final "
            "is non-negative by construction (a maximum over the evaluated epochs), so claim (a) "
            "compares it with the clean arm's, which shares that selection effect.")
        rep.notes.append(
            f"Linear toy: LAD (min ‖y - X w‖_1, a linear program) is the alpha -> 0 limit of "
            f"gradient descent on (w, u, v); at alpha={cfg.toy_alpha:g} GD sits "
            f"{np.mean(toy['gap_lad'][-1]):.2g} (mean ‖w_SOP - w_LAD‖) from it at the largest "
            f"fraction, a distance that shrinks as alpha decreases (tests/theory).")
        gaps = {r: (float(np.mean(arms[("sop", r)].test) - np.mean(arms[("ce", r)].test)),
                    float(np.mean(clean.test) - np.mean(arms[("ce", r)].test)))
                for r in cfg.noise_levels}
        rep.notes.append(
            "Share of the test accuracy lost to noise that SOP wins back, (SOP - CE) / (clean - "
            "CE) of the final means: " + ", ".join(
                f"{_pct(r)}: {100 * a:.1f} of {100 * b:.1f} pp" for r, (a, b) in gaps.items())
            + f". The clean model itself reaches {100 * np.mean(clean.test):.1f}% on the test "
            "set: on the scale of this network even clean training samples are hard, and a "
            "hard clean sample can be absorbed by s like a wrong one (the precision column).")
        act = {r: (np.mean([s["frac_u_active"] for s in sep]),
                   np.mean([s["frac_v_active"] for s in sep])) for r, sep in seps.items()}
        rep.notes.append(
            "Which half of s moved: fraction of training samples with u_i^2 > 0.5 / with some "
            "v_ic^2 > 0.5 off the label at the end: " + ", ".join(
                f"{_pct(r)}: {a:.3f} / {b:.3f}" for r, (a, b) in act.items())
            + ". v receives only the squared-error gradient, u also the cross-entropy's; a "
            "sample with u_i^2 at its clamp and v still near 0 has ‖s_i‖ about 1, with both "
            "halves grown about sqrt(2) (the histogram's modes).")
        rep.notes.append(
            "Protocol differences from the paper: MNIST-1D and an MLP (quick), no data "
            "augmentation, plain SOP (no consistency or class-balance terms of SOP+), our noise "
            "always wrong; the paper preset replaces PreAct ResNet-18 by cnn_c96.")
        self._figures(cfg, ctx, rep, arms, seps, toy)
        return rep

    def _figures(self, cfg: LabelNoiseConfig, ctx: StudyContext, rep: StudyReport,
                 arms: dict[tuple[str, float], ArmResult], seps: dict[float, list],
                 toy: dict[str, list]) -> None:
        from overparam.report.figures import band, figure, save

        out = ctx.figure_dir(self.name)
        levels = list(cfg.noise_levels)
        colors = {"clean": "0.4", "ce": "tab:red", "sop": "tab:blue"}
        fig, axes = figure(4.2 * len(levels), 3.8, ncols=len(levels))
        axes = list(np.atleast_1d(axes))
        for ax, r in zip(axes, levels):
            for key, noise in (("clean", 0.0), ("ce", r), ("sop", r)):
                a = arms[(key, noise)]
                curves = [curve(h) for h in a.history]
                n = min(len(c[1]) for c in curves)
                acc = 100 * np.array([c[1][:n] for c in curves])
                sums = [summarize(acc[:, j]) for j in range(n)]
                band(ax, curves[0][0][:n], [s.mean for s in sums], [s.ci_low for s in sums],
                     [s.ci_high for s in sums], a.label, color=colors[key], marker="")
            ax.set_xlabel("epoch")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(f"{_pct(r)} wrong labels ({cfg.seeds}-seed mean, 95% CI)")
            ax.legend(fontsize=7)
        rep.figures.append(save(fig, out, "test_accuracy_curves"))

        fig, axes = figure(4.2 * len(levels), 3.6, ncols=len(levels))
        axes = list(np.atleast_1d(axes))
        edges = np.asarray(HIST_EDGES)
        for ax, r in zip(axes, levels):
            for key, color, name in (("hist_clean", "tab:green", "clean labels"),
                                     ("hist_noisy", "tab:red", "noisy labels")):
                counts = np.sum([s[key] for s in seps[r]], axis=0).astype(float)
                dens = counts / max(counts.sum(), 1.0) / np.diff(edges)
                ax.stairs(dens, edges, color=color, label=name, lw=1.4)
            ax.axvline(cfg.threshold, color="k", ls="--", lw=0.8,
                       label=f"threshold {cfg.threshold:g}")
            ax.set_yscale("log")
            ax.set_xlabel("‖s_i‖ at the end of training (last bin: >= 1.45)")
            ax.set_ylabel("density (all seeds)")
            ax.set_title(f"SOP, {_pct(r)} wrong labels")
            ax.legend(fontsize=7)
        rep.figures.append(save(fig, out, "noise_norm_histogram"))

        fig, (ax_e, ax_s) = figure(10, 3.8, ncols=2)
        fr = [100 * f for f in cfg.toy_fractions]
        for key, name, color in (("err_ls", "least squares", "tab:red"),
                                 ("err_sop", f"SOP-GD (alpha={cfg.toy_alpha:g})", "tab:blue"),
                                 ("err_lad", "LAD (alpha -> 0 limit)", "0.4")):
            vals = [np.maximum(np.asarray(v), 1e-16) for v in toy[key]]
            lo = [float(np.quantile(v, 0.1)) for v in vals]
            hi = [float(np.quantile(v, 0.9)) for v in vals]
            band(ax_e, fr, [float(np.median(v)) for v in vals], lo, hi, name, color=color)
        ax_e.set_yscale("log")
        ax_e.set_xlabel("corrupted responses (%)")
        ax_e.set_ylabel("‖w - w*‖ (median, 10-90% of instances)")
        ax_e.set_title(f"Linear toy: estimation error (n={cfg.toy_n}, d={cfg.toy_d})")
        ax_e.legend(fontsize=7)
        for key, name, style in (("prec_sop", "SOP-GD precision", "-"),
                                 ("rec_sop", "SOP-GD recall", "--")):
            ax_s.plot(fr, [np.mean(v) for v in toy[key]], style, marker="o", label=name)
        ax_s.set_ylim(0, 1.05)
        ax_s.set_xlabel("corrupted responses (%)")
        ax_s.set_ylabel(f"support recovery (abs(s_i) > {cfg.toy_threshold:g}), mean")
        ax_s.set_title("Linear toy: support of the corruption")
        ax_s.legend(fontsize=7)
        rep.figures.append(save(fig, out, "toy_recovery"))
        rep.captions["toy_recovery"] = (
            "Linear toy: estimation error of least squares, of gradient descent on the "
            "over-parameterized model and of LAD, and support recovery, against the fraction "
            "of corrupted responses.")


__all__ = ["LabelNoise", "LabelNoiseConfig", "auroc", "peak_decay", "precision_recall"]
