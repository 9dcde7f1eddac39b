"""Fair training of random-features logistic regression: MinDiff, flooding, weight decay, early
stopping, by full-batch gradient descent in the n-dimensional kernel parameterization.

Model. Random ReLU features ``phi(x) = relu(W x / sqrt(d)) / sqrt(N)`` with ``W`` (N x d) fixed,
entries N(0, 1) (Rahimi & Recht 2007; the random-features model of Mei & Montanari 2019,
arXiv:1908.05355), a linear score ``f(x) = <w, phi(x)>`` and the probability
``p(x) = sigma(f(x))``. ``Phi`` (n x N) stacks the training features, ``K = Phi Phi^T``.

Objective, for labels ``y_i in {0, 1}`` and a binary group attribute ``a_i``:

    J(w) = flood_b(L(w)) + lambda MMD^2(w) + (mu / 2) ||w||^2,
    L(w) = (1/n) sum_i [log(1 + e^{f_i}) - y_i f_i]               (logistic loss),
    flood_b(L) = |L - b| + b                                       (flooding; none: L),
    MMD^2 = sum_{i,j in P} c_ij k(p_i, p_j),  k(p, q) = exp(-(p - q)^2 / ell^2).

* MinDiff (Prost, Qian, Chen, Chi, Chen & Beutel 2019, arXiv:1910.11779): the squared maximum
  mean discrepancy between the predicted probabilities of the two groups *within the positive
  class* ``P = {i : y_i = 1}`` (equality of opportunity: equal false-negative rates). ``c_ij`` is
  ``1/n_0^2`` when both ``i, j`` are in group 0, ``1/n_1^2`` in group 1 and ``-1/(n_0 n_1)``
  across, so ``MMD^2 = mean k(G0, G0) + mean k(G1, G1) - 2 mean k(G0, G1)``: the *biased*
  V-statistic (the ``i = j`` terms included), as the MinDiff library's ``MMDLoss`` computes it,
  not Gretton et al.'s (2012, arXiv:0805.2368) unbiased U-statistic. The Gaussian kernel's
  length ``ell = 0.1`` is the library's ``GaussianKernel`` default and the weight ``lambda = 1.5``
  its Keras guide's. With the whole training set as the batch, ``P`` is all training positives;
  when a group has no positive example there is nothing to compare and the term is 0.
  Its gradient: ``dMMD^2/dp_i = 2 sum_j c_ij d_1 k(p_i, p_j)``, ``d_1 k(p, q) = -2 (p - q) / ell^2
  k(p, q)`` (c symmetric), and ``dp_i/df_i = p_i (1 - p_i)``.
* Flooding (Ishida, Yamane, Sakai, Niu & Sugiyama 2020, arXiv:2002.08709): gradient descent on
  ``|L - b| + b`` descends ``L`` while ``L > b`` and ascends it below; only the task loss is
  flooded (Veldanda et al.'s MinDiff + flooding).
* Weight decay: ``(mu/2) ||w||^2``, ``||w||^2 = alpha^T K alpha`` below.
* Early stopping: the checkpoint (every ``eval_every`` steps, the untrained start excluded)
  with the lowest validation logistic loss ``L_val`` (``stop_on="task"``), or the lowest
  validation objective ``L_val + lambda MMD^2_val`` (``stop_on="objective"``).

The kernel parameterization (exact). ``grad J(w) = Phi^T g + mu w`` with
``g_i = s (p_i - y_i) / n + lambda (dMMD^2/dp_i) p_i (1 - p_i)``, ``s = sign(L - b)`` (1 without
flooding). From ``w_0 = 0`` every iterate is therefore ``w_t = Phi^T alpha_t`` with

    alpha_{t+1} = (1 - eta mu) alpha_t - eta g(f_t),   f_t = K alpha_t,
    f_test = Phi_test Phi^T alpha_t,

so gradient descent on the N-dimensional ``w`` runs in n dimensions, at O(n^2) a step whatever
N (tested against gradient descent on ``w`` with autograd). Steps are at most
``eta_max = lr x 4 n / lambda_max(K)``, ``1 / beta`` for the bound ``beta = lambda_max(K) / (4 n)``
on the logistic loss's curvature (``sigma' <= 1/4``), with Armijo backtracking: at the start the
MinDiff term is some 20-40 times stiffer than ``beta`` (:func:`gradient_descent`).

On separable data (``N`` above about ``n / 2`` random features for random labels, Cover 1965)
the logistic loss has no minimizer: gradient descent reaches zero training error and then
``L -> 0`` like ``1/t`` while ``||w||`` grows like ``log t`` towards the max-margin direction
(Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, arXiv:1710.10345). Once every training
example is classified with confidence, every positive has ``p_i -> 1``: both groups' predictions
coincide, the training false-negative-rate gap is 0 and ``MMD^2 -> 0`` with its gradient -- the
"illusion of fairness" of Veldanda, Brugere, Chen, Dutta, Mishler & Garg (2022, arXiv:2206.14853).

All arrays are numpy float64; ``m`` objectives run as one batch (columns of ``alpha``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

LENGTH = 0.1  # the MinDiff library's GaussianKernel default


# -- pieces --------------------------------------------------------------------------------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^-z)`` without overflow."""
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def relu_features(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``relu(x W^T / sqrt(d)) / sqrt(N)`` for inputs ``x`` (m x d) and weights ``W`` (N x d)."""
    x, W = np.asarray(x, dtype=np.float64), np.asarray(W, dtype=np.float64)
    return np.maximum(x @ W.T / np.sqrt(x.shape[1]), 0.0) / np.sqrt(W.shape[0])


def logistic_loss(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean ``log(1 + e^f) - y f`` over axis 0 (one value per column of ``f``)."""
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape((-1,) + (1,) * (f.ndim - 1))
    return np.mean(np.logaddexp(0.0, f) - y * f, axis=0)


def logistic_grad(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``d L / d f_i = (sigma(f_i) - y_i) / n``."""
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape((-1,) + (1,) * (f.ndim - 1))
    return (sigmoid(f) - y) / f.shape[0]


def flood(loss: np.ndarray | float, level: float) -> np.ndarray:
    """Flooding ``|L - b| + b`` (Ishida et al. 2020); its derivative in ``L`` is
    ``sign(L - b)``."""
    return np.abs(np.asarray(loss, dtype=np.float64) - level) + level


def gaussian_kernel(p: np.ndarray, q: np.ndarray, length: float = LENGTH) -> np.ndarray:
    """``exp(-(p - q)^2 / length^2)`` (the MinDiff library's Gaussian kernel on scalars)."""
    return np.exp(-((np.asarray(p, float) - np.asarray(q, float)) ** 2) / length ** 2)


def mmd_contrast(member: np.ndarray) -> np.ndarray:
    """``u`` with ``u_i = 1/n_1`` in group 1 and ``-1/n_0`` in group 0, so that the V-statistic's
    weights are ``c = u u^T``; zeros when a group is empty (nothing to compare)."""
    m = np.asarray(member).astype(bool)
    n1, n0 = int(m.sum()), int((~m).sum())
    if n0 == 0 or n1 == 0:
        return np.zeros(m.size)
    return np.where(m, 1.0 / n1, -1.0 / n0)


def mmd_weights(member: np.ndarray) -> np.ndarray:
    """``c_ij`` of the V-statistic between group 0 and group 1 of ``member`` (0/1 entries):
    ``1/n_0^2``, ``1/n_1^2`` within the groups, ``-1/(n_0 n_1)`` across; zeros when a group is
    empty."""
    u = mmd_contrast(member)
    return np.outer(u, u)


def mmd2(p: np.ndarray, member: np.ndarray, length: float = LENGTH) -> np.ndarray:
    """Biased (V-statistic) squared MMD with the Gaussian kernel between ``p[member == 0]`` and
    ``p[member == 1]``; ``p`` may carry trailing columns (one value per column)."""
    return mmd2_and_grad(p, member, length)[0]


def mmd2_and_grad(p: np.ndarray, member: np.ndarray, length: float = LENGTH,
                  contrast: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``MMD^2`` and its gradient in ``p`` (same shape as ``p``; ``p`` is (k,) or (k, m)).

    With the kernel matrix ``k`` and ``c = u u^T`` (:func:`mmd_contrast`): ``MMD^2 = u^T k u``
    and ``dMMD^2/dp_i = 2 sum_j c_ij d_1 k(p_i, p_j) = -4 / ell^2 sum_j u_i u_j (p_i - p_j)
    k_ij = -4 / ell^2 u_i (p_i (k u)_i - (k (u * p))_i)``: two products with ``k``, one column
    at a time (the k x k block stays in cache). ``contrast``: ``mmd_contrast(member)``, when
    already computed."""
    p = np.asarray(p, dtype=np.float64)
    flat = p.ndim == 1
    q = p[:, None] if flat else p
    u = mmd_contrast(member) if contrast is None else contrast
    value, grad = np.empty(q.shape[1]), np.empty_like(q)
    for j in range(q.shape[1]):
        v = q[:, j]
        k = np.subtract.outer(v / length, v / length)
        np.square(k, out=k)
        np.negative(k, out=k)
        np.exp(k, out=k)
        ku, kup = (k @ np.stack([u, u * v], axis=1)).T
        value[j] = u @ ku
        grad[:, j] = -4.0 / length ** 2 * u * (v * ku - kup)
    return (value[0], grad[:, 0]) if flat else (value, grad)


def fnr(pred: np.ndarray, y: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """False-negative rates ``P(pred = 0 | y = 1, a = g)`` of group 0 and group 1 (NaN when a
    group has no positive)."""
    pred, y, a = np.asarray(pred).astype(bool), np.asarray(y), np.asarray(a)
    out = []
    for g in (0, 1):
        sel = (y == 1) & (a == g)
        out.append(float(np.mean(~pred[sel])) if sel.any() else float("nan"))
    return out[0], out[1]


def fnr_gap(pred: np.ndarray, y: np.ndarray, a: np.ndarray) -> float:
    """``|FNR_0 - FNR_1|``: the equality-of-opportunity gap (Hardt, Price & Srebro 2016,
    arXiv:1610.02413) that MinDiff targets."""
    f0, f1 = fnr(pred, y, a)
    return abs(f0 - f1)


def group_accuracies(pred: np.ndarray, y: np.ndarray, a: np.ndarray) -> list[float]:
    """Accuracy of each (y, a) group in the order y0a0, y0a1, y1a0, y1a1 (NaN when empty)."""
    pred, y, a = np.asarray(pred).astype(int), np.asarray(y), np.asarray(a)
    out = []
    for yy in (0, 1):
        for aa in (0, 1):
            sel = (y == yy) & (a == aa)
            out.append(float(np.mean(pred[sel] == yy)) if sel.any() else float("nan"))
    return out


# -- the objective in the kernel parameterization ------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """One arm's training objective: ``flood_b(L) + mindiff MMD^2 + weight_decay/2 ||w||^2``."""

    name: str
    mindiff: float = 0.0
    flood: float | None = None
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not self.mindiff >= 0:
            raise ValueError(f"mindiff={self.mindiff}: a non-negative weight")
        if self.flood is not None and not self.flood > 0:
            raise ValueError(f"flood={self.flood}: a positive flood level or None")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay={self.weight_decay}: a non-negative number")


def objective_terms(alpha: np.ndarray, K: np.ndarray, y: np.ndarray, a: np.ndarray,
                    objectives: Sequence[Objective], length: float = LENGTH,
                    contrast: np.ndarray | None = None, mmd: bool = True,
                    f: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every term of ``J`` and ``g`` (so that ``grad_w J = Phi^T (g + mu alpha)``) for the
    columns of ``alpha`` (n x m), one objective per column. ``contrast``: ``mmd_contrast`` of
    the positives' groups, when already computed; ``mmd=False`` skips the MMD term (0 instead);
    ``f``: ``K @ alpha``, when already known."""
    alpha = np.asarray(alpha, dtype=np.float64)
    f = K @ alpha if f is None else f
    p = sigmoid(f)
    y = np.asarray(y)
    task = logistic_loss(f, y)
    lam = np.array([o.mindiff for o in objectives])
    mu = np.array([o.weight_decay for o in objectives])
    flooded_arm = np.array([o.flood is not None for o in objectives])
    level = np.array([o.flood if o.flood is not None else 0.0 for o in objectives])
    sign = np.where(flooded_arm, np.sign(task - level), 1.0)
    g = sign * logistic_grad(f, y)
    mmd_value = np.zeros(len(objectives))
    pos = np.flatnonzero(y == 1)
    md = np.flatnonzero(lam > 0)
    if mmd and md.size and pos.size:
        pp = p[pos][:, md]
        value, dp = mmd2_and_grad(pp, np.asarray(a)[pos], length, contrast)
        mmd_value[md] = value
        g[np.ix_(pos, md)] += lam[md] * dp * pp * (1.0 - pp)
    # ||w||^2 = alpha^T K alpha (on the training Gram matrix; NaN for a held-out split's K_s)
    norm2 = (np.einsum("im,im->m", alpha, f) if f.shape[0] == alpha.shape[0]
             else np.full(len(objectives), np.nan))
    flooded = np.where(flooded_arm, flood(task, level), task)
    return {"f": f, "p": p, "task": task, "mmd": mmd_value, "norm2": norm2, "g": g, "mu": mu,
            "objective": flooded + lam * mmd_value + 0.5 * mu * norm2}


def grad_norm(terms: dict[str, np.ndarray], K: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``||grad_w J|| = sqrt(v^T K v)``, ``v = g + mu alpha``, per column."""
    v = terms["g"] + terms["mu"] * alpha
    return np.sqrt(np.maximum(np.einsum("im,im->m", v, K @ v), 0.0))


def step_size(K: np.ndarray, lr: float = 1.0) -> float:
    """``lr x 4 n / lambda_max(K)`` (``lr = 1``: one over the logistic loss's curvature bound)."""
    return float(lr * 4 * K.shape[0] / np.linalg.eigvalsh(K)[-1])


@dataclass
class Split:
    """A split seen through the training features: ``K_s = Phi_s Phi^T`` (``K`` itself for the
    training split), labels and groups; the MMD contrast of its positives is computed once."""

    K: np.ndarray
    y: np.ndarray
    a: np.ndarray
    _contrast: np.ndarray | None = field(default=None, repr=False)

    @property
    def contrast(self) -> np.ndarray:
        if self._contrast is None:
            self._contrast = mmd_contrast(np.asarray(self.a)[np.asarray(self.y) == 1])
        return self._contrast


@dataclass
class GDResult:
    """Final iterates, early-stopped iterates and the recorded history of one batched run."""

    alpha: np.ndarray  # (n, m) final
    best_alpha: np.ndarray  # (n, m) lowest validation objective (final when not early-stopped)
    best_step: np.ndarray  # (m,) its step
    eta_max: float  # 1 / beta (x lr): the step of every accepted unshrunk step
    steps: int
    grad0: np.ndarray  # (m,) ||grad J|| at w = 0
    grad: np.ndarray  # (m,) at the end
    finite: bool
    shrunk: np.ndarray  # (m,) steps taken below eta_max (backtracking)
    min_eta: np.ndarray  # (m,) smallest accepted step
    evaluations: int  # objective evaluations (columns x trials)
    history: dict[str, list] = field(default_factory=dict)


def checkpoints(steps: int, count: int) -> list[int]:
    """About ``count`` log-spaced steps in [0, steps], always with 0 and ``steps``."""
    pts = np.unique(np.round(np.geomspace(1, max(steps, 1), max(count - 1, 1))).astype(int))
    return sorted({0, steps, *pts.tolist()})


def evaluate(alpha: np.ndarray, split: Split, objectives: Sequence[Objective],
             length: float = LENGTH, mmd: bool = True) -> dict[str, np.ndarray]:
    """Accuracy, FNR gap, task loss, MMD^2 (``mmd``) and the validation objective
    ``L + lambda MMD^2`` of every column on a split."""
    terms = objective_terms(alpha, split.K, split.y, split.a, objectives, length,
                            split.contrast if mmd else None, mmd)
    pred = terms["f"] > 0
    lam = np.array([o.mindiff for o in objectives])
    return {"acc": np.mean(pred == (split.y == 1)[:, None], axis=0),
            "gap": np.array([fnr_gap(pred[:, j], split.y, split.a)
                             for j in range(alpha.shape[1])]),
            "task": terms["task"], "mmd": terms["mmd"],
            "val_objective": terms["task"] + lam * terms["mmd"]}


def _take(terms: dict[str, np.ndarray], cols: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (v[:, cols] if v.ndim == 2 else v[cols]) for k, v in terms.items()}


def _put(terms: dict[str, np.ndarray], cols: np.ndarray, part: dict[str, np.ndarray]) -> None:
    for k, v in part.items():
        if v.ndim == 2:
            terms[k][:, cols] = v
        else:
            terms[k][cols] = v


def _armijo(before: np.ndarray, after: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Armijo's sufficient decrease ``after <= before - drop``; where ``drop`` is below the
    objective's round-off (at a minimizer), no increase beyond that round-off."""
    tiny = 1e-13 * np.maximum(np.abs(before), 1.0)
    return (after <= before - drop) | ((drop <= tiny) & (after <= before + tiny))


def gradient_descent(K: np.ndarray, y: np.ndarray, a: np.ndarray,
                     objectives: Sequence[Objective], steps: int, lr: float = 1.0,
                     length: float = LENGTH, val: Split | None = None, eval_every: int = 10,
                     early_stop: Sequence[int] | None = None, stop_on: str = "task",
                     monitor: dict[str, Split] | None = None, record: int = 25,
                     line_search: bool = True, armijo: float = 0.5) -> GDResult:
    """Full-batch gradient descent from ``w = 0`` on each objective (one column each) for
    ``steps`` steps.

    Step: ``eta_max = step_size(K, lr)`` (``1/beta`` of the logistic loss). With
    ``line_search`` (Armijo backtracking) a column's step starts from its previous step
    (doubled, up to ``eta_max``, after five steps accepted at the first trial) and is halved
    until ``J(w - eta grad) <= J(w) - armijo eta ||grad||^2``. A flooded objective is tested on
    the smooth piece the step descends (the side of ``|L - b|`` frozen at the current iterate),
    so that the step may cross ``L = b``: full-batch flooding then oscillates about the flood
    level as Ishida et al. describe, instead of stalling at the kink with vanishing steps. With
    ``armijo = 1/2`` the descent lemma accepts every ``eta <= 1/beta_J`` at once, so the
    baseline's steps are all ``eta_max`` (plain GD); the MinDiff term's curvature at the start,
    ``lambda u^T K u / (4 ell^2)`` (u: the +-1/n_g contrast of the groups' positives), is some
    20-40 times ``beta`` here, and a fixed ``eta_max`` would overshoot it. Without
    ``line_search``: plain GD at ``eta_max``.

    Early stopping (with ``val``): for the columns ``early_stop`` (default all) the iterate of
    lowest validation task loss (``stop_on="task"``) or objective ``L + lambda MMD^2``
    (``"objective"``) among steps ``eval_every, 2 eval_every, ...`` (the untrained start
    excluded) is kept. At ``record`` log-spaced checkpoints the history holds the
    training terms, the step sizes and, for each ``monitor`` split, accuracy and FNR gap."""
    if stop_on not in ("task", "objective"):
        raise ValueError(f"stop_on={stop_on!r}: task or objective")
    train = Split(np.asarray(K, dtype=np.float64), np.asarray(y), np.asarray(a))
    K, y, a = train.K, train.y, train.a
    n, m = K.shape[0], len(objectives)
    eta_max = step_size(K, lr)
    alpha = np.zeros((n, m))
    eta = np.full(m, eta_max)
    shrunk, min_eta = np.zeros(m, dtype=int), np.full(m, eta_max)
    streak = np.zeros(m, dtype=int)
    es = list(range(m)) if early_stop is None else list(early_stop)
    es_objectives = [objectives[j] for j in es]
    best_alpha, best_step = np.zeros((n, m)), np.full(m, -1)
    best_val = np.full(len(es), np.inf)
    marks = set(checkpoints(steps, record))
    hist: dict[str, list] = {"step": [], "task": [], "objective": [], "mmd": [], "norm2": [],
                             "train_acc": [], "train_gap": [], "eta": []}
    for name in monitor or {}:
        hist[f"{name}_acc"], hist[f"{name}_gap"] = [], []

    def terms_of(al: np.ndarray, cols: np.ndarray, f: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
        return objective_terms(al, K, y, a, [objectives[j] for j in cols], length,
                               train.contrast, f=f)

    level = np.array([o.flood if o.flood is not None else 0.0 for o in objectives])
    flooded = np.array([o.flood is not None for o in objectives])

    def piece(got: dict[str, np.ndarray], cols: np.ndarray, side: np.ndarray) -> np.ndarray:
        """``J`` with the flood's side frozen at the current iterate: ``s (L - b) + b`` for
        ``|L - b| + b`` (the smooth piece that step's gradient descends)."""
        gap = got["task"] - level[cols]
        return got["objective"] + flooded[cols] * (side * gap - np.abs(gap))

    every = np.arange(m)
    terms = terms_of(alpha, every)
    grad0 = grad_norm(terms, K, alpha)
    evaluations, finite, t = m, True, 0
    for t in range(steps + 1):
        if not np.all(np.isfinite(terms["objective"])):
            finite = False
            break
        if val is not None and es and t > 0 and t % eval_every == 0:
            v = evaluate(alpha[:, es], val, es_objectives, length,
                         mmd=stop_on == "objective")["val_objective"]
            better = v < best_val
            best_val = np.where(better, v, best_val)
            cols = [j for j, b in zip(es, better) if b]
            best_alpha[:, cols] = alpha[:, cols]
            best_step[cols] = t
        if t in marks:
            pred = terms["f"] > 0
            hist["step"].append(t)
            for key in ("task", "objective", "mmd", "norm2"):
                hist[key].append(terms[key].tolist())
            hist["eta"].append(eta.tolist())
            hist["train_acc"].append(np.mean(pred == (y == 1)[:, None], axis=0).tolist())
            hist["train_gap"].append([fnr_gap(pred[:, j], y, a) for j in range(m)])
            for name, split in (monitor or {}).items():
                ev = evaluate(alpha, split, objectives, length, mmd=False)
                hist[f"{name}_acc"].append(ev["acc"].tolist())
                hist[f"{name}_gap"].append(ev["gap"].tolist())
        if t == steps:
            break
        v = terms["g"] + terms["mu"] * alpha  # grad_w J = Phi^T v
        kv = K @ v  # the trial scores are f - eta K v: one product with K per step
        if not line_search:
            alpha = alpha - eta_max * v
            terms = terms_of(alpha, every, terms["f"] - eta_max * kv)
            evaluations += m
            continue
        sq = np.einsum("im,im->m", v, kv)  # ||grad_w J||^2
        grow = streak >= 5  # five first-trial acceptances in a row: try a doubled step
        eta = np.where(grow, np.minimum(2 * eta, eta_max), eta)
        streak[grow] = 0
        side = np.sign(terms["task"] - level)
        new_alpha = alpha - eta * v
        new_terms = terms_of(new_alpha, every, terms["f"] - eta * kv)
        evaluations += m
        ok = _armijo(terms["objective"], piece(new_terms, every, side), armijo * eta * sq)
        streak[ok] += 1
        streak[~ok] = 0
        todo = every[~ok]
        for _ in range(60):
            if not todo.size:
                break
            eta[todo] /= 2
            trial = alpha[:, todo] - eta[todo] * v[:, todo]
            got = terms_of(trial, todo, terms["f"][:, todo] - eta[todo] * kv[:, todo])
            evaluations += todo.size
            ok = _armijo(terms["objective"][todo], piece(got, todo, side[todo]),
                         armijo * eta[todo] * sq[todo])
            done = todo[ok]
            new_alpha[:, done] = trial[:, ok]
            _put(new_terms, done, _take(got, np.flatnonzero(ok)))
            todo = todo[~ok]
        if todo.size:  # no acceptable step in 60 halvings
            finite = False
            break
        shrunk += eta < eta_max
        min_eta = np.minimum(min_eta, eta)
        alpha, terms = new_alpha, new_terms
    unset = best_step < 0
    best_alpha[:, unset], best_step[unset] = alpha[:, unset], t
    grad = grad_norm(terms, K, alpha)
    return GDResult(alpha, best_alpha, best_step, eta_max, t, grad0, grad, finite, shrunk,
                    min_eta, evaluations, hist)


__all__ = ["LENGTH", "GDResult", "Objective", "Split", "checkpoints", "evaluate", "flood",
           "fnr", "fnr_gap", "gaussian_kernel", "grad_norm", "gradient_descent",
           "group_accuracies", "logistic_grad", "logistic_loss", "mmd2", "mmd2_and_grad",
           "mmd_contrast", "mmd_weights", "objective_terms", "relu_features", "sigmoid",
           "step_size"]
