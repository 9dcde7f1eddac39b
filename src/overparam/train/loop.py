"""The training loop: K replicates of one configuration trained at once.

Per replicate ``seed``: initialization from a generator seeded with ``derive_seed(seed, "init")``,
mini-batch order from ``derive_seed(seed, "order")`` (a fresh permutation each epoch, the last
batch smaller when B does not divide n, like a shuffling DataLoader without ``drop_last``). Data
sit on the device and are indexed directly. The loss of a step is
``sum_k mean_b loss(f_k(x_kb), y_kb)``, so each member receives its own gradient.

Hook points (lists of callables receiving a :class:`HookContext`): ``post_backward`` (gradients
are in ``.grad`` of the stacked parameters), ``post_step`` (after the optimizer step, e.g. to
re-apply a pruning mask) and ``epoch_end`` (after that epoch's metrics).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from overparam.config import TrainConfig, derive_seed, run_id
from overparam.data.dataset import Dataset
from overparam.models import build
from overparam.train.ensemble import Ensemble
from overparam.train.optim import Optimizer, make_optimizer, schedule_factor, set_lr


@dataclass
class HookContext:
    ensemble: Ensemble
    optimizer: Optimizer
    seeds: list[int]
    epoch: int
    step: int
    metrics: dict[str, list[float]] | None = None


@dataclass
class Hooks:
    post_backward: list[Callable[[HookContext], None]] = field(default_factory=list)
    post_step: list[Callable[[HookContext], None]] = field(default_factory=list)
    epoch_end: list[Callable[[HookContext], None]] = field(default_factory=list)


@dataclass
class SeedResult:
    """Final metrics, per-epoch history and (optionally) final weights of one replicate."""

    seed: int
    run_id: str
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    history: list[dict[str, float]]
    wall_s: float
    state: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"seed": self.seed, "run_id": self.run_id, "train_acc": self.train_acc,
                "test_acc": self.test_acc, "train_loss": self.train_loss,
                "test_loss": self.test_loss, "wall_s": self.wall_s, **self.extra}


def per_sample_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy per sample (classification) or mean squared error per sample (regression)."""
    if task == "classification":
        return F.cross_entropy(out.flatten(0, -2), y.flatten(), reduction="none").view(y.shape)
    return (out - y).pow(2).mean(-1)


