"""`python -m infra bench ...` and `python -m infra compare ...`.

gevent's monkey-patching must come before anything else touches sockets or threads, so
this module patches first and is imported before the rest of the project (see
infra/__main__.py).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from kubernetes.client.exceptions import ApiException  # noqa: E402
from kubernetes.config.config_exception import ConfigException  # noqa: E402
from urllib3.exceptions import HTTPError  # noqa: E402

from infra.bench.capacity import Objective, find_capacity, judge  # noqa: E402
from infra.bench.fanout import run_local  # noqa: E402
from infra.bench.report import best, chart, markdown, row  # noqa: E402
from infra.bench.results import result_document  # noqa: E402
from infra.bench.spec import WorkerError, WorkerSpec  # noqa: E402
from infra.loadgen.kube import api_clients  # noqa: E402
from infra.loadgen.run import ClusterRunError, ClusterRunner  # noqa: E402
from infra.loadgen.sizing import process_requests, processes_for  # noqa: E402
from infra.naming import label_value  # noqa: E402


class BenchError(Exception):
    """A problem the user can fix, reported without a traceback."""


def _pulumi_output(stack: str, *extra: str) -> str:
    if not shutil.which("pulumi"):
        raise BenchError(
            "reading a stack's outputs needs the pulumi CLI; or give the REST URL, --model "
            "and --outputs FILE (from `pulumi stack output --json`), and --kubeconfig FILE"
        )
    result = subprocess.run(
        ["pulumi", "stack", "output", *extra, "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"pulumi stack output --stack {stack}: {result.stderr.strip()}")
    return result.stdout


def _target(args: argparse.Namespace) -> tuple[str, str, str, dict[str, Any]]:
    """REST base URL, gRPC target, model name and stack outputs (may be empty)."""
    outputs: dict[str, Any] = {}
    if args.outputs:
        outputs = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
    if _is_url(args.target):
        rest_url = args.target.rstrip("/")
    else:
        outputs = outputs or json.loads(_pulumi_output(args.target, "--json"))
        rest_url = str(outputs.get("restEndpoint", "")).rstrip("/")
    model = args.model or outputs.get("modelName")
    if not model:
        raise BenchError("the model name is unknown: pass --model NAME")
    host = urlsplit(rest_url).hostname
    grpc_target = args.grpc_target or outputs.get("grpcEndpoint") or f"{host}:8500"
    return rest_url, str(grpc_target), str(model), outputs


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def _spec(args: argparse.Namespace, rest_url: str, grpc_target: str, model: str) -> WorkerSpec:
    if args.payload and args.protocol == "grpc":
        raise BenchError("--payload is a REST body; gRPC payloads come from the signature")
    return WorkerSpec(
        protocol=args.protocol,
        rest_url=rest_url,
        grpc_target=grpc_target,
        model=model,
        signature=args.signature,
        batch=args.batch,
        mode=args.mode,
        rate=args.rate,
        users=args.users,
        duration_s=args.duration,
        warmup_s=args.warmup,
        timeout_s=args.timeout,
        max_in_flight=args.max_in_flight,
        payload_file=str(Path(args.payload).resolve()) if args.payload else "",
        metrics_targets=tuple((url, url) for url in args.server_metrics),
    )


Execute = Callable[[WorkerSpec, int], tuple[list[dict[str, Any]], dict[str, Any] | None]]


@dataclass
class Runs:
    """Where this command's runs happen, and over how many load-generator processes."""

    where: str  # local | cluster
    execute: Execute
    max_processes: int
    fixed_processes: int | None  # --processes
    payload_bytes: int | None = None  # learnt from the first run

    def processes(self, spec: WorkerSpec) -> int:
        if self.fixed_processes:
            return self.fixed_processes
        if self.where == "local" or spec.mode == "closed":
            return 1
        return processes_for(spec.rate, spec.protocol, self.payload_bytes, self.max_processes)


def _local_runs(args: argparse.Namespace) -> Runs:
    def execute(spec: WorkerSpec, processes: int) -> tuple[list[dict[str, Any]], None]:
        return run_local(spec, processes), None

    return Runs("local", execute, max(1, args.processes or 1), args.processes)


