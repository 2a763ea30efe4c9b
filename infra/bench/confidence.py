"""How sure a step's figures are, and whether it meets an objective. Pure.

The p99 of a step is an order statistic of its requests' latencies, where a request that
failed or timed out counts as slower than any latency (it met no objective). With m
independent samples, the distribution-free 95% interval of the q-quantile runs from the
r-th to the s-th smallest sample, r and s read from Binomial(m, q): the count of samples
under the true quantile is that binomial, so P(r <= B < s) >= 95% (2.5% on each side).
When s would lie past the last sample the interval is open above: no latency seen bounds
the quantile, and an open interval never passes an objective.

Latencies of one run are not independent: a queue that backs up delays a whole stretch of
requests, and the requests over a queue's p99 come in clusters. So the samples count for
less: the measured window is cut into batches (BATCHES in infra.loadgen.stats), and the
spread of the batch means against what independent samples would give is the variance
inflation D (batch means). It is taken both for the share of requests over the p99 and for
the mean latency, and the larger is used: the tail's share alone is read from a few
clusters (a calm window shows few and looks independent), while the mean is read from
every sample and sees the same queue. The batch means are themselves an estimate from few
batches, so the effective count m = n / D is scaled by (z / t)^2, Student's t at the
batches' degrees of freedom, as a 95% interval from B batch means needs. The error rate
gets its interval the same way (Wilson, at its own effective count).

scripts/bench_intervals.py measures what this promises: on independent samples and on a
simulated M/M/4 queue at 80-95% load, the share of steps whose interval holds the true p99.

A step meets the objective with confidence when its whole p99 interval lies at or under
the p99 objective (so it is closed above) and its error rate is within the limit; it fails
with confidence when the p99 interval lies over the objective or the error rate's interval
lies over the limit; it is undecided otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.loadgen.stats import Cumulative, decode, new_histogram

Z_95 = 1.959964
ALPHA_SIDE = 0.025  # each side of a two-sided 95% interval
QUANTILE = 0.99
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
# The mean latency's batch means are read against a spread of at least this share of the
# mean (see _mean_inflation).
MEAN_SPREAD_FLOOR = 0.1
# Student's t, 97.5th percentile, by degrees of freedom (standard tables); past 30 the
# Cornish-Fisher expansion below is within 0.01% of them.
_T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_975(degrees_of_freedom: int) -> float:
    """Student's t quantile at 97.5% for the given degrees of freedom."""
    if degrees_of_freedom < 1:
        return math.inf
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    z, v = Z_95, float(degrees_of_freedom)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def wilson(fraction: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial fraction observed over n samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = fraction + z * z / (2 * n)
    spread = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def quantile_ranks(m: int, quantile: float, alpha: float = ALPHA_SIDE) -> tuple[int, int | None]:
    """(r, s): the ranks (1-based, among m independent samples) of the distribution-free
    interval of `quantile`, each side holding with probability at least 1 - alpha; r is 0
    when no sample bounds it below, s None when none bounds it above."""
    if m < 1:
        return 0, None
    log_q, log_p = math.log(quantile), math.log1p(-quantile)
    log_m = math.lgamma(m + 1)
    upper_tail = 0.0  # P(B >= j), summed from j = m down
    s: int | None = None
    for j in range(m, -1, -1):
        upper_tail += math.exp(
            log_m - math.lgamma(j + 1) - math.lgamma(m - j + 1) + j * log_q + (m - j) * log_p
        )
        if s is None and upper_tail > alpha:
            s = j + 1  # the smallest k with P(B >= k) <= alpha
        if upper_tail >= 1 - alpha:
            return j, (s if s is not None and s <= m else None)
    return 0, (s if s is not None and s <= m else None)


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
    variance_of_mean = _variance_of_mean([hits / count for hits, count in batches])
    if variance_of_mean <= 0:
        return float(n)
    return min(float(n), pooled * (1 - pooled) / variance_of_mean)


def _variance_of_mean(means: Sequence[float]) -> float:
    """The variance of the grand mean of batch means, from their spread."""
    centre = sum(means) / len(means)
    return sum((m - centre) ** 2 for m in means) / (len(means) * (len(means) - 1))


def _mean_and_variance_us(window: Cumulative) -> tuple[float, float]:
    """Mean and variance of a histogram's latencies (each value at its bucket's middle)."""
    histogram = window.histogram
    total = int(histogram.get_total_count())
    if total == 0:
        return 0.0, 0.0
    first = 0.0
    second = 0.0
    for index, count in enumerate(histogram.counts[: len(window.running)]):
        if count:
            value = float(histogram._hdr_median_equiv_value(histogram.get_value_from_index(index)))
            first += count * value
            second += count * value * value
    mean = first / total
    return mean, max(0.0, second / total - mean * mean)


def _mean_inflation(windows: Sequence[Cumulative], successes: int) -> float:
    """D of the mean latency (batch means): how much more the batch means spread than
    independent latencies would make them; 1 when they cannot tell."""
    moments = [_mean_and_variance_us(w) for w in windows if w.histogram.get_total_count()]
    if len(moments) < 2 or successes < 2:
        return 1.0
    counts = [int(w.histogram.get_total_count()) for w in windows if w.histogram.get_total_count()]
    mean = sum(c * m for c, (m, _) in zip(counts, moments, strict=True)) / successes
    within = sum(c * (v + (m - mean) ** 2) for c, (m, v) in zip(counts, moments, strict=True))
    # Batch means of a server with tight latencies drift by fractions of a millisecond
    # (timers, the scheduler): as spread, that is no queue, and it makes no slow request.
    variance = max(within / successes, (MEAN_SPREAD_FLOOR * mean) ** 2)
    if variance <= 0:
        return 1.0
    return max(1.0, _variance_of_mean([m for m, _ in moments]) * successes / variance)


@dataclass(frozen=True)
class Confidence:
    """A step's p99 and error rate with their 95% intervals, over its requests.

    p99_ms is None when the p99 falls among failed requests (or there were none);
    p99_low_ms is None when even the interval's low end does; p99_high_ms is None when
    the interval is open above."""

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
            "p99_open_above": self.p99_high_ms is None,
            "error_rate": round(self.error_rate, 5),
            "error_rate_ci": [round(self.error_rate_low, 5), round(self.error_rate_high, 5)],
        }


