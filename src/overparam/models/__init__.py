"""Models of the blueprint by parseable name: ``build(name, **options)`` and ``count_params``.

``mlp_w{width}[_d{layers}]``: ReLU MLP with ``layers - 1`` hidden layers of ``width`` and a linear
output (the blueprint's "4 layers" is ``d4``, the default). ``cnn_c{c}``: three blocks of two
Conv3x3-BN-ReLU and a 2x2 max-pool with channels c, 2c, 4c, then Linear(., 256)-ReLU-Linear(256, K).
``linear_w{width}[_d{layers}]``: deep linear network (no activation).
"""

from __future__ import annotations

from overparam.models.registry import build, count_params, parse_name

__all__ = ["build", "count_params", "parse_name"]
