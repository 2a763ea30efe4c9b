"""What `python -m infra bench` and `python -m infra compare` do with their options: find
the target (a stack's outputs or a URL), decide the protocol and the load's spec, run once
or search the capacity (infra.bench.session), write the results and say the verdict; or
rank results files. The command line (infra/bench/cli.py) reads the options and hands over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.bench.capacity import Objective
from infra.bench.confidence import PASS, UNDECIDED, Confidence, verdict
from infra.bench.report import chart, markdown, named_rows, rank, row
from infra.bench.results import RESULTS_SCHEMA
from infra.bench.session import (
    BenchError,
    capacity_search,
    cluster_runs,
    local_runs,
    run_once,
    summary_line,
)
from infra.inputs.errors import InputError
from infra.inputs.files import json_object
from infra.loadgen.spec import WorkerError, WorkerSpec
from infra.loadgen.stats import max_send_lag_ms
from infra.loadgen.tensors import GRPC_ONLY, fetch_inputs, outputs_inputs, payload_protocol


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
        outputs = json_object(
            Path(args.outputs),
            "a stack's outputs",
            "Write it with `pulumi stack output --json --show-secrets > FILE`.",
        )
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


def _protocol(
    args: argparse.Namespace, rest_url: str, model: str, outputs: dict[str, Any], local: bool
) -> str:
    """REST unless the user says otherwise, or the model's inputs need gRPC; refused up
    front, naming the input, when bench cannot generate the model's request."""
    if args.payload:
        if args.protocol == "grpc":
            raise BenchError("--payload is a REST body; gRPC payloads come from the signature")
        body = json_object(
            Path(args.payload),
            'a REST predict body ({"instances": [...]} or {"inputs": ...})',
        )
        if not {"instances", "inputs"} & set(body):
            raise InputError(
                f"{args.payload}: a predict body needs `instances` (row format) or `inputs` "
                f"(columnar format); it has {', '.join(sorted(body)) or 'no keys'}"
            )
        return "rest"
    specs = outputs_inputs(outputs, args.signature)
    if specs is None and local:
        # The load goes where this machine reaches: the model's signature is read first.
        try:
            specs = fetch_inputs(rest_url, model, args.signature, args.timeout)
        except WorkerError as error:
            raise BenchError(str(error)) from None
    protocol = args.protocol or "rest"
    if specs is None:
        return protocol
    chosen = payload_protocol(specs, protocol, chosen_by_user=args.protocol is not None)
    if chosen != protocol:
        needs = next(s for s in specs if s.dtype in GRPC_ONLY)
        print(
            f"Input {needs.name!r} is {needs.dtype}, which TF Serving's REST API cannot read: "
            "the load goes over gRPC.",
            file=sys.stderr,
        )
    return chosen


def _spec(
    args: argparse.Namespace, rest_url: str, grpc_target: str, model: str, protocol: str
) -> WorkerSpec:
    return WorkerSpec(
        protocol=protocol,
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
        arrivals=args.arrivals,
        seed=args.seed,
        max_send_lag_ms=args.max_send_lag_ms
        if args.max_send_lag_ms is not None
        else max_send_lag_ms(args.p99_ms),
        progress=True,
    )


def _warn_if_limited(summary: dict[str, Any]) -> None:
    if summary["load_generator_limited"]:
        print(
            f"warning: the load generator was the limit, not the server: "
            f"{summary['load_generator_limited_reason']} compare will not rank this run.",
            file=sys.stderr,
        )


