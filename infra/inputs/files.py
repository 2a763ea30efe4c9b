"""Reading the files users edit and runs leave behind: a file that is missing, not JSON or
YAML, or not the shape expected is an InputError naming it, what is wrong and what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from infra.inputs.errors import InputError


def read_json(path: Path, what: str, fix: str = "") -> Any:
    """A JSON document, or an InputError saying which file and why."""
    hint = f" {fix}" if fix else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (expected {what}).{hint}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not {what}.{hint}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read {what}: {error}.{hint}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"it should be {what}: truncated or edited by hand?{hint}"
        ) from None


def json_object(path: Path, what: str, fix: str = "") -> dict[str, Any]:
    """A JSON file whose top level must be an object."""
    document = read_json(path, what, fix)
    if not isinstance(document, dict):
        hint = f" {fix}" if fix else ""
        raise InputError(
            f"{path} holds a JSON {type(document).__name__}, not an object: it is not {what}.{hint}"
        )
    return document


def yaml_mapping(path: Path, what: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """A YAML file whose top level must be a mapping (or empty: None)."""
    try:
        with path.open(encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=loader)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (expected {what})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(
            f"{path} is not valid YAML{where} ({problem}); it should be {what}: a bracket or "
            "quote left open?"
        ) from None
    if document is not None and not isinstance(document, dict):
        raise InputError(
            f"{path} holds a YAML {type(document).__name__}, not a mapping: {what} is a "
            "mapping of keys to values"
        )
    return document
