import math

import numpy as np
import pytest
import torch

from overparam.models import build
from overparam.probes.ntk import (
    analytic_kernels,
    analytic_ntk,
    empirical_ntk,
    kernel_movement,
    kernel_regression,
    parameter_movement,
)
from tests.probes.helpers import tiny_cases


def brute_force_ntk(model, x1, x2):
    """Per-sample Jacobians by one backward pass per output: Theta[a, b, o, p]."""
    params = [p for p in model.parameters()]

    def jac(x):
        rows = []
        for xi in x:
            out = model(xi.unsqueeze(0)).reshape(-1)
            per_o = []
            for o in range(len(out)):
                g = torch.autograd.grad(out[o], params, retain_graph=True)
                per_o.append(torch.cat([t.reshape(-1) for t in g]))
            rows.append(torch.stack(per_o))
        return torch.stack(rows)  # [n, O, P]

    model.eval()
    j1, j2 = jac(x1), jac(x2)
    return torch.einsum("aoP,bpP->abop", j1, j2)


MODELS = {
    "relu_mlp": lambda: build("mlp_w7_d3", (5,), 3, seed=0).double(),
    "ntk_mlp": lambda: build("mlp_w7_d3", (5,), 3, seed=1, parameterization="ntk").double(),
    "tanh_mlp": lambda: build("tanhmlp_w6", (5,), 3, seed=2).double(),
    "deep_linear": lambda: build("linear_w4_d3", (5,), 3, seed=3).double(),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_all_implementations_agree_with_brute_force(name):
    model = MODELS[name]()
    if name == "ntk_mlp":
        model.b_std = 0.4
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(6, 5, generator=g, dtype=torch.float64)
    x2 = torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = brute_force_ntk(model, x1, x2)
    ref_trace = torch.diagonal(ref, dim1=2, dim2=3).mean(-1)
    for impl in ("jacobian", "ntvp", "structured"):
        full = empirical_ntk(model, x1, x2, implementation=impl, trace=False, chunk_size=4)
        assert torch.allclose(full, ref, rtol=1e-10, atol=1e-12), impl
        tr = empirical_ntk(model, x1, x2, implementation=impl, chunk_size=3)
        assert torch.allclose(tr, ref_trace, rtol=1e-10, atol=1e-12), impl
    sym = empirical_ntk(model, x1, implementation="jacobian", chunk_size=4)
    assert torch.allclose(sym, sym.T) and torch.all(torch.linalg.eigvalsh(sym) > -1e-10)


def test_jacobian_on_a_cnn_with_batchnorm_matches_ntvp():
    model, x, _ = tiny_cases()["bn_cnn_eval"]
    a = empirical_ntk(model, x[:5], x[5:9], implementation="jacobian", trace=False)
    b = empirical_ntk(model, x[:5], x[5:9], implementation="ntvp", trace=False)
    ref = brute_force_ntk(model, x[:5], x[5:9])
    assert torch.allclose(a, ref, rtol=1e-10) and torch.allclose(b, ref, rtol=1e-10)
    layer = empirical_ntk(model, x[:5], params=["5"])  # the last Linear only
    assert layer.shape == (5, 5) and torch.all(torch.diagonal(layer) > 0)


def test_analytic_depth1_is_linear_kernel():
    x = torch.randn(5, 3, dtype=torch.float64)
    nngp, ntk = analytic_kernels(x, depth=1, w_std=1.5, b_std=0.5)
    lin = 1.5 ** 2 * x @ x.T / 3 + 0.25
    assert torch.allclose(nngp, lin) and torch.allclose(ntk, lin)


def test_analytic_relu_layer_closed_form():
    # one hidden layer: NNGP_2 = w^2 E[relu(u) relu(v)] + b^2 under the Gaussian of layer 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, generator=g, dtype=torch.float64)
    k1 = 2.0 * x @ x.T / 4 + 0.01
    u = torch.randn(400000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(k1).T
    mc = (torch.relu(u[:, 0]) * torch.relu(u[:, 1])).mean()
    nngp, _ = analytic_kernels(x, depth=2, w_std=math.sqrt(2.0), b_std=0.1)
    assert float(nngp[0, 1]) == pytest.approx(2.0 * float(mc) + 0.01, rel=0.01)


def test_empirical_ntk_converges_to_analytic_with_width():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 8, generator=g, dtype=torch.float64)
    ref = analytic_ntk(x, depth=3, w_std=math.sqrt(2.0), b_std=0.3)
    errors = {}
    for width, seeds in ((16, 8), (1024, 8)):
        samples = []
        for s in range(seeds):
            m = build(f"mlp_w{width}_d3", (8,), 2, parameterization="ntk", seed=100 + s).double()
            m.b_std = 0.3
            samples.append(empirical_ntk(m, x))  # mean over the 2 outputs: per-output kernel
        st = torch.stack(samples)
        mean, se = st.mean(0), st.std(0) / math.sqrt(seeds)
        errors[width] = float(((mean - ref).abs() / ref.abs()).mean())
        if width == 1024:
            z = (mean - ref).abs() / se
            assert float(z.max()) < 4.5, z  # agreement within Monte-Carlo error
            assert errors[width] < 0.05
    assert errors[1024] < errors[16]


def test_standard_parameterization_needs_width_and_grows():
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="width"):
        analytic_ntk(x, parameterization="standard")
    small = analytic_ntk(x, parameterization="standard", width=64, w_std=1.0)
    big = analytic_ntk(x, parameterization="standard", width=256, w_std=1.0)
    assert torch.all(big > small)


def test_kernel_regression_matches_gradient_flow_and_interpolation():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    k = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    kst = torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.randn(6, 1, generator=g, dtype=torch.float64)
    f0, f0s = torch.randn(6, 1, generator=g, dtype=torch.float64), torch.zeros(3, 1, dtype=torch.float64)
    # Euler integration of df/dt = -lr/n K (f - y), f*(t) = f0* - lr/n K* (f - y) dt
    f, fs, dt, lr, t_end = f0.clone(), f0s.clone(), 1e-4, 2.0, 1.5
    for _ in range(int(t_end / dt)):
        r = f - y
        f = f - dt * lr / 6 * k @ r
        fs = fs - dt * lr / 6 * kst @ r
    tr, te = kernel_regression(k, kst, y, t=t_end, lr=lr, f0_train=f0, f0_test=f0s)
    assert torch.allclose(tr, f, atol=1e-3) and torch.allclose(te, fs, atol=1e-3)
    tr_inf, te_inf = kernel_regression(k, kst, y)
    assert torch.allclose(tr_inf, y) and torch.allclose(te_inf, kst @ torch.linalg.solve(k, y))


def test_movements():
    a = build("mlp_w8", (4,), 2, seed=0)
    b = build("mlp_w8", (4,), 2, seed=0)
    assert parameter_movement(a, b) == 0.0
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(1.5)
    assert parameter_movement(a, b) == pytest.approx(0.5)
    assert parameter_movement(a.state_dict(), b.state_dict()) == pytest.approx(0.5)
    k = torch.eye(3)
    assert kernel_movement(k, 2 * k) == pytest.approx(1.0)
    assert np.isfinite(kernel_movement(k, k))
