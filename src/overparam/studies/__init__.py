"""Studies: one module per study, each with presets, plan(), run() and analyze().

``STUDIES`` maps a study name to its class, imported only when that study is looked up (a plain
table of ``"module:Class"`` paths, so that listing the studies imports none of them);
:func:`run_study` runs one into an output directory (resumable through the run store) and
:func:`reanalyze` rebuilds its report from the store.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from overparam.studies.runner import reanalyze, run_study

# The order is the order of `overparam reproduce` and of the combined report.
REGISTRY = MappingProxyType({
    "double_descent": "overparam.studies.double_descent:DoubleDescent",
    "optimizers": "overparam.studies.optimizers:Optimizers",
    "sharpness": "overparam.studies.sharpness:Sharpness",
    "ntk_width": "overparam.studies.ntk_width:NTKWidth",
    "lottery": "overparam.studies.lottery:Lottery",
    "edge_of_stability": "overparam.studies.edge_of_stability:EdgeOfStability",
    "implicit_gradient_regularization":
        "overparam.studies.implicit_gradient_regularization:ImplicitGradientRegularization",
    "sgd_regularizer": "overparam.studies.sgd_regularizer:SGDRegularizer",
    "critical_batch": "overparam.studies.critical_batch:CriticalBatch",
    "learning_rate": "overparam.studies.learning_rate:LearningRate",
    "lazy_rich": "overparam.studies.lazy_rich:LazyRich",
    "random_labels": "overparam.studies.random_labels:RandomLabels",
    "inductive_bias": "overparam.studies.inductive_bias:InductiveBias",
    "sparse_training": "overparam.studies.sparse_training:SparseTraining",
    "label_noise": "overparam.studies.label_noise:LabelNoise",
    "fairness": "overparam.studies.fairness:Fairness",
    "min_norm": "overparam.studies.min_norm:MinNorm",
    "max_margin": "overparam.studies.max_margin:MaxMargin",
    "mirror_descent": "overparam.studies.mirror_descent:MirrorDescent",
    "diagonal_net": "overparam.studies.diagonal_net:DiagonalNet",
    "deep_linear": "overparam.studies.deep_linear:DeepLinear",
    "overparam_em": "overparam.studies.overparam_em:OverparamEM",
    "sequence_opgd": "overparam.studies.sequence_opgd:SequenceOpGD",
})


class _Studies(Mapping):
    """Read-only name -> study class; the class's module is imported on first lookup."""

    def __init__(self, paths: Mapping[str, str]):
        self._paths = paths

    def __getitem__(self, name: str) -> type:
        module, attr = self._paths[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


STUDIES: Mapping[str, type] = _Studies(REGISTRY)

__all__ = ["REGISTRY", "STUDIES", "reanalyze", "run_study"]
