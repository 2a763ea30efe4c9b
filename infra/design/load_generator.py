"""The load-generator pool and its processes, decided from settings and the data in
infra/data/loadgen.yaml. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.data import load
from infra.design.cluster_names import LOAD_GENERATOR
from infra.design.machine import (
    MachineShape,
    Resources,
    family_facts,
    is_gpu_host,
    node_allocatable,
    parse_machine_type,
)
from infra.design.settings import Settings
from infra.inputs.errors import ConfigError

POOL_NAME = "load-generator"
ROLE_LABEL = "tfserving-gke.io/role"
ROLE = LOAD_GENERATOR  # also the load-generator pods' app.kubernetes.io/name
# Nodes of the pool carry this taint, and only load-generator pods tolerate it.
TAINT_KEY = "tfserving-gke.io/load-generator"


@dataclass(frozen=True)
class LoadGeneratorDesign:
    """The pool (scaled from zero to max_nodes) and the processes it holds."""

    shape: MachineShape
    max_nodes: int
    processes_per_node: int
    process_requests: Resources
    disk_type: str
    disk_size_gb: int
    spot: bool = False

    @property
    def max_processes(self) -> int:
        return self.max_nodes * self.processes_per_node


def process_requests() -> Resources:
    spec = load("loadgen")["process"]
    return Resources(int(spec["cpu_m"]), int(spec["memory_mib"]))


def design_load_generator(s: Settings) -> LoadGeneratorDesign | None:
    """The pool for these settings, or None when the stack has no load generator."""
    if not s.load_generator:
        return None
    shape = parse_machine_type(s.load_generator_machine_type, "loadGeneratorMachineType")
    if shape.shared_core:
        raise ConfigError(
            "loadGeneratorMachineType",
            f"{shape.machine_type} is shared-core: a load generator on time-sliced CPU sends "
            "late and its lag would read as the server's latency. Use a dedicated-core type "
            "such as e2-highcpu-4.",
        )
    if is_gpu_host(shape.family):
        raise ConfigError(
            "loadGeneratorMachineType",
            f"{shape.machine_type} is a GPU host ({shape.family.upper()}): the load generator "
            "sends from CPUs and would pay for a GPU it never uses. Use a CPU type such as "
            "e2-highcpu-4.",
        )
    disk = str(load("loadgen")["node_disk"]["type"])
    if disk not in family_facts(shape.family)["disks"]:
        raise ConfigError(
            "loadGeneratorMachineType",
            f"{shape.machine_type} does not boot from {disk}, the load-generator nodes' disk "
            f"(infra/data/loadgen.yaml): use an E2, N2, N2D or T2D type such as e2-highcpu-4.",
        )
    allocatable = node_allocatable(shape)
    # GKE's DaemonSets run on every node; its cluster-wide pods cannot (the pool is tainted).
    daemonsets = load("gke")["system_pods"]["daemonsets_per_node"]
    requests = process_requests()
    per_node = min(
        (allocatable.cpu_m - int(daemonsets["cpu_m"])) // requests.cpu_m,
        (allocatable.memory_mib - int(daemonsets["memory_mib"])) // requests.memory_mib,
    )
    if per_node < 1:
        raise ConfigError(
            "loadGeneratorMachineType",
            f"{shape.machine_type} has no room for one load-generator process "
            f"({requests}) beside GKE's DaemonSets. Use a larger type.",
        )
    disk = load("loadgen")["node_disk"]
    return LoadGeneratorDesign(
        shape,
        s.load_generator_max_nodes,
        per_node,
        requests,
        disk["type"],
        disk["size_gb"],
        spot=s.load_generator_spot,
    )


def processes_for(rate: float, protocol: str, payload_bytes: int | None, max_processes: int) -> int:
    """Processes to offer `rate` requests a second without lagging, at most max_processes.
    Without a known body size, the small-body rate is assumed (the first step tells)."""
    throughput = load("loadgen")["throughput"]
    per_process = float(throughput["small_body_requests_per_s"][protocol])
    if payload_bytes:
        per_process = min(per_process, throughput["body_bytes_per_s"][protocol] / payload_bytes)
    # Half of what one process can hold: headroom for a busier machine than the benchmark's.
    return max(1, min(max_processes, math.ceil(rate / (per_process / 2))))
