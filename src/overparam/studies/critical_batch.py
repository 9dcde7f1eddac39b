"""Critical batch size: where does a bigger mini-batch stop buying fewer steps?

Question: mini-batch SGD at its best step size needs ~1/m as many iterations as batch size 1
up to a critical batch size, and about as many as full gradient descent beyond it. Is that knee
where theory puts it?

(a) Kernel least squares (Ma, Bassily & Belkin 2018, arXiv:1712.06559): interpolation of
one-hot labels by SGD in a Gaussian kernel's RKHS on ``kernel_n`` MNIST-1D samples, bandwidth
``bandwidths`` x the median pairwise distance (three bandwidths put m* ~ 130, 22 and 7 on the
ladder); the predicted critical batch ``m* = beta / (lambda_1 - lambda_k) + 1`` and the optimal
step ``eta*(m)`` are derived in :mod:`overparam.theory.critical_batch` (the derivation agrees with
the paper). SGD (indices with replacement) at ``eta*(m)`` for m = 1, 2, 4, ... 1024 counts the
iterations to ``kernel_tol`` x the initial loss; full-batch GD at the largest batch's step is
the saturation reference. The measured knee is the break of a two-segment fit of
log T on log m (slope -1, then a free slope in [-1, 0]); the m after which a doubling first
speeds up less than 1.5x is reported beside it. Seeds are problem instances: each draws its own
training subset and its own sampling stream. Nothing is trained; results are cached in the store.

(b) MNIST-1D MLP (McCandlish, Kaplan, Amodei et al. 2018, arXiv:1812.06162): plain SGD
(constant step, no momentum) at batch sizes 8 .. 1024; the steps to training loss
``target_loss`` (StopAtLoss; the crossing interpolated in log loss between checks) at the best
learning rate of a grid per batch size: a factor-2 grid around ``lr (B / base_batch)^0.5``,
extended until the best rate has a slower (or diverging) neighbour on both sides or
``lr_extensions`` run out -- a batch size whose best rate is not bracketed misses its target.
The same runs give the steps to the earlier losses ``levels``. ``S = S_min (1 + B_crit / B)``
is fitted per seed and level. The gradient noise scale ``B_simple = tr(Sigma) / ||G||^2`` is
measured from exact per-sample gradients (``torch.func.vmap(grad)``) over the whole training set
at initialization, on reference runs (batch ``noise_batch``) stopped at each level, and -- for
the comparison with ``B_crit`` -- on the best runs of every batch size at the target loss
(``mean tr(Sigma) / mean ||G||^2`` over them: one SGD iterate is a noisy point, McCandlish et al.
average over steps).

Quick preset: about 2 minutes on 2 busy CPU cores (42 s of CPU time; both parts), 3 seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from overparam.config import OptimConfig
from overparam.errors import ConfigError
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.settings import Training
from overparam.studies.verdicts import Arm, tost_test, welch_test

LADDER = tuple(2 ** i for i in range(11))  # 1 .. 1024


@dataclass(frozen=True)
class CriticalBatchConfig(Training):
    # (a) kernel least squares
    kernel_data: str = "mnist1d"
    kernel_n: int = 500
    bandwidths: tuple[float, ...] = (0.25, 0.35, 0.5)  # x the median pairwise distance
    kernel_batches: tuple[int, ...] = LADDER
    kernel_tol: float = 1e-3
    kernel_max_iter: int = 100000
    knee_margin: float = 2.0  # measured knee vs m*: equivalent within this factor (TOST)
    slope_margin: float = 0.1  # linear scaling: log-log slope within -1 +- this (TOST)
    gd_margin: float = 1.25  # saturation: T(largest m) / T(GD) within this factor (TOST)
    # (b) MLP on MNIST-1D
    model: str = "mlp_w64_d3"
    batch_sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)
    lr: float = 0.4  # centre of the learning-rate grid at base_batch
    base_batch: int = 64
    lr_exponent: float = 0.5  # grid centre lr * (B / base_batch)^lr_exponent
    lr_factor: float = 2.0
    lr_extensions: int = 2  # grid points beyond the first three, per batch size
    momentum: float = 0.0
    schedule: str = "constant"
    lr_scaling: str = "none"
    target_loss: float = 1.0
    levels: tuple[float, ...] = (1.6, 1.3)  # earlier training losses (above the target)
    budget_samples: int = 240000  # step budget: this many samples (60 epochs), clamped to
    min_steps: int = 500  # [min_steps, max_steps]; later grid points get at most
    max_steps: int = 8000  # budget_mult x the best steps so far
    budget_mult: float = 2.0
    check_samples: int = 1024  # training loss checked every ~this many samples (<= 32 steps)
    noise_batch: int = 64  # reference runs for B_simple along training
    noise_margin: float = 3.0  # B_crit vs B_simple: equivalent within this factor (TOST)
    fit_tolerance: float = 0.25  # the steps model fits every batch size within 25%

    def check(self) -> None:
        super().check()
        for name in ("kernel_n", "kernel_max_iter", "lr_extensions", "budget_samples",
                     "min_steps", "max_steps", "check_samples", "noise_batch"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= (0 if name == "lr_extensions" else 1)):
                raise ConfigError(name, v, "a positive integer")
        if self.kernel_data not in ("mnist1d", "digits"):
            raise ConfigError("kernel_data", self.kernel_data, "mnist1d or digits (bundled "
                              "classification sets)")
        if self.min_steps > self.max_steps:
            raise ConfigError("min_steps", self.min_steps, f"at most max_steps={self.max_steps}")
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise ConfigError("bandwidths", self.bandwidths, "positive multiples of the median "
                              "distance")
        batches = self.kernel_batches
        if len(batches) < 4 or batches[0] != 1 or any(b != 2 * a for a, b in
                                                        zip(batches, batches[1:])):
            raise ConfigError("kernel_batches", batches, "a doubling ladder from 1 (>= 4 sizes)")
        if len(self.batch_sizes) < 3 or sorted(set(self.batch_sizes)) != list(self.batch_sizes) \
                or min(self.batch_sizes) < 1:
            raise ConfigError("batch_sizes", self.batch_sizes, "at least three increasing sizes")
        if not 0 < self.kernel_tol < 1:
            raise ConfigError("kernel_tol", self.kernel_tol, "a fraction in (0, 1)")
        if not self.target_loss > 0 or any(v <= self.target_loss for v in self.levels):
            raise ConfigError("levels", self.levels, f"losses above target_loss="
                              f"{self.target_loss}")
        for name in ("knee_margin", "gd_margin", "noise_margin", "lr_factor"):
            if not getattr(self, name) > 1:
                raise ConfigError(name, getattr(self, name), "a factor > 1")
        if not (self.slope_margin > 0 and self.fit_tolerance > 0 and self.budget_mult >= 1):
            raise ConfigError("slope_margin/fit_tolerance/budget_mult",
                              (self.slope_margin, self.fit_tolerance, self.budget_mult),
                              "positive margins and budget_mult >= 1")


PRESETS = {
    "quick": CriticalBatchConfig(),
    # For a GPU: the same protocol on CIFAR-10 with the blueprint's CNN (McCandlish et al.
    # measure image classifiers at this scale), batch sizes 16..8192, 5 seeds; the kernel part
    # on 2,000 samples. The settings are ours, not a reproduction of either paper's runs.
    "paper": CriticalBatchConfig(data="cifar10", model="cnn_c16", kernel_n=2000,
                                 batch_sizes=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
                                 lr=0.1, base_batch=128, target_loss=0.5, levels=(1.5, 1.0),
                                 max_steps=40000, budget_samples=2000000, seeds=5),
}


# -- the learning-rate grid per batch size: plain numbers in, next grid points out -----------------
@dataclass(frozen=True)
class Tried:
    """A learning rate ``centre * factor^k`` tried at one batch size: mean steps to the target
    over seeds (None: some seed missed it), and whether it diverged."""

    k: int
    steps: float | None
    diverged: bool


def next_exponents(tried: Sequence[Tried], max_tries: int) -> list[int]:
    """Grid exponents to try next: the centre first; then the neighbours of the best rate on
    every side where it has none yet; when nothing met the target, one step down from a
    divergence or up from a too-slow rate. Empty when bracketed or out of tries."""
    if not tried:
        return [0]
    ks = sorted(t.k for t in tried)
    ok = [t for t in tried if t.steps is not None]
    if not ok:
        low, high = min(tried, key=lambda t: t.k), max(tried, key=lambda t: t.k)
        out = [low.k - 1] if low.diverged else ([high.k + 1] if not high.diverged else [])
    else:
        best = min(ok, key=lambda t: (t.steps, t.k))
        out = ([best.k + 1] if best.k == ks[-1] else []) + ([best.k - 1] if best.k == ks[0]
                                                            else [])
    return out[:max(0, max_tries - len(tried))]


def best_of(tried: Sequence[Tried]) -> tuple[Tried | None, bool]:
    """The fastest rate that met the target, and whether both its grid neighbours were tried."""
    ok = [t for t in tried if t.steps is not None]
    if not ok:
        return None, False
    best = min(ok, key=lambda t: (t.steps, t.k))
    ks = {t.k for t in tried}
    return best, (best.k - 1 in ks and best.k + 1 in ks)


# -- verdicts: plain numbers in, a verdict out -------------------------------------------------
def _tost_iut(groups: dict[str, list[float]], center: float, margin: float, unit: str
              ) -> tuple[float | None, bool, bool, list[str]]:
    """TOST of each group's mean against ``center`` within ``margin``; intersection-union:
    p = the largest, outside if any group's interval lies wholly outside."""
    ps, outside, texts = [], False, []
    for name, vals in groups.items():
        if not all(math.isfinite(v) for v in vals):
            ps.append(None)
            texts.append(f"{name}: not measurable")
            continue
        t = tost_test(vals, [center] * len(vals), margin, scale=1.0, unit=unit)
        ps.append(t.p)
        outside = outside or t.outside
        texts.append(f"{name}: {np.mean(vals):.3g} ({t.text})")
    p = None if None in ps else max(ps)
    return p, outside, p is not None and p < 0.05, texts


