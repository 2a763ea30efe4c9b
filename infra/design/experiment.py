"""The experiment design: every value the resources need, decided from settings alone.

Pure: no Pulumi here. Any setting that cannot be deployed fails in design_experiment,
before a single resource is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from infra.data import load
from infra.design.gpu import GpuDesign, design_gpu, with_gpus
from infra.design.load_generator import POOL_NAME, LoadGeneratorDesign, design_load_generator
from infra.design.machine import (
    MachineShape,
    Resources,
    boot_disk_performance,
    family_facts,
    needs_gvnic,
    node_allocatable,
    pod_cpu_cores,
    resolve_machine,
    serving_pod_requests,
    system_pod_reserve,
)
from infra.design.pricing import CostEstimate, NodeGroup, estimate_cost
from infra.design.scaling.design import AutoscalingDesign, design_autoscaling
from infra.design.settings import STACK, Settings
from infra.design.tfserving import BatchingParameters, ServerOptions, onednn
from infra.inputs.errors import ConfigError

THREADS_PER_CPU_FOR_IO = 4
# TF Serving's batching guide (and session_bundle_config.proto): drive a batch of size B with
# about 2 x B requests in flight. A request holds its REST or gRPC thread until its batch
# has run, so with single-row requests a batch can never hold more rows than threads.
REQUESTS_IN_FLIGHT_PER_BATCH_ROW = 2
# evhttp_server.cc schedules libevent's event loop on the REST executor itself, so one of
# rest_api_num_threads never serves a request.
REST_EVENT_LOOP_THREADS = 1


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
    load_generator: LoadGeneratorDesign | None = None
    # With autoscaling: the limits, and the cost with the most nodes (`cost` is the least).
    autoscaling: AutoscalingDesign | None = None
    cost_at_max: CostEstimate | None = None
    # The serving pool's network driver is set to gVNIC (the family runs only with it), and
    # its boot disk's provisioned (IOPS, MiB/s) where the disk type takes them.
    gvnic: bool = False
    boot_disk_performance: tuple[int, int] | None = None
    # Whether TensorFlow's oneDNN kernels run on this family, in words (oneDnn).
    onednn: str = ""
    # The serving pool's GPUs (None: a CPU pool).
    gpu: GpuDesign | None = None

    @property
    def warmup_batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes generated warmup requests carry: on a GPU with batching, every
        size it will execute (the allowed sizes, or powers of two up to the largest
        batch), since each new shape pays for its kernels on first run; else one row."""
        batching = self.server.batching
        if self.gpu is None or batching is None:
            return (1,)
        if batching.allowed_batch_sizes:
            return tuple(batching.allowed_batch_sizes)
        largest = batching.execution_batch_size
        sizes = [2**k for k in range(largest.bit_length()) if 2**k < largest]
        return (*sizes, largest)


# A pod guaranteed less than this share of a core per intra-op thread is warned about.
SMALL_CPU_SHARE = 0.25


def _boot_disk(s: Settings, shape: MachineShape, warnings: list[str]) -> Settings:
    """The settings with a boot disk the machine family attaches: a diskType the stack
    does not set (the default, or a preset's for its own machine) becomes the family's
    first (said); one the stack sets that the family refuses is an error naming the ones
    it takes."""
    disks = [str(d) for d in family_facts(shape.family)["disks"]]
    if s.disk_type in disks:
        return s
    source = s.sources.get("diskType", "default")
    if source != STACK:
        warnings.append(
            f"diskType {s.disk_type} ({source}) is not a boot disk {shape.machine_type} "
            f"attaches ({shape.family.upper()} takes {', '.join(disks)}): its nodes boot from "
            f"{disks[0]}. Set diskType to say which."
        )
        return replace(s, disk_type=disks[0])
    raise ConfigError(
        "diskType",
        f"{s.disk_type} is not a boot disk {shape.machine_type} attaches: "
        f"{shape.family.upper()} takes {', '.join(disks)}. Set diskType to one of them.",
    )


