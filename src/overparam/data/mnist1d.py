"""MNIST-1D (Greydanus 2020, arXiv:2011.14439), generated locally with the ``mnist1d`` package.

The data set is a pure function of its generation settings; it is cached as ``.npz`` under
``cache_dir()/mnist1d/<sha256 of the settings>.npz`` (written atomically), so changing any setting
regenerates it. The package's generator seeds numpy's *global* RNG; we save and restore that state
around the call so that loading leaves no trace on the caller's randomness.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import numpy as np

from overparam.data.dataset import Dataset, cache_dir, from_numpy
from overparam.npz import load_npz, save_npz

DEFAULTS: dict[str, Any] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60],
    "scale_coeff": 0.4, "max_translation": 48, "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2, "shear_scale": 0.75, "shuffle_seq": False,
    "final_seq_length": 40, "seed": 42,
}


def settings(**overrides: Any) -> dict[str, Any]:
    """The generation settings: the package's defaults with ``overrides`` applied."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        from overparam.errors import ConfigError

        key = sorted(unknown)[0]
        raise ConfigError(key, overrides[key], f"an MNIST-1D setting: {', '.join(DEFAULTS)}")
    return {**DEFAULTS, **overrides}


def cache_key(args: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]


def generate(args: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run the ``mnist1d`` generator with ``args``, leaving the global RNG states as they were."""
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": d["x"], "y": d["y"], "x_test": d["x_test"], "y_test": d["y_test"]}


def load_mnist1d(**overrides: Any) -> Dataset:
    """MNIST-1D with the package's default settings (4,000 train / 1,000 test, 40 features)."""
    args = settings(**overrides)
    path = cache_dir() / "mnist1d" / f"{cache_key(args)}.npz"
    if path.exists():
        arrays = load_npz(path)
    else:
        arrays = generate(args)
        save_npz(path, arrays)
    return from_numpy("mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"],
                      num_classes=10, generation=args)
