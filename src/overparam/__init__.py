"""overparam."""
