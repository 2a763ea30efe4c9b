"""Machine shapes (E2 and the other families of infra/data/families.yaml), GKE node
allocatable resources and TF Serving pod sizing.

Pure functions over the facts in infra/data/e2.yaml, families.yaml and gke.yaml.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from infra.data import load
from infra.inputs.errors import ConfigError

MIB_PER_GIB = 1024


@dataclass(frozen=True)
class MachineShape:
    """One machine type and what it offers."""

    machine_type: str
    vcpus: int
    memory_mib: int
    custom: bool
    shared_core: bool
    billed_vcpus: float
    family: str = "e2"
    # The GPUs each machine carries (infra/data/gpus.yaml): a G2 type's own, or those a
    # stack attaches to N1 (infra.design.gpu).
    gpu_type: str = ""
    gpus: int = 0

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / MIB_PER_GIB


@dataclass(frozen=True)
class Resources:
    """CPU in millicores and memory in MiB."""

    cpu_m: int
    memory_mib: int

    def __str__(self) -> str:
        return f"{self.cpu_m}m CPU / {self.memory_mib} MiB"


def predefined_machine_type(vcpus: int, memory_gib: float) -> str | None:
    """The predefined E2 type with exactly this shape, if any."""
    for family, spec in load("e2")["predefined"].items():
        if vcpus in spec["vcpus"] and memory_gib == vcpus * spec["gib_per_vcpu"]:
            return f"{family}-{vcpus}"
    return None


def check_custom_shape(vcpus: int, memory_mib: int, setting: str) -> None:
    """Raise ConfigError unless (vcpus, memory) is a valid custom E2 shape."""
    limits = load("e2")["custom"]
    lo, hi, step = limits["min_vcpus"], limits["max_vcpus"], limits["vcpu_step"]
    if not (lo <= vcpus <= hi and vcpus % step == 0):
        raise ConfigError(
            setting,
            f"{vcpus} vCPUs is not an E2 shape: custom E2 takes {lo} to {hi} vCPUs in steps "
            f"of {step}. Pick one of those, or set machineType to a predefined type.",
        )
    min_mib = math.ceil(vcpus * limits["min_gib_per_vcpu"] * MIB_PER_GIB)
    max_mib = int(vcpus * limits["max_gib_per_vcpu"] * MIB_PER_GIB)
    mem_step = limits["memory_step_mib"]
    if not (min_mib <= memory_mib <= max_mib) or memory_mib % mem_step:
        raise ConfigError(
            setting,
            f"{memory_mib / MIB_PER_GIB:g} GB with {vcpus} vCPUs is not an E2 shape: memory "
            f"must be {min_mib / MIB_PER_GIB:g} to {max_mib / MIB_PER_GIB:g} GB "
            f"({limits['min_gib_per_vcpu']:g} to {limits['max_gib_per_vcpu']:g} GB per vCPU) "
            f"in multiples of {mem_step} MB.",
        )


def shape_from_size(vcpus: int, memory_gb: int) -> MachineShape:
    """Predefined E2 type when one matches exactly, else e2-custom-<vcpus>-<MB>."""
    memory_mib = memory_gb * MIB_PER_GIB
    predefined = predefined_machine_type(vcpus, memory_gb)
    if predefined:
        return MachineShape(predefined, vcpus, memory_mib, False, False, float(vcpus))
    check_custom_shape(vcpus, memory_mib, "nodeVcpus/nodeMemoryGb")
    return MachineShape(f"e2-custom-{vcpus}-{memory_mib}", vcpus, memory_mib, True, False, vcpus)


_CUSTOM = re.compile(r"^e2-custom-(\d+)-(\d+)$")
_PREDEFINED = re.compile(r"^(e2-(?:standard|highmem|highcpu))-(\d+)$")


def machine_family(machine_type: str) -> str:
    """The series a machine type name belongs to: `n2d` for n2d-standard-8."""
    return machine_type.split("-", 1)[0].lower()


def family_facts(family: str) -> dict[str, Any]:
    """What infra/data/families.yaml says of a supported family (E2 included)."""
    data = load("families")
    return dict(data["e2"] if family == "e2" else data["families"][family])


def boot_disk_performance(disk_type: str) -> tuple[int, int] | None:
    """(provisioned IOPS, provisioned throughput in MiB/s) a boot disk of this type is
    given (what its price includes), or None where the type takes neither."""
    performance = (load("families").get("boot_disk_performance") or {}).get(disk_type)
    if performance is None:
        return None
    return int(performance["provisioned_iops"]), int(performance["provisioned_throughput_mib_s"])


def needs_gvnic(family: str) -> bool:
    """Whether the family's machines run only with the gVNIC network driver."""
    return bool(family_facts(family).get("gvnic", False))


def supported_families() -> list[str]:
    return ["e2", *load("families")["families"]]


def _family_names() -> str:
    return ", ".join(family.upper() for family in supported_families())