def _cluster_runs(args: argparse.Namespace, outputs: dict[str, Any]) -> Runs:
    image, pool = outputs.get("loadGeneratorImage"), outputs.get("loadGenerator")
    if not image or not pool:
        raise BenchError(
            f"stack {args.target} has no in-cluster load generator: run `pulumi config set "
            "loadGenerator true` and `pulumi up` (the pool costs nothing between runs), or "
            "bench from this machine with --local"
        )
    kubeconfig = (
        Path(args.kubeconfig).read_text(encoding="utf-8")
        if args.kubeconfig
        else _pulumi_output(args.target, "kubeconfig", "--show-secrets")
    )
    try:
        clients = api_clients(kubeconfig)
    except (ConfigException, ValueError) as error:
        raise BenchError(f"the stack's kubeconfig cannot be used: {error}") from None
    runner = ClusterRunner(
        *clients,
        namespace=str(outputs["namespace"]),
        stack_label=label_value(args.target),
        image=str(image),
        requests=process_requests(),
    )
    print(
        f"Load from the cluster: {pool['machineType']} pool, up to {pool['maxProcesses']} "
        f"processes, about {pool['costUsdPerHourWhileBenchmarking']} USD/hour at most while "
        "it runs"
    )
    return Runs("cluster", runner.run, int(pool["maxProcesses"]), args.processes)


def _run(runs: Runs, spec: WorkerSpec, outputs: dict[str, Any]) -> dict[str, Any]:
    """One run of the spec's load: its results document. In the cluster, a run its load
    generator limited is run again over twice the processes, while the pool has them."""
    processes = runs.processes(spec)
    while True:
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            results, pods_cpu = runs.execute(spec, processes)
        except (WorkerError, ClusterRunError) as error:
            raise BenchError(str(error)) from None
        except (ApiException, HTTPError, ConfigException) as error:
            raise BenchError(
                f"the cluster's API did not answer ({type(error).__name__}: "
                f"{str(error).strip()[:300]}). Is the cluster up, gke-gcloud-auth-plugin "
                "installed and your gcloud login current?"
            ) from None
        document = result_document(spec, results, outputs, started, runs.where, pods_cpu=pods_cpu)
        runs.payload_bytes = int(document["settings"]["payload_bytes"])
        limited = document["summary"]["load_generator_limited"]
        if not limited or runs.fixed_processes or processes >= runs.max_processes:
            return document
        processes = min(runs.max_processes, processes * 2)
        print(f"  the load generator was the limit; again over {processes} processes")


def _line(summary: dict[str, Any]) -> str:
    return (
        f"{summary['rps']} RPS, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
        f"errors {summary['error_rate']:.2%}"
    )


def _warn_if_limited(summary: dict[str, Any]) -> None:
    if summary["load_generator_limited"]:
        print(
            f"warning: the load generator was the limit, not the server: "
            f"{summary['load_generator_limited_reason']}. Spread the load over more "
            "processes (--processes N) or lower the rate; compare will not pick this run.",
            file=sys.stderr,
        )


def _find_capacity(
    args: argparse.Namespace, runs: Runs, spec: WorkerSpec, outputs: dict[str, Any]
) -> dict[str, Any]:
    objective = Objective(args.p99_ms, args.max_error_rate)
    print(f"Capacity search, {objective.describe()}, from {spec.rate:g} requests/s:")

    def run_step(rate: float) -> dict[str, Any]:
        document = _run(runs, replace(spec, rate=rate), outputs)
        verdict, why = judge(document["summary"], objective)
        print(f"  {rate:>9.2f}/s  {verdict:<7} {_line(document['summary'])}  ({why})")
        return document

    capacity = find_capacity(run_step, objective, spec.rate, max_steps=args.max_steps)
    steps = capacity["steps"]
    chosen = steps[capacity["step"]] if capacity["step"] is not None else steps[-1]
    if capacity["rate_per_s"] is None:
        print(f"No rate met {objective.describe()}: {capacity['stopped']}.")
    else:
        print(
            f"Capacity: {capacity['rate_per_s']:g} requests/s offered, {capacity['rps']} "
            f"served, at {objective.describe()} ({capacity['stopped']})."
        )
    return {**chosen["result"], "capacity": capacity}


def _bench(args: argparse.Namespace) -> int:
    rest_url, grpc_target, model, outputs = _target(args)
    spec = _spec(args, rest_url, grpc_target, model)
    in_cluster = not _is_url(args.target) and not args.local
    if in_cluster and args.payload:
        raise BenchError("--payload files stay on this machine: use it with --local")
    runs = _cluster_runs(args, outputs) if in_cluster else _local_runs(args)
    if args.find_capacity:
        result = _find_capacity(args, runs, spec, outputs)
    else:
        result = _run(runs, spec, outputs)
    kind = "capacity" if args.find_capacity else spec.mode
    out = args.out or Path("bench-results") / (
        f"{(outputs.get('experiment') or 'run')}-{spec.protocol}-{kind}-{int(time.time())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{spec.protocol} {spec.mode}: {_line(result['summary'])} -> {out}")
    _warn_if_limited(result["summary"])
    return 0


