"""Architecture as inductive bias: a 1-D CNN against an MLP of matched size, on real and on
spatially shuffled inputs.

Seed 002 ("Overparameterization theory"): "a fully connected network with 1 million parameters
might overfit, but a convolutional network with the same capacity often generalizes well because
the convolutional structure (local connectivity, translation equivariance) is well-matched to
the image domain". Greydanus & Kobak 2020 ("Scaling down deep learning with MNIST-1D",
arXiv:2011.14439) measure it on MNIST-1D: test accuracy 68% for an MLP, 94% for a CNN; with
the 40 input positions shuffled by one fixed permutation (Zhang et al. 2017, arXiv:1611.03530)
the MLP keeps 68% and the CNN falls to 56%.

Arms, on real inputs and on shuffled pixels (``DataConfig.inputs = "shuffled_pixels"``, one
permutation drawn from the data seed, applied to training and test inputs): the authors' CNN
(``cnn1d_c25``: three ReLU convolutions of 25 channels, kernels 5, 3, 3, stride 2, padding 1,
then a linear readout; 5,210 parameters; :mod:`overparam.models.cnn1d`), an MLP with two hidden
layers whose width is chosen so that its parameter count is the closest to the CNN's (51:
5,263, +1.0%), and the authors' MLP (two hidden layers of 100, 15,210 parameters, 2.9x the CNN)
as a reference. The authors' code adds a skip connection around the MLP's second hidden layer
(``h + relu(W2 h)``); ours is the plain MLP.

Claims: on real inputs the CNN's test accuracy is above the matched MLP's (Welch); its
advantage shrinks on shuffled inputs (difference in differences ``(CNN - MLP)_real -
(CNN - MLP)_shuffled`` > 0, a Welch-Satterthwaite t test of the contrast of four independent
means, with its 95% interval); on shuffled inputs the CNN falls below the MLP (Welch); and the
MLP is unaffected by the shuffle (TOST within ``mlp_margin``; exact in distribution, since a
fixed permutation of the inputs is absorbed by the first layer, whose i.i.d. initialization is
permutation invariant).

Training targets: every arm must reach ``target_acc`` training accuracy, except the CNN on
shuffled inputs, whose comparison is at the authors' fixed budget: a CNN with a mismatched prior
need not interpolate shuffled inputs within 6,000 steps (it does not: part of what the prior
does), so that arm carries the protocol's budget as its target, and its training accuracy and
generalization gap are reported beside its test accuracy. The parameter counts must match
within ``match_tolerance`` (a control of every CNN-MLP comparison).

Quick preset = the authors' protocol (their code's ``get_model_args``): the 4,000 / 1,000
MNIST-1D split, Adam at learning rate 0.01 (constant), batch 100, 6,000 steps (150 epochs; a
later notebook of theirs uses 8,000), no weight decay; 4 seeds. About two CPU minutes, the CNN
arms most of it (vmap over the members' convolutions). The paper preset keeps the protocol
with 10 seeds (small enough for a CPU; a GPU shortens it).
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
from overparam.studies.verdicts import Arm, acc_arm, budget_arm, mean_ci, tost_test, welch_test

# inputs [L] of the 1-D data sets the CNN reads as one channel
INPUT_SHAPES = {"mnist1d": (40,), "digits": (64,)}
INPUTS = ("real", "shuffled_pixels")


@dataclass(frozen=True)
class InductiveBiasConfig(Training):
    epochs: int = 150  # 6,000 steps of batch 100 on 4,000 samples: the authors' total_steps
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 0.01
    lr_scaling: str = "none"
    schedule: str = "constant"
    seeds: int = 4
    cnn_channels: int = 25
    mlp_depth: int = 3  # linear layers: two hidden
    mlp_width: int = 0  # 0: the width whose parameter count is the closest to the CNN's
    reference_width: int = 100  # the authors' MLP; 0: none
    match_tolerance: float = 0.05  # parameter counts within 5%
    target_acc: float = 0.99  # training target of the real-input arms
    mlp_margin: float = 0.03  # the MLP on shuffled vs real inputs: within +-3 pp (TOST)

    def check(self) -> None:
        super().check()
        if self.data not in INPUT_SHAPES:
            raise ConfigError("data", self.data, "a data set of 1-D inputs: "
                              + ", ".join(INPUT_SHAPES))
        for name in ("cnn_channels", "mlp_depth"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ConfigError(name, v, "a positive integer")
        if self.mlp_depth < 2:
            raise ConfigError("mlp_depth", self.mlp_depth, "at least 2 (one hidden layer)")
        for name in ("mlp_width", "reference_width"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 0):
                raise ConfigError(name, v, "0 or a positive integer")
        if not 0.0 < self.match_tolerance < 1.0:
            raise ConfigError("match_tolerance", self.match_tolerance, "a fraction in (0, 1)")
        if not 0.0 < self.target_acc <= 1.0:
            raise ConfigError("target_acc", self.target_acc, "an accuracy in (0, 1]")
        if not 0.0 < self.mlp_margin < 1.0:
            raise ConfigError("mlp_margin", self.mlp_margin, "a margin in (0, 1)")


QUICK = InductiveBiasConfig()
PAPER = InductiveBiasConfig(seeds=10)


def n_params(model: str, input_shape: tuple[int, ...], classes: int = 10) -> int:
    """Parameter count of ``model`` (built on the meta device: nothing allocated)."""
    from overparam.models import build, count_params

    return count_params(build(model, input_shape, classes, device="meta"))


def matched_width(target: int, depth: int, input_shape: tuple[int, ...], classes: int = 10
                  ) -> int:
    """The MLP width whose parameter count is the closest to ``target`` (counts grow with the
    width: bisection for the first width at or above it, then the nearer of it and the one
    below)."""
    lo, hi = 1, 1
    while n_params(f"mlp_w{hi}_d{depth}", input_shape, classes) < target:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if n_params(f"mlp_w{mid}_d{depth}", input_shape, classes) < target:
            lo = mid + 1
        else:
            hi = mid
    if lo > 1 and abs(n_params(f"mlp_w{lo - 1}_d{depth}", input_shape, classes) - target) <= abs(
            n_params(f"mlp_w{lo}_d{depth}", input_shape, classes) - target):
        return lo - 1
    return lo


def models(cfg: InductiveBiasConfig) -> list[tuple[str, str, int]]:
    """``(arm, model name, parameters)``: the CNN, the matched MLP, the reference MLP."""
    shape = INPUT_SHAPES[cfg.data]
    cnn = f"cnn1d_c{cfg.cnn_channels}"
    n_cnn = n_params(cnn, shape)
    width = cfg.mlp_width or matched_width(n_cnn, cfg.mlp_depth, shape)
    mlp = f"mlp_w{width}_d{cfg.mlp_depth}"
    out = [("CNN", cnn, n_cnn), ("MLP (matched)", mlp, n_params(mlp, shape))]
    if cfg.reference_width:
        ref = f"mlp_w{cfg.reference_width}_d3"
        out.append(("MLP (authors', 2x100)" if cfg.reference_width == 100 else
                    f"MLP (reference, 2x{cfg.reference_width})", ref, n_params(ref, shape)))
    return out


# -- the contrast of four means -----------------------------------------------------------------
def contrast(groups: list[list[float]], coefs: list[float], level: float = 0.95
             ) -> dict[str, Any]:
    """Welch-Satterthwaite t test of the contrast ``sum_i c_i mean_i`` of independent groups:
    ``se^2 = sum_i c_i^2 s_i^2 / n_i``, ``df = se^4 / sum_i (c_i^2 s_i^2 / n_i)^2 / (n_i - 1)``,
    two-sided p, and the ``level`` interval ``est +- t_{df} se`` (p None when every group is
    constant). With two groups and c = (1, -1) this is Welch's test."""
    from scipy import stats as sps

    arrs = [np.asarray(g, float) for g in groups]
    est = float(sum(c * a.mean() for c, a in zip(coefs, arrs)))
    v = [c * c * a.var(ddof=1) / a.size for c, a in zip(coefs, arrs)]
    se2 = float(sum(v))
    if se2 == 0:
        return {"est": est, "se": 0.0, "df": math.nan, "t": math.nan, "p": None,
                "lo": est, "hi": est}
    df = se2 ** 2 / sum(vi ** 2 / (a.size - 1) for vi, a in zip(v, arrs) if vi > 0)
    se = math.sqrt(se2)
    t = est / se
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return {"est": est, "se": se, "df": float(df), "t": t,
            "p": float(2 * sps.t.sf(abs(t), df)), "lo": est - half, "hi": est + half}


