"""Lottery tickets: iterative magnitude pruning with rewinding and its controls (blueprint IV-G,
V-F; Frankle & Carbin 2019, arXiv:1803.03635; Frankle et al. 2020, arXiv:1912.05671).

Per seed, one IMP chain (all seeds at once as an ensemble): dense training, then rounds pruning
``rate`` of the surviving weights (global or layer-wise magnitude), rewinding to initialization
(or iteration k) and retraining with the mask enforced, landing exactly on the blueprint's levels
(70, 50, 30, 20, 10, 5% remaining). At each level two controls train the same budget: the same
mask from a fresh random initialization, and a random mask of the same per-layer density from
the rewound weights. At ``barrier_density`` two copies of each ticket train with different data
orders and the linear-mode-connectivity error barrier between them is measured. Every round's
weights and masks are saved, so an interrupted chain resumes at its last finished round.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from overparam.config import DataConfig, ModelConfig, OptimConfig, TrainConfig, to_canonical_dict
from overparam.config import run_id as make_run_id
from overparam.npz import load_npz, save_npz
from overparam.stats import summarize
from overparam.studies.base import PlannedRun, Study, StudyContext, StudyReport, Table, Verdict
from overparam.studies.common import pct, welch_str

ARMS = ("ticket", "reinit", "random")


@dataclass(frozen=True)
class LotteryConfig:
    data: str = "mnist1d"
    n_train: int = 0
    model: str = "mlp_w256"
    epochs: int = 50
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    targets: tuple[float, ...] = (0.7, 0.5, 0.3, 0.2, 0.1, 0.05)  # fractions remaining
    rate: float = 0.2  # of the surviving weights per round; 0: one shot to each level
    scope: str = "global"
    rewind_step: int = 0
    controls: bool = True
    barrier_density: float = 0.1
    seeds: int = 3


PRESETS = {
    "quick": LotteryConfig(),
    # The blueprint (IV-G, V-F): CIFAR-10, its CNN retrained 60 epochs, 5 seeds, levels 70..5%
    # remaining, reinit control at 90% pruned. Channel count missing from the text: c = 32 assumed.
    "paper": LotteryConfig(data="cifar10", model="cnn_c32", epochs=60, seeds=5),
}


def train_config(cfg: LotteryConfig) -> TrainConfig:
    return TrainConfig(data=DataConfig(name=cfg.data, n_train=cfg.n_train or None),
                       model=ModelConfig(name=cfg.model),
                       optim=OptimConfig(lr=cfg.lr, momentum=cfg.momentum, lr_scaling="none"),
                       epochs=cfg.epochs, batch_size=cfg.batch_size)


def chain_key(cfg: LotteryConfig) -> dict[str, Any]:
    return {"train": to_canonical_dict(train_config(cfg)), "rate": cfg.rate, "scope": cfg.scope,
            "targets": list(cfg.targets), "rewind_step": cfg.rewind_step}


def _save(path: Any, tensors: dict[str, torch.Tensor]) -> None:
    save_npz(path, tensors)


def _load(path: Any, prefix: str, device: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: torch.from_numpy(v.copy()).to(device)
            for k, v in load_npz(path).items() if k.startswith(prefix)}


class Lottery(Study):
    name = "lottery"
    Config = LotteryConfig
    PRESETS = PRESETS

    def plan(self, cfg: LotteryConfig) -> list[PlannedRun]:
        from overparam.errors import ConfigError
        from overparam.sparsity.masks import schedule

        if cfg.scope not in ("global", "layerwise"):
            raise ConfigError("scope", cfg.scope, "global or layerwise")
        try:
            schedule(list(cfg.targets), cfg.rate)
        except ValueError as e:
            raise ConfigError("targets/rate", f"{cfg.targets}/{cfg.rate}", str(e)) from None
        return [PlannedRun(train_config(cfg), tuple(range(cfg.seeds)), (("arm", "dense"),))]

    # -- identities -------------------------------------------------------------------------
    def _row_config(self, cfg: LotteryConfig, rnd: int, density: float, arm: str
                    ) -> dict[str, Any]:
        return {"lottery": chain_key(cfg), "round": rnd, "density": density, "arm": arm}

    def _ids(self, cfg: LotteryConfig, rnd: int, density: float, arm: str) -> list[str]:
        rc = self._row_config(cfg, rnd, density, arm)
        return [make_run_id(rc, s) for s in range(cfg.seeds)]

    def _state_path(self, cfg: LotteryConfig, ctx: StudyContext, rnd: int) -> Any:
        key = hashlib.sha256(json.dumps(chain_key(cfg), sort_keys=True).encode()).hexdigest()
        return ctx.weights_dir / f"lottery_{key[:16]}_r{rnd}.npz"

    def _stored(self, ctx: StudyContext, ids: list[str]) -> bool:
        return len(ctx.store.finished(ids)) == len(ids)

    def _put(self, cfg: LotteryConfig, ctx: StudyContext, rnd: int, density: float, arm: str,
             results: list[Any], extra: list[dict[str, Any]] | None = None) -> None:
        rc = self._row_config(cfg, rnd, density, arm)
        cid = make_run_id(rc, -1)
        for i, r in enumerate(results):
            summary = {**r.summary(), **(extra[i] if extra else {})}
            summary["run_id"] = make_run_id(rc, r.seed)
            ctx.store.put(summary["run_id"], cid, "lottery", r.seed, rc, summary, r.history)

    # -- the chain --------------------------------------------------------------------------
    def run(self, cfg: LotteryConfig, ctx: StudyContext) -> None:
        from overparam.data import load_config
        from overparam.sparsity.lottery import fresh_ensemble, train_dense, train_masked
        from overparam.sparsity.masks import (
            density,
            magnitude_prune,
            ones_like,
            random_like,
            schedule,
        )

        self.plan(cfg)
        tcfg = train_config(cfg)
        seeds = list(range(cfg.seeds))
        data = load_config(tcfg.data, device=ctx.device)
        dt = torch.float32
        rounds = schedule(list(cfg.targets), cfg.rate)
        total = 1 + len(rounds) + (2 * len(cfg.targets) if cfg.controls else 0) + 1
        with ctx.progress("lottery: training", total) as tick:
            path0 = self._state_path(cfg, ctx, 0)
            if self._stored(ctx, self._ids(cfg, 0, 1.0, "ticket")) and path0.exists():
                params, rewind = _load(path0, "p:", ctx.device), _load(path0, "w:", ctx.device)
            else:
                results, ens, rewind = train_dense(tcfg, seeds, data, ctx.device, dt,
                                                   cfg.rewind_step)
                params = {n: p.detach() for n, p in ens.params.items()}
                _save(path0, {**{f"p:{n}": t for n, t in params.items()},
                              **{f"w:{n}": t for n, t in rewind.items()}})
                self._put(cfg, ctx, 0, 1.0, "ticket", results,
                          [{"density_measured": 1.0}] * len(results))
            tick()
            masks = ones_like(params)
            for rnd, d in enumerate(rounds, start=1):
                path = self._state_path(cfg, ctx, rnd)
                if self._stored(ctx, self._ids(cfg, rnd, d, "ticket")) and path.exists():
                    params, masks = _load(path, "p:", ctx.device), _load(path, "m:", ctx.device)
                else:
                    masks = magnitude_prune(params, masks, d, cfg.scope)
                    results, ens = train_masked(tcfg, seeds, data, rewind, masks, ctx.device, dt)
                    params = {n: p.detach() for n, p in ens.params.items()}
                    _save(path, {**{f"p:{n}": t for n, t in params.items()},
                                 **{f"m:{n}": t for n, t in masks.items()}})
                    self._put(cfg, ctx, rnd, d, "ticket", results,
                              [{"density_measured": x} for x in density(masks)])
                tick()
                if d in cfg.targets and cfg.controls:
                    self._controls(cfg, ctx, rnd, d, tcfg, seeds, data, rewind, masks, tick,
                                   fresh_ensemble, train_masked, random_like, density)
                if abs(d - cfg.barrier_density) < 1e-12:
                    self._barrier(cfg, ctx, rnd, d, tcfg, seeds, data, rewind, masks)
                    tick()

    def _controls(self, cfg, ctx, rnd, d, tcfg, seeds, data, rewind, masks, tick,  # noqa: ANN001
                  fresh_ensemble, train_masked, random_like, density) -> None:  # noqa: ANN001
        if not self._stored(ctx, self._ids(cfg, rnd, d, "reinit")):
            start = {n: p.detach().clone() for n, p in
                     fresh_ensemble(tcfg, seeds, data, ctx.device, torch.float32,
                                    "reinit").params.items()}
            results, _ = train_masked(tcfg, seeds, data, start, masks, ctx.device)
            self._put(cfg, ctx, rnd, d, "reinit", results,
                      [{"density_measured": x} for x in density(masks)])
        tick()
        if not self._stored(ctx, self._ids(cfg, rnd, d, "random")):
            g = torch.Generator().manual_seed(rnd)
            rmasks = random_like(masks, g)
            results, _ = train_masked(tcfg, seeds, data, rewind, rmasks, ctx.device)
            self._put(cfg, ctx, rnd, d, "random", results,
                      [{"density_measured": x} for x in density(rmasks)])
        tick()

    def _barrier(self, cfg, ctx, rnd, d, tcfg, seeds, data, rewind, masks) -> None:  # noqa: ANN001
        from overparam.probes.landscape import mode_connectivity_barrier
        from overparam.sparsity.lottery import fresh_ensemble, train_masked

        if self._stored(ctx, self._ids(cfg, rnd, d, "lmc")):
            return
        k = len(seeds)
        twins = seeds + [s + 1_000_000 for s in seeds]  # second copy: another data order
        start = {n: torch.cat([t, t]) for n, t in rewind.items()}
        masks2 = {n: torch.cat([m, m]) for n, m in masks.items()}
        ens = fresh_ensemble(tcfg, twins, data, ctx.device, torch.float32)
        results, ens = train_masked(tcfg, twins, data, start, masks2, ctx.device, ens=ens)
        extra = []
        for i in range(k):
            res = mode_connectivity_barrier(ens.member(i), ens.member(i + k), data.x_test,
                                            data.y_test, n_points=11)
            extra.append({"barrier": res.barrier, "error_curve": res.error.tolist()})
        self._put(cfg, ctx, rnd, d, "lmc", results[:k], extra)

    # -- analysis ---------------------------------------------------------------------------
    def _rows(self, cfg: LotteryConfig, ctx: StudyContext, rnd: int, d: float, arm: str
              ) -> list[dict[str, Any]] | None:
        ids = self._ids(cfg, rnd, d, arm)
        got = [ctx.store.get(i) for i in ids]
        return None if any(g is None for g in got) else [g["result"] for g in got]

    def analyze(self, cfg: LotteryConfig, ctx: StudyContext, preset: str) -> StudyReport:
        from overparam.report.figures import band, figure, save
        from overparam.sparsity.masks import schedule

        rep = StudyReport(self.name, preset)
        rounds = schedule(list(cfg.targets), cfg.rate)
        dense = self._rows(cfg, ctx, 0, 1.0, "ticket")
        if dense is None:
            raise RuntimeError("the lottery study has not run yet")
        dense_acc = [r["test_acc"] for r in dense]
        rows = [{"remaining (%)": 100, "ticket test acc (%)": pct(summarize(dense_acc)),
                 "reinit test acc (%)": "", "random-mask test acc (%)": "",
                 "ticket vs reinit": ""}]
        curves: dict[str, list[tuple[float, list[float]]]] = {a: [] for a in ARMS}
        for rnd, d in enumerate(rounds, start=1):
            if d not in cfg.targets:
                continue
            arms = {a: self._rows(cfg, ctx, rnd, d, a) for a in ARMS}
            accs = {a: [r["test_acc"] for r in v] for a, v in arms.items() if v}
            for a, v in accs.items():
                curves[a].append((d, v))
            row = {"remaining (%)": round(100 * d, 2),
                   "ticket test acc (%)": pct(summarize(accs["ticket"])),
                   "measured density (%)": f"{100 * np.mean([r['density_measured'] for r in arms['ticket']]):.3f}"}
            if "reinit" in accs:
                row["reinit test acc (%)"] = pct(summarize(accs["reinit"]))
                row["ticket vs reinit"] = welch_str(accs["ticket"], accs["reinit"])[0]
            if "random" in accs:
                row["random-mask test acc (%)"] = pct(summarize(accs["random"]))
            rows.append(row)
        rep.tables.append(Table(
            f"Lottery tickets: {cfg.model} on {cfg.data}, {cfg.scope} magnitude pruning, "
            f"{cfg.rate:.0%} per round, rewind to step {cfg.rewind_step}",
            ["remaining (%)", "measured density (%)", "ticket test acc (%)",
             "reinit test acc (%)", "random-mask test acc (%)", "ticket vs reinit"], rows))
        ticket = dict(curves["ticket"])
        if 0.1 in ticket:
            txt, p = welch_str(ticket[0.1], dense_acc)
            drop = 100 * (np.mean(dense_acc) - np.mean(ticket[0.1]))
            rep.verdicts.append(Verdict(
                "a ticket keeping 10% of the weights matches the dense model (no significant "
                "loss; the blueprint: -1.15 pp)", bool(p >= 0.05 or drop <= 0),
                f"ticket at 10% vs dense: {txt}"))
        reinit = dict(curves["reinit"])
        if 0.1 in ticket and 0.1 in reinit:
            txt, p = welch_str(ticket[0.1], reinit[0.1])
            rep.verdicts.append(Verdict(
                "at 90% pruned the ticket beats the same mask from a random reinitialization "
                "(the blueprint: +2.80 pp)",
                bool(np.mean(ticket[0.1]) > np.mean(reinit[0.1]) and p < 0.05), txt))
        rnd_b = next((i for i, d in enumerate(rounds, 1) if abs(d - cfg.barrier_density) < 1e-12),
                     None)
        lmc = self._rows(cfg, ctx, rnd_b, cfg.barrier_density, "lmc") if rnd_b else None
        if lmc:
            b = summarize([r["barrier"] for r in lmc])
            rep.notes.append(
                f"Linear mode connectivity of tickets at {cfg.barrier_density:.0%} remaining "
                f"(two copies, different data orders; Frankle et al. 2020): test-error barrier "
                f"{b.fmt(100)} pp (stable when close to 0).")
        fig, ax = figure()
        for arm, label in (("ticket", "ticket (rewound)"), ("reinit", "same mask, reinitialized"),
                           ("random", "random mask, rewound")):
            pts = sorted(curves[arm])
            if not pts:
                continue
            sums = [summarize(v) for _, v in pts]
            band(ax, [100 * d for d, _ in pts], [100 * s.mean for s in sums],
                 [100 * s.ci_low for s in sums], [100 * s.ci_high for s in sums], label)
        s = summarize(dense_acc)
        ax.axhline(100 * s.mean, color="k", ls="--", lw=1, label="dense")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{cfg.model} on {cfg.data}, {cfg.seeds} seeds (95% CI)")
        ax.legend(fontsize=8)
        rep.figures.append(save(fig, ctx.figure_dir(self.name), "accuracy_vs_remaining"))
        return rep
