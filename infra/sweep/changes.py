"""What each step of a sweep changes on its stack, from two consecutive offline plans. Pure.

A resource is created, deleted, replaced (the provider deletes and creates it: the inputs
in infra/data/replacement.yaml) or updated in place. The serving node pool gets a closer
look, because its changes are what a sweep waits for: a new machine type or disk is made in
place by recreating the nodes one by one (GKE's surge upgrade), which for a pool of many
nodes is slower than deleting the pool and creating the new one. The sweep asks Pulumi to
replace the pool (`up(replace=[urn])`; the pool is delete-before-replace) when that is
faster, or when the running pods would not fit on the new nodes (they would be evicted one
by one onto nodes that cannot hold them, and the disruption budget would stall the
upgrade for up to an hour a node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.data import load
from infra.sweep.durations import Durations
from infra.sweep.experiment import Planned

NODE_POOL = "gcp:container/nodePool:NodePool"
SERVING_POOL_NAME = "cluster-serving"
ACTIONS = ("create", "replace", "update", "delete")


@dataclass(frozen=True)
class ResourceChange:
    action: str  # one of ACTIONS
    type: str
    name: str
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "type": self.type,
            "name": self.name,
            "fields": list(self.fields),
        }


@dataclass(frozen=True)
class PoolChange:
    """How the serving pool goes from one experiment's shape to the next."""

    kind: str  # create | keep | resize | in-place | replace
    minutes: float
    nodes_recreated: int
    peak_vcpus: int  # serving vCPUs at the change's peak
    why: str
    peak_nodes: int = 0  # serving nodes at the change's peak

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "minutes": round(self.minutes, 1),
            "nodes_recreated": self.nodes_recreated,
            "peak_vcpus": self.peak_vcpus,
            "peak_nodes": self.peak_nodes,
            "why": self.why,
        }


@dataclass(frozen=True)
class Step:
    """One experiment of the sweep: what its `up` changes, then its capacity search."""

    experiment: Planned
    changes: tuple[ResourceChange, ...]
    pool: PoolChange
    previous: Planned | None

    def types(self, action: str) -> list[str]:
        return sorted(c.type for c in self.changes if c.action == action)

    @property
    def rebuilds_images(self) -> bool:
        return any(c.type.startswith("docker:") and c.action != "delete" for c in self.changes)

    @property
    def replace_urns(self) -> list[str]:
        """What the sweep asks Pulumi to replace beyond what the providers would."""
        return [self.experiment.serving_pool_urn] if self.pool.kind == "replace" else []


def _rules(section: str) -> dict[str, list[str]]:
    rules: dict[str, list[str]] = load("replacement")[section]
    return rules


