"""A search space: the configurations a search may measure, read from a file. Pure.

The file (YAML or JSON) is a mapping:

    settings:              # optional: every configuration has these (like sweep --set)
      modelSource: github:owner/repo@v1#saved_model.tar.gz
    dimensions:            # every combination of these values is a configuration
      machineType: [e2-standard-4, e2-standard-8, e2-highcpu-8]
      nodeCount: [2]
      podsPerNode: [1, 2]
      tensorflowInterOpParallelism: [1, 2, 4]
      enableBatching: [false, true]
      maxBatchSize: [32, 128]          # counts only where enableBatching is true

A space may mix CPU machine types and GPU hosts (g2-standard-4: one NVIDIA L4; N1 with
NVIDIA T4s): a configuration on a GPU host serves the -gpu image (tfServingVariant gpu) and,
on N1, carries the host's GPU (gpuType nvidia-tesla-t4) unless the space says otherwise;
the GPU settings (gpuCount, gpuMemoryPercent...) have no effect on a CPU machine and are
dropped from it like batching sizes with batching off.

or, instead of dimensions, `presets: [8vcpu-16gb-interop4, ...]` (or `presets: reference`,
the 15 reference experiments): each preset is a configuration. Every key is a setting of
Pulumi.yaml, with values of its type. Each configuration is designed as the program would
deploy it; those the program refuses (pods that do not fit the nodes, say) are left out
and counted with the reason. Values that have no effect in a configuration (batching sizes
with batching off) are dropped from it, so the same deployment is never measured twice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.design.experiment import ExperimentDesign
from infra.design.machine import (
    family_facts,
    is_gpu_machine,
    machine_family,
    parse_machine_type,
    pod_cpu_cores,
)
from infra.design.pricing import NodeGroup, node_group_lines
from infra.design.settings import (
    BATCHING_SETTINGS,
    SECRET_SETTINGS,
    available_presets,
    coerce_setting,
    load_declarations,
)
from infra.inputs.errors import ConfigError, InputError, ModelSourceError, did_you_mean
from infra.inputs.files import yaml_mapping
from infra.plan.run import design_stack
from infra.sweep.design import reference_experiments
from infra.sweep.search.objective import Price

# Settings the sweep sets on its stack itself, and settings a measured configuration must
# not change (autoscaling moves the pod count the capacity is measured on).
NOT_SEARCHABLE = ("experiment", "experimentLabel", "ttlHours", "loadGenerator", "autoscaling")
BATCHING_ONLY = BATCHING_SETTINGS
# Settings that act only on a GPU host, and those a GPU host's configuration gets without
# being told (on_its_hardware).
GPU_ONLY = ("gpuType", "gpuCount", "gpuMemoryPercent", "gpuDriverVersion")
IMPLIED_BY_HARDWARE = ("tfServingVariant", "gpuType")
MAX_COMBINATIONS = 20_000
SPACE_KEYS = ("settings", "dimensions", "presets")


@dataclass(frozen=True)
class Candidate:
    """One configuration the search may measure."""

    name: str  # stable and readable: the dimension values, or the preset's name
    preset: str | None  # the experiment preset it is, if any
    settings: Mapping[str, Any]  # what the sweep stack gets on top of the space's settings
    features: Mapping[str, Any]  # the dimension values (None: no effect here)
    price: Price  # at the price the user will deploy at
    measure_price: Price  # at the price it is measured at (spot with --spot)
    machine_type: str
    vcpus: int
    summary: str
    generator_node_usd_per_hour: float  # one load-generator node, while measuring
    pods: int = 0  # serving pods, each with pod_cores CPUs for TF Serving's threads
    pod_cores: int = 0
    pod_memory_mib: int = 0
    # A pod's share of GPUs (1: one GPU to itself; 0.5: one time-shared by two pods); 0 on
    # a CPU machine.
    gpus_per_pod: float = 0.0
    gpu_type: str = ""


@dataclass(frozen=True)
class SearchSpace:
    source: str
    settings: Mapping[str, Any]
    dimensions: Mapping[str, tuple[Any, ...]]  # the values each varying setting takes
    candidates: tuple[Candidate, ...]
    refused: tuple[tuple[str, str], ...]  # (configuration, why the program refuses it)
    models: tuple[tuple[str, str], ...] = ()  # (name, source) of the models it serves

    def by_name(self) -> dict[str, Candidate]:
        return {c.name: c for c in self.candidates}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return "/".join(map(str, value)) or "any"
    return str(value)


def candidate_name(features: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={_value_text(v)}" for key, v in features.items() if v is not None)


def _check_key(key: str, where: str, declarations: Mapping[str, Any]) -> None:
    if key in SECRET_SETTINGS or key not in declarations:
        raise ConfigError(
            f"{where} {key}",
            f"is not a setting of this project.{did_you_mean(key, declarations)}",
        )
    if key in NOT_SEARCHABLE:
        raise ConfigError(
            f"{where} {key}",
            "is set by the sweep itself (or would change the pod count a capacity is "
            f"measured on); leave it out. Not searchable: {', '.join(NOT_SEARCHABLE)}.",
        )


def _prices(design: ExperimentDesign, deploy_spot: bool) -> tuple[Price, Price]:
    """(deploy price, measuring price) of a design: the fixed part and one node."""
    s = design.settings
    catalogue = design.cost.catalogue

    def node_usd(spot: bool) -> float:
        group = NodeGroup(design.shape, 1, s.disk_type, s.disk_size_gb, spot)
        return sum(line.usd_per_hour for line in node_group_lines(group, s.region, catalogue))

    measured_node = node_usd(s.spot)
    fixed = design.cost.usd_per_hour - measured_node * design.nodes_total
    deploy = Price(fixed, node_usd(deploy_spot), design.nodes_total)
    return deploy, Price(fixed, measured_node, design.nodes_total)


def _generator_usd(design: ExperimentDesign) -> float:
    pool, s = design.load_generator, design.settings
    if pool is None:
        return 0.0
    group = NodeGroup(pool.shape, 1, pool.disk_type, pool.disk_size_gb, pool.spot)
    return sum(
        line.usd_per_hour for line in node_group_lines(group, s.region, design.cost.catalogue)
    )


def _summary(design: ExperimentDesign) -> str:
    s, server = design.settings, design.server
    batching = server.batching
    gpus = f" ({design.gpu.per_node} x {design.gpu.name})" if design.gpu else ""
    return (
        f"{design.nodes_total} x {'spot ' if s.spot else ''}{design.shape.machine_type}{gpus}, "
        f"{s.pods_per_node} pod(s)/node, intra-op {server.intra_op_parallelism}, inter-op "
        f"{server.inter_op_parallelism}, batching "
        + ("off" if batching is None else f"{batching.max_batch_size}")
    )


def _effective_features(features: Mapping[str, Any], design: ExperimentDesign) -> dict[str, Any]:
    """The features with those that have no effect in this design set to None."""
    s = design.settings
    return {
        key: None
        if (key in BATCHING_ONLY and not s.enable_batching)
        or (key in GPU_ONLY and design.gpu is None)
        else value
        for key, value in features.items()
    }


def on_its_hardware(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration's settings for the machine it names: on a GPU host the -gpu image
    and (N1) the host's GPU, unless given; on a CPU machine no GPU setting."""
    machine = str(overrides.get("machineType") or "")
    settled = dict(overrides)
    if is_gpu_machine(machine):
        settled.setdefault("tfServingVariant", "gpu")
        if not parse_machine_type(machine).gpus:
            settled.setdefault("gpuType", str(family_facts(machine_family(machine))["gpu"]))
    else:
        for key in GPU_ONLY:
            settled.pop(key, None)
    return settled