def _share(fraction: float) -> str:
    """A share as a percentage, never rounded down to 0%."""
    return f"{fraction:.0%}" if fraction >= 0.01 else f"{fraction:.1%}"


def _check_threads(s: Settings, shape: MachineShape) -> None:
    """One op's intra-op threads run in parallel on the pod's cores: more of them than the
    node has vCPUs no pod on it could ever use (TF Serving starts them all the same)."""
    intra = s.tensorflow_intra_op_parallelism
    if intra > shape.vcpus:
        raise ConfigError(
            "tensorflowIntraOpParallelism",
            f"{intra} threads for one op is more than {shape.machine_type}'s {shape.vcpus} "
            "vCPUs: no pod on these nodes could run them in parallel. Use at most "
            f"{shape.vcpus} (0: the pod's CPU count), or a larger machineType.",
        )


def design_experiment(settings: Settings) -> ExperimentDesign:
    """Resolve machine shape, pod sizing, threads, batching and cost; reject what can't fit."""
    s = settings
    shape = with_gpus(s, resolve_machine(s.machine_type, s.node_vcpus, s.node_memory_gb))
    gpu = design_gpu(s, shape, s.pods_per_node)
    warnings = list(s.warnings)
    if gpu and not s.enable_batching:
        warnings.append(
            f"enableBatching is false on {gpu.name} nodes: a GPU runs one request at a time "
            "far below what it runs batched (TF Serving's batching guide: batching unlocks "
            "the throughput of accelerators). Set enableBatching true, and measure both."
        )
    s = _boot_disk(s, shape, warnings)
    pod_requests = serving_pod_requests(shape, s.pods_per_node)
    cores = pod_cpu_cores(shape, s.pods_per_node)
    zones = load("gke")["zones_per_region"] if s.regional else 1
    scaling = design_autoscaling(s, zones, warnings)
    nodes_total = scaling.min_nodes if scaling else s.node_count * zones
    slots = nodes_total * s.pods_per_node
    replicas = scaling.min_replicas if scaling else s.replicas or slots
    if replicas > slots and not scaling:
        raise ConfigError(
            "replicas",
            f"{replicas} pods cannot be scheduled: {nodes_total} node(s) x podsPerNode "
            f"{s.pods_per_node} = {slots} slots, and each pod takes one ({pod_requests}). "
            f"Set replicas to at most {slots}, or raise nodeCount or podsPerNode.",
        )
    _check_threads(s, shape)
    batching = _batching(s, cores, warnings)
    rest_threads, grpc_threads = _request_threads(s, cores, batching, warnings)
    onednn_env, onednn_effect = onednn(s.one_dnn, shape.family)
    server = ServerOptions(
        model_name=s.model_name,
        intra_op_parallelism=s.tensorflow_intra_op_parallelism or cores,
        inter_op_parallelism=s.tensorflow_inter_op_parallelism or cores,
        rest_api_num_threads=rest_threads,
        grpc_max_threads=grpc_threads,
        batching=batching,
        onednn_env=onednn_env,
        gpu_memory_fraction=gpu.memory_fraction if gpu else 0.0,
    )
    # Threads beyond what the pod is guaranteed run on what the node's other pods leave.
    threads_m = 1000 * server.intra_op_parallelism
    if pod_requests.cpu_m < SMALL_CPU_SHARE * threads_m:
        warnings.append(
            f"each serving pod requests {pod_requests.cpu_m}m CPU but runs "
            f"{server.intra_op_parallelism} intra-op and {server.rest_api_num_threads} REST "
            f"threads: {_share(pod_requests.cpu_m / threads_m)} of a core per intra-op thread is "
            "guaranteed, the rest is whatever the node's other pods leave, so its latency "
            "under load is not this shape's. Measure on a node whose allocatable CPU the pod "
            "can request (a larger machineType, or fewer podsPerNode)."
        )
    if shape.shared_core:
        warnings.append(
            f"{shape.machine_type} is shared-core: CPU is time-sliced with other tenants, so "
            "latency figures from it are not comparable with dedicated-core shapes."
        )
    # A free slot lets a new pod start before an old one stops; without one, replace in
    # place. With autoscaling, a surge pod that finds no room gets a node added for it.
    rollout = RolloutStrategy(1, 0) if slots > replicas or scaling else RolloutStrategy(0, 1)
    load_generator = design_load_generator(s)

    def priced(node_count_total: int) -> CostEstimate:
        return estimate_cost(
            shape=shape,
            node_count_total=node_count_total,
            region=s.region,
            spot=s.spot,
            regional_cluster=s.regional,
            disk_type=s.disk_type,
            disk_size_gb=s.disk_size_gb,
            external_ip=s.exposure == "external",
            benchmark_nodes=NodeGroup(
                load_generator.shape,
                load_generator.max_nodes,
                load_generator.disk_type,
                load_generator.disk_size_gb,
                spot=load_generator.spot,
                role=POOL_NAME,
            )
            if load_generator
            else None,
        )

    cost = priced(nodes_total)
    warnings += cost.warnings
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
        load_generator=load_generator,
        autoscaling=scaling,
        cost_at_max=priced(scaling.max_nodes) if scaling else None,
        onednn=onednn_effect,
        gvnic=needs_gvnic(shape.family),
        boot_disk_performance=boot_disk_performance(s.disk_type),
        gpu=gpu,
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
        enable_large_batch_splitting=s.enable_large_batch_splitting,
        max_execution_batch_size=(
            s.max_execution_batch_size or s.max_batch_size if s.enable_large_batch_splitting else 0
        ),
    )


