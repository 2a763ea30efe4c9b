"""argparse types for numbers, names and paths that must make sense, not only parse.

Used as `type=` of an option, each raises argparse.ArgumentTypeError, which argparse
prints as `argument --rate: ...` with the usage line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

# Pulumi's stack names: letters, digits, hyphens, underscores and periods (an organization
# and project may qualify it: org/project/stack).
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# GCP project IDs: 6 to 30 lower-case letters, digits and hyphens, starting with a letter
# and not ending with a hyphen; a domain-scoped ID has its domain and a colon first.
PROJECT_ID = re.compile(r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive(text: str) -> float:
    """A finite number over 0."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be over 0, got {text!r}")
    return value


def non_negative(text: str) -> float:
    """A finite number, 0 or over."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or over, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A share from 0 to 1 (0.01 is 1%)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction from 0 to 1 (0.01 is 1%), got {text!r}"
        )
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number, 1 or over."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number, 0 or over."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def stack_problem(name: str) -> str:
    """Why Pulumi would refuse this stack name ('' when it would not)."""
    parts = name.split("/")
    if len(parts) > 3 or not all(STACK_NAME.match(part) for part in parts):
        return (
            f"{name!r} is not a stack name Pulumi accepts: use letters, digits, hyphens, "
            "underscores and periods (optionally org/project/stack)"
        )
    return ""


def stack_name(text: str) -> str:
    problem = stack_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def project_problem(project: str) -> str:
    """Why this is not a GCP project ID ('' when it is one)."""
    if PROJECT_ID.match(project):
        return ""
    return (
        f"{project!r} is not a GCP project ID (6-30 lower-case letters, digits and hyphens, "
        "starting with a letter): use the ID `gcloud projects list` shows, not the "
        "project's display name"
    )


def project_id(text: str) -> str:
    """A GCP project ID; empty means not given (the stack's gcp:project)."""
    problem = project_problem(text) if text else ""
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def output_file(text: str) -> Path:
    """A file to write: not a folder, in a folder that exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: name the file to write in it")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"the folder {path.parent} does not exist: create it (mkdir -p {path.parent}) or "
            "write elsewhere"
        )
    return path


def output_dir(text: str) -> Path:
    """A folder to write into (made when missing): not a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder: name a folder")
    return path


def input_file(text: str) -> Path:
    """A file to read: it must exist."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path
