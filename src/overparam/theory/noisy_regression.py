"""Regression with sparse gross corruptions: sparse over-parameterization against least squares.

The linear model behind SOP (Liu, Zhu, Qu & You 2022, "Robust Training under Label Noise by
Over-parameterization", arXiv:2202.14026, its linear analysis): responses ``y = X w* + s*``
with ``X`` of shape ``n x d`` (``n > d``) and a sparse corruption ``s*`` (a fraction ``rho`` of
the responses moved by a large amount). Least squares ``w_LS = X^+ y`` is biased by the corruption,
``w_LS - w* = (X^T X)^{-1} X^T s*``. The over-parameterized model adds one variable per sample,
``s = u o u - v o v`` (Hadamard product), and runs gradient descent on

    L(w, u, v) = 1/2 ||X w + u o u - v o v - y||^2

from ``w = 0``, ``u = v = alpha 1``, with step ``eta_w`` for ``w`` and ``eta_s`` for ``u, v``.
Under gradient flow, with ``lambda(t) = -int_0^t r`` (``r`` the residual),
``w = eta_w X^T lambda`` and ``s = 2 alpha^2 sinh(4 eta_s lambda)``: the flow's limit is the
interpolant ``X w + s = y`` minimizing ``||w||^2 / (2 eta_w) + Q_alpha(s) / (4 eta_s)`` with
the hyperbolic-entropy potential of diagonal networks (Woodworth et al. 2020, arXiv:2002.09277;
:mod:`overparam.theory.diagonal`), whose small-``alpha`` limit is ``log(1 / alpha^2) ||s||_1``.
So as ``alpha -> 0`` gradient descent selects

    min_{w, s} ||s||_1  s.t.  X w + s = y,     i.e.  w = argmin_w ||y - X w||_1,

least-absolute-deviations regression, which recovers ``w*`` exactly when the corruption is
sparse enough (Candes & Tao 2005, "Decoding by linear programming", arXiv:math/0502327).
:func:`lad` solves that linear program with scipy's HiGHS: the reference for the small-init
limit. :func:`train_sop_linear` is gradient descent vectorized over random instances, in
float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Problem:
    """One instance: design ``x [n, d]``, responses ``y``, truth ``w`` and corruption ``s``."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    s: np.ndarray

    @property
    def support(self) -> np.ndarray:
        return self.s != 0


