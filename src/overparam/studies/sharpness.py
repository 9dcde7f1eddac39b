"""Flat vs sharp minima: batch size -> sharpness -> generalization (blueprint V-C, VI-B).

Question: does small-batch SGD find flatter minima than large-batch SGD, and do flatter minima
generalize better (Keskar et al. 2017, arXiv:1609.04836)?

Two arms per batch size. The blueprint's arm is the optimizers study's fixed-epoch run (same
configuration, same run id and weights). Near zero cross-entropy the Hessian scales with the
loss, so two models stopped at different training losses differ in lambda_max by about the
ratio of their losses whatever their geometry; the *matched-loss* arm therefore trains the same
configuration with :class:`~overparam.train.interventions.StopAtLoss`: every member freezes at
the training loss ``matched_loss`` (checked every ``matched_every`` steps), within the same epoch
budget. Comparisons of curvature and flatness are made at matched loss; the fixed-epoch ones are
reported beside them, with their training losses.

Measured on every run: the top Hessian eigenvalue of the training loss (Lanczos on the first
``hessian_samples`` training samples, evaluation mode). For the small- and large-batch pair:
the relative increase of the training loss under Gaussian weight noise at seven magnitudes (the
blueprint's measure, five draws each), the absolute increase (relative x base loss), the same
under filter-normalized noise (Li et al. 2018, arXiv:1712.09913), and Keskar's epsilon-sharpness
(L-BFGS-B in the box, epsilon 1e-3). A relative-increase verdict is flagged INCONCLUSIVE when
the two base losses differ by more than 2x: it divides by different bases. The joint analysis
(Spearman rho of batch vs lambda_max and of lambda_max vs test accuracy) uses the matched arms.

Quick preset: the optimizers study's runs plus 7 matched-loss arms x 3 seeds and the probes,
about 3 minutes on 2 CPU cores on top of that study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch.nn.functional as F

from overparam.probes.perturb import DEFAULT_SIGMAS
from overparam.seeds import derive_seed
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import lambda_max, pct
from overparam.studies.optimizers import PAPER, QUICK, OptimizersConfig, optimizer_plan
from overparam.studies.verdicts import Arm, acc_arm, loss_arm, welch_test


@dataclass(frozen=True)
class SharpnessConfig(OptimizersConfig):
    small_batch: int = 32
    large_batch: int = 1024
    matched_loss: float = 0.05  # the common training-loss target of the matched arms
    matched_every: int = 5  # steps between checks of the training loss
    loss_agreement: float = 0.10  # matched arms' stop losses must agree within 10%
    hessian_samples: int = 1000
    hessian_tol: float = 1e-4
    perturb_samples: int = 0  # training samples for the perturbation loss; 0: all
    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    perturb_draws: int = 5
    epsilon: float = 1e-3  # Keskar et al.'s box size


# -- verdicts: plain numbers in, a verdict out ----------------------------------------------------
def agreement_arm(small: list[float], large: list[float], tol: float) -> Arm:
    """The two arms' training losses agree within ``tol`` (relative to the larger)."""
    a, b = float(np.mean(small)), float(np.mean(large))
    gap = abs(a - b) / max(a, b)
    return Arm("matched training losses", f"agree within {100 * tol:g}%", gap <= tol,
               f"{a:.4g} vs {b:.4g} ({100 * gap:.1f}% apart)")


def sharper_verdict(large: list[float], small: list[float], large_batch: int, small_batch: int,
                    arms: tuple[Arm, ...], losses: tuple[float, float], matched: bool
                    ) -> Verdict:
    """The large-batch minimum has the larger top Hessian eigenvalue (Welch)."""
    w = welch_test(large, small, scale=1.0, unit="")
    kind = "at matched training loss" if matched else "at the fixed epoch budget (blueprint)"
    return Verdict(
        f"the large-batch ({large_batch}) minimum is sharper than the small-batch "
        f"({small_batch}) one, {kind}: top Hessian eigenvalue",
        f"lambda_max {np.mean(large):.3f} vs {np.mean(small):.3f} "
        f"({np.mean(large) / np.mean(small):.2f}x) at training losses {losses[1]:.3g} vs "
        f"{losses[0]:.3g} ({losses[1] / losses[0]:.2f}x); {w.text}",
        criteria=w.diff > 0, p=w.p, test="Welch",
        claim_id="sharper_" + ("matched" if matched else "fixed"),
        blueprint="lambda_max 2.24 vs 0.19 (batch 1024 vs 32, CIFAR-10)",
        ours=f"{np.mean(large):.3g} vs {np.mean(small):.3g}; diff {w.ours}", effect=w.effect,
        arms=arms,
        controls="matched training loss" if matched else "")


