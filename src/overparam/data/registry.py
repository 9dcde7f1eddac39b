"""The one registry of data sets: name -> where its raw loader lives.

A plain dict of ``"module:function"`` paths, imported only when that data set is loaded, so that
validating a name (``DataConfig``) costs nothing and imports no loader. This module imports nothing
of the project: the configuration layer below it may read it without an import circle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

DATASETS = MappingProxyType({
    "mnist1d": "overparam.data.mnist1d:load_mnist1d",
    "digits": "overparam.data.digits:load_digits",
    "mnist": "overparam.data.vision:load_mnist",
    "cifar10": "overparam.data.vision:load_cifar10",
    "linear": "overparam.data.synthetic:linear_regression",
    "teacher": "overparam.data.synthetic:teacher_student",
})

# Files a data set needs on disk (none: generated or bundled with a package).
NEEDS_FILES = frozenset({"mnist", "cifar10"})


def loader(name: str) -> Callable[..., Any]:
    """The raw loader of data set ``name`` (a KeyError names an unknown one)."""
    module, attr = DATASETS[name].split(":")
    return getattr(importlib.import_module(module), attr)
