"""Time and cost of a sweep, and of the same experiments as separate stacks. Pure.

Each phase lasts the typical minutes of infra/data/sweep.yaml and bills, at the prices of
the experiments' plans, what runs meanwhile: the cluster's fixed items (GKE fee, load
balancer), the serving nodes that exist, and load-generator nodes while a capacity search
runs and until the autoscaler removes them (about 10 minutes after). A capacity search is
counted at its most steps, and the load generator at the assumed node count of the data
file; the running total during a real sweep counts what really ran. The GKE free tier's
credit is left out (it covers one zonal cluster per billing account, whatever else runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.sweep.changes import Step
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.experiment import Planned

MINUTES_PER_HOUR = 60.0
DESTROY = "destroy"
CAPACITY_SEARCH = "capacity search"


@dataclass(frozen=True)
class Phase:
    what: str
    experiment: str
    minutes: float
    usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "experiment": self.experiment,
            "minutes": round(self.minutes, 1),
            "usd": round(self.usd, 2),
        }


@dataclass(frozen=True)
class Estimate:
    phases: tuple[Phase, ...]

    @property
    def minutes(self) -> float:
        return sum(p.minutes for p in self.phases)

    @property
    def hours(self) -> float:
        return self.minutes / MINUTES_PER_HOUR

    @property
    def usd(self) -> float:
        return sum(p.usd for p in self.phases)

    def of(self, experiment: str) -> list[Phase]:
        """One experiment's phases: its `up` and its capacity search (not the destroy)."""
        return [p for p in self.phases if p.experiment == experiment and p.what != DESTROY]

    def to_json(self, with_phases: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {"hours": round(self.hours, 2), "usd": round(self.usd, 2)}
        if with_phases:
            document["phases"] = [p.to_json() for p in self.phases]
        return document


def _usd(per_hour: float, minutes: float) -> float:
    return per_hour * minutes / MINUTES_PER_HOUR


def _load_generator_usd_per_hour(experiment: Planned, durations: Durations) -> float:
    nodes = min(durations.load_generator_nodes_assumed, experiment.load_generator_max_nodes)
    return experiment.load_generator_node_usd_per_hour * nodes


def create_phase(experiment: Planned, durations: Durations) -> Phase:
    """A new stack's first `up`: cluster, then pools; images meanwhile; then the pods."""
    d = durations
    infrastructure = max(d.cluster_create + d.node_pool_create, d.image_build_push)
    minutes = infrastructure + d.first_rollout
    nodes_minutes = minutes - d.cluster_create
    usd = _usd(experiment.fixed_usd_per_hour, minutes) + _usd(
        experiment.nodes_usd_per_hour, nodes_minutes
    )
    return Phase(
        "create the cluster, pools and images; start the pods", experiment.name, minutes, usd
    )


def bench_phase(
    experiment: Planned, search: SearchSettings, durations: Durations, scale_up: bool
) -> Phase:
    minutes = search.minutes(durations) + (durations.load_generator_scale_up if scale_up else 0)
    rate = experiment.usd_per_hour + _load_generator_usd_per_hour(experiment, durations)
    return Phase(CAPACITY_SEARCH, experiment.name, minutes, _usd(rate, minutes))


def destroy_phase(last: Planned, durations: Durations) -> Phase:
    d = durations
    usd = (
        _usd(last.fixed_usd_per_hour, d.destroy)
        + _usd(last.nodes_usd_per_hour, d.node_pool_delete)
        + _usd(
            _load_generator_usd_per_hour(last, d), min(d.load_generator_idle, d.node_pool_delete)
        )
    )
    return Phase(DESTROY, last.name, d.destroy, usd)


def _transition(step: Step, durations: Durations) -> Phase:
    """The `up` between two experiments on the same cluster."""
    d = durations
    prev, nxt = step.previous, step.experiment
    assert prev is not None
    build = d.image_build_push if step.rebuilds_images else 0.0
    kind = step.pool.kind
    rollout = d.first_rollout if kind == "replace" else d.rollout
    minutes = build + step.pool.minutes + rollout
    if kind == "replace":
        nodes_usd = _usd(prev.nodes_usd_per_hour, d.node_pool_delete) + _usd(
            nxt.nodes_usd_per_hour, minutes - d.node_pool_delete
        )
        what = "replace the serving node pool, then roll the pods"
    else:
        nodes_usd = _usd(max(prev.nodes_usd_per_hour, nxt.nodes_usd_per_hour), minutes)
        what = {
            "in-place": "recreate the serving nodes in place, then roll the pods",
            "resize": "resize the serving node pool, then roll the pods",
        }.get(kind, "roll the pods")
    if build:
        what = f"build and push the images; {what}"
    # The previous search's load-generator nodes idle on until the autoscaler removes them.
    idle = _usd(_load_generator_usd_per_hour(prev, d), min(d.load_generator_idle, minutes))
    usd = _usd(nxt.fixed_usd_per_hour, minutes) + nodes_usd + idle
    return Phase(what, nxt.name, minutes, usd)


def sweep_estimate(steps: Sequence[Step], search: SearchSettings, durations: Durations) -> Estimate:
    """One stack: created once, changed from experiment to experiment, destroyed once."""
    phases: list[Phase] = []
    for step in steps:
        if step.previous is None:
            phases.append(create_phase(step.experiment, durations))
            scale_up = True
        else:
            transition = _transition(step, durations)
            phases.append(transition)
            scale_up = transition.minutes >= durations.load_generator_idle
        phases.append(bench_phase(step.experiment, search, durations, scale_up))
    if steps:
        phases.append(destroy_phase(steps[-1].experiment, durations))
    return Estimate(tuple(phases))


def separate_estimate(
    experiments: Sequence[Planned], search: SearchSettings, durations: Durations
) -> Estimate:
    """Each experiment as its own stack, one after another: up, capacity search, destroy."""
    phases: list[Phase] = []
    for experiment in experiments:
        phases += [
            create_phase(experiment, durations),
            bench_phase(experiment, search, durations, scale_up=True),
            destroy_phase(experiment, durations),
        ]
    return Estimate(tuple(phases))