def perturbation_verdict(measure: str, small: list[list[float]], large: list[list[float]],
                         sigmas: tuple[float, ...], arms: tuple[Arm, ...], matched: bool,
                         scale: float = 100.0, unit: str = "pp") -> tuple[Verdict, list[str]]:
    """The large-batch model's loss rises more under noise at every magnitude: per sigma a
    Welch test of large - small; all must hold (intersection-union: p = the largest p).
    ``small``/``large``: per seed, the increase at each sigma."""
    tests = [welch_test([q[i] for q in large], [q[i] for q in small], scale, unit)
             for i in range(len(sigmas))]
    wins = sum(t.diff > 0 for t in tests)
    ps = [t.p for t in tests]
    kind = "at matched training loss" if matched else "at the fixed epoch budget (blueprint)"
    return Verdict(
        f"the large-batch model is more sensitive to weight perturbations at every magnitude "
        f"({measure}, {kind})", f"large > small at {wins}/{len(sigmas)} magnitudes",
        criteria=wins == len(sigmas), p=None if None in ps else max(ps),
        test="Welch per magnitude (IUT)",
        claim_id=f"perturbation_{measure.split()[0]}_{'matched' if matched else 'fixed'}",
        blueprint="1,932% vs 158% loss increase (large vs small, CIFAR-10)",
        ours=f"{wins}/{len(sigmas)} magnitudes", arms=arms,
        controls="matched training loss" if matched else ""), [t.text for t in tests]


def epsilon_verdict(large: list[float], small: list[float], arms: tuple[Arm, ...]) -> Verdict:
    w = welch_test(large, small, scale=1.0, unit="")
    return Verdict("the large-batch minimum is sharper by Keskar's epsilon-sharpness, at matched "
                   "training loss", f"{np.mean(large):.3g} vs {np.mean(small):.3g}; {w.text}",
                   criteria=w.diff > 0, p=w.p, test="Welch", claim_id="epsilon_sharpness_matched",
                   blueprint="(Keskar et al. 2017: large batch sharper)",
                   ours=f"{np.mean(large):.3g} vs {np.mean(small):.3g}; diff {w.ours}",
                   effect=w.effect,
                   arms=arms, controls="matched training loss")


def joint_verdict(batch: list[float], lam: list[float], test: list[float],
                  arms: tuple[Arm, ...] = ()) -> tuple[Verdict, tuple[float, float, float, float]]:
    """Over SGD runs: Spearman rho(batch, lambda_max) > 0 and rho(lambda_max, test acc) < 0
    (intersection-union: p = the larger p); the verdict and the four numbers."""
    from scipy.stats import spearmanr

    r_bl, p_bl = spearmanr(batch, lam)
    r_lt, p_lt = spearmanr(lam, test)
    return Verdict(
        "across SGD batch sizes, larger batches find sharper minima and sharper minima "
        "generalize worse (matched training loss)",
        f"Spearman rho(batch, lambda_max)={r_bl:.3f} (p={p_bl:.3g}); rho(lambda_max, test acc)"
        f"={r_lt:.3f} (p={p_lt:.3g}); {len(lam)} runs",
        criteria=bool(r_bl > 0 and r_lt < 0), p=float(max(p_bl, p_lt)), test="Spearman (IUT)",
        claim_id="batch_sharpness_accuracy", blueprint="joint analysis (contributions 2-3)",
        ours=f"rho={r_bl:.2f}, {r_lt:.2f}", arms=arms, controls="matched training loss"
    ), (float(r_bl), float(p_bl), float(r_lt), float(p_lt))


