"""Studies: one module per study, each with presets, plan(), run() and analyze().

``STUDIES`` maps a study name to its class; :func:`run_study` runs one into an output directory
(resumable through the run store) and :func:`reanalyze` rebuilds its report from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from overparam.studies.double_descent import DoubleDescent
from overparam.studies.edge_of_stability import EdgeOfStability
from overparam.studies.lottery import Lottery
from overparam.studies.ntk_width import NTKWidth
from overparam.studies.optimizers import Optimizers
from overparam.studies.runner import reanalyze, run_study
from overparam.studies.sharpness import Sharpness

STUDIES: Mapping[str, type] = MappingProxyType({
    "double_descent": DoubleDescent,
    "optimizers": Optimizers,
    "sharpness": Sharpness,
    "ntk_width": NTKWidth,
    "lottery": Lottery,
    "edge_of_stability": EdgeOfStability,
})

__all__ = ["STUDIES", "reanalyze", "run_study"]
