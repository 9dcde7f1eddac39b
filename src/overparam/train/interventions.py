"""Interventions: anything that changes how a run trains, as part of the run's identity.

An intervention is a frozen dataclass (a subclass of :class:`overparam.config.Intervention`)
inside ``TrainConfig.interventions``: its settings enter the canonical JSON and so the run id,
and a worker rebuilds it by ``kind`` from :data:`REGISTRY`, a plain dict of ``"module:Class"``
paths. ``start(run)`` returns its live side, an :class:`Active`, whose hooks the loop calls:

* ``loss(step)``: an extra loss term per member ``[K]``, added to that member's batch loss
  (``step.idx`` holds the batch's sample indices, so per-sample parameters work); an Active
  whose class sets ``replaces_loss = True`` returns instead each member's *whole* loss, used in
  place of the batch mean (SOP, :mod:`overparam.train.sop`; at most one per run, autograd path);
* ``post_backward(step)``: gradients are in ``.grad`` of the stacked parameters;
* ``post_step(step)``: after the optimizer step (re-apply a mask, measure, freeze a member);
* ``epoch_end(run, epoch, metrics)``; ``should_stop(step)``: end the run now;
* ``results()``: per-member numbers added to the run's result; ``artifacts()``: per-member
  state dicts kept beside the run's weights (a mask, a snapshot), the state a later run needs.

``run.log(name, value, step)`` (or ``step.log(name, value)``) records a per-step series that lands
in the store with the run. An intervention with ``needs_autograd`` switches the fused MLP step
off for its run (the loop differentiates through the loss); nothing else does.

This module holds the general ones: stop at a target training loss, a gradient-norm penalty, a
sharpness tracker, weight snapshots (for rewinding) and another data order. Pruning masks are in
:mod:`overparam.sparsity.lottery`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from overparam.config import Intervention, TrainConfig
from overparam.errors import ConfigError
from overparam.seeds import derive_seed
from overparam.train.metrics import evaluate, loss_fn

if TYPE_CHECKING:
    from overparam.data.dataset import Dataset
    from overparam.train.ensemble import Ensemble
    from overparam.train.optim import Optimizer
    from overparam.weights import WeightStore

REGISTRY = MappingProxyType({
    "stop_at_loss": "overparam.train.interventions:StopAtLoss",
    "grad_penalty": "overparam.train.interventions:GradPenalty",
    "grad_norm": "overparam.train.interventions:GradNorm",
    "sharpness": "overparam.train.interventions:SharpnessTracker",
    "snapshot": "overparam.train.interventions:Snapshot",
    "data_order": "overparam.train.interventions:DataOrder",
    "mask": "overparam.sparsity.lottery:Mask",
    "dynamic_sparse": "overparam.sparsity.dst:DynamicSparse",
    "sop": "overparam.train.sop:SparseOverparam",
})


def intervention_class(kind: str) -> type:
    """The settings class registered for ``kind``."""
    if kind not in REGISTRY:
        raise ConfigError("interventions", kind, "a kind among " + ", ".join(REGISTRY))
    module, attr = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def _number(name: str, value: Any, low: float = 0.0, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        raise ConfigError(name, value, f"a finite number {'>' if strict else '>='} {low:g}")


def _count(name: str, value: Any, low: int = 1) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise ConfigError(name, value, f"an integer >= {low}")


# -- the run as the hooks see it ----------------------------------------------------------------
@dataclass
class Run:
    """One training run of K members, as its interventions see it."""

    cfg: TrainConfig
    seeds: list[int]
    data: Dataset
    ensemble: Ensemble
    device: Any
    dtype: torch.dtype
    total_steps: int
    steps_per_epoch: int
    order: list[torch.Generator]
    weights: WeightStore | None = None
    series: list[dict[str, list[tuple[int, float]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.series = [{} for _ in self.seeds]

    @property
    def size(self) -> int:
        return len(self.seeds)

    @property
    def task(self) -> str:
        """The loss task of the run (:meth:`TrainConfig.task`)."""
        return self.cfg.task(self.data.task)

    def log(self, name: str, value: Any, step: int) -> None:
        """Record ``value`` (one number per member, or one for all) of series ``name``."""
        vals = value.detach().double().cpu().reshape(-1).tolist() if torch.is_tensor(value) else (
            list(value) if isinstance(value, (list, tuple)) else [value] * self.size)
        if len(vals) == 1 and self.size > 1:
            vals = vals * self.size
        for k, v in enumerate(vals):
            self.series[k].setdefault(name, []).append((int(step), float(v)))

    def parent_states(self, cfg: TrainConfig, name: str = "final") -> list[dict[str, torch.Tensor]]:
        """Per member, the stored weights (or artifact ``name``) of run ``cfg`` of its seed."""
        from overparam.config import run_id

        if self.weights is None:
            raise ConfigError("weights", None, "a weights directory: this run reads another "
                              "run's weights (train it through a study or pass weights_dir)")
        return [self.weights.load(run_id(cfg, s), name, self.device) for s in self.seeds]


@dataclass
class Step:
    """One optimizer step: ``t`` is its 0-based index; after it, ``t + 1`` steps are done."""

    run: Run
    optimizer: Optimizer
    epoch: int
    t: int
    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    out: torch.Tensor
    losses: torch.Tensor  # per sample [K, B]; carries the graph on the autograd path

    def log(self, name: str, value: Any, step: int | None = None) -> None:
        self.run.log(name, value, self.t + 1 if step is None else step)


class Active:
    """The live side of an intervention in one run; every hook is a no-op unless overridden.

    ``replaces_loss``: ``loss(step)`` is each member's whole loss ``[K]`` (not an extra term).
    """

    replaces_loss: bool = False

    def loss(self, step: Step) -> torch.Tensor | None:
        return None

    def post_backward(self, step: Step) -> None:
        pass

    def post_step(self, step: Step) -> None:
        pass

    def epoch_end(self, run: Run, epoch: int, metrics: dict[str, list[float]]) -> None:
        pass

    def should_stop(self, step: Step) -> bool:
        return False

    def results(self) -> list[dict[str, Any]]:
        return []

    def artifacts(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        return {}


# -- stop at a target training loss --------------------------------------------------------------
@dataclass(frozen=True)
class StopAtLoss(Intervention):
    """Stop each member once its training loss is at most ``target`` (or at the step budget).

    Every ``every`` steps the loss of every member on the whole training set is evaluated (in
    evaluation mode, like the final metrics) and logged as the series ``train_loss``. A member at
    or below the target is frozen there (its weights and buffers are restored after every later
    step), so members stop at matched training loss; the run ends when all are frozen. The
    result records per member whether the target was met, at which step and at what loss.
    """

    kind: ClassVar[str] = "stop_at_loss"
    target: float
    every: int = 10

    def __post_init__(self) -> None:
        _number("stop_at_loss.target", self.target)
        _count("stop_at_loss.every", self.every)

    def start(self, run: Run) -> Active:
        return _StopAtLoss(self, run)


class _StopAtLoss(Active):
    def __init__(self, cfg: StopAtLoss, run: Run):
        self.cfg, self.run = cfg, run
        self.frozen = [False] * run.size
        self.step_met: list[int | None] = [None] * run.size
        self.loss_met: list[float | None] = [None] * run.size
        self.saved: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def post_step(self, step: Step) -> None:
        ens = self.run.ensemble
        tensors = {**ens.params, **{f"buffer:{n}": b for n, b in ens.buffers.items()}}
        for k in (k for k, f in enumerate(self.frozen) if f):
            for n, t in tensors.items():
                t[k].copy_(self.saved[n][k])
        done = step.t + 1
        if done % self.cfg.every and done != self.run.total_steps:
            return
        data = self.run.data
        loss, _ = evaluate(ens, data.x_train, data.y_train, self.run.task)
        step.log("train_loss", loss)
        for k, v in enumerate(loss.tolist()):
            if not self.frozen[k] and v <= self.cfg.target:
                self.frozen[k], self.step_met[k], self.loss_met[k] = True, done, v
                for n, t in tensors.items():
                    self.saved.setdefault(n, t.detach().clone())[k].copy_(t[k])

    def should_stop(self, step: Step) -> bool:
        return all(self.frozen)

    def results(self) -> list[dict[str, Any]]:
        return [{"target_loss": self.cfg.target, "target_met": f, "target_step": s,
                 "target_check_loss": v}
                for f, s, v in zip(self.frozen, self.step_met, self.loss_met)]


# -- gradient-norm penalty -----------------------------------------------------------------------
@dataclass(frozen=True)
class GradPenalty(Intervention):
    """Adds ``lam * ||grad L||^2`` to each member's loss (double backpropagation).

    Barrett & Dherin 2021 (arXiv:2009.11162): gradient descent with step ``h`` follows the
    modified loss ``L + (h / 4) ||grad L||^2`` (implicit gradient regularization); Smith, Dherin,
    Barrett & De 2021 (arXiv:2101.12176): SGD with batches of size m adds
    ``(h / 4) mean_j ||grad L_j||^2`` over its mini-batches. With ``micro_batch = m > 0`` the
    batch is cut into consecutive chunks of m samples and the penalty is the mean over chunks of
    ``||grad L_chunk||^2`` (``L_chunk``: the mean loss on the chunk); with 0, one chunk. The
    penalty (without ``lam``) is logged as the series ``grad_norm_sq``.
    """

    kind: ClassVar[str] = "grad_penalty"
    needs_autograd: ClassVar[bool] = True
    lam: float
    micro_batch: int = 0

    def __post_init__(self) -> None:
        _number("grad_penalty.lam", self.lam, strict=False)
        _count("grad_penalty.micro_batch", self.micro_batch, low=0)

    def start(self, run: Run) -> Active:
        return _GradPenalty(self, run)


class _GradPenalty(Active):
    def __init__(self, cfg: GradPenalty, run: Run):
        self.cfg, self.run = cfg, run

    def loss(self, step: Step) -> torch.Tensor:
        params = self.run.ensemble.parameters()
        batch = step.losses.shape[1]
        m = self.cfg.micro_batch or batch
        starts = range(0, batch, m)
        penalty = torch.zeros(self.run.size, dtype=step.losses.dtype, device=step.losses.device)
        for s in starts:
            chunk = step.losses[:, s:s + m].mean(1).sum()  # members' losses are separate terms
            grads = torch.autograd.grad(chunk, params, create_graph=True)
            penalty = penalty + sum(g.pow(2).flatten(1).sum(1) for g in grads)
        penalty = penalty / len(starts)
        step.log("grad_norm_sq", penalty.detach(), step.t)
        return self.cfg.lam * penalty


@dataclass(frozen=True)
class GradNorm(Intervention):
    """Log each member's squared gradient norm ``||grad L_k||^2`` of the loss it descends, read
    from the gradients after the backward pass (no double backpropagation; the fused MLP step
    keeps running), as the series ``grad_norm_sq`` every ``every`` steps. With another
    intervention adding a loss term, the gradient is that of the total loss. Barrett & Dherin's
    (2021, arXiv:2009.11162) R_IG is its trajectory mean divided by the parameter count."""

    kind: ClassVar[str] = "grad_norm"
    every: int = 1

    def __post_init__(self) -> None:
        _count("grad_norm.every", self.every)

    def start(self, run: Run) -> Active:
        return _GradNorm(self, run)


class _GradNorm(Active):
    def __init__(self, cfg: GradNorm, run: Run):
        self.cfg, self.run = cfg, run

    def post_backward(self, step: Step) -> None:
        if step.t % self.cfg.every:
            return
        with torch.no_grad():
            sq = sum(p.grad.pow(2).flatten(1).sum(1) for p in self.run.ensemble.parameters()
                     if p.grad is not None)
        step.log("grad_norm_sq", sq, step.t)


# -- sharpness tracker ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SharpnessTracker(Intervention):
    """Top Hessian eigenvalue of each member's training loss every ``every`` steps.

    Measured on a fixed subset, the first ``samples`` training samples (Cohen et al. 2021,
    arXiv:2103.00065, use up to 5,000), in evaluation mode, by Lanczos to a relative residual
    ``tol`` (:func:`overparam.probes.hessian.top_eigenvalues`); logged as the series
    ``lambda_max`` at step 0 and after every ``every`` steps (and after the last).
    """

    kind: ClassVar[str] = "sharpness"
    every: int = 10
    samples: int = 1000
    tol: float = 1e-3
    max_iter: int = 100

    def __post_init__(self) -> None:
        _count("sharpness.every", self.every)
        _count("sharpness.samples", self.samples)
        _number("sharpness.tol", self.tol)
        _count("sharpness.max_iter", self.max_iter, low=2)

    def start(self, run: Run) -> Active:
        return _SharpnessTracker(self, run)


class _SharpnessTracker(Active):
    def __init__(self, cfg: SharpnessTracker, run: Run):
        self.cfg, self.run = cfg, run
        n = min(cfg.samples, run.data.n_train)
        self.x, self.y = run.data.x_train[:n], run.data.y_train[:n]
        self.n_hvp = [0] * run.size
        self.measure(0)

    def measure(self, step: int) -> None:
        from overparam.probes.hessian import top_eigenvalues

        values = []
        for k, seed in enumerate(self.run.seeds):
            model = self.run.ensemble.member(k)
            loss = loss_fn(self.run.task)
            with torch.no_grad():
                finite = bool(torch.isfinite(loss(model(self.x), self.y)))
            try:
                r = top_eigenvalues(model, loss, self.x, self.y, k=1, tol=self.cfg.tol,
                                    max_iter=self.cfg.max_iter,
                                    seed=derive_seed(seed, "sharpness") % 2 ** 31) if finite \
                    else None
            except ValueError:  # Lanczos met an overflowing Hessian-vector product
                r = None
            if r is not None:
                self.n_hvp[k] += r.n_hvp
            # a diverged member has no curvature to measure: nan in the series
            values.append(r.eigenvalues[0] if r is not None else float("nan"))
        self.run.log("lambda_max", values, step)

    def post_step(self, step: Step) -> None:
        done = step.t + 1
        if done % self.cfg.every == 0 or done == self.run.total_steps:
            self.measure(done)

    def results(self) -> list[dict[str, Any]]:
        """Hessian-vector products the tracker spent per member (its cost)."""
        return [{"sharpness_hvps": n} for n in self.n_hvp]


# -- weight snapshots, data order ----------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot(Intervention):
    """Keeps every member's weights after ``step`` optimizer steps as the artifact
    ``step<k>``: the rewind point of a lottery ticket (Frankle et al. 2020, arXiv:1912.05671)."""

    kind: ClassVar[str] = "snapshot"
    step: int

    def __post_init__(self) -> None:
        _count("snapshot.step", self.step)

    @property
    def artifact(self) -> str:
        return f"step{self.step}"

    def start(self, run: Run) -> Active:
        if self.step > run.total_steps:
            raise ConfigError("snapshot.step", self.step,
                              f"at most the run's {run.total_steps} steps")
        return _Snapshot(self, run)


class _Snapshot(Active):
    def __init__(self, cfg: Snapshot, run: Run):
        self.cfg, self.run = cfg, run
        self.states: list[dict[str, torch.Tensor]] = []

    def post_step(self, step: Step) -> None:
        if step.t + 1 == self.cfg.step:
            self.states = [self.run.ensemble.member_state(k) for k in range(self.run.size)]

    def artifacts(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        return {self.cfg.artifact: self.states}


@dataclass(frozen=True)
class DataOrder(Intervention):
    """Mini-batches in the order of replicate ``seed + offset``, the initialization unchanged:
    the second copy of a run for linear mode connectivity (Frankle et al. 2020)."""

    kind: ClassVar[str] = "data_order"
    offset: int = 1

    def __post_init__(self) -> None:
        _count("data_order.offset", self.offset)

    def start(self, run: Run) -> Active:
        run.order[:] = [torch.Generator().manual_seed(derive_seed(s + self.offset, "order"))
                        for s in run.seeds]
        return Active()


def start_all(run: Run) -> list[Active]:
    """The live side of every intervention of ``run.cfg``, in order."""
    return [i.start(run) for i in run.cfg.interventions]
