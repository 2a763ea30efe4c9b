"""One load-generator process: `python -m infra.loadgen.worker --spec JSON [--index I]`.

Run by the local fan-out (several on the user's machine) and, in the cluster, by every pod
of an Indexed Job (its index from JOB_COMPLETION_INDEX). It builds the request from the
model's signature, waits at the start barrier, sends its share of the load, and prints one
line, `tfserving-gke-result <JSON>`, with its counts and histograms (infra.loadgen.stats);
the driver merges the lines of all processes. On a failure it prints
`tfserving-gke-error <message>` and exits 2.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from infra.design.monitoring.names import METRICS_PATH  # noqa: E402
from infra.loadgen import metrics  # noqa: E402
from infra.loadgen.barrier import BarrierError, monotonic_at, start_time  # noqa: E402
from infra.loadgen.spec import (  # noqa: E402
    ERROR_MARKER,
    INDEX_ENV,
    RESULT_MARKER,
    WorkerError,
    WorkerSpec,
)
from infra.loadgen.stats import Sample, worker_result  # noqa: E402
from infra.loadgen.tensors import (  # noqa: E402
    Payload,
    PayloadError,
    fetch_inputs,
    generated_payload,
    payload_protocol,
    sample_payload,
)

SCRAPE_TIMEOUT_S = 5.0


def build_payload(spec: WorkerSpec) -> Payload:
    """The request, encoded once: from a REST body file, or from the model's signature."""
    try:
        if spec.payload_file:
            sample = json.loads(Path(spec.payload_file).read_text(encoding="utf-8"))
            return sample_payload(spec.model, spec.signature, sample)
        specs = fetch_inputs(spec.rest_url, spec.model, spec.signature, spec.timeout_s)
        payload_protocol(specs, spec.protocol, chosen_by_user=True)
        return generated_payload(spec.model, spec.signature, specs, batch=spec.batch)
    except PayloadError as error:
        raise WorkerError(f"cannot build a request: {error}") from None
    except (OSError, ValueError) as error:
        raise WorkerError(f"cannot read --payload {spec.payload_file}: {error}") from None


def _timed_scrape(url: str, model: str) -> tuple[float, metrics.Snapshot | str]:
    """A server's snapshot, and when it was taken (the middle of the request, epoch s)."""
    sent = time.time()
    snapshot = metrics.scrape(url, model, SCRAPE_TIMEOUT_S)
    return (sent + time.time()) / 2, snapshot


def _scrape_all(spec: WorkerSpec) -> dict[str, tuple[float, metrics.Snapshot | str]]:
    """Every target at once: one at a time, the last would be read well after the first
    (each answers from the pool that serves predictions)."""
    jobs = {
        name: gevent.spawn(_timed_scrape, url, spec.model) for name, url in spec.metrics_targets
    }
    gevent.joinall(list(jobs.values()), timeout=SCRAPE_TIMEOUT_S + 1)
    return {
        name: job.value if job.successful() else (time.time(), "no answer in time")
        for name, job in jobs.items()
    }


def watch_servers(spec: WorkerSpec, t0: float) -> dict[str, Any]:
    """Every target's TF Serving figures over the measured window: scraped all at once at
    its start and its end, each pod's counts divided by the real time between its two
    scrapes; and all of them together."""
    start, end = t0 + spec.warmup_s, t0 + spec.warmup_s + spec.duration_s
    gevent.sleep(max(0.0, start - time.monotonic()))
    before = _scrape_all(spec)
    gevent.sleep(max(0.0, end - time.monotonic()))
    after = _scrape_all(spec)
    servers: dict[str, Any] = {}
    total = metrics.Snapshot()
    spans = []
    for name, _ in spec.metrics_targets:
        (first_at, first), (last_at, last) = before[name], after[name]
        if isinstance(first, str) or isinstance(last, str):
            servers[name] = {"error": first if isinstance(first, str) else last}
            continue
        window = metrics.difference(first, last)
        elapsed = max(last_at - first_at, 1e-3)
        servers[name] = {
            **metrics.figures(window, elapsed),
            "window_s": round(elapsed, 3),
            "scraped_at": [round(first_at, 3), round(last_at, 3)],
        }
        spans.append(elapsed)
        total = metrics.add(total, window)
    return {
        "source": f"TF Serving {METRICS_PATH}, measured window",
        "servers": servers,
        "all": metrics.figures(total, sum(spans) / len(spans) if spans else spec.duration_s),
    }