def kernel_verdicts(per_bw: dict[float, list[dict[str, Any]]], cfg: CriticalBatchConfig
                    ) -> list[Verdict]:
    """The four kernel claims from the per-bandwidth, per-seed results of :func:`kernel_run`."""
    name = {bw: f"bandwidth {bw:g}x" for bw in per_bw}
    out = []
    dev = max(r["eta_grid_rel_dev"] for rs in per_bw.values() for r in rs)
    out.append(Verdict(
        "the derived optimal step eta*(m) minimizes the exact worst-direction expected "
        "contraction (Gaussian kernel: K_ii = beta, so the paper's bound is exact)",
        f"largest relative gap between eta*(m) and the grid minimizer over the full spectrum "
        f"{dev:.1e} (grid spacing 1e-3, eta* itself off the grid), every bandwidth, instance "
        "and m", criteria=dev <= 1e-3, claim_id="kernel_step_formula",
        blueprint="eta*(m) = m/(beta+(m-1)lambda_k) below m*, 2m/(beta+(m-1)(lambda_1+"
                  "lambda_k)) above", ours=f"max rel. gap {dev:.1e}",
        controls="exact spectrum, no sampling"))
    slopes = {name[bw]: [r["slope_below"] for r in rs] for bw, rs in per_bw.items()}
    p, outside, _, texts = _tost_iut(slopes, -1.0, cfg.slope_margin, "")
    out.append(Verdict(
        "linear scaling: below m*, iterations to the target fall as 1/m",
        "log-log slope of T over m <= m*, per bandwidth: " + "; ".join(texts), p=p,
        criteria=True, test=f"TOST vs -1, margin {cfg.slope_margin:g} (IUT)",
        equivalence=True, outside=outside, claim_id="kernel_linear_scaling",
        blueprint="T(m) = T(1)/m for m <= m* (linear scaling regime)",
        ours=", ".join(f"{np.mean(v):.3f}" for v in slopes.values()),
        controls="eta*(m) per m; seeds = problem instances"))
    ratios = {name[bw]: [math.log(r["T"][-1] / r["T_gd"]) for r in rs]
              for bw, rs in per_bw.items()}
    p, outside, _, texts = _tost_iut(ratios, 0.0, math.log(cfg.gd_margin), "")
    m_max = cfg.kernel_batches[-1]
    out.append(Verdict(
        f"saturation: past m*, an iteration of batch {m_max} is worth one full-batch GD step",
        f"log(T({m_max}) / T(GD)) per bandwidth: " + "; ".join(texts), p=p, criteria=True,
        test=f"TOST vs 0, margin log {cfg.gd_margin:g} (IUT)", equivalence=True,
        outside=outside, claim_id="kernel_saturation",
        blueprint="m > m*: one SGD iteration ~ one GD iteration",
        ours=", ".join(f"{math.exp(np.mean(v)):.2f}x" for v in ratios.values()),
        controls=f"GD at the same step eta*({m_max})"))
    knees = {name[bw]: [math.log2(r["knee"] / r["m_star"]) for r in rs]
             for bw, rs in per_bw.items()}
    p, outside, _, texts = _tost_iut(knees, 0.0, math.log2(cfg.knee_margin), "")
    out.append(Verdict(
        "the measured knee of iterations vs batch size is at the predicted m*",
        "log2(knee / m*) per bandwidth: " + "; ".join(texts), p=p, criteria=True,
        test=f"TOST vs 0, margin log2 {cfg.knee_margin:g} (IUT)", equivalence=True,
        outside=outside, claim_id="kernel_knee",
        blueprint="m* = beta/(lambda_1-lambda_k)+1: " + ", ".join(
            f"{np.mean([r['m_star'] for r in rs]):.1f}" for rs in per_bw.values()),
        ours="knee " + ", ".join(f"{np.mean([r['knee'] for r in rs]):.1f}"
                                 for rs in per_bw.values()),
        controls="two-segment fit (slope -1, then free)"))
    return out