# -- verdicts ------------------------------------------------------------------------------------
@dataclass
class ArmResult:
    name: str
    model: str
    params: int
    inputs: str
    train: list[float]
    test: list[float]
    history: list[list[dict[str, float]]]

    @property
    def label(self) -> str:
        return f"{self.name}, {'shuffled' if self.inputs != 'real' else 'real'}"


def _fit(a: ArmResult, target: float, budget: str) -> Arm:
    """The training target; the CNN on shuffled inputs (the mismatched prior) has the authors'
    budget instead, with its training accuracy reported."""
    if a.inputs == "real" or a.name != "CNN":
        return acc_arm(a.label, a.train, target)
    return budget_arm(a.label, f"{budget}; train acc {mean_ci(a.train)}%")


def match_arm(cnn: ArmResult, mlp: ArmResult, tol: float) -> Arm:
    rel = mlp.params / cnn.params - 1
    return Arm("parameter counts", f"within {100 * tol:g}%", abs(rel) <= tol,
               f"CNN {cnn.params:,} vs MLP {mlp.params:,} ({100 * rel:+.1f}%)")


def cnn_beats_mlp_verdict(cnn: ArmResult, mlp: ArmResult, tol: float, target: float) -> Verdict:
    w = welch_test(cnn.test, mlp.test)
    return Verdict(
        "on real inputs the CNN generalizes better than an MLP of matched size",
        f"test acc CNN {mean_ci(cnn.test)}% vs MLP {mean_ci(mlp.test)}%: {w.text}",
        criteria=w.diff > 0, p=w.p, test="Welch", claim_id="ib_cnn_beats_mlp",
        blueprint="CNN 94% vs MLP 68% on MNIST-1D (their MLP has 2.9x the CNN's parameters); "
                  "seed 002: the CNN generalizes where an MLP of the same capacity overfits",
        ours=w.ours, effect=w.effect,
        arms=(acc_arm(cnn.label, cnn.train, target), acc_arm(mlp.label, mlp.train, target),
              match_arm(cnn, mlp, tol)))