def _design(stack: str, overrides: Mapping[str, Any]) -> ExperimentDesign:
    _, _, _, design = design_stack(stack, overrides)
    return design


def _combinations(
    dimensions: Mapping[str, tuple[Any, ...]],
) -> list[dict[str, Any]]:
    keys = list(dimensions)
    return [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*dimensions.values())
    ]


def build_space(
    source: str,
    settings: Mapping[str, Any],
    configurations: Sequence[tuple[str | None, dict[str, Any]]],
    *,
    stack: str,
    spot: bool = False,
    deploy_spot: bool = False,
) -> SearchSpace:
    """Design every configuration (a preset's name or None, its settings) as the sweep
    stack; keep those the program accepts, one per distinct deployment."""
    candidates: dict[str, Candidate] = {}
    refused: list[tuple[str, str]] = []
    models: set[tuple[str, str]] = set()
    keys = sorted({key for _, config in configurations for key in config})
    if not keys:  # presets: whatever settings differ between them
        keys = [k for k in load_declarations() if k not in (*SECRET_SETTINGS, *NOT_SEARCHABLE)]
    for preset, config in configurations:
        label = preset or candidate_name(config)
        try:
            # What running it on its machine adds (the -gpu image on a GPU host).
            implied = {
                k: v
                for k, v in on_its_hardware({**settings, **config}).items()
                if k not in settings and k not in config
            }
            overrides = on_its_hardware(
                {**settings, **config, "experiment": preset or "none", "loadGenerator": True}
            )
            if spot:
                overrides["spot"] = True
            design = _design(stack, overrides)
        except (ConfigError, ModelSourceError) as error:
            refused.append((label, str(error)))
            continue
        features = {key: design.settings.value_of(key) for key in keys}
        effective = _effective_features(features, design)
        name = preset or candidate_name({k: v for k, v in effective.items() if k in config})
        if name in candidates or any(c.features == effective for c in candidates.values()):
            continue
        deploy, measure = _prices(design, deploy_spot)
        models.add((design.settings.model_name, design.settings.model_source))
        candidates[name] = Candidate(
            name=name,
            preset=preset,
            settings={
                **{k: v for k, v in config.items() if effective.get(k) is not None},
                **implied,
            },
            features=effective,
            price=deploy,
            measure_price=measure,
            machine_type=design.shape.machine_type,
            vcpus=design.shape.vcpus,
            summary=_summary(design),
            generator_node_usd_per_hour=_generator_usd(design),
            pods=design.replicas,
            pod_cores=pod_cpu_cores(design.shape, design.settings.pods_per_node),
            pod_memory_mib=design.pod_requests.memory_mib,
            gpus_per_pod=design.gpu.per_node / design.settings.pods_per_node if design.gpu else 0.0,
            gpu_type=design.gpu.gpu_type if design.gpu else "",
        )
    if not candidates:
        first = refused[0] if refused else ("-", "the space is empty")
        raise ConfigError(
            source,
            f"none of its {len(configurations)} configurations can be deployed; the first, "
            f"{first[0]}: {first[1]}",
        )
    values: dict[str, list[Any]] = {key: [] for key in keys}
    for candidate in candidates.values():
        for key in keys:
            if candidate.features[key] not in values[key]:
                values[key].append(candidate.features[key])
    dimensions = {key: tuple(v) for key, v in values.items() if len(v) > 1}
    # Named by what varies: a value every configuration shares says nothing.
    kept = tuple(
        replace(
            c,
            name=c.preset or candidate_name({k: c.features[k] for k in dimensions}),
            features={k: c.features[k] for k in dimensions},
        )
        for c in candidates.values()
    )
    return SearchSpace(
        source, dict(settings), dimensions, kept, tuple(refused), tuple(sorted(models))
    )


