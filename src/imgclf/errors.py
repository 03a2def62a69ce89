"""User-facing errors: one line on stderr, starting with ``error:``, and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A failure caused by the user's input, data or config; printed as one ``error:`` line."""


class ConfigError(UserError):
    """An invalid config key or value."""


class DataError(UserError):
    """A problem with the competition folder: a missing file, column or a bad value."""
