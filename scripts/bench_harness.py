"""Benchmark the load generator itself: how far `python -m infra bench` can push a
loopback TF Serving stand-in on this machine, and what it adds to each request.

Starts the REST stand-in of tests/load_servers.py (no service time, 64 workers) on
127.0.0.1, then runs the bench command against it: open loop at rising rates, and closed
loop with many users. Prints one line per run; nothing leaves this machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load_servers import Capacity, rest_server  # noqa: E402

RUNS = [
    ("open", "--rate", "100"),
    ("open", "--rate", "300"),
    ("open", "--rate", "600"),
    ("open", "--rate", "1000"),
    ("open", "--rate", "2000"),
    ("open", "--rate", "3000"),
    ("closed", "--users", "1"),
    ("closed", "--users", "16"),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as temporary, rest_server(Capacity(64, 0.0)) as url:
        print(f"{'mode':<7} {'load':>10} {'RPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for mode, flag, value in RUNS:
            out = Path(temporary) / f"{mode}-{value}.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "infra",
                    "bench",
                    url,
                    "--model",
                    "toy",
                    "--mode",
                    mode,
                    flag,
                    value,
                    "--warmup",
                    "1",
                    "--duration",
                    "4",
                    "--out",
                    str(out),
                ],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            summary = json.loads(out.read_text())["summary"]
            load = f"{value}/s" if mode == "open" else f"{value} users"
            print(
                f"{mode:<7} {load:>10} {summary['rps']:>8.1f} {summary['p50_ms']:>8.2f} "
                f"{summary['p99_ms']:>8.2f} {summary['error_rate']:>7.2%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