def _leaf_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Every input path whose value differs (lists compare whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            path = f"{prefix}.{key}" if prefix else key
            if before.get(key) != after.get(key):
                paths += _leaf_paths(before.get(key), after.get(key), path)
        return paths
    return [] if before == after else [prefix or "(value)"]


def _covered(path: str, rules: list[str]) -> bool:
    return any(path == rule or path.startswith(f"{rule}.") for rule in rules)


def _rules_for(section: str, type_: str) -> list[str]:
    rules = _rules(section)
    found = list(rules.get(type_, []))
    if type_.startswith("kubernetes:"):
        found += rules.get("kubernetes:*", [])
    return found


def resource_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[ResourceChange]:
    """Every custom resource created, deleted, replaced or updated from plan `before` (None:
    nothing deployed yet) to plan `after`."""
    old = {(r["type"], r["name"]): r for r in (before or {}).get("resources", []) if r["custom"]}
    new = {(r["type"], r["name"]): r for r in after["resources"] if r["custom"]}
    changes = []
    for key in sorted(set(old) | set(new)):
        type_, name = key
        if key not in old:
            changes.append(ResourceChange("create", type_, name))
        elif key not in new:
            changes.append(ResourceChange("delete", type_, name))
        elif paths := _leaf_paths(old[key]["inputs"], new[key]["inputs"]):
            replaces = any(_covered(p, _rules_for("replace_on", type_)) for p in paths)
            changes.append(
                ResourceChange("replace" if replaces else "update", type_, name, tuple(paths))
            )
    return changes


def _fits(pods: Planned, nodes: Planned) -> bool:
    return (
        pods.pod_requests.cpu_m <= nodes.node_allocatable.cpu_m
        and pods.pod_requests.memory_mib <= nodes.node_allocatable.memory_mib
    )


def pool_change(
    previous: Planned | None, pool: ResourceChange | None, nxt: Planned, durations: Durations
) -> PoolChange:
    """How the serving pool changes, given the provider's verdict on it (`pool`)."""
    d = durations
    if previous is None:
        return PoolChange(
            "create", d.node_pool_create, 0, nxt.serving_vcpus, "first experiment", nxt.nodes
        )
    if pool is None:
        return PoolChange("keep", 0.0, 0, nxt.serving_vcpus, "same nodes", nxt.nodes)
    # A replaced pool is deleted before its successor is made (delete-before-replace).
    peak_replaced = max(previous.serving_vcpus, nxt.serving_vcpus)
    nodes_replaced = max(previous.nodes, nxt.nodes)
    replace_minutes = d.node_pool_delete + d.node_pool_create
    if pool.action == "replace":
        return PoolChange(
            "replace",
            replace_minutes,
            0,
            peak_replaced,
            "the provider replaces it: " + ", ".join(pool.fields[:4]),
            nodes_replaced,
        )
    recreating = [p for p in pool.fields if _covered(p, _rules_for("recreates_nodes", NODE_POOL))]
    resize = d.node_resize if previous.nodes != nxt.nodes else 0.0
    if not recreating:
        kind = "resize" if resize else "keep"
        return PoolChange(kind, resize, 0, peak_replaced, "same shape", nodes_replaced)
    # GKE upgrades the nodes there are (node_config first, then node_count: the provider's
    # nodePoolUpdate), one at a time with max_surge 1.
    in_place = previous.nodes * d.node_surge_cycle + resize
    in_place_peak = max(previous.serving_vcpus + nxt.vcpus, nxt.serving_vcpus)
    in_place_nodes = max(previous.nodes + 1, nxt.nodes)
    if not _fits(previous, nxt):
        why = (
            f"{previous.name}'s pods ({previous.pod_requests}) do not fit on "
            f"{nxt.machine_type} nodes ({nxt.node_allocatable}): an in-place upgrade would "
            "strand them"
        )
        return PoolChange("replace", replace_minutes, 0, peak_replaced, why, nodes_replaced)
    if replace_minutes < in_place:
        why = (
            f"replacing takes about {replace_minutes:g} min; recreating {previous.nodes} nodes "
            f"one by one about {in_place:g}"
        )
        return PoolChange("replace", replace_minutes, 0, peak_replaced, why, nodes_replaced)
    why = f"{previous.nodes} nodes recreated one by one, about {in_place:g} min"
    return PoolChange("in-place", in_place, previous.nodes, in_place_peak, why, in_place_nodes)


def plan_steps(ordered: list[Planned], durations: Durations) -> list[Step]:
    """The sweep's steps, in order: what each `up` changes."""
    steps = []
    previous: Planned | None = None
    for experiment in ordered:
        changes = resource_changes(previous.plan if previous else None, experiment.plan)
        pool = next(
            (c for c in changes if (c.type, c.name) == (NODE_POOL, SERVING_POOL_NAME)), None
        )
        change = pool_change(previous, pool, experiment, durations)
        if change.kind == "replace" and pool is not None and pool.action != "replace":
            changes = [
                ResourceChange("replace", c.type, c.name, c.fields) if c is pool else c
                for c in changes
            ]
        steps.append(Step(experiment, tuple(changes), change, previous))
        previous = experiment
    return steps


def teardown(last: Planned) -> list[ResourceChange]:
    """What the final destroy deletes."""
    return [
        ResourceChange("delete", r["type"], r["name"])
        for r in last.plan["resources"]
        if r["custom"]
    ]
