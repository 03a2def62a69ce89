"""User-facing errors: one line on stderr, starting with ``error:``, and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A failure caused by the user's input, data or config; printed as one ``error:`` line."""


class ConfigError(UserError):
    """An invalid config key or value."""


class DataError(UserError):
    """A problem with the competition folder: a missing file, column or a bad value."""


def one_line(exc: BaseException) -> str:
    """The message of a user error as one line. An error raised inside a DataLoader worker reaches
    the main process re-raised with the worker's traceback in its message: keep its last line."""
    text = str(exc).strip()
    if "\nOriginal Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split("\n"))
