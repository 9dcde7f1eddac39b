"""The training loop: K replicates of one configuration trained at once.

Per replicate ``seed``: initialization from a generator seeded with ``derive_seed(seed, "init")``,
mini-batch order from ``derive_seed(seed, "order")`` (a fresh permutation each epoch, the last
batch smaller when B does not divide n, like a shuffling DataLoader without ``drop_last``). Data
sit on the device and are indexed directly. The loss of a step is
``sum_k (mean_b loss(f_k(x_kb), y_kb) + extra_k)``, so each member receives its own gradient;
``extra_k`` is the sum of the interventions' loss terms. An intervention that replaces the loss
(``Active.replaces_loss``, e.g. SOP's) supplies the whole ``[K]`` loss in place of the batch mean
(extra terms are still added); at most one may, and only on the autograd path.

The interventions of ``cfg`` (:mod:`overparam.train.interventions`) are started once the members
are built and before the optimizer is; the loop calls their hooks at each step (extra loss,
post-backward, post-step, stop), at the end of each epoch, and collects their per-member results,
artifacts and per-step series into each :class:`SeedResult`.

A result trained with ``keep_state=True`` rebuilds its trained network: :meth:`SeedResult.model`
(or :func:`models` for a list) builds the configuration's model for the data's input shape and
output count and loads the member's final parameters and buffers, in the dtype it was trained in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from overparam.config import TrainConfig, run_id
from overparam.data.dataset import Dataset
from overparam.models import build
from overparam.seeds import derive_seed
from overparam.train.ensemble import Ensemble
from overparam.train.interventions import Run, Step, start_all
from overparam.train.metrics import evaluate, per_sample_loss
from overparam.train.optim import make_optimizer, schedule_factor, set_lr


@dataclass
class SeedResult:
    """Final metrics, per-epoch history, per-step series and (optionally) final weights and
    intervention artifacts of one replicate."""

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
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    config: TrainConfig | None = field(default=None, repr=False)
    input_shape: tuple[int, ...] | None = None
    num_outputs: int | None = None

    def model(self, device: torch.device | str | None = None) -> torch.nn.Module:
        """The trained network of this replicate as a standalone module in evaluation mode:
        built from ``config`` for ``input_shape`` and ``num_outputs``, holding the final
        ``state`` (parameters and buffers, in their dtype), on ``device`` (default: where the
        state is). Needs a result of ``train(..., keep_state=True)``."""
        if self.state is None:
            raise ValueError(f"run {self.run_id[:12]} (seed {self.seed}) kept no weights: "
                             "train it with keep_state=True")
        if self.config is None or self.input_shape is None or self.num_outputs is None:
            raise ValueError(f"run {self.run_id[:12]} (seed {self.seed}) does not say what it "
                             "trained (config, input_shape, num_outputs)")
        return rebuild(self.config, self.state, self.input_shape, self.num_outputs, device)

    def summary(self) -> dict[str, Any]:
        return {"seed": self.seed, "run_id": self.run_id, "train_acc": self.train_acc,
                "test_acc": self.test_acc, "train_loss": self.train_loss,
                "test_loss": self.test_loss, "wall_s": self.wall_s, **self.extra}


def models(results: list[SeedResult], device: torch.device | str | None = None
           ) -> list[torch.nn.Module]:
    """The trained network of each result (:meth:`SeedResult.model`), in order."""
    return [r.model(device) for r in results]


def rebuild(cfg: TrainConfig, state: dict[str, Any], input_shape: tuple[int, ...],
            num_outputs: int, device: torch.device | str | None = None) -> torch.nn.Module:
    """Model ``cfg.model`` for inputs ``input_shape`` and ``num_outputs`` outputs holding
    ``state`` (a member state dict: tensors or numpy arrays), cast to the state's floating dtype,
    in evaluation mode. Every parameter and buffer must be in ``state`` (strict loading)."""
    state = {k: torch.as_tensor(v) for k, v in state.items()}
    floats = [v.dtype for v in state.values() if v.is_floating_point()]
    if device is None:
        device = next(iter(state.values())).device if state else "cpu"
    m = build(cfg.model.name, tuple(input_shape), int(num_outputs),
              parameterization=cfg.model.parameterization, output_scale=cfg.model.output_scale)
    if floats:
        m = m.to(dtype=floats[0])
    m.load_state_dict(state, strict=True)
    return m.to(device).eval()


def output_count(data: Dataset) -> int:
    """Outputs of a model for ``data``: its classes, or its regression targets' width."""
    return data.num_classes if data.task == "classification" else int(data.y_train.shape[-1])


def build_members(cfg: TrainConfig, seeds: list[int], data: Dataset) -> list[torch.nn.Module]:
    """One model per seed, initialized from that seed's ``init`` stream."""
    out_dim = output_count(data)
    return [build(cfg.model.name, data.input_shape, out_dim,
                  parameterization=cfg.model.parameterization,
                  output_scale=cfg.model.output_scale,
                  generator=torch.Generator().manual_seed(derive_seed(s, "init")))
            for s in seeds]


