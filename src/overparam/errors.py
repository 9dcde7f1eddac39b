"""Errors raised on invalid input.

Every invalid configuration raises :class:`ConfigError`, whose message is one line naming the
field, the value given and what is allowed; the CLI prints that line and exits with code 2.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid value for a named configuration field."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {field}={value!r}: {allowed}")


class DatasetMissingError(FileNotFoundError):
    """A data set's files are absent and could not be downloaded."""