@torch.no_grad()
def evaluate(ens: Ensemble, x: torch.Tensor, y: torch.Tensor, task: str, chunk: int = 2048
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss ``[K]`` and accuracy ``[K]`` of every member on ``(x, y)`` (evaluation mode)."""
    was_training = ens.training
    ens.eval()
    loss = torch.zeros(ens.size, device=x.device, dtype=torch.float64)
    correct = torch.zeros(ens.size, device=x.device, dtype=torch.float64)
    for s in range(0, len(x), chunk):
        xc, yc = x[s:s + chunk], y[s:s + chunk]
        out = ens(xc, shared=True)
        yk = yc.expand(ens.size, *yc.shape)
        loss += per_sample_loss(out, yk, task).sum(1).double()
        if task == "classification":
            correct += (out.argmax(-1) == yk).sum(1).double()
    ens.train(was_training)
    n = len(x)
    acc = correct / n if task == "classification" else torch.full_like(correct, float("nan"))
    return loss / n, acc


def build_members(cfg: TrainConfig, seeds: list[int], data: Dataset) -> list[torch.nn.Module]:
    """One model per seed, initialized from that seed's ``init`` stream."""
    out_dim = data.num_classes if data.task == "classification" else int(data.y_train.shape[-1])
    return [build(cfg.model.name, data.input_shape, out_dim,
                  parameterization=cfg.model.parameterization,
                  generator=torch.Generator().manual_seed(derive_seed(s, "init")))
            for s in seeds]


def train(cfg: TrainConfig, seeds: list[int], data: Dataset | None = None,
          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
          hooks: Hooks | None = None, progress: Callable[[int, int], None] | None = None,
          keep_state: bool = False, ensemble: Ensemble | None = None) -> list[SeedResult]:
    """Train ``len(seeds)`` replicates of ``cfg`` as one ensemble; one result per seed.

    ``data`` defaults to ``load_config(cfg.data)``; ``ensemble`` lets a caller start from given
    weights (e.g. a rewound lottery ticket). ``progress(done, total)`` is called after each step.
    """
    from overparam.data import load_config

    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds in {seeds}")
    t0 = time.perf_counter()
    hooks = hooks or Hooks()
    if data is None:
        data = load_config(cfg.data)
    data = data.to(device, dtype)
    n = data.n_train
    bsz = cfg.resolved_batch_size(n)
    lr = cfg.optim.effective_lr(bsz)
    if ensemble is None:
        ensemble = Ensemble([m.to(device=device, dtype=dtype)
                             for m in build_members(cfg, seeds, data)])
    ens = ensemble
    opt = make_optimizer(cfg.optim, ens.parameters(), lr)
    order = [torch.Generator().manual_seed(derive_seed(s, "order")) for s in seeds]
    steps_per_epoch = math.ceil(n / bsz)
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    K = len(seeds)
    history: list[list[dict[str, float]]] = [[] for _ in seeds]
    x_train, y_train = data.x_train, data.y_train
    step = 0
    ens.train()
    for epoch in range(epochs):
        if cfg.steps is None:
            set_lr(opt, lr * schedule_factor(cfg.optim.schedule, epoch, epochs))
        perms = torch.stack([torch.randperm(n, generator=g) for g in order]).to(device)
        run_loss = torch.zeros(K, device=device, dtype=torch.float64)
        run_correct = torch.zeros(K, device=device, dtype=torch.float64)
        seen = 0
        for start in range(0, n, bsz):
            if step >= total_steps:
                break
            if cfg.steps is not None:
                set_lr(opt, lr * schedule_factor(cfg.optim.schedule, step, total_steps))
            idx = perms[:, start:start + bsz]
            xb = x_train.index_select(0, idx.reshape(-1)).view(*idx.shape, *x_train.shape[1:])
            yb = y_train[idx]
            opt.zero_grad()
            if ens.fast_mlp:
                losses, out = ens.fused_loss_and_grad(xb, yb, data.task)
            else:
                out = ens(xb)
                losses = per_sample_loss(out, yb, data.task)
                (losses.sum() / idx.shape[1]).backward()
            if hooks.post_backward or hooks.post_step:
                ctx = HookContext(ens, opt, seeds, epoch, step)
                for h in hooks.post_backward:
                    h(ctx)
                opt.step()
                for h in hooks.post_step:
                    h(ctx)
            else:
                opt.step()
            with torch.no_grad():
                run_loss.add_(losses.detach().sum(1))
                if data.task == "classification":
                    run_correct.add_((out.detach().argmax(-1) == yb).sum(1))
            seen += idx.shape[1]
            step += 1
            if progress is not None:
                progress(step, total_steps)
        metrics: dict[str, list[float]] = {
            "train_loss": (run_loss / seen).tolist(),
            "train_acc": ((run_correct / seen) if data.task == "classification"
                          else torch.full((K,), float("nan"))).tolist(),
            "lr": [opt.lr] * K,
        }
        last = epoch == epochs - 1
        if (epoch + 1) % cfg.eval_every == 0 or last:
            tl, ta = evaluate(ens, data.x_test, data.y_test, data.task)
            metrics["test_loss"], metrics["test_acc"] = tl.tolist(), ta.tolist()
        for k in range(K):
            history[k].append({"epoch": epoch + 1, "step": step,
                               **{name: vals[k] for name, vals in metrics.items()}})
        ctx = HookContext(ens, opt, seeds, epoch, step, metrics)
        for h in hooks.epoch_end:
            h(ctx)
    train_loss, train_acc = evaluate(ens, x_train, y_train, data.task)
    test_loss, test_acc = evaluate(ens, data.x_test, data.y_test, data.task)
    wall = time.perf_counter() - t0
    results = []
    for k, s in enumerate(seeds):
        results.append(SeedResult(
            seed=s, run_id=run_id(cfg, s), train_loss=float(train_loss[k]),
            train_acc=float(train_acc[k]), test_loss=float(test_loss[k]),
            test_acc=float(test_acc[k]), history=history[k], wall_s=wall / K,
            state=ens.member_state(k) if keep_state else None,
            extra={"lr": lr, "batch_size": bsz, "steps": step}))
    return results
