"""Sparse networks: masks, magnitude pruning, lottery tickets (IMP with rewinding and controls)."""
