"""GPUs on the serving pool: which, how many per node, in which zones, shared how. Pure:
the facts are infra/data/gpus.yaml's.

A G2 machine type carries its NVIDIA L4s (g2-standard-4: one); an N1 type takes NVIDIA
T4s from gpuType and gpuCount (1, 2 or 4, each count with its own vCPU limit). Every
serving pod requests one nvidia.com/gpu; with more pods per node than GPUs, GKE's GPU
time-sharing lets that many pods use each GPU, and each pod's TensorFlow is held to its
share of the GPU's memory (--per_process_gpu_memory_fraction), since TensorFlow otherwise
takes nearly all of it and the second pod on the GPU cannot start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from infra.data import load
from infra.design.machine import MachineShape, family_facts, is_gpu_host
from infra.design.settings import Settings
from infra.inputs.errors import ConfigError


@dataclass(frozen=True)
class GpuDesign:
    """The GPUs of the serving pool and how its pods use them."""

    gpu_type: str  # the accelerator type GKE takes: nvidia-l4
    name: str  # NVIDIA L4
    per_node: int
    memory_gib: int
    # Pods per GPU under time-sharing (GKE's max_shared_clients_per_gpu); 0: not shared.
    shared_clients: int
    # --per_process_gpu_memory_fraction; 0.0 leaves TensorFlow's own choice.
    memory_fraction: float
    driver_version: str
    quota_metric: str
    preemptible_quota_metric: str
    zones: tuple[str, ...]  # the zones of the stack's region that have it

    @property
    def resource(self) -> str:
        """The extended resource a pod requests (nvidia.com/gpu)."""
        return str(load("gpus")["resource"])

    @property
    def taint(self) -> dict[str, str]:
        """The taint of GPU nodes: key, value and the node pool API's effect."""
        return {k: str(v) for k, v in load("gpus")["taint"].items()}

    @property
    def sharing_strategy(self) -> str:
        return str(load("gpus")["time_sharing"]["strategy"])

    def describe(self) -> str:
        shared = f", time-shared by {self.shared_clients} pods each" if self.shared_clients else ""
        return f"{self.per_node} x {self.name} ({self.memory_gib} GB) per node{shared}"


def accelerators() -> dict[str, Any]:
    return dict(load("gpus")["accelerators"])


def _hosts_text() -> str:
    """Which machine types carry which GPU, for messages."""
    parts = []
    for gpu_type, facts in accelerators().items():
        if facts.get("attached"):
            parts.append(f"{gpu_type} comes with {facts['host_family'].upper()} machine types "
                         f"({next(iter(facts['attached']))}...)")  # fmt: skip
        else:
            parts.append(
                f"{gpu_type} goes on {facts['host_family'].upper()} machine types "
                f"({facts['host_family']}-standard-8...)"
            )
    return "; ".join(parts)


def with_gpus(s: Settings, shape: MachineShape) -> MachineShape:
    """The node shape with the GPUs it carries (a G2 type's own, or gpuType on N1);
    ConfigError for a GPU setting the machine cannot take."""
    if not is_gpu_host(shape.family):
        if s.gpu_type or s.gpu_count:
            key = "gpuType" if s.gpu_type else "gpuCount"
            value = s.gpu_type or s.gpu_count
            raise ConfigError(
                key,
                f"{value} needs a GPU host, and {shape.machine_type} ({shape.family.upper()}) "
                f"takes no GPU: {_hosts_text()}. Set machineType to one of those, or leave "
                f"{key} unset.",
            )
        return shape
    facts = family_facts(shape.family)
    host_gpu = str(facts["gpu"])
    if s.gpu_type and s.gpu_type != host_gpu:
        raise ConfigError(
            "gpuType",
            f"{s.gpu_type} does not go on {shape.machine_type}: {shape.family.upper()} "
            f"machines carry {host_gpu} ({_hosts_text()}).",
        )
    gpu = accelerators()[host_gpu]
    if shape.gpus:  # the machine type's own (G2)
        if s.gpu_count not in (0, shape.gpus):
            same = [m for m, n in gpu["attached"].items() if n == s.gpu_count]
            hint = f" ({', '.join(same)} carry {s.gpu_count})" if same else ""
            raise ConfigError(
                "gpuCount",
                f"{s.gpu_count}: {shape.machine_type} carries {shape.gpus} {gpu['name']} and "
                f"no other count; the machine type sets it{hint}. Leave gpuCount at 0.",
            )
        return shape
    if not s.gpu_type:
        raise ConfigError(
            "machineType",
            f"{shape.machine_type!r}: {shape.family.upper()} is not supported without a GPU "
            f"({facts.get('requires_gpu', 'a GPU host')}). Set gpuType {host_gpu}, or use "
            "another family.",
        )
    counts = {int(k): int(v) for k, v in gpu["counts"].items()}
    count = s.gpu_count or 1
    if count not in counts:
        raise ConfigError(
            "gpuCount",
            f"{count} {gpu['name']} per {shape.family.upper()} machine does not exist: "
            f"{', '.join(map(str, counts))} do.",
        )
    if shape.vcpus > counts[count]:
        fits = [c for c, most in counts.items() if shape.vcpus <= most]
        raise ConfigError(
            "gpuCount",
            f"with {count} {gpu['name']}, an {shape.family.upper()} machine has at most "
            f"{counts[count]} vCPUs, and {shape.machine_type} has {shape.vcpus}: use gpuCount "
            f"{' or '.join(map(str, fits)) if fits else '(none fits)'} or a smaller machineType.",
        )
    return replace(shape, gpu_type=host_gpu, gpus=count)


