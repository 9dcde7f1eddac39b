"""The linear toy of SOP against independent references: LAD as a weighted median (d = 1), the
least-squares bias identity, one gradient step against autograd, the small-init limit against
the l1 linear program, support scores by hand."""

import numpy as np
import pytest
import torch

from overparam.theory.noisy_regression import (
    corrupted_regression,
    lad,
    least_squares,
    run_grid,
    step_sizes,
    support_scores,
    train_sop_linear,
)


def weighted_median(values, weights):
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return values[order][np.searchsorted(cum, 0.5 * cum[-1])]


def test_lad_in_one_dimension_is_a_weighted_median():
    """min_w sum |y_i - x_i w| = sum |x_i| |y_i / x_i - w|: the median of y_i / x_i weighted by
    |x_i| (odd total weight position: unique)."""
    g = np.random.default_rng(3)
    x = g.standard_normal((41, 1))
    y = 1.7 * x[:, 0] + np.where(g.random(41) < 0.3, 8.0, 0.0) + 0.1 * g.standard_normal(41)
    w, s = lad(x, y)
    ref = weighted_median(y / x[:, 0], np.abs(x[:, 0]))
    assert w[0] == pytest.approx(ref, abs=1e-9)
    assert np.allclose(x @ w + s, y)


def test_problem_and_least_squares_bias():
    p = corrupted_regression(80, 6, 0.25, 5.0, seed=1)
    assert p.support.sum() == 20 and np.allclose(p.y, p.x @ p.w + p.s)
    assert np.all((np.abs(p.s[p.support]) >= 5.0) & (np.abs(p.s[p.support]) <= 10.0))
    bias = np.linalg.solve(p.x.T @ p.x, p.x.T @ p.s)  # normal equations
    assert np.allclose(least_squares(p.x, p.y) - p.w, bias, atol=1e-10)
    with pytest.raises(ValueError):
        corrupted_regression(5, 6, 0.1, 1.0, seed=0)


def test_one_gradient_step_matches_autograd():
    p = corrupted_regression(30, 4, 0.2, 3.0, seed=2)
    alpha = 0.3
    fit = train_sop_linear(p.x, p.y, alpha, steps=1, tol=0.0)
    eta_w, eta_s = step_sizes(p.x, p.y)
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    u = torch.full((30,), alpha, dtype=torch.float64, requires_grad=True)
    v = torch.full((30,), alpha, dtype=torch.float64, requires_grad=True)
    x, y = torch.as_tensor(p.x), torch.as_tensor(p.y)
    loss = 0.5 * (x @ w + u * u - v * v - y).pow(2).sum()
    gw, gu, gv = torch.autograd.grad(loss, [w, u, v])
    u1, v1 = (u - eta_s[0] * gu).detach(), (v - eta_s[0] * gv).detach()
    assert np.allclose(fit.w[0], (w - eta_w[0] * gw).detach().numpy(), atol=1e-14)
    assert np.allclose(fit.s[0], (u1 * u1 - v1 * v1).numpy(), atol=1e-14)
    assert fit.steps[0] == 1
    lam = np.linalg.eigvalsh(p.x.T @ p.x)[-1]
    assert eta_w[0] == pytest.approx(1.0 / lam) and eta_s[0] == pytest.approx(
        1.0 / (8 * np.abs(p.y).max()))


def test_small_init_limit_is_the_l1_program():
    """Sparse corruption: LAD (linprog) recovers w* exactly; GD from a small init converges to
    it, closer as alpha shrinks, and never below LAD's optimal l1 norm of s."""
    probs = [corrupted_regression(60, 5, 0.15, 5.0, seed=s) for s in range(3)]
    x, y = np.stack([p.x for p in probs]), np.stack([p.y for p in probs])
    gaps = []
    for alpha in (1e-1, 1e-3):
        fit = train_sop_linear(x, y, alpha, steps=4000)
        assert np.all(fit.loss < 1e-5)  # (nearly) interpolates X w + s = y
        gap = []
        for j, p in enumerate(probs):
            w_lad, s_lad = lad(p.x, p.y)
            assert np.allclose(w_lad, p.w, atol=1e-8)  # exact recovery by the l1 program
            assert np.abs(fit.s[j] - (p.y - p.x @ fit.w[j])).max() < 1e-2
            assert np.abs(p.y - p.x @ fit.w[j]).sum() >= np.abs(s_lad).sum() - 1e-9  # optimal
            gap.append(np.linalg.norm(fit.w[j] - w_lad))
        gaps.append(max(gap))
    assert gaps[1] < 1e-3 and gaps[1] < 0.1 * gaps[0]


def test_support_scores_by_hand():
    support = np.array([True, True, False, False, False])
    assert support_scores(np.array([2.0, 0.1, 0.7, 0.0, -3.0]), support, 0.5) == (
        pytest.approx(1 / 3), 0.5)
    assert support_scores(np.zeros(5), support, 0.5) == (1.0, 0.0)
    assert support_scores(np.zeros(5), np.zeros(5, bool), 0.5) == (1.0, 1.0)


def test_grid_shapes_and_least_squares_baseline():
    out = run_grid(40, 3, (0.1, 0.2), trials=2, scale=5.0, alpha=1e-3, steps=300,
                   threshold=0.5, seed=7)
    assert all(len(v) == 2 and len(v[0]) == 2 for v in out.values())
    p = corrupted_regression(40, 3, 0.2, 5.0, seed=7 + 1000 + 1)
    assert out["err_ls"][1][1] == pytest.approx(np.linalg.norm(least_squares(p.x, p.y) - p.w))
