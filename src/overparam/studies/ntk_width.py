"""Toward the NTK regime: parameter and kernel movement against width (blueprint IV-H, V-E).

MLPs of growing width trained on one data set. Per run: the relative parameter movement
``||theta_T - theta_0|| / ||theta_0||`` (blueprint eq. 1; theta_0 rebuilt exactly from the
run's initialization seed), the relative movement of the empirical NTK on a fixed probe set
(``||K_T - K_0||_F / ||K_0||_F``, :func:`overparam.probes.ntk.empirical_ntk`), and test accuracy.
A log-log least-squares fit of movement against width gives the exponent with its 95% CI
(theory: -1/2 in the standard scaling, Jacot et al. 2018, arXiv:1806.07572; Lee et al. 2019,
arXiv:1902.06720). For the widest model, kernel regression with the analytic infinite-width NTK
and with the model's own empirical NTK at initialization (at convergence, one-hot targets) is
compared with the trained network: test accuracy and agreement of predicted labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from overparam.config import ModelConfig
from overparam.models import build, count_params
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct, summary_of
from overparam.studies.settings import Training


@dataclass(frozen=True)
class NTKWidthConfig(Training):
    lr_scaling: str = "none"
    widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    parameterization: str = "standard"
    probe_size: int = 100
    regression_train: int = 1000


PRESETS = {
    "quick": NTKWidthConfig(),
    # The blueprint (IV-H, V-E): MNIST, a 5,000-sample subset, widths 32..4096, 5 seeds; its
    # Appendix A defaults (SGD momentum 0.9, LR 0.01 at 128, cosine); epochs "60-80": 60.
    "paper": NTKWidthConfig(data="mnist", n_train=5000,
                            widths=(32, 64, 128, 256, 512, 1024, 2048, 4096), epochs=60,
                            seeds=5, regression_train=5000),
}


def loglog_fit(widths: list[float], values: list[float]) -> tuple[float, float, float, float]:
    """Slope, intercept and the 95% CI of the slope of ``log v = a log w + b`` (OLS, t-dist)."""
    from scipy import stats

    x, y = np.log(np.asarray(widths, float)), np.log(np.asarray(values, float))
    res = stats.linregress(x, y)
    t = stats.t.ppf(0.975, len(x) - 2)
    return res.slope, res.intercept, res.slope - t * res.stderr, res.slope + t * res.stderr


def movement_verdict(widths: list[float], movement: list[float]
                     ) -> tuple[Verdict, tuple[float, float]]:
    """Movement falls with width (Spearman p < 0.05) and the log-log slope's 95% CI holds -1/2;
    the verdict and (rho, p)."""
    from scipy.stats import spearmanr

    slope, _, lo, hi = loglog_fit(widths, movement)
    rho, p_rho = spearmanr(widths, movement)
    return Verdict(
        "relative parameter movement falls with width, about as width^(-1/2)",
        bool(rho < 0 and p_rho < 0.05 and lo <= -0.5 <= hi),
        f"log-log slope {slope:.3f} [95% CI {lo:.3f}, {hi:.3f}] (theory -0.5); Spearman "
        f"rho(width, movement)={rho:.3f} (p={p_rho:.3g}); {len(movement)} runs"), (rho, p_rho)


class NTKWidth(Study):
    name = "ntk_width"
    Config = NTKWidthConfig
    PRESETS = PRESETS

    def plan(self, cfg: NTKWidthConfig) -> list[PlannedRun]:
        if cfg.parameterization not in ("standard", "ntk"):
            from overparam.errors import ConfigError

            raise ConfigError("parameterization", cfg.parameterization, "standard or ntk")
        return [PlannedRun(
            cfg.train_config(ModelConfig(name=f"mlp_w{w}", parameterization=cfg.parameterization)),
            cfg.seed_ids, (("width", w),)) for w in cfg.widths]

    def _movement(self, cfg: NTKWidthConfig, ctx: StudyContext, p: PlannedRun, seed: int,
                  data) -> dict:  # noqa: ANN001
        from overparam.probes.ntk import empirical_ntk, kernel_movement, parameter_movement
        from overparam.train.loop import build_members

        spec = {"probe": "movement", "probe_size": cfg.probe_size}

        def compute() -> dict:
            final = ctx.model(p.config, seed, data)
            init = build_members(p.config, [seed], data)[0].to(ctx.device)
            x = data.x_test[:cfg.probe_size]
            k0 = empirical_ntk(init, x)
            kt = empirical_ntk(final, x)
            return {"param_movement": parameter_movement(init, final),
                    "kernel_movement": kernel_movement(k0, kt)}

        return ctx.probe(p.config, seed, spec, compute)

    def measure(self, cfg: NTKWidthConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        data = ctx.data(plan[0].config.data)
        todo = [(p, s) for p in plan for s in p.seeds]
        with ctx.progress("ntk_width: movement", len(todo)) as tick:
            for p, s in todo:
                self._movement(cfg, ctx, p, s, data)
                tick()
        self._regression(cfg, ctx, plan[-1], data)

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
        from overparam.report.figures import band, figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        data = ctx.data(plan[0].config.data)
        rows, ws, mv, km = [], [], [], []
        for p in plan:
            res = ctx.results(p)
            moves = [self._movement(cfg, ctx, p, s, data) for s in p.seeds]
            pm = [m["param_movement"] for m in moves]
            kmv = [m["kernel_movement"] for m in moves]
            shape = tuple(data.input_shape)
            n_params = count_params(build(p.config.model.name, shape, data.num_classes,
                                          device="meta"))
            rows.append({"width": p.tag("width"), "parameters": n_params,
                         "test acc (%)": pct(summary_of(res, "test_acc")),
                         "param movement": summarize(pm).fmt(1, 4),
                         "kernel movement": summarize(kmv).fmt(1, 4)})
            ws += [p.tag("width")] * len(pm)
            mv += pm
            km += kmv
        rep.tables.append(Table(f"Width vs movement: MLP on {cfg.data} ({cfg.parameterization} "
                                f"parameterization, {cfg.epochs} epochs)",
                                ["width", "parameters", "test acc (%)", "param movement",
                                 "kernel movement"], rows))
        slope, icpt, lo, hi = loglog_fit(ws, mv)
        verdict, (rho, p_rho) = movement_verdict(ws, mv)
        rep.verdicts.append(verdict)
        rep.facts.update({"ntk_supported": rep.verdicts[-1].supported, "ntk_slope": float(slope), "ntk_lo": float(lo), "ntk_hi": float(hi),
                          "ntk_rho": float(rho), "ntk_p": float(p_rho),
                          "ntk_widths": f"{min(ws)}-{max(ws)}"})
        kslope, _, klo, khi = loglog_fit(ws, km)
        rep.notes.append(f"Kernel movement exponent: {kslope:.3f} [95% CI {klo:.3f}, {khi:.3f}].")
        reg = self._regression(cfg, ctx, plan[-1], data)
        rep.tables.append(Table(
            f"Widest model (w={plan[-1].tag('width')}) vs kernel regression (at convergence, "
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
        fig, ax = figure()
        for vals, label in ((mv, "parameter movement"), (km, "kernel movement")):
            per = [[v for w, v in zip(ws, vals) if w == width] for width in cfg.widths]
            sums = [summarize(v) for v in per]
            band(ax, list(cfg.widths), [s.mean for s in sums], [s.ci_low for s in sums],
                 [s.ci_high for s in sums], label)
        grid = np.array(cfg.widths, float)
        ax.plot(grid, np.exp(icpt) * grid ** slope, "k:", lw=1,
                label=f"fit: width^{slope:.2f}")
        ax.plot(grid, np.exp(icpt) * grid[0] ** (slope + 0.5) * grid ** -0.5, "k--", lw=0.8,
                label="width^-0.5 (theory)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width")
        ax.set_ylabel("relative movement")
        ax.set_title(f"MLP on {cfg.data}: movement vs width ({cfg.seeds} seeds, 95% CI)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "movement_vs_width"))
        return rep
