"""The neural tangent kernel: empirical (finite width) and analytic (infinite-width ReLU MLPs).

Empirical NTK (Jacot, Gabriel & Hongler 2018, arXiv:1806.07572) of a network ``f_theta`` with
``O`` outputs: ``Theta(x, x')_{o o'} = sum_P df_o(x)/dtheta_P df_o'(x')/dtheta_P``; with
``trace=True`` the trace over outputs divided by ``O`` (as neural-tangents' ``trace_axes=(-1,)``
returns it), the per-output kernel that converges to the analytic one. The model runs in
evaluation mode (BatchNorm with running statistics, so samples are independent). Implementations
(neural-tangents' names, Novak et al. 2022, arXiv:2206.08720):

* ``"jacobian"`` -- Jacobian contraction: per-sample Jacobians by ``vmap(jacrev)``, contracted
  parameter by parameter; chunked over samples, the second side cached when it fits
  ``memory_gb``. Best for few outputs and small models.
* ``"ntvp"`` -- NTK-vector products: each column ``Theta(., x'_b)_{. o'} = J(X) J(x'_b)^T e_o'`` as a
  forward-mode ``jvp`` along the per-sample gradient; memory ``O(P)`` per column.
* ``"structured"`` -- for :class:`overparam.models.mlp.MLP`: ``df/dW_l = D_l (s_w a_l)^T`` gives
  ``Theta_{oo'}(x, x') = sum_l <D_l(x)_o, D_l(x')_o'> (s_w,l^2 <a_l(x), a_l(x')> + s_b,l^2)`` with
  ``a_l`` the input of layer l and ``D_l = df/dz_l`` backpropagated from the outputs: no
  parameter-sized object is ever formed (the idea of neural-tangents' structured derivatives).
* ``"auto"`` -- ``structured`` for MLPs, otherwise ``jacobian``.

Analytic kernels of ``Dense -> ReLU -> ... -> Dense`` with ``depth`` Dense layers, the convention of
neural-tangents' ``stax.Dense(W_std, b_std, parameterization)`` and ``stax.Relu``: input covariance
``K_0 = x.x' / d``; Dense: ``K <- W_std^2 K + b_std^2`` and NTK ``T <- K_new + W_std^2 T`` ("ntk") or
``T <- n_in K + W_std^2 T + 1`` ("standard", ``n_in`` the finite fan-in); ReLU (Cho & Saul 2009):
``K <- sqrt(q q') (sin t + (pi - t) cos t) / (2 pi)``, ``T <- T (pi - t) / (2 pi)`` with
``cos t = K / sqrt(q q')``.

Kernel regression (Lee et al. 2019, arXiv:1902.06720): gradient flow on
``L = ||f(X) - Y||^2 / (2 n)`` at learning rate ``lr`` for time ``t`` gives, for the linearized
model, ``f_t(X) = Y + exp(-lr Theta t / n) (f_0(X) - Y)`` and
``f_t(x*) = f_0(x*) + Theta(x*, X) Theta^{-1} (I - exp(-lr Theta t / n)) (Y - f_0(X))``;
``t=None`` is the limit ``t -> inf`` (kernel interpolation, plus an optional ridge).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import jacrev, jvp, vjp, vmap

from overparam.models.mlp import MLP
from overparam.probes._functional import FunctionalModel, ParamSelector

IMPLEMENTATIONS = ("auto", "jacobian", "ntvp", "structured")


def empirical_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None,
                  implementation: str = "auto", trace: bool = True,
                  params: ParamSelector = None, chunk_size: int | None = None,
                  memory_gb: float = 2.0) -> torch.Tensor:
    """Empirical NTK ``[n1, n2]`` (``trace=True``: mean over outputs) or ``[n1, n2, O, O]``.

    ``params`` restricts the kernel to some parameters (e.g. one layer); ``chunk_size`` samples
    per Jacobian chunk (default: from ``memory_gb``).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r}: one of {', '.join(IMPLEMENTATIONS)}")
    if implementation == "auto":
        implementation = "structured" if isinstance(model, MLP) and params is None else "jacobian"
    if implementation == "structured":
        if not isinstance(model, MLP) or params is not None:
            raise ValueError("the structured implementation needs an overparam MLP and all of "
                             "its parameters")
        return _structured_mlp(model, x1, x2, trace)
    f = FunctionalModel(model, params, train=False)
    if implementation == "jacobian":
        return _jacobian_contraction(f, x1, x2, trace, chunk_size, memory_gb)
    return _ntvp(f, x1, x2, trace, chunk_size)


