"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features, 10 classes)."""

from __future__ import annotations

import numpy as np

from overparam.data.dataset import Dataset, from_numpy


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Digits with a fixed, stratification-free random split (``test_fraction`` held out)."""
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    x = bunch.data.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(split_seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return from_numpy("digits", x[train], y[train], x[test], y[test], num_classes=10)
