"""Typical durations of what a sweep does (infra/data/sweep.yaml), and of a capacity
search with given settings. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.bench.capacity import MAX_REPEATS, MAX_STEPS
from infra.data import load


@dataclass(frozen=True)
class Durations:
    """Minutes each operation typically takes; see infra/data/sweep.yaml."""

    as_of: str
    cluster_create: float
    node_pool_create: float
    image_build_push: float
    first_rollout: float
    rollout: float
    node_pool_delete: float
    node_surge_cycle: float
    node_resize: float
    load_generator_scale_up: float
    load_generator_idle: float
    bench_step_overhead: float
    destroy: float
    load_generator_nodes_assumed: int
    default_pool_vcpus: int

    @classmethod
    def from_data(cls) -> Durations:
        data = load("sweep")
        minutes = {key: float(value) for key, value in data["minutes"].items()}
        return cls(
            as_of=str(data["as_of"]),
            load_generator_nodes_assumed=int(data["load_generator_nodes_assumed"]),
            default_pool_vcpus=int(data["default_pool_vcpus"]),
            **minutes,
        )

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class SearchSettings:
    """How each experiment's capacity is searched (the estimate counts every step)."""

    p99_ms: float | None  # None: not given (a dry run)
    max_error_rate: float
    protocol: str
    start_rate: float
    max_steps: int  # runs, repeats of undecided rates included
    warmup_s: float
    duration_s: float
    max_repeats: int = MAX_REPEATS
    arrivals: str = "poisson"

    def minutes(self, durations: Durations) -> float:
        """At most this long: every run measured (repeats count), with its overhead."""
        per_step = (self.warmup_s + self.duration_s) / 60 + durations.bench_step_overhead
        return self.max_steps * per_step

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# The sweep's defaults (`python -m infra sweep --help`): 40 s windows after 5 s of warm-up
# (a run near the capacity is worth twice the samples of a 20 s one for its p99: on the
# simulated queue, seeds 0-39, claims a median 3.4% under the truth and 37 of 40 within
# -6%..+1% against 5.0% and 33 with 20 s windows, for 29 runs a search against 35;
# docs/testing.md);
# runs enough to ramp x2 from 20/s past a few hundred requests a second (5), locate the
# crossing to 5% (4) and certify a rate under it with pooled runs (up to 21 at one rate,
# a few rates): the capacity search's own limits (infra.bench.capacity, which says why),
# measured by scripts/bench_capacity.py against a queue of known capacity.
# The next experiment on the same nodes starts near the last one's capacity, so it
# usually needs fewer.
DEFAULT_SEARCH = SearchSettings(
    p99_ms=None,
    max_error_rate=0.01,
    protocol="rest",
    start_rate=20.0,
    max_steps=MAX_STEPS,
    warmup_s=5.0,
    duration_s=40.0,
    max_repeats=MAX_REPEATS,
    arrivals="poisson",
)