def _presets(value: Any, source: str) -> list[str]:
    if value == "reference":
        return reference_experiments()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{source}: presets must be a list of experiment presets, or `reference`")
    known = available_presets()
    for name in value:
        if name not in known:
            raise InputError(
                f"{source}: presets: no experiment preset named {name!r}. Presets: "
                f"{', '.join(known)}."
            )
    return list(dict.fromkeys(value))


def read_space(
    path: Path,
    *,
    stack: str,
    extra: Mapping[str, Any] | None = None,
    spot: bool = False,
    deploy_spot: bool = False,
) -> SearchSpace:
    """The space a file describes, every configuration designed (see the module's text)."""
    source = str(path)
    document = yaml_mapping(path, "a search space (settings, and dimensions or presets)")
    unknown = sorted(set(document) - set(SPACE_KEYS))
    if unknown:
        raise InputError(
            f"{source}: {unknown[0]!r} is not a key of a search space; use {', '.join(SPACE_KEYS)}"
        )
    if ("dimensions" in document) == ("presets" in document):
        raise InputError(f"{source}: give either dimensions or presets (one of them)")
    declarations = load_declarations()
    settings = dict(extra or {})
    fixed = document.get("settings") or {}
    if not isinstance(fixed, dict):
        raise InputError(f"{source}: settings must be a mapping of setting: value")
    for key, raw in fixed.items():
        _check_key(str(key), "settings", declarations)
        try:
            settings[str(key)] = coerce_setting(declarations[str(key)], raw)
        except ConfigError as error:
            raise InputError(f"{source}: settings {error}") from None
    configurations: list[tuple[str | None, dict[str, Any]]] = []
    if "presets" in document:
        configurations = [(name, {}) for name in _presets(document["presets"], source)]
    else:
        dimensions = document["dimensions"]
        if not isinstance(dimensions, dict) or not dimensions:
            raise InputError(f"{source}: dimensions must map settings to lists of values")
        typed: dict[str, tuple[Any, ...]] = {}
        for name, values in dimensions.items():
            key = str(name)
            _check_key(key, "dimensions", declarations)
            if key in settings:
                raise InputError(f"{source}: {key} is both a setting and a dimension; keep one")
            if not isinstance(values, list) or not values:
                raise InputError(f"{source}: dimensions {key} must be a non-empty list of values")
            try:
                coerced = [coerce_setting(declarations[key], value) for value in values]
            except ConfigError as error:
                raise InputError(f"{source}: dimensions {error}") from None
            typed[key] = tuple(dict.fromkeys(coerced))
        total = math.prod(len(v) for v in typed.values())
        if total > MAX_COMBINATIONS:
            raise InputError(
                f"{source}: its dimensions make {total:,} combinations, more than "
                f"{MAX_COMBINATIONS:,}; list fewer values"
            )
        configurations = [(None, combination) for combination in _combinations(typed)]
    return build_space(
        source, settings, configurations, stack=stack, spot=spot, deploy_spot=deploy_spot
    )
