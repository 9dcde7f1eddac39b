"""Toward the NTK regime: parameter and kernel movement against width (blueprint IV-H, V-E).

Question: do wider networks move less from their initialization, as the lazy (NTK) regime
predicts (Jacot et al. 2018, arXiv:1806.07572; Lee et al. 2019, arXiv:1902.06720)?

MLPs of growing width. Per run: the relative parameter movement ``||theta_T - theta_0|| /
||theta_0||`` (blueprint eq. 1; theta_0 rebuilt exactly from the run's initialization seed), per
layer the relative movement of its weight matrix, and the relative movement of the empirical NTK
on a fixed probe set (``||K_T - K_0||_F / ||K_0||_F``). Exponents come from a log-log least-squares
fit of the per-width means (one point per width, so the seeds of a width are not counted as
independent widths; t interval with W - 2 degrees of freedom).

The -1/2 law is a statement about the NTK parameterization trained to a fixed loss: there the
kernel and the first and last layers move as width^-1/2 and the hidden width x width layers as
about width^-1. The tested arm is therefore NTK-parameterized, trained at a constant rate until
every member's training loss is ``ntk_loss`` (its training target), and a claim "moves as
width^-1/2" is an equivalence test of the fitted exponent against -1/2 within ``tolerance``
(two one-sided t tests on the slope). The blueprint's arm (standard parameterization, its fixed
rate and epochs) is kept and reported as description: PyTorch's default initialization shrinks
the signal with depth, and at a fixed rate wider standard networks are not lazier.

For the widest standard model, kernel regression with the analytic infinite-width NTK and with
the model's own empirical NTK at initialization is compared with the trained network.

Quick preset: the blueprint's arm on the 4,000 MNIST-1D samples (20 epochs) and the NTK arm on
1,000 (SGD at 1.0, momentum 0.9, constant, to training loss 0.1), widths 32-1024, 3 seeds,
about 2.5 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from overparam.config import ModelConfig
from overparam.models import build, count_params
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct, summary_of
from overparam.studies.settings import Training
from overparam.studies.verdicts import Arm, loss_arm


@dataclass(frozen=True)
class NTKWidthConfig(Training):
    lr_scaling: str = "none"
    widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    parameterization: str = "standard"  # the blueprint's arm
    probe_size: int = 100
    regression_train: int = 1000
    ntk_arm: bool = True  # the tested arm: NTK parameterization, constant LR, fixed loss
    ntk_n_train: int = 1000
    ntk_lr: float = 1.0
    ntk_momentum: float = 0.9
    ntk_loss: float = 0.1
    ntk_epochs: int = 100  # the budget within which every member must reach ntk_loss
    tolerance: float = 0.15  # "about width^-1/2": the exponent within -0.5 +- tolerance


PRESETS = {
    "quick": NTKWidthConfig(),
    # The blueprint (IV-H, V-E): MNIST, a 5,000-sample subset, widths 32..4096, 5 seeds; its
    # Appendix A defaults (SGD momentum 0.9, LR 0.01 at 128, cosine); epochs "60-80": 60.
    "paper": NTKWidthConfig(data="mnist", n_train=5000,
                            widths=(32, 64, 128, 256, 512, 1024, 2048, 4096), epochs=60,
                            seeds=5, regression_train=5000, ntk_n_train=5000),
}


@dataclass(frozen=True)
class Slope:
    """Exponent of ``v ~ width^slope`` from the per-width means, with its t statistics."""

    slope: float
    intercept: float
    se: float
    df: int

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        return self.slope - half, self.slope + half

    def equivalence_p(self, target: float, tol: float) -> float:
        """TOST of ``|slope - target| < tol``: the larger of the two one-sided p-values."""
        from scipy import stats

        if self.se == 0:  # an exact power law: inside the band or not
            return 0.0 if abs(self.slope - target) < tol else 1.0
        lower = stats.t.sf((self.slope - (target - tol)) / self.se, self.df)
        upper = stats.t.cdf((self.slope - (target + tol)) / self.se, self.df)
        return float(max(lower, upper))


def loglog_fit(widths: list[float], values: list[float]) -> Slope:
    """OLS of log(mean value per width) on log(width): one point per width."""
    from scipy import stats

    ws = sorted(set(widths))
    means = [np.mean([v for w, v in zip(widths, values) if w == u]) for u in ws]
    res = stats.linregress(np.log(ws), np.log(means))
    return Slope(float(res.slope), float(res.intercept), float(res.stderr), len(ws) - 2)


def exponent_verdict(what: str, claim_id: str, fits: list[Slope], tol: float,
                     arms: tuple[Arm, ...], blueprint: str = "") -> Verdict:
    """``what`` moves as width^-1/2: every fitted exponent within -0.5 +- ``tol`` (TOST on
    each slope; p = the largest); NOT SUPPORTED when a 90% interval lies outside the band."""
    ps = [f.equivalence_p(-0.5, tol) for f in fits]
    cis = [f.ci(0.90) for f in fits]
    outside = any(hi < -0.5 - tol or lo > -0.5 + tol for lo, hi in cis)
    text = "; ".join(f"exponent {f.slope:.3f} [90% CI {lo:.3f}, {hi:.3f}]"
                     for f, (lo, hi) in zip(fits, cis))
    return Verdict(f"{what} moves as width^(-1/2) (NTK parameterization, fixed training loss)",
                   f"{text} (band -0.5 ± {tol:g}, {fits[0].df + 2} widths)", p=max(ps),
                   test=f"TOST on the exponent ±{tol:g}", equivalence=True, outside=outside,
                   claim_id=claim_id, blueprint=blueprint,
                   ours=", ".join("{:.2f} [{:.2f}, {:.2f}]".format(f.slope, *f.ci()) for f in fits),
                   arms=arms,
                   controls="fixed training loss")


class NTKWidth(Study):
    name = "ntk_width"
    CAPTIONS = {
        "movement_vs_width": (
            "Relative movement of the parameters and of the empirical tangent kernel from "
            "initialization against width, trained to the same training loss, NTK and standard "
            "parameterizations (mean over seeds, 95% CI bands); dashed: the width^-1/2 guide of "
            "Jacot et al. (2018) and Lee et al. (2019)."
        ),
    }
    Config = NTKWidthConfig
    PRESETS = PRESETS

    def plan(self, cfg: NTKWidthConfig) -> list[PlannedRun]:
        if cfg.parameterization not in ("standard", "ntk"):
            from overparam.errors import ConfigError

            raise ConfigError("parameterization", cfg.parameterization, "standard or ntk")
        from overparam.train.interventions import StopAtLoss

        runs = [PlannedRun(
            cfg.train_config(ModelConfig(name=f"mlp_w{w}", parameterization=cfg.parameterization)),
            cfg.seed_ids, (("arm", "blueprint"), ("width", w))) for w in cfg.widths]
        if cfg.ntk_arm:
            runs += [PlannedRun(cfg.train_config(
                ModelConfig(name=f"mlp_w{w}", parameterization="ntk"), epochs=cfg.ntk_epochs,
                data=cfg.data_config(n_train=cfg.ntk_n_train or None),
                optim=cfg.optim_config(lr=cfg.ntk_lr, momentum=cfg.ntk_momentum,
                                       schedule="constant", lr_scaling="none"),
                interventions=(StopAtLoss(target=cfg.ntk_loss, every=10),)),
                cfg.seed_ids, (("arm", "ntk"), ("width", w))) for w in cfg.widths]
        return runs

    def _movement(self, cfg: NTKWidthConfig, ctx: StudyContext, p: PlannedRun, seed: int,
                  data) -> dict:  # noqa: ANN001
        from overparam.probes.ntk import empirical_ntk, kernel_movement, parameter_movement
        from overparam.train.loop import build_members

        spec = {"probe": "movement", "probe_size": cfg.probe_size, "layers": True}

        def compute() -> dict:
            final = ctx.model(p.config, seed, data)
            init = build_members(p.config, [seed], data)[0].to(ctx.device)
            x = data.x_test[:cfg.probe_size]
            k0 = empirical_ntk(init, x)
            kt = empirical_ntk(final, x)
            with torch.no_grad():
                layers = [float((b.weight - a.weight).norm() / a.weight.norm())
                          for a, b in zip(init.layers, final.layers)]
            return {"param_movement": parameter_movement(init, final),
                    "kernel_movement": kernel_movement(k0, kt), "layer_movement": layers}

        return ctx.probe(p.config, seed, spec, compute)

    def measure(self, cfg: NTKWidthConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        todo = [(p, s) for p in plan for s in p.seeds]
        with ctx.progress("ntk_width: movement", len(todo)) as tick:
            for p, s in todo:
                self._movement(cfg, ctx, p, s, ctx.data(p.config.data))
                tick()
        widest = self._arm(plan, "blueprint")[-1]
        self._regression(cfg, ctx, widest, ctx.data(widest.config.data))

    @staticmethod
    def _arm(plan: list[PlannedRun], arm: str) -> list[PlannedRun]:
        return [p for p in plan if p.tag("arm") == arm]

    def _regression(self, cfg: NTKWidthConfig, ctx: StudyContext, p: PlannedRun, data) -> dict:  # noqa: ANN001
        from overparam.probes.ntk import analytic_ntk, empirical_ntk, kernel_regression
        from overparam.train.loop import build_members

        n = min(cfg.regression_train, data.n_train)
        spec = {"probe": "kernel_regression", "n": n}

        def compute() -> dict:
            seed = p.seeds[0]
            xtr, ytr = data.x_train[:n].double(), data.y_train[:n]
            xte, yte = data.x_test.double(), data.y_test
            onehot = torch.nn.functional.one_hot(ytr, data.num_classes).double()
            net = ctx.model(p.config, seed, data)
            with torch.no_grad():
                net_pred = net(data.x_test).argmax(-1)
            depth = len(net.layers)
            out = {"net_test_acc": float((net_pred == yte).float().mean())}
            kernels = {"analytic": (analytic_ntk(xtr, depth=depth),
                                    analytic_ntk(xte, xtr, depth=depth))}
            init = build_members(p.config, [seed], data)[0].double().to(ctx.device)
            kernels["empirical_init"] = (empirical_ntk(init, xtr), empirical_ntk(init, xte, xtr))
            for name, (ktr, kte) in kernels.items():
                _, pred = kernel_regression(ktr, kte, onehot, ridge=1e-6 * float(ktr.diag().mean()))
                labels = pred.argmax(-1)
                out[f"{name}_test_acc"] = float((labels == yte).float().mean())
                out[f"{name}_agreement"] = float((labels == net_pred).float().mean())
            return out

        return ctx.probe(p.config, p.seeds[0], spec, compute)

    def analyze(self, cfg: NTKWidthConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        arms = {"blueprint": self._table(cfg, ctx, rep, self._arm(plan, "blueprint"))}
        b = arms["blueprint"]
        fit = loglog_fit(b["ws"], b["mv"])
        kfit = loglog_fit(b["ws"], b["km"])
        (lo, hi), (klo, khi) = fit.ci(), kfit.ci()
        rep.notes.append(
            f"Blueprint arm ({cfg.parameterization} parameterization, LR {cfg.lr:g}, "
            f"{cfg.epochs} epochs; descriptive): parameter movement exponent {fit.slope:.3f} "
            f"[95% CI {lo:.3f}, {hi:.3f}], kernel movement exponent {kfit.slope:.3f} "
            f"[95% CI {klo:.3f}, {khi:.3f}] (per-width means, {fit.df + 2} widths).")
        rep.facts.update({"ntk_blueprint_slope": fit.slope, "ntk_widths":
                          f"{min(cfg.widths)}-{max(cfg.widths)}"})
        if cfg.ntk_arm:
            n = arms["ntk"] = self._table(cfg, ctx, rep, self._arm(plan, "ntk"))
            targets = tuple(loss_arm(f"w={w}", met, loss, cfg.ntk_loss)
                            for w, met, loss in n["targets"])
            n_layers = len(n["layers"][0])
            fits = {name: loglog_fit(n["ws"], vals) for name, vals in (
                ("param", n["mv"]), ("kernel", n["km"]),
                *((f"layer{i}", [v[i] for v in n["layers"]]) for i in range(n_layers)))}
            rep.verdicts.append(exponent_verdict(
                "relative parameter movement (the blueprint's measure)", "movement_width",
                [fits["param"]], cfg.tolerance, targets, "0.94 -> 0.08 over widths 32-4096, "
                "'approximately inverse square-root'"))
            rep.verdicts.append(exponent_verdict("the empirical NTK", "kernel_movement_width",
                                                 [fits["kernel"]], cfg.tolerance, targets))
            rep.verdicts.append(exponent_verdict(
                "each of the first and last weight matrices", "outer_layers_width",
                [fits["layer0"], fits[f"layer{n_layers - 1}"]], cfg.tolerance, targets))
            rows = [{"quantity": name, "exponent": f"{f.slope:.3f}",
                     "95% CI": "[{:.3f}, {:.3f}]".format(*f.ci()),
                     "theory": "-1/2" if name in ("kernel", "layer0", f"layer{n_layers - 1}")
                     else "about -1"} for name, f in fits.items()]
            rep.tables.append(Table(
                f"Movement exponents, NTK parameterization to training loss {cfg.ntk_loss:g} "
                f"(per-width means, {len(cfg.widths)} widths)",
                ["quantity", "exponent", "95% CI", "theory"], rows))
            rep.facts.update({"ntk_slope": fits["param"].slope,
                              "ntk_kernel_slope": fits["kernel"].slope})
        data = ctx.data(self._arm(plan, "blueprint")[-1].config.data)
        self._regression_table(cfg, ctx, rep, self._arm(plan, "blueprint")[-1], data)
        self._figure(cfg, ctx, rep, arms)
        return rep

    def _table(self, cfg: NTKWidthConfig, ctx: StudyContext, rep: StudyReport,
               runs: list[PlannedRun]) -> dict[str, Any]:
        """Per-width table of one arm; per-run movements for the fits."""
        out: dict[str, Any] = {"ws": [], "mv": [], "km": [], "layers": [], "targets": []}
        rows = []
        for p in runs:
            data = ctx.data(p.config.data)
            res = ctx.results(p)
            moves = [self._movement(cfg, ctx, p, s, data) for s in p.seeds]
            pm = [m["param_movement"] for m in moves]
            kmv = [m["kernel_movement"] for m in moves]
            n_params = count_params(build(p.config.model.name, tuple(data.input_shape),
                                          data.num_classes, device="meta"))
            rows.append({"width": p.tag("width"), "parameters": n_params,
                         "train loss": summary_of(res, "train_loss").fmt(1, 4),
                         "test acc (%)": pct(summary_of(res, "test_acc")),
                         "param movement": summarize(pm).fmt(1, 4),
                         "kernel movement": summarize(kmv).fmt(1, 4),
                         "first / last layer": f"{np.mean([m['layer_movement'][0] for m in moves]):.4f}"
                                               f" / {np.mean([m['layer_movement'][-1] for m in moves]):.4f}"})
            out["ws"] += [p.tag("width")] * len(pm)
            out["mv"] += pm
            out["km"] += kmv
            out["layers"] += [m["layer_movement"] for m in moves]
            out["targets"].append((p.tag("width"),
                                   [bool(r["result"].get("target_met", True)) for r in res],
                                   [r["result"]["train_loss"] for r in res]))
        c = runs[0].config
        rep.tables.append(Table(
            f"Width vs movement: MLP on {c.data.name} ({c.model.parameterization} "
            f"parameterization, LR {c.optim.lr:g}, "
            + (f"to training loss {c.interventions[0].target:g}" if c.interventions
               else f"{c.epochs} epochs") + ")",
            ["width", "parameters", "train loss", "test acc (%)", "param movement",
             "kernel movement", "first / last layer"], rows))
        return out

    def _regression_table(self, cfg: NTKWidthConfig, ctx: StudyContext, rep: StudyReport,
                          widest: PlannedRun, data: Any) -> None:
        reg = self._regression(cfg, ctx, widest, data)
        rep.tables.append(Table(
            f"Widest model (w={widest.tag('width')}) vs kernel regression (at convergence, "
            f"{min(cfg.regression_train, data.n_train)} training samples, one-hot targets)",
            ["predictor", "test acc (%)", "label agreement with the network (%)"],
            [{"predictor": "trained network", "test acc (%)": f"{100 * reg['net_test_acc']:.2f}",
              "label agreement with the network (%)": "100"},
             {"predictor": "analytic NTK (infinite width)",
              "test acc (%)": f"{100 * reg['analytic_test_acc']:.2f}",
              "label agreement with the network (%)": f"{100 * reg['analytic_agreement']:.2f}"},
             {"predictor": "empirical NTK at initialization",
              "test acc (%)": f"{100 * reg['empirical_init_test_acc']:.2f}",
              "label agreement with the network (%)":
                  f"{100 * reg['empirical_init_agreement']:.2f}"}]))

    def _figure(self, cfg: NTKWidthConfig, ctx: StudyContext, rep: StudyReport,
                arms: dict[str, dict[str, Any]]) -> None:
        from overparam.report.figures import band, figure, save

        fig, axes = figure(10, 4, ncols=2)
        for ax, (arm, d) in zip(np.atleast_1d(axes), arms.items()):
            for vals, label in ((d["mv"], "parameter movement"), (d["km"], "kernel movement")):
                per = [[v for w, v in zip(d["ws"], vals) if w == width] for width in cfg.widths]
                sums = [summarize(v) for v in per]
                band(ax, list(cfg.widths), [s.mean for s in sums], [s.ci_low for s in sums],
                     [s.ci_high for s in sums], label)
            grid = np.array(cfg.widths, float)
            fit = loglog_fit(d["ws"], d["km"])
            ax.plot(grid, np.exp(fit.intercept) * grid[0] ** (fit.slope + 0.5) * grid ** -0.5,
                    "k--", lw=0.8, label="width^-1/2 (through the kernel fit at the left)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("width")
            ax.set_ylabel("relative movement")
            ax.set_title("NTK parameterization, fixed training loss" if arm == "ntk" else
                         f"blueprint arm ({cfg.parameterization}, {cfg.epochs} epochs)",
                         fontsize=10)
            ax.legend(fontsize=7)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "movement_vs_width"))
