"""What a sweep knows of one experiment, from its offline plan. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.design.machine import Resources


@dataclass(frozen=True)
class Planned:
    """One experiment as the sweep's stack would deploy it."""

    name: str
    plan: dict[str, Any]  # plan.json (tfserving-gke/plan/v1) of the sweep stack
    machine_type: str
    vcpus: int
    memory_gib: float
    nodes: int
    spot: bool
    disk_type: str
    disk_size_gb: int
    pod_requests: Resources
    node_allocatable: Resources
    images: tuple[str, ...]  # image names (repository:tag) the stack builds
    batching: bool
    fixed_usd_per_hour: float  # GKE fee, load balancer, address: billed while the cluster is
    nodes_usd_per_hour: float  # the serving nodes and their disks
    load_generator_node_usd_per_hour: float  # one load-generator node and its disk
    load_generator_node_vcpus: int
    load_generator_max_nodes: int
    serving_pool_urn: str
    load_generator_machine_type: str = ""
    load_generator_spot: bool = False
    external_addresses: int = 0  # an external load balancer's address (exposure external)
    # The serving nodes at on-demand prices (what a spot-measured experiment deploys at).
    on_demand_nodes_usd_per_hour: float | None = None
    on_demand_load_generator_node_usd_per_hour: float | None = None
    # The serving pool's GPUs (all nodes) and the quota metrics they count against.
    gpus: int = 0
    gpu_quota_metric: str = ""
    gpu_preemptible_metric: str = ""

    @property
    def usd_per_hour(self) -> float:
        return self.fixed_usd_per_hour + self.nodes_usd_per_hour

    @property
    def serving_vcpus(self) -> int:
        return self.vcpus * self.nodes

    @property
    def load_generator_max_vcpus(self) -> int:
        return self.load_generator_node_vcpus * self.load_generator_max_nodes

    @property
    def pool_shape(self) -> tuple[str, bool, str, int]:
        """What the serving pool's nodes are: experiments alike here share its nodes."""
        return (self.machine_type, self.spot, self.disk_type, self.disk_size_gb)

    def describe_shape(self) -> str:
        kind = "spot " if self.spot else ""
        return f"{self.nodes} x {kind}{self.machine_type}"
