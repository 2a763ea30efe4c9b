"""Benchmark the capacity search against a server of known capacity, at the sweep's defaults.

The server is a queue of 4 workers with exponential service times of mean 20 ms under
Poisson arrivals: an M/M/4 queue, whose highest rate with a p99 response time of 150 ms
Erlang C gives exactly (164.5/s; tests/queues.py). Each search is the one `sweep` runs per
experiment (infra.sweep.durations.DEFAULT_SEARCH: start rate, windows, run and repeat
limits, each run's arrivals seeded apart).

- Loopback (default): the queue is a real HTTP server on 127.0.0.1 (tests/load_servers.py
  Capacity, first come first served, as Erlang C's queue is), loaded by the real load
  generator in a local process. The server as it ran
  holds each slot a little longer than drawn (its times are recorded and their
  distribution, not only their mean, sets the truth) and HTTP adds a fixed delay outside the
  queue; both are measured (the delay at the first, queue-free step) and give the
  capacity of the server as it really ran, the truth the claims are held to.
  `--busy N` runs N processes spinning a core each beside the load generator: each search
  must then stay in the band or say that its load generator was the limit.
- `--simulated`: the same queue simulated (tests/queues.py), its requests read through
  the load generator's own statistics: many searches in seconds, the truth exact.

Printed per search: the capacity claimed against the truth, its range, whether the range
holds the truth, the runs and the time; then the bias and spread of the claims, the share
within -6%..+1% of the truth, and whether every two searches' ranges overlap (the same
server measured twice must not name a winner).

Nothing leaves 127.0.0.1.
Run: venv/bin/python scripts/bench_capacity.py [--searches 5] [--busy 1] [--simulated] [--trail]
(a loopback search takes 6-12 minutes at the defaults).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.bench.capacity import Objective, find_capacity  # noqa: E402
from infra.bench.session import local_runs, run_once  # noqa: E402
from infra.loadgen.spec import WorkerSpec  # noqa: E402
from infra.loadgen.stats import max_send_lag_ms  # noqa: E402
from infra.sweep.durations import DEFAULT_SEARCH  # noqa: E402
from tests import queues  # noqa: E402
from tests.load_servers import Capacity, rest_server  # noqa: E402

OBJECTIVE = Objective(p99_ms=150.0, max_error_rate=0.01)
BAND = (-0.06, 0.01)


def _spin() -> None:
    while True:
        pass


def loopback_search(url: str, seed: int) -> dict[str, Any]:
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
        duration_s=DEFAULT_SEARCH.duration_s,
        warmup_s=DEFAULT_SEARCH.warmup_s,
        timeout_s=30.0,
        max_in_flight=2000,
        arrivals="poisson",
        max_send_lag_ms=max_send_lag_ms(OBJECTIVE.p99_ms),
    )
    runs = {"n": 0}
    generator = local_runs(1)

    def step(rate: float) -> dict[str, Any]:
        runs["n"] += 1
        spec = replace(base, rate=rate, seed=seed * 1000 + runs["n"])
        # As `bench --local` runs it: a run the generator limited is run again once.
        return run_once(generator, spec, {})

    return _search(step)


def simulated_search(seed: int) -> dict[str, Any]:
    runs = {"n": 0}

    def step(rate: float) -> dict[str, Any]:
        runs["n"] += 1
        return queues.step_document(
            rate, seed * 1000 + runs["n"], DEFAULT_SEARCH.warmup_s, DEFAULT_SEARCH.duration_s
        )

    return _search(step)


def _search(step: Any) -> dict[str, Any]:
    return find_capacity(
        step,
        OBJECTIVE,
        DEFAULT_SEARCH.start_rate,
        max_steps=DEFAULT_SEARCH.max_steps,
        max_repeats=DEFAULT_SEARCH.max_repeats,
    )


def as_ran(server: Capacity, block: dict[str, Any]) -> float:
    """The capacity of the loopback server as it really ran: its slots held longer than the
    drawn times (sleep overshoot, and more so beside busy processes), and HTTP and the
    client add a fixed delay outside the queue, measured at the first step (no queue):
    client mean less server mean. Erlang C at the mean time a slot was held, scaled by how
    the held times' distribution moves a simulated queue's capacity against exponential
    times of that mean (tests/queues.py shape_factor): a server whose slots are sometimes
    held much longer (a busy machine's scheduler) serves less under a p99 objective."""
    first = block["steps"][0]["result"]["summary"]
    count = int(first["requests"])
    served_ms = statistics.mean(server.latencies_us[:count]) / 1000
    overhead_s = max(0.0, (first["mean_ms"] - served_ms) / 1000)
    held_s = statistics.mean(server.held_s)
    shape = queues.shape_factor(OBJECTIVE.p99_ms, server.held_s, overhead_s)
    print(
        f"  mean service {held_s * 1000:.2f} ms, overhead {overhead_s * 1000:.2f} ms, "
        f"service times as held x{shape:.3f} of an exponential's capacity",
        flush=True,
    )
    return queues.capacity(OBJECTIVE.p99_ms, held_s, overhead_s) * shape


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--simulated", action="store_true", help="the queue simulated")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning beside it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write every search's block as JSON")
    parser.add_argument(
        "--trail",
        action="store_true",
        help="print every rate each search tried (in the order first tried) with all its runs",
    )
    args = parser.parse_args()
    if args.searches < 1 or args.busy < 0:
        parser.error("--searches takes a whole number from 1, --busy one from 0")
    if args.out and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: the folder {args.out.parent} does not exist")
    nominal = queues.capacity(OBJECTIVE.p99_ms)
    print(
        f"Machine: {os.cpu_count()} cores, {args.busy} busy processes beside the generator. "
        f"Queue: {queues.WORKERS} workers, exponential service of "
        f"{queues.SERVICE_S * 1000:g} ms, Poisson arrivals, "
        f"{'simulated' if args.simulated else 'on 127.0.0.1'}; objective "
        f"{OBJECTIVE.describe()}; nominal capacity {nominal:.1f}/s.\nSearch: from "
        f"{DEFAULT_SEARCH.start_rate:g}/s, {DEFAULT_SEARCH.warmup_s:g} + "
        f"{DEFAULT_SEARCH.duration_s:g} s windows, at most {DEFAULT_SEARCH.max_steps} runs, "
        f"{DEFAULT_SEARCH.max_repeats} repeats at a rate.",
        flush=True,
    )
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    outcomes: list[dict[str, Any]] = []
    try:
        for index in range(args.searches):
            seed = args.seed * 1000 + index
            began = time.monotonic()
            if args.simulated:
                block, truth = simulated_search(seed), nominal
            else:
                server = Capacity(queues.WORKERS, queues.SERVICE_S, exponential=True, seed=seed)
                with rest_server(server) as url:
                    block = loopback_search(url, seed)
                truth = as_ran(server, block)
            outcomes.append(_report(index, block, truth, nominal, time.monotonic() - began))
            if args.trail:
                _trail(block, truth)
            if args.out:  # after every search: a long run stopped half-way keeps what it did
                args.out.write_text(json.dumps(outcomes, indent=1))
    finally:
        for spinner in spinners:
            spinner.terminate()
    _summary(outcomes)
    return 0


