"""Training: K seeds of one configuration at once as a batched ensemble.

``train(cfg, seeds)`` returns one :class:`SeedResult` per seed. See :mod:`.ensemble` for the
batched model, :mod:`.loop` for the loop and :mod:`.interventions` for what can change how a run
trains (loss terms, masks, stopping rules, per-step measurements) as part of its identity.
"""

from __future__ import annotations

from overparam.train.ensemble import Ensemble
from overparam.train.loop import SeedResult, train

__all__ = ["Ensemble", "SeedResult", "train"]
