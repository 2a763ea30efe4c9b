"""The p99 interval and the step's verdict, held to a known truth: exact binomial ranks,
open intervals, failed requests counted as slow, and coverage by simulation on independent
samples and on a queue's correlated ones."""

from __future__ import annotations

import math
import random
import threading
import time
from fractions import Fraction
from typing import Any

import pytest

from infra.bench.confidence import (
    FAIL,
    PASS,
    UNDECIDED,
    confidence,
    projected_high_ms,
    quantile_ranks,
    t_975,
    verdict,
)
from infra.loadgen.stats import Sample, worker_result
from tests import queues
from tests.load_servers import Capacity


def binomial_cdf(k: int, m: int, q: float) -> float:
    """P(B <= k) for B ~ Binomial(m, q), summed in exact rational arithmetic."""
    p = Fraction(q).limit_denominator(10_000)
    return float(sum(math.comb(m, j) * p**j * (1 - p) ** (m - j) for j in range(k + 1)))


@pytest.mark.parametrize("m", [368, 500, 1000, 2400])
def test_the_interval_ranks_are_binomial_quantiles(m: int) -> None:
    low, high = quantile_ranks(m, 0.99)
    assert high is not None
    # The upper end: the smallest rank s with P(B <= s - 1) >= 97.5%.
    assert binomial_cdf(high - 1, m, 0.99) >= 0.975 > binomial_cdf(high - 2, m, 0.99)
    # The lower end: the largest rank r with P(B <= r - 1) <= 2.5%.
    assert binomial_cdf(low - 1, m, 0.99) <= 0.025 < binomial_cdf(low, m, 0.99)


def test_with_too_few_samples_the_interval_is_open_above() -> None:
    # 0.99^367 > 2.5%: even the largest of 367 samples may lie under the true p99.
    assert quantile_ranks(367, 0.99)[1] is None
    assert quantile_ranks(368, 0.99)[1] == 368


def test_student_t_quantiles() -> None:
    assert t_975(9) == pytest.approx(2.2622, abs=1e-4)
    assert t_975(40) == pytest.approx(2.0211, abs=2e-4)
    assert t_975(120) == pytest.approx(1.9799, abs=2e-4)


def batches(latencies_ms: list[float], errors: int = 0, seconds: float = 20.0) -> Any:
    """One run's measured window, its latencies spread evenly over it, and `errors`
    failed requests among them."""
    count = len(latencies_ms) + errors
    every = count // errors if errors else 0
    latencies = iter(latencies_ms)
    samples = [
        Sample(i * seconds / count, 30_000.0, "timeout")
        if every and i % every == every - 1 and i < every * errors
        else Sample(i * seconds / count, next(latencies))
        for i in range(count)
    ]
    return worker_result(samples, 0.0, seconds, 1.0, seconds)["batches"]


def exponential(count: int, p99_ms: float, seed: int) -> list[float]:
    draw = random.Random(seed)
    return [draw.expovariate(math.log(100) / p99_ms) for _ in range(count)]


def test_an_open_interval_never_passes_however_small_the_latencies() -> None:
    figures = confidence(batches([5.0 + i / 1000 for i in range(200)]))
    assert figures.p99_high_ms is None and figures.p99_ms is not None
    kind, why = verdict(figures, 100, 0.01)
    assert kind == UNDECIDED and "too few samples to bound the p99 above" in why
    assert confidence(batches([5.0] * 200)).to_json()["p99_open_above"] is True


def test_failed_requests_count_against_the_latency_objective() -> None:
    fast = exponential(5000, 50, seed=1)
    assert verdict(confidence(batches(fast)), 100, 0.01)[0] == PASS
    # 0.9% of the requests time out: under the error limit, but with them the p99 is
    # within reach of requests slower than any objective.
    slow = confidence(batches(fast[: 5000 - 45], errors=45))
    assert slow.error_rate == pytest.approx(0.009)
    assert slow.p99_high_ms is None  # the upper rank falls among the failed requests
    assert verdict(slow, 100, 0.01)[0] != PASS
    # 2% failed: the p99 itself is a failed request, slower than any objective.
    failing = confidence(batches(fast[: 5000 - 100], errors=100))
    assert failing.p99_ms is None and failing.p99_low_ms is None
    assert verdict(failing, 100, 0.01)[0] == FAIL


