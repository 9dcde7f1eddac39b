"""Fully connected networks: the blueprint's ReLU MLP and deep linear networks.

Standard parameterization: ``h_{l+1} = phi(W_l h_l + b_l)`` with PyTorch's default initialization
(W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))). NTK parameterization (Jacot et al. 2018,
arXiv:1806.07572): ``h_{l+1} = phi(sigma_w / sqrt(fan_in) * W_l h_l + sigma_b * b_l)`` with
W, b ~ N(0, 1), the convention of neural-tangents' ``stax.Dense``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """``depth`` linear layers (``depth - 1`` hidden of ``width``) with ``activation`` between.

    Inputs of any shape ``[n, ...]`` are flattened. ``activation`` is ``"relu"``, ``"tanh"`` or
    ``"linear"`` (a deep linear network).
    """

    def __init__(self, in_features: int, width: int, num_outputs: int, depth: int = 4,
                 activation: str = "relu", parameterization: str = "standard",
                 w_std: float = math.sqrt(2.0), b_std: float = 0.0):
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        dims = [in_features] + [width] * (depth - 1) + [num_outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.activation = activation
        self.parameterization = parameterization
        self.w_std = w_std
        self.b_std = b_std

    def layer_scales(self) -> list[tuple[float, float]]:
        """Multipliers ``(weight, bias)`` applied in forward: 1 for standard parameterization."""
        if self.parameterization == "ntk":
            return [(self.w_std / math.sqrt(layer.in_features), self.b_std)
                    for layer in self.layers]
        return [(1.0, 1.0)] * len(self.layers)

    def act(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return torch.relu(h)
        if self.activation == "tanh":
            return torch.tanh(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        last = len(self.layers) - 1
        for i, (layer, (ws, bs)) in enumerate(zip(self.layers, self.layer_scales())):
            if ws == 1.0 and bs == 1.0:
                h = layer(h)
            else:
                h = torch.nn.functional.linear(h, layer.weight * ws, layer.bias * bs)
            if i < last:
                h = self.act(h)
        return h

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw all weights from the parameterization's initialization with ``generator``."""
        for layer in self.layers:
            if self.parameterization == "ntk":
                with torch.no_grad():
                    layer.weight.normal_(0.0, 1.0, generator=generator)
                    layer.bias.normal_(0.0, 1.0, generator=generator)
            else:
                default_linear_init(layer, generator)


def default_linear_init(layer: nn.Linear | nn.Conv2d, generator: torch.Generator | None) -> None:
    """PyTorch's default ``reset_parameters`` for Linear/Conv, drawing from ``generator``.

    Weight: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias: the same
    bound.
    """
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        fan_in = layer.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
