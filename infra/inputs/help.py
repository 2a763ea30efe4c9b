"""How every command's --help shows defaults: once, and only where there is one."""

from __future__ import annotations

import argparse


class DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, except that an option whose help already says its
    default, or whose default is nothing (None, empty), is left as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, "", [], ()):
            return text
        return super()._get_help_string(action) or text
