"""Optimizers over stacked ensemble parameters and learning-rate schedules.

Element-wise updates written with ``torch._foreach_*`` kernels, so stacking K members' tensors
changes nothing; tests check them against ``torch.optim`` on plain modules. (``torch.optim``'s
constructor imports ``torch._dynamo``, about one second of start-up that a short run would pay.)

* SGD with heavy-ball momentum, PyTorch's convention: ``g <- g + wd theta``; ``v <- g`` at the
  first step, then ``v <- mu v + g``; ``theta <- theta - lr v``. Full-batch GD is this with the whole
  training set as the batch.
* Adam (Kingma & Ba 2015, arXiv:1412.6980) with L2 weight decay added to the gradient:
  ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
  ``theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

Cosine annealing (Loshchilov & Hutter 2017, arXiv:1608.03983) without restarts:
``lr_t = lr (1 + cos(pi t / T)) / 2`` with t the epoch (epoch budgets, as ``CosineAnnealingLR``
stepped once per epoch) or the step (step budgets).
"""

from __future__ import annotations

import math

import torch

from overparam.config import OptimConfig


class Optimizer:
    """An element-wise optimizer over a list of leaf tensors; ``lr`` may change between steps."""

    def __init__(self, cfg: OptimConfig, params: list[torch.Tensor], lr: float):
        self.cfg = cfg
        self.params = list(params)
        self.lr = lr
        self.t = 0
        self.state: list[torch.Tensor] = []
        self.state2: list[torch.Tensor] = []

    def state_of(self, param: torch.Tensor) -> list[torch.Tensor]:
        """This optimizer's state tensors of ``param`` (momentum; Adam's two moments), found by
        the parameter itself, not by its position; empty before the first step."""
        for i, p in enumerate(self.params):
            if p is param:
                return [s[i] for s in (self.state, self.state2) if s]
        raise KeyError("not a parameter of this optimizer")

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError("every parameter needs a gradient before step()")
        grads = [p.grad for p in params]
        cfg = self.cfg
        if cfg.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=cfg.weight_decay)
        self.t += 1
        if cfg.name == "adam":
            self._adam(params, grads)
            return
        if cfg.momentum:
            if not self.state:
                self.state = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.state, cfg.momentum)
                torch._foreach_add_(self.state, grads)
            grads = self.state
        torch._foreach_add_(params, grads, alpha=-self.lr)

    def _adam(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        b1, b2, eps = self.cfg.beta1, self.cfg.beta2, 1e-8
        if not self.state:
            self.state = [torch.zeros_like(p) for p in params]
            self.state2 = [torch.zeros_like(p) for p in params]
        torch._foreach_lerp_(self.state, grads, 1 - b1)
        torch._foreach_mul_(self.state2, b2)
        torch._foreach_addcmul_(self.state2, grads, grads, 1 - b2)
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        denom = torch._foreach_sqrt(self.state2)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, self.state, denom, -self.lr / bc1)


def make_optimizer(cfg: OptimConfig, params: list[torch.Tensor], lr: float) -> Optimizer:
    """The optimizer for ``cfg`` at (already scaled) learning rate ``lr``."""
    return Optimizer(cfg, params, lr)


def schedule_factor(schedule: str, t: int, total: int) -> float:
    """Multiplier of the base learning rate at time ``t`` of ``total``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / total))
    return 1.0


def set_lr(opt: Optimizer, lr: float) -> None:
    opt.lr = lr
