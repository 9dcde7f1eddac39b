"""Data sets as tensors on one device: ``load(name, **options)``.

Every loader returns a :class:`Dataset` whose tensors live on the chosen device from the start;
training indexes them directly (no DataLoader in the training path). Seeded transforms (training
subset, label noise to a *wrong* class, random labels, per-channel standardization with training
statistics) are applied in that order, driven by ``seed``.

Available: ``mnist1d`` (generated locally, the default), ``digits`` (scikit-learn's 8x8 digits),
``mnist`` and ``cifar10`` (standard files under ``root``; downloaded when online), ``linear``
(linear regression with chosen n, d, noise) and ``teacher`` (teacher-student classification).
"""

from __future__ import annotations

from overparam.data.dataset import Dataset, load, load_config
from overparam.data.registry import DATASETS

__all__ = ["DATASETS", "Dataset", "load", "load_config"]
