"""Training: K seeds of one configuration at once as a batched ensemble.

``train(cfg, seeds)`` returns one :class:`SeedResult` per seed. See :mod:`.ensemble` for the
batched model and :mod:`.loop` for the loop and its hook points.
"""

from __future__ import annotations

from overparam.train.ensemble import Ensemble
from overparam.train.loop import HookContext, Hooks, SeedResult, train

__all__ = ["Ensemble", "HookContext", "Hooks", "SeedResult", "train"]
