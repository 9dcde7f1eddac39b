"""Double descent: model-wise, epoch-wise and sample-wise, plus the exact min-norm reference.

Question: past the interpolation threshold, does test error fall again as the model grows
(Belkin et al. 2019, arXiv:1812.11118; Nakkiran et al. 2020, arXiv:1912.02292)?

Model-wise: MLPs of growing width (and, in the paper preset, the blueprint's CNN of growing
channel count) trained to the same budget. The interpolation threshold is located from the
*training* error alone: the first width whose mean training accuracy reaches 99.9%. Two claims
are tested on the test errors, neither selecting its point on them: a peak at the threshold
(its test error above both ladder neighbours, Welch each, intersection-union) and the
blueprint's H4 (the widest model beats the threshold model). Each model at or past the
threshold must interpolate (its training target); an under-parameterized neighbour has the
protocol's budget as its target. Flatness past the threshold (larger models, smaller
lambda_max, lower error: Spearman) is measured on matched-loss copies of the widths at and past
the threshold (each stopped at training loss ``matched_loss``; curvature near zero
cross-entropy scales with the loss, so fixed-epoch models are not comparable), trained once the
threshold is known.
Epoch-wise: the test error over epochs of the widest model. Sample-wise: a fixed model trained
on growing training sets. Reference: min-norm least squares on isotropic features
(:mod:`overparam.theory.random_features`), whose risk peaks at p = n; it trains nothing and is
cached in the store by its settings.

Quick preset: the MNIST-1D authors' double-descent protocol (Greydanus 2020, arXiv:2011.14439,
its notebook): the 4,000 training samples with 15% of the labels moved to a wrong class, a
2-hidden-layer ReLU MLP, SGD at 0.01 with momentum 0.9, batch 100, a constant rate, 500 epochs;
3 seeds, about 4 minutes on 2 CPU cores. The paper preset keeps the blueprint's protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from overparam.config import TrainConfig
from overparam.models import build, count_params
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import errors, lambda_max, pct, summary_of
from overparam.studies.settings import Training
from overparam.studies.verdicts import Arm, acc_arm, budget_arm, loss_arm, welch_test


@dataclass(frozen=True)
class DoubleDescentConfig(Training):
    epochs: int = 500
    batch_size: int = 100
    lr_scaling: str = "none"
    schedule: str = "constant"
    label_noise: float = 0.15
    depth: int = 3  # linear layers: 3 = two hidden layers
    widths: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
    cnn_data: str = "cifar10"
    cnn_n_train: int = 0  # 0: the whole training set
    cnn_widths: tuple[int, ...] = ()
    cnn_epochs: int = 80
    matched_loss: float = 0.01  # flatness past the threshold is compared at this training loss
    matched_every: int = 40  # steps between checks of the training loss (40: one epoch)
    samplewise_width: int = 64
    samplewise_sizes: tuple[int, ...] = (250, 500, 1000, 2000)
    rf_n: int = 100
    rf_d: int = 400
    rf_sigma: float = 0.5
    rf_trials: int = 100


PRESETS = {
    "quick": DoubleDescentConfig(),
    # The blueprint (sections IV-B/C, V-A, Appendix A-B): MLP widths 8..1024 on a 10,000-sample
    # MNIST subset, CNN channels 4..96 on CIFAR-10, 5 seeds, SGD momentum 0.9, LR 0.01 at batch
    # 128, cosine; no label noise in its tables. Epochs: "60-80 depending on experiment" -- 60 for
    # the MLP, 80 for the CNN (as in its CIFAR-10 optimizer study).
    "paper": DoubleDescentConfig(
        data="mnist", n_train=10000, label_noise=0.0, depth=4, batch_size=128,
        lr_scaling="linear", schedule="cosine",
        widths=(8, 16, 32, 64, 128, 256, 512, 1024), epochs=60, seeds=5,
        cnn_widths=(4, 8, 16, 32, 64, 96), cnn_epochs=80,
        samplewise_width=32, samplewise_sizes=(1000, 2500, 5000, 10000, 20000, 60000),
        rf_trials=200),
}

def random_features_sizes(n: int, d: int) -> list[int]:
    """Model sizes of the min-norm reference: fractions of n around the threshold, and d."""
    return sorted(set([max(1, int(n * r)) for r in
                       (0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0)]
                      + [d]))


def min_norm_verdict(ps: list[int], n: int, risk: list[float], closed: list[float],
                     trials: int) -> Verdict:
    """The simulated risk peaks within 10% of p = n and matches the closed form (10%) away
    from the peak (p <= 0.8 n or p >= 1.25 n)."""
    peak = int(ps[int(np.nanargmax(risk))])
    away = [i for i, p in enumerate(ps) if p <= 0.8 * n or p >= 1.25 * n]
    rel = [abs(risk[i] - closed[i]) / closed[i] for i in away]
    ok = abs(peak - n) <= 0.1 * n and max(rel) <= 0.10
    return Verdict(
        "min-norm least squares: the test risk peaks at p = n and matches the closed form",
        f"simulated peak at p={peak} (n={n}); max |sim - closed form| / closed form away "
        f"from the peak {max(rel):.3f} over {len(away)} sizes ({trials} trials)", criteria=ok,
        claim_id="min_norm_peak", blueprint="the risk diverges at p = n (closed form)",
        ours=f"peak p={peak}, max rel. error {max(rel):.3f}", controls="exact closed form")


INPUT_SHAPES = {"mnist1d": (40,), "digits": (64,), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


INTERPOLATES = 0.999  # mean training accuracy at which a width counts as interpolating


def threshold_index(tr: list[list[float]]) -> int | None:
    """The first width whose mean training error is <= 0.1% (training errors only)."""
    return next((i for i, r in enumerate(tr) if np.mean(r) <= 1 - INTERPOLATES), None)


def _arm(name: str, train_err: list[float], interpolating: bool) -> Arm:
    if interpolating:
        return acc_arm(name, [1 - e for e in train_err], INTERPOLATES)
    return budget_arm(name, f"under-parameterized, train acc {100 * (1 - max(train_err)):.1f}%+")


def peak_verdict(sweep: str, widths: list[int], xs: list[int], tr: list[list[float]],
                 te: list[list[float]]) -> Verdict:
    """A test-error peak at the interpolation threshold: the threshold model's test error above
    both of its ladder neighbours (Welch each; p = the larger). ``tr``, ``te``: per width,
    per-seed training and test errors."""
    claim = f"{sweep.upper()}: test error peaks at the interpolation threshold"
    t = threshold_index(tr)
    if t is None:
        return Verdict(claim, "no width reached 99.9% training accuracy: no threshold",
                       claim_id=f"{sweep}_peak", arms=(acc_arm(
                           f"widest (w={widths[-1]})", [1 - e for e in tr[-1]], INTERPOLATES),))
    if t == 0 or t == len(widths) - 1:
        return Verdict(claim, f"threshold w={widths[t]} has no neighbour on "
                       f"{'the left' if t == 0 else 'the right'}: widen the ladder",
                       claim_id=f"{sweep}_peak")
    left, right = welch_test(te[t], te[t - 1]), welch_test(te[t], te[t + 1])
    ps = [left.p, right.p]
    return Verdict(
        claim, f"threshold w={widths[t]} ({xs[t]:,} params, first mean train accuracy >= "
        f"99.9%), test error {100 * np.mean(te[t]):.2f}%; vs w={widths[t - 1]}: {left.text}; "
        f"vs w={widths[t + 1]}: {right.text}", criteria=left.diff > 0 and right.diff > 0,
        p=None if None in ps else max(ps), test="Welch vs both neighbours (IUT)",
        claim_id=f"{sweep}_peak", blueprint="CNN: error peaks ~72.4% near 152k params",
        ours=f"{left.ours} / {right.ours}",
        arms=(_arm(f"w={widths[t - 1]}", tr[t - 1], False),
              _arm(f"threshold w={widths[t]}", tr[t], True),
              _arm(f"w={widths[t + 1]}", tr[t + 1], True)),
        controls="peak located from training error")


def h4_verdict(sweep: str, widths: list[int], tr: list[list[float]], te: list[list[float]]
               ) -> Verdict:
    """The blueprint's H4: the widest model's test error is below the threshold model's."""
    claim = (f"{sweep.upper()}: beyond the interpolation threshold test error keeps falling "
             "(widest vs threshold model, H4)")
    t = threshold_index(tr)
    if t is None or t == len(widths) - 1:
        return Verdict(claim, "no width past the threshold", claim_id=f"{sweep}_h4",
                       arms=(acc_arm(f"widest (w={widths[-1]})", [1 - e for e in tr[-1]],
                                     INTERPOLATES),))
    w = welch_test(te[-1], te[t])
    return Verdict(claim, f"w={widths[-1]} vs threshold w={widths[t]}: {w.text}",
                   criteria=w.diff < 0, p=w.p, test="Welch", claim_id=f"{sweep}_h4",
                   blueprint="MNIST: 95.4% at the threshold -> 96.9% (+1.5 pp)",
                   ours=f"{w.ours} test error", effect=w.effect,
                   arms=(_arm(f"threshold w={widths[t]}", tr[t], True),
                         _arm(f"widest w={widths[-1]}", tr[-1], True)))


