"""Latency statistics of a load test. Pure.

Each load-generator process reduces what it recorded to counts and HdrHistograms (latency
and send lag in microseconds, 3 significant digits), overall and per second of the run.
Any number of those merge exactly (histograms add; percentiles are read from the merged
histogram, never averaged), so N processes on N machines give the same figures one
process would have, at the histograms' resolution (0.1%).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

PERCENTILES = (50, 90, 95, 99)
LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # an hour: anything slower is a timeout anyway
SIGNIFICANT_DIGITS = 3
# A generator keeps up when its requests leave on schedule: 99% of them less than this late.
# Above it, latencies include the generator's own delay and are not the server's.
SEND_LAG_LIMIT_MS = 5.0
# One Python process drives its requests on one core; near a full core it cannot go faster.
GENERATOR_CPU_LIMIT = 0.9


@dataclass(frozen=True)
class Sample:
    """One request: when it was due (s, on the run's clock), its latency, its error kind,
    and (open loop) how late it was sent against its schedule."""

    start_s: float
    latency_ms: float
    error: str | None = None
    send_lag_ms: float | None = None


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _record(histogram: HdrHistogram, milliseconds: float) -> None:
    histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(milliseconds * 1000))))


def _encode(histogram: HdrHistogram) -> str:
    return str(histogram.encode().decode("ascii"))


def decode(encoded: str) -> HdrHistogram:
    """A histogram from its encoded form (as in results JSON)."""
    histogram = new_histogram()
    histogram.add(HdrHistogram.decode(encoded.encode("ascii")))
    return histogram


def percentile_ms(histogram: HdrHistogram, q: float) -> float | None:
    """The q-th percentile in milliseconds; None when nothing was recorded."""
    if histogram.get_total_count() == 0:
        return None
    return round(float(histogram.get_value_at_percentile(q)) / 1000, 2)


def worker_result(
    samples: list[Sample], warmup_s: float, duration_s: float, cpu_s: float, wall_s: float
) -> dict[str, Any]:
    """One process's record of a run, reduced to what merges: counts and encoded histograms.

    Latencies and errors: requests that started (or were due) inside the measured window.
    Completed: successes that *finished* inside it, so an overloaded server shows what it
    served, not what it was offered. `seconds` covers the whole run, warm-up included.
    """
    end_s = warmup_s + duration_s
    latency, lag = new_histogram(), new_histogram()
    errors: Counter[str] = Counter()
    requests = completed = 0
    seconds: dict[int, dict[str, Any]] = {}
    for sample in samples:
        if sample.start_s >= end_s:
            continue  # a closed-loop user's request begun as the run ended: not part of it
        second = seconds.setdefault(
            int(sample.start_s), {"requests": 0, "errors": 0, "latency": new_histogram()}
        )
        second["requests"] += 1
        if sample.error is None:
            _record(second["latency"], sample.latency_ms)
            if warmup_s <= sample.start_s + sample.latency_ms / 1000 < end_s:
                completed += 1
        else:
            second["errors"] += 1
        if not warmup_s <= sample.start_s < end_s:
            continue
        requests += 1
        if sample.error is None:
            _record(latency, sample.latency_ms)
        else:
            errors[sample.error] += 1
        if sample.send_lag_ms is not None:
            _record(lag, sample.send_lag_ms)
    return {
        "requests": requests,
        "completed": completed,
        "errors": dict(sorted(errors.items())),
        "latency_us": _encode(latency),
        "send_lag_us": _encode(lag) if lag.get_total_count() else None,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "seconds": [
            {
                "second": index,
                "requests": second["requests"],
                "errors": second["errors"],
                "latency_us": _encode(second["latency"]),
            }
            for index, second in sorted(seconds.items())
        ],
    }


def _merged(encodings: Iterable[str | None]) -> HdrHistogram:
    merged = new_histogram()
    for encoded in encodings:
        if encoded:
            merged.add(HdrHistogram.decode(encoded.encode("ascii")))
    return merged


def generator_verdict(
    send_lag_p99_ms: float | None, cpu_utilisations: list[float]
) -> tuple[bool, str | None]:
    """Whether the load generator, not the server, limited the run, and why."""
    busiest = max(cpu_utilisations, default=0.0)
    if send_lag_p99_ms is not None and send_lag_p99_ms > SEND_LAG_LIMIT_MS:
        return True, (
            f"p99 send lag {send_lag_p99_ms:g} ms is over {SEND_LAG_LIMIT_MS:g} ms: requests "
            "left late, so their latencies include the load generator's own delay"
        )
    if busiest >= GENERATOR_CPU_LIMIT:
        return True, (
            f"a load-generator process used {busiest:.0%} of its CPU core: it was the limit, "
            "not the server"
        )
    return False, None


def merge(results: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """The figures of a run from every process's worker_result: summary, errors by kind,
    per-second timeline, and the merged histograms."""
    latency = _merged(r["latency_us"] for r in results)
    lag = _merged(r["send_lag_us"] for r in results)
    requests = sum(r["requests"] for r in results)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    error_count = sum(errors.values())
    completed = sum(r["completed"] for r in results)
    send_lag_p99 = percentile_ms(lag, 99) if lag.get_total_count() else None
    cpu = [r["cpu_s"] / r["wall_s"] for r in results if r["wall_s"] > 0]
    limited, reason = generator_verdict(send_lag_p99, cpu)
    ok = latency.get_total_count()
    summary: dict[str, Any] = {
        "requests": requests,
        "successes": ok,
        "errors": error_count,
        "error_rate": round(error_count / requests, 4) if requests else 0.0,
        "rps": round(completed / duration_s, 2) if duration_s else 0.0,
        "mean_ms": round(latency.get_mean_value() / 1000, 2) if ok else None,
        "max_ms": round(latency.get_max_value() / 1000, 2) if ok else None,
        **{f"p{q}_ms": percentile_ms(latency, q) for q in PERCENTILES},
        "send_lag_p99_ms": send_lag_p99,
        "generator_cpu_max": round(max(cpu), 3) if cpu else None,
        "load_generator_limited": limited,
        "load_generator_limited_reason": reason,
        "processes": len(results),
    }
    return {
        "summary": summary,
        "errors": dict(sorted(errors.items())),
        "timeline": _timeline(results),
        "histograms": {
            "latency_us": _encode(latency),
            "send_lag_us": _encode(lag) if lag.get_total_count() else None,
        },
    }


def _timeline(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-second requests, errors and latency percentiles, every process's seconds added
    (they share the run's clock: all processes start together)."""
    by_second: dict[int, list[dict[str, Any]]] = {}
    for result in results:
        for second in result["seconds"]:
            by_second.setdefault(second["second"], []).append(second)
    last = max(by_second, default=-1)
    timeline = []
    for index in range(last + 1):
        parts = by_second.get(index, [])
        histogram = _merged(part["latency_us"] for part in parts)
        timeline.append(
            {
                "second": index,
                "requests": sum(part["requests"] for part in parts),
                "errors": sum(part["errors"] for part in parts),
                "p50_ms": percentile_ms(histogram, 50),
                "p99_ms": percentile_ms(histogram, 99),
            }
        )
    return timeline