def noise_verdicts(bcrit: list[float], bsimple: list[float], bsimple_init: list[float],
                   bcrit_first: list[float], first_level: float, arms: tuple[Arm, ...],
                   fit_errors: float, cfg: CriticalBatchConfig) -> list[Verdict]:
    """McCandlish et al.'s claims at the target loss; per-seed values (seed order)."""
    out = []
    logr = [math.log10(c / s) for c, s in zip(bcrit, bsimple)]
    t = tost_test(logr, [0.0] * len(logr), math.log10(cfg.noise_margin), scale=1.0, unit="dex")
    out.append(Verdict(
        f"the gradient noise scale B_simple predicts the critical batch size (training loss "
        f"{cfg.target_loss:g})", f"B_crit {np.mean(bcrit):.0f} vs B_simple {np.mean(bsimple):.0f}"
        f" (ratio {10 ** np.mean(logr):.2f}; B_simple over the best runs of every batch size at "
        f"that loss); log10 ratio: {t.text}", p=t.p, criteria=True,
        test=f"TOST, margin a factor {cfg.noise_margin:g}", equivalence=True, outside=t.outside,
        claim_id="mlp_bcrit_vs_bsimple", blueprint="B_crit ~ B_noise ~ B_simple",
        ours=f"B_crit/B_simple = {10 ** np.mean(logr):.2f}", arms=arms,
        controls="best LR per batch size; per-seed fits"))
    w = welch_test(bsimple, bsimple_init, scale=1.0, unit="")
    out.append(Verdict(
        "the noise scale grows as the training loss falls", f"B_simple at loss "
        f"{cfg.target_loss:g}: {np.mean(bsimple):.0f}, at initialization "
        f"{np.mean(bsimple_init):.0f}; {w.text}", criteria=w.diff > 0, p=w.p, test="Welch",
        claim_id="mlp_bsimple_grows", blueprint="the noise scale increases as the loss "
        "decreases", ours=w.ours, effect=w.effect, arms=arms))
    w = welch_test(bcrit, bcrit_first, scale=1.0, unit="")
    out.append(Verdict(
        f"the critical batch size grows as the target loss falls ({first_level:g} -> "
        f"{cfg.target_loss:g})", f"B_crit {np.mean(bcrit_first):.0f} -> {np.mean(bcrit):.0f}; "
        f"{w.text}", criteria=w.diff > 0, p=w.p, test="Welch", claim_id="mlp_bcrit_grows",
        blueprint="B_crit increases as training proceeds", ours=w.ours, effect=w.effect,
        arms=arms))
    out.append(Verdict(
        "steps to the target follow S = S_min (1 + B_crit / B)",
        f"largest |measured / fitted - 1| over batch sizes {fit_errors:.1%} (seed means)",
        criteria=fit_errors <= cfg.fit_tolerance, claim_id="mlp_steps_model",
        blueprint="S = S_min (1 + B_noise / B) (their model of steps vs batch)",
        ours=f"max rel. error {fit_errors:.1%}", arms=arms,
        controls=f"tolerance {cfg.fit_tolerance:.0%}"))
    return out


