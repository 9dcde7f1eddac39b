"""Tiny float64 models and a dense Hessian reference."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from overparam.models import build


def tiny_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (24,), generator=g)
    ximg = torch.randn(12, 2, 8, 8, generator=g, dtype=torch.float64)
    yimg = torch.randint(0, 3, (12,), generator=g)
    cnn = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).double()
    with torch.no_grad():  # non-trivial running statistics for eval mode
        cnn[1].running_mean.uniform_(-0.5, 0.5, generator=g)
        cnn[1].running_var.uniform_(0.5, 2.0, generator=g)
        cnn[1].weight.uniform_(0.5, 1.5, generator=g)
    cnn.eval()
    return {
        "relu_mlp": (build("mlp_w6_d3", (5,), 3, seed=1).double(), x, y),
        "tanh_mlp": (build("tanhmlp_w6_d3", (5,), 3, seed=2).double(), x, y),
        "deep_linear": (build("linear_w4_d3", (5,), 3, seed=3).double(), x, y),
        "bn_cnn_eval": (cnn, ximg, yimg),
    }


def dense_hessian(model, loss_fn, x, y, names=None):
    """The full Hessian by torch.func.hessian of the loss as a function of the flat parameters."""
    params = dict(model.named_parameters())
    names = names or list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    flat0 = torch.cat([params[n].detach().reshape(-1) for n in names])
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}

    def f(flat):
        parts = torch.split(flat, sizes)
        state = {n: p.detach() for n, p in params.items()}
        state.update({n: t.view(s) for n, t, s in zip(names, parts, shapes)})
        state.update(buffers)
        return loss_fn(functional_call(model, state, (x,)), y)

    return torch.func.hessian(f)(flat0)


def ce(out, y):
    return F.cross_entropy(out, y)
