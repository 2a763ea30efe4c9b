"""Errors that reach users as messages, never as tracebacks."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting (or combination of settings) that cannot be deployed.

    The message names the setting, the bad value, what is allowed and how to fix it.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class ModelSourceError(ValueError):
    """A model source that cannot be served, with the reason."""