def _latency_at_rank(window: Cumulative, rank: int) -> float | None:
    """The rank-th smallest latency (1-based) in ms, or None when the rank lies past the
    successes (among the failed requests, which are slower than any latency)."""
    if not window.running or rank > window.running[-1]:
        return None
    return round(window.value_at_count(max(1, rank)) / 1000, 2)


@dataclass(frozen=True)
class _Window:
    """A measured window read for its p99: every request's latency (failed ones past all
    of them), and what its samples are worth."""

    latencies: Cumulative
    requests: int
    errors: int
    n_eff: float
    error_n: float
    p99_ms: float | None


def _window(batches: Sequence[dict[str, Any]], quantile: float) -> _Window:
    histograms = [decode(batch["latency_us"]) for batch in batches]
    merged = new_histogram()
    for histogram in histograms:
        merged.add(histogram)
    window = Cumulative(merged)
    windows = [Cumulative(h) for h in histograms]
    requests = sum(int(batch["requests"]) for batch in batches)
    errors = sum(int(batch["errors"]) for batch in batches)
    used = [b for b in batches if int(b["requests"])]
    # Student's t over the batch means: the effective counts are themselves estimates.
    shrink = (Z_95 / t_975(len(used) - 1)) ** 2 if len(used) > 1 else 1.0
    error_n = effective_samples([(b["errors"], b["requests"]) for b in batches], requests)
    if requests == 0:
        return _Window(window, 0, 0, 0.0, 0.0, None)
    point_rank = math.ceil(quantile * requests)
    p99 = _latency_at_rank(window, point_rank)
    threshold_us = window.value_at_count(point_rank) if p99 is not None else None
    over = [
        (
            (w.count_above(threshold_us) if threshold_us is not None else 0) + int(b["errors"]),
            int(b["requests"]),
        )
        for w, b in zip(windows, batches, strict=True)
    ]
    tail_n = effective_samples(over, requests)
    mean_n = requests / _mean_inflation(windows, int(merged.get_total_count()))
    return _Window(window, requests, errors, min(tail_n, mean_n) * shrink, error_n * shrink, p99)