def _custom_vcpus_ok(vcpus: int, limits: dict[str, Any]) -> bool:
    if "vcpus" in limits:
        return vcpus in limits["vcpus"]
    if not limits["min_vcpus"] <= vcpus <= limits["max_vcpus"]:
        return False
    step = next(s["step"] for s in limits["vcpu_steps"] if vcpus <= s["up_to"])
    return vcpus % int(step) == 0


def _other_family(machine_type: str, family: str, setting: str) -> MachineShape:
    """A predefined (or, where supported, custom) type of a family other than E2."""
    facts = family_facts(family)
    custom = re.match(rf"^{family}-custom-(\d+)-(\d+)$", machine_type)
    limits = facts.get("custom")
    if custom and limits:
        vcpus, memory_mib = int(custom[1]), int(custom[2])
        min_mib = math.ceil(vcpus * limits["min_gib_per_vcpu"] * MIB_PER_GIB)
        max_mib = int(vcpus * limits["max_gib_per_vcpu"] * MIB_PER_GIB)
        if not _custom_vcpus_ok(vcpus, limits):
            if "vcpus" in limits:
                allowed = ", ".join(map(str, limits["vcpus"]))
            else:
                steps = ", ".join(
                    f"multiples of {s['step']} up to {s['up_to']}" for s in limits["vcpu_steps"]
                )
                allowed = f"{limits['min_vcpus']} to {limits['max_vcpus']} ({steps})"
            raise ConfigError(
                setting,
                f"{machine_type!r}: custom {family.upper()} takes {allowed} vCPUs.",
            )
        if not min_mib <= memory_mib <= max_mib or memory_mib % limits["memory_step_mib"]:
            raise ConfigError(
                setting,
                f"{machine_type!r}: custom {family.upper()} with {vcpus} vCPUs takes "
                f"{min_mib / MIB_PER_GIB:g} to {max_mib / MIB_PER_GIB:g} GB in multiples of "
                f"{limits['memory_step_mib']} MB.",
            )
        return MachineShape(machine_type, vcpus, memory_mib, True, False, float(vcpus), family)
    predefined = re.match(rf"^({family}-[a-z]+)-(\d+)$", machine_type)
    if predefined and predefined[1] in facts["predefined"]:
        spec, vcpus = facts["predefined"][predefined[1]], int(predefined[2])
        if vcpus in spec["vcpus"]:
            memory_gib = (facts.get("memory_gib") or {}).get(
                machine_type, vcpus * float(spec["gib_per_vcpu"])
            )
            memory_mib = round(float(memory_gib) * MIB_PER_GIB)
            gpu_type, gpus = _attached_gpus(machine_type, facts)
            return MachineShape(
                machine_type, vcpus, memory_mib, False, False, float(vcpus), family,
                gpu_type, gpus,
            )  # fmt: skip
    shapes = ", ".join(
        f"{kind}-{{{','.join(map(str, spec['vcpus']))}}}"
        for kind, spec in facts["predefined"].items()
    )
    custom_text = f", or {family}-custom-<vcpus>-<memory MB>" if limits else ""
    raise ConfigError(
        setting,
        f"{machine_type!r} is not a {family.upper()} machine type this project knows. Use "
        f"one of {shapes}{custom_text}.",
    )


def _attached_gpus(machine_type: str, facts: dict[str, Any]) -> tuple[str, int]:
    """The GPUs a machine type carries of itself (a G2 type's L4s); ("", 0) for others."""
    gpu_type = str(facts.get("gpu") or "")
    attached = load("gpus")["accelerators"][gpu_type].get("attached") if gpu_type else None
    if not attached or machine_type not in attached:
        return "", 0
    return gpu_type, int(attached[machine_type])


def is_gpu_host(family: str) -> bool:
    """Whether the family's machines carry GPUs (G2) or take them (N1)."""
    return family != "e2" and bool(family_facts(family).get("gpu"))


def is_gpu_machine(machine_type: str) -> bool:
    """Whether a machine type names a GPU host; False for "" (an E2 shape from its size)
    and for a series this project does not know (refused elsewhere)."""
    family = machine_family(machine_type) if machine_type else "e2"
    return family in supported_families() and is_gpu_host(family)