def advantage_shrinks_verdict(arms: dict[tuple[str, str], ArmResult], tol: float,
                              target: float, budget: str) -> tuple[Verdict, dict[str, Any]]:
    """Difference in differences of test accuracy, (CNN - MLP) real minus (CNN - MLP)
    shuffled, > 0."""
    order = [("CNN", "real"), ("MLP (matched)", "real"), ("CNN", "shuffled_pixels"),
             ("MLP (matched)", "shuffled_pixels")]
    a = [arms[k] for k in order]
    c = contrast([x.test for x in a], [1, -1, -1, 1])
    real = float(np.mean(a[0].test) - np.mean(a[1].test))
    shuf = float(np.mean(a[2].test) - np.mean(a[3].test))
    p_text = "no p (all arms constant)" if c["p"] is None else f"p={c['p']:.3g}"
    return Verdict(
        "the CNN's advantage shrinks when the input positions are shuffled",
        f"CNN - MLP: {100 * real:+.2f} pp real, {100 * shuf:+.2f} pp shuffled; difference in "
        f"differences {100 * c['est']:+.2f} pp [95% CI {100 * c['lo']:+.2f}, "
        f"{100 * c['hi']:+.2f}], t={c['t']:.2f}, df={c['df']:.1f}, {p_text}",
        criteria=c["est"] > 0, p=c["p"], test="Welch-Satterthwaite contrast of 4 means",
        claim_id="ib_advantage_shrinks",
        blueprint="CNN - MLP: +26 pp real (94 vs 68%), -12 pp shuffled (56 vs 68%): "
                  "difference in differences +38 pp",
        ours=f"{100 * c['est']:+.3g} [{100 * c['lo']:+.3g}, {100 * c['hi']:+.3g}] pp",
        arms=(*(_fit(x, target, budget) for x in a), match_arm(a[0], a[1], tol))), \
        {"real": real, "shuffled": shuf, **c}


def cnn_below_mlp_shuffled_verdict(cnn: ArmResult, mlp: ArmResult, tol: float, target: float,
                                   budget: str) -> Verdict:
    w = welch_test(cnn.test, mlp.test)
    return Verdict(
        "on shuffled inputs the CNN falls below the MLP of matched size",
        f"test acc CNN {mean_ci(cnn.test)}% vs MLP {mean_ci(mlp.test)}%: {w.text}",
        criteria=w.diff < 0, p=w.p, test="Welch", claim_id="ib_cnn_below_mlp_shuffled",
        blueprint="shuffled: CNN 56% vs MLP 68%", ours=w.ours, effect=w.effect,
        arms=(_fit(cnn, target, budget), _fit(mlp, target, budget), match_arm(cnn, mlp, tol)))


