"""How far the serving pods and nodes may scale, decided from settings. Pure.

The HorizontalPodAutoscaler moves the pods between minReplicas and maxReplicas on their
CPU use; a new pod that finds no room makes GKE's cluster autoscaler add a node, and an
idle node goes about ten minutes after its pod did. Each serving pod takes a slot of
1/podsPerNode of a node, so the node limits follow the pod limits unless set: a maximum
below what maxReplicas needs could never be reached, and is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.design.settings import MAX_NODE_COUNT, Settings, no_effect
from infra.inputs.errors import ConfigError

# The autoscaler's CPU target, in percent of each pod's request: below 10 it would
# scale on noise, above 95 there is no headroom left for a spike while a node is added.
TARGET_RANGE = (10, 95)
SCALING_SETTINGS = ("minReplicas", "maxReplicas", "targetCpuUtilization", "minNodes", "maxNodes")


@dataclass(frozen=True)
class AutoscalingDesign:
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    min_nodes: int  # all zones together
    max_nodes: int
    initial_nodes_per_zone: int


def _range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range; allowed {low} to {high}.")


def design_autoscaling(s: Settings, zones: int, warnings: list[str]) -> AutoscalingDesign | None:
    """The pod and node limits, or None without autoscaling (then its settings must not be
    set: a warning says they do nothing)."""
    if not s.autoscaling:
        unused = [key for key in SCALING_SETTINGS if s.changed(key)]
        if unused:
            warnings.append(
                no_effect(
                    unused,
                    "autoscaling is false",
                    "the stack runs a fixed number of pods (replicas); set autoscaling true "
                    "to use {them}",
                )
            )
        return None
    _range("minReplicas", s.min_replicas, 1, 10000)
    _range("maxReplicas", s.max_replicas, 1, 10000)
    if s.max_replicas < s.min_replicas:
        raise ConfigError(
            "maxReplicas",
            f"{s.max_replicas} is below minReplicas {s.min_replicas}: the autoscaler needs "
            f"room to move. Set maxReplicas to at least {s.min_replicas}.",
        )
    low, high = TARGET_RANGE
    _range("targetCpuUtilization", s.target_cpu_utilization, low, high)
    per_node = s.pods_per_node
    min_nodes = s.min_nodes or math.ceil(s.min_replicas / per_node)
    max_nodes = s.max_nodes or math.ceil(s.max_replicas / per_node)
    for key, nodes, given, pods, replicas in (
        ("minNodes", min_nodes, s.min_nodes, "minReplicas", s.min_replicas),
        ("maxNodes", max_nodes, s.max_nodes, "maxReplicas", s.max_replicas),
    ):
        if not given and nodes > MAX_NODE_COUNT:
            # Derived from the pods: blame the setting the user gave.
            raise ConfigError(
                pods,
                f"{replicas} pods at podsPerNode {per_node} need {nodes} nodes, more than "
                f"the {MAX_NODE_COUNT} a node pool may have here ({key} follows from "
                f"{pods}). Lower {pods} to at most {MAX_NODE_COUNT * per_node}, or raise "
                "podsPerNode.",
            )
        _range(key, nodes, 1, MAX_NODE_COUNT)
    if max_nodes < min_nodes:
        raise ConfigError(
            "maxNodes",
            f"{max_nodes} is below minNodes {min_nodes}. Set maxNodes to at least {min_nodes}.",
        )
    needed = math.ceil(s.max_replicas / per_node)
    if max_nodes < needed:
        raise ConfigError(
            "maxNodes",
            f"{max_nodes} node(s) x podsPerNode {per_node} hold {max_nodes * per_node} pods, "
            f"fewer than maxReplicas {s.max_replicas}: the autoscaler could never place them. "
            f"Set maxNodes to at least {needed}, or lower maxReplicas to {max_nodes * per_node}.",
        )
    if min_nodes * per_node < s.min_replicas:
        warnings.append(
            f"minNodes {min_nodes} x podsPerNode {per_node} hold fewer than minReplicas "
            f"{s.min_replicas}: the cluster autoscaler adds nodes for the rest at every start."
        )
    ignored = [key for key in ("replicas", "nodeCount") if s.changed(key)]
    if ignored:
        warnings.append(
            no_effect(
                ignored,
                "autoscaling is true",
                f"pods run from minReplicas {s.min_replicas} to maxReplicas "
                f"{s.max_replicas}, nodes from {min_nodes} to {max_nodes}",
            )
        )
    return AutoscalingDesign(
        min_replicas=s.min_replicas,
        max_replicas=s.max_replicas,
        target_cpu_utilization=s.target_cpu_utilization,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        initial_nodes_per_zone=max(1, math.ceil(min_nodes / zones)),
    )