def _single(f: FunctionalModel):
    def g(theta: tuple[torch.Tensor, ...], xi: torch.Tensor) -> torch.Tensor:
        return f(list(theta), xi.unsqueeze(0)).squeeze(0)
    return g


def _jacobians(f: FunctionalModel, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-parameter Jacobians flattened to ``[n, O, P_p]``."""
    jac = vmap(jacrev(_single(f)), in_dims=(None, 0))(tuple(f.theta), x)
    return [j.reshape(j.shape[0], j.shape[1], -1) for j in jac]


def _contract(j1: list[torch.Tensor], j2: list[torch.Tensor], trace: bool) -> torch.Tensor:
    n1, o = j1[0].shape[:2]
    n2 = j2[0].shape[0]
    if trace:
        out = torch.zeros(n1, n2, dtype=j1[0].dtype, device=j1[0].device)
        for a, b in zip(j1, j2):
            out += a.reshape(n1, -1) @ b.reshape(n2, -1).T
        return out / o
    out = torch.zeros(n1 * o, n2 * o, dtype=j1[0].dtype, device=j1[0].device)
    for a, b in zip(j1, j2):
        out += a.reshape(n1 * o, -1) @ b.reshape(n2 * o, -1).T
    return out.reshape(n1, o, n2, o).permute(0, 2, 1, 3)


def _num_outputs(f: FunctionalModel, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(f(f.theta, x[:1]).reshape(1, -1).shape[1])


def _jacobian_contraction(f: FunctionalModel, x1: torch.Tensor, x2: torch.Tensor | None,
                          trace: bool, chunk_size: int | None, memory_gb: float) -> torch.Tensor:
    o = _num_outputs(f, x1)
    bytes_per_sample = o * f.numel * x1.element_size()
    if chunk_size is None:
        chunk_size = max(1, int(memory_gb * 2 ** 30 / (3 * bytes_per_sample)))
    same = x2 is None
    x2 = x1 if same else x2
    n1, n2 = len(x1), len(x2)
    cache_second = n2 * bytes_per_sample <= memory_gb * 2 ** 30 / 2
    chunks2 = [(j, x2[j:j + chunk_size]) for j in range(0, n2, chunk_size)]
    cached = {j: _jacobians(f, xc) for j, xc in chunks2} if cache_second else {}
    shape = (n1, n2) if trace else (n1, n2, o, o)
    out = torch.zeros(shape, dtype=x1.dtype, device=x1.device)
    for i in range(0, n1, chunk_size):
        j1 = cached.get(i) if same and cache_second else None
        j1 = j1 if j1 is not None else _jacobians(f, x1[i:i + chunk_size])
        for j, xc in chunks2:
            j2 = cached[j] if cache_second else _jacobians(f, xc)
            out[i:i + chunk_size, j:j + len(xc)] = _contract(j1, j2, trace)
    return out


def _ntvp(f: FunctionalModel, x1: torch.Tensor, x2: torch.Tensor | None, trace: bool,
          chunk_size: int | None) -> torch.Tensor:
    x2 = x1 if x2 is None else x2
    o = _num_outputs(f, x1)
    n1, n2 = len(x1), len(x2)
    theta = tuple(f.theta)
    single = _single(f)

    def column(xb: torch.Tensor, cot: torch.Tensor) -> torch.Tensor:
        _, pullback = vjp(lambda th: single(th, xb), theta)
        tangent = pullback(cot)[0]
        _, out = jvp(lambda th: f(list(th), x1), (theta,), (tangent,))
        return out.reshape(n1, o)  # Theta(x1, xb)[:, :, o'] for the cotangent e_o'

    eye = torch.eye(o, dtype=x1.dtype, device=x1.device)
    chunk = chunk_size or 8
    cols = []
    xs = x2.repeat_interleave(o, dim=0)
    cots = eye.repeat(n2, 1)
    for s in range(0, n2 * o, chunk):
        cols.append(vmap(column)(xs[s:s + chunk], cots[s:s + chunk]))
    k = torch.cat(cols).reshape(n2, o, n1, o)  # [b, o', a, o]
    full = k.permute(2, 0, 3, 1)  # [a, b, o, o']
    return torch.diagonal(full, dim1=2, dim2=3).mean(-1) if trace else full.contiguous()


@torch.no_grad()
def _mlp_terms(model: MLP, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Layer inputs ``a_l`` ``[n, in_l]`` and output Jacobians ``D_l = df/dz_l`` ``[n, O, out_l]``."""
    scales = model.layer_scales()
    acts, pre = [x.flatten(1)], []
    h = acts[0]
    for i, (layer, (ws, bs)) in enumerate(zip(model.layers, scales)):
        z = ws * h @ layer.weight.T + bs * layer.bias
        pre.append(z)
        if i < len(model.layers) - 1:
            h = model.act(z)
            acts.append(h)
    o = pre[-1].shape[1]
    d = torch.eye(o, dtype=x.dtype, device=x.device).expand(len(x), o, o)
    ds = [d]
    for i in range(len(model.layers) - 1, 0, -1):
        ws = scales[i][0]
        d = ws * d @ model.layers[i].weight
        if model.activation == "relu":
            d = d * (pre[i - 1] > 0).unsqueeze(1)
        elif model.activation == "tanh":
            d = d * (1 - torch.tanh(pre[i - 1]) ** 2).unsqueeze(1)
        ds.append(d)
    return acts, ds[::-1]


def _structured_mlp(model: MLP, x1: torch.Tensor, x2: torch.Tensor | None, trace: bool
                    ) -> torch.Tensor:
    a1, d1 = _mlp_terms(model, x1)
    a2, d2 = (a1, d1) if x2 is None else _mlp_terms(model, x2)
    n1, n2, o = len(x1), len(a2[0]), d1[0].shape[1]
    out = None
    for i, (ws, bs) in enumerate(model.layer_scales()):
        act = (ws ** 2) * (a1[i] @ a2[i].T) + bs ** 2
        if trace:
            term = (d1[i].reshape(n1, -1) @ d2[i].reshape(n2, -1).T) * (act / o)
        else:
            g = (d1[i].reshape(n1 * o, -1) @ d2[i].reshape(n2 * o, -1).T)
            term = g.reshape(n1, o, n2, o).permute(0, 2, 1, 3) * act[:, :, None, None]
        out = term if out is None else out + term
    return out


def _relu_expectations(q1: torch.Tensor, q2: torch.Tensor, k: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    norm = torch.sqrt(q1[:, None] * q2[None, :])
    cos = torch.clamp(k / norm, -1.0, 1.0)
    t = torch.arccos(cos)
    e_relu = norm * (torch.sin(t) + (math.pi - t) * cos) / (2 * math.pi)
    e_deriv = (math.pi - t) / (2 * math.pi)
    return e_relu, e_deriv


def analytic_kernels(x1: torch.Tensor, x2: torch.Tensor | None = None, depth: int = 4,
                     w_std: float = math.sqrt(2.0), b_std: float | None = 0.0,
                     parameterization: str = "ntk", width: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """NNGP and NTK ``[n1, n2]`` (float64) of an infinitely wide ReLU MLP (module docstring).

    ``depth`` counts Dense layers (the blueprint's MLP is depth 4). ``b_std=None`` means no biases.
    ``parameterization="standard"`` needs the hidden ``width`` (its NTK grows with it).
    """
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"parameterization={parameterization!r}: ntk or standard")
    if parameterization == "standard" and width is None:
        raise ValueError("the standard parameterization's NTK depends on the width: give width")
    if depth < 1:
        raise ValueError("depth must be at least 1")
    x1 = x1.flatten(1).double()
    x2 = x1 if x2 is None else x2.flatten(1).double()
    d = x1.shape[1]
    k = x1 @ x2.T / d
    q1, q2 = (x1 * x1).sum(1) / d, (x2 * x2).sum(1) / d
    ntk = torch.zeros_like(k)
    b2 = 0.0 if b_std is None else b_std ** 2
    fan_in = d
    for layer in range(depth):
        if layer > 0:
            e_relu, e_deriv = _relu_expectations(q1, q2, k)
            ntk = ntk * e_deriv
            k = e_relu
            q1, q2 = q1 / 2, q2 / 2  # E[relu(u)^2] = q / 2
        if parameterization == "ntk":
            k, q1, q2 = w_std ** 2 * k + b2, w_std ** 2 * q1 + b2, w_std ** 2 * q2 + b2
            ntk = k + w_std ** 2 * ntk
        else:
            ntk = fan_in * k + w_std ** 2 * ntk + (0.0 if b_std is None else 1.0)
            k, q1, q2 = w_std ** 2 * k + b2, w_std ** 2 * q1 + b2, w_std ** 2 * q2 + b2
            fan_in = width
    return k, ntk


def analytic_ntk(x1: torch.Tensor, x2: torch.Tensor | None = None, depth: int = 4,
                 w_std: float = math.sqrt(2.0), b_std: float | None = 0.0,
                 parameterization: str = "ntk", width: int | None = None) -> torch.Tensor:
    """Infinite-width NTK of a ReLU MLP (per output; the kernel is ``Theta * I_O``)."""
    return analytic_kernels(x1, x2, depth, w_std, b_std, parameterization, width)[1]


def analytic_nngp(x1: torch.Tensor, x2: torch.Tensor | None = None, depth: int = 4,
                  w_std: float = math.sqrt(2.0), b_std: float | None = 0.0,
                  parameterization: str = "ntk", width: int | None = None) -> torch.Tensor:
    """Infinite-width NNGP kernel (output covariance at initialization) of a ReLU MLP."""
    return analytic_kernels(x1, x2, depth, w_std, b_std, parameterization, width)[0]


def kernel_regression(k_train: torch.Tensor, k_test_train: torch.Tensor | None,
                      y_train: torch.Tensor, t: float | None = None, lr: float = 1.0,
                      f0_train: torch.Tensor | None = None, f0_test: torch.Tensor | None = None,
                      ridge: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Train and test predictions of the linearized model after time ``t`` (module docstring)."""
    k = k_train.double()
    n = k.shape[0]
    y = y_train.double().reshape(n, -1)
    f0 = torch.zeros_like(y) if f0_train is None else f0_train.double().reshape(n, -1)
    evals, evecs = torch.linalg.eigh(k + ridge * torch.eye(n, dtype=k.dtype, device=k.device))
    resid = evecs.T @ (y - f0)
    if t is None:
        decay = torch.zeros_like(evals)
    else:
        decay = torch.exp(-lr * evals.clamp_min(0) * t / n)
    train_pred = y - evecs @ (decay[:, None] * resid)
    test_pred = None
    if k_test_train is not None:
        safe = torch.where(evals.abs() > 1e-12 * evals.abs().max(), evals,
                           torch.full_like(evals, float("inf")))
        coef = evecs @ (((1 - decay) / safe)[:, None] * resid)
        base = 0.0 if f0_test is None else f0_test.double().reshape(k_test_train.shape[0], -1)
        test_pred = base + k_test_train.double() @ coef
    return train_pred, test_pred


def _flat_params(model_or_state: nn.Module | dict[str, torch.Tensor]) -> torch.Tensor:
    if isinstance(model_or_state, nn.Module):
        tensors: Sequence[torch.Tensor] = [p.detach() for p in model_or_state.parameters()]
    else:
        tensors = [t.detach() for t in model_or_state.values() if t.is_floating_point()]
    return torch.cat([t.reshape(-1).double() for t in tensors])


def parameter_movement(initial: nn.Module | dict[str, torch.Tensor],
                       final: nn.Module | dict[str, torch.Tensor]) -> float:
    """Relative parameter movement ``||theta_T - theta_0|| / ||theta_0||`` (blueprint eq. 1)."""
    a, b = _flat_params(initial), _flat_params(final)
    return float((b - a).norm() / a.norm())


def kernel_movement(k0: torch.Tensor, kt: torch.Tensor) -> float:
    """Relative kernel movement ``||K_t - K_0||_F / ||K_0||_F``."""
    return float((kt.double() - k0.double()).norm() / k0.double().norm())


__all__ = ["IMPLEMENTATIONS", "analytic_kernels", "analytic_ntk", "analytic_nngp",
           "empirical_ntk", "kernel_movement", "kernel_regression",
           "parameter_movement"]
