"""The project's data files (the YAML files of this directory: prices, GKE, E2 and family
facts, TF Serving's flags), parsed once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.inputs.files import yaml_mapping

DATA_DIR = Path(__file__).parent


# libyaml's parser when PyYAML has it (the wheels do): the same safe loading, much faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, what: str = "") -> Any:
    """A YAML file, loaded safely; `what` (the file's role, for users' files) makes it a
    mapping, and its errors name the file."""
    if what:
        return yaml_mapping(path, what, _LOADER)
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_LOADER)


@cache
def load(name: str) -> dict[str, Any]:
    """Parse infra/data/<name>.yaml once per process."""
    parsed: dict[str, Any] = read_yaml(DATA_DIR / f"{name}.yaml")
    return parsed
