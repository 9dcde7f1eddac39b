"""Studies: one module per study, each with presets, plan(), run() and analyze().

``STUDIES`` maps a study name to its CLI entry point; studies register here as they are added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

STUDIES: Mapping[str, Callable[[Any], int]] = MappingProxyType({})
