"""Weights of finished runs on disk: ``<dir>/<run_id>.npz`` and named artifacts beside them.

A run's final weights (one member's state dict, in the module's own layout) are
``<run_id>.npz``; what its interventions keep (a pruning mask, a snapshot at step k for
rewinding) is ``<run_id>.<name>.npz``. Files are numpy ``.npz`` (no pickle) written atomically,
and always before the run's row lands in the store, so a stored run's files are complete.
Any process that can see the directory may read them: a worker rebuilding a mask from its
parent run reads the parent's files here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FINAL = "final"
_NAME = re.compile(r"^[a-z0-9_]+$")


class WeightStore:
    """Weights and artifacts of runs under ``directory``."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, run_id: str, name: str = FINAL) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"artifact name {name!r}: lower-case letters, digits, underscores")
        suffix = ".npz" if name == FINAL else f".{name}.npz"
        return self.directory / f"{run_id}{suffix}"

    def has(self, run_id: str, name: str = FINAL) -> bool:
        return self.path(run_id, name).exists()

    def save(self, run_id: str, state: Mapping[str, Any], name: str = FINAL) -> None:
        from overparam.npz import save_npz

        save_npz(self.path(run_id, name), state)

    def load(self, run_id: str, name: str = FINAL, device: Any = "cpu") -> dict[str, Any]:
        """A state dict of torch tensors (a missing file raises FileNotFoundError naming it)."""
        import torch

        from overparam.npz import load_npz

        path = self.path(run_id, name)
        if not path.exists():
            raise FileNotFoundError(f"weights {path.name} of run {run_id[:12]} are not stored "
                                    f"under {self.directory}")
        return {k: torch.from_numpy(v.copy()).to(device) for k, v in load_npz(path).items()}
