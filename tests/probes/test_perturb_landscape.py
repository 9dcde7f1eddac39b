import numpy as np
import pytest
import torch
import torch.nn.functional as F

from overparam.probes.landscape import (
    evaluate_state,
    interpolate,
    mode_connectivity_barrier,
    plot_line,
    plot_slice,
    random_direction,
    slice_2d,
)
from overparam.probes.perturb import (
    epsilon_sharpness,
    filter_normalized_like,
    perturbation_sensitivity,
)
from tests.probes.helpers import ce, tiny_cases


def linear_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(40, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(6, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 6, generator=g, dtype=torch.float64))
    return model, X, y


def test_gaussian_perturbation_of_a_quadratic_matches_closed_form():
    # L(w + e) - L(w) = g.e + e^T H e / 2 exactly; E = sigma^2 tr(H) / 2 with H = 2 X^T X / n.
    model, X, y = linear_problem()
    res = perturbation_sensitivity(model, F.mse_loss, X, y, sigmas=[0.0, 0.05, 0.2],
                                   n_samples=4000, seed=1)
    trH = float(torch.trace(2 * X.T @ X / 40))
    assert res.mean[0] == 0.0
    for sigma, m, s in zip(res.sigmas[1:], res.mean[1:], res.std[1:]):
        expected = sigma ** 2 * trH / 2 / res.base_loss
        assert abs(m - expected) < 4 * s / np.sqrt(4000)
    assert len(res.rows()) == 3


def test_filter_normalized_direction_has_filter_norms():
    model = tiny_cases()["bn_cnn_eval"][0]
    theta = [p.detach() for p in model.parameters()]
    d = filter_normalized_like(theta, torch.Generator().manual_seed(0))
    for t, e in zip(theta, d):
        if t.dim() <= 1:
            assert torch.all(e == 0)
        else:
            assert torch.allclose(e.flatten(1).norm(dim=1), t.flatten(1).norm(dim=1))
    fn = perturbation_sensitivity(model, ce, *tiny_cases()["bn_cnn_eval"][1:], sigmas=[0.1],
                                  n_samples=3, filter_normalized=True)
    assert fn.filter_normalized and fn.mean[0] != 0


def test_epsilon_sharpness_one_parameter_closed_form():
    # L(w) = (w - a)^2 with one weight: the max over |y| <= eps(|w|+1) is at the far edge.
    X = torch.ones(1, 1, dtype=torch.float64)
    y = torch.full((1, 1), 0.3, dtype=torch.float64)
    model = torch.nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(0.5)
    eps = 0.1
    base = 0.2 ** 2
    worst = (0.2 + eps * 1.5) ** 2
    expected = 100 * (worst - base) / (1 + base)
    got = epsilon_sharpness(model, F.mse_loss, X, y, epsilon=eps, max_iter=50)
    assert got == pytest.approx(expected, rel=1e-6)


def test_interpolation_of_a_quadratic_is_exact():
    a, X, y = linear_problem(0)
    b, _, _ = linear_problem(1)
    line = interpolate(a, b, F.mse_loss, X, y, alphas=np.linspace(0, 1, 7))
    wa, wb = a.weight.detach(), b.weight.detach()
    for t, loss in zip(line.alphas, line.loss):
        w = (1 - t) * wa + t * wb
        assert loss == pytest.approx(float(F.mse_loss(X @ w.T, y)), rel=1e-12)
    d = {"weight": wb - wa}
    along = interpolate(a, None, F.mse_loss, X, y, alphas=[0.0, 1.0], direction=d)
    assert along.loss[1] == pytest.approx(line.loss[-1], rel=1e-12)


def test_barrier_and_slice_on_a_classifier(tmp_path):
    model, x, y = tiny_cases()["relu_mlp"]
    other, _, _ = tiny_cases()["relu_mlp"]
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.3)
    same = mode_connectivity_barrier(model, model, x, y, n_points=5)
    assert same.barrier == 0.0
    res = mode_connectivity_barrier(model, other, x, y, n_points=9)
    assert res.barrier == pytest.approx(res.error.max() - 0.5 * (res.error[0] + res.error[-1]))
    loss0, _ = evaluate_state(model, dict(model.state_dict()), ce, x, y)
    sl = slice_2d(model, ce, x, y, extent=0.5, resolution=5)
    assert sl.loss.shape == (5, 5) and sl.loss[2, 2] == pytest.approx(loss0, rel=1e-12)
    d = random_direction(model)
    assert torch.all(d["layers.0.bias"] == 0)
    plot_slice(sl).savefig(tmp_path / "slice.png")
    plot_line(interpolate(model, other, ce, x, y)).savefig(tmp_path / "line.png")
    assert (tmp_path / "slice.png").stat().st_size > 5000
    assert (tmp_path / "line.png").stat().st_size > 5000