def _compare(args: argparse.Namespace) -> int:
    rows = []
    for path in args.results:
        rows.append(row(json.loads(Path(path).read_text(encoding="utf-8")), Path(path).stem))
    winner = best(rows, args.p99_ms, args.max_error_rate)
    report = markdown(rows, winner, args.p99_ms, args.max_error_rate)
    print(report, end="")
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
    if args.chart:
        chart(rows, args.chart, args.p99_ms)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench", help="load-test a deployed experiment or any TF Serving URL"
    )
    bench.add_argument("target", help="stack name (reads its outputs) or REST base URL")
    bench.add_argument("--model", help="model name (default: the stack's modelName output)")
    bench.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    bench.add_argument("--grpc-target", help="host:port for gRPC (default: <REST host>:8500)")
    bench.add_argument("--mode", choices=("closed", "open"), default="open")
    bench.add_argument("--users", type=int, default=8, help="closed loop: concurrent users")
    bench.add_argument("--rate", type=float, default=50.0, help="open loop: requests per second")
    bench.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    bench.add_argument("--warmup", type=float, default=10.0, help="seconds excluded first")
    bench.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    bench.add_argument(
        "--max-in-flight",
        type=int,
        default=1000,
        help="open loop: outstanding requests before new ones count as errors",
    )
    bench.add_argument("--signature", default="serving_default")
    bench.add_argument("--batch", type=int, default=1, help="rows per generated request")
    bench.add_argument("--payload", help="REST body JSON file instead of a generated one")
    bench.add_argument("--outputs", help="stack outputs JSON (pulumi stack output --json)")
    bench.add_argument("--out", type=Path, help="results JSON (default under bench-results/)")
    bench.add_argument(
        "--server-metrics",
        action="append",
        default=[],
        metavar="URL",
        help="a TF Serving REST base URL whose Prometheus page to read for the server's own "
        "figures (repeat per server; in the cluster every serving pod is read)",
    )
    bench.add_argument(
        "--find-capacity",
        action="store_true",
        help="step the open-loop rate (ramp, then bisect) to the highest that meets --p99-ms",
    )
    bench.add_argument("--p99-ms", type=float, help="with --find-capacity: the latency objective")
    bench.add_argument(
        "--max-error-rate", type=float, default=0.01, help="with --find-capacity: error limit"
    )
    bench.add_argument(
        "--max-steps", type=int, default=12, help="with --find-capacity: at most this many steps"
    )
    bench.add_argument(
        "--processes",
        type=int,
        help="load-generator processes sharing the load, one core each (default: 1 on this "
        "machine; in the cluster, enough for the rate)",
    )
    bench.add_argument(
        "--local",
        action="store_true",
        help="for a stack: send the load from this machine (through its load balancer) "
        "instead of from the cluster",
    )
    bench.add_argument(
        "--kubeconfig", help="the cluster's kubeconfig (default: the stack's kubeconfig output)"
    )
    bench.set_defaults(run=_bench)
    compare = commands.add_parser("compare", help="compare load-test results")
    compare.add_argument("results", nargs="+", help="results JSON files from bench")
    compare.add_argument("--p99-ms", type=float, help="latency objective for the best pick")
    compare.add_argument("--max-error-rate", type=float, default=0.01)
    compare.add_argument("--markdown", type=Path, help="also write the table here")
    compare.add_argument("--chart", type=Path, help="write a PNG chart here")
    compare.set_defaults(run=_compare)
    args = parser.parse_args(argv)
    if args.command == "bench" and (
        args.users < 1
        or args.rate <= 0
        or args.duration <= 0
        or (args.processes is not None and args.processes < 1)
    ):
        parser.error("--users, --rate, --duration and --processes must be positive")
    if (
        args.command == "bench"
        and args.find_capacity
        and (args.p99_ms is None or args.mode != "open")
    ):
        parser.error("--find-capacity needs --p99-ms and the open loop (--mode open)")
    # A SIGTERM (a CI job cancelled) ends a run as Ctrl-C does: its Job or processes go.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result: int = args.run(args)
    except (BenchError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the run's load generators were stopped and removed", file=sys.stderr)
        return 130
    return result


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
