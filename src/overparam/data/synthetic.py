"""Synthetic data: linear regression and teacher-student classification.

``linear``: x ~ N(0, I_d), y = x^T beta + eps with beta ~ N(0, I_d / d) (so Var(x^T beta) = 1) and
eps ~ N(0, noise^2): the setting of min-norm least-squares double descent (Hastie et al. 2019,
arXiv:1903.08560). ``teacher``: x ~ N(0, I_d) labelled by the argmax of a random two-layer ReLU
teacher with ``num_classes`` outputs.
"""

from __future__ import annotations

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
