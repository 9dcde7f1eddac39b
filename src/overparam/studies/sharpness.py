"""Flat vs sharp minima: batch size -> sharpness -> generalization (blueprint V-C, VI-B).

On the runs of the optimizers study (same configurations, so the same run ids and weights): the
top Hessian eigenvalue of the training loss (Lanczos, :func:`overparam.probes.hessian.
top_eigenvalues`, mean cross-entropy over the first ``hessian_samples`` training samples,
evaluation mode) for every configuration, and for the small- and large-batch pair the relative
increase of the training loss under Gaussian weight noise at seven magnitudes (five samples each,
:func:`overparam.probes.perturb.perturbation_sensitivity`). Claims tested (Keskar et al. 2017,
arXiv:1609.04836): the large-batch minimum is sharper (lambda_max and perturbation), and across
configurations batch size raises sharpness, which lowers test accuracy (Spearman correlations).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F

from overparam.probes.perturb import DEFAULT_SIGMAS
from overparam.seeds import derive_seed
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import lambda_max, pct, welch_str
from overparam.studies.optimizers import PAPER, QUICK, OptimizersConfig, optimizer_plan


@dataclass(frozen=True)
class SharpnessConfig(OptimizersConfig):
    small_batch: int = 32
    large_batch: int = 1024
    hessian_samples: int = 1000
    hessian_tol: float = 1e-4
    perturb_samples: int = 0  # training samples for the perturbation loss; 0: all
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    perturb_draws: int = 5


def sharper_verdict(large: list[float], small: list[float], large_batch: int, small_batch: int
                    ) -> Verdict:
    """The large-batch minimum has the larger top Hessian eigenvalue (Welch p < 0.05)."""
    l_txt, l_p = welch_str(large, small, scale=1.0, unit="")
    ratio = np.mean(large) / np.mean(small)
    return Verdict(
        f"the large-batch ({large_batch}) minimum is sharper than the small-batch "
        f"({small_batch}) one: top Hessian eigenvalue",
        bool(np.mean(large) > np.mean(small) and l_p < 0.05),
        f"lambda_max {np.mean(large):.3f} vs {np.mean(small):.3f} ({ratio:.2f}x); {l_txt}")


def joint_verdict(batch: list[float], lam: list[float], test: list[float]
                  ) -> tuple[Verdict, tuple[float, float, float, float]]:
    """Over SGD runs: Spearman rho(batch, lambda_max) > 0 and rho(lambda_max, test acc) < 0,
    both p < 0.05; the verdict and the four numbers."""
    from scipy.stats import spearmanr

    r_bl, p_bl = spearmanr(batch, lam)
    r_lt, p_lt = spearmanr(lam, test)
    return Verdict(
        "across SGD batch sizes, larger batches find sharper minima and sharper minima "
        "generalize worse",
        bool(r_bl > 0 and p_bl < 0.05 and r_lt < 0 and p_lt < 0.05),
        f"Spearman rho(batch, lambda_max)={r_bl:.3f} (p={p_bl:.3g}); rho(lambda_max, test acc)"
        f"={r_lt:.3f} (p={p_lt:.3g}); {len(lam)} runs"), (r_bl, p_bl, r_lt, p_lt)


class Sharpness(Study):
    name = "sharpness"
    Config = SharpnessConfig
    PRESETS = {"quick": SharpnessConfig(**dataclasses.asdict(QUICK)),
               "paper": SharpnessConfig(**dataclasses.asdict(PAPER))}

    def plan(self, cfg: SharpnessConfig) -> list[PlannedRun]:
        train_fields = {f.name for f in dataclasses.fields(OptimizersConfig)}
        base = OptimizersConfig(**{k: v for k, v in dataclasses.asdict(cfg).items()
                                   if k in train_fields})
        for b in (cfg.small_batch, cfg.large_batch):
            if b not in cfg.batch_sizes:
                from overparam.errors import ConfigError

                raise ConfigError("small_batch/large_batch", b,
                                  f"one of the batch sizes {cfg.batch_sizes}")
        return optimizer_plan(base)

    def measure(self, cfg: SharpnessConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        todo = [(p, s) for p in plan for s in p.seeds]
        with ctx.progress("sharpness: probes", len(todo)) as tick:
            for p, s in todo:
                self._probes(cfg, ctx, p, s, ctx.data(p.config.data))
                tick()

    def _probes(self, cfg: SharpnessConfig, ctx: StudyContext, p: PlannedRun, seed: int,
                data) -> tuple[dict, dict | None]:  # noqa: ANN001
        from overparam.probes.perturb import perturbation_sensitivity

        hess = lambda_max(ctx, p.config, seed, data, cfg.hessian_samples, cfg.hessian_tol)
        pert = None
        if p.tag("config") == "SGD" and p.tag("batch") in (cfg.small_batch, cfg.large_batch):
            n_p = cfg.perturb_samples or data.n_train
            pspec = {"probe": "perturbation", "samples": n_p, "sigmas": list(cfg.sigmas),
                     "draws": cfg.perturb_draws, "seed": seed}

            def perturb() -> dict:
                model = ctx.model(p.config, seed, data)
                r = perturbation_sensitivity(model, F.cross_entropy, data.x_train[:n_p],
                                             data.y_train[:n_p], sigmas=cfg.sigmas,
                                             n_samples=cfg.perturb_draws,
                                             seed=derive_seed(seed, "perturb") % (2 ** 31),
                                             batch_size=4096)
                return {"base_loss": r.base_loss, "mean": r.mean, "std": r.std}

            pert = ctx.probe(p.config, seed, pspec, perturb)
        return hess, pert

    def analyze(self, cfg: SharpnessConfig, ctx: StudyContext, preset: str) -> StudyReport:
        from overparam.report.figures import figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        lam: dict = {}
        pert: dict = {}
        test: dict = {}
        for p in plan:
            res = ctx.results(p)
            key = (p.tag("config"), p.tag("batch"))
            test[key] = [r["result"]["test_acc"] for r in res]
            hp = [self._probes(cfg, ctx, p, s, ctx.data(p.config.data)) for s in p.seeds]
            lam[key] = [h["lambda_max"] for h, _ in hp]
            if hp[0][1] is not None:
                pert[key] = [q for _, q in hp]
        small, large = ("SGD", cfg.small_batch), ("SGD", cfg.large_batch)
        rows = []
        for key in (small, large):
            rows.append({"model": f"{'small' if key == small else 'large'}-batch",
                         "batch": key[1], "test acc (%)": pct(summarize(test[key])),
                         "top Hessian eigenvalue": summarize(lam[key]).fmt(1, 3)})
        rep.tables.append(Table("Small vs large batch", ["model", "batch", "test acc (%)",
                                                         "top Hessian eigenvalue"], rows))
        rep.verdicts.append(sharper_verdict(lam[large], lam[small], cfg.large_batch,
                                            cfg.small_batch))
        prow, wins, sig = [], 0, 0
        for i, sigma in enumerate(cfg.sigmas):
            a = [q["mean"][i] for q in pert[small]]
            b = [q["mean"][i] for q in pert[large]]
            txt, pv = welch_str(b, a, scale=100.0, unit="pp")
            wins += int(np.mean(b) > np.mean(a))
            sig += int(np.mean(b) > np.mean(a) and pv < 0.05)
            prow.append({"sigma": sigma, "small-batch rel. increase (%)": summarize(a).fmt(100, 1),
                         "large-batch rel. increase (%)": summarize(b).fmt(100, 1),
                         "Welch (large - small)": txt})
        rep.tables.append(Table("Perturbation: relative training-loss increase",
                                ["sigma", "small-batch rel. increase (%)",
                                 "large-batch rel. increase (%)", "Welch (large - small)"], prow))
        rep.verdicts.append(Verdict(
            "the large-batch model is more sensitive to weight perturbations at every magnitude",
            wins == len(cfg.sigmas) and sig >= 1,
            f"large > small at {wins}/{len(cfg.sigmas)} magnitudes, significantly (p<0.05) at "
            f"{sig}; base losses {np.mean([q['base_loss'] for q in pert[small]]):.3g} vs "
            f"{np.mean([q['base_loss'] for q in pert[large]]):.3g}"))
        jrows, bx, lx, tx, pts = [], [], [], [], []
        for p in plan:
            key = (p.tag("config"), p.tag("batch"))
            jrows.append({"config": key[0], "batch": key[1],
                          "test acc (%)": pct(summarize(test[key])),
                          "top Hessian eigenvalue": summarize(lam[key]).fmt(1, 3)})
            pts.append((key, lam[key], test[key]))
            if key[0] == "SGD":
                bx += [key[1]] * len(lam[key])
                lx += lam[key]
                tx += test[key]
        rep.tables.append(Table("Joint: configuration -> sharpness -> test accuracy",
                                ["config", "batch", "test acc (%)", "top Hessian eigenvalue"],
                                jrows))
        verdict, (r_bl, p_bl, r_lt, p_lt) = joint_verdict(bx, lx, tx)
        rep.verdicts.append(verdict)
        rep.facts.update({"sh_supported": rep.verdicts[-1].supported,
                          "sh_rho_batch_lambda": float(r_bl), "sh_p_batch_lambda": float(p_bl),
                          "sh_rho_lambda_acc": float(r_lt), "sh_p_lambda_acc": float(p_lt),
                          "sh_lambda_small": float(np.mean(lam[small])),
                          "sh_lambda_large": float(np.mean(lam[large])),
                          "sh_acc_small": float(np.mean(test[small])),
                          "sh_acc_large": float(np.mean(test[large])), "sh_runs": len(lx)})
        fig, ax = figure()
        for key, ls, ts in pts:
            if key[0] == "GD":  # far below the others; reported in the joint table
                continue
            ax.scatter(ls, [100 * t for t in ts], label=f"{key[0]} {key[1]}", s=18)
        ax.set_xscale("log")
        ax.set_xlabel("top Hessian eigenvalue (log)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Sharpness vs generalization (SGD runs: Spearman rho={r_lt:.2f}; "
                     "full-batch GD in the table)", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "sharpness_vs_test_acc"))
        fig, ax = figure()
        for key, label in ((small, f"batch {cfg.small_batch}"), (large, f"batch {cfg.large_batch}")):
            means = np.array([[q["mean"][i] for i in range(len(cfg.sigmas))] for q in pert[key]])
            sums = [summarize(means[:, i]) for i in range(means.shape[1])]
            ax.errorbar(cfg.sigmas, [100 * s.mean for s in sums],
                        yerr=[[100 * (s.mean - s.ci_low) for s in sums],
                              [100 * (s.ci_high - s.mean) for s in sums]],
                        fmt="o-", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("symlog")
        ax.set_xlabel("noise magnitude sigma")
        ax.set_ylabel("relative training-loss increase (%)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "perturbation"))
        return rep
