"""`python -m infra sweep [experiments... | --all | --space FILE] --p99-ms MS --max-usd USD`:
the options read and checked into a campaign request (infra/sweep/campaign.py runs it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from infra.design.settings import coerce_setting, load_declarations
from infra.inputs.errors import ConfigError, did_you_mean
from infra.inputs.values import (
    fraction,
    input_file,
    non_negative,
    non_negative_int,
    output_dir,
    output_file,
    positive,
    positive_int,
    project_id,
    stack_name,
)
from infra.loadgen.spec import ARRIVALS
from infra.sweep import campaign
from infra.sweep.campaign import PROJECT_ENVS, Request
from infra.sweep.design import DEFAULT_STACK
from infra.sweep.durations import DEFAULT_SEARCH, SearchSettings
from infra.sweep.search.strategy import SAMPLERS


def add_parser(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="deploy, measure and destroy many experiments on one stack, cheapest order first",
        description="Run experiments one after another on one sweep stack (Pulumi Automation "
        "API): consecutive experiments of the same node shape only roll the pods. Each is "
        "measured by the in-cluster capacity search; the stack is destroyed at the end, on "
        "failure, Ctrl-C and SIGTERM. --dry-run plans it offline and prints the order, the "
        "changes, the time and the cost.",
    )
    sweep.add_argument("experiments", nargs="*", help="experiment presets (or --all)")
    sweep.add_argument("--all", action="store_true", help="the 15 reference experiments")
    sweep.add_argument(
        "--p99-ms", type=positive, help="the latency objective (a real run needs it)"
    )
    sweep.add_argument(
        "--max-error-rate",
        type=fraction,
        default=DEFAULT_SEARCH.max_error_rate,
        help="errors allowed (a fraction)",
    )
    sweep.add_argument(
        "--max-usd",
        type=positive,
        help="budget for the whole sweep, all runs (a real run needs it)",
    )
    sweep.add_argument(
        "--protocol",
        choices=("rest", "grpc"),
        default=DEFAULT_SEARCH.protocol,
        help="how the load is sent",
    )
    sweep.add_argument(
        "--rate",
        type=positive,
        default=DEFAULT_SEARCH.start_rate,
        help="first capacity step, requests/s (the next experiment on the same nodes starts "
        "from the previous one's capacity)",
    )
    sweep.add_argument(
        "--max-steps",
        type=positive_int,
        default=DEFAULT_SEARCH.max_steps,
        help="capacity runs per experiment, repeats of undecided rates included",
    )
    sweep.add_argument(
        "--max-repeats",
        type=non_negative_int,
        default=DEFAULT_SEARCH.max_repeats,
        help="runs again at a rate whose interval straddles the objective",
    )
    sweep.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default=DEFAULT_SEARCH.arrivals,
        help="poisson (independent users) or uniform (a fixed beat)",
    )
    sweep.add_argument(
        "--duration", type=positive, default=DEFAULT_SEARCH.duration_s, help="measured s per step"
    )
    sweep.add_argument(
        "--warmup", type=non_negative, default=DEFAULT_SEARCH.warmup_s, help="s excluded per step"
    )
    sweep.add_argument(
        "--stack", type=stack_name, default=DEFAULT_STACK, help="the sweep's stack name"
    )
    sweep.add_argument(
        "--dir",
        type=output_dir,
        help="results and manifest (default sweeps/<stack>); rerun to resume",
    )
    sweep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every experiment, e.g. modelSource=github:me/model@v1#model.tar.gz",
    )
    sweep.add_argument(
        "--gcp-project", type=project_id, help="GCP project (default: the stack's gcp:project)"
    )
    sweep.add_argument(
        "--target-rps",
        type=positive,
        help="rank by the cost per hour of serving this load in whole nodes, from each "
        "capacity range's low end (without it: by requests per dollar)",
    )
    sweep.add_argument(
        "--spot",
        action="store_true",
        help="measure on Spot VMs (same hardware, a fraction of the price); a step on a "
        "preempted node is measured again",
    )
    sweep.add_argument(
        "--deploy-spot",
        action="store_true",
        help="rank at spot prices: you will deploy on Spot VMs (without it: on-demand prices)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="plan offline and estimate only")
    sweep.add_argument(
        "--json", type=output_file, help="with --dry-run: also write the plan as JSON"
    )
    sweep.add_argument("--keep", action="store_true", help="do not destroy the stack at the end")
    sweep.add_argument(
        "--skip-quota-check",
        action="store_true",
        help="do not read the project's CPU and address quotas",
    )
    searching = sweep.add_argument_group(
        "search", "measure what a search chooses from a space of configurations"
    )
    searching.add_argument(
        "--space",
        type=input_file,
        help="a search space file (experiments/spaces/e2-cpu.yaml is one): settings, and "
        "dimensions or presets",
    )
    searching.add_argument(
        "--max-trials",
        type=positive_int,
        help="configurations to measure at most (default: a tenth of the space and at least "
        "one per machine type in it, unless --max-usd bounds it)",
    )
    searching.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="model",
        help="model: a Bayesian model of capacity, Thompson sampling; tpe: Optuna's TPE; random",
    )
    searching.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="the seed of the sampler and of every run's arrivals (a replay repeats)",
    )
    searching.add_argument(
        "--replay",
        type=input_file,
        metavar="RESULTS",
        help="run the search offline against results measured earlier (a sweep's report.json "
        "or a table of infra/data/schemas/search-results.schema.json)",
    )
    searching.add_argument(
        "--from",
        dest="from_results",
        type=input_file,
        metavar="RESULTS",
        help="start from an earlier sweep's results: counted as measured, and learnt from",
    )
    sweep.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    return campaign.run(request(args))


def request(args: argparse.Namespace) -> Request:
    """The options as a campaign request, every contradiction refused before anything is
    read."""
    if args.all and args.experiments:
        raise ConfigError("sweep", "name experiments or pass --all, not both")
    _check_search_options(args)
    extra = _extra(args.set)
    if args.spot:
        if extra.get("spot") is False:
            raise ConfigError("--spot", "contradicts --set spot=false; keep one")
        extra["spot"] = True
        # The load generator too: a run a preemption stopped is run again.
        extra.setdefault("loadGeneratorSpot", True)
    return Request(
        stack=args.stack,
        directory=args.dir or Path("sweeps") / args.stack,
        search=_search(args),
        extra=extra,
        experiments=tuple(args.experiments),
        all=args.all,
        space=None if args.space is None else Path(args.space),
        max_usd=args.max_usd,
        target_rps=args.target_rps,
        deploy_spot=bool(args.deploy_spot),
        gcp_project=_gcp_project(args),
        dry_run=args.dry_run,
        json=args.json,
        keep=args.keep,
        skip_quota_check=args.skip_quota_check,
        max_trials=args.max_trials,
        sampler=args.sampler,
        seed=args.seed,
        replay=None if args.replay is None else Path(args.replay),
        from_results=None if args.from_results is None else Path(args.from_results),
    )


def _check_search_options(args: argparse.Namespace) -> None:
    """What a search refuses, before it reads anything."""
    if args.space is None:
        for option, value in (
            ("--replay", args.replay),
            ("--from", args.from_results),
            ("--max-trials", args.max_trials),
            ("--sampler", args.sampler if args.sampler != "model" else None),
            ("--seed", args.seed or None),
        ):
            if value is not None:
                raise ConfigError(
                    option, "chooses how a search runs: it needs --space FILE (a search space)"
                )
        return
    if args.experiments or args.all:
        raise ConfigError(
            "--space",
            "searches the space's configurations; name experiments or --all without it, or "
            "list them in the space file as `presets: [...]`",
        )
    if args.replay is not None and args.dry_run:
        raise ConfigError("--replay", "is already offline; leave out --dry-run")


def _extra(pairs: list[str]) -> dict[str, Any]:
    """--set values, each read as its declared type (a list as JSON:
    loadBalancerSourceRanges=["203.0.113.7/32"]), so every `up` gets what the dry run
    planned."""
    declarations = load_declarations()
    extra: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", f"expected KEY=VALUE, got {pair!r}")
        if key not in declarations:
            raise ConfigError(
                f"--set {key}",
                f"is not a setting of this project.{did_you_mean(key, declarations)}",
            )
        typed = coerce_setting(declarations[key], value)
        extra[key] = list(typed) if isinstance(typed, tuple) else typed
    return extra


def _search(args: argparse.Namespace) -> SearchSettings:
    for name, value, low in (
        ("--rate", args.rate, 0.0),
        ("--duration", args.duration, 0.0),
        ("--max-steps", args.max_steps, 0),
    ):
        if value <= low:
            raise ConfigError(name, f"must be positive, got {value:g}")
    if args.warmup < 0:
        raise ConfigError("--warmup", f"must be 0 or more, got {args.warmup:g}")
    return SearchSettings(
        p99_ms=args.p99_ms,
        max_error_rate=args.max_error_rate,
        protocol=args.protocol,
        start_rate=args.rate,
        max_steps=args.max_steps,
        warmup_s=args.warmup,
        duration_s=args.duration,
        max_repeats=args.max_repeats,
        arrivals=args.arrivals,
    )


def _gcp_project(args: argparse.Namespace) -> str:
    return args.gcp_project or next((os.environ[e] for e in PROJECT_ENVS if os.environ.get(e)), "")
