"""Arrays on disk as numpy ``.npz`` (no pickle), written atomically: tmp file + rename, so a
reader never sees half a file and a killed writer leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _array(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def save_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (numpy arrays or torch tensors) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **{k: _array(v) for k, v in arrays.items()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (pickled objects refused)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
