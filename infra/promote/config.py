"""A production stack's settings from an experiment. Pure.

It carries what the experiment measured: the node shape, pods per node, TF Serving's
threads and batching exactly as they ran (the resolved values, not "0: derived"), the
image's TF Serving base, and the model, pinned to the release and digest the sweep
measured when the report has them; with a target load, the replicas of the nodes that serve
it. It sets what production wants: no preset (every value
is in the file), autoscaling on from the measured replica count to twice that, metrics
and warm starts on, no TTL, no load generator, zonal or regional; on-demand nodes, unless
the sweep ranked at spot prices (`--deploy-spot`): the price basis the winner won on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infra.design.experiment import ExperimentDesign

MAX_REPLICAS_FACTOR = 2
_GITHUB_LATEST = re.compile(r"^(github:[^@#]+)@latest(#.+)$")


@dataclass(frozen=True)
class Winner:
    """The experiment to promote, and what was measured of it."""

    experiment: str
    settings: dict[str, Any]  # the settings it ran with beyond its preset (sweep --set)
    source: str  # where it was chosen, for the file's header
    replicas: int | None = None
    capacity_rps: float | None = None
    p99_ms: float | None = None
    model_release_tag: str | None = None
    model_sha256: str | None = None
    # With a target load (sweep --target-rps): it and the nodes that serve it.
    target_rps: float | None = None
    target_nodes: int | None = None
    # Ranked at spot prices (sweep --deploy-spot): promoted on Spot VMs, the price it won on.
    spot: bool = False


def winner_from_report(report: dict[str, Any], shown: str) -> Winner:
    """The winner of a sweep report (report.json)."""
    if report.get("schema") != "tfserving-gke/sweep-report/v1":
        raise ValueError(f"{shown} is not a sweep report (tfserving-gke/sweep-report/v1)")
    name = report.get("winner")
    if not name:
        raise ValueError(
            f"{shown} has no winner: no experiment met p99 ≤ "
            f"{report['objective']['p99_ms']:g} ms. Promote a preset by name instead, or "
            "sweep with a looser objective."
        )
    entry = next((e for e in report["experiments"] if e["experiment"] == name), None)
    if entry is None:
        raise ValueError(
            f"{shown} names {name!r} as its winner, but its experiments do not include it: "
            "the report was edited or cut short. Promote a preset by name instead."
        )
    goal = report.get("goal") or {}
    target = goal.get("target_rps")
    ranked_by = (
        f"the cheapest to serve {target:g} requests/s" if target else "the most requests per dollar"
    )
    return Winner(
        experiment=name,
        # A search's configuration carries its own settings (it is not a preset).
        settings={**(report.get("settings") or {}), **(entry.get("settings") or {})},
        source=f"sweep report {shown}: {ranked_by} at p99 ≤ {report['objective']['p99_ms']:g} ms",
        replicas=entry.get("replicas"),
        capacity_rps=entry.get("capacity_rps"),
        p99_ms=report["objective"]["p99_ms"],
        model_release_tag=entry.get("model_release_tag"),
        model_sha256=entry.get("model_sha256"),
        target_rps=target,
        target_nodes=entry.get("nodes_for_target") if target else None,
        spot=bool(goal.get("deploy_spot")),
    )


def pinned_source(source: str, release_tag: str | None) -> str:
    """A GitHub source that followed the latest release, pinned to the one measured."""
    match = _GITHUB_LATEST.match(source)
    if match and release_tag and release_tag not in ("url", "local"):
        return f"{match[1]}@{release_tag}{match[2]}"
    return source


def production_settings(
    winner: Winner,
    design: ExperimentDesign,
    *,
    regional: bool,
    zone: str,
    min_replicas: int | None,
    max_replicas: int | None,
    zones_per_region: int,
) -> dict[str, Any]:
    """The production stack's project settings (config keys without the project prefix)."""
    s, server = design.settings, design.server
    measured = winner.replicas or design.replicas
    if winner.target_nodes:  # the pods of the nodes that serve the target load
        measured = winner.target_nodes * s.pods_per_node
    low = min_replicas or max(measured, zones_per_region if regional else 1)
    high = max_replicas or max(low, MAX_REPLICAS_FACTOR * low)
    values: dict[str, Any] = {
        "experiment": "none",
        "zone": zone or s.zone,
        "regional": regional,
        "releaseChannel": s.release_channel,
        "machineType": design.shape.machine_type,
        "spot": winner.spot,
        "diskType": s.disk_type,
        "diskSizeGb": s.disk_size_gb,
        "podsPerNode": s.pods_per_node,
        "autoscaling": True,
        "minReplicas": low,
        "maxReplicas": high,
        "targetCpuUtilization": s.target_cpu_utilization,
        "modelName": s.model_name,
        "modelSource": pinned_source(s.model_source, winner.model_release_tag),
        "modelVersion": s.model_version,
        "tfServingVersion": s.tf_serving_version,
        "tfServingVariant": s.tf_serving_variant,
        "tensorflowIntraOpParallelism": server.intra_op_parallelism,
        "tensorflowInterOpParallelism": server.inter_op_parallelism,
        "restApiNumThreads": server.rest_api_num_threads,
        "grpcMaxThreads": server.grpc_max_threads,
        "oneDnn": s.one_dnn,
        "enableBatching": server.batching is not None,
        "namespace": s.namespace,
        "exposure": s.exposure,
        "metrics": True,
        "warmup": s.warmup,
        "loadGenerator": False,
        "ttlHours": 0,
    }
    sha = winner.model_sha256 or s.model_sha256
    if sha:
        values["modelSha256"] = sha
    if s.load_balancer_source_ranges:
        values["loadBalancerSourceRanges"] = list(s.load_balancer_source_ranges)
    if s.sources.get("githubApiUrl", "default") != "default":
        values["githubApiUrl"] = s.github_api_url
    batching = server.batching
    if batching is not None:
        values |= {
            "maxBatchSize": batching.max_batch_size,
            "batchTimeoutMicros": batching.batch_timeout_micros,
            "maxEnqueuedBatches": batching.max_enqueued_batches,
            "numBatchThreads": batching.num_batch_threads,
            "allowedBatchSizes": list(batching.allowed_batch_sizes),
            "padVariableLengthInputs": batching.pad_variable_length_inputs,
            "enableLargeBatchSplitting": batching.enable_large_batch_splitting,
            "maxExecutionBatchSize": batching.max_execution_batch_size,
        }
    return values
