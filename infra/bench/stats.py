"""Latency statistics of a load test, from every recorded request. Pure."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Sample:
    """One request: when it was due (s, on the run's clock), its latency, its error kind."""

    start_s: float
    latency_ms: float
    error: str | None = None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (the value below which q% of them fall)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(value: float) -> float | None:
    """Milliseconds rounded for JSON; None (null) when there was nothing to measure."""
    return None if math.isnan(value) else round(value, 2)


def summarise(samples: list[Sample], warmup_s: float, duration_s: float) -> dict[str, Any]:
    """Totals, throughput and percentiles of the samples after the warm-up.

    Latencies and errors: requests that started (or were due) inside the measured window.
    Throughput: successful requests that *finished* inside it, per second, so an
    overloaded server shows what it served, not what it was offered.
    """
    end_s = warmup_s + duration_s
    measured = [s for s in samples if warmup_s <= s.start_s < end_s]
    completed = sum(
        1
        for s in samples
        if s.error is None and warmup_s <= s.start_s + s.latency_ms / 1000 < end_s
    )
    ok = sorted(s.latency_ms for s in measured if s.error is None)
    errors = Counter(s.error for s in measured if s.error is not None)
    summary: dict[str, Any] = {
        "requests": len(measured),
        "successes": len(ok),
        "errors": sum(errors.values()),
        "error_rate": round(sum(errors.values()) / len(measured), 4) if measured else 0.0,
        "rps": round(completed / duration_s, 2) if duration_s else 0.0,
        "mean_ms": _ms(sum(ok) / len(ok)) if ok else None,
        "max_ms": _ms(ok[-1]) if ok else None,
    }
    for q in PERCENTILES:
        summary[f"p{q}_ms"] = _ms(percentile(ok, q))
    return {"summary": summary, "errors": dict(sorted(errors.items()))}


def timeline(samples: list[Sample], total_s: float) -> list[dict[str, Any]]:
    """Per-second requests, errors and latency percentiles over the whole run."""
    seconds = []
    for second in range(math.ceil(total_s)):
        inside = [s for s in samples if second <= s.start_s < second + 1]
        ok = sorted(s.latency_ms for s in inside if s.error is None)
        seconds.append(
            {
                "second": second,
                "requests": len(inside),
                "errors": sum(1 for s in inside if s.error is not None),
                "p50_ms": _ms(percentile(ok, 50)),
                "p99_ms": _ms(percentile(ok, 99)),
            }
        )
    return seconds