def corrupted_regression(n: int, d: int, frac: float, scale: float, seed: int) -> Problem:
    """``X`` iid ``N(0, 1)``, ``w* ~ N(0, I / d)`` (clean responses of variance about 1), and
    ``round(frac n)`` corrupted responses at uniformly chosen positions, each moved by
    ``+- scale (1 + U(0, 1))`` (random sign): gross errors between ``scale`` and ``2 scale``."""
    if not (n > d >= 1 and 0.0 <= frac < 1.0 and scale > 0):
        raise ValueError(f"need n > d >= 1, 0 <= frac < 1, scale > 0; got n={n}, d={d}, "
                         f"frac={frac}, scale={scale}")
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d))
    w = g.standard_normal(d) / np.sqrt(d)
    s = np.zeros(n)
    k = int(round(frac * n))
    pos = g.choice(n, size=k, replace=False)
    s[pos] = g.choice([-1.0, 1.0], size=k) * scale * (1.0 + g.random(k))
    return Problem(x, x @ w + s, w, s)


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``argmin_w ||X w - y||_2`` (numpy's SVD solver)."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def lad(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``min ||s||_1 s.t. X w + s = y`` as a linear program (``s = p - m``, ``p, m >= 0``,
    ``w`` free; scipy's HiGHS). Returns ``(w, s)``."""
    from scipy.optimize import linprog

    n, d = x.shape
    cost = np.concatenate([np.zeros(d), np.ones(2 * n)])
    a_eq = np.hstack([x, np.eye(n), -np.eye(n)])
    bounds = [(None, None)] * d + [(0, None)] * (2 * n)
    res = linprog(cost, A_eq=a_eq, b_eq=y, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"LAD linear program failed: {res.message}")
    w = res.x[:d]
    return w, y - x @ w


@dataclass
class SopFit:
    """Gradient descent's end point per instance: ``w [T, d]``, ``s = u^2 - v^2 [T, n]``, the
    final loss ``1/2 ||r||^2`` and the steps each instance took (it stops at ``tol``)."""

    w: np.ndarray
    s: np.ndarray
    loss: np.ndarray
    steps: np.ndarray


def step_sizes(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per instance ``eta_w = 1 / lambda_max(X^T X)`` and ``eta_s = 1 / (8 max |y|)``.

    Stability: gradient descent near an interpolant is stable when the preconditioned
    Gauss-Newton matrix ``eta_w X X^T + 4 eta_s diag(u^2 + v^2)`` has its top eigenvalue below
    2; ``u^2 + v^2 ~ |s| <~ max |y|`` keeps it near ``1 + 1/2``."""
    xs = x if x.ndim == 3 else x[None]
    ys = y if y.ndim == 2 else y[None]
    lam = np.linalg.eigvalsh(np.einsum("tni,tnj->tij", xs, xs))[:, -1]
    return 1.0 / lam, 1.0 / (8.0 * np.abs(ys).max(1))


def train_sop_linear(x: np.ndarray, y: np.ndarray, alpha: float, steps: int = 20000,
                     tol: float = 1e-20) -> SopFit:
    """Gradient descent on ``1/2 ||X w + u o u - v o v - y||^2`` from ``w = 0``,
    ``u = v = alpha``, for instances ``x [T, n, d]``, ``y [T, n]`` (or one ``[n, d]``, ``[n]``):

        r = X w + u^2 - v^2 - y,   w -= eta_w X^T r,   u -= eta_s 2 u r,   v += eta_s 2 v r,

    steps from :func:`step_sizes`; an instance stops once ``1/2 ||r||^2 <= tol`` or after
    ``steps`` steps."""
    xs = np.asarray(x, np.float64)
    ys = np.asarray(y, np.float64)
    if xs.ndim == 2:
        xs, ys = xs[None], ys[None]
    t, n, d = xs.shape
    eta_w, eta_s = step_sizes(xs, ys)
    w = np.zeros((t, d))
    u = np.full((t, n), float(alpha))
    v = np.full((t, n), float(alpha))
    done = np.zeros(t, dtype=bool)
    taken = np.zeros(t, dtype=np.int64)
    loss = np.full(t, np.inf)
    for _ in range(steps):
        r = np.einsum("tnd,td->tn", xs, w) + u * u - v * v - ys
        loss = 0.5 * np.einsum("tn,tn->t", r, r)
        done |= loss <= tol
        if done.all():
            break
        live = (~done)[:, None]
        gw = np.einsum("tnd,tn->td", xs, r)
        w = np.where(live, w - eta_w[:, None] * gw, w)
        u, v = (np.where(live, u - eta_s[:, None] * 2.0 * u * r, u),
                np.where(live, v + eta_s[:, None] * 2.0 * v * r, v))
        taken += ~done
    r = np.einsum("tnd,td->tn", xs, w) + u * u - v * v - ys
    loss = 0.5 * np.einsum("tn,tn->t", r, r)
    return SopFit(w, u * u - v * v, loss, taken)


def support_scores(s_hat: np.ndarray, support: np.ndarray, threshold: float
                   ) -> tuple[float, float]:
    """Precision and recall of ``{i : |s_hat_i| > threshold}`` against the true support
    (precision 1 when nothing is flagged, recall 1 when nothing is corrupted)."""
    flagged = np.abs(s_hat) > threshold
    tp = float(np.sum(flagged & support))
    precision = tp / flagged.sum() if flagged.any() else 1.0
    recall = tp / support.sum() if support.any() else 1.0
    return float(precision), float(recall)


def run_grid(n: int, d: int, fractions: tuple[float, ...], trials: int, scale: float,
             alpha: float, steps: int, threshold: float, seed: int = 0) -> dict[str, list]:
    """For each corruption fraction, ``trials`` random instances (seeds ``seed + 1000 i + j``):
    per instance the errors ``||w - w*||`` of least squares, of the over-parameterized model's
    gradient descent and of LAD (the small-init limit), the support precision and recall of
    gradient descent and LAD at ``threshold``, and GD's final loss and steps. Plain lists
    (JSON) indexed ``[fraction][trial]``."""
    out: dict[str, list] = {k: [] for k in (
        "err_ls", "err_sop", "err_lad", "prec_sop", "rec_sop", "prec_lad", "rec_lad",
        "gap_lad", "loss_sop", "steps_sop", "w_norm")}
    for i, frac in enumerate(fractions):
        probs = [corrupted_regression(n, d, frac, scale, seed + 1000 * i + j)
                 for j in range(trials)]
        fit = train_sop_linear(np.stack([p.x for p in probs]), np.stack([p.y for p in probs]),
                               alpha, steps)
        rows: dict[str, list] = {k: [] for k in out}
        for j, p in enumerate(probs):
            w_lad, s_lad = lad(p.x, p.y)
            ps, rs = support_scores(fit.s[j], p.support, threshold)
            pl, rl = support_scores(s_lad, p.support, threshold)
            vals = {"err_ls": np.linalg.norm(least_squares(p.x, p.y) - p.w),
                    "err_sop": np.linalg.norm(fit.w[j] - p.w),
                    "err_lad": np.linalg.norm(w_lad - p.w), "prec_sop": ps, "rec_sop": rs,
                    "prec_lad": pl, "rec_lad": rl,
                    "gap_lad": np.linalg.norm(fit.w[j] - w_lad),
                    "loss_sop": fit.loss[j], "steps_sop": fit.steps[j],
                    "w_norm": np.linalg.norm(p.w)}
            for k, val in vals.items():
                rows[k].append(float(val))
        for k in out:
            out[k].append(rows[k])
    return out


__all__ = ["Problem", "SopFit", "corrupted_regression", "lad", "least_squares", "run_grid",
           "step_sizes", "support_scores", "train_sop_linear"]
