"""Learning rate and flatness: do larger learning rates find flatter minima, at matched loss?

Question: the seed paper (004, "implicit regularization", Sec. 7.2 and 10.4) states that larger
learning rates lead to flatter minima "measured via Hessian eigenvalues", that sharpness and test
error are strongly correlated ("rho = -0.89"), that optimal generalization sits slightly below
the edge of stability (``eta lambda_max ~ 2``). Here: plain SGD (no momentum, constant step) at a
ladder of learning rates, the same batch size, every run stopped at the same training loss
``target_loss`` (StopAtLoss, checked every ``every`` steps within ``max_steps``): near zero
cross-entropy the Hessian scales with the loss, so curvature is compared at matched loss; an arm
that misses the target makes every claim it enters INCONCLUSIVE.

Measured on every run (the first ``hessian_samples`` training samples, evaluation mode): the top
Hessian eigenvalue (Lanczos, :func:`overparam.studies.common.lambda_max`), the Hessian trace
(Hutchinson with ``trace_probes`` Rademacher probes, with its standard error), Keskar et al.'s
epsilon-sharpness (arXiv:1609.04836; L-BFGS-B in the box of size ``epsilon``, all training
samples); test accuracy. The stability bound of gradient descent, ``lambda_max <= 2/eta``, is
reported as ``lambda_max eta / 2`` per run (Cohen et al. 2021, arXiv:2103.00065). Association
with the learning rate: Spearman's rho over all seeds x rates, its p-value from a permutation
test of the rates across runs (``permutations`` draws; scipy's asymptotic p beside it).

Quick preset: mlp_w128_d3 on MNIST-1D, batch 64, rates 0.05-0.8, training loss 0.3, 3 seeds,
about 1 minute on 2 busy CPU cores (33 s of CPU time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.errors import ConfigError
from overparam.stats import spearman_permutation, summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import Arm, loss_arm

SEED_RHO = -0.89  # seed 004, Sec. 10.4: "Sharpness vs. test error: strong negative correlation"


@dataclass(frozen=True)
class LearningRateConfig(Training):
    model: str = "mlp_w128_d3"
    batch_size: int = 64
    lrs: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)
    momentum: float = 0.0
    schedule: str = "constant"
    lr_scaling: str = "none"
    target_loss: float = 0.3  # every run stops at this training loss
    every: int = 25  # steps between checks of the training loss
    max_steps: int = 12000
    loss_agreement: float = 0.10  # the runs' stopping losses agree within 10%
    hessian_samples: int = 1000
    hessian_tol: float = 1e-4
    trace_probes: int = 100
    epsilon: float = 1e-3  # Keskar et al.'s box
    permutations: int = 10000

    def check(self) -> None:
        super().check()
        if len(self.lrs) < 3 or sorted(set(self.lrs)) != list(self.lrs) or self.lrs[0] <= 0:
            raise ConfigError("lrs", self.lrs, "at least three increasing positive rates")
        for name in ("every", "max_steps", "hessian_samples", "trace_probes", "permutations"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 2):
                raise ConfigError(name, v, "an integer >= 2")
        for name in ("target_loss", "hessian_tol", "epsilon", "loss_agreement"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "a positive number")


PRESETS = {
    "quick": LearningRateConfig(),
    # The seed's Experiment 4: CIFAR-10, learning rates {0.001, 0.01, 0.1, 0.5}; ResNet-18 is
    # not in the model registry, the blueprint's CNN stands in; 5 seeds.
    "paper": LearningRateConfig(data="cifar10", model="cnn_c32", batch_size=128,
                                lrs=(0.001, 0.01, 0.1, 0.5), target_loss=0.05,
                                max_steps=200000, every=100, hessian_samples=5000, seeds=5),
}


# -- statistics and verdicts: plain numbers in --------------------------------------------------
def rho_verdict(measure: str, key: str, lrs: list[float], values: list[float],
                arms: tuple[Arm, ...], n_perm: int) -> tuple[Verdict, dict[str, float]]:
    """Larger learning rates, flatter minima: Spearman rho(eta, measure) < 0 over all runs."""
    rho, p, p_sc = spearman_permutation(lrs, values, n_perm, seed=1)
    return Verdict(
        f"larger learning rates find flatter minima ({measure}, matched training loss)",
        f"Spearman rho(eta, {measure}) = {rho:.3f} over {len(values)} runs, permutation p="
        f"{p:.3g} (scipy p={p_sc:.3g})", criteria=bool(rho < 0), p=p,
        test="Spearman, permutation", claim_id=f"lr_{key}",
        blueprint="004 Sec. 10.4: larger learning rates -> flatter minima (Hessian eigenvalues)",
        ours=f"rho={rho:.2f}", arms=arms, controls="matched training loss"
    ), {"rho": rho, "p": p, "p_scipy": p_sc}


def sharpness_error_verdict(lam: list[float], err: list[float], arms: tuple[Arm, ...],
                            n_perm: int) -> tuple[Verdict, float]:
    """The seed's printed statement, read literally: sharpness and test error are negatively
    rank-correlated (rho(lambda_max, test error) < 0)."""
    rho, p, p_sc = spearman_permutation(lam, err, n_perm, seed=2)
    return Verdict(
        "sharpness and test error are strongly negatively correlated (as printed)",
        f"Spearman rho(lambda_max, test error) = {rho:.3f} over {len(lam)} runs, permutation "
        f"p={p:.3g} (scipy p={p_sc:.3g})", criteria=bool(rho < 0), p=p,
        test="Spearman, permutation", claim_id="sharpness_test_error",
        blueprint=f"004 Sec. 10.4: rho = {SEED_RHO}", ours=f"rho={rho:.2f}", arms=arms,
        controls="matched training loss"), rho


def stability_verdicts(lrs: list[float], lam: dict[float, list[float]],
                       test_acc: dict[float, list[float]], arms: tuple[Arm, ...]
                       ) -> list[Verdict]:
    """lambda_max <= 2/eta on every run; and the best-generalizing rate is an interior optimum
    of the ladder (a larger rate generalizes worse) that sits slightly below the edge (its mean
    lambda_max eta / 2 in [0.5, 1)); INCONCLUSIVE when the best rate is the largest tried."""
    ratio = {lr: [v * lr / 2 for v in lam[lr]] for lr in lrs}
    worst = max(max(r) for r in ratio.values())
    best = max(lrs, key=lambda lr: float(np.mean(test_acc[lr])))
    edge = float(np.mean(ratio[best]))
    interior = None if best == max(lrs) else best != min(lrs)
    text = ", ".join(f"eta={lr:g}: {np.mean(r):.3f}" for lr, r in ratio.items())
    return [
        Verdict("every run satisfies the stability bound lambda_max <= 2/eta",
                f"lambda_max eta / 2 per rate (mean): {text}; largest single run {worst:.3f}",
                criteria=worst <= 1.0, claim_id="stability_bound",
                blueprint="004 Sec. 7.2: eta lambda_max ~ 2 (edge of stability)",
                ours=f"max {worst:.3f}", arms=arms, controls="deterministic, every run"),
        Verdict("the best test accuracy is reached at an interior learning rate slightly below "
                "the edge of stability",
                f"best mean test accuracy at eta={best:g} "
                f"({100 * np.mean(test_acc[best]):.2f}%), where lambda_max eta / 2 = {edge:.3f} "
                "(slightly below the edge: in [0.5, 1))",
                criteria=None if interior is None else bool(interior and 0.5 <= edge < 1.0),
                reason="" if interior is not None else "the best rate is the largest tried: "
                "the ladder does not show whether larger rates generalize worse",
                claim_id="best_lr_near_edge",
                blueprint="004 Sec. 10.4: optimal generalization at eta = 0.1, slightly below "
                          "the edge of stability", ours=f"eta={best:g}, {edge:.3f}", arms=arms,
                controls="deterministic on seed means")]


class LearningRate(Study):
    name = "learning_rate"
    CAPTIONS = {
        "sharpness_vs_lr": (
            "Top Hessian eigenvalue, Hessian trace and epsilon-sharpness at the same training "
            "loss against the learning rate (mean over seeds, 95% CI bands, log scale); dashed: "
            "the stability bound 2/eta."
        ),
        "accuracy_and_stability_vs_lr": (
            "Left: test accuracy at the matched training loss against the learning rate (mean, "
            "95% CI band). Right: lambda_max x eta / 2 of every run; 1 is the edge of "
            "stability."
        ),
    }
    Config = LearningRateConfig
    PRESETS = PRESETS

    def plan(self, cfg: LearningRateConfig) -> list[PlannedRun]:
        from overparam.train.interventions import StopAtLoss

        cfg.check()
        stop = StopAtLoss(target=cfg.target_loss, every=cfg.every)
        return [PlannedRun(cfg.train_config(
            cfg.model, steps=cfg.max_steps, interventions=(stop,),
            optim=OptimConfig(name="sgd", lr=lr, momentum=cfg.momentum, lr_scaling="none",
                              schedule=cfg.schedule)), cfg.seed_ids, (("lr", lr),))
            for lr in cfg.lrs]

    def measure(self, cfg: LearningRateConfig, ctx: StudyContext, plan: list[PlannedRun]
                ) -> None:
        with ctx.progress(f"{self.name}: probes", len(plan) * cfg.seeds) as tick:
            for p in plan:
                for s in p.seeds:
                    self.probes(cfg, ctx, p, s)
                    tick()

    def probes(self, cfg: LearningRateConfig, ctx: StudyContext, p: PlannedRun, seed: int
               ) -> dict[str, float]:
        """lambda_max, Hutchinson trace (and its standard error), epsilon-sharpness; each
        computed once and then read from the store."""
        import torch.nn.functional as F

        from overparam.probes.hessian import trace
        from overparam.probes.perturb import epsilon_sharpness
        from overparam.seeds import derive_seed
        from overparam.studies.common import lambda_max

        data = ctx.data(p.config.data)
        n = min(cfg.hessian_samples, data.n_train)
        x, y = data.x_train[:n], data.y_train[:n]
        lam = lambda_max(ctx, p.config, seed, data, n, cfg.hessian_tol)["lambda_max"]
        tspec = {"probe": "hessian_trace", "samples": n, "probes": cfg.trace_probes,
                 "seed": seed}

        def hutchinson() -> dict[str, float]:
            r = trace(ctx.model(p.config, seed, data), F.cross_entropy, x, y,
                      n_probes=cfg.trace_probes, seed=derive_seed(seed, "trace") % 2 ** 31)
            return {"trace": r.estimate, "stderr": r.stderr}

        tr = ctx.probe(p.config, seed, tspec, hutchinson)
        espec = {"probe": "epsilon_sharpness", "samples": data.n_train, "epsilon": cfg.epsilon,
                 "seed": seed}
        eps = ctx.probe(p.config, seed, espec, lambda: {"value": epsilon_sharpness(
            ctx.model(p.config, seed, data), F.cross_entropy, data.x_train, data.y_train,
            epsilon=cfg.epsilon, batch_size=4096,
            seed=derive_seed(seed, "epsilon") % 2 ** 31)})["value"]
        return {"lambda_max": lam, "trace": tr["trace"], "trace_se": tr["stderr"],
                "epsilon": eps}

    def analyze(self, cfg: LearningRateConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        # load
        m: dict[float, dict[str, list[float]]] = {}
        for p in self.plan(cfg):
            res = [r["result"] for r in ctx.results(p)]
            probes = [self.probes(cfg, ctx, p, s) for s in p.seeds]
            m[p.tag("lr")] = {
                "test": [r["test_acc"] for r in res], "train": [r["train_acc"] for r in res],
                "loss": [r["train_loss"] for r in res],
                "steps": [r.get("target_step") or r["steps"] for r in res],
                "met": [bool(r.get("target_met")) for r in res],
                **{k: [q[k] for q in probes] for k in probes[0]}}
        lrs = list(cfg.lrs)
        means = [float(np.mean(m[lr]["loss"])) for lr in lrs]
        gap = (max(means) - min(means)) / max(means)
        arms = (*(loss_arm(f"eta={lr:g}", m[lr]["met"], m[lr]["loss"], cfg.target_loss)
                  for lr in lrs),
                Arm("stopping losses", f"agree within {cfg.loss_agreement:.0%}",
                    gap <= cfg.loss_agreement,
                    f"{min(means):.4g}-{max(means):.4g} ({100 * gap:.1f}% apart)"))
        # statistics and verdicts
        x = [lr for lr in lrs for _ in m[lr]["test"]]
        flat = {k: [v for lr in lrs for v in m[lr][k]] for k in ("lambda_max", "trace",
                                                                 "epsilon", "test")}
        rows = []
        for measure, key in (("top Hessian eigenvalue", "lambda_max"),
                             ("Hessian trace", "trace"), ("epsilon-sharpness", "epsilon")):
            v, st = rho_verdict(measure, key, x, flat[key], arms, cfg.permutations)
            rep.verdicts.append(v)
            rows.append({"measure": measure, "Spearman rho with eta": st["rho"],
                         "permutation p": st["p"], "scipy p": st["p_scipy"]})
            rep.facts[f"lr_rho_{key}"] = st["rho"]
        err = [1 - a for a in flat["test"]]
        v, rho_err = sharpness_error_verdict(flat["lambda_max"], err, arms, cfg.permutations)
        rep.verdicts.append(v)
        rho_acc, p_acc, p_acc_sc = spearman_permutation(x, flat["test"], cfg.permutations, 3)
        rows.append({"measure": "test accuracy", "Spearman rho with eta": rho_acc,
                     "permutation p": p_acc, "scipy p": p_acc_sc})
        rep.verdicts += stability_verdicts(lrs, {lr: m[lr]["lambda_max"] for lr in lrs},
                                           {lr: m[lr]["test"] for lr in lrs}, arms)
        rep.facts.update({"lr_rho_lambda_error": rho_err, "lr_rho_test_acc": rho_acc,
                          **{f"lr_edge_ratio_{lr:g}": float(np.mean(m[lr]["lambda_max"]) * lr / 2)
                             for lr in lrs}})
        # tables
        rep.tables.append(Table(
            f"Matched training loss {cfg.target_loss:g}: {cfg.model} on {cfg.data}, plain SGD "
            f"at batch {cfg.batch_size} ({cfg.seeds} seeds, mean ± std [95% CI])",
            ["eta", "steps to target", "train loss", "test acc (%)", "top Hessian eigenvalue",
             "2/eta", "lambda_max eta / 2", "Hessian trace", "epsilon-sharpness (%)"],
            [{"eta": lr, "steps to target": summarize(m[lr]["steps"]).fmt(1, 0),
              "train loss": summarize(m[lr]["loss"]).fmt(1, 4),
              "test acc (%)": summarize(m[lr]["test"]).fmt(100),
              "top Hessian eigenvalue": summarize(m[lr]["lambda_max"]).fmt(1, 3),
              "2/eta": 2 / lr,
              "lambda_max eta / 2": summarize([v * lr / 2 for v in m[lr]["lambda_max"]]).fmt(1, 3),
              "Hessian trace": summarize(m[lr]["trace"]).fmt(1, 1),
              "epsilon-sharpness (%)": summarize(m[lr]["epsilon"]).fmt(1, 4)} for lr in lrs]))
        rep.tables.append(Table("Rank correlations over all runs (seeds x learning rates)",
                                ["measure", "Spearman rho with eta", "permutation p",
                                 "scipy p"], rows))
        rep.notes.append(
            f"The seed prints 'Sharpness vs. test error: strong negative correlation (rho = "
            f"{SEED_RHO})' beside 'larger learning rates -> flatter minima' and its Sec. 6.3 "
            "'flat minima correlate with better generalization'; read literally, rho < 0 says "
            "sharper minima have lower test error, the opposite of the flat-minima claim. The "
            "verdict tests the statement as printed; the flat-minima reading is its sign flip "
            "(ranks of test error are the reverse of those of test accuracy): measured "
            f"rho(lambda_max, test error) = {rho_err:.3f}, i.e. rho(lambda_max, test accuracy) "
            f"= {-rho_err:.3f}.")
        rep.notes.append(
            "Hutchinson standard errors of the trace (mean over runs per rate): " + ", ".join(
                f"eta={lr:g}: {np.mean(m[lr]['trace_se']):.2g}" for lr in lrs) + ".")
        self._figures(cfg, ctx, rep, m)
        return rep

    def _figures(self, cfg: LearningRateConfig, ctx: StudyContext, rep: StudyReport,
                 m: dict[float, dict[str, list[float]]]) -> None:
        from overparam.report.figures import band, figure, save

        lrs = list(cfg.lrs)

        def b(ax: Any, key: str, label: str, scale: float = 1.0) -> None:
            sums = [summarize([v * scale for v in m[lr][key]]) for lr in lrs]
            band(ax, lrs, [s.mean for s in sums], [s.ci_low for s in sums],
                 [s.ci_high for s in sums], label)

        def lr_axis(ax: Any) -> None:
            from matplotlib.ticker import NullLocator

            ax.set_xscale("log")
            ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
            ax.xaxis.set_minor_locator(NullLocator())

        fig, axes = figure(14, 4, ncols=3)
        b(axes[0], "lambda_max", "top Hessian eigenvalue")
        axes[0].plot(lrs, [2 / lr for lr in lrs], "k--", lw=1, label="2/eta (stability)")
        b(axes[1], "trace", "Hessian trace (Hutchinson)")
        b(axes[2], "epsilon", "epsilon-sharpness")
        for ax, ylabel in zip(axes, ("top Hessian eigenvalue", "Hessian trace",
                                     "epsilon-sharpness (% loss increase)")):
            ax.set(yscale="log", xlabel="learning rate eta", ylabel=ylabel)
            lr_axis(ax)
            ax.legend(fontsize=7)
        axes[1].set_title(f"Sharpness at training loss {cfg.target_loss:g} ({cfg.seeds} seeds, "
                          "95% CI)", fontsize=10)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "sharpness_vs_lr"))
        fig, (ax1, ax2) = figure(10, 4, ncols=2)
        b(ax1, "test", "test accuracy", 100.0)
        ax1.set(xlabel="learning rate eta", ylabel="test accuracy (%)",
                title="Test accuracy at matched training loss")
        for lr in lrs:
            ax2.scatter([lr] * len(m[lr]["lambda_max"]),
                        [v * lr / 2 for v in m[lr]["lambda_max"]], s=14, color="C0")
        ax2.axhline(1.0, color="k", ls="--", lw=1, label="edge of stability (lambda_max = 2/eta)")
        ax2.set(xlabel="learning rate eta", ylabel="lambda_max x eta / 2",
                title="Distance to the stability bound (each run)")
        for ax in (ax1, ax2):
            lr_axis(ax)
        ax2.legend(fontsize=7)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "accuracy_and_stability_vs_lr"))
