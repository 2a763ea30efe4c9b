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
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from infra.loadgen import metrics  # noqa: E402
from infra.loadgen.barrier import BarrierError, monotonic_at, start_time  # noqa: E402
from infra.loadgen.spec import (  # noqa: E402
    ERROR_MARKER,
    INDEX_ENV,
    RESULT_MARKER,
    WorkerError,
    WorkerSpec,
)
from infra.loadgen.stats import worker_result  # noqa: E402
from infra.loadgen.tensors import (  # noqa: E402
    Payload,
    PayloadError,
    fetch_inputs,
    generated_payload,
    payload_protocol,
    sample_payload,
)
from infra.monitoring.names import METRICS_PATH  # noqa: E402


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


def watch_servers(spec: WorkerSpec, t0: float) -> dict[str, Any]:
    """Every target's TF Serving figures over the measured window (scraped at its start
    and end), and all of them together."""
    start, end = t0 + spec.warmup_s, t0 + spec.warmup_s + spec.duration_s
    gevent.sleep(max(0.0, start - time.monotonic()))
    before = {name: metrics.scrape(url, spec.model, 5.0) for name, url in spec.metrics_targets}
    gevent.sleep(max(0.0, end - time.monotonic()))
    after = {name: metrics.scrape(url, spec.model, 5.0) for name, url in spec.metrics_targets}
    servers: dict[str, Any] = {}
    total = metrics.Snapshot()
    for name, _ in spec.metrics_targets:
        first, last = before[name], after[name]
        if isinstance(first, str) or isinstance(last, str):
            servers[name] = {"error": first if isinstance(first, str) else last}
            continue
        window = metrics.difference(first, last)
        servers[name] = metrics.figures(window, spec.duration_s)
        total = metrics.add(total, window)
    return {
        "source": f"TF Serving {METRICS_PATH}, measured window",
        "servers": servers,
        "all": metrics.figures(total, spec.duration_s),
    }


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
    recording = run_load(Share(spec, index), payload, t0=t0)
    # A finished Greenlet is falsy: compare with None.
    servers = watcher.get(timeout=spec.timeout_s + 30) if watcher is not None else None
    return {
        "server": servers,
        "index": index,
        "processes": spec.processes,
        "start_epoch": start,
        "payload": payload.description,
        "payload_bytes": len(
            payload.rest_body if spec.protocol == "rest" else payload.grpc_request
        ),
        "signature": payload.signature,
        **worker_result(
            recording.samples, spec.warmup_s, spec.duration_s, recording.cpu_s, recording.wall_s
        ),
    }


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
