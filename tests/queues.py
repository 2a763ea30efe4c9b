"""An M/M/c queue of known truth, for checking the statistics and the capacity search
against it: its response-time distribution (Erlang C), its p99 and capacity under a p99
objective, and a seeded simulation of its requests as a load generator records them."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from infra.loadgen.stats import Sample, merge, worker_result

WORKERS = 4
SERVICE_S = 0.020


def erlang_c(servers: int, load: float) -> float:
    """The probability that an arrival waits in an M/M/c queue offered `load` erlangs."""
    below = sum(load**k / math.factorial(k) for k in range(servers))
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (below + top)


def share_over(
    t_s: float, rate: float, service_s: float = SERVICE_S, workers: int = WORKERS
) -> float:
    """P(response time > t) in M/M/c: no wait and a service over t, or an exponential wait
    (rate c*mu - lambda) plus the service over t."""
    mu = 1 / service_s
    waits = erlang_c(workers, rate / mu)
    theta = workers * mu - rate
    if abs(theta - mu) < 1e-9:  # the wait and the service at one rate: an Erlang-2 tail
        both = (1 + mu * t_s) * math.exp(-mu * t_s)
    else:
        both = (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return (1 - waits) * math.exp(-mu * t_s) + waits * both


def p99_ms(rate: float, service_s: float = SERVICE_S, quantile: float = 0.99) -> float:
    """The queue's true long-run quantile of response time at `rate`, by bisection."""
    low, high = 0.0, 600.0
    for _ in range(90):
        middle = (low + high) / 2
        over = share_over(middle, rate, service_s) > 1 - quantile
        low, high = (middle, high) if over else (low, middle)
    return high * 1000


def capacity(objective_ms: float, service_s: float = SERVICE_S, overhead_s: float = 0.0) -> float:
    """The highest Poisson rate whose p99 response time (plus a fixed overhead outside the
    queue) meets the objective."""
    objective_s = objective_ms / 1000 - overhead_s
    low, high = 1e-6, WORKERS / service_s - 1e-6
    for _ in range(60):
        middle = (low + high) / 2
        meets = share_over(objective_s, middle, service_s) <= 0.01
        low, high = (middle, high) if meets else (low, middle)
    return low


def requests(rate: float, seconds: float, seed: int) -> Iterator[tuple[float, float]]:
    """(arrival s, response ms) of a FCFS M/M/c queue that starts empty, Poisson arrivals."""
    draw = random.Random(seed)
    free_at = [0.0] * WORKERS
    arrival = 0.0
    while True:
        arrival += draw.expovariate(rate)
        if arrival >= seconds:
            return
        start = max(arrival, heapq.heappop(free_at))
        done = start + draw.expovariate(1 / SERVICE_S)
        heapq.heappush(free_at, done)
        yield arrival, (done - arrival) * 1000


def step_document(rate: float, seed: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """One capacity-search step against the simulated queue, started empty, warmed up and
    measured as a run is: its results document through the load generator's statistics."""
    samples = [Sample(t, ms) for t, ms in requests(rate, warmup_s + duration_s, seed)]
    result = worker_result(samples, warmup_s, duration_s, 1.0, warmup_s + duration_s)
    document = merge([result], duration_s)
    return {**document, "settings": {"protocol": "rest", "mode": "open", "seed": seed}}


def simulated_capacity(
    objective_ms: float, services_s: Sequence[float], overhead_s: float = 0.0, seed: int = 0
) -> float:
    """The highest Poisson rate at which a FCFS queue of WORKERS servers, serving its
    requests in the given times one after another, answers 99% of them within the
    objective less a fixed overhead outside the queue, by simulation. Every rate tried
    replays the same arrival draws scaled to the rate, so the p99 grows with the rate and
    bisection holds."""
    draw = random.Random(seed)
    gaps = [draw.expovariate(1.0) for _ in services_s]
    objective_s = objective_ms / 1000 - overhead_s
    allowed = int(0.01 * len(services_s))
    low, high = 1e-6, WORKERS * len(services_s) / sum(services_s)
    for _ in range(30):
        middle = (low + high) / 2
        free_at = [0.0] * WORKERS
        arrival = 0.0
        over = 0
        for gap, service in zip(gaps, services_s, strict=True):
            arrival += gap / middle
            done = max(arrival, heapq.heappop(free_at)) + service
            heapq.heappush(free_at, done)
            over += done - arrival > objective_s
        low, high = (middle, high) if over <= allowed else (low, middle)
    return low


def shape_factor(
    objective_ms: float,
    held_s: Sequence[float],
    overhead_s: float = 0.0,
    count: int = 600_000,
    seed: int = 0,
) -> float:
    """How much a server's capacity under a p99 objective differs from an M/M/c queue's of
    the same mean service because its service times are distributed as `held_s` (as a
    server really held its slots) instead of exponentially: the ratio of the two simulated
    capacities, each request's two service times drawn from one uniform (the same rank in
    either distribution), so the simulations' noise cancels in the ratio."""
    draw = random.Random(seed)
    ordered = sorted(held_s)
    mean = sum(ordered) / len(ordered)
    ranks = [draw.random() for _ in range(count)]
    held = [ordered[min(len(ordered) - 1, int(u * len(ordered)))] for u in ranks]
    exponential = [-mean * math.log1p(-u) for u in ranks]
    return simulated_capacity(objective_ms, held, overhead_s, seed) / simulated_capacity(
        objective_ms, exponential, overhead_s, seed
    )