def _outcome(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """The exit status: 1 when what was asked did not happen (no rate met the objective, a
    run missed it or stayed undecided, errors over the limit, the generator the limit)."""
    summary = result["summary"]
    figures = result["confidence"]
    if args.find_capacity:
        capacity = result["capacity"]
        if capacity["rate_per_s"] is None:
            print(f"error: no capacity: {capacity['stopped']}", file=sys.stderr)
            print("verdict: no capacity certified")
            return 1
        print(
            f"verdict: capacity {capacity['rate_per_s']:g} requests/s at p99 ≤ "
            f"{args.p99_ms:g} ms, with 95% confidence"
        )
        return 0
    problems = []
    if summary["load_generator_limited"]:
        problems.append("the load generator was the limit")
    if summary["error_rate"] > args.max_error_rate:
        problems.append(
            f"errors {summary['error_rate']:.2%} over --max-error-rate {args.max_error_rate:.2%}"
            f" ({', '.join(f'{k} {n}' for k, n in summary['error_kinds'].items())})"
        )
    if args.p99_ms is not None:
        kind, why = verdict(_confidence_of(figures), args.p99_ms, args.max_error_rate)
        if kind != PASS:
            advice = " (run longer: --duration)" if kind == UNDECIDED else ""
            problems.append(f"objective {kind}: {why}{advice}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    objective = f"p99 ≤ {args.p99_ms:g} ms" if args.p99_ms is not None else "no p99 objective"
    print(
        f"verdict: not met ({'; '.join(problems)})"
        if problems
        else f"verdict: met ({objective}, errors ≤ {args.max_error_rate:.2%})"
    )
    return 1 if problems else 0


def _confidence_of(figures: dict[str, Any]) -> Confidence:
    return Confidence(
        figures["samples"],
        figures["effective_samples"],
        figures["p99_ms"],
        figures["p99_ci_ms"][0],
        figures["p99_ci_ms"][1],
        figures["error_rate"],
        figures["error_rate_ci"][0],
        figures["error_rate_ci"][1],
    )


def run_bench(args: argparse.Namespace) -> int:
    rest_url, grpc_target, model, outputs = _target(args)
    in_cluster = not _is_url(args.target) and not args.local
    protocol = _protocol(args, rest_url, model, outputs, local=not in_cluster)
    spec = _spec(args, rest_url, grpc_target, model, protocol)
    if in_cluster and args.payload:
        raise BenchError("--payload files stay on this machine: use it with --local")
    if in_cluster:

        def kubeconfig() -> str:
            if args.kubeconfig:
                return Path(args.kubeconfig).read_text(encoding="utf-8")
            return _pulumi_output(args.target, "kubeconfig", "--show-secrets")

        runs = cluster_runs(args.target, outputs, kubeconfig, args.processes)
    else:
        runs = local_runs(args.processes)
    if args.find_capacity:
        objective = Objective(args.p99_ms, args.max_error_rate)
        result = capacity_search(
            runs, spec, outputs, objective, max_steps=args.max_steps, max_repeats=args.max_repeats
        )
    else:
        result = run_once(runs, spec, outputs)
    kind = "capacity" if args.find_capacity else spec.mode
    out = args.out or Path("bench-results") / (
        f"{(outputs.get('experiment') or 'run')}-{spec.protocol}-{kind}-{int(time.time())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    figures = result["confidence"]
    low, high = figures["p99_ci_ms"]
    print(
        f"{spec.protocol} {spec.mode}: {summary_line(result['summary'])}; p99 95% interval "
        f"{low if low is not None else 'failed requests'}-"
        f"{high if high is not None else 'open (too few samples to bound it)'} ms over "
        f"{figures['samples']} samples (worth {figures['effective_samples']}) -> {out}"
    )
    _warn_if_limited(result["summary"])
    return _outcome(args, result)


def run_compare(args: argparse.Namespace) -> int:
    results = []
    what = f"a bench results file ({RESULTS_SCHEMA})"
    for path in args.results:
        document = json_object(Path(path), what, "Write one with `python -m infra bench`.")
        if document.get("schema") != RESULTS_SCHEMA:
            raise InputError(f"{path} is not {what}: its schema is {document.get('schema')!r}")
        try:
            row(document, Path(path).stem)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InputError(
                f"{path} is incomplete or edited by hand ({type(error).__name__}: {error}): "
                "compare reads the results bench wrote, whole; run the bench again"
            ) from None
        results.append((Path(path).stem, document))
    rows = named_rows(results)
    ranking = rank(rows, args.p99_ms, args.max_error_rate)
    report = markdown(rows, ranking, args.p99_ms, args.max_error_rate)
    print(report, end="")
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
    if args.chart:
        chart(rows, args.chart, args.p99_ms, ranking)
    return 0
