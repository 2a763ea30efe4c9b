"""Benchmark the load generator itself (the issue's two figures), on this machine only.

1. One load-generator process: the highest open-loop rate it holds with a p99 send lag
   under 5 ms (stats.SEND_LAG_LIMIT_MS), for a small body (a 4x4x3 float image) and the
   reference model's body (224x224x3 floats: about 1.3 MB of REST JSON, 0.6 MB of gRPC
   tensor), REST and gRPC. Found by the capacity search's ramp and bisection, on send lag.
2. N processes, each offered the same 1000 requests/s (small REST body): the merged
   throughput against N x one process, and what limited it (the generators lag when they
   are the limit; the server's latency rises when it is).

Servers are the loopback stand-ins of tests/load_servers.py with no service time (they
answer at once; large REST bodies are read, not decoded), in this process's threads, so
they share the machine's cores with the generators: the figures say so. Prints a table;
nothing leaves 127.0.0.1. Run: venv/bin/python scripts/bench_loadgen.py [--quick].
"""

from __future__ import annotations

import argparse
import os
import sys
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
from infra.loadgen.stats import SEND_LAG_LIMIT_MS  # noqa: E402
from tests.load_servers import Capacity, grpc_server, metadata, rest_server  # noqa: E402

BODIES = {"small": (-1, 4, 4, 3), "reference": (-1, 224, 224, 3)}
START_RATE = {"small": 1000.0, "reference": 100.0}
PER_PROCESS_RATE = 1000.0


def spec(protocol: str, url: str, target: str, rate: float, duration_s: float) -> WorkerSpec:
    return WorkerSpec(
        protocol=protocol,
        rest_url=url,
        grpc_target=target,
        model="toy",
        signature="serving_default",
        batch=1,
        mode="open",
        rate=rate,
        users=1,
        duration_s=duration_s,
        warmup_s=1.0,
        timeout_s=30.0,
        max_in_flight=2000,
    )


def run(base: WorkerSpec, processes: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return result_document(base, run_local(base, processes), {}, now, "local")


def on_lag(documents: list[dict[str, Any]]) -> tuple[str, str]:
    lag = documents[-1]["summary"]["send_lag_p99_ms"]
    verdict = "pass" if lag is not None and lag <= SEND_LAG_LIMIT_MS else "fail"
    return verdict, f"p99 send lag {lag} ms"


def one_process(duration_s: float, steps: int) -> None:
    for body, shape in BODIES.items():
        with (
            rest_server(
                Capacity(512, 0.0), model_metadata=metadata(shape), parse_bodies=False
            ) as url,
            grpc_server(Capacity(512, 0.0)) as target,
        ):
            for protocol in ("rest", "grpc"):
                base = spec(protocol, url, target, START_RATE[body], duration_s)

                def step(rate: float, base: WorkerSpec = base) -> dict[str, Any]:
                    return run(replace(base, rate=rate), 1)

                search = find_capacity(
                    step,
                    Objective(0, 1.0),
                    START_RATE[body],
                    max_steps=steps,
                    judge_runs=on_lag,
                )
                best = (
                    search["steps"][search["step"]]["result"]
                    if search["step"] is not None
                    else None
                )
                summary = best["summary"] if best else {}
                print(
                    f"{body:<10} {protocol:<5} {search['rate_per_s']!s:>9}/s  "
                    f"body {best['settings']['payload_bytes'] if best else '-':>9} B  "
                    f"lag p99 {summary.get('send_lag_p99_ms')} ms  "
                    f"CPU {summary.get('generator_cpu_max')}  ({search['stopped']})",
                    flush=True,
                )


def scaling(duration_s: float, most: int) -> None:
    with rest_server(Capacity(512, 0.0)) as url:
        for processes in range(1, most + 1):
            offered = PER_PROCESS_RATE * processes
            summary = run(spec("rest", url, "unused:0", offered, duration_s), processes)["summary"]
            cores = os.cpu_count() or 1
            if summary["load_generator_limited"] and processes >= cores:
                limit = (
                    f"this machine's {cores} cores: {processes} generator processes and the "
                    "loopback server share them, so the generators lag"
                )
            elif summary["load_generator_limited"]:
                limit = "the generators (they lag): " + str(
                    summary["load_generator_limited_reason"]
                )
            elif summary["rps"] < 0.97 * offered:
                limit = "the loopback server (latency rises, the generators keep time)"
            else:
                limit = "none: linear"
            print(
                f"{processes} processes  offered {offered:>6.0f}/s  merged "
                f"{summary['rps']:>8.1f}/s ({summary['rps'] / offered:.0%} of {processes} x one)"
                f"  p99 {summary['p99_ms']} ms  lag p99 {summary['send_lag_p99_ms']} ms  "
                f"CPU/process {summary['generator_cpu_max']}  limit: {limit}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter steps, fewer of them")
    args = parser.parse_args()
    duration_s, steps = (2.0, 6) if args.quick else (4.0, 12)
    print(f"Machine: {os.cpu_count()} cores. One process, p99 send lag <= {SEND_LAG_LIMIT_MS} ms:")
    one_process(duration_s, steps)
    print(f"\nN processes, small REST body, {PER_PROCESS_RATE:g}/s each:")
    scaling(duration_s, most=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
