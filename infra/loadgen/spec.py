"""What every load-generator process of a run is told, and how it reports back.

Kept apart from infra.loadgen.worker (the process's entry point, which patches the standard
library for gevent on import) so drivers and reports can use it unpatched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

RESULT_MARKER = "tfserving-gke-result "
ERROR_MARKER = "tfserving-gke-error "
PROGRESS_MARKER = "tfserving-gke-progress "
ARRIVALS = ("poisson", "uniform")
INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a process needs to play its part in a run (the same for all of them)."""

    protocol: str
    rest_url: str
    grpc_target: str
    model: str
    signature: str
    batch: int
    mode: str
    rate: float
    users: int
    duration_s: float
    warmup_s: float
    timeout_s: float
    max_in_flight: int
    processes: int = 1
    coordinator: str = ""  # process 0's host:port
    listen_host: str = ""
    start_timeout_s: float = 600.0
    payload_file: str = ""
    # (name, REST base URL) of every server whose Prometheus page process 0 reads at the
    # start and end of the measured window (the serving pods, in the cluster).
    metrics_targets: tuple[tuple[str, str], ...] = ()
    # Open loop: "poisson" (independent users: exponential gaps) or "uniform" (a fixed
    # schedule), from one seeded schedule every process shares.
    arrivals: str = "poisson"
    seed: int = 0
    # Where requests go, round-robin: (name, REST base URL, gRPC host:port) of each serving
    # pod; none means rest_url / grpc_target as given. With resolve_host, a headless
    # Service's DNS name, the pods are looked up again while the run goes on.
    endpoints: tuple[tuple[str, str, str], ...] = ()
    resolve_host: str = ""
    # The p99 send lag above which the generator, not the server, is what was measured.
    max_send_lag_ms: float = 5.0
    # Process 0 writes a progress line about every second.
    progress: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        fields = json.loads(text)
        fields["metrics_targets"] = tuple(tuple(pair) for pair in fields["metrics_targets"])
        fields["endpoints"] = tuple(tuple(entry) for entry in fields.get("endpoints", ()))
        return cls(**fields)


class WorkerError(RuntimeError):
    """A failure a process reports instead of a result."""


def parse_line(line: str) -> dict[str, Any] | None:
    """A process's result from one line of its output (None for any other line); raises
    WorkerError for a process's error line."""
    if line.startswith(ERROR_MARKER):
        raise WorkerError(line.removeprefix(ERROR_MARKER).strip())
    if line.startswith(RESULT_MARKER):
        result: dict[str, Any] = json.loads(line.removeprefix(RESULT_MARKER))
        return result
    return None
