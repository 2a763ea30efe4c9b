"""The results document of a load test (schema tfserving-gke/bench/v1), from the merged
figures of every process. Pure.

Keys: schema, started_at, target {url, model, signature}, settings {protocol, mode, users,
rate_per_s, arrivals, seed (the arrival schedule's), duration_s, warmup_s, timeout_s,
max_in_flight, payload, payload_bytes, processes, where}, experiment (the stack's outputs
that describe it, or null), summary (requests, successes, errors, error_rate, error_kinds,
rps, mean/max/p50/p90/p95/p99 in ms, send_lag_p99_ms, send_lag_limit_ms, generator_cpu_max,
generator_cpu_wait_max (the largest share of its run a process waited for a CPU, Linux),
generator_cpu_wait_ms (its mean wait each time it was given one), load_generator_limited,
load_generator_limited_reason, processes), confidence (samples,
effective_samples, p99_ms, p99_ci_ms [low, high or null when open], p99_open_above,
error_rate, error_rate_ci: 95% intervals, infra.bench.confidence), server_failure (in the
cluster, when a serving pod failed during the run), errors {kind: count}, timeline
[{second, requests, errors, p50_ms, p99_ms}], batches [{requests, errors, latency_us}] (the
measured window in equal parts), histograms {latency_us, send_lag_us} (encoded
HdrHistograms, mergeable), sent_by_endpoint {pod: requests the load generator sent it},
server (TF Serving's own figures over the measured window: source, servers {pod: figures,
window_s, scraped_at}, all, balance {pods, mean, max_deviation, unbalanced, why}, and in
the cluster pods_cpu {source, window, serving_pods {pod: {mean_m, max_m, samples}}} and
placement {nodes {pod: node}, one_per_node_expected, shared}, and on a GPU stack gpu {source,
gpus, samples, utilization_pct_mean, utilization_pct_max, memory_used_mib_max} from GKE's
DCGM metrics, or {source: null, why}: infra.bench.gpu_metrics), and, for a capacity search,
capacity {objective, rate_per_s, range {low, high, undecided, undecided_at}, converged,
rps, step, runs, stopped, steps [{rate_per_s, verdict, why, runs, met_on_point, confidence,
result, pooled_with (the faster rates whose runs certified this one)}]}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.bench.confidence import confidence
from infra.loadgen.spec import WorkerSpec
from infra.loadgen.stats import merge

# A pod's share of the requests TF Serving counted may be this far from the mean: more, and
# the step measured some pods harder than others.
BALANCE_TOLERANCE = 0.2

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
    placement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's results from its processes' results (and, in the cluster, the pods' CPU
    from the metrics API and the nodes they ran on)."""
    first = results[0]
    url = spec.rest_url if spec.protocol == "rest" else spec.grpc_target
    merged = merge(results, spec.duration_s, spec.max_send_lag_ms)
    sent: dict[str, int] = {}
    for result in results:
        for name, count in (result.get("sent_by_endpoint") or {}).items():
            sent[name] = sent.get(name, 0) + int(count)
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
            "arrivals": spec.arrivals if spec.mode == "open" else None,
            "seed": spec.seed if spec.mode == "open" else None,
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
        **merged,
        "confidence": confidence(merged["batches"]).to_json(),
        "sent_by_endpoint": dict(sorted(sent.items())),
        # TF Serving's own figures beside the client's (process 0 read them), and the pods'
        # CPU from the metrics API and where they ran when the run was in the cluster.
        "server": _server(results, pods_cpu, placement),
    }


def balance(servers: dict[str, Any]) -> dict[str, Any] | None:
    """Whether every serving pod got its share: the requests TF Serving counted on each
    over the window, against their mean (None with fewer than two pods to compare)."""
    counts = {name: int(f["requests"]) for name, f in servers.items() if "requests" in f}
    if len(counts) < 2:
        return None
    mean = sum(counts.values()) / len(counts)
    deviation = max(abs(c - mean) / mean for c in counts.values()) if mean else 0.0
    unbalanced = bool(mean) and deviation > BALANCE_TOLERANCE
    worst = max(counts, key=lambda name: abs(counts[name] - mean))
    return {
        "pods": counts,
        "mean": round(mean, 1),
        "max_deviation": round(deviation, 3),
        "unbalanced": unbalanced,
        "why": (
            f"pod {worst} served {counts[worst]} requests against a mean of {mean:.0f} "
            f"({deviation:.0%} off, more than {BALANCE_TOLERANCE:.0%})"
            if unbalanced
            else None
        ),
    }


def short_of_pods(document: dict[str, Any], replicas: int) -> str:
    """Why a run did not load every one of the Deployment's `replicas` pods over its
    window ("" when it did): fewer pods were sent requests, or TF Serving's own counters
    show a pod that served none (a pod lost or replaced between two looks)."""
    if replicas < 1:
        return ""
    sent = document.get("sent_by_endpoint") or {}
    if sent and len(sent) < replicas:
        return (
            f"the load reached {len(sent)} of the Deployment's {replicas} serving pods "
            f"({', '.join(sorted(sent))})"
        )
    servers = (document.get("server") or {}).get("servers") or {}
    counted = {name: f for name, f in servers.items() if "requests" in f}
    idle = sorted(name for name, f in counted.items() if int(f["requests"]) == 0)
    if counted and (idle or len(counted) < replicas):
        return (
            f"TF Serving counted requests on {len(counted) - len(idle)} of the Deployment's "
            f"{replicas} serving pods over the window"
            + (f" ({', '.join(idle)} served none)" if idle else "")
        )
    return ""


def _server(
    results: list[dict[str, Any]],
    pods_cpu: dict[str, Any] | None,
    placement: dict[str, Any] | None,
) -> dict[str, Any] | None:
    server = next((r["server"] for r in results if r.get("server")), None)
    if server is not None:
        server = {**server, "balance": balance(server.get("servers") or {})}
    extra = {
        key: value
        for key, value in (("pods_cpu", pods_cpu), ("placement", placement))
        if value is not None
    }
    if not extra:
        return server
    return {**(server or {}), **extra}
