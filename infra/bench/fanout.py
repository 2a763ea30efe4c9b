"""Run one load across N worker processes on this machine and collect their results.

Each process is `python -m infra.loadgen.worker` (the same code the cluster's Job pods run),
on the loopback start barrier. Bounded: the processes are killed at the run's deadline,
and on any failure or interruption (Ctrl-C) none is left behind.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.loadgen.spec import WorkerError, WorkerSpec, parse_line

PROJECT_DIR = Path(__file__).resolve().parents[2]
# After the schedule: the last answers (timeout) and the processes' exit.
EXIT_MARGIN_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_deadline_s(spec: WorkerSpec) -> float:
    """How long a whole run may take, start barrier and last answers included."""
    return spec.start_timeout_s + spec.warmup_s + spec.duration_s + spec.timeout_s + EXIT_MARGIN_S


def results_from_output(outputs: list[str], what: str) -> list[dict[str, Any]]:
    """Every process's result from its output (stdout or pod log), in index order."""
    results = []
    for index, output in enumerate(outputs):
        parsed = [result for line in output.splitlines() if (result := parse_line(line))]
        if not parsed:
            raise WorkerError(f"{what} {index} reported no result")
        results.append(parsed[-1])
    return sorted(results, key=lambda result: int(result["index"]))


def run_local(spec: WorkerSpec, processes: int) -> list[dict[str, Any]]:
    """Run the spec's load across `processes` local processes; their results, merged later."""
    spec = replace(
        spec,
        processes=processes,
        coordinator=f"127.0.0.1:{free_port()}",
        start_timeout_s=min(spec.start_timeout_s, 60.0),
    )
    command = [sys.executable, "-m", "infra.loadgen.worker", "--spec", spec.to_json()]
    children = [
        subprocess.Popen(
            [*command, "--index", str(index)],
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            # Process 0's progress lines go straight to the terminal.
            stderr=None if index == 0 and spec.progress else subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    deadline = time.monotonic() + run_deadline_s(spec)
    try:
        outputs = []
        for child in children:
            stdout, stderr = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if child.returncode not in (0, 2):
                raise WorkerError(
                    f"load-generator process exited with {child.returncode}: "
                    f"{(stderr or '(its output is above)').strip()[-500:]}"
                )
            outputs.append(stdout)
    except subprocess.TimeoutExpired:
        raise WorkerError(
            f"the load-generator processes did not finish within {run_deadline_s(spec):.0f} s"
        ) from None
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return results_from_output(outputs, "load-generator process")
