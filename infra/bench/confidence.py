"""How sure a step's figures are, and whether it meets an objective. Pure.

A step's p99 is an order statistic of its latencies: with n independent samples, a 95%
confidence interval of the q-quantile runs between the latencies at ranks whose binomial
probability leaves 2.5% on each side, whatever the distribution (the Wilson score interval
of q gives those ranks). Latencies of one run are not independent, though: a queue that
backs up delays a whole stretch of requests. On a loopback M/M/4 queue near capacity the
p99 of a 20 s step varies about five times more than independent samples would make it.
So the samples count for less: the measured window is cut into batches (BATCHES in
infra.loadgen.stats), the share of requests over the step's p99 is taken per batch, and
the spread of those shares against a binomial one's gives the effective sample count
(batch means). The interval is read at the effective count, never more than the real one.
The error rate gets its interval the same way.

A step meets the objective with confidence when its whole p99 interval lies at or under
the p99 objective and its error rate is within the limit; it fails with confidence when
the p99 interval lies over the objective or the error rate's interval lies over the limit;
it is undecided otherwise. (An error rate cannot be shown under 1% at 95% confidence on
fewer than about 400 requests even with none: the limit is held to the observed rate, and
only a rate surely over it fails the step.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.loadgen.stats import Cumulative, decode, new_histogram, percentile_ms

Z_95 = 1.959964
QUANTILE = 0.99
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


def wilson(fraction: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial fraction observed over n samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = fraction + z * z / (2 * n)
    spread = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def effective_samples(shares: Sequence[tuple[int, int]], n: int) -> float:
    """The samples a run of n correlated ones is worth, from (hits, count) per batch of the
    indicator the interval is about (batch means); n when the batches cannot tell."""
    batches = [(hits, count) for hits, count in shares if count > 0]
    total = sum(count for _, count in batches)
    if len(batches) < 2 or total == 0:
        return float(n)
    pooled = sum(hits for hits, _ in batches) / total
    if pooled in (0.0, 1.0):
        return float(n)
    fractions = [hits / count for hits, count in batches]
    mean = sum(fractions) / len(fractions)
    variance_of_mean = sum((f - mean) ** 2 for f in fractions) / (
        len(fractions) * (len(fractions) - 1)
    )
    if variance_of_mean <= 0:
        return float(n)
    return min(float(n), pooled * (1 - pooled) / variance_of_mean)


@dataclass(frozen=True)
class Confidence:
    """A step's p99 and error rate with their 95% intervals, over its samples."""

    samples: int  # requests in the measured window
    effective_samples: float  # what they are worth, correlated as they are
    p99_ms: float | None
    p99_low_ms: float | None
    p99_high_ms: float | None
    error_rate: float
    error_rate_low: float
    error_rate_high: float

    def to_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "effective_samples": round(self.effective_samples),
            "p99_ms": self.p99_ms,
            "p99_ci_ms": [self.p99_low_ms, self.p99_high_ms],
            "error_rate": round(self.error_rate, 5),
            "error_rate_ci": [round(self.error_rate_low, 5), round(self.error_rate_high, 5)],
        }


def confidence(batches: Sequence[dict[str, Any]], quantile: float = QUANTILE) -> Confidence:
    """The figures of a measured window from its batches (one run's, or several runs' at
    one rate pooled: their batches side by side)."""
    histograms = [decode(batch["latency_us"]) for batch in batches]
    merged = new_histogram()
    for histogram in histograms:
        merged.add(histogram)
    window = Cumulative(merged)
    successes = merged.get_total_count()
    requests = sum(int(batch["requests"]) for batch in batches)
    errors = sum(int(batch["errors"]) for batch in batches)
    error_rate = errors / requests if requests else 0.0
    error_n = effective_samples([(b["errors"], b["requests"]) for b in batches], requests)
    error_low, error_high = wilson(error_rate, error_n)
    if successes == 0:
        return Confidence(requests, error_n, None, None, None, error_rate, error_low, error_high)
    p99 = percentile_ms(window, quantile * 100)
    assert p99 is not None
    threshold_us = window.value_at_percentile(quantile * 100)
    n_eff = effective_samples(
        [(Cumulative(h).count_above(threshold_us), h.get_total_count()) for h in histograms],
        successes,
    )
    low_rank, high_rank = wilson(quantile, n_eff)
    low = percentile_ms(window, low_rank * 100)
    # Past the last sample the interval is open above: the largest latency seen bounds it.
    high = percentile_ms(window, min(100.0, high_rank * 100))
    return Confidence(
        requests,
        n_eff,
        p99,
        low,
        high,
        error_rate,
        error_low,
        error_high,
    )


def verdict(figures: Confidence, p99_objective_ms: float, max_error_rate: float) -> tuple[str, str]:
    """pass, fail or undecided, and why, from the intervals against the objective."""
    interval = (
        f"p99 {figures.p99_ms} ms (95% {figures.p99_low_ms}-{figures.p99_high_ms}), errors "
        f"{figures.error_rate:.2%} ({figures.error_rate_low:.2%}-{figures.error_rate_high:.2%}), "
        f"{figures.samples} samples worth {figures.effective_samples:.0f}"
    )
    if figures.error_rate_low > max_error_rate:
        return FAIL, f"errors over {max_error_rate:.2%} with confidence: {interval}"
    if figures.p99_low_ms is None or figures.p99_low_ms > p99_objective_ms:
        return FAIL, f"p99 over {p99_objective_ms:g} ms with confidence: {interval}"
    assert figures.p99_high_ms is not None
    if figures.p99_high_ms <= p99_objective_ms and figures.error_rate <= max_error_rate:
        return PASS, f"within the objective with confidence: {interval}"
    return UNDECIDED, f"the interval straddles the objective: {interval}"
