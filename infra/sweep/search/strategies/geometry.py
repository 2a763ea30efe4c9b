"""Where configurations lie from each other in a space: what the strategies share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.sweep.search.space import Candidate, SearchSpace


def choice(value: Any) -> Any:
    """A feature as Optuna's categorical choices hold it (None, bool, int, float, str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def settings(candidate: Candidate) -> dict[str, Any]:
    """A configuration's settings as `distance` compares them (each feature a choice)."""
    return {key: choice(value) for key, value in candidate.features.items()}


def distance(
    candidate: Candidate,
    params: Mapping[str, Any],
    space: SearchSpace,
    *,
    conditional: bool = False,
) -> float:
    """How far a configuration is from the proposal: per dimension 0 when equal, else the
    distance between the values' positions for numbers (as a fraction), 1 for the rest.
    With `conditional`, a dimension that has no effect in one of the two (None there, as a
    batch size with batching off) is no difference."""
    total = 0.0
    for key, values in space.dimensions.items():
        mine, wanted = choice(candidate.features[key]), params.get(key)
        if mine == wanted or (conditional and (mine is None or wanted is None)):
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if mine in numbers and wanted in numbers and len(numbers) > 1:
            ordered = sorted(numbers)
            total += abs(ordered.index(mine) - ordered.index(wanted)) / (len(ordered) - 1)
        else:
            total += 1.0
    return total