class Sharpness(Study):
    name = "sharpness"
    CAPTIONS = {
        "sharpness_vs_test_acc": (
            "Top Hessian eigenvalue against test accuracy, each run stopped at the same "
            "training loss, colored by batch size (Keskar et al. 2017's comparison at matched "
            "loss)."
        ),
        "perturbation": (
            "Relative training-loss increase under Gaussian weight noise of magnitude sigma for "
            "the small- and large-batch networks (mean over seeds, 95% CI), left at matched "
            "training loss, right after the blueprint's fixed epochs."
        ),
    }
    Config = SharpnessConfig
    PRESETS = {"quick": SharpnessConfig(**dataclasses.asdict(QUICK)),
               "paper": SharpnessConfig(**dataclasses.asdict(PAPER))}

    def plan(self, cfg: SharpnessConfig) -> list[PlannedRun]:
        from overparam.errors import ConfigError
        from overparam.train.interventions import StopAtLoss

        train_fields = {f.name for f in dataclasses.fields(OptimizersConfig)}
        base = OptimizersConfig(**{k: v for k, v in dataclasses.asdict(cfg).items()
                                   if k in train_fields})
        for b in (cfg.small_batch, cfg.large_batch):
            if b not in cfg.batch_sizes:
                raise ConfigError("small_batch/large_batch", b,
                                  f"one of the batch sizes {cfg.batch_sizes}")
        fixed = optimizer_plan(base)
        stop = StopAtLoss(target=cfg.matched_loss, every=cfg.matched_every)
        matched = [PlannedRun(replace(p.config, interventions=(stop,)), p.seeds,
                              (("config", "SGD matched"), *p.tags[1:]))
                   for p in fixed if p.tag("config") == "SGD"]
        return fixed + matched

    def measure(self, cfg: SharpnessConfig, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        todo = [(p, s) for p in plan for s in p.seeds]
        with ctx.progress("sharpness: probes", len(todo)) as tick:
            for p, s in todo:
                self._probes(cfg, ctx, p, s)
                tick()

    def _probes(self, cfg: SharpnessConfig, ctx: StudyContext, p: PlannedRun, seed: int
                ) -> dict[str, Any]:
        from overparam.probes.perturb import epsilon_sharpness, perturbation_sensitivity

        data = ctx.data(p.config.data)
        out = {"lambda_max": lambda_max(ctx, p.config, seed, data, cfg.hessian_samples,
                                        cfg.hessian_tol)["lambda_max"]}
        if not (p.tag("config", "").startswith("SGD")
                and p.tag("batch") in (cfg.small_batch, cfg.large_batch)):
            return out
        n_p = cfg.perturb_samples or data.n_train
        x, y = data.x_train[:n_p], data.y_train[:n_p]
        for normalized in (False, True):
            spec = {"probe": "perturbation", "samples": n_p, "sigmas": list(cfg.sigmas),
                    "draws": cfg.perturb_draws, "seed": seed}
            if normalized:
                spec["filter_normalized"] = True

            def perturb(normalized: bool = normalized) -> dict:
                r = perturbation_sensitivity(ctx.model(p.config, seed, data), F.cross_entropy,
                                             x, y, sigmas=cfg.sigmas, n_samples=cfg.perturb_draws,
                                             seed=derive_seed(seed, "perturb") % (2 ** 31),
                                             batch_size=4096, filter_normalized=normalized)
                return {"base_loss": r.base_loss, "mean": r.mean, "std": r.std}

            out["filter" if normalized else "gaussian"] = ctx.probe(p.config, seed, spec, perturb)
        espec = {"probe": "epsilon_sharpness", "samples": n_p, "epsilon": cfg.epsilon,
                 "seed": seed}
        out["epsilon"] = ctx.probe(p.config, seed, espec, lambda: {"value": epsilon_sharpness(
            ctx.model(p.config, seed, data), F.cross_entropy, x, y, epsilon=cfg.epsilon,
            batch_size=4096, seed=derive_seed(seed, "epsilon") % (2 ** 31))})["value"]
        return out

    def analyze(self, cfg: SharpnessConfig, ctx: StudyContext, preset: str) -> StudyReport:
        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        m: dict[tuple[str, Any], dict[str, Any]] = {}  # per (config, batch): per-seed numbers
        for p in plan:
            res = [r["result"] for r in ctx.results(p)]
            probes = [self._probes(cfg, ctx, p, s) for s in p.seeds]
            m[(p.tag("config"), p.tag("batch"))] = {
                "test": [r["test_acc"] for r in res], "train": [r["train_acc"] for r in res],
                "loss": [r["train_loss"] for r in res],
                "met": [bool(r.get("target_met", True)) for r in res], "probes": probes,
                "lam": [q["lambda_max"] for q in probes]}
        for matched in (True, False):
            self._pair(cfg, rep, m, matched)
        self._joint(cfg, rep, m)
        self._figures(cfg, ctx, rep, m)
        return rep

    def _arms(self, cfg: SharpnessConfig, m: dict, matched: bool) -> tuple[Arm, ...]:
        small, large = self._keys(cfg, matched)
        if matched:
            return (loss_arm(f"SGD {cfg.small_batch} (matched)", m[small]["met"],
                             m[small]["loss"], cfg.matched_loss),
                    loss_arm(f"SGD {cfg.large_batch} (matched)", m[large]["met"],
                             m[large]["loss"], cfg.matched_loss),
                    agreement_arm(m[small]["loss"], m[large]["loss"], cfg.loss_agreement))
        return (acc_arm(f"SGD {cfg.small_batch}", m[small]["train"], cfg.target_acc),
                acc_arm(f"SGD {cfg.large_batch}", m[large]["train"], cfg.target_acc))

    def _keys(self, cfg: SharpnessConfig, matched: bool) -> tuple[tuple, tuple]:
        name = "SGD matched" if matched else "SGD"
        return (name, cfg.small_batch), (name, cfg.large_batch)

    def _pair(self, cfg: SharpnessConfig, rep: StudyReport, m: dict, matched: bool) -> None:
        """Small vs large batch: lambda_max, perturbation (relative, absolute, filter-normalized),
        epsilon-sharpness; tables and verdicts."""
        small, large = self._keys(cfg, matched)
        arms = self._arms(cfg, m, matched)
        losses = (float(np.mean(m[small]["loss"])), float(np.mean(m[large]["loss"])))
        label = "matched training loss" if matched else "fixed epoch budget (blueprint)"
        rep.tables.append(Table(f"Small vs large batch, {label}", [
            "model", "batch", "train loss", "test acc (%)", "top Hessian eigenvalue",
            "lambda_max / train loss", "epsilon-sharpness"], [
            {"model": f"{'small' if key == small else 'large'}-batch", "batch": key[1],
             "train loss": summarize(m[key]["loss"]).fmt(1, 4),
             "test acc (%)": pct(summarize(m[key]["test"])),
             "top Hessian eigenvalue": summarize(m[key]["lam"]).fmt(1, 3),
             "lambda_max / train loss": f"{np.mean(m[key]['lam']) / np.mean(m[key]['loss']):.4g}",
             "epsilon-sharpness": summarize([q["epsilon"] for q in m[key]["probes"]]).fmt(1, 4)}
            for key in (small, large)]))
        rep.verdicts.append(sharper_verdict(m[large]["lam"], m[small]["lam"], cfg.large_batch,
                                            cfg.small_batch, arms, losses, matched))
        gauss = {k: [q["gaussian"] for q in m[k]["probes"]] for k in (small, large)}
        rel = {k: [q["mean"] for q in v] for k, v in gauss.items()}
        absolute = {k: [[r * q["base_loss"] for r in q["mean"]] for q in v]
                    for k, v in gauss.items()}
        filt = {k: [q["filter"]["mean"] for q in m[k]["probes"]] for k in (small, large)}
        base = {k: float(np.mean([q["base_loss"] for q in v])) for k, v in gauss.items()}
        ratio = max(base.values()) / min(base.values())
        flag = Arm("comparable base losses", "within 2x", ratio <= 2.0,
                   f"{base[small]:.3g} vs {base[large]:.3g} ({ratio:.1f}x)")
        v_rel, t_rel = perturbation_verdict("relative increase", rel[small], rel[large],
                                            cfg.sigmas, (*arms, flag), matched)
        rep.verdicts.append(v_rel)
        rows = []
        for i, sigma in enumerate(cfg.sigmas):
            row = {"sigma": sigma, "Welch, relative (large - small)": t_rel[i]}
            for name, d, sc in (("relative (%)", rel, 100), ("absolute", absolute, 1),
                                ("filter-normalized relative (%)", filt, 100)):
                for k in (small, large):
                    row[f"{'small' if k == small else 'large'}: {name}"] = summarize(
                        [q[i] for q in d[k]]).fmt(sc, 3 if sc == 1 else 1)
            rows.append(row)
        cols = ["sigma"] + [f"{w}: {n}" for n in ("relative (%)", "absolute",
                                                  "filter-normalized relative (%)")
                            for w in ("small", "large")] + ["Welch, relative (large - small)"]
        rep.tables.append(Table(f"Perturbation of the training loss, {label}", cols, rows))
        if matched:
            v_abs, _ = perturbation_verdict("absolute increase", absolute[small],
                                            absolute[large], cfg.sigmas, arms, matched,
                                            scale=1.0, unit="")
            rep.verdicts.append(v_abs)
            rep.verdicts.append(epsilon_verdict([q["epsilon"] for q in m[large]["probes"]],
                                                [q["epsilon"] for q in m[small]["probes"]], arms))

    def _joint(self, cfg: SharpnessConfig, rep: StudyReport, m: dict) -> None:
        bx, lx, tx, arms, rows = [], [], [], [], []
        for b in cfg.batch_sizes:
            for name in ("SGD", "SGD matched"):
                d = m[(name, b)]
                rows.append({"arm": "matched loss" if name != "SGD" else "fixed epochs",
                             "batch": b, "train loss": summarize(d["loss"]).fmt(1, 4),
                             "test acc (%)": pct(summarize(d["test"])),
                             "top Hessian eigenvalue": summarize(d["lam"]).fmt(1, 3)})
            d = m[("SGD matched", b)]
            bx += [b] * len(d["lam"])
            lx += d["lam"]
            tx += d["test"]
            arms.append(loss_arm(f"SGD {b} (matched)", d["met"], d["loss"], cfg.matched_loss))
        rep.tables.append(Table("Joint: batch size -> sharpness -> test accuracy",
                                ["arm", "batch", "train loss", "test acc (%)",
                                 "top Hessian eigenvalue"], rows))
        verdict, (r_bl, p_bl, r_lt, p_lt) = joint_verdict(bx, lx, tx, tuple(arms))
        rep.verdicts.append(verdict)
        small, large = ("SGD matched", cfg.small_batch), ("SGD matched", cfg.large_batch)
        rep.facts.update({"sh_verdict": verdict.claim_id, "sh_rho_batch_lambda": r_bl,
                          "sh_p_batch_lambda": p_bl, "sh_rho_lambda_acc": r_lt,
                          "sh_p_lambda_acc": p_lt,
                          "sh_lambda_small": float(np.mean(m[small]["lam"])),
                          "sh_lambda_large": float(np.mean(m[large]["lam"])),
                          "sh_acc_small": float(np.mean(m[small]["test"])),
                          "sh_acc_large": float(np.mean(m[large]["test"])), "sh_runs": len(lx)})

    def _figures(self, cfg: SharpnessConfig, ctx: StudyContext, rep: StudyReport, m: dict
                 ) -> None:
        from overparam.report.figures import figure, save

        fig, ax = figure()
        for b in cfg.batch_sizes:
            d = m[("SGD matched", b)]
            ax.scatter(d["lam"], [100 * t for t in d["test"]], label=f"SGD {b}", s=18)
        ax.set_xscale("log")
        ax.set_xlabel("top Hessian eigenvalue at matched training loss (log)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Sharpness vs generalization, SGD stopped at training loss "
                     f"{cfg.matched_loss:g}", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "sharpness_vs_test_acc"))
        fig, axes = figure(10, 4, ncols=2)
        for ax, matched in zip(axes, (True, False)):
            lowest = 0.0
            for key, label in zip(self._keys(cfg, matched), (f"batch {cfg.small_batch}",
                                                              f"batch {cfg.large_batch}")):
                means = np.array([q["gaussian"]["mean"] for q in m[key]["probes"]])
                sums = [summarize(means[:, i]) for i in range(means.shape[1])]
                ax.errorbar(cfg.sigmas, [100 * s.mean for s in sums],
                            yerr=[[100 * (s.mean - s.ci_low) for s in sums],
                                  [100 * (s.ci_high - s.mean) for s in sums]],
                            fmt="o-", capsize=3, label=label)
                lowest = min(lowest, *(100 * s.ci_low for s in sums))
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=1.0)
            # the increase is positive but for noise: show below 0 only as far as an interval
            ax.set_ylim(bottom=1.3 * lowest if lowest < -0.5 else -0.5)
            ax.set_xlabel("noise magnitude sigma")
            ax.set_ylabel("relative training-loss increase (%)")
            ax.set_title("matched training loss" if matched else "fixed epochs (blueprint)",
                         fontsize=10)
            ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "perturbation"))
