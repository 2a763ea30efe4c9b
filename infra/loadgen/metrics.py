"""TF Serving's own view of a run, from its Prometheus page (/monitoring/prometheus/metrics
on the REST port, which the program enables on every serving pod).

The page's counters and histograms are cumulative since the server started, so a run's
figures are the difference between a scrape at the start of the measured window and one at
its end. TF Serving exports (tensorflow_serving/servables/tensorflow/util.cc, and
util/prometheus_exporter.cc for the naming):
  :tensorflow:serving:request_count{model_name, status}
  :tensorflow:serving:request_latency{model_name, API, entrypoint}, a histogram in
      microseconds with exponential buckets (10 us x 1.8^i, 33 of them)
Percentiles from those buckets are interpolated within a bucket (as Prometheus'
histogram_quantile does), so they are coarser than the client's HdrHistograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from infra.design.monitoring.names import METRICS_PATH, REQUEST_COUNT, REQUEST_LATENCY


@dataclass
class Snapshot:
    """One model's request counters and latency histogram at one moment (cumulative)."""

    requests_by_status: dict[str, float] = field(default_factory=dict)
    latency_buckets_us: dict[float, float] = field(default_factory=dict)  # le -> cumulative
    latency_sum_us: float = 0.0
    latency_count: float = 0.0


def parse(page: str, model: str) -> Snapshot:
    """The model's figures from a Prometheus page (every API and entrypoint added)."""
    snapshot = Snapshot()
    for family in text_string_to_metric_families(page):
        if family.name not in (REQUEST_COUNT, REQUEST_LATENCY):
            continue
        for sample in family.samples:
            if sample.labels.get("model_name") != model:
                continue
            if family.name == REQUEST_COUNT:
                status = sample.labels.get("status", "")
                snapshot.requests_by_status[status] = (
                    snapshot.requests_by_status.get(status, 0.0) + sample.value
                )
            elif sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                snapshot.latency_buckets_us[le] = (
                    snapshot.latency_buckets_us.get(le, 0.0) + sample.value
                )
            elif sample.name.endswith("_sum"):
                snapshot.latency_sum_us += sample.value
            elif sample.name.endswith("_count"):
                snapshot.latency_count += sample.value
    return snapshot


def difference(before: Snapshot, after: Snapshot) -> Snapshot:
    """What happened between two snapshots of the same server (a restart in between shows
    as counters that went down: reported as nothing rather than as negative)."""

    def minus(new: dict[Any, float], old: dict[Any, float]) -> dict[Any, float]:
        return {key: max(0.0, value - old.get(key, 0.0)) for key, value in new.items()}

    return Snapshot(
        minus(after.requests_by_status, before.requests_by_status),
        minus(after.latency_buckets_us, before.latency_buckets_us),
        max(0.0, after.latency_sum_us - before.latency_sum_us),
        max(0.0, after.latency_count - before.latency_count),
    )


def add(one: Snapshot, other: Snapshot) -> Snapshot:
    """Two servers' windows as one (their buckets share bounds: TF Serving's are fixed)."""

    def plus(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
        return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}

    return Snapshot(
        plus(one.requests_by_status, other.requests_by_status),
        plus(one.latency_buckets_us, other.latency_buckets_us),
        one.latency_sum_us + other.latency_sum_us,
        one.latency_count + other.latency_count,
    )


def bucket_quantile_ms(buckets_us: dict[float, float], q: float) -> float | None:
    """The q-quantile (0..1) of a cumulative histogram, interpolated within its bucket."""
    ordered = sorted(buckets_us.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return round(lower_le / 1000, 2)  # past the last finite bucket: its bound
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside else 1.0
            return round((lower_le + (le - lower_le) * fraction) / 1000, 2)
        lower_le, lower_count = le, count
    return None


def figures(window: Snapshot, seconds: float) -> dict[str, Any]:
    """A server's figures over a window: requests, errors, rate and latency percentiles."""
    requests_total = sum(window.requests_by_status.values())
    ok = window.requests_by_status.get("OK", 0.0)
    return {
        "requests": int(requests_total),
        "errors": int(requests_total - ok),
        "rps": round(ok / seconds, 2) if seconds else 0.0,
        "mean_ms": round(window.latency_sum_us / window.latency_count / 1000, 2)
        if window.latency_count
        else None,
        "p50_ms": bucket_quantile_ms(window.latency_buckets_us, 0.5),
        "p99_ms": bucket_quantile_ms(window.latency_buckets_us, 0.99),
    }


def scrape(base_url: str, model: str, timeout_s: float) -> Snapshot | str:
    """A server's snapshot, or why it could not be read."""
    try:
        response = requests.get(f"{base_url.rstrip('/')}{METRICS_PATH}", timeout=timeout_s)
        response.raise_for_status()
        return parse(response.text, model)
    except (requests.RequestException, ValueError) as error:
        return f"{type(error).__name__}: {error}"[:300]
