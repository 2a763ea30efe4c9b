"""Benchmark: wall time and peak memory of `python -m infra plan --all` (target: < 5 s).

Runs the command in fresh processes (imports included, as a user runs it) and reports the
median and worst of several runs, and the peak resident memory of the child.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 5.0


def run_once() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "infra", "plan", "--all"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    run_once()  # warm the file cache and the build contexts
    times = [run_once() for _ in range(runs)]
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    median = statistics.median(times)
    print(
        f"plan --all: {runs} runs, median {median:.2f} s, worst {max(times):.2f} s, "
        f"peak RSS {peak_mib:.0f} MiB (target < {TARGET_SECONDS:.0f} s)"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