def kernel_run(cfg: CriticalBatchConfig, x_all: np.ndarray, y_all: np.ndarray,
               bandwidth: float, seed: int) -> dict[str, Any]:
    """One problem instance: subset, kernel, constants, SGD at eta*(m) for every m, GD, the
    knee, and the grid check of the step formula."""
    from overparam.seeds import derive_seed
    from overparam.theory import critical_batch as cb

    g = np.random.default_rng(derive_seed(seed, "kernel_subset"))
    idx = g.choice(len(x_all), cfg.kernel_n, replace=False)
    x, Y = x_all[idx], np.eye(int(y_all.max()) + 1)[y_all[idx]]
    sigma = bandwidth * cb.median_distance(x)
    K = cb.gaussian_kernel(x, sigma)
    c = cb.kernel_constants(K)
    ms = list(cfg.kernel_batches)
    etas = [cb.optimal_step(m, c.beta, c.lam1, c.lamk) for m in ms]
    order = np.random.default_rng(derive_seed(seed, "kernel_order"))
    T = [cb.kernel_sgd_iterations(K, Y, m, e, cfg.kernel_tol, cfg.kernel_max_iter, order)
         for m, e in zip(ms, etas)]
    t_gd = cb.gd_iterations(K, Y, etas[-1], cfg.kernel_tol, cfg.kernel_max_iter)
    lam = np.linalg.eigvalsh(K / len(K))
    lam = lam[lam > 1e-12 * c.lam1]
    dev = 0.0
    for m, e in zip(ms, etas):  # grid minimizer of the worst direction over the full spectrum
        grid = e * np.exp(np.linspace(-0.5, 0.5, 1000))  # e itself is not a grid point
        worst = np.array([cb.contraction(h, m, c.beta, lam).max() for h in grid])
        dev = max(dev, abs(grid[int(np.argmin(worst))] / e - 1))
    out = {"sigma": sigma, "beta": c.beta, "lam1": c.lam1, "lamk": c.lamk, "m_star": c.m_star,
           "m_star_approx": c.m_star_approx, "eta": etas, "T": T, "T_gd": t_gd,
           "eta_grid_rel_dev": dev}
    if None not in T:
        knee = cb.two_segment_knee(ms, T)
        below = [i for i, m in enumerate(ms) if m <= c.m_star]
        out.update(knee=knee.knee, slope_after=knee.slope_after,
                   doubling_knee=cb.doubling_knee(ms, T),
                   slope_below=cb.loglog_slope([ms[i] for i in below], [T[i] for i in below])
                   if len(below) >= 2 else float("nan"))
    return out


