"""Benchmark the capacity search against a server of known capacity, at the sweep's defaults.

The server is a loopback queue of 4 workers with exponential service times of mean 20 ms
(tests/load_servers.py Capacity with `exponential`): under Poisson arrivals an M/M/4
queue, whose highest rate with a p99 response time of 150 ms Erlang C gives exactly
(164.5/s); under a uniform schedule a D/M/4 queue, whose figure a long simulation of the
same queue gives (about 181/s). Each search is the one `sweep` runs per experiment
(infra.sweep.durations.DEFAULT_SEARCH: start rate, windows, step and repeat limits), through
the real load generator in local processes. Printed per search: the capacity claimed, its
range, whether the range holds the truth, the steps and the time; then the bias and spread
of the claims against the truth, and whether every two searches' ranges overlap (the same
experiment measured twice must not name a winner).

Nothing leaves 127.0.0.1. The server shares this machine's cores with the generator.
Run: venv/bin/python scripts/bench_capacity.py [--searches 5] [--arrivals poisson|uniform]
(about 6 minutes a search at the defaults); --quick shortens the windows to 5 s.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.bench.capacity import Objective, find_capacity  # noqa: E402
from infra.bench.fanout import run_local  # noqa: E402
from infra.bench.results import result_document  # noqa: E402
from infra.loadgen.spec import WorkerSpec  # noqa: E402
from infra.loadgen.stats import max_send_lag_ms  # noqa: E402
from infra.sweep.durations import DEFAULT_SEARCH  # noqa: E402
from tests.load_servers import Capacity, rest_server  # noqa: E402

WORKERS = 4
SERVICE_S = 0.020
OBJECTIVE = Objective(p99_ms=150.0, max_error_rate=0.01)


def erlang_c(servers: int, load: float) -> float:
    """The probability that an arrival waits in an M/M/c queue offered `load` erlangs."""
    below = sum(load**k / math.factorial(k) for k in range(servers))
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (below + top)


def mmc_share_over(t_s: float, rate: float, service_s: float = SERVICE_S) -> float:
    """P(response time > t) in M/M/c: no wait and a service over t, or an exponential
    wait (rate c*mu - lambda) plus the service over t."""
    mu = 1 / service_s
    waits = erlang_c(WORKERS, rate / mu)
    theta = WORKERS * mu - rate
    if abs(theta - mu) < 1e-9:
        both = (1 + mu * t_s) * math.exp(-mu * t_s)
    else:
        both = (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return (1 - waits) * math.exp(-mu * t_s) + waits * both


def simulated_p99_s(rate: float, uniform: bool, count: int, seed: int) -> float:
    """The p99 response time of the same FCFS queue, simulated over `count` arrivals."""
    draw = random.Random(seed)
    free_at = [0.0] * WORKERS
    arrival = 0.0
    latencies = []
    for _ in range(count):
        arrival += 1 / rate if uniform else draw.expovariate(rate)
        start = max(arrival, heapq.heappop(free_at))
        done = start + draw.expovariate(1 / SERVICE_S)
        heapq.heappush(free_at, done)
        latencies.append(done - arrival)
    latencies.sort()
    return latencies[int(0.99 * count)]


def true_capacity(arrivals: str, service_s: float = SERVICE_S, overhead_s: float = 0.0) -> float:
    """The highest rate whose p99 meets the objective (bisection on the queue's p99); with
    a measured mean service time and a fixed overhead outside the queue, the capacity of
    the server as it really ran."""
    objective_s = OBJECTIVE.p99_ms / 1000 - overhead_s
    low, high = 1.0, WORKERS / service_s - 1e-6
    for _ in range(40 if arrivals == "poisson" else 18):
        middle = (low + high) / 2
        if arrivals == "poisson":
            meets = mmc_share_over(objective_s, middle, service_s) <= 0.01
        else:
            meets = simulated_p99_s(middle, True, 400_000, 1) <= objective_s
        low, high = (middle, high) if meets else (low, middle)
    return low


def search(
    url: str, arrivals: str, seed: int, warmup_s: float, duration_s: float
) -> dict[str, Any]:
    base = WorkerSpec(
        protocol="rest",
        rest_url=url,
        grpc_target="unused:0",
        model="toy",
        signature="serving_default",
        batch=1,
        mode="open",
        rate=DEFAULT_SEARCH.start_rate,
        users=1,
        duration_s=duration_s,
        warmup_s=warmup_s,
        timeout_s=30.0,
        max_in_flight=2000,
        arrivals=arrivals,
        max_send_lag_ms=max_send_lag_ms(OBJECTIVE.p99_ms),
    )
    runs = {"n": 0}

    def step(rate: float) -> dict[str, Any]:
        runs["n"] += 1
        spec = replace(base, rate=rate, seed=seed * 1000 + runs["n"])
        now = datetime.now(UTC).isoformat()
        return result_document(spec, run_local(spec, 1), {}, now, "local")

    return find_capacity(
        step,
        OBJECTIVE,
        DEFAULT_SEARCH.start_rate,
        max_steps=DEFAULT_SEARCH.max_steps,
        max_repeats=DEFAULT_SEARCH.max_repeats,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--quick", action="store_true", help="5 s windows after 1 s warm-up")
    parser.add_argument("--out", type=Path, help="also write every search's block as JSON")
    args = parser.parse_args()
    warmup_s, duration_s = (
        (1.0, 5.0) if args.quick else (DEFAULT_SEARCH.warmup_s, DEFAULT_SEARCH.duration_s)
    )
    truth = true_capacity(args.arrivals)
    print(
        f"Machine: {os.cpu_count()} cores. Queue: {WORKERS} workers, exponential service of "
        f"{SERVICE_S * 1000:g} ms; {args.arrivals} arrivals; objective "
        f"{OBJECTIVE.describe()}; true capacity {truth:.1f}/s.\nSearch: from "
        f"{DEFAULT_SEARCH.start_rate:g}/s, {warmup_s:g} + {duration_s:g} s windows, at most "
        f"{DEFAULT_SEARCH.max_steps} runs, {DEFAULT_SEARCH.max_repeats} repeats of an "
        "undecided rate.",
        flush=True,
    )
    blocks = []
    claims = []
    calibrated = []
    for index in range(args.searches):
        began = time.monotonic()
        server = Capacity(WORKERS, SERVICE_S, exponential=True, seed=index)
        with rest_server(server) as url:
            block = search(url, args.arrivals, index, warmup_s, duration_s)
        minutes = (time.monotonic() - began) / 60
        # The server as it ran: its slots held longer than the drawn times (sleep overshoot),
        # and HTTP and the client add a fixed delay outside the queue. The first step (20/s,
        # no queue) measures that delay: client mean minus server mean over its requests.
        first = block["steps"][0]["result"]["summary"]
        count = int(first["requests"])
        served_ms = statistics.mean(server.latencies_us[:count]) / 1000
        overhead_s = max(0.0, (first["mean_ms"] - served_ms) / 1000)
        held_s = statistics.mean(server.held_s)
        as_ran = true_capacity(args.arrivals, held_s, overhead_s)
        calibrated.append(as_ran)
        low, high = block["range"]["low"], block["range"]["high"]
        holds = low is not None and low <= truth and (high is None or truth <= high)
        runs = sum(step["runs"] for step in block["steps"])
        rate = block["rate_per_s"]
        if rate is not None:
            claims.append(rate)
        print(
            f"search {index + 1}: mean service {held_s * 1000:.2f} ms, overhead "
            f"{overhead_s * 1000:.2f} ms: capacity as it ran {as_ran:.1f}/s",
            flush=True,
        )
        print(
            f"search {index + 1}: capacity {rate if rate is not None else '-'}/s "
            f"({(rate / truth - 1):+.1%}; {(rate / as_ran - 1):+.1%} of as-ran)  "
            f"range {low}-{high}  "
            f"{'holds' if holds else 'misses'} the nominal truth, "
            f"{'holds' if low <= as_ran and (high is None or as_ran <= high) else 'misses'} "
            f"the as-ran one  {runs} runs in {len(block['steps'])} "
            f"rates, {minutes:.1f} min  ({block['stopped']})"
            if rate is not None
            else f"search {index + 1}: no capacity claimed, range {low}-{high} "
            f"({block['stopped']}), {runs} runs, {minutes:.1f} min",
            flush=True,
        )
        blocks.append(block)
    ranges = [(b["range"]["low"], b["range"]["high"]) for b in blocks]
    overlapping = all(
        a[0] is not None
        and b[0] is not None
        and a[0] <= (b[1] if b[1] is not None else math.inf)
        and b[0] <= (a[1] if a[1] is not None else math.inf)
        for i, a in enumerate(ranges)
        for b in ranges[i + 1 :]
    )
    if claims:
        bias = statistics.mean(claims) / truth - 1
        spread = statistics.stdev(claims) / truth if len(claims) > 1 else 0.0
        ran = statistics.mean(calibrated)
        print(
            f"{len(claims)} of {len(blocks)} searches claimed a capacity: bias {bias:+.1%} "
            f"against the nominal queue, {statistics.mean(claims) / ran - 1:+.1%} against "
            f"the queue as it ran ({ran:.1f}/s); spread (sd) {spread:.1%}; every two ranges "
            f"overlap: {'yes' if overlapping else 'no'}"
        )
    if args.out:
        args.out.write_text(json.dumps({"truth": truth, "searches": blocks}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