def progress_line(elapsed_s: float, samples: list[Sample], since: int) -> str:
    """What the last second looked like, for a person watching."""
    recent = samples[since:]
    ok = sorted(s.latency_ms for s in recent if s.error is None)
    p99 = f"{ok[min(len(ok) - 1, int(len(ok) * 0.99))]:.0f} ms" if ok else "-"
    errors = sum(1 for s in recent if s.error is not None)
    return f"  {elapsed_s:5.0f} s  {len(recent):5d} req/s  p99 {p99:>9}  errors {errors}"


def report_progress(t0: float, samples: list[Sample], total_s: float) -> None:
    """A progress line about every second (stderr), until the run's end."""
    seen = 0
    while time.monotonic() < t0 + total_s:
        gevent.sleep(1.0)
        line = progress_line(time.monotonic() - t0, samples, seen)
        seen = len(samples)
        print(line, file=sys.stderr, flush=True)


def run(spec: WorkerSpec, index: int) -> dict[str, Any]:
    """Play process `index`'s part and return its result (see infra.loadgen.stats)."""
    from infra.loadgen.load import Share, run_load  # noqa: PLC0415 - after patching

    payload = build_payload(spec)  # before the barrier: encoding is not part of the run
    try:
        start = start_time(
            index, spec.processes, spec.coordinator, spec.start_timeout_s, spec.listen_host
        )
    except (BarrierError, OSError) as error:
        raise WorkerError(f"process {index}: no common start ({error})") from None
    t0 = monotonic_at(start)
    watcher = gevent.spawn(watch_servers, spec, t0) if index == 0 and spec.metrics_targets else None
    reporter = progress_hook(spec, index, t0)
    recording = run_load(Share(spec, index), payload, t0=t0, on_start=reporter)
    # A finished Greenlet is falsy: compare with None.
    servers = watcher.get(timeout=spec.timeout_s + 30) if watcher is not None else None
    return {
        "server": servers,
        "index": index,
        "processes": spec.processes,
        "start_epoch": start,
        "host": socket.gethostname(),
        "cores": len(os.sched_getaffinity(0)),
        "payload": payload.description,
        "payload_bytes": len(
            payload.rest_body if spec.protocol == "rest" else payload.grpc_request
        ),
        "signature": payload.signature,
        "sent_by_endpoint": recording.sent,
        "cpu_wait_s": None if recording.cpu_wait_s is None else round(recording.cpu_wait_s, 4),
        "cpu_slices": recording.cpu_slices,
        **worker_result(
            recording.samples, spec.warmup_s, spec.duration_s, recording.cpu_s, recording.wall_s
        ),
    }


def progress_hook(spec: WorkerSpec, index: int, t0: float) -> Any:
    """For process 0 with progress asked: what run_load calls with its samples list."""
    if index != 0 or not spec.progress:
        return None
    total_s = spec.warmup_s + spec.duration_s
    return lambda samples: gevent.spawn(report_progress, t0, samples, total_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.loadgen.worker")
    parser.add_argument("--spec", required=True, help="the run's WorkerSpec as JSON")
    parser.add_argument("--index", type=int, help=f"this process's index (default ${INDEX_ENV})")
    args = parser.parse_args(argv)
    index = args.index if args.index is not None else int(os.environ.get(INDEX_ENV, "0"))
    try:
        result = run(WorkerSpec.from_json(args.spec), index)
    except WorkerError as error:
        print(f"{ERROR_MARKER}{error}", flush=True)
        return 2
    print(f"{RESULT_MARKER}{json.dumps(result, separators=(',', ':'))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
