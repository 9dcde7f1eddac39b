"""Synthetic data: linear regression, teacher-student classification, spurious groups.

``linear``: x ~ N(0, I_d), y = x^T beta + eps with beta ~ N(0, I_d / d) (so Var(x^T beta) = 1) and
eps ~ N(0, noise^2): the setting of min-norm least-squares double descent (Hastie et al. 2019,
arXiv:1903.08560). ``teacher``: x ~ N(0, I_d) labelled by the argmax of a random two-layer ReLU
teacher with ``num_classes`` outputs. ``spurious_groups``: a binary label, a group attribute that
agrees with it in most training examples, core and spurious features (Sagawa et al. 2020,
arXiv:2005.04345); numpy splits with the attribute, for fairness studies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overparam.data.dataset import Dataset, from_numpy
from overparam.errors import ConfigError


def linear_regression(n: int = 200, d: int = 100, noise: float = 0.5, n_test: int = 1000,
                      data_seed: int = 0) -> Dataset:
    """Gaussian linear regression with ``n`` training samples in ``d`` dimensions."""
    for name, v in (("n", n), ("d", d), ("n_test", n_test)):
        if not isinstance(v, int) or v <= 0:
            raise ConfigError(name, v, "a positive integer")
    if noise < 0:
        raise ConfigError("noise", noise, "a non-negative number")
    g = np.random.default_rng(data_seed)
    beta = g.standard_normal(d) / np.sqrt(d)
    x = g.standard_normal((n + n_test, d))
    y = x @ beta + noise * g.standard_normal(n + n_test)
    return from_numpy("linear", x[:n], y[:n, None], x[n:], y[n:, None], num_classes=0,
                      task="regression", beta=beta.tolist(), noise=noise)


def teacher_student(n: int = 2000, d: int = 20, num_classes: int = 10, width: int = 64,
                    n_test: int = 1000, data_seed: int = 0) -> Dataset:
    """Gaussian inputs labelled by a random ReLU teacher ``argmax(W2 relu(W1 x))``."""
    for name, v in (("n", n), ("d", d), ("num_classes", num_classes), ("width", width)):
        if not isinstance(v, int) or v <= 0:
            raise ConfigError(name, v, "a positive integer")
    g = np.random.default_rng(data_seed)
    w1 = g.standard_normal((d, width)) / np.sqrt(d)
    w2 = g.standard_normal((width, num_classes)) / np.sqrt(width)
    x = g.standard_normal((n + n_test, d))
    y = np.argmax(np.maximum(x @ w1, 0) @ w2, axis=1)
    return from_numpy("teacher", x[:n], y[:n], x[n:], y[n:], num_classes=num_classes)


# -- groups with a spurious attribute (a synthetic Waterbirds) -----------------------------------
@dataclass(frozen=True)
class GroupSplit:
    """One split of :func:`spurious_groups`: inputs ``x`` (float64, ``(m, d)``), label ``y`` and
    group attribute ``a`` (int64 in {0, 1})."""

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray

    def agreement(self) -> float:
        """The fraction of examples whose attribute equals their label."""
        return float(np.mean(self.a == self.y))

    def counts(self) -> dict[str, int]:
        """Group sizes ``{"y0a0": ..., "y0a1": ..., "y1a0": ..., "y1a1": ...}``."""
        return {f"y{y}a{a}": int(np.sum((self.y == y) & (self.a == a)))
                for y in (0, 1) for a in (0, 1)}


@dataclass(frozen=True)
class GroupData:
    """Training, validation and test splits of :func:`spurious_groups` and their settings."""

    train: GroupSplit
    val: GroupSplit
    test: GroupSplit
    info: dict


def spurious_groups(n: int = 500, n_val: int = 500, n_test: int = 2000, d_core: int = 100,
                    d_spurious: int = 100, d_noise: int = 0, core_noise: float = 10.0,
                    spurious_noise: float = 1.0, agreement: float = 0.9,
                    test_agreement: float = 0.5, val_agreement: float | None = None,
                    data_seed: int = 0) -> GroupData:
    """A binary label ``y``, a binary group attribute ``a`` that mostly agrees with it, and
    features that carry ``y`` (noisily) and ``a`` (cleanly): the synthetic data set of Sagawa,
    Raghunathan, Koh & Liang 2020 ("An investigation of why overparameterization exacerbates
    spurious correlations", arXiv:2005.04345, Sec. 5), an analogue of Waterbirds (bird type vs
    background) and CelebA (hair colour vs gender).

    Generative model, each example independently (``s(v) = 2 v - 1`` maps {0, 1} to {-1, +1}):

        y ~ Bernoulli(1/2),   a = y with probability ``agreement``, else 1 - y,
        x_core  ~ N(s(y) 1, core_noise^2 I_{d_core})          (informative of y, noisy),
        x_spu   ~ N(s(a) 1, spurious_noise^2 I_{d_spurious})  (informative of a),
        x_noise ~ N(0, I_{d_noise}),   x = [x_core, x_spu, x_noise].

    With the defaults (Sagawa et al.'s: d_core = d_spurious = 100, core_noise^2 = 100,
    spurious_noise^2 = 1, agreement 0.9) the best core-only classifier errs with probability
    ``Phi(-sqrt(d_core) / core_noise)`` = Phi(-1) ~ 16%, while ``a`` is read off the spurious
    block almost perfectly, so the majority groups (a = y) are fit through ``a`` and the minority
    groups (a != y) are the hard ones.

    Splits: ``train`` (``n`` examples) at ``agreement``; ``val`` (``n_val``) at ``val_agreement``
    (default: ``agreement``, a held-out part of the training distribution, as early stopping
    uses it); ``test`` (``n_test``) at ``test_agreement``, by default 0.5: group-balanced within
    each class, as in Waterbirds' test set (Sagawa, Koh, Hashimoto & Liang 2020,
    arXiv:1911.08731). A group's false-negative rate ``P(yhat = 0 | y = 1, a)`` is conditional on
    the group, so the test mix does not change its expectation; balancing only makes the
    minority group's estimate as precise as the majority's (a test set at the training mix of
    0.9 would hold ~5% of its examples in each minority group).
    """
    for name, v in (("n", n), ("n_val", n_val), ("n_test", n_test), ("d_core", d_core),
                    ("d_spurious", d_spurious)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
            raise ConfigError(name, v, "a positive integer")
    if isinstance(d_noise, bool) or not isinstance(d_noise, int | np.integer) or d_noise < 0:
        raise ConfigError("d_noise", d_noise, "a non-negative integer")
    for name, v in (("core_noise", core_noise), ("spurious_noise", spurious_noise)):
        if not (isinstance(v, int | float) and v >= 0 and np.isfinite(v)):
            raise ConfigError(name, v, "a non-negative number")
    val_agreement = agreement if val_agreement is None else val_agreement
    for name, v in (("agreement", agreement), ("test_agreement", test_agreement),
                    ("val_agreement", val_agreement)):
        if isinstance(v, bool) or not (isinstance(v, int | float) and 0 <= v <= 1):
            raise ConfigError(name, v, "a probability in [0, 1]")
    g = np.random.default_rng(data_seed)

    def split(m: int, agree: float) -> GroupSplit:
        y = g.integers(0, 2, m)
        a = np.where(g.random(m) < agree, y, 1 - y)
        x = np.concatenate([
            (2 * y - 1)[:, None] + core_noise * g.standard_normal((m, d_core)),
            (2 * a - 1)[:, None] + spurious_noise * g.standard_normal((m, d_spurious)),
            g.standard_normal((m, d_noise))], axis=1)
        return GroupSplit(x, y.astype(np.int64), a.astype(np.int64))

    info = {"n": n, "n_val": n_val, "n_test": n_test, "d_core": d_core,
            "d_spurious": d_spurious, "d_noise": d_noise, "core_noise": core_noise,
            "spurious_noise": spurious_noise, "agreement": agreement,
            "test_agreement": test_agreement, "val_agreement": val_agreement,
            "data_seed": data_seed}
    return GroupData(split(n, agreement), split(n_val, val_agreement),
                     split(n_test, test_agreement), info)
