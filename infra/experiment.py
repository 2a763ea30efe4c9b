"""The experiment design: every value the resources need, decided from settings alone.

Pure: no Pulumi here. Any setting that cannot be deployed fails in design_experiment,
before a single resource is declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.errors import ConfigError
from infra.facts import load
from infra.machine import (
    MachineShape,
    Resources,
    node_allocatable,
    pod_cpu_cores,
    resolve_machine,
    serving_pod_requests,
    system_pod_reserve,
)
from infra.pricing import CostEstimate, estimate_cost
from infra.settings import Settings
from infra.tfserving import BatchingParameters, ServerOptions

THREADS_PER_CPU_FOR_IO = 4


@dataclass(frozen=True)
class RolloutStrategy:
    """RollingUpdate numbers that complete on a fixed node count."""

    max_surge: int
    max_unavailable: int


@dataclass(frozen=True)
class ExperimentDesign:
    """Settings plus everything derived from them."""

    settings: Settings
    shape: MachineShape
    node_allocatable: Resources
    system_pods: Resources
    pod_requests: Resources
    pod_cpu_cores: int
    nodes_total: int
    pod_slots: int
    replicas: int
    rollout: RolloutStrategy
    server: ServerOptions
    cost: CostEstimate
    warnings: tuple[str, ...]


def design_experiment(settings: Settings) -> ExperimentDesign:
    """Resolve machine shape, pod sizing, threads, batching and cost; reject what can't fit."""
    s = settings
    shape = resolve_machine(s.machine_type, s.node_vcpus, s.node_memory_gb)
    pod_requests = serving_pod_requests(shape, s.pods_per_node)
    cores = pod_cpu_cores(shape, s.pods_per_node)
    zones = load("gke")["zones_per_region"] if s.regional else 1
    nodes_total = s.node_count * zones
    slots = nodes_total * s.pods_per_node
    replicas = s.replicas or slots
    if replicas > slots:
        raise ConfigError(
            "replicas",
            f"{replicas} pods cannot be scheduled: {nodes_total} node(s) x podsPerNode "
            f"{s.pods_per_node} = {slots} slots, and each pod takes one ({pod_requests}). "
            f"Set replicas to at most {slots}, or raise nodeCount or podsPerNode.",
        )
    warnings = list(s.warnings)
    batching = _batching(s, cores, warnings)
    server = ServerOptions(
        model_name=s.model_name,
        intra_op_parallelism=s.tensorflow_intra_op_parallelism or cores,
        inter_op_parallelism=s.tensorflow_inter_op_parallelism or cores,
        rest_api_num_threads=s.rest_api_num_threads or THREADS_PER_CPU_FOR_IO * cores,
        grpc_max_threads=THREADS_PER_CPU_FOR_IO * cores,
        batching=batching,
    )
    if shape.shared_core:
        warnings.append(
            f"{shape.machine_type} is shared-core: CPU is time-sliced with other tenants, so "
            "latency figures from it are not comparable with dedicated-core shapes."
        )
    # A free slot lets a new pod start before an old one stops; without one, replace in place.
    rollout = RolloutStrategy(1, 0) if slots > replicas else RolloutStrategy(0, 1)
    cost = estimate_cost(
        shape=shape,
        node_count_total=nodes_total,
        region=s.region,
        spot=s.spot,
        regional_cluster=s.regional,
        disk_type=s.disk_type,
        disk_size_gb=s.disk_size_gb,
        external_ip=s.exposure == "external",
    )
    return ExperimentDesign(
        settings=s,
        shape=shape,
        node_allocatable=node_allocatable(shape),
        system_pods=system_pod_reserve(),
        pod_requests=pod_requests,
        pod_cpu_cores=cores,
        nodes_total=nodes_total,
        pod_slots=slots,
        replicas=replicas,
        rollout=rollout,
        server=server,
        cost=cost,
        warnings=tuple(warnings),
    )


def _batching(s: Settings, cores: int, warnings: list[str]) -> BatchingParameters | None:
    if not s.enable_batching:
        return None
    threads = s.num_batch_threads or cores
    if threads < cores:
        warnings.append(
            f"numBatchThreads {threads} is below the pod's {cores} CPUs; TF Serving's CPU "
            "guidance starts at one batch thread per core (the reference experiments used 2)."
        )
    return BatchingParameters(
        max_batch_size=s.max_batch_size,
        batch_timeout_micros=s.batch_timeout_micros,
        max_enqueued_batches=s.max_enqueued_batches or threads,
        num_batch_threads=threads,
        allowed_batch_sizes=tuple(s.allowed_batch_sizes),
        pad_variable_length_inputs=s.pad_variable_length_inputs,
    )
