"""Errors that reach users as messages, never as tracebacks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A setting (or combination of settings) that cannot be deployed.

    The message names the setting, the bad value, what is allowed and how to fix it.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class InputError(ValueError):
    """A file or command-line value that cannot be used; the message names it, what is
    wrong and what to do."""


class ModelSourceError(ValueError):
    """A model source that cannot be served, with the reason."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """ " Did you mean X?" when one of the choices is close to value (case ignored), else ""."""
    by_folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(value.lower(), list(by_folded), n=1, cutoff=0.75)
    return f" Did you mean {by_folded[close[0]]}?" if close else ""