def coverage(windows: list[Any], truth_ms: float) -> tuple[float, float]:
    upper = whole = 0
    for window in windows:
        figures = confidence(window)
        holds_above = figures.p99_high_ms is None or figures.p99_high_ms >= truth_ms
        upper += holds_above
        whole += holds_above and figures.p99_low_ms is not None and figures.p99_low_ms <= truth_ms
    return upper / len(windows), whole / len(windows)


@pytest.mark.parametrize("count", [300, 1200, 3000])
def test_the_interval_holds_the_true_p99_of_independent_samples(count: int) -> None:
    truth = 100.0
    windows = [batches(exponential(count, truth, seed)) for seed in range(100)]
    upper, whole = coverage(windows, truth)
    assert upper >= 0.97 and whole >= 0.94


@pytest.mark.parametrize("load", [0.80, 0.90])
def test_the_interval_holds_the_long_run_p99_of_a_queue(load: float) -> None:
    # An M/M/4 queue's requests are correlated: the slow ones come in bursts.
    rate = load * queues.WORKERS / queues.SERVICE_S
    windows = [queues.step_document(rate, seed, 5.0, 20.0)["batches"] for seed in range(50)]
    upper, _ = coverage(windows, queues.p99_ms(rate))
    assert upper >= 0.95


def test_a_queue_at_its_capacity_is_rarely_passed_even_on_pooled_runs() -> None:
    # At the rate whose true p99 is the objective, a pass is a false claim: at most 2.5%
    # of the time, and here three runs are pooled as the search pools them.
    rate = queues.capacity(150.0)
    passes = 0
    for seed in range(25):
        pooled = [
            batch
            for run in range(3)
            for batch in queues.step_document(rate, seed * 10 + run, 5.0, 20.0)["batches"]
        ]
        passes += verdict(confidence(pooled), 150.0, 0.01)[0] == PASS
    assert passes <= 1


def test_the_projection_of_more_runs_narrows_the_interval_as_more_samples_would() -> None:
    window = batches(exponential(300, 60.0, seed=3))
    figures = confidence(window)
    assert figures.p99_high_ms is None  # 300 samples cannot bound a p99
    assert projected_high_ms(window, 1.0) is None  # the same samples: the same interval
    four_times = projected_high_ms(window, 4.0)  # 1,200 samples that look like these
    assert four_times is not None and four_times <= max(exponential(300, 60.0, seed=3)) + 0.1
    many = projected_high_ms(window, 20.0)
    assert many is not None and many <= four_times


def test_the_benchmarks_queue_truth_follows_the_service_times_as_held() -> None:
    """scripts/bench_capacity.py holds its claims to the server as it ran: a simulation of
    the recorded service times agrees with Erlang C when they are exponential, and gives a
    server whose slots are sometimes held three times longer less capacity."""
    draw = random.Random(3)
    exponential = [draw.expovariate(1 / queues.SERVICE_S) for _ in range(5_000)]
    simulated = queues.simulated_capacity(
        150.0, [draw.choice(exponential) for _ in range(150_000)], seed=1
    )
    assert simulated == pytest.approx(queues.capacity(150.0), rel=0.03)
    assert queues.shape_factor(150.0, exponential, count=100_000) == pytest.approx(1, abs=0.005)
    stalled = [s * 3 if draw.random() < 0.05 else s for s in exponential]
    assert queues.shape_factor(150.0, stalled, count=100_000) < 0.995


def test_the_benchmarks_loopback_queue_serves_first_come_first_served() -> None:
    """The loopback server is the M/M/c queue whose truth Erlang C gives only if it serves
    in arrival order: a slot that frees goes to the request that has waited, not to one
    that arrives at that moment (a semaphore gives it to whichever thread runs first, and
    the woken waiter then queues again behind everyone)."""
    slots = Capacity(1, 0.0).slots
    slots.acquire()
    served: list[str] = []

    def waiter() -> None:
        slots.acquire()
        served.append("waited")
        time.sleep(0.05)
        slots.release()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)  # it waits for the slot
    slots.release()
    slots.acquire()  # arrives as the slot frees, while the waiter is still asleep
    served.append("arrived")
    slots.release()
    thread.join(timeout=5)
    assert served == ["waited", "arrived"]
