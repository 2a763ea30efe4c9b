"""The results document of a load test (schema tfserving-gke/bench/v1), from the merged
figures of every process. Pure.

Keys: schema, started_at, target {url, model, signature}, settings {protocol, mode, users,
rate_per_s, duration_s, warmup_s, timeout_s, max_in_flight, payload, payload_bytes,
processes, where}, experiment (the stack's outputs that describe it, or null), summary
(requests, successes, errors, error_rate, rps, mean/max/p50/p90/p95/p99 in ms,
send_lag_p99_ms, generator_cpu_max, load_generator_limited, load_generator_limited_reason,
processes), errors {kind: count}, timeline [{second, requests, errors, p50_ms, p99_ms}],
histograms {latency_us, send_lag_us} (encoded HdrHistograms, mergeable), server (TF
Serving's own figures over the measured window: source, servers {name: figures}, all, and
in the cluster pods_cpu), and, for a capacity search, capacity {objective, rate_per_s, rps,
step, steps}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.loadgen.spec import WorkerSpec
from infra.loadgen.stats import merge

RESULTS_SCHEMA = "tfserving-gke/bench/v1"
EXPERIMENT_OUTPUTS = (
    "experiment",
    "machineType",
    "nodeCount",
    "replicas",
    "costUsdPerHour",
    "costUsdPerMonth",
    "imageDigest",
    "modelReleaseTag",
    "modelSha256",
)


def result_document(
    spec: WorkerSpec,
    results: list[dict[str, Any]],
    outputs: dict[str, Any],
    started_at: str,
    where: str,
    *,
    pods_cpu: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's results from its processes' results (and, in the cluster, the pods' CPU
    from the metrics API)."""
    first = results[0]
    url = spec.rest_url if spec.protocol == "rest" else spec.grpc_target
    return {
        "schema": RESULTS_SCHEMA,
        # The start every process agreed on: second 0 of the timeline, on the wall clock.
        "started_at": datetime.fromtimestamp(first["start_epoch"], UTC).isoformat(
            timespec="milliseconds"
        )
        if "start_epoch" in first
        else started_at,
        "target": {"url": url, "model": spec.model, "signature": first["signature"]},
        "settings": {
            "protocol": spec.protocol,
            "mode": spec.mode,
            "users": spec.users if spec.mode == "closed" else None,
            "rate_per_s": spec.rate if spec.mode == "open" else None,
            "duration_s": spec.duration_s,
            "warmup_s": spec.warmup_s,
            "timeout_s": spec.timeout_s,
            "max_in_flight": spec.max_in_flight,
            "payload": first["payload"],
            "payload_bytes": first["payload_bytes"],
            "processes": len(results),
            "where": where,
        },
        "experiment": {key: outputs[key] for key in EXPERIMENT_OUTPUTS if key in outputs} or None,
        **merge(results, spec.duration_s),
        # TF Serving's own figures beside the client's (process 0 read them), and the pods'
        # CPU from the metrics API when the run was in the cluster.
        "server": _server(results, pods_cpu),
    }


def _server(
    results: list[dict[str, Any]], pods_cpu: dict[str, Any] | None
) -> dict[str, Any] | None:
    server = next((r["server"] for r in results if r.get("server")), None)
    if pods_cpu is None:
        return server
    return {**(server or {}), "pods_cpu": pods_cpu}
