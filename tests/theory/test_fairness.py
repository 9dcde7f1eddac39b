"""MinDiff, flooding, weight decay and early stopping on random features against independent
references, in float64: MMD^2 by an explicit double loop over pairs, its gradient by central
finite differences and by torch autograd of an independent expression, the logistic loss and
gradient by torch, the curvature bound 1/eta by the exact Hessian, false-negative rates by hand
counts, the n-dimensional kernel parameterization by gradient descent on w itself (autograd),
early stopping by replaying the iterates, and interpolation at N >> n."""

import math

import numpy as np
import pytest
import torch

from overparam.theory import fairness as fr


def problem(n=30, N=50, d=6, seed=0, agreement=0.8):
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, n)
    a = np.where(g.random(n) < agreement, y, 1 - y)
    y[:4], a[:4] = [1, 1, 0, 0], [0, 1, 0, 1]  # every (y, a) group present
    x = np.concatenate([(2 * y - 1)[:, None] + g.standard_normal((n, d // 2)),
                        (2 * a - 1)[:, None] + g.standard_normal((n, d - d // 2))], axis=1)
    W = g.standard_normal((N, d))
    return x, y, a, W


def mmd2_loop(p, member, length):
    """The V-statistic written out pair by pair (the i = j terms included)."""
    g0 = [v for v, m in zip(p, member) if not m]
    g1 = [v for v, m in zip(p, member) if m]

    def mean_k(u, w):
        return sum(math.exp(-((s - t) ** 2) / length ** 2) for s in u for t in w) / (
            len(u) * len(w))

    return mean_k(g0, g0) + mean_k(g1, g1) - 2 * mean_k(g0, g1)


def mmd2_torch(p, member, length):
    m = torch.as_tensor(member, dtype=torch.bool)
    k = torch.exp(-(p[:, None] - p[None, :]) ** 2 / length ** 2)
    return (k[~m][:, ~m].mean() + k[m][:, m].mean() - 2 * k[~m][:, m].mean())


@pytest.mark.parametrize("length", [0.1, 0.5])
def test_mmd2_matches_the_double_loop(length):
    g = np.random.default_rng(1)
    p = g.random(17)
    member = g.random(17) < 0.3
    member[:2] = [True, False]
    assert fr.mmd2(p, member, length) == pytest.approx(mmd2_loop(p, member, length),
                                                       rel=1e-13, abs=1e-15)
    cols = g.random((17, 3))  # batched columns = one column at a time
    np.testing.assert_allclose(fr.mmd2(cols, member, length),
                               [mmd2_loop(cols[:, j], member, length) for j in range(3)],
                               rtol=1e-13)
    c = fr.mmd_weights(member)
    kern = fr.gaussian_kernel(p[:, None], p[None, :], length)
    assert np.sum(c * kern) == pytest.approx(mmd2_loop(p, member, length), rel=1e-13)


def test_mmd2_is_zero_for_equal_samples_and_without_a_group():
    p = np.array([0.1, 0.7, 0.4, 0.1, 0.7, 0.4])
    member = np.array([0, 0, 0, 1, 1, 1])
    assert abs(fr.mmd2(p, member)) < 1e-15
    value, grad = fr.mmd2_and_grad(p, member)
    assert np.max(np.abs(grad)) < 1e-12  # a minimum: MMD^2 >= 0 (characteristic kernel)
    value, grad = fr.mmd2_and_grad(np.array([0.2, 0.9]), np.array([1, 1]))
    assert value == 0.0 and not grad.any()
    assert fr.mmd2(np.array([0.2, 0.9]), np.array([0, 1])) == pytest.approx(
        2 - 2 * math.exp(-0.49 / 0.01), rel=1e-14)


def test_mmd2_gradient_matches_finite_differences_and_autograd():
    g = np.random.default_rng(2)
    p = 0.3 + 0.4 * g.random(12)
    member = np.arange(12) % 3 == 0
    _, grad = fr.mmd2_and_grad(p, member, 0.2)
    h = 1e-6
    fd = np.array([(fr.mmd2(p + h * e, member, 0.2) - fr.mmd2(p - h * e, member, 0.2)) / (2 * h)
                   for e in np.eye(12)])
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    mmd2_torch(pt, member, 0.2).backward()
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-11, atol=1e-13)
    assert torch.autograd.gradcheck(lambda q: mmd2_torch(q, member, 0.2),
                                    (pt.detach().clone().requires_grad_(),))


def test_logistic_loss_and_gradient_match_torch():
    g = np.random.default_rng(3)
    f, y = 3 * g.standard_normal((25, 2)), g.integers(0, 2, 25)
    ft = torch.tensor(f, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float64)[:, None].expand(25, 2)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(ft, yt, reduction="none").mean(0)
    np.testing.assert_allclose(fr.logistic_loss(f, y), loss.detach().numpy(), rtol=1e-14)
    loss.sum().backward()
    np.testing.assert_allclose(fr.logistic_grad(f, y), ft.grad.numpy(), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(fr.sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])


def test_flooding_value_and_gradient_sign():
    assert fr.flood(0.3, 0.1) == pytest.approx(0.3)
    assert fr.flood(0.04, 0.1) == pytest.approx(0.16)  # |L - b| + b = 2b - L below the flood
    x, y, a, W = problem()
    phi = fr.relu_features(x, W)
    K = phi @ phi.T
    alpha = np.zeros((30, 1))
    loss = fr.logistic_loss(K @ alpha, y)[0]  # log 2 at w = 0
    for level, sign in ((loss + 0.1, -1.0), (loss - 0.1, 1.0)):
        t = fr.objective_terms(alpha, K, y, a, [fr.Objective("f", flood=level)])
        np.testing.assert_allclose(t["g"], sign * fr.logistic_grad(K @ alpha, y), rtol=1e-15)
        assert t["objective"][0] == pytest.approx(abs(loss - level) + level)
        # one small step: descent on L above the flood level, ascent below it
        after = fr.logistic_loss(K @ (alpha - 0.1 * t["g"]), y)[0]
        assert (after - loss) * sign < 0


def test_fnr_gap_against_a_hand_count():
    y = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0])
    a = np.array([0, 0, 0, 1, 1, 1, 1, 0, 1])
    pred = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0])
    # group 0 positives: 3, one missed -> 1/3; group 1 positives: 4, two missed -> 1/2
    assert fr.fnr(pred, y, a) == pytest.approx((1 / 3, 1 / 2))
    assert fr.fnr_gap(pred, y, a) == pytest.approx(1 / 6)
    assert fr.group_accuracies(pred, y, a) == pytest.approx([0.0, 1.0, 2 / 3, 1 / 2])
    assert math.isnan(fr.fnr(pred, y, np.ones(9, int))[0])


def test_step_is_one_over_the_exact_curvature_at_zero():
    """The logistic loss's Hessian in w is Phi^T diag(p(1-p)) Phi / n, largest at w = 0 where
    p(1-p) = 1/4: its top eigenvalue is lambda_max(K) / (4 n) = 1 / step_size."""
    x, y, a, W = problem(n=20, N=15)
    phi = torch.tensor(fr.relu_features(x, W))
    yt = torch.tensor(y, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(
        lambda w: torch.nn.functional.binary_cross_entropy_with_logits(phi @ w, yt),
        torch.zeros(15, dtype=torch.float64))
    K = (phi @ phi.T).numpy()
    assert torch.linalg.eigvalsh(hess)[-1].item() == pytest.approx(1 / fr.step_size(K),
                                                                   rel=1e-12)


def objective_torch(w, phi, y, a, obj, length):
    f = phi @ w
    loss = torch.nn.functional.binary_cross_entropy_with_logits(f, y)
    total = torch.abs(loss - obj.flood) + obj.flood if obj.flood is not None else loss
    pos = y == 1
    if obj.mindiff:
        total = total + obj.mindiff * mmd2_torch(torch.sigmoid(f[pos]), a[pos.numpy()], length)
    return total + 0.5 * obj.weight_decay * (w @ w)


OBJECTIVES = [fr.Objective("baseline"), fr.Objective("mindiff", 1.5),
              fr.Objective("md_flood", 1.5, flood=0.6),
              fr.Objective("md_wd", 1.5, weight_decay=0.05)]


def test_kernel_parameterization_is_gradient_descent_on_w():
    """alpha-space GD (n numbers) reproduces GD on the N output weights, whose gradient is
    torch autograd of the objective written directly in w."""
    x, y, a, W = problem()
    phi = fr.relu_features(x, W)
    K = phi @ phi.T
    steps, length = 15, 0.3
    res = fr.gradient_descent(K, y, a, OBJECTIVES, steps, lr=0.5, length=length,
                              line_search=False)
    phit, yt = torch.tensor(phi), torch.tensor(y, dtype=torch.float64)
    for j, obj in enumerate(OBJECTIVES):
        w = torch.zeros(phi.shape[1], dtype=torch.float64)
        for _ in range(steps):
            w = w.detach().requires_grad_()
            objective_torch(w, phit, yt, a, obj, length).backward()
            w = w - res.eta_max * w.grad  # eta_max = 0.5 / beta (lr = 0.5)
            w = w.detach()
        np.testing.assert_allclose(phi.T @ res.alpha[:, j], w.numpy(), rtol=1e-9, atol=1e-12)
    # the gradient itself at a random point: Phi^T (g + mu alpha) = autograd
    alpha = np.random.default_rng(4).standard_normal((30, len(OBJECTIVES))) * 0.05
    terms = fr.objective_terms(alpha, K, y, a, OBJECTIVES, length)
    for j, obj in enumerate(OBJECTIVES):
        w = torch.tensor(phi.T @ alpha[:, j], requires_grad=True)
        value = objective_torch(w, phit, yt, a, obj, length)
        value.backward()
        assert terms["objective"][j] == pytest.approx(value.item(), rel=1e-12)
        np.testing.assert_allclose(phi.T @ (terms["g"][:, j] + obj.weight_decay * alpha[:, j]),
                                   w.grad.numpy(), rtol=1e-9, atol=1e-13)


def test_line_search_keeps_the_baseline_at_one_over_beta_and_descends():
    x, y, a, W = problem(n=40, N=80, seed=5)
    phi = fr.relu_features(x, W)
    res = fr.gradient_descent(phi @ phi.T, y, a, OBJECTIVES[:2] + OBJECTIVES[3:], 200,
                              record=201)
    assert res.finite and res.shrunk[0] == 0 and res.min_eta[0] == res.eta_max
    objective = np.asarray(res.history["objective"])
    assert np.all(np.diff(objective, axis=0) <= 1e-13)  # Armijo: monotone for smooth arms
    assert res.shrunk[1] > 0  # the MinDiff term is stiffer than 1/eta_max at the start


def test_flooded_descent_oscillates_about_the_level_without_stalling():
    """Past the threshold the unflooded loss would go to 0; flooded, the steps cross L = b back
    and forth at full size (the line search tests the smooth piece each step descends)."""
    x, y, a, W = problem(n=40, N=1500, seed=10)
    phi = fr.relu_features(x, W)
    objs = [fr.Objective("flood", flood=0.2), fr.Objective("md_flood", 1.5, flood=0.2)]
    res = fr.gradient_descent(phi @ phi.T, y, a, objs, 300, record=301)
    task = np.asarray(res.history["task"])[-15:]  # the last 15 checkpoints (steps 230-300)
    for j in range(2):
        assert np.all(np.abs(task[:, j] - 0.2) < 0.02)
        assert (task[:, j] > 0.2).any() and (task[:, j] < 0.2).any()  # both sides of b
    # the plain flood keeps 1/beta; MinDiff + flood keeps a step bounded away from 0 (a
    # line search on |L - b| itself would halve it towards 0 at the kink)
    assert res.shrunk[0] == 0 and res.history["eta"][-1][1] > res.eta_max / 100


def test_early_stopping_returns_the_best_validation_checkpoint():
    x, y, a, W = problem(n=40, N=200, seed=6)
    xv, yv, av, _ = problem(n=25, N=1, seed=7)
    phi = fr.relu_features(x, W)
    K, Kv = phi @ phi.T, fr.relu_features(xv, W) @ phi.T
    objs = OBJECTIVES[:2]
    val = fr.Split(Kv, yv, av)
    res = fr.gradient_descent(K, y, a, objs, 60, val=val, eval_every=5, line_search=False,
                              stop_on="objective")
    # replay the same iterates and pick the argmin by hand
    alpha, losses, iterates = np.zeros((40, 2)), [], []
    eta = fr.step_size(K)
    for t in range(61):
        if t > 0 and t % 5 == 0:
            f = Kv @ alpha
            pv = fr.sigmoid(f)[yv == 1]
            losses.append(fr.logistic_loss(f, yv) + np.array([0.0, 1.5]) *
                          fr.mmd2(pv, av[yv == 1]))
            iterates.append(alpha.copy())
        terms = fr.objective_terms(alpha, K, y, a, objs)
        alpha = alpha - eta * terms["g"]
    best = np.argmin(np.asarray(losses), axis=0)
    np.testing.assert_array_equal(res.best_step, 5 * (best + 1))
    for j in range(2):
        np.testing.assert_allclose(res.best_alpha[:, j], iterates[best[j]][:, j], rtol=1e-12)


def test_interpolation_past_the_threshold_zeroes_the_training_gap():
    """N >> n random features: gradient descent fits every training example, so the training
    FNR gap is exactly 0 for the baseline and for MinDiff, and MinDiff's MMD^2 vanishes."""
    x, y, a, W = problem(n=40, N=1500, seed=8, agreement=0.75)
    phi = fr.relu_features(x, W)
    K = phi @ phi.T
    res = fr.gradient_descent(K, y, a, OBJECTIVES[:2], 400)
    pred = K @ res.alpha > 0
    for j in range(2):
        assert np.all(pred[:, j] == (y == 1))
        assert fr.fnr_gap(pred[:, j], y, a) == 0.0
    assert np.linalg.matrix_rank(phi) == 40  # N >> n: the features span R^n
    assert res.history["task"][-1][0] < 0.05
    assert fr.mmd2(fr.sigmoid(K @ res.alpha[:, 1])[y == 1], a[y == 1]) < 1e-3
    small = fr.relu_features(x, W[:3])  # N << n: no interpolation
    res = fr.gradient_descent(small @ small.T, y, a, OBJECTIVES[:1], 400)
    assert np.mean((small @ small.T @ res.alpha[:, 0] > 0) == (y == 1)) < 1.0


def test_relu_features_formula():
    g = np.random.default_rng(9)
    x, W = g.standard_normal((3, 4)), g.standard_normal((5, 4))
    ref = [[max(sum(W[k, i] * x[j, i] for i in range(4)) / 2.0, 0.0) / math.sqrt(5)
            for k in range(5)] for j in range(3)]
    np.testing.assert_allclose(fr.relu_features(x, W), ref, rtol=1e-14)
    # 0, then 1, 100^(1/3) = 4.64, 100^(2/3) = 21.5 and 100, rounded
    assert fr.checkpoints(100, 5) == [0, 1, 5, 22, 100]


def test_objective_validation():
    with pytest.raises(ValueError, match="mindiff"):
        fr.Objective("x", mindiff=-1)
    with pytest.raises(ValueError, match="flood"):
        fr.Objective("x", flood=0.0)
    with pytest.raises(ValueError, match="stop_on"):
        fr.gradient_descent(np.eye(3), np.array([0, 1, 1]), np.array([0, 1, 0]),
                            OBJECTIVES[:1], 1, stop_on="val")