def flatness_verdict(widths: list[int], xs: list[int], te: list[list[float]],
                     lam: list[list[float]], loss: list[list[float]], met: list[list[bool]],
                     target: float) -> tuple[Verdict, dict[str, Any]]:
    """Past the threshold, larger models sit in flatter minima that generalize better:
    Spearman rho(parameters, lambda_max) < 0 and rho(lambda_max, test error) > 0 over the
    matched-loss runs of the widths at and past the threshold (IUT). Each width must reach the
    training-loss ``target``; flagged when the runs' training losses differ by > 2x."""
    from scipy.stats import spearmanr

    p_ = [x for x, ls in zip(xs, lam) for _ in ls]
    l_ = [v for ls in lam for v in ls]
    e_ = [v for es in te for v in es]
    r1, p1 = spearmanr(p_, l_)
    r2, p2 = spearmanr(l_, e_)
    means = [float(np.mean(v)) for v in loss]
    ratio = max(means) / min(means)
    verdict = Verdict(
        "double descent <-> flatness: past the threshold larger models find flatter minima "
        "that generalize better", f"over the {len(l_)} runs from width {widths[0]} on, stopped at "
        f"training loss {target:g}: Spearman rho(parameters, lambda_max)={r1:.2f} (p={p1:.2g}), "
        f"rho(lambda_max, test error)={r2:.2f} (p={p2:.2g}); training losses "
        f"{min(means):.3g}-{max(means):.3g}",
        criteria=bool(r1 < 0 and r2 > 0), p=float(max(p1, p2)), test="Spearman (IUT)",
        claim_id="dd_flatness",
        blueprint="larger models past the threshold both generalize better and admit flatter "
                  "minima (stated, no number)", ours=f"rho={r1:.2f}, {r2:.2f}",
        arms=(*(loss_arm(f"w={w} (matched)", m, ls, target)
                for w, m, ls in zip(widths, met, loss)),
              Arm("training losses of the compared models", "within 2x", ratio <= 2.0,
                  f"{ratio:.1f}x apart")),
        controls="matched training loss")
    return verdict, {"dd_rho_params_lambda": float(r1), "dd_rho_lambda_error": float(r2)}


