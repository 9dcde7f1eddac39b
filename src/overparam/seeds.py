"""Derived seeds: one independent stream per source of randomness of a replicate.

A replicate's seed is never used directly: each source (``init``, ``order``, ``probe``, label
``noise``...) draws from a generator seeded with ``derive_seed(seed, source)``, the first 63 bits
of sha256 of ``f"{source}:{seed}"``. Streams are independent across sources and stable across
versions (a test pins a value).
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, source: str) -> int:
    """A 63-bit seed for one source of randomness (``init``, ``order``, ``probe``...) of a replicate."""
    digest = hashlib.sha256(f"{source}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