def _request_threads(
    s: Settings, cores: int, batching: BatchingParameters | None, warnings: list[str]
) -> tuple[int, int]:
    """--rest_api_num_threads and --grpc_max_threads: 4 per CPU, and with batching enough
    requests in flight to fill a batch, unless the settings say otherwise (then a warning
    says what it costs)."""
    per_cpu = THREADS_PER_CPU_FOR_IO * cores
    needed = REQUESTS_IN_FLIGHT_PER_BATCH_ROW * batching.execution_batch_size if batching else 0
    rest = s.rest_api_num_threads or max(per_cpu, needed + REST_EVENT_LOOP_THREADS)
    grpc = s.grpc_max_threads or max(per_cpu, needed)
    if batching:
        short = [
            (key, threads)
            for key, threads, serving in (
                ("restApiNumThreads", rest, rest - REST_EVENT_LOOP_THREADS),
                ("grpcMaxThreads", grpc, grpc),
            )
            if serving < needed
        ]
        if short:
            warnings.append(_short_threads_warning(s, short, batching, needed))
    return rest, grpc


def _short_threads_warning(
    s: Settings, short: list[tuple[str, int]], batching: BatchingParameters, needed: int
) -> str:
    named = " and ".join(f"{key} {threads}" for key, threads in short)
    presets = {s.sources[key] for key, _ in short}
    why = (
        f"{next(iter(presets))} keeps the reference system's thread counts so its results compare"
        if len(presets) == 1 and next(iter(presets)).startswith("preset ")
        else "set explicitly"
    )
    verb = "is" if len(short) == 1 else "are"
    advice = {
        "restApiNumThreads": f"restApiNumThreads {needed + REST_EVENT_LOOP_THREADS} (one REST "
        "thread runs the event loop)",
        "grpcMaxThreads": f"grpcMaxThreads {needed}",
    }
    return (
        f"{named} ({why}) {verb} below TF Serving's batching guidance of about 2 x "
        f"{batching.execution_batch_size} = {needed} requests in flight: a request holds its "
        "thread until its batch has run, so with single-row requests a batch holds at most "
        f"as many rows as there are threads and max_batch_size {batching.max_batch_size} is "
        f"never reached. To fill batches, set {' and '.join(advice[key] for key, _ in short)}."
    )