def mlp_invariant_verdict(real: ArmResult, shuf: ArmResult, margin: float, target: float
                          ) -> Verdict:
    t = tost_test(shuf.test, real.test, margin)
    return Verdict(
        f"the MLP is unaffected by shuffling (test accuracy within ±{100 * margin:g} pp)",
        f"MLP test acc shuffled {mean_ci(shuf.test)}% vs real {mean_ci(real.test)}%: {t.text}",
        p=t.p, test=f"TOST ±{100 * margin:g} pp", equivalence=True, outside=t.outside,
        claim_id="ib_mlp_invariant", blueprint="MLP 68% on real and on shuffled inputs; exact "
        "in distribution (a fixed permutation is absorbed by the i.i.d. first layer)",
        ours=t.ours, effect=t.effect,
        arms=(acc_arm(real.label, real.train, target), acc_arm(shuf.label, shuf.train, target)))


class InductiveBias(Study):
    name = "inductive_bias"
    CAPTIONS = {
        "test_accuracy": (
            "MNIST-1D: test accuracy (bars, 95% CI over seeds) and training accuracy (dashes) "
            "of the CNN and the parameter-matched MLP on real and on pixel-shuffled inputs; "
            "stars: the values Greydanus & Kobak (2020) report."
        ),
        "test_accuracy_vs_epoch": (
            "Test accuracy along training for each model and input variant (mean over seeds, "
            "95% CI bands)."
        ),
    }
    Config = InductiveBiasConfig
    PRESETS = {"quick": QUICK, "paper": PAPER}

    def plan(self, cfg: InductiveBiasConfig) -> list[PlannedRun]:
        return [PlannedRun(cfg.train_config(model, data=cfg.data_config(inputs=inputs)),
                           cfg.seed_ids, (("arm", arm), ("inputs", inputs), ("params", n)))
                for inputs in INPUTS for arm, model, n in models(cfg)]

    def analyze(self, cfg: InductiveBiasConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        arms: dict[tuple[str, str], ArmResult] = {}
        for p in self.plan(cfg):
            res = ctx.results(p)
            arms[(p.tag("arm"), p.tag("inputs"))] = ArmResult(
                p.tag("arm"), p.config.model.name, p.tag("params"), p.tag("inputs"),
                [r["result"]["train_acc"] for r in res], [r["result"]["test_acc"] for r in res],
                [r["history"] for r in res])
        n_train = ctx.data(self.plan(cfg)[0].config.data).n_train
        steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
        budget = f"the authors' budget ({steps:,} {cfg.optimizer} steps)"
        rows = []
        for a in arms.values():
            gap = [tr - te for tr, te in zip(a.train, a.test)]
            rows.append({"model": a.name, "name": a.model, "parameters": a.params,
                         "inputs": "shuffled pixels" if a.inputs != "real" else "real",
                         "train acc (%)": summarize(a.train).fmt(100),
                         "test acc (%)": summarize(a.test).fmt(100),
                         "gen gap (pp)": summarize(gap).fmt(100)})
        rep.tables.append(Table(
            f"MLP vs 1-D CNN on {cfg.data} ({n_train:,} training samples), real and shuffled "
            f"inputs, {cfg.seeds} seeds", ["model", "name", "parameters", "inputs",
                                           "train acc (%)", "test acc (%)", "gen gap (pp)"],
            rows))
        cnn_r, mlp_r = arms[("CNN", "real")], arms[("MLP (matched)", "real")]
        cnn_s, mlp_s = arms[("CNN", "shuffled_pixels")], arms[("MLP (matched)", "shuffled_pixels")]
        tol, target = cfg.match_tolerance, cfg.target_acc
        rep.verdicts.append(cnn_beats_mlp_verdict(cnn_r, mlp_r, tol, target))
        did, facts = advantage_shrinks_verdict(arms, tol, target, budget)
        rep.verdicts.append(did)
        rep.verdicts.append(cnn_below_mlp_shuffled_verdict(cnn_s, mlp_s, tol, target, budget))
        rep.verdicts.append(mlp_invariant_verdict(mlp_r, mlp_s, cfg.mlp_margin, target))
        rep.facts.update({"ib_cnn_real": float(np.mean(cnn_r.test)),
                          "ib_mlp_real": float(np.mean(mlp_r.test)),
                          "ib_cnn_shuffled": float(np.mean(cnn_s.test)),
                          "ib_mlp_shuffled": float(np.mean(mlp_s.test)),
                          "ib_did": facts["est"], "ib_did_lo": facts["lo"],
                          "ib_did_hi": facts["hi"]})
        tr_r, tr_s = float(np.mean(cnn_r.train)), float(np.mean(cnn_s.train))
        te_r, te_s = float(np.mean(cnn_r.test)), float(np.mean(cnn_s.test))
        rep.notes.append(
            f"Parameters: CNN {cnn_r.params:,} ({cnn_r.model}), matched MLP {mlp_r.params:,} "
            f"({mlp_r.model}, {100 * (mlp_r.params / cnn_r.params - 1):+.1f}%)"
            + "".join(f", {a.name} {a.params:,}" for (n, i), a in arms.items()
                      if i == "real" and n not in ("CNN", "MLP (matched)")) + ". "
            f"On shuffled inputs the CNN reaches {100 * tr_s:.1f}% training accuracy (lowest "
            f"seed {100 * min(cnn_s.train):.1f}%) within {budget}. Its test accuracy drops by "
            f"{100 * (te_r - te_s):.1f} pp: {100 * (tr_r - tr_s):.1f} pp of training accuracy "
            f"lost and {100 * ((tr_s - te_s) - (tr_r - te_r)):.1f} pp of wider generalization "
            f"gap ({100 * (tr_r - te_r):.1f} -> {100 * (tr_s - te_s):.1f} pp).")
        if any(n not in ("CNN", "MLP (matched)") for n, _ in arms):
            ref = next(a for (n, i), a in arms.items()
                       if i == "shuffled_pixels" and n not in ("CNN", "MLP (matched)"))
            w = welch_test(cnn_s.test, ref.test)
            rep.notes.append(
                f"Against the larger reference MLP ({ref.model}, {ref.params:,} parameters; "
                f"no claim, for comparison with the authors' table) the CNN on shuffled inputs "
                f"scores {w.text}.")
        self._figures(cfg, ctx, rep, arms)
        return rep

    def _figures(self, cfg: InductiveBiasConfig, ctx: StudyContext, rep: StudyReport,
                 arms: dict[tuple[str, str], ArmResult]) -> None:
        from overparam.report.figures import band, figure, save

        out = ctx.figure_dir(self.name)
        paper = {("CNN", "real"): 94, ("CNN", "shuffled_pixels"): 56}
        if cfg.reference_width == 100:
            paper.update({(n, i): 68 for (n, i) in arms if n.startswith("MLP (authors'")})
        names = list(dict.fromkeys(n for n, _ in arms))
        fig, ax = figure(9, 4)
        width = 0.8 / len(names)
        starred = False
        for j, name in enumerate(names):
            xs, ms, err, tr = [], [], [[], []], []
            for i, inputs in enumerate(INPUTS):
                s = summarize(arms[(name, inputs)].test)
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ms.append(100 * s.mean)
                err[0].append(100 * (s.mean - s.ci_low))
                err[1].append(100 * (s.ci_high - s.mean))
                tr.append(100 * np.mean(arms[(name, inputs)].train))
            ax.bar(xs, ms, width * 0.9, yerr=err, capsize=3,
                   label=f"{name} ({arms[(name, 'real')].params:,} params)")
            ax.plot(xs, tr, "_", ms=14, mew=2, color="k",
                    label="train accuracy" if j == 0 else None)
            for x, inputs in zip(xs, INPUTS):
                if (name, inputs) in paper:
                    ax.plot([x], [paper[(name, inputs)]], "r*", ms=9,
                            label=None if starred else "Greydanus & Kobak 2020")
                    starred = True
        ax.set_xticks(range(len(INPUTS)), ["real inputs", "shuffled pixels"])
        ax.set_ylabel("accuracy (%): test (bars, 95% CI), train (dashes)")
        ax.set_ylim(0, 105)
        ax.set_title(f"{cfg.data}: CNN vs MLP, {cfg.seeds} seeds")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        rep.figures.append(save(fig, out, "test_accuracy"))

        fig, ax = figure(7, 4)
        for (name, _), a in arms.items():
            if name.startswith("MLP (authors'") or name.startswith("MLP (reference"):
                continue
            n = min(len(h) for h in a.history)
            rows = [[h.get("test_acc", math.nan) for h in hist[:n]] for hist in a.history]
            vals = 100 * np.array(rows, dtype=float)
            epochs = [h["epoch"] for h in a.history[0][:n]]
            keep = ~np.isnan(vals).any(0)
            if vals.shape[0] >= 2:
                sums = [summarize(vals[:, i]) for i in np.flatnonzero(keep)]
                band(ax, [epochs[i] for i in np.flatnonzero(keep)], [s.mean for s in sums],
                     [s.ci_low for s in sums], [s.ci_high for s in sums], a.label, marker="")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Test accuracy during training (mean, 95% CI)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "test_accuracy_vs_epoch"))


__all__ = ["InductiveBias", "InductiveBiasConfig", "contrast", "matched_width"]
