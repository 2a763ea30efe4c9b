"""`python -m infra sweep [experiments... | --all] --p99-ms MS --max-usd USD`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.design.settings import (
    PLACEHOLDER_GCP_PROJECT,
    PROJECT_DIR,
    coerce_setting,
    load_declarations,
    project_name,
)
from infra.design.stack_config import fetch_environment
from infra.inputs.errors import ConfigError, InputError, ModelSourceError, did_you_mean
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
from infra.model.source import ModelRequest, resolve_model
from infra.plan.run import StackPlan, config_string
from infra.sweep.design import (
    DEFAULT_STACK,
    SEARCH_SIGNATURE,
    SweepDesign,
    assemble,
    check_names,
    describe,
    design_sweep,
    dry_run_json,
    plan_configuration,
    reference_experiments,
    ttl_hours,
)
from infra.sweep.durations import DEFAULT_SEARCH, Durations, SearchSettings
from infra.sweep.experiment import Planned
from infra.sweep.manifest import SweepManifest, open_manifest
from infra.sweep.quota import (
    QuotaError,
    check,
    fetch_project,
    fetch_region,
    gcloud_access_token,
    needs,
    preemptible_quota,
)
from infra.sweep.report import markdown, write_report
from infra.sweep.run import ROLLOUT_SETTLE_S, ConfigValues, Measure, MeasureError, SweepRun
from infra.sweep.search.cli import (
    SearchPlan,
    check_options,
    describe_space,
    earlier_outcomes,
    load_space,
    run_space,
    search_summary,
    trials_allowed,
)
from infra.sweep.search.objective import Goal
from infra.sweep.search.run import SearchSteps, candidate_settings, resumed
from infra.sweep.search.space import Candidate
from infra.sweep.search.strategy import SAMPLERS, Search
from infra.teardown.cli import gcp_exists

PROJECT_ENVS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# What makes two runs' results comparable: a rerun must keep these to continue a sweep.
COMPARED = ("p99_ms", "max_error_rate", "protocol", "warmup_s", "duration_s", "arrivals")


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


def _goal(args: argparse.Namespace) -> dict[str, Any]:
    """What the report ranks by: this run's, whatever earlier runs ranked by (a new target
    re-ranks what was measured, it measures nothing again)."""
    return {"target_rps": args.target_rps, "deploy_spot": bool(args.deploy_spot)}


def _manifest(
    args: argparse.Namespace,
    search: SearchSettings,
    extra: dict[str, Any],
    goal: dict[str, Any],
) -> SweepManifest:
    directory = args.dir or Path("sweeps") / args.stack
    compared = {key: getattr(search, key) for key in COMPARED}
    manifest = open_manifest(directory, args.stack, compared, extra)
    if manifest.lost:
        print(
            f"Note: {manifest.path} lists {', '.join(manifest.lost)} as measured, but "
            f"{'its results file is' if len(manifest.lost) == 1 else 'their results files are'}"
            f" gone from {directory / 'results'}: measured again."
        )
    before, now = manifest.goal.get("space"), goal.get("space")
    if before and before != now:
        print(
            f"Note: {directory} holds a search of {before}; this one is of {now or 'a list'}: "
            "what was measured of configurations in both counts, the rest is left out."
        )
    manifest.goal = goal
    return manifest


def run_sweep(args: argparse.Namespace) -> int:
    if args.all and args.experiments:
        raise ConfigError("sweep", "name experiments or pass --all, not both")
    check_options(args)
    search = _search(args)
    extra = _extra(args.set)
    if args.spot:
        if extra.get("spot") is False:
            raise ConfigError("--spot", "contradicts --set spot=false; keep one")
        extra["spot"] = True
        # The load generator too: a run a preemption stopped is run again.
        extra.setdefault("loadGeneratorSpot", True)
    if args.space is not None:
        status = run_space(args, search, extra)
        if status is not None:
            return status
        return run_search(args, search, extra)
    names = check_names(reference_experiments() if args.all else args.experiments)
    manifest = _manifest(args, search, extra, _goal(args))
    pending = manifest.pending(names)
    if manifest.measured:
        done = len(names) - len(pending)
        print(f"{manifest.path}: {done} of {len(names)} experiments already measured.")
    if not pending:
        return _report_only(manifest, "Every experiment asked for is measured; the report:")
    if not args.dry_run:
        _needs_first(args)
    design = design_sweep(
        pending, search, stack=args.stack, extra=extra, gcp_project=_gcp_project(args)
    )
    if not args.dry_run:
        _ready_to_run(args, design, manifest)
    print(describe(design, args.max_usd), end="")
    print(_ranking_line(args), end="")
    if args.dry_run:
        if args.json:
            document = dry_run_json(design, args.max_usd)
            args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            print(f"\nWrote {args.json}")
        return 2 if args.max_usd is not None and design.estimate.usd > args.max_usd else 0
    design = _pinned(design, manifest)
    manifest.order = list(dict.fromkeys([*manifest.order, *(e.name for e in design.experiments)]))
    _save_before_run(manifest)
    run = _campaign_run(args, design, manifest, None)
    return _finish(manifest, run.run())


def _report_only(manifest: SweepManifest, why: str) -> int:
    """Nothing left to measure: the report of what was, and exit 0."""
    print(why)
    _save_before_run(manifest)  # what the report ranks by, as it now does
    report, _ = write_report(manifest)
    print(markdown(report), end="")
    return 0


def _pinned(design: SweepDesign, manifest: SweepManifest) -> SweepDesign:
    """The design with every model pinned to the artifact the campaign measures (recorded
    in the manifest, so a resumed campaign measures the same one)."""
    resolved, pins = resolve_models(design)
    manifest.pin_models(resolved)
    return replace(design, model_pins=pins)


def _campaign_run(
    args: argparse.Namespace,
    design: SweepDesign,
    manifest: SweepManifest,
    chooser: SearchSteps | None,
) -> SweepRun:
    """The one run loop of a list (chooser None: its design's steps) or a search, on the
    sweep stack through the Automation API, torn down at the end."""
    return SweepRun(
        design=design,
        manifest=manifest,
        stack=_automation_stack(args.stack),
        config_values=_config_values(design),
        measure=(
            cluster_measure(design, seed=args.seed)
            if chooser is None
            else cluster_measure(design, stop_when=chooser.stop_reason, seed=args.seed)
        ),
        max_usd=args.max_usd,
        exists=gcp_exists(print),
        keep=args.keep,
        chooser=chooser,
    )


def _ranking_line(args: argparse.Namespace) -> str:
    """What the report will rank by, as the dry run says it."""
    prices = "spot" if args.deploy_spot else "on-demand"
    if args.target_rps is None:
        return f"The report ranks by requests per dollar at {prices} prices.\n"
    return (
        f"The report ranks by the cost per hour of serving {args.target_rps:g} requests/s: "
        "whole nodes from the low end of each capacity range, cluster fee and load balancer "
        f"included, at {prices} prices.\n"
    )


def _save_before_run(manifest: SweepManifest) -> None:
    """The manifest saved before anything is created: a folder it cannot be written to
    stops the sweep here."""
    try:
        manifest.save()
    except OSError as error:
        raise InputError(
            f"the sweep folder {manifest.directory} cannot be written ({error.strerror or error}"
            "): free the space, fix its permissions or pick another with --dir; nothing was "
            "created"
        ) from None


def _finish(manifest: SweepManifest, status: int) -> int:
    """The report, printed last (it ends with what is still up, if anything)."""
    try:
        report, path = write_report(manifest)
    except OSError as error:
        print(
            f"error: the report could not be written in {manifest.directory}: {error} (the "
            "stack's teardown ran before this; free the space and rerun the same command to "
            "write the report)",
            file=sys.stderr,
        )
        return status or 1
    # The report ends with what is still up, if anything: nothing is printed after it.
    print(f"Report: {path} (and {path.with_suffix('.png').name}, {path.with_suffix('.json').name})")
    print(markdown(report), end="")
    return status


def _needs_first(args: argparse.Namespace) -> None:
    """What a real run needs that takes no planning (the objective, the budget, the Pulumi
    CLI), checked before the plan is made; the project (which the sweep stack's own config
    may give) is checked once it is planned, before it is printed."""
    what = "search" if args.space is not None else "run"
    if args.p99_ms is None or args.max_usd is None:
        raise ConfigError(
            "sweep", f"a real {what} needs --p99-ms (the objective) and --max-usd (the budget)"
        )
    if not shutil.which("pulumi"):
        raise ConfigError(
            "sweep",
            "needs the Pulumi CLI on PATH (the Automation API drives it): "
            "https://www.pulumi.com/docs/install/ ; `--dry-run` works without it",
        )


def _ready_to_run(args: argparse.Namespace, design: SweepDesign, manifest: SweepManifest) -> None:
    """What a real run needs of its plan (the budget, the quota), checked before anything is
    created."""
    assert args.max_usd is not None, "checked by _needs_first"
    if design.gcp_project in ("", PLACEHOLDER_GCP_PROJECT):
        raise ConfigError(
            "gcp:project",
            f"is not set for the sweep: pass --gcp-project, set {PROJECT_ENVS[0]}, or run "
            f"`pulumi config set gcp:project <id> --stack {design.stack}`",
        )
    total = manifest.spent_usd + design.estimate.usd
    if total > args.max_usd:
        spent = (
            f"{manifest.spent_usd:.2f} USD spent by earlier runs + " if manifest.spent_usd else ""
        )
        raise ConfigError(
            "--max-usd",
            f"{spent}an estimate of {design.estimate.usd:.2f} USD is over the budget of "
            f"{args.max_usd:g} USD: refused before creating anything. Raise --max-usd, or sweep "
            "fewer experiments or fewer capacity steps (--max-steps).",
        )
    if not args.skip_quota_check:
        try:
            token = gcloud_access_token()
            region = fetch_region(design.gcp_project, design.region, token)
            project = fetch_project(design.gcp_project, token)
        except QuotaError as error:
            raise ConfigError("quota", f"{error} (or pass --skip-quota-check)") from None
        need = design.need
        on_spot = any(e.spot or e.load_generator_spot for e in design.experiments)
        if on_spot and preemptible_quota(region):
            need = needs(design.steps, design.durations, preemptible=True)
        problems = check(region, project, need, design.gcp_project)
        if problems:
            raise ConfigError("quota", " ".join(problems))
        print(
            f"Quota: the sweep's largest phases fit the quotas of {design.region} and the "
            f"project ({need.describe()})."
        )


def resolve_models(design: SweepDesign) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each experiment's model resolved online, as `pulumi up` would (downloaded once into
    the cache): {source: {release_tag, sha256}} and {experiment: sha256}."""
    resolved: dict[str, dict[str, str]] = {}
    pins: dict[str, str] = {}
    for experiment, request in design.model_requests().items():
        source = str(request["modelSource"])
        environment = fetch_environment(
            str(request["githubApiUrl"]), int(request["modelMaxDownloadMb"])
        )
        try:
            model = resolve_model(
                ModelRequest(
                    source,
                    str(request["modelName"]),
                    int(request["modelVersion"]),
                    str(request["modelSha256"] or ""),
                ),
                environment,
            )
        except ModelSourceError as error:
            raise ConfigError(f"experiment {experiment}", str(error)) from None
        resolved[source] = {"release_tag": model.release_tag, "sha256": model.sha256}
        pins[experiment] = model.sha256
    return resolved, pins


def _automation_stack(name: str) -> Any:
    from pulumi import automation as auto  # noqa: PLC0415 - only a real run needs it

    return auto.create_or_select_stack(stack_name=name, work_dir=str(PROJECT_DIR))


def _config_values(design: SweepDesign) -> ConfigValues:
    """The stack config of an experiment, as `config set-all` takes it: plain values in
    one call, and each list item as a path key (`key[0]`) in a second call with --path.
    Pulumi's typed project config refuses a list given as one string
    (pkg/workspace/config.go: an array setting's stack value must be an object value)."""
    from pulumi import automation as auto  # noqa: PLC0415

    project = project_name()

    def values(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        plain = {
            f"{project}:{key}": auto.ConfigValue(value=config_string(value), secret=False)
            for key, value in settings.items()
            if not isinstance(value, (list, tuple))
        }
        plain["gcp:project"] = auto.ConfigValue(value=design.gcp_project, secret=False)
        paths = {
            f"{project}:{key}[{index}]": auto.ConfigValue(value=str(item), secret=False)
            for key, value in settings.items()
            if isinstance(value, (list, tuple))
            for index, item in enumerate(value)
        }
        return plain, paths

    return values


def cluster_measure(
    design: SweepDesign,
    say: Callable[[str], None] = print,
    stop_when: Callable[[str, float | None, float | None], str] | None = None,
    seed: int = 0,
) -> Measure:
    """Each experiment's capacity, searched from inside its cluster once its pods settled;
    `stop_when(experiment, low, high)` may stop a search early (a search over a space
    stops a configuration that cannot win). Each run's arrivals are seeded from `seed`,
    the experiment, the rate and the repeat."""
    # The load generator's side (the kubernetes client) only for a real run: every other
    # command imports this module.
    from infra.bench.capacity import Objective  # noqa: PLC0415
    from infra.bench.cluster import ClusterRunError  # noqa: PLC0415
    from infra.bench.session import BenchError, capacity_search, cluster_runs  # noqa: PLC0415
    from infra.loadgen.spec import WorkerSpec  # noqa: PLC0415
    from infra.loadgen.stats import max_send_lag_ms  # noqa: PLC0415

    search = design.search
    assert search.p99_ms is not None, "a real run has an objective"
    objective = Objective(search.p99_ms, search.max_error_rate)

    def measure(
        experiment: Planned,
        outputs: dict[str, Any],
        rate: float,
        after_step: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        try:
            runs = cluster_runs(
                design.stack, outputs, lambda: str(outputs["kubeconfig"]), None, say
            )
            assert runs.cluster is not None
            runs.cluster.wait_for_serving(int(outputs["replicas"]), ROLLOUT_SETTLE_S)
            spec = WorkerSpec(
                protocol=search.protocol,
                rest_url=str(outputs["restEndpoint"]),
                grpc_target=str(outputs["grpcEndpoint"]),
                model=str(outputs["modelName"]),
                signature=SEARCH_SIGNATURE,
                batch=1,
                mode="open",
                rate=rate,
                users=1,
                duration_s=search.duration_s,
                warmup_s=search.warmup_s,
                timeout_s=30.0,
                max_in_flight=1000,
                arrivals=search.arrivals,
                seed=seed,
                max_send_lag_ms=max_send_lag_ms(search.p99_ms),
            )
            return capacity_search(
                runs, spec, outputs, objective, max_steps=search.max_steps,
                max_repeats=search.max_repeats, say=say,
                after_step=after_step,
                stop_when=(
                    (lambda low, high: stop_when(experiment.name, low, high))
                    if stop_when else None
                ),
            )  # fmt: skip
        except (BenchError, ClusterRunError) as error:
            raise MeasureError(str(error)) from None

    return measure


def run_search(args: argparse.Namespace, search: SearchSettings, extra: dict[str, Any]) -> int:
    """`sweep --space FILE` for real: the trials a search chooses, on one sweep stack."""
    if args.p99_ms is None or args.max_usd is None:
        raise ConfigError(
            "sweep", "a real search needs --p99-ms (the objective) and --max-usd (the budget)"
        )
    space = load_space(args, extra)
    goal = Goal(args.target_rps)
    trials = trials_allowed(args, space)
    manifest = _manifest(args, search, extra, {**_goal(args), "space": str(args.space)})
    searcher = Search(space, goal, seed=args.seed, sampler=args.sampler, max_trials=trials)
    searcher.seed_with(earlier_outcomes(args, space))
    done = resumed(searcher, manifest.results(), space)
    if done:
        print(f"{manifest.path}: {len(done)} configurations of the space already measured.")
    first = searcher.next() if len(done) < trials else None
    if first is None:
        return _report_only(manifest, "The search has measured what it may; the report:")
    _needs_first(args)
    d = Durations.from_data()
    ttl = ttl_hours(search, d)
    gcp_project = _gcp_project(args)

    def plan(candidate: Candidate) -> StackPlan:
        settings = candidate_settings(space, candidate, args.stack, ttl)
        return plan_configuration(args.stack, candidate.name, settings, gcp_project, search)

    def assembled(candidates: list[Candidate]) -> SweepDesign:
        return assemble(
            [plan(c) for c in candidates], search, stack=args.stack, extra=space.settings,
            durations=d, names=[c.name for c in candidates],
        )  # fmt: skip

    design = assembled([first])
    # The quota it needs at most: the two largest node pools, one replacing the other.
    largest = sorted(space.candidates, key=lambda c: -c.vcpus * c.price.nodes)[:2]
    design = replace(design, need=assembled(largest[::-1]).need)
    print(
        describe_space(SearchPlan(space, goal, trials, search, d, args.max_usd, args.sampler)),
        end="",
    )
    _ready_to_run(args, design, manifest)
    design = _pinned(design, manifest)
    _save_before_run(manifest)
    chooser = SearchSteps(
        search=searcher,
        space=space,
        design=design,
        plan=lambda c: assembled([c]).steps[0].experiment,
        max_trials=trials,
        max_usd=args.max_usd,
        trials=len(done),
    )
    run = _campaign_run(args, design, manifest, chooser)
    status = run.run()
    print(f"Search: {run.stopped or chooser.stopped}. {search_summary(searcher)}")
    return _finish(manifest, status)