def design_gpu(s: Settings, shape: MachineShape, pods_per_node: int) -> GpuDesign | None:
    """The pool's GPUs for a shape `with_gpus` gave; None without any. ConfigError for a
    zone without the GPU, a regional pool, the CPU image on it or a memory share too big."""
    if not shape.gpus:
        return None
    data = load("gpus")
    gpu = data["accelerators"][shape.gpu_type]
    zones = tuple(f"{s.region}-{z}" for z in (gpu["zones"].get(s.region) or []))
    if s.regional:
        raise ConfigError(
            "regional",
            f"true with {gpu['name']} nodes: GKE would place the pool in every zone of "
            f"{s.region}, and the GPU is only in some ({', '.join(zones) or 'none'}). A GPU "
            "pool here is zonal: set regional false and a zone that has it.",
        )
    if s.zone not in zones:
        where = (
            f"zones of {s.region} with it: {', '.join(zones)}"
            if zones
            else f"{s.region} has none; regions with it: {', '.join(sorted(gpu['zones']))}"
        )
        raise ConfigError(
            "zone",
            f"{s.zone} has no {gpu['name']} ({shape.gpu_type}): {where}. Set zone to a zone "
            "that has it (`gcloud compute accelerator-types list` gives today's list).",
        )
    if s.tf_serving_variant != "gpu":
        raise ConfigError(
            "tfServingVariant",
            f"{s.tf_serving_variant} on {shape.gpus} x {gpu['name']} nodes: the CPU image "
            "cannot use a GPU, and the pool would bill for GPUs that sit idle. Set "
            "tfServingVariant gpu (the -gpu image), or use a CPU machineType.",
        )
    sharing = data["time_sharing"]
    shared = math.ceil(pods_per_node / shape.gpus) if pods_per_node > shape.gpus else 0
    if shared > int(sharing["max_clients"]):
        raise ConfigError(
            "podsPerNode",
            f"{pods_per_node} pods on {shape.gpus} GPU(s) is {shared} per GPU; GKE time-shares "
            f"a GPU among at most {sharing['max_clients']}. Lower podsPerNode.",
        )
    share = (1.0 - float(data["shared_memory_headroom"])) / shared if shared else 0.0
    fraction = s.gpu_memory_percent / 100 if s.gpu_memory_percent else math.floor(share * 100) / 100
    if shared and fraction > 1.0 / shared:
        raise ConfigError(
            "gpuMemoryPercent",
            f"{s.gpu_memory_percent}% of a GPU per pod, with {shared} pods sharing each GPU, "
            f"is more than the GPU has: at most {math.floor(100 / shared)}% each (0 gives "
            f"{math.floor(share * 100)}%).",
        )
    return GpuDesign(
        gpu_type=shape.gpu_type,
        name=str(gpu["name"]),
        per_node=shape.gpus,
        memory_gib=int(gpu["memory_gib"]),
        shared_clients=shared,
        memory_fraction=fraction,
        driver_version=s.gpu_driver_version,
        quota_metric=str(gpu["quota_metric"]),
        preemptible_quota_metric=str(gpu["preemptible_quota_metric"]),
        zones=zones,
    )
