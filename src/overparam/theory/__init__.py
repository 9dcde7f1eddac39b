"""Closed forms and small exact laboratories (numpy; seconds to run)."""