def parse_machine_type(machine_type: str, setting: str = "machineType") -> MachineShape:
    """Shape of an explicit machine type name (E2 or another supported family);
    ConfigError (naming `setting`) for anything else."""
    family = machine_family(machine_type)
    if family != "e2" and family in load("families")["families"]:
        return _other_family(machine_type, family, setting)
    refused = load("families")["refused"]
    if family in refused:
        raise ConfigError(
            setting,
            f"{machine_type!r}: {family.upper()} is not supported ({refused[family]}). "
            f"Supported families: {_family_names()}.",
        )
    e2 = load("e2")
    if machine_type in e2["shared_core"]:
        spec = e2["shared_core"][machine_type]
        memory_mib = int(spec["memory_gib"] * MIB_PER_GIB)
        # Shared-core E2 types expose 2 vCPUs to the guest whatever fraction is billed.
        return MachineShape(machine_type, 2, memory_mib, False, True, float(spec["billed_vcpus"]))
    if match := _CUSTOM.match(machine_type):
        vcpus, memory_mib = int(match[1]), int(match[2])
        check_custom_shape(vcpus, memory_mib, setting)
        return MachineShape(machine_type, vcpus, memory_mib, True, False, float(vcpus))
    if match := _PREDEFINED.match(machine_type):
        family, vcpus = match[1], int(match[2])
        spec = e2["predefined"][family]
        if vcpus in spec["vcpus"]:
            memory_mib = vcpus * spec["gib_per_vcpu"] * MIB_PER_GIB
            return MachineShape(machine_type, vcpus, memory_mib, False, False, float(vcpus))
    families = ", ".join(
        f"{family}-{{{','.join(map(str, spec['vcpus']))}}}"
        for family, spec in e2["predefined"].items()
    )
    raise ConfigError(
        setting,
        f"{machine_type!r} is not an E2 machine type. Use one of {families}, "
        f"{', '.join(e2['shared_core'])}, or e2-custom-<vcpus>-<memory MB> "
        "(e.g. e2-custom-4-8192); or leave it empty and set nodeVcpus and nodeMemoryGb. "
        f"Other supported families: {_family_names().removeprefix('E2, ')} (e.g. "
        "n2-standard-8, c3-highcpu-8; infra/data/families.yaml lists their shapes).",
    )


def resolve_machine(machine_type: str, vcpus: int, memory_gb: int) -> MachineShape:
    """An explicit machineType wins; otherwise the shape comes from vCPUs and memory."""
    if machine_type:
        return parse_machine_type(machine_type)
    return shape_from_size(vcpus, memory_gb)


def _tiered_reservation(amount: float, tiers: list[dict[str, float | None]], key: str) -> float:
    reserved, floor = 0.0, 0.0
    for tier in tiers:
        ceiling = tier[key]
        top = amount if ceiling is None else min(amount, ceiling)
        if top > floor:
            reserved += (top - floor) * float(tier["fraction"] or 0)
        if ceiling is None or amount <= ceiling:
            break
        floor = ceiling
    return reserved


def node_allocatable(shape: MachineShape) -> Resources:
    """CPU and memory GKE leaves to pods on one node of this shape."""
    rules = load("gke")["allocatable"]
    if shape.shared_core:
        cpu_m = shape.vcpus * 1000 - int(rules["shared_core_cpu_reserved_m"])
    else:
        reserved_cores = _tiered_reservation(
            shape.vcpus, rules["cpu_reserved_tiers"], "up_to_cores"
        )
        cpu_m = shape.vcpus * 1000 - round(reserved_cores * 1000)
    if shape.memory_mib < MIB_PER_GIB:
        reserved_mib = float(rules["memory_small_machine_reserved_mib"])
    else:
        reserved_gib = _tiered_reservation(
            shape.memory_gib, rules["memory_reserved_tiers"], "up_to_gib"
        )
        reserved_mib = reserved_gib * MIB_PER_GIB
    memory_mib = math.floor(shape.memory_mib - reserved_mib - rules["eviction_threshold_mib"])
    return Resources(cpu_m, memory_mib)


def system_pod_reserve() -> Resources:
    """Room kept on every node for GKE's own pods (see infra/data/gke.yaml)."""
    parts = load("gke")["system_pods"].values()
    return Resources(
        sum(int(part["cpu_m"]) for part in parts), sum(int(part["memory_mib"]) for part in parts)
    )


def serving_pod_requests(shape: MachineShape, pods_per_node: int) -> Resources:
    """Requests for each TF Serving pod: an equal share of what the node has left.

    Raises ConfigError, with the numbers, when a share is below the smallest useful pod.
    """
    allocatable = node_allocatable(shape)
    system = system_pod_reserve()
    free = Resources(allocatable.cpu_m - system.cpu_m, allocatable.memory_mib - system.memory_mib)
    # Round the shares down to 10m and 1 MiB so pods always fit beside GKE's own pods.
    share = Resources((free.cpu_m // pods_per_node) // 10 * 10, free.memory_mib // pods_per_node)
    minimum = load("gke")["min_serving_pod"]
    if share.cpu_m < minimum["cpu_m"] or share.memory_mib < minimum["memory_mib"]:
        raise ConfigError(
            "podsPerNode",
            f"{pods_per_node} pods do not fit on {shape.machine_type}: it allocates "
            f"{allocatable} to pods, GKE's system pods need {system}, leaving {free}, so "
            f"{share} per pod, below the TF Serving minimum of {minimum['cpu_m']}m CPU / "
            f"{minimum['memory_mib']} MiB. Lower podsPerNode or pick a larger machine.",
        )
    return share


def pod_cpu_cores(shape: MachineShape, pods_per_node: int) -> int:
    """Whole CPUs one pod can use: the node's vCPUs split between its pods (at least 1)."""
    return max(1, shape.vcpus // pods_per_node)