def train(cfg: TrainConfig, seeds: list[int], data: Dataset | None = None,
          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
          progress: Callable[[int, int], None] | None = None, keep_state: bool = False,
          weights_dir: str | Path | None = None) -> list[SeedResult]:
    """Train ``len(seeds)`` replicates of ``cfg`` as one ensemble; one result per seed.

    ``data`` defaults to ``load_config(cfg.data)``. ``progress(done, total)`` is called after
    each step. ``weights_dir`` is where interventions read other runs' stored weights (a mask's
    parent run). ``keep_state`` returns each member's final weights.
    """
    from overparam.data import load_config
    from overparam.weights import WeightStore

    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds in {seeds}")
    t0 = time.perf_counter()
    if data is None:
        data = load_config(cfg.data)
    data = data.to(device, dtype)
    n = data.n_train
    bsz = cfg.resolved_batch_size(n)
    lr = cfg.optim.effective_lr(bsz)
    ens = Ensemble([m.to(device=device, dtype=dtype) for m in build_members(cfg, seeds, data)],
                   fused=not cfg.needs_autograd)
    steps_per_epoch = math.ceil(n / bsz)
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    run = Run(cfg, seeds, data, ens, device, dtype, total_steps, steps_per_epoch,
              [torch.Generator().manual_seed(derive_seed(s, "order")) for s in seeds],
              WeightStore(weights_dir) if weights_dir is not None else None)
    actives = start_all(run)
    if sum(a.replaces_loss for a in actives) > (0 if ens.fused else 1):
        raise ValueError("at most one intervention may replace the loss, on the autograd path")
    task = run.task
    opt = make_optimizer(cfg.optim, ens.parameters(), lr)
    K = len(seeds)
    history: list[list[dict[str, float]]] = [[] for _ in seeds]
    x_train, y_train = data.x_train, data.y_train
    step = 0
    stop = False
    ens.train()
    for epoch in range(epochs):
        if cfg.steps is None:
            set_lr(opt, lr * schedule_factor(cfg.optim.schedule, epoch, epochs))
        perms = torch.stack([torch.randperm(n, generator=g) for g in run.order]).to(device)
        run_loss = torch.zeros(K, device=device, dtype=torch.float64)
        run_correct = torch.zeros(K, device=device, dtype=torch.float64)
        seen = 0
        for start in range(0, n, bsz):
            if step >= total_steps or stop:
                break
            if cfg.steps is not None:
                set_lr(opt, lr * schedule_factor(cfg.optim.schedule, step, total_steps))
            idx = perms[:, start:start + bsz]
            xb = x_train.index_select(0, idx.reshape(-1)).view(*idx.shape, *x_train.shape[1:])
            yb = y_train[idx]
            opt.zero_grad()
            if ens.fused:
                losses, out = ens.fused_loss_and_grad(xb, yb, task)
            else:
                out = ens(xb)
                losses = per_sample_loss(out, yb, task)
            st = Step(run, opt, epoch, step, idx, xb, yb, out, losses) if actives else None
            if not ens.fused:
                terms = [(a, e) for a in actives if (e := a.loss(st)) is not None]
                extra = [e for a, e in terms if not a.replaces_loss]
                whole = [e for a, e in terms if a.replaces_loss]
                total = whole[0].sum() if whole else losses.sum() / idx.shape[1]
                (total + sum(extra).sum() if extra else total).backward()
            for a in actives:
                a.post_backward(st)
            opt.step()
            for a in actives:
                a.post_step(st)
            with torch.no_grad():
                run_loss.add_(losses.detach().sum(1))
                if task.startswith("classification"):
                    run_correct.add_((out.detach().argmax(-1) == yb).sum(1))
            seen += idx.shape[1]
            step += 1
            stop = any(a.should_stop(st) for a in actives)
            if progress is not None:
                progress(step, total_steps)
        if seen == 0:
            break
        metrics: dict[str, list[float]] = {
            "train_loss": (run_loss / seen).tolist(),
            "train_acc": ((run_correct / seen) if task.startswith("classification")
                          else torch.full((K,), float("nan"))).tolist(),
            "lr": [opt.lr] * K,
        }
        last = epoch == epochs - 1 or stop
        if (epoch + 1) % cfg.eval_every == 0 or last:
            tl, ta = evaluate(ens, data.x_test, data.y_test, task)
            metrics["test_loss"], metrics["test_acc"] = tl.tolist(), ta.tolist()
        for k in range(K):
            history[k].append({"epoch": epoch + 1, "step": step,
                               **{name: vals[k] for name, vals in metrics.items()}})
        for a in actives:
            a.epoch_end(run, epoch, metrics)
        if stop:
            break
    train_loss, train_acc = evaluate(ens, x_train, y_train, task)
    test_loss, test_acc = evaluate(ens, data.x_test, data.y_test, task)
    wall = time.perf_counter() - t0
    extras: list[dict[str, Any]] = [{"lr": lr, "batch_size": bsz, "steps": step} for _ in seeds]
    artifacts: list[dict[str, dict[str, torch.Tensor]]] = [{} for _ in seeds]
    for a in actives:
        for k, r in enumerate(a.results()):
            extras[k].update(r)
        for name, states in a.artifacts().items():
            for k, state in enumerate(states):
                artifacts[k][name] = state
    results = []
    for k, s in enumerate(seeds):
        results.append(SeedResult(
            seed=s, run_id=run_id(cfg, s), train_loss=float(train_loss[k]),
            train_acc=float(train_acc[k]), test_loss=float(test_loss[k]),
            test_acc=float(test_acc[k]), history=history[k], wall_s=wall / K,
            state=ens.member_state(k) if keep_state else None, extra=extras[k],
            series=run.series[k], artifacts=artifacts[k], config=cfg,
            input_shape=data.input_shape, num_outputs=output_count(data)))
    return results
