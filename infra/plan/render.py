"""Show a stack plan: as text for people, as manifests for kubectl, as plan.json for tools.

plan.json (schema "tfserving-gke/plan/v1") is read by later tooling (pull-request diffs);
change its shape only with a new schema version. Its keys:
  schema, stack, project, experiment
  settings:   {<key>: {"value": ..., "source": "default" | "preset <name>" | "stack" |
              "stack name", and "effective": the value that takes effect, only where it
              differs (intra-op 0 is the pod's CPU count)}}
  summary:    machine type, nodes, pods, requests vs allocatable, threads, batching
  cost:       catalogue, region, lines [{item, quantity, usd_per_hour, usd_per_month}],
              usd_per_hour, usd_per_month, gke_free_tier_credit_usd_per_month
  warnings:   [str]
  resources:  [{type, name, parent, custom, inputs, dependencies, provider,
              deleteBeforeReplace}] sorted by URN (parent, dependencies and provider as
              "type::name"; "" for none)
  outputs:    the stack outputs
  manifests:  [file names written beside plan.json]
  placeholders: {placeholder: what the real value will be}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from infra.design.experiment import ExperimentDesign
from infra.design.manifests import MANIFEST_NOTES, MANIFEST_ORDER
from infra.design.pricing import CostEstimate, CostLine, hours_per_month
from infra.design.settings import DEFAULT, FROM_MODEL_SOURCE
from infra.plan.mocks import PLACEHOLDERS, DeclaredResource
from infra.plan.run import StackPlan

SCHEMA = "tfserving-gke/plan/v1"
KUBERNETES_PREFIX = "kubernetes:"


def _short(urn: str) -> str:
    """`type::name` of a URN, as shown in the tree and in plan.json."""
    if not urn:
        return ""
    parts = urn.split("::")
    return f"{parts[-2].split('$')[-1]}::{parts[-1]}"


def summary(design: ExperimentDesign) -> dict[str, Any]:
    s, server = design.settings, design.server
    return {
        "machine_type": design.shape.machine_type,
        "custom_machine": design.shape.custom,
        "node_vcpus": design.shape.vcpus,
        "node_memory_gib": round(design.shape.memory_gib, 2),
        "nodes": design.nodes_total,
        "cluster_location": s.cluster_location,
        "regional": s.regional,
        "spot": s.spot,
        "pods_per_node": s.pods_per_node,
        "replicas": design.replicas,
        "node_allocatable": {
            "cpu_m": design.node_allocatable.cpu_m,
            "memory_mib": design.node_allocatable.memory_mib,
        },
        "system_pods": {
            "cpu_m": design.system_pods.cpu_m,
            "memory_mib": design.system_pods.memory_mib,
        },
        "pod_requests": {
            "cpu_m": design.pod_requests.cpu_m,
            "memory_mib": design.pod_requests.memory_mib,
        },
        "tensorflow_intra_op_parallelism": server.intra_op_parallelism,
        "tensorflow_inter_op_parallelism": server.inter_op_parallelism,
        "rest_api_num_threads": server.rest_api_num_threads,
        "grpc_max_threads": server.grpc_max_threads,
        "onednn": {"setting": s.one_dnn, "effect": design.onednn},
        "gpu": None
        if design.gpu is None
        else {
            "type": design.gpu.gpu_type,
            "name": design.gpu.name,
            "per_node": design.gpu.per_node,
            "memory_gib": design.gpu.memory_gib,
            "shared_clients_per_gpu": design.gpu.shared_clients,
            "memory_fraction": design.gpu.memory_fraction,
            "driver_version": design.gpu.driver_version,
            "zones": list(design.gpu.zones),
        },
        "batching": None
        if server.batching is None
        else {
            "max_batch_size": server.batching.max_batch_size,
            "batch_timeout_micros": server.batching.batch_timeout_micros,
            "max_enqueued_batches": server.batching.max_enqueued_batches,
            "num_batch_threads": server.batching.num_batch_threads,
            "allowed_batch_sizes": list(server.batching.allowed_batch_sizes),
            "pad_variable_length_inputs": server.batching.pad_variable_length_inputs,
            "enable_large_batch_splitting": server.batching.enable_large_batch_splitting,
            "max_execution_batch_size": server.batching.max_execution_batch_size,
        },
        "exposure": s.exposure,
        "load_balancer_source_ranges": list(s.load_balancer_source_ranges),
        "model": {"name": s.model_name, "source": s.model_source},  # resolved: see outputs
        "tf_serving_version": s.tf_serving_version,
        "autoscaling": None
        if design.autoscaling is None
        else {
            "min_replicas": design.autoscaling.min_replicas,
            "max_replicas": design.autoscaling.max_replicas,
            "target_cpu_utilization": design.autoscaling.target_cpu_utilization,
            "min_nodes": design.autoscaling.min_nodes,
            "max_nodes": design.autoscaling.max_nodes,
        },
        "load_generator": None
        if design.load_generator is None
        else {
            "machine_type": design.load_generator.shape.machine_type,
            "max_nodes": design.load_generator.max_nodes,
            "processes_per_node": design.load_generator.processes_per_node,
            "max_processes": design.load_generator.max_processes,
        },
    }


def _lines_json(lines: tuple[CostLine, ...]) -> list[dict[str, Any]]:
    return [
        {
            "item": line.item,
            "quantity": line.quantity,
            "usd_per_hour": round(line.usd_per_hour, 6),
            "usd_per_month": round(line.usd_per_month, 2),
        }
        for line in lines
    ]


def cost_json(cost: CostEstimate) -> dict[str, Any]:
    return {
        "catalogue": cost.catalogue,
        "as_of": cost.as_of,
        "region": cost.region,
        "rates_region": cost.rates_region,
        "hours_per_month": hours_per_month(),
        "lines": _lines_json(cost.lines),
        "usd_per_hour": round(cost.usd_per_hour, 6),
        "usd_per_month": round(cost.usd_per_month, 2),
        "gke_free_tier_credit_usd_per_month": cost.free_tier_credit_usd_per_month,
        # Billed only while a benchmark runs (the load-generator pool scales from zero).
        "while_benchmarking": {
            "lines": _lines_json(cost.while_benchmarking),
            "usd_per_hour": round(cost.benchmarking_usd_per_hour, 6),
        }
        if cost.while_benchmarking
        else None,
    }


def kubernetes_manifests(plan: StackPlan) -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every Kubernetes object the program declared, in order."""
    manifests = []
    kube = sorted(
        (r for r in plan.recording.resources if r.custom and r.type.startswith(KUBERNETES_PREFIX)),
        # Kind, then name: two objects of one kind (the NetworkPolicies) keep their numbers
        # whatever order the program's registrations arrived in.
        key=lambda r: (
            MANIFEST_ORDER.index(str(r.inputs["kind"]).lower()),
            str((r.inputs.get("metadata") or {}).get("name", "")),
        ),
    )
    for index, resource in enumerate(kube, start=1):
        obj = ordered(resource.inputs)
        manifests.append((f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml", obj))
    return manifests


def _resource_json(resource: DeclaredResource) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "parent": _short(resource.parent),
        "custom": resource.custom,
        "inputs": ordered(resource.inputs),  # keys sorted: the same plan, the same bytes
        "dependencies": [_short(urn) for urn in resource.dependencies],
        "provider": _short(resource.provider),
        "deleteBeforeReplace": resource.delete_before_replace,
    }


def effective_values(design: ExperimentDesign) -> dict[str, Any]:
    """What the settings whose 0 or empty value means "derive it" take effect as."""
    s, server, scaling = design.settings, design.server, design.autoscaling
    derived: dict[str, Any] = {
        "experimentLabel": s.label,
        "machineType": design.shape.machine_type,
        "tensorflowIntraOpParallelism": server.intra_op_parallelism,
        "tensorflowInterOpParallelism": server.inter_op_parallelism,
        "restApiNumThreads": server.rest_api_num_threads,
        "grpcMaxThreads": server.grpc_max_threads,
    }
    if scaling is None:
        derived["replicas"] = design.replicas
    else:
        derived |= {"minNodes": scaling.min_nodes, "maxNodes": scaling.max_nodes}
    if server.batching is not None:
        derived |= {
            "numBatchThreads": server.batching.num_batch_threads,
            "maxEnqueuedBatches": server.batching.max_enqueued_batches,
        }
        if s.enable_large_batch_splitting:
            derived["maxExecutionBatchSize"] = server.batching.max_execution_batch_size
    return {key: value for key, value in derived.items() if value != s.value_of(key)}


def layer_name(source: str, stack: str) -> str:
    """Where a setting's value came from, in words."""
    if source == DEFAULT:
        return "default in Pulumi.yaml"
    if source.startswith("preset "):
        return f"preset experiments/{source.removeprefix('preset ')}.yaml"
    if source == "stack name":
        return "from the stack's name"
    if source == FROM_MODEL_SOURCE:
        return f"from modelSource in Pulumi.{stack}.yaml"
    return f"Pulumi.{stack}.yaml"


def setting_text(value: Any, effective: Any, layer: str) -> str:
    """A setting's value, what it takes effect as when that differs, and its layer."""
    text = json.dumps(value)
    if effective is not None:
        text += f", in effect {json.dumps(effective)}"
    return f"{text} ({layer})"


def plan_json(plan: StackPlan) -> dict[str, Any]:
    settings = plan.settings
    effective = effective_values(plan.design)
    return {
        "schema": SCHEMA,
        "stack": plan.stack,
        "project": settings.project,
        "experiment": settings.experiment,
        "settings": {
            key: {
                "value": _plain(settings.value_of(key)),
                "source": source,
                **({"effective": _plain(effective[key])} if key in effective else {}),
            }
            for key, source in sorted(settings.sources.items())
        },
        "summary": summary(plan.design),
        "cost": {
            **cost_json(plan.design.cost),
            # With autoscaling, `lines` price the fewest nodes and this the most.
            "at_max_nodes": None
            if plan.design.cost_at_max is None or plan.design.autoscaling is None
            else {
                "nodes": plan.design.autoscaling.max_nodes,
                "usd_per_hour": round(plan.design.cost_at_max.usd_per_hour, 6),
                "usd_per_month": round(plan.design.cost_at_max.usd_per_month, 2),
            },
        },
        "warnings": list(plan.warnings),
        "resources": [
            _resource_json(r) for r in sorted(plan.recording.resources, key=lambda r: r.urn)
        ],
        "outputs": ordered(plan.recording.stack_outputs),
        "manifests": [name for name, _ in kubernetes_manifests(plan)],
        "placeholders": PLACEHOLDERS,
    }


FIRST_KEYS = ("apiVersion", "kind", "metadata", "name", "namespace")


def ordered(value: Any) -> Any:
    """Keys in a stable, readable order: apiVersion, kind, metadata, name first, then A-Z."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (FIRST_KEYS.index(k) if k in FIRST_KEYS else 99, k))
        return {key: ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _ManifestDumper(yaml.SafeDumper):
    """Manifests as people read them: a multi-line string (a ConfigMap's file) as a block
    scalar, not a quoted line with blank lines between its lines."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(c in value for c in "\t\r") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _string)


def write_plan(plan: StackPlan, out_dir: Path) -> Path:
    """Write <out_dir>/<stack>/ with one YAML file per manifest and plan.json."""
    target = out_dir / plan.stack
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.yaml"):
        stale.unlink()
    for name, obj in kubernetes_manifests(plan):
        text = yaml.dump(obj, Dumper=_ManifestDumper, sort_keys=False, default_flow_style=False)
        note = MANIFEST_NOTES.get(str(obj["kind"]).lower(), "")
        comment = "".join(f"# {line}".rstrip() + "\n" for line in note.splitlines())
        (target / name).write_text(f"{comment}---\n{text}", encoding="utf-8")
    (target / "plan.json").write_text(
        json.dumps(plan_json(plan), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return target


def resource_tree(plan: StackPlan) -> list[str]:
    """The declared resources as an indented tree under the stack."""
    children: dict[str, list[DeclaredResource]] = {}
    for resource in plan.recording.resources:
        children.setdefault(_short(resource.parent), []).append(resource)
    lines = [f"pulumi:pulumi:Stack  {plan.settings.project}-{plan.stack}"]

    def walk(key: str, indent: str) -> None:
        kids = children.get(key, [])
        for position, resource in enumerate(sorted(kids, key=lambda r: (r.type, r.name))):
            last = position == len(kids) - 1
            lines.append(f"{indent}{'└─ ' if last else '├─ '}{resource.type}  {resource.name}")
            walk(f"{resource.type}::{resource.name}", indent + ("   " if last else "│  "))

    stack_key = next((k for k in children if k.startswith("pulumi:pulumi:Stack::")), "")
    walk(stack_key, "")
    return lines


def _resolution(plan: StackPlan) -> str:
    outputs = plan.recording.stack_outputs
    if not outputs.get("modelSha256"):
        return "not resolved offline (see warnings)"
    versions = ", ".join(str(v) for v in outputs.get("modelVersions") or [])
    return (
        f"{outputs['modelReleaseTag']}, sha256 {outputs['modelSha256'][:16]}…, versions {versions}"
    )


def _resources_text(r: dict[str, int]) -> str:
    return f"{r['cpu_m']}m CPU / {r['memory_mib']} MiB"


def _node_range(design: ExperimentDesign) -> str:
    assert design.autoscaling is not None
    return f"{design.autoscaling.min_nodes} to {design.autoscaling.max_nodes}"


def _pods_text(design: ExperimentDesign) -> str:
    scaling = design.autoscaling
    if scaling is None:
        return str(design.replicas)
    return (
        f"{scaling.min_replicas} to {scaling.max_replicas} (autoscaled at "
        f"{scaling.target_cpu_utilization}% CPU; {scaling.min_nodes} to {scaling.max_nodes} "
        "nodes)"
    )


def describe(plan: StackPlan) -> str:
    """The plan of one stack for a terminal."""
    s, d = plan.settings, plan.design
    info = summary(d)
    batching = info["batching"]
    shape = f"{d.shape.machine_type} ({d.shape.vcpus} vCPU, {d.shape.memory_gib:g} GiB"
    shape += f", custom {d.shape.family.upper()})" if d.shape.custom else ")"
    lines = [
        f"Stack {plan.stack}: experiment {s.experiment}, GCP project {s.gcp_project}",
        "",
        f"Resources ({len(plan.recording.resources)})",
        *("  " + line for line in resource_tree(plan)),
        "",
        "Experiment",
        f"  machine type      {shape}",
        f"  nodes             "
        f"{d.nodes_total if d.autoscaling is None else _node_range(d)} in {s.cluster_location}"
        f"{' (regional)' if s.regional else ' (zonal)'}, {'spot' if s.spot else 'on-demand'}",
        f"  node allocatable  {_resources_text(info['node_allocatable'])}"
        f" (GKE system pods need {_resources_text(info['system_pods'])})",
        f"  serving pods      {_pods_text(d)} ({s.pods_per_node} per node), each requesting "
        f"{_resources_text(info['pod_requests'])}",
        f"  threads           intra-op {d.server.intra_op_parallelism}, inter-op "
        f"{d.server.inter_op_parallelism}, REST {d.server.rest_api_num_threads}, "
        f"gRPC {d.server.grpc_max_threads}",
        *(
            [f"  GPUs              {d.gpu.describe()}, driver {d.gpu.driver_version}"]
            if d.gpu
            else []
        ),
        f"  oneDNN            {d.onednn}",
        "  batching          "
        + (
            "off"
            if batching is None
            else ", ".join(
                f"{key} {value}"
                for key, value in batching.items()
                if value is not False and value != []
            )
        ),
        f"  model             {s.model_name} from {s.model_source}: {_resolution(plan)}",
        f"  warmup            {plan.recording.stack_outputs.get('modelWarmup', '-')}",
        f"  image             FROM tensorflow/serving:{s.tf_serving_version}"
        f"{'-gpu' if s.tf_serving_variant == 'gpu' else ''}",
        "  load generator    "
        + (
            "none (loadGenerator false: bench from your machine, --local)"
            if d.load_generator is None
            else f"{d.load_generator.shape.machine_type} pool, 0 to {d.load_generator.max_nodes} "
            f"nodes of {d.load_generator.processes_per_node} processes, scaled from zero"
        ),
        "  metrics           "
        + (
            "TF Serving's Prometheus page scraped every 30 s (PodMonitoring), dashboard "
            "(dashboardUrl output)"
            if s.metrics
            else "off (metrics false)"
        ),
        f"  exposure          {s.exposure} load balancer, gRPC 8500 and REST 8501"
        + (
            f", from {', '.join(s.load_balancer_source_ranges)}"
            if s.load_balancer_source_ranges
            else ""
        ),
        "",
        f"Cost (USD, price catalogue {d.cost.catalogue}, {d.cost.region}"
        + (
            f", nodes at {d.cost.rates_region} rates)"
            if d.cost.rates_region != d.cost.region
            else ")"
        ),
    ]
    for line in d.cost.lines:
        lines.append(
            f"  {line.item:<44} {line.usd_per_hour:>9.4f}/h {line.usd_per_month:>9.2f}/month"
        )
    lines.append(
        f"  {'total':<44} {d.cost.usd_per_hour:>9.4f}/h {d.cost.usd_per_month:>9.2f}/month"
    )
    if d.autoscaling and d.cost_at_max:
        lines.append(
            f"  {'total at ' + str(d.autoscaling.max_nodes) + ' nodes (autoscaling maximum)':<44} "
            f"{d.cost_at_max.usd_per_hour:>9.4f}/h {d.cost_at_max.usd_per_month:>9.2f}/month"
        )
    if d.cost.free_tier_credit_usd_per_month:
        lines.append(
            f"  (the GKE free tier credits {d.cost.free_tier_credit_usd_per_month:.2f}/month: "
            "one zonal cluster per billing account pays no management fee)"
        )
    if d.cost.while_benchmarking:
        lines.append("  while benchmarking, at most (the load-generator pool scales from zero):")
        lines += [
            f"  {line.item:<44} {line.usd_per_hour:>9.4f}/h" for line in d.cost.while_benchmarking
        ]
    lines += ["", "Settings not at their default"]
    effective = effective_values(d)
    lines += [
        f"  {key} = "
        + setting_text(_plain(s.value_of(key)), effective.get(key), layer_name(source, plan.stack))
        for key, source in sorted(s.sources.items())
        if s.changed(key)
    ] or ["  (none)"]
    if plan.warnings:
        lines += ["", "Warnings", *(f"  - {warning}" for warning in plan.warnings)]
    lines += ["", "Outputs (placeholders in capitals are known only after deploy)"]
    lines += [f"  {key}: {value}" for key, value in ordered(plan.recording.stack_outputs).items()]
    return "\n".join(lines)


MATRIX_COLUMNS = (
    "stack",
    "machine type",
    "nodes",
    "pods",
    "pod requests",
    "intra",
    "inter",
    "batching",
    "USD/h",
    "USD/month",
)


def matrix(plans: list[StackPlan]) -> str:
    """Every planned experiment side by side, as a Markdown table."""
    rows = []
    for plan in plans:
        d = plan.design
        batching = d.server.batching
        rows.append(
            (
                plan.stack,
                d.shape.machine_type + (" (spot)" if d.settings.spot else ""),
                str(d.nodes_total),
                f"{d.replicas} ({d.settings.pods_per_node}/node)",
                f"{d.pod_requests.cpu_m}m / {d.pod_requests.memory_mib}Mi",
                str(d.server.intra_op_parallelism),
                str(d.server.inter_op_parallelism),
                "off"
                if batching is None
                else f"{batching.max_batch_size}/{batching.num_batch_threads} thr",
                f"{d.cost.usd_per_hour:.4f}",
                f"{d.cost.usd_per_month:.2f}",
            )
        )
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(MATRIX_COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [
            line(MATRIX_COLUMNS),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(row) for row in rows),
        ]
    )
