"""`python -m infra bench ...` and `python -m infra compare ...`: the options read and
checked, then handed to infra/bench/command.py."""

from __future__ import annotations

import argparse
import signal
import sys
from urllib.parse import urlsplit

from infra.bench.capacity import MAX_REPEATS, MAX_STEPS
from infra.bench.command import run_bench, run_compare
from infra.bench.session import BenchError
from infra.inputs.help import DefaultsOnce
from infra.inputs.values import (
    fraction,
    input_file,
    non_negative,
    non_negative_int,
    output_file,
    positive,
    positive_int,
)
from infra.loadgen.spec import ARRIVALS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = DefaultsOnce
    bench = commands.add_parser(
        "bench",
        help="load-test a deployed experiment or any TF Serving URL",
        description="Load-test a stack (from inside its cluster, or --local from here) or any "
        "TF Serving REST URL: one run, or --find-capacity under a p99 objective. Exits 1 "
        "when the objective, the error limit or the capacity search was not met.",
        formatter_class=defaults,
    )
    bench.add_argument("target", help="stack name (reads its outputs) or REST base URL")
    bench.add_argument("--model", help="model name (default: the stack's modelName output)")
    bench.add_argument(
        "--protocol",
        choices=("rest", "grpc"),
        help="default: rest, or grpc when an input's dtype only travels over gRPC "
        "(float16, bfloat16)",
    )
    bench.add_argument("--grpc-target", help="host:port for gRPC (default: <REST host>:8500)")
    bench.add_argument(
        "--mode",
        choices=("closed", "open"),
        default="open",
        help="open: requests on a schedule at --rate, whatever the server does (what a "
        "capacity search uses); closed: --users each sending the next request when the last "
        "answers",
    )
    bench.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="poisson",
        help="open loop: poisson (independent users) or uniform (a fixed beat, which "
        "overstates capacity)",
    )
    bench.add_argument(
        "--seed",
        type=int,
        default=0,
        help="open loop: the arrival schedule's seed (a capacity search derives each run's "
        "from it, the rate and the repeat)",
    )
    bench.add_argument(
        "--users", type=positive_int, default=8, help="closed loop: concurrent users"
    )
    bench.add_argument("--rate", type=positive, default=50.0, help="open loop: requests per second")
    bench.add_argument("--duration", type=positive, default=60.0, help="measured seconds")
    bench.add_argument("--warmup", type=non_negative, default=10.0, help="seconds excluded first")
    bench.add_argument("--timeout", type=positive, default=30.0, help="per request, seconds")
    bench.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=1000,
        help="open loop: outstanding requests before new ones count as errors",
    )
    bench.add_argument(
        "--signature", default="serving_default", help="the model's signature to call"
    )
    bench.add_argument("--batch", type=positive_int, default=1, help="rows per generated request")
    bench.add_argument(
        "--payload", type=input_file, help="REST body JSON file instead of a generated one"
    )
    bench.add_argument(
        "--outputs", type=input_file, help="stack outputs JSON (pulumi stack output --json)"
    )
    bench.add_argument(
        "--out", type=output_file, help="results JSON (default under bench-results/)"
    )
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
        help="step the open-loop rate (ramp, then bisect) to the highest that meets --p99-ms "
        "with 95%% confidence",
    )
    bench.add_argument(
        "--p99-ms",
        type=positive,
        help="the latency objective: a run is judged on it (exit 1 unless met with "
        "confidence); --find-capacity needs it",
    )
    bench.add_argument(
        "--max-error-rate", type=fraction, default=0.01, help="errors allowed (a fraction)"
    )
    bench.add_argument(
        "--max-steps",
        type=positive_int,
        default=MAX_STEPS,
        help="with --find-capacity: at most this many runs, repeats included",
    )
    bench.add_argument(
        "--max-repeats",
        type=non_negative_int,
        default=MAX_REPEATS,
        help="with --find-capacity: runs again at a rate whose interval straddles the "
        "objective, its windows pooled",
    )
    bench.add_argument(
        "--max-send-lag-ms",
        type=positive,
        help="the p99 send lag above which the load generator, not the server, was measured "
        "(default: a tenth of --p99-ms, at least 5 ms)",
    )
    bench.add_argument(
        "--processes",
        type=positive_int,
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
    bench.set_defaults(run=run_bench)
    compare = commands.add_parser(
        "compare",
        help="compare load-test results",
        description="Rank results by requests per dollar at capacity: runs whose capacity "
        "ranges overlap are a tie; limited, unbalanced and cut-short runs are marked and "
        "never ranked.",
        formatter_class=defaults,
    )
    compare.add_argument("results", nargs="+", help="results JSON files from bench")
    compare.add_argument("--p99-ms", type=positive, help="latency objective for the best pick")
    compare.add_argument(
        "--max-error-rate", type=fraction, default=0.01, help="errors allowed (a fraction)"
    )
    compare.add_argument("--markdown", type=output_file, help="also write the table here")
    compare.add_argument("--chart", type=output_file, help="write a PNG chart here")
    compare.set_defaults(run=run_compare)
    args = parser.parse_args(argv)
    if args.command == "bench":
        _check_target(bench, args)
        _check_together(bench, args, argv)
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


# Options that only act with another: (option, what it needs, is that given, why).
NEEDS = (
    ("--max-steps", "--find-capacity", "bounds the capacity search's runs"),
    ("--max-repeats", "--find-capacity", "bounds the runs the capacity search pools at a rate"),
    ("--users", "--mode closed", "sets the closed loop's users (the open loop sends --rate)"),
    ("--rate", "--mode open", "sets the open loop's rate (closed-loop users send on answers)"),
)


def _check_together(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]
) -> None:
    """Refuse an option given without the one it acts with, rather than ignore it."""
    given = {word.split("=", 1)[0] for word in argv if word.startswith("--")}
    has = {
        "--find-capacity": bool(args.find_capacity),
        "--mode closed": args.mode == "closed",
        "--mode open": args.mode == "open",
    }
    for option, needs, why in NEEDS:
        if option in given and not has[needs]:
            parser.error(f"{option} works only with {needs}: it {why}")
    if args.find_capacity and (args.p99_ms is None or args.mode != "open"):
        parser.error("--find-capacity needs --p99-ms and the open loop (--mode open)")


def _check_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A target is a stack name or a REST base URL: say so when it is neither."""
    target = args.target
    if "://" in target:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            parser.error(f"target {target!r}: give a REST base URL like http://HOST:8501")
        if parts.path.rstrip("/"):
            base = f"{parts.scheme}://{parts.netloc}"
            parser.error(
                f"target {target!r} names a path: give the server's base URL, {base} (bench "
                "adds /v1/models/<model>:predict itself; --model names the model)"
            )
    elif ":" in target or "/" in target:
        parser.error(
            f"target {target!r} is neither a stack name nor a URL: for a server, give its "
            f"REST base URL with the scheme, e.g. http://{target.split('/')[0]}"
        )
    if args.grpc_target is not None:
        host, _, port = args.grpc_target.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(
                f"--grpc-target {args.grpc_target!r}: give host:port, e.g. "
                f"{args.grpc_target.split(':')[0] or 'HOST'}:8500 (TF Serving's gRPC port)"
            )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
