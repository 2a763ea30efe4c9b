"""The project's data files (infra/data/*.yaml: prices, GKE and E2 facts), parsed once."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).parent / "data"


@cache
def load(name: str) -> dict[str, Any]:
    """Parse infra/data/<name>.yaml once per process."""
    with (DATA_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = yaml.safe_load(handle)
    return parsed
