"""Shared plumbing of the probes: parameter selection, flat vectors, a mode that is restored."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

ParamSelector = Sequence[str] | Callable[[str], bool] | None


def select_names(model: nn.Module, params: ParamSelector = None) -> list[str]:
    """Names of the trainable parameters selected by a list of names (or name prefixes, e.g. a
    module path like ``"layers.1"``) or a predicate; all of them when ``params`` is None."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if params is None:
        return names
    if callable(params):
        chosen = [n for n in names if params(n)]
    else:
        wanted = list(params)
        chosen = [n for n in names if any(n == w or n.startswith(w + ".") for w in wanted)]
        missing = [w for w in wanted if not any(n == w or n.startswith(w + ".") for n in names)]
        if missing:
            raise ValueError(f"no parameter named {missing[0]!r}; parameters: {', '.join(names)}")
    if not chosen:
        raise ValueError("the parameter selection is empty")
    return chosen


def parameter_groups(model: nn.Module) -> dict[str, list[str]]:
    """Trainable parameters grouped by their module (``layers.0`` -> weight and bias)."""
    groups: dict[str, list[str]] = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(n.rsplit(".", 1)[0] if "." in n else n, []).append(n)
    return groups


@contextmanager
def mode(model: nn.Module, train: bool | None) -> Iterator[None]:
    """Put ``model`` in train/eval mode for the block and restore every submodule's flag after.
    ``None`` keeps the current mode."""
    if train is None:
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        n = t.numel()
        out.append(vec[i:i + n].view_as(t))
        i += n
    return out


class FunctionalModel:
    """``f(theta_selected, x)`` of a module, other parameters fixed, buffers cloned per call.

    Cloning the buffers keeps BatchNorm's running statistics untouched even when a probe runs
    the model in training mode.
    """

    def __init__(self, model: nn.Module, params: ParamSelector = None, train: bool | None = False):
        self.model = model
        self.names = select_names(model, params)
        all_params = dict(model.named_parameters())
        self.theta = [all_params[n].detach() for n in self.names]
        self.fixed = {n: p.detach() for n, p in all_params.items() if n not in self.names}
        self.buffers = {n: b.detach() for n, b in model.named_buffers()}
        self.train = train
        self.numel = sum(t.numel() for t in self.theta)

    def __call__(self, theta: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        state = {**self.fixed, **dict(zip(self.names, theta))}
        state.update({n: b.clone() for n, b in self.buffers.items()})
        with mode(self.model, self.train):
            return functional_call(self.model, state, (x,))

    @property
    def dtype(self) -> torch.dtype:
        return self.theta[0].dtype

    @property
    def device(self) -> torch.device:
        return self.theta[0].device


def batches(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int | None
            ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """``(x, y, weight)`` chunks with weights ``len(chunk) / n`` (for mean-reduced losses)."""
    n = len(inputs)
    if batch_size is None or batch_size >= n:
        return [(inputs, targets, 1.0)]
    return [(inputs[i:i + batch_size], targets[i:i + batch_size],
             len(inputs[i:i + batch_size]) / n) for i in range(0, n, batch_size)]
