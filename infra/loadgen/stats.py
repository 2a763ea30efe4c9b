"""Latency statistics of a load test. Pure.

Each load-generator process reduces what it recorded to counts and HdrHistograms (latency
and send lag in microseconds, 3 significant digits), overall and per second of the run.
Any number of those merge exactly (histograms add; percentiles are read from the merged
histogram, never averaged), so N processes on N machines give the same figures one
process would have, at the histograms' resolution (0.1%).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from hdrh.histogram import HdrHistogram

PERCENTILES = (50, 90, 95, 99)
LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # an hour: anything slower is a timeout anyway
SIGNIFICANT_DIGITS = 3
# A generator keeps up when its requests leave on schedule. Its lag adds to every latency
# it measures, so what matters is the lag beside the objective: 99% of requests must leave
# less late than a tenth of the p99 objective (or than 5 ms, without an objective).
SEND_LAG_LIMIT_MS = 5.0
SEND_LAG_SHARE_OF_OBJECTIVE = 0.1
# Too few lagged samples to judge a p99 of them: not judged.
MIN_LAG_SAMPLES = 100
# One Python process drives its requests on one core; near a full core it cannot go faster.
GENERATOR_CPU_LIMIT = 0.9
# The measured window is cut into this many batches of equal length: the driver's
# confidence intervals (batch means) need their separate counts.
BATCHES = 10


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


class Cumulative:
    """A histogram's running counts, index by index, so that percentiles and counts over a
    value are lookups: HdrHistogram's own walk, in Python, costs milliseconds each."""

    def __init__(self, histogram: HdrHistogram) -> None:
        self.histogram = histogram
        # A decoded histogram may hold fewer counts than its range: the rest are zero.
        held = min(histogram.counts_len, histogram.encoder.payload.counts_len)
        self.running: list[int] = list(accumulate(histogram.counts[:held]))

    def value_at_percentile(self, q: float) -> int:
        """What HdrHistogram's get_value_at_percentile answers, found by bisection."""
        histogram = self.histogram
        index = bisect_left(self.running, histogram.get_target_count_at_percentile(q))
        if index == len(self.running):
            return 0
        value = histogram.get_value_from_index(index)
        if q:
            return int(histogram.get_highest_equivalent_value(value))
        return int(histogram.get_lowest_equivalent_value(value))

    def value_at_count(self, rank: int) -> int:
        """The rank-th smallest recorded value (1-based), at its bucket's highest
        equivalent value, as value_at_percentile reads one."""
        histogram = self.histogram
        index = bisect_left(self.running, max(1, rank))
        if index == len(self.running):
            return 0
        return int(histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)))

    def mean(self) -> float:
        """What HdrHistogram's get_mean_value answers (each value at its range's middle)."""
        histogram = self.histogram
        total = int(histogram.get_total_count())
        if not total:
            return 0.0
        counts = histogram.counts[: len(self.running)]
        weighted = sum(
            count * histogram._hdr_median_equiv_value(histogram.get_value_from_index(index))
            for index, count in enumerate(counts)
            if count
        )
        return float(weighted) / float(total)

    def count_above(self, value: int) -> int:
        """Recorded values not equivalent to `value` and over it."""
        if not self.running:
            return 0
        index = min(int(self.histogram.get_counts_array_index(value)), len(self.running) - 1)
        return self.running[-1] - self.running[index]


def percentile_ms(histogram: HdrHistogram | Cumulative, q: float) -> float | None:
    """The q-th percentile in milliseconds; None when nothing was recorded."""
    cumulative = histogram if isinstance(histogram, Cumulative) else Cumulative(histogram)
    if cumulative.histogram.get_total_count() == 0:
        return None
    return round(float(cumulative.value_at_percentile(q)) / 1000, 2)


def max_send_lag_ms(objective_p99_ms: float | None) -> float:
    """The p99 send lag above which the generator, not the server, is what was measured."""
    if objective_p99_ms is None:
        return SEND_LAG_LIMIT_MS
    return max(SEND_LAG_LIMIT_MS, SEND_LAG_SHARE_OF_OBJECTIVE * objective_p99_ms)


def worker_result(
    samples: list[Sample],
    warmup_s: float,
    duration_s: float,
    cpu_s: float,
    wall_s: float,
    *,
    batches: int = BATCHES,
) -> dict[str, Any]:
    """One process's record of a run, reduced to what merges: counts and encoded histograms.

    Latencies and errors: requests that started (or were due) inside the measured window.
    Completed: successes that *finished* inside it, so an overloaded server shows what it
    served, not what it was offered. `seconds` covers the whole run, warm-up included;
    `batches` the measured window cut in equal parts, for the confidence of its figures.
    """
    end_s = warmup_s + duration_s
    batch_s = duration_s / batches
    window = [{"requests": 0, "errors": 0, "latency": new_histogram()} for _ in range(batches)]
    latency, lag = new_histogram(), new_histogram()
    errors: Counter[str] = Counter()
    requests = completed = 0
    seconds: dict[int, dict[str, Any]] = {}
    for sample in samples:
        if sample.start_s >= end_s:
            continue  # a closed-loop user's request begun as the run ended: not part of it
        second = seconds.get(int(sample.start_s))
        if second is None:  # a histogram is costly to make: one per second, not per sample
            second = {"requests": 0, "errors": 0, "latency": new_histogram()}
            seconds[int(sample.start_s)] = second
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
        batch = window[min(batches - 1, int((sample.start_s - warmup_s) / batch_s))]
        batch["requests"] += 1
        if sample.error is None:
            _record(latency, sample.latency_ms)
            _record(batch["latency"], sample.latency_ms)
        else:
            errors[sample.error] += 1
            batch["errors"] += 1
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
        "batches": [
            {
                "requests": batch["requests"],
                "errors": batch["errors"],
                "latency_us": _encode(batch["latency"]),
            }
            for batch in window
        ],
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
    lag: HdrHistogram, limit_ms: float, results: list[dict[str, Any]]
) -> tuple[bool, str | None]:
    """Whether the load generator, not the server, limited the run, and why: its p99 send
    lag, on enough samples, or its processes' mean wait for a CPU, beside `limit_ms`. The
    reason names the likely cause."""
    # Each time a process waits for a CPU, the answers it is reading wait as well: beside
    # the objective, as the send lag is, a wait that long is the generator's own delay.
    each_ms = cpu_wait_each_ms(results)
    if each_ms is not None and each_ms > limit_ms:
        return True, (
            f"a load-generator process waited {each_ms:g} ms for a CPU each time it needed "
            f"one (over {limit_ms:g} ms; {cpu_wait_share(results):.0%} of the run): its "
            "machine was busy with other work, so its latencies include its own waits. "
            "Run it where nothing else competes for the cores (in the cluster, its own node)."
        )
    if lag.get_total_count() < MIN_LAG_SAMPLES:
        return False, None
    p99 = percentile_ms(lag, 99)
    if p99 is None or p99 <= limit_ms:
        return False, None
    return True, (
        f"p99 send lag {p99:g} ms is over {limit_ms:g} ms: requests left late, so their "
        f"latencies include the load generator's own delay. {_lag_cause(results)}"
    )


