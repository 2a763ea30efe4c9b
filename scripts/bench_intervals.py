"""How often the p99 interval holds the true p99: the coverage of infra.bench.confidence.

Each trial makes one step's latencies with a known true p99, reduces them as a load
generator does (infra.loadgen.stats.worker_result: the measured window in batches) and
reads them as the capacity search does (infra.bench.confidence.confidence). Printed per
case: the share of steps whose interval's upper end is at or over the true p99 (a 95%
two-sided interval promises 97.5%), whose whole interval holds it (95%), and whose
interval is open above (no sample bounds the p99: such a step never passes).

Cases:
- independent: exponential latencies (any continuous distribution gives the same ranks),
  n samples spread over a 20 s window, n from 200 to 5,000;
- queue: an M/M/4 queue with exponential service of 20 ms under Poisson arrivals at 80-95%
  of its 200/s, its true long-run p99 from the queue's response-time distribution; each
  step starts from an empty queue, is warmed up 5 s and measured 20 s, as a capacity
  search's step is (`--stationary`: 20 s windows cut from one long run instead);
- pooled: three, and ten, such steps at one rate pooled, as the search pools an
  undecided rate (about ten, at 75-78% load, is how the search certifies its claims).

Besides the shares, each row gives the median of the upper end over the true p99 among
the steps it bounds: how much the interval gives away to hold what it says.

Run: venv/bin/python scripts/bench_intervals.py [--trials 200] [--stationary]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.bench.confidence import confidence  # noqa: E402
from infra.loadgen.stats import Sample, worker_result  # noqa: E402
from tests import queues  # noqa: E402

WARMUP_S = 5.0
WINDOW_S = 20.0
QUANTILE = 0.99
# (load, runs): pooled cases. The capacity search certifies its claims at 91-95% of the
# queue's capacity under the objective (75-78% load), pooling about ten runs there.
POOLED = ((0.75, 3), (0.80, 3), (0.75, 10), (0.775, 10), (0.80, 10))


def _batches(samples: list[Sample], warmup_s: float) -> list[dict[str, object]]:
    result = worker_result(samples, warmup_s, WINDOW_S, 1.0, warmup_s + WINDOW_S)
    batches: list[dict[str, object]] = result["batches"]
    return batches


Outcome = tuple[bool, bool, bool, float]  # upper holds, whole holds, open, upper / truth


def independent_trial(args: tuple[int, int]) -> Outcome:
    count, seed = args
    draw = random.Random(seed)
    starts = sorted(draw.uniform(0, WINDOW_S) for _ in range(count))
    samples = [Sample(start, draw.expovariate(1.0) * 10) for start in starts]
    truth = -math.log(1 - QUANTILE) * 10
    return _judge(confidence(_batches(samples, 0.0)), truth)


def queue_trial(args: tuple[float, int, int, bool]) -> Outcome:
    rate, seed, pooled, stationary = args
    batches: list[dict[str, object]] = []
    for run in range(pooled):
        if stationary:
            # A window of a queue that has run for minutes: its state is the long run's.
            lead = 300.0
            raw = queues.requests(rate, lead + WINDOW_S, seed * 100 + run)
            samples = [Sample(t - lead, ms) for t, ms in raw if t >= lead]
            batches += _batches(samples, 0.0)
        else:
            raw = queues.requests(rate, WARMUP_S + WINDOW_S, seed * 100 + run)
            batches += _batches([Sample(t, ms) for t, ms in raw], WARMUP_S)
    return _judge(confidence(batches), queues.p99_ms(rate))


def _judge(figures: object, truth_ms: float) -> Outcome:
    low = getattr(figures, "p99_low_ms")  # noqa: B009
    high = getattr(figures, "p99_high_ms")  # noqa: B009
    upper = high is None or high >= truth_ms
    whole = upper and low is not None and low <= truth_ms
    return upper, whole, high is None, math.inf if high is None else high / truth_ms


def _row(label: str, outcomes: list[Outcome]) -> str:
    n = len(outcomes)
    upper = sum(o[0] for o in outcomes) / n
    whole = sum(o[1] for o in outcomes) / n
    open_ = sum(o[2] for o in outcomes) / n
    bounded = [o[3] for o in outcomes if not o[2]]
    slack = f"{statistics.median(bounded):.2f}" if bounded else "-"
    return f"| {label} | {n} | {upper:.1%} | {whole:.1%} | {open_:.1%} | {slack} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="steps per case")
    parser.add_argument("--stationary", action="store_true", help="queue windows of a long run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.trials < 1:
        parser.error(f"--trials {args.trials}: give a whole number of steps per case from 1")
    print(
        "| case | steps | upper end holds | whole interval holds | open above "
        "| upper end / true p99 (median) |"
    )
    print("|---|---|---|---|---|---|")
    with ProcessPoolExecutor() as pool:
        for count in (200, 300, 600, 1200, 2400, 5000):
            trials = [(count, args.seed * 1_000_000 + count * 1000 + i) for i in range(args.trials)]
            print(_row(f"independent, n={count}", list(pool.map(independent_trial, trials))))
        mode = "stationary" if args.stationary else "step"
        for load in (0.80, 0.85, 0.90, 0.95):
            rate = load * queues.WORKERS / queues.SERVICE_S
            trials_q = [
                (rate, args.seed * 10_000 + i, 1, args.stationary) for i in range(args.trials)
            ]
            label = f"M/M/4 {load:.0%} load ({rate:g}/s), {mode}, p99 {queues.p99_ms(rate):.0f} ms"
            print(_row(label, list(pool.map(queue_trial, trials_q))), flush=True)
        for load, runs in POOLED:
            rate = load * queues.WORKERS / queues.SERVICE_S
            trials_p = [
                (rate, args.seed * 20_000 + runs * 1000 + i, runs, args.stationary)
                for i in range(args.trials)
            ]
            label = f"M/M/4 {load:.1%} load ({rate:g}/s), {runs} {mode} windows pooled"
            print(_row(label, list(pool.map(queue_trial, trials_p))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