class CriticalBatch(Study):
    name = "critical_batch"
    CAPTIONS = {
        "kernel_iterations_vs_batch": (
            "Left: kernel least-squares SGD iterations to reach the target fraction of the "
            "initial loss at each mini-batch size m, run at Ma et al.'s optimal step eta*(m), "
            "for three Gaussian-kernel bandwidths (mean over problem instances, 95% CI bands); "
            "dashed verticals mark the predicted critical batch m*, dotted ones the measured "
            "knee, thin lines the linear-scaling 1/m. Right: the step eta*(m) used, with "
            "2/lambda_1 dashed."
        ),
        "mlp_steps_vs_batch": (
            "Left: MLP steps to the target training loss at the best learning rate of each "
            "batch size (mean and std over seeds) with the fitted S = S_min (1 + B_crit / B) "
            "curve per loss level (McCandlish et al. 2018). Right: the simple noise scale "
            "B_simple measured along training (circles: reference runs; diamond: at the target "
            "from the best runs) beside the fitted B_crit; training proceeds left to right."
        ),
    }
    Config = CriticalBatchConfig
    PRESETS = PRESETS

    # -- configurations -----------------------------------------------------------------------
    def centre(self, cfg: CriticalBatchConfig, B: int) -> float:
        return cfg.lr * (B / cfg.base_batch) ** cfg.lr_exponent

    def budget(self, cfg: CriticalBatchConfig, B: int) -> int:
        return int(min(cfg.max_steps, max(cfg.min_steps, math.ceil(cfg.budget_samples / B))))

    def _config(self, cfg: CriticalBatchConfig, B: int, lr: float, target: float, steps: int):
        from overparam.train.interventions import StopAtLoss

        every = max(1, min(32, cfg.check_samples // B))
        return cfg.train_config(
            cfg.model, batch_size=B, steps=steps, eval_every=10 ** 6,
            optim=OptimConfig(name="sgd", lr=lr, momentum=cfg.momentum, lr_scaling="none",
                              schedule="constant"),
            interventions=(StopAtLoss(target=target, every=every),))

    def _grid_run(self, cfg: CriticalBatchConfig, B: int, k: int, steps: int) -> PlannedRun:
        lr = self.centre(cfg, B) * cfg.lr_factor ** k
        return PlannedRun(self._config(cfg, B, lr, cfg.target_loss, steps), cfg.seed_ids,
                          (("batch", B), ("k", k), ("lr", lr)))

    def reference_runs(self, cfg: CriticalBatchConfig) -> list[PlannedRun]:
        """Runs at ``noise_batch`` stopped at each level and at the target (for B_simple)."""
        B = cfg.noise_batch
        return [PlannedRun(self._config(cfg, B, self.centre(cfg, B), level, self.budget(cfg, B)),
                           cfg.seed_ids, (("reference", level),))
                for level in (*cfg.levels, cfg.target_loss)]

    def plan(self, cfg: CriticalBatchConfig) -> list[PlannedRun]:
        """The static part: each batch size's grid centre and the reference runs."""
        cfg.check()
        return [self._grid_run(cfg, B, 0, self.budget(cfg, B))
                for B in cfg.batch_sizes] + self.reference_runs(cfg)

    # -- the adaptive grid ----------------------------------------------------------------------
    def outcome(self, ctx: StudyContext, p: PlannedRun, levels: Sequence[float],
                init: dict[int, dict[str, float]]) -> dict[str, Any]:
        """Per seed: steps to each level (interpolated from the logged checks, the loss at
        initialization as step 0; None if never), met, diverged."""
        from overparam.theory.critical_batch import crossing_step

        res = ctx.results(p)
        data = ctx.data(p.config.data)
        cross: dict[float, list[float | None]] = {lv: [] for lv in levels}
        for s in p.seeds:
            st, vals = ctx.series(p.config, s, "train_loss")
            st, vals = np.r_[0, st], np.r_[init[s]["loss"], vals]
            for lv in levels:
                cross[lv].append(crossing_step(st, vals, lv))
        loss = [r["result"]["train_loss"] for r in res]
        return {"cross": cross, "met": [bool(r["result"].get("target_met")) for r in res],
                "loss": loss, "diverged": any(not math.isfinite(v) or v >= math.log(
                    data.num_classes) for v in loss)}

    def _tried(self, k: int, o: dict[str, Any], level: float) -> Tried:
        c = o["cross"][level]
        return Tried(k, None if None in c else float(np.mean(c)), o["diverged"])

    def sweep(self, cfg: CriticalBatchConfig, ctx: StudyContext, train: bool
              ) -> dict[int, list[tuple[PlannedRun, dict[str, Any]]]]:
        """Every grid point of every batch size with its outcome, stage by stage (trained when
        ``train``; a read-only analysis rebuilds the same stages from the store)."""
        levels = (*cfg.levels, cfg.target_loss)
        init = self.initial(cfg, ctx)
        runs: dict[int, list[tuple[PlannedRun, dict[str, Any]]]] = {B: [] for B in
                                                                      cfg.batch_sizes}
        while True:
            new = []
            for B, done in runs.items():
                tried = [self._tried(p.tag("k"), o, cfg.target_loss) for p, o in done]
                best, _ = best_of(tried)
                steps = self.budget(cfg, B)
                if best is not None:  # a later grid point only has to show it is slower
                    steps = min(steps, math.ceil(cfg.budget_mult * best.steps))
                new += [self._grid_run(cfg, B, k, steps)
                        for k in next_exponents(tried, 3 + cfg.lr_extensions)]
            if not new:
                return runs
            if train:
                ctx.train_all(new, f"{self.name}: batch sizes x learning rates")
            for p in new:
                runs[p.tag("batch")].append((p, self.outcome(ctx, p, levels, init)))

    def run(self, cfg: CriticalBatchConfig, ctx: StudyContext) -> None:
        self.kernel_results(cfg, ctx)
        ctx.train_all(self.reference_runs(cfg), f"{self.name}: reference runs")
        best = self.best_points(cfg, self.sweep(cfg, ctx, train=True))
        self.noise_scales(cfg, ctx, [p for p, _, _ in best[cfg.target_loss].values()])

    def best_points(self, cfg: CriticalBatchConfig,
                    sweep: dict[int, list[tuple[PlannedRun, dict[str, Any]]]]
                    ) -> dict[float, dict[int, tuple[PlannedRun, dict[str, Any], bool]]]:
        """Per level and batch size: the grid point with the fewest mean steps to that level
        (every seed reaching it), its outcome, and whether it is bracketed."""
        best: dict[float, dict[int, tuple[PlannedRun, dict[str, Any], bool]]] = {}
        for lv in (*cfg.levels, cfg.target_loss):
            best[lv] = {}
            for B, done in sweep.items():
                b, bracketed = best_of([self._tried(p.tag("k"), o, lv) for p, o in done])
                if b is not None:
                    p, o = next((p, o) for p, o in done if p.tag("k") == b.k)
                    best[lv][B] = (p, o, bracketed)
        return best

    # -- measurements ----------------------------------------------------------------------------
    def kernel_results(self, cfg: CriticalBatchConfig, ctx: StudyContext
                       ) -> dict[float, list[dict[str, Any]]]:
        """Per bandwidth, per seed: :func:`kernel_run`, computed once (store)."""
        from overparam.config import DataConfig

        out: dict[float, list[dict[str, Any]]] = {}
        loaded: list[Any] = []

        def compute(bw: float, seed: int) -> dict[str, Any]:
            if not loaded:
                d = ctx.data(DataConfig(name=cfg.kernel_data))
                loaded[:] = [d.x_train.double().reshape(d.n_train, -1).numpy(),
                             d.y_train.numpy()]
            return kernel_run(cfg, loaded[0], loaded[1], bw, seed)

        with ctx.progress(f"{self.name}: kernel SGD", len(cfg.bandwidths) * cfg.seeds) as tick:
            for bw in cfg.bandwidths:
                out[bw] = []
                for s in cfg.seed_ids:
                    spec = {"what": "kernel_sgd", "data": cfg.kernel_data, "n": cfg.kernel_n,
                            "bandwidth": bw, "tol": cfg.kernel_tol,
                            "batches": list(cfg.kernel_batches),
                            "max_iter": cfg.kernel_max_iter, "seed": s}
                    out[bw].append(ctx.computed(self.name, spec,
                                                lambda bw=bw, s=s: compute(bw, s)))
                    tick()
        return out

    def _measure(self, model: Any, data: Any) -> dict[str, float]:
        """Training loss and noise scale of a model on the whole training set (float64)."""
        import torch
        import torch.nn.functional as F

        from overparam.theory.critical_batch import noise_scale

        model = model.double().eval()
        x, y = data.x_train.double(), data.y_train
        with torch.no_grad():
            loss = float(F.cross_entropy(model(x), y))
        ns = noise_scale(model, F.cross_entropy, x, y)
        return {"loss": loss, "b_simple": ns.b_simple, "trace_sigma": ns.trace_sigma,
                "grad_sq": ns.grad_sq}

    def initial(self, cfg: CriticalBatchConfig, ctx: StudyContext) -> dict[int, dict[str, float]]:
        """Per seed, the initialization every run of that seed starts from: its training loss
        and noise scale (computed once)."""
        from overparam.config import to_canonical_dict
        from overparam.train.loop import build_members

        ref = self.reference_runs(cfg)[0].config
        data = ctx.data(ref.data)
        spec = {"what": "initialization", "model": to_canonical_dict(ref.model),
                "data": to_canonical_dict(ref.data)}
        return {s: ctx.computed(self.name, {**spec, "seed": s},
                                lambda s=s: self._measure(build_members(ref, [s], data)[0], data))
                for s in cfg.seed_ids}

    def noise_scales(self, cfg: CriticalBatchConfig, ctx: StudyContext,
                     at_target: list[PlannedRun]) -> dict[Any, list[float]]:
        """B_simple per seed: at initialization, at each reference run's stopping point, and
        (``"target"``) over the best runs of every batch size stopped at the target loss, as
        ``mean tr(Sigma) / mean ||G||^2`` -- an average over models at one loss, in place of
        McCandlish et al.'s average over the steps of one run."""
        refs = self.reference_runs(cfg)
        data = ctx.data(refs[0].config.data)
        out: dict[Any, list[float]] = {"init": [v["b_simple"] for v in
                                                self.initial(cfg, ctx).values()]}
        spec = {"probe": "noise_scale", "samples": data.n_train}

        def probe(p: PlannedRun, s: int) -> dict[str, float]:
            return ctx.probe(p.config, s, spec, lambda: self._measure(
                ctx.model(p.config, s, data), data))

        for p in refs:
            out[p.tag("reference")] = [probe(p, s)["b_simple"] for s in p.seeds]
        got = [[probe(p, s) for s in cfg.seed_ids] for p in at_target]
        out["target"] = [float(np.mean([g[j]["trace_sigma"] for g in got])
                               / np.mean([g[j]["grad_sq"] for g in got]))
                         for j in range(cfg.seeds)] if got else []
        return out

    # -- analysis ------------------------------------------------------------------------------
    def analyze(self, cfg: CriticalBatchConfig, ctx: StudyContext, preset: str
                ) -> StudyReport:
        rep = StudyReport(self.name, preset)
        kern = self.kernel_results(cfg, ctx)
        self._kernel_report(cfg, ctx, rep, kern)
        self._mlp_report(cfg, ctx, rep)
        return rep

    def _kernel_report(self, cfg: CriticalBatchConfig, ctx: StudyContext, rep: StudyReport,
                       kern: dict[float, list[dict[str, Any]]]) -> None:
        from overparam.report.figures import band, figure, save

        ms = list(cfg.kernel_batches)
        missed = [(bw, r) for bw, rs in kern.items() for r in rs if None in r["T"]]
        rows = []
        for bw, rs in kern.items():
            def s(key: str, rs: list = rs) -> str:
                vals = [r[key] for r in rs if r.get(key) is not None]
                if not vals:
                    return "n/a"
                v = summarize(vals)
                return f"{v.mean:.4g} ± {v.std:.2g} [{v.ci_low:.4g}, {v.ci_high:.4g}]"
            rows.append({"bandwidth (x median)": bw, "sigma": s("sigma"), "lambda_1": s("lam1"),
                         "lambda_k": s("lamk"), "beta": s("beta"), "m*": s("m_star"),
                         "beta/lambda_1 + 1": s("m_star_approx"), "knee (two-segment)": s("knee"),
                         "slope after knee": s("slope_after"),
                         "knee (doubling < 1.5x)": s("doubling_knee"),
                         "slope below m*": s("slope_below"), "T(GD)": s("T_gd")})
        rep.tables.append(Table(
            f"(a) Kernel least squares: Gaussian kernel on {cfg.kernel_n} {cfg.kernel_data} "
            f"samples, constants and knees ({cfg.seeds} instances, mean ± std [95% CI])",
            list(rows[0]), rows))
        rows = []
        for i, m in enumerate(ms):
            row: dict[str, Any] = {"m": m}
            for bw, rs in kern.items():
                row[f"eta*(m), {bw:g}x"] = float(np.mean([r["eta"][i] for r in rs]))
                T = [r["T"][i] for r in rs if r["T"][i] is not None]
                row[f"T, {bw:g}x"] = summarize(T).fmt(1, 0) if len(T) > 1 else "missed"
            rows.append(row)
        rep.tables.append(Table(f"(a) Iterations to {cfg.kernel_tol:g} x the initial loss at "
                                "eta*(m)", list(rows[0]), rows))
        if missed:
            rep.notes.append(f"**Kernel SGD missed its target** within {cfg.kernel_max_iter} "
                             f"iterations in {len(missed)} instance(s): no kernel verdicts.")
        else:
            rep.verdicts += kernel_verdicts(kern, cfg)
        rep.notes.append(
            "(a) The paper's step for m > m* (2m/(beta+(m-1)(lambda_1+lambda_k))) balances the "
            "top and bottom directions of the worst-case bound; it approaches 2/lambda_1, where "
            "the top direction barely contracts, while at m* the step is 1/lambda_1. Iterations "
            "therefore keep falling somewhat past m* before they flatten, which moves the "
            "measured knee above m*.")
        fig, (ax1, ax2) = figure(11, 4, ncols=2)
        for bw, rs in kern.items():
            if any(None in r["T"] for r in rs):
                continue
            T = np.array([r["T"] for r in rs], float)
            sums = [summarize(T[:, i]) for i in range(len(ms))]
            band(ax1, ms, [v.mean for v in sums], [v.ci_low for v in sums],
                 [v.ci_high for v in sums], f"{bw:g}x median (m*={np.mean([r['m_star'] for r in rs]):.1f})")
            color = ax1.get_lines()[-1].get_color()
            ax1.axvline(np.mean([r["m_star"] for r in rs]), color=color, ls="--", lw=0.8)
            ax1.axvline(np.mean([r["knee"] for r in rs]), color=color, ls=":", lw=1.2)
            ax1.plot(ms, T[:, 0].mean() / np.array(ms, float), color=color, lw=0.6, alpha=0.5)
            ax2.plot(ms, np.mean([r["eta"] for r in rs], 0), "o-", ms=3, color=color,
                     label=f"{bw:g}x median")
            ax2.axhline(2 / np.mean([r["lam1"] for r in rs]), color=color, ls="--", lw=0.8)
        ax1.set(xscale="log", yscale="log", xlabel="mini-batch size m",
                ylabel=f"iterations to {cfg.kernel_tol:g} x initial loss",
                title="Kernel SGD at eta*(m) (dashed: m*, dotted: knee, thin: 1/m)")
        ax2.set(xscale="log", yscale="log", xlabel="mini-batch size m",
                ylabel="optimal step eta*(m)", title="eta*(m) (dashed: 2/lambda_1)")
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "kernel_iterations_vs_batch"))
        for bw, rs in kern.items():
            rep.facts[f"cb_m_star_{bw:g}"] = float(np.mean([r["m_star"] for r in rs]))
            rep.facts[f"cb_knee_{bw:g}"] = float(np.mean([r.get("knee", np.nan) for r in rs]))

    def _mlp_report(self, cfg: CriticalBatchConfig, ctx: StudyContext, rep: StudyReport
                    ) -> None:
        from overparam.theory.critical_batch import fit_steps

        levels = (*cfg.levels, cfg.target_loss)
        sweep = self.sweep(cfg, ctx, train=False)
        best = self.best_points(cfg, sweep)
        noise = self.noise_scales(cfg, ctx, [p for p, _, _ in best[cfg.target_loss].values()])
        n = ctx.data(self.reference_runs(cfg)[0].config.data).n_train
        arms = []
        for B, done in sweep.items():
            got = best[cfg.target_loss].get(B)
            met = got is not None and got[2]
            arms.append(Arm(f"B={B}", "every seed reaches the target at a bracketed best LR",
                            met, "no LR reached the target" if got is None else
                            f"best LR {got[0].tag('lr'):.3g} of {len(done)} tried"
                            + ("" if got[2] else ", optimum not bracketed")))
        ref_met = [all(bool(r["result"].get("target_met")) for r in ctx.results(p))
                   for p in self.reference_runs(cfg)]
        if not all(ref_met):
            rep.notes.append(f"(b) {len(ref_met) - sum(ref_met)} reference run(s) at batch "
                             f"{cfg.noise_batch} missed their level: their B_simple is not at it.")
        fits, rows = {}, []
        for lv in levels:
            Bs = sorted(best[lv])
            if len(Bs) < 3:
                continue
            per_seed = np.array([best[lv][B][1]["cross"][lv] for B in Bs], dtype=float)
            fits[lv] = {"seeds": [fit_steps(Bs, per_seed[:, j]) for j in range(cfg.seeds)],
                        "mean": fit_steps(Bs, per_seed.mean(1)),
                        "wor": fit_steps(Bs, per_seed.mean(1), n), "B": Bs,
                        "S": per_seed}
            f = fits[lv]
            rows.append({"training loss": lv, "batch sizes fitted": len(Bs),
                         "S_min": summarize([v.s_min for v in f["seeds"]]).fmt(1, 0),
                         "B_crit": summarize([v.b_crit for v in f["seeds"]]).fmt(1, 0),
                         "B_crit (without replacement)": f["wor"].b_crit,
                         "B_simple (reference run)": summarize(noise[lv]).fmt(1, 0),
                         "B_simple (best runs, all batch sizes)":
                             summarize(noise["target"]).fmt(1, 0)
                             if lv == cfg.target_loss and noise["target"] else "",
                         "max fit error": f"{f['mean'].max_rel_error:.1%}"})
        init_loss = np.mean([v["loss"] for v in self.initial(cfg, ctx).values()])
        rows.append({"training loss": f"{init_loss:.3g} (initialization)",
                     "B_simple (reference run)": summarize(noise["init"]).fmt(1, 0)})
        rep.tables.append(Table(
            f"(b) {cfg.model} on {cfg.data}: S = S_min (1 + B_crit/B) fitted per seed, and the "
            "noise scale B_simple (mean ± std [95% CI])", ["training loss", "batch sizes fitted",
                                                          "S_min", "B_crit",
                                                          "B_crit (without replacement)",
                                                          "B_simple (reference run)",
                                                          "B_simple (best runs, all batch sizes)",
                                                          "max fit error"], rows))
        rows = []
        for B, done in sweep.items():
            row: dict[str, Any] = {"batch": B, "LRs tried": ", ".join(
                f"{p.tag('lr'):.3g}" for p, _ in sorted(done, key=lambda t: t[0].tag("k")))}
            for lv in levels:
                got = best[lv].get(B)
                row[f"best LR (loss {lv:g})"] = f"{got[0].tag('lr'):.3g}" if got else "none"
                row[f"steps to {lv:g}"] = (summarize(got[1]["cross"][lv]).fmt(1, 0) if got
                                           else "missed")
            rows.append(row)
        rep.tables.append(Table("(b) Steps to each training loss at the best learning rate "
                                "(plain SGD, constant step)", list(rows[0]), rows))
        first = cfg.levels[0] if cfg.levels else None
        if cfg.target_loss in fits and first in fits:
            f = fits[cfg.target_loss]
            rep.verdicts += noise_verdicts(
                [v.b_crit for v in f["seeds"]], noise["target"], noise["init"],
                [v.b_crit for v in fits[first]["seeds"]], first, tuple(arms),
                f["mean"].max_rel_error, cfg)
            rep.facts.update({"cb_bcrit": float(np.mean([v.b_crit for v in f["seeds"]])),
                              "cb_bsimple": float(np.mean(noise["target"]))})
        else:
            rep.notes.append("(b) Fewer than three batch sizes reached a level: no fit.")
        rep.notes.append(
            "(b) B_simple is exact on the training set (per-sample gradients of all "
            f"{n} samples, Sigma with 1/n). Training samples without replacement within an "
            "epoch, which shrinks the mini-batch variance by (n - B)/(n - 1); the fit with "
            "that correction (S = S_min (1 + B_crit (1/B - 1/n))) is reported beside the plain "
            "one.")
        self._mlp_figure(cfg, ctx, rep, fits, noise, levels)

    def _mlp_figure(self, cfg: CriticalBatchConfig, ctx: StudyContext, rep: StudyReport,
                    fits: dict[float, Any], noise: dict[Any, list[float]],
                    levels: tuple[float, ...]) -> None:
        from overparam.report.figures import figure, save

        fig, (ax1, ax2) = figure(11, 4, ncols=2)
        for lv, f in fits.items():
            B = np.array(f["B"], float)
            S = f["S"]
            (line,) = ax1.plot(B, S.mean(1), "o", ms=4, label=f"loss {lv:g}: B_crit="
                               f"{np.mean([v.b_crit for v in f['seeds']]):.0f}")
            ax1.errorbar(B, S.mean(1), yerr=S.std(1, ddof=1), fmt="none", color=line.get_color())
            fine = np.geomspace(B[0], B[-1], 100)
            ax1.plot(fine, f["mean"].predict(fine), color=line.get_color(), lw=1)
        ax1.set(xscale="log", yscale="log", xlabel="batch size B",
                ylabel="steps to the training loss (best LR)",
                title="Steps vs batch; lines: S_min (1 + B_crit / B)")
        ax1.legend(fontsize=7)
        init_loss = float(np.mean([v["loss"] for v in self.initial(cfg, ctx).values()]))
        xs = [lv for lv in levels if lv in noise]
        vals = [noise["init"], *(noise[lv] for lv in xs)]
        ax2.errorbar([init_loss, *xs], [np.mean(v) for v in vals],
                     yerr=[np.std(v, ddof=1) for v in vals], fmt="o-",
                     label=f"B_simple: initialization, reference runs (B={cfg.noise_batch})")
        if noise["target"]:
            ax2.errorbar([cfg.target_loss], [np.mean(noise["target"])],
                         yerr=[np.std(noise["target"], ddof=1)], fmt="D", ms=7,
                         label="B_simple: best runs of every batch size")
        fx = [lv for lv in xs if lv in fits]
        ax2.errorbar(fx, [np.mean([v.b_crit for v in fits[lv]["seeds"]]) for lv in fx],
                     yerr=[np.std([v.b_crit for v in fits[lv]["seeds"]], ddof=1) for lv in fx],
                     fmt="s--", label="B_crit (fit)")
        ax2.set(yscale="log", xlabel="training loss (cross-entropy; training proceeds left to "
                "right)", ylabel="batch size", title="Noise scale and critical batch along training")
        ax2.invert_xaxis()
        ax2.legend(fontsize=7)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "mlp_steps_vs_batch"))
