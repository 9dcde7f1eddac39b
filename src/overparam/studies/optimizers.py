"""The optimizer's implicit regularization: batch size, SGD vs Adam vs full-batch GD.

The blueprint's section V-B: one architecture trained to the same epoch budget with SGD
(momentum 0.9, cosine) at batch sizes 32..2048 with the learning rates of its table (0.01 at 128,
"scaled linearly"), Adam (1e-3 at batch 128) and full-batch gradient descent. Claims tested:
smaller batches give higher test accuracy at equal (100%) training accuracy (Keskar et al. 2017,
arXiv:1609.04836); full-batch GD is worst; Adam is comparable to small-batch SGD. Trend test:
Spearman's rank correlation of test accuracy with batch size over all SGD runs, and Welch's test
of the smallest against the largest batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct, summary_of, welch_str
from overparam.studies.settings import Training

BLUEPRINT_LRS = (0.005, 0.0075, 0.01, 0.02, 0.04, 0.08, 0.10)
BLUEPRINT_BATCHES = (32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class OptimizersConfig(Training):
    epochs: int = 250
    model: str = "mlp_w128"
    batch_sizes: tuple[int, ...] = BLUEPRINT_BATCHES
    # one LR per batch size (the blueprint's table); empty: lr at base_batch by lr_scaling
    lrs: tuple[float, ...] = BLUEPRINT_LRS
    adam_lr: float = 1e-3
    adam_batch: int = 128
    gd_lr: float = 1e-3
    gd_momentum: float = 0.0
    gd_n_train: int = 0  # 0: the whole training set


QUICK = OptimizersConfig()
# The blueprint (V-B, Appendix A): CIFAR-10, its CNN, 80 epochs, 5 seeds, the table's LRs, Adam
# 1e-3 at 128, GD* at LR 0.001 on 5,000 samples. The CNN's channel count is missing from the
# text; c = 32 (814,122 parameters, the first width that interpolates in its table) is assumed.
PAPER = OptimizersConfig(data="cifar10", model="cnn_c32", epochs=80, seeds=5, gd_n_train=5000)


def sgd_optim(cfg: OptimizersConfig, i: int) -> OptimConfig:
    """SGD at the i-th batch size: the table's LR as given, or ``lr`` scaled by the rule."""
    if cfg.lrs:
        return OptimConfig(lr=cfg.lrs[i], momentum=cfg.momentum, lr_scaling="none")
    return cfg.optim_config()


def sgd_lr(cfg: OptimizersConfig, i: int) -> float:
    return sgd_optim(cfg, i).effective_lr(cfg.batch_sizes[i])


def optimizer_plan(cfg: OptimizersConfig) -> list[PlannedRun]:
    """SGD at each batch size, Adam, full-batch GD: one planned run each."""
    if cfg.lrs and len(cfg.lrs) != len(cfg.batch_sizes):
        from overparam.errors import ConfigError

        raise ConfigError("lrs", cfg.lrs, f"one learning rate per batch size "
                          f"({len(cfg.batch_sizes)}), or empty for linear scaling")
    seeds = cfg.seed_ids
    runs = []
    for i, b in enumerate(cfg.batch_sizes):
        runs.append(PlannedRun(cfg.train_config(cfg.model, batch_size=b, optim=sgd_optim(cfg, i)),
                               seeds, (("config", "SGD"), ("batch", b), ("lr", sgd_lr(cfg, i)))))
    runs.append(PlannedRun(
        cfg.train_config(cfg.model, batch_size=cfg.adam_batch,
                         optim=OptimConfig(name="adam", lr=cfg.adam_lr, lr_scaling="none")),
        seeds, (("config", "Adam"), ("batch", cfg.adam_batch), ("lr", cfg.adam_lr))))
    runs.append(PlannedRun(
        cfg.train_config(cfg.model, batch_size=128,
                         data=cfg.data_config(n_train=cfg.gd_n_train or cfg.n_train or None),
                         optim=OptimConfig(name="gd", lr=cfg.gd_lr, momentum=cfg.gd_momentum,
                                           lr_scaling="none")),
        seeds, (("config", "GD"), ("batch", "full"), ("lr", cfg.gd_lr))))
    return runs


# -- verdicts: plain numbers in, a verdict out ----------------------------------------------------
Arm = tuple[list[float], list[float]]  # per-seed (test accuracies, train accuracies)


def batch_size_verdict(sgd_all: list[tuple[int, Arm]]) -> Verdict:
    """Smaller batches generalize better at equal (100%) training accuracy: over the batch sizes
    whose runs interpolate (mean train accuracy >= 99.9%), Spearman rho(batch, test acc) < 0 and
    the smallest beats the largest (Welch), both at p < 0.05; the full range is reported too."""
    from scipy.stats import spearmanr

    sgd = [(b, v) for b, v in sgd_all if np.mean(v[1]) >= 0.999]
    xs_all = [b for b, (te, _) in sgd_all for _ in te]
    ys_all = [a for _, (te, _) in sgd_all for a in te]
    rho_all, p_all = spearmanr(xs_all, ys_all)
    full_txt = (f"over all {len(sgd_all)} batch sizes: Spearman rho={rho_all:.3f} "
                f"(p={p_all:.3g})")
    claim = "smaller batches give higher test accuracy at equal training accuracy"
    if len(sgd) < 3:
        return Verdict(claim, None, f"fewer than 3 batch sizes reach 100% training accuracy; "
                                    f"{full_txt}")
    xs = [b for b, (te, _) in sgd for _ in te]
    ys = [a for _, (te, _) in sgd for a in te]
    rho, p_rho = spearmanr(xs, ys)
    small, large = sgd[0], sgd[-1]
    w_txt, w_p = welch_str(small[1][0], large[1][0])
    return Verdict(
        claim, bool(rho < 0 and p_rho < 0.05 and w_p < 0.05
                    and np.mean(small[1][0]) > np.mean(large[1][0])),
        f"over the {len(sgd)} batch sizes that reach 100% training accuracy "
        f"({sgd[0][0]}-{sgd[-1][0]}): Spearman rho(batch, test acc)={rho:.3f} "
        f"(p={p_rho:.3g}, {len(xs)} runs); batch {small[0]} vs {large[0]}: {w_txt}; "
        f"{full_txt}")