class DoubleDescent(Study):
    name = "double_descent"
    CAPTIONS = {
        "modelwise_*": (
            "Model-wise double descent: training and test error against the number of "
            "parameters (mean over seeds, 95% CI bands), trained on noisy labels; the dashed "
            "line marks the interpolation threshold, where the training error first reaches "
            "zero (Nakkiran et al. 2020)."
        ),
        "epochwise": (
            "Epoch-wise double descent: training and test error of the widest model along "
            "training (mean over seeds, 95% CI bands), with label noise (Nakkiran et al. 2020)."
        ),
        "samplewise": (
            "Sample-wise non-monotonicity: test error against the number of training samples at "
            "a fixed width (mean over seeds, 95% CI band); more data can hurt near the "
            "interpolation threshold (Nakkiran et al. 2020)."
        ),
        "random_features": (
            "Min-norm least squares on p of d isotropic features with n samples: test risk "
            "against p / n, the closed form of Belkin, Hsu & Xu (2019) and Hastie et al. (2019) "
            "(line) beside simulation (points, mean ± one standard error over trials); the risk "
            "peaks at p = n (dashed)."
        ),
    }
    Config = DoubleDescentConfig
    PRESETS = PRESETS

    def _model(self, cfg: DoubleDescentConfig, width: int) -> str:
        return f"mlp_w{width}" if cfg.depth == 4 else f"mlp_w{width}_d{cfg.depth}"

    def _train(self, cfg: DoubleDescentConfig, model: str, data: str, n_train: int | None,
               epochs: int) -> TrainConfig:
        return cfg.train_config(model, data=cfg.data_config(name=data, n_train=n_train or None,
                                                            label_noise=cfg.label_noise),
                                epochs=epochs)

    def plan(self, cfg: DoubleDescentConfig) -> list[PlannedRun]:
        seeds = cfg.seed_ids
        runs = [PlannedRun(self._train(cfg, self._model(cfg, w), cfg.data, cfg.n_train,
                                       cfg.epochs),
                           seeds, (("sweep", "mlp"), ("width", w))) for w in cfg.widths]
        runs += [PlannedRun(self._train(cfg, f"cnn_c{c}", cfg.cnn_data, cfg.cnn_n_train,
                                        cfg.cnn_epochs), seeds, (("sweep", "cnn"), ("width", c)))
                 for c in cfg.cnn_widths]
        runs += [PlannedRun(self._train(cfg, self._model(cfg, cfg.samplewise_width), cfg.data,
                                        n, cfg.epochs), seeds, (("sweep", "samples"), ("n", n)))
                 for n in cfg.samplewise_sizes if n != cfg.n_train]
        return runs

    def _sharpness(self, ctx: StudyContext, p: PlannedRun, seed: int, data: Any) -> float:
        """Top Hessian eigenvalue (1,000 training samples) of one model-wise run."""
        return lambda_max(ctx, p.config, seed, data)["lambda_max"]

    def matched(self, cfg: DoubleDescentConfig, ctx: StudyContext, plan: list[PlannedRun]
                ) -> list[PlannedRun]:
        """Matched-loss copies of the MLP widths at and past the interpolation threshold, which
        is located from the fixed-budget runs' training errors (never from test errors)."""
        runs = [p for p in plan if p.tag("sweep") == "mlp"]
        t = threshold_index([errors(ctx.results(p), "train_acc") for p in runs])
        return [] if t is None else self.matched_runs(cfg, runs[t:])

    def matched_runs(self, cfg: DoubleDescentConfig, runs: list[PlannedRun]
                     ) -> list[PlannedRun]:
        """Matched-loss copies of the given MLP runs (those at and past the threshold)."""
        from overparam.train.interventions import StopAtLoss

        stop = StopAtLoss(target=cfg.matched_loss, every=cfg.matched_every)
        return [PlannedRun(replace(p.config, interventions=(stop,)), p.seeds,
                           (("sweep", "mlp matched"), ("width", p.tag("width"))))
                for p in runs]

    def run(self, cfg: DoubleDescentConfig, ctx: StudyContext) -> None:
        plan = self.plan(cfg)
        ctx.train_all(plan, f"{self.name}: training")
        matched = self.matched(cfg, ctx, plan)
        ctx.train_all(matched, f"{self.name}: matched-loss arms")
        self.measure(cfg, ctx, plan + matched)

    def measure(self, cfg: DoubleDescentConfig, ctx: StudyContext, plan: list[PlannedRun]
                ) -> None:
        runs = [p for p in plan if p.tag("sweep") in ("mlp", "mlp matched")]
        data = ctx.data(runs[0].config.data)
        with ctx.progress("double_descent: sharpness", len(runs)) as tick:
            for p in runs:
                for s in p.seeds:
                    self._sharpness(ctx, p, s, data)
                tick()
        self._simulation(cfg, ctx)

    def _simulation(self, cfg: DoubleDescentConfig, ctx: StudyContext) -> dict[str, Any]:
        """The min-norm random-features simulation, computed once per setting (store)."""
        from overparam.theory.random_features import simulate

        ps = random_features_sizes(cfg.rf_n, cfg.rf_d)
        spec = {"what": "min_norm_random_features", "ps": ps, "n": cfg.rf_n, "d": cfg.rf_d,
                "sigma": cfg.rf_sigma, "trials": cfg.rf_trials}

        def compute() -> dict[str, Any]:
            res = simulate(ps, n=cfg.rf_n, d=cfg.rf_d, sigma=cfg.rf_sigma, trials=cfg.rf_trials)
            return {"ps": res.ps.tolist(), "mean": res.risk_mean.tolist(),
                    "std": res.risk_std.tolist(), "closed": res.closed_form.tolist()}

        return ctx.computed(self.name, spec, compute)

    def analyze(self, cfg: DoubleDescentConfig, ctx: StudyContext, preset: str) -> StudyReport:
        from overparam.report.figures import band, figure, save

        plan = self.plan(cfg)
        rep = StudyReport(self.name, preset)
        out = ctx.figure_dir(self.name)
        sweeps = [("mlp", cfg.data, INPUT_SHAPES.get(cfg.data, (40,)))]
        if cfg.cnn_widths:
            sweeps.append(("cnn", cfg.cnn_data, INPUT_SHAPES.get(cfg.cnn_data, (3, 32, 32))))
        for sweep, data, shape in sweeps:
            runs = [p for p in plan if p.tag("sweep") == sweep]
            rows, xs, tr, te, lam, loss = [], [], [], [], [], []
            data_obj = ctx.data(runs[0].config.data) if sweep == "mlp" else None
            for p in runs:
                res = ctx.results(p)
                model = build(p.config.model.name, shape, 10, device="meta")
                n_params = count_params(model, include_norm_affine=sweep != "cnn")
                s_tr, s_te = summary_of(res, "train_acc"), summary_of(res, "test_acc")
                rows.append({"width": p.tag("width"), "parameters": n_params,
                             "train acc (%)": pct(s_tr), "test acc (%)": pct(s_te),
                             "test error (%)": f"{100 * (1 - s_te.mean):.2f}"})
                if data_obj is not None:
                    lam.append([self._sharpness(ctx, p, sd, data_obj) for sd in p.seeds])
                    rows[-1]["top Hessian eigenvalue"] = summarize(lam[-1]).fmt(1, 3)
                xs.append(n_params)
                tr.append(errors(res, "train_acc"))
                te.append(errors(res, "test_acc"))
                loss.append([r["result"]["train_loss"] for r in res])
            label = "channels c" if sweep == "cnn" else "width w"
            rep.tables.append(Table(f"Model-wise double descent, {sweep.upper()} on {data} "
                                    f"({label})", ["width", "parameters", "train acc (%)",
                                                   "test acc (%)", "test error (%)",
                                                   "top Hessian eigenvalue"], rows))
            widths = [p.tag("width") for p in runs]
            threshold = threshold_index(tr)
            rep.verdicts.append(peak_verdict(sweep, widths, xs, tr, te))
            rep.verdicts.append(h4_verdict(sweep, widths, tr, te))
            if lam and threshold is not None and len(runs) - threshold >= 2:
                self._flatness(cfg, ctx, rep, self.matched_runs(cfg, runs[threshold:]),
                               xs[threshold:], data_obj)
            fig, ax = figure()
            for name, vals in (("test error", te), ("train error", tr)):
                sums = [summarize(v) for v in vals]
                band(ax, xs, [100 * s.mean for s in sums], [100 * s.ci_low for s in sums],
                     [100 * s.ci_high for s in sums], name)
            if threshold is not None:
                ax.axvline(xs[threshold], color="k", ls="--", lw=1,
                           label=f"interpolation threshold ({xs[threshold]:,} params)")
            ax.set_xscale("log")
            ax.set_xlabel("parameters")
            ax.set_ylabel("error (%)")
            ax.set_title(f"{sweep.upper()} on {data}, label noise {cfg.label_noise:.0%}, "
                         f"{len(runs[0].seeds)} seeds (95% CI)")
            ax.legend(fontsize=8)
            rep.figures.append(save(fig, out, f"modelwise_{sweep}"))
        self._epochwise(cfg, ctx, plan, rep, out)
        self._samplewise(cfg, ctx, plan, rep, out)
        self._random_features(cfg, ctx, rep, out)
        return rep

    def _flatness(self, cfg: DoubleDescentConfig, ctx: StudyContext, rep: StudyReport,
                  matched: list[PlannedRun], xs: list[int], data: Any) -> None:
        """Flatness past the threshold, on the matched-loss arms: table and verdict."""
        rows, te, lam, loss, met = [], [], [], [], []
        for p in matched:
            res = [r["result"] for r in ctx.results(p)]
            lam.append([self._sharpness(ctx, p, s, data) for s in p.seeds])
            te.append([1 - r["test_acc"] for r in res])
            loss.append([r["train_loss"] for r in res])
            met.append([bool(r.get("target_met")) for r in res])
            rows.append({"width": p.tag("width"), "train loss": summarize(loss[-1]).fmt(1, 4),
                         "stop epoch": f"{np.mean([r['steps'] for r in res]) / math.ceil(data.n_train / p.config.batch_size):.0f}",
                         "test error (%)": summarize(te[-1]).fmt(100),
                         "top Hessian eigenvalue": summarize(lam[-1]).fmt(1, 3)})
        rep.tables.append(Table(f"Past the interpolation threshold at matched training loss "
                                f"{cfg.matched_loss:g}", ["width", "train loss", "stop epoch",
                                                         "test error (%)",
                                                         "top Hessian eigenvalue"], rows))
        verdict, facts = flatness_verdict([p.tag("width") for p in matched], xs, te, lam, loss,
                                          met, cfg.matched_loss)
        rep.verdicts.append(verdict)
        rep.facts.update(facts)

    def _epochwise(self, cfg: DoubleDescentConfig, ctx: StudyContext, plan: list[PlannedRun],
                   rep: StudyReport, out: Any) -> None:
        from overparam.report.figures import band, figure, save

        widest = [p for p in plan if p.tag("sweep") == "mlp"][-1]
        res = ctx.results(widest)
        epochs = [h["epoch"] for h in res[0]["history"] if h.get("test_acc") is not None]
        test = np.array([[1 - h["test_acc"] for h in r["history"] if h.get("test_acc") is not None]
                         for r in res])
        train = np.array([[1 - h["train_acc"] for h in r["history"]
                           if h.get("test_acc") is not None] for r in res])
        fig, ax = figure()
        for name, arr in (("test error", test), ("train error (running)", train)):
            sums = [summarize(arr[:, i]) for i in range(arr.shape[1])]
            band(ax, epochs, [100 * s.mean for s in sums], [100 * s.ci_low for s in sums],
                 [100 * s.ci_high for s in sums], name, marker="")
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%)")
        ax.set_title(f"Epoch-wise: {widest.config.model.name}, label noise {cfg.label_noise:.0%}")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "epochwise"))
        mean = test.mean(0)
        first_min = int(np.argmin(mean[: max(1, len(mean) // 2)]))
        later_max = first_min + int(np.argmax(mean[first_min:]))
        rep.notes.append(
            f"Epoch-wise ({widest.config.model.name}): test error {100 * mean[first_min]:.2f}% at "
            f"its early minimum (epoch {epochs[first_min]}), {100 * mean[later_max]:.2f}% at the "
            f"later maximum (epoch {epochs[later_max]}), {100 * mean[-1]:.2f}% at the end.")

    def _samplewise(self, cfg: DoubleDescentConfig, ctx: StudyContext, plan: list[PlannedRun],
                    rep: StudyReport, out: Any) -> None:
        from overparam.report.figures import band, figure, save

        runs = [p for p in plan if p.tag("sweep") == "samples"]
        same = [p for p in plan if p.tag("sweep") == "mlp" and p.tag("width") ==
                cfg.samplewise_width]
        n_main = cfg.n_train or (ctx.data(same[0].config.data).n_train if same else 0)
        pairs = [(p.tag("n"), p) for p in runs] + [(n_main, p) for p in same]
        pairs.sort(key=lambda t: t[0])
        if len(pairs) < 2:
            return
        rows, ns, te = [], [], []
        for n, p in pairs:
            res = ctx.results(p)
            s_tr, s_te = summary_of(res, "train_acc"), summary_of(res, "test_acc")
            rows.append({"n_train": n, "train acc (%)": pct(s_tr), "test acc (%)": pct(s_te)})
            ns.append(n)
            te.append(errors(res))
        rep.tables.append(Table(f"Sample-wise, {self._model(cfg, cfg.samplewise_width)}",
                                ["n_train", "train acc (%)", "test acc (%)"], rows))
        fig, ax = figure()
        sums = [summarize(v) for v in te]
        band(ax, ns, [100 * s.mean for s in sums], [100 * s.ci_low for s in sums],
             [100 * s.ci_high for s in sums], "test error")
        ax.set_xscale("log")
        ax.set_xticks(ns, [f"{n:,}" for n in ns])  # a label at every sample size trained
        ax.minorticks_off()
        ax.set_xlabel("training samples")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"Sample-wise: {self._model(cfg, cfg.samplewise_width)}")
        rep.figures.append(save(fig, out, "samplewise"))
        worse = [i for i in range(1, len(te)) if np.mean(te[i]) > np.mean(te[i - 1])]
        rep.notes.append("Sample-wise: " + (
            "more data hurt between " + ", ".join(f"n={ns[i - 1]}->{ns[i]}" for i in worse)
            if worse else "test error fell monotonically with n") + ".")

    def _random_features(self, cfg: DoubleDescentConfig, ctx: StudyContext, rep: StudyReport,
                         out: Any) -> None:
        from overparam.report.figures import figure, save

        n, d = cfg.rf_n, cfg.rf_d
        sim = self._simulation(cfg, ctx)
        res = SimpleNamespace(ps=np.array(sim["ps"]), risk_mean=np.array(sim["mean"]),
                              risk_std=np.array(sim["std"]), closed_form=np.array(sim["closed"]))
        rep.verdicts.append(min_norm_verdict(sim["ps"], n, sim["mean"], sim["closed"],
                                             cfg.rf_trials))
        rows = [{"p": int(p), "p/n": round(p / n, 3), "simulated risk": float(m),
                 "closed form": float(c)} for p, m, c in zip(res.ps, res.risk_mean,
                                                             res.closed_form)]
        rep.tables.append(Table("Min-norm least squares on isotropic features",
                                ["p", "p/n", "simulated risk", "closed form"], rows))
        fig, ax = figure()
        fine = np.array([p for p in range(1, d + 1) if abs(p - n) >= 2])
        from overparam.theory.random_features import closed_form_risk

        ax.plot(fine / n, [closed_form_risk(int(p), n, d, cfg.rf_sigma) for p in fine], "-",
                label="closed form (Belkin, Hsu & Xu 2019; Hastie et al. 2019)")
        ax.errorbar(res.ps / n, res.risk_mean, yerr=res.risk_std / math.sqrt(cfg.rf_trials),
                    fmt="o", label=f"simulation ({cfg.rf_trials} trials)")
        ax.axvline(1.0, color="k", ls="--", lw=1, label="p = n")
        ax.set_yscale("log")
        ax.set_ylim(0.5, 50)
        ax.set_xlabel("p / n (features / samples)")
        ax.set_ylabel("test risk")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, out, "random_features"))