def _interval(window: _Window, n_eff: float, quantile: float) -> tuple[float | None, float | None]:
    """(low, high) of the quantile's interval over the window's requests read as worth
    n_eff samples: low None when it falls among failed requests, high None when open."""
    m = max(0, math.floor(n_eff))
    low_rank, high_rank = quantile_ranks(m, quantile)
    n = window.requests
    low: float | None = 0.0
    if low_rank:
        low = _latency_at_rank(window.latencies, max(1, math.floor(low_rank * n / m)))
    if high_rank is None:
        return low, None
    return low, _latency_at_rank(window.latencies, math.ceil(high_rank * n / m))


def confidence(batches: Sequence[dict[str, Any]], quantile: float = QUANTILE) -> Confidence:
    """The figures of a measured window from its batches (one run's, or several runs' at
    one rate pooled: their batches side by side)."""
    window = _window(batches, quantile)
    if window.requests == 0:
        return Confidence(0, 0.0, None, None, None, 0.0, 0.0, 1.0)
    error_rate = window.errors / window.requests
    error_low, error_high = wilson(error_rate, window.error_n)
    low, high = _interval(window, window.n_eff, quantile)
    return Confidence(
        window.requests, window.n_eff, window.p99_ms, low, high, error_rate, error_low, error_high
    )


def projected_high_ms(
    batches: Sequence[dict[str, Any]], scale: float, quantile: float = QUANTILE
) -> float | None:
    """The upper end the interval would have with `scale` times as many samples that
    look like these (more runs at the same rate): None while it would still be open or
    fall among failed requests."""
    window = _window(batches, quantile)
    if window.requests == 0:
        return None
    return _interval(window, window.n_eff * scale, quantile)[1]


def verdict(figures: Confidence, p99_objective_ms: float, max_error_rate: float) -> tuple[str, str]:
    """pass, fail or undecided, and why, from the intervals against the objective."""
    interval = (
        f"p99 {_ms(figures.p99_ms)} ms (95% {_ms(figures.p99_low_ms)}-"
        f"{_ms(figures.p99_high_ms, above=True)}), errors {figures.error_rate:.2%} "
        f"({figures.error_rate_low:.2%}-{figures.error_rate_high:.2%}), "
        f"{figures.samples} samples worth {figures.effective_samples:.0f}"
    )
    if figures.error_rate_low > max_error_rate:
        return FAIL, f"errors over {max_error_rate:.2%} with confidence: {interval}"
    if figures.p99_low_ms is None or figures.p99_low_ms > p99_objective_ms:
        return FAIL, f"p99 over {p99_objective_ms:g} ms with confidence: {interval}"
    if figures.p99_high_ms is None:
        return UNDECIDED, f"too few samples to bound the p99 above: {interval}"
    if figures.p99_high_ms <= p99_objective_ms and figures.error_rate <= max_error_rate:
        return PASS, f"within the objective with confidence: {interval}"
    return UNDECIDED, f"the interval straddles the objective: {interval}"


def _ms(value: float | None, above: bool = False) -> str:
    """A latency bound as printed: failed requests (None) are past every latency."""
    if value is None:
        return "open" if above else "failed requests"
    return f"{value:g}"
