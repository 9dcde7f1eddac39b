"""Optimizers over stacked ensemble parameters and learning-rate schedules.

SGD with momentum (heavy ball, PyTorch's convention ``v <- mu v + g``, ``theta <- theta - lr v``),
Adam (Kingma & Ba 2015, arXiv:1412.6980) and full-batch gradient descent (SGD whose batch is the
whole training set). All are element-wise, so stacking K members' tensors changes nothing.

Cosine annealing (Loshchilov & Hutter 2017, arXiv:1608.03983) without restarts:
``lr_t = lr * (1 + cos(pi t / T)) / 2`` with t the epoch (epoch budgets, as
``CosineAnnealingLR`` stepped once per epoch) or the step (step budgets).
"""

from __future__ import annotations

import math

import torch

from overparam.config import OptimConfig


def make_optimizer(cfg: OptimConfig, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The torch optimizer for ``cfg`` at (already scaled) learning rate ``lr``."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2),
                                weight_decay=cfg.weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           foreach=True)


def schedule_factor(schedule: str, t: int, total: int) -> float:
    """Multiplier of the base learning rate at time ``t`` of ``total``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / total))
    return 1.0


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