def cpu_wait_share(results: list[dict[str, Any]]) -> float | None:
    """The largest share of its run any process waited for a CPU; None where no process's
    kernel said."""
    shares = [
        float(r["cpu_wait_s"]) / float(r["wall_s"])
        for r in results
        if r.get("cpu_wait_s") is not None and r.get("wall_s")
    ]
    return max(shares) if shares else None


def cpu_wait_each_ms(results: list[dict[str, Any]]) -> float | None:
    """The longest mean wait for a CPU, each time a process was given one, in ms."""
    waits = [
        1000 * float(r["cpu_wait_s"]) / int(r["cpu_slices"])
        for r in results
        if r.get("cpu_wait_s") is not None and r.get("cpu_slices")
    ]
    return max(waits) if waits else None


def _lag_cause(results: list[dict[str, Any]]) -> str:
    """What most likely made the generator lag: its processes sharing too few cores, a core
    each kept busy, or the bodies it sends."""
    cores = min((int(r["cores"]) for r in results if r.get("cores")), default=0)
    on_one_machine = all(r.get("host") == results[0].get("host") for r in results)
    busiest = max((r["cpu_s"] / r["wall_s"] for r in results if r["wall_s"] > 0), default=0.0)
    if on_one_machine and cores and len(results) > cores:
        return (
            f"Its {len(results)} processes share {cores} cores on one machine: more processes "
            "make it worse; use fewer, or a machine with more cores (or run in the cluster)."
        )
    if busiest >= GENERATOR_CPU_LIMIT:
        return (
            f"A process kept {busiest:.0%} of its core busy: spread the load over more "
            "processes, each on a core of its own (--processes)."
        )
    body = max((int(r.get("payload_bytes") or 0) for r in results), default=0)
    if body > 100_000:
        return (
            f"Each request carries {body:,} bytes: the machine's network or memory bandwidth "
            "binds; spread the load over more machines (in the cluster, more nodes)."
        )
    return "The machine is busy with other work, or the load needs more processes."


def merge(
    results: list[dict[str, Any]], duration_s: float, send_lag_limit_ms: float = SEND_LAG_LIMIT_MS
) -> dict[str, Any]:
    """The figures of a run from every process's worker_result: summary, errors by kind,
    per-second timeline, the measured window's batches, and the merged histograms."""
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
    limited, reason = generator_verdict(lag, send_lag_limit_ms, results)
    ok = latency.get_total_count()
    latencies = Cumulative(latency)
    summary: dict[str, Any] = {
        "requests": requests,
        "successes": ok,
        "errors": error_count,
        "error_rate": round(error_count / requests, 4) if requests else 0.0,
        "rps": round(completed / duration_s, 2) if duration_s else 0.0,
        "mean_ms": round(latencies.mean() / 1000, 2) if ok else None,
        "max_ms": round(latency.get_max_value() / 1000, 2) if ok else None,
        **{f"p{q}_ms": percentile_ms(latencies, q) for q in PERCENTILES},
        "error_kinds": dict(sorted(errors.items())),
        "send_lag_p99_ms": send_lag_p99,
        "send_lag_limit_ms": send_lag_limit_ms,
        "generator_cpu_max": round(max(cpu), 3) if cpu else None,
        "generator_cpu_wait_max": _rounded(cpu_wait_share(results)),
        "generator_cpu_wait_ms": _rounded(cpu_wait_each_ms(results)),
        "load_generator_limited": limited,
        "load_generator_limited_reason": reason,
        "processes": len(results),
    }
    return {
        "summary": summary,
        "errors": dict(sorted(errors.items())),
        "timeline": _timeline(results),
        "batches": _batches(results),
        "histograms": {
            "latency_us": _encode(latency),
            "send_lag_us": _encode(lag) if lag.get_total_count() else None,
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _batches(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured window's batches, every process's added."""
    count = max((len(r.get("batches") or []) for r in results), default=0)
    merged = []
    for index in range(count):
        parts = [r["batches"][index] for r in results if len(r.get("batches") or []) > index]
        merged.append(
            {
                "requests": sum(part["requests"] for part in parts),
                "errors": sum(part["errors"] for part in parts),
                "latency_us": _encode(_merged(part["latency_us"] for part in parts)),
            }
        )
    return merged


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