def gd_worst_verdict(gd: list[float], others: dict[tuple[str, Any], list[float]]) -> Verdict:
    """Full-batch GD's test accuracy is below the worst other configuration's (Welch p<0.05)."""
    worst_key = min(others, key=lambda k: np.mean(others[k]))
    g_txt, g_p = welch_str(gd, others[worst_key])
    return Verdict(
        "full-batch GD generalizes worst",
        bool(np.mean(gd) < np.mean(others[worst_key]) and g_p < 0.05),
        f"GD test acc {100 * np.mean(gd):.2f}% vs the worst other configuration "
        f"({worst_key[0]} batch {worst_key[1]}, {100 * np.mean(others[worst_key]):.2f}%): "
        f"{g_txt}")


def adam_comparable_verdict(adam: list[float], sgd: list[float], batch: int) -> Verdict:
    a_txt, a_p = welch_str(adam, sgd)
    return Verdict(f"Adam is comparable to small-batch SGD (batch {batch})", bool(a_p >= 0.05),
                   f"Adam vs SGD-{batch}: {a_txt} (comparable = no significant difference)")


class Optimizers(Study):
    name = "optimizers"
    Config = OptimizersConfig
    PRESETS = {"quick": QUICK, "paper": PAPER}

    def plan(self, cfg: OptimizersConfig) -> list[PlannedRun]:
        return optimizer_plan(cfg)

    def analyze(self, cfg: OptimizersConfig, ctx: StudyContext, preset: str) -> StudyReport:
        from overparam.report.figures import band, figure, save

        rep = StudyReport(self.name, preset)
        plan = self.plan(cfg)
        rows, acc = [], {}
        for p in plan:
            res = ctx.results(p)
            tr, te = summary_of(res, "train_acc"), summary_of(res, "test_acc")
            gap = summarize([r["result"]["train_acc"] - r["result"]["test_acc"] for r in res])
            batch = p.tag("batch") if p.tag("batch") != "full" else (
                f"full ({res[0]['result'].get('batch_size')})")
            rows.append({"config": p.tag("config"), "batch": batch, "LR": p.tag("lr"),
                         "train acc (%)": pct(tr), "test acc (%)": pct(te),
                         "gen gap (pp)": pct(gap)})
            acc[(p.tag("config"), p.tag("batch"))] = (
                [r["result"]["test_acc"] for r in res], [r["result"]["train_acc"] for r in res])
        rep.tables.append(Table(f"Optimizers on {cfg.data}, {cfg.model}, {cfg.epochs} epochs",
                                ["config", "batch", "LR", "train acc (%)", "test acc (%)",
                                 "gen gap (pp)"], rows))
        sgd_all = [(b, acc[("SGD", b)]) for b in cfg.batch_sizes]
        rep.verdicts.append(batch_size_verdict(sgd_all))
        gd = acc[("GD", "full")][0]
        rep.verdicts.append(gd_worst_verdict(gd, {k: v[0] for k, v in acc.items()
                                                  if k != ("GD", "full")}))
        rep.verdicts.append(adam_comparable_verdict(acc[("Adam", cfg.adam_batch)][0],
                                                    sgd_all[0][1][0], sgd_all[0][0]))
        fig, ax = figure()
        sums = [summarize(te) for _, (te, _) in sgd_all]
        band(ax, list(cfg.batch_sizes), [100 * s.mean for s in sums],
             [100 * s.ci_low for s in sums], [100 * s.ci_high for s in sums], "SGD")
        s = summarize(acc[("Adam", cfg.adam_batch)][0])
        ax.errorbar([cfg.adam_batch], [100 * s.mean], yerr=[[100 * (s.mean - s.ci_low)],
                                                             [100 * (s.ci_high - s.mean)]],
                    fmt="s", capsize=3, label=f"Adam (batch {cfg.adam_batch})")
        g = summarize(acc[("GD", "full")][0])
        lowest = min(min(te) for _, (te, _) in sgd_all)
        if g.mean >= lowest - 0.1:
            ax.errorbar([cfg.batch_sizes[-1] * 1.5], [100 * g.mean],
                        yerr=[[100 * (g.mean - g.ci_low)], [100 * (g.ci_high - g.mean)]],
                        fmt="v", capsize=3, label="full-batch GD")
        else:  # far below: a point would flatten every other difference
            ax.plot([], [], "v", label=f"full-batch GD: {100 * g.mean:.1f}% (off scale)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{cfg.model} on {cfg.data}, {cfg.epochs} epochs, {cfg.seeds} seeds (95% CI)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "test_acc_vs_batch"))
        rep.notes.append(f"Learning rates: {', '.join(f'{b}: {sgd_lr(cfg, i):g}' for i, b in enumerate(cfg.batch_sizes))}"
                         f" ({'the blueprint table' if cfg.lrs else 'linear scaling'}).")
        return rep