def _report(
    index: int, block: dict[str, Any], truth: float, nominal: float, seconds: float
) -> dict[str, Any]:
    low, high = block["range"]["low"], block["range"]["high"]
    holds = low is not None and low <= truth and (high is None or truth <= high)
    rate = block["rate_per_s"]
    limited = any(step["verdict"] in ("limited", "unbalanced") for step in block["steps"])
    claim = (
        f"capacity {rate:g}/s ({rate / truth - 1:+.1%} of the truth {truth:.1f}/s, "
        f"{rate / nominal - 1:+.1%} of nominal)"
        if rate is not None
        else f"no capacity claimed (truth {truth:.1f}/s)"
    )
    print(
        f"search {index + 1}: {claim}; range {low}-{high if high is not None else 'open'} "
        f"{'holds' if holds else 'misses'} the truth; {block['runs']} runs over "
        f"{len(block['steps'])} rates, {seconds / 60:.1f} min; "
        f"{'LIMITED: ' if limited else ''}{block['stopped']}",
        flush=True,
    )
    return {"block": block, "truth": truth, "claim": rate, "limited": limited, "holds": holds}


def _trail(block: dict[str, Any], truth: float) -> None:
    """Each rate a search tried, in the order first tried: the rate against the truth, the
    verdict on all its runs pooled, and their p99 with its interval."""
    for step in block["steps"]:
        figures = step.get("confidence") or {}
        low, high = figures.get("p99_ci_ms") or (None, None)
        print(
            f"    {step['rate_per_s']:8.2f}/s ({step['rate_per_s'] / truth - 1:+6.1%}) "
            f"{step['verdict']:10} runs {step['runs']:2}, p99 {figures.get('p99_ms')} ms "
            f"[{low}, {'open' if high is None else high}]"
            f"{'' if step['met_on_point'] else ', over on its point estimates'}",
            flush=True,
        )


def _summary(outcomes: list[dict[str, Any]]) -> None:
    errors = [o["claim"] / o["truth"] - 1 for o in outcomes if o["claim"] is not None]
    in_band = sum(BAND[0] <= e <= BAND[1] for e in errors)
    flagged = sum(
        o["limited"]
        for o in outcomes
        if o["claim"] is None or not BAND[0] <= o["claim"] / o["truth"] - 1 <= BAND[1]
    )
    ranges = [(o["block"]["range"]["low"], o["block"]["range"]["high"]) for o in outcomes]
    overlapping = all(
        a[0] is not None
        and b[0] is not None
        and a[0] <= (b[1] if b[1] is not None else math.inf)
        and b[0] <= (a[1] if a[1] is not None else math.inf)
        for i, a in enumerate(ranges)
        for b in ranges[i + 1 :]
    )
    if errors:
        print(
            f"{len(errors)} of {len(outcomes)} searches claimed a capacity: median "
            f"{statistics.median(errors):+.1%}, from {min(errors):+.1%} to {max(errors):+.1%} "
            f"of the truth; {in_band} within {BAND[0]:+.0%}..{BAND[1]:+.0%}; outside it and "
            f"flagged limited: {flagged}; ranges holding the truth: "
            f"{sum(o['holds'] for o in outcomes)}; every two ranges overlap: "
            f"{'yes' if overlapping else 'no'}"
        )
    else:
        print(f"no search of {len(outcomes)} claimed a capacity")


if __name__ == "__main__":
    sys.exit(main())
