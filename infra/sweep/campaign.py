"""A campaign from what the user asked for to its report: a list of experiments or a
search of a space, offline (the dry run, the replay) or for real.

Both kinds take the same path: open the sweep folder (resuming what it holds), design
what is left, print what it will cost, check what a real run needs before anything is
created (the objective, the budget, the Pulumi CLI, the project, its quotas), pin every
model to the artifact measured, save the manifest, then one run loop
(infra.sweep.run.SweepRun) deploys, measures, saves and tears down, whichever chooser
(infra.sweep.listed.ListedSteps for a list, infra.sweep.search.run.SearchSteps for a search)
gives it its steps. The report is written and printed last.

The command line (infra/sweep/cli.py) only reads the options into a `Request`; what
reaches beyond this machine is in infra/sweep/live.py.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.design.settings import PLACEHOLDER_GCP_PROJECT
from infra.inputs.errors import ConfigError, InputError
from infra.plan.run import StackPlan
from infra.sweep import live
from infra.sweep.design import (
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
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.listed import ListedSteps
from infra.sweep.manifest import SweepManifest, open_manifest
from infra.sweep.report import markdown, write_report
from infra.sweep.run import SweepRun
from infra.sweep.search.objective import Goal
from infra.sweep.search.replay import Results, read_results, replay
from infra.sweep.search.run import SearchSteps, candidate_settings, resumed
from infra.sweep.search.space import Candidate, SearchSpace, read_space
from infra.sweep.search.strategy import Outcome, Search
from infra.sweep.search.text import (
    SearchPlan,
    describe_replay,
    describe_space,
    plan_json,
    replay_json,
    search_summary,
)
from infra.teardown.cloud import gcp_exists

PROJECT_ENVS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
# What makes two runs' results comparable: a rerun must keep these to continue a sweep.
COMPARED = ("p99_ms", "max_error_rate", "protocol", "warmup_s", "duration_s", "arrivals")
# Without --max-trials or --max-usd, a search measures a tenth of the space (at least 4, and
# at least one trial per machine type it spans).
DEFAULT_TRIALS_FRACTION = 0.1
MIN_DEFAULT_TRIALS = 4


@dataclass(frozen=True)
class Request:
    """What the user asked for, as the command line read and checked it."""

    stack: str
    directory: Path
    search: SearchSettings  # the capacity search each configuration gets, its objective
    extra: dict[str, Any] = field(default_factory=dict)  # --set (and --spot) for every one
    experiments: tuple[str, ...] = ()  # a list: these presets...
    all: bool = False  # ...or the reference experiments
    space: Path | None = None  # a search of this space instead
    max_usd: float | None = None
    target_rps: float | None = None
    deploy_spot: bool = False
    gcp_project: str = ""  # --gcp-project or the environment's; else the stack's config
    dry_run: bool = False
    json: Path | None = None
    keep: bool = False
    skip_quota_check: bool = False
    max_trials: int | None = None
    sampler: str = "model"
    seed: int = 0
    replay: Path | None = None
    from_results: Path | None = None

    @property
    def what(self) -> str:
        return "search" if self.space is not None else "run"

    def goal(self) -> dict[str, Any]:
        """What the report ranks by: this run's, whatever earlier runs ranked by (a new
        target re-ranks what was measured, it measures nothing again)."""
        document: dict[str, Any] = {
            "target_rps": self.target_rps,
            "deploy_spot": self.deploy_spot,
        }
        if self.space is not None:
            document["space"] = str(self.space)
        return document


def run(request: Request) -> int:
    """The campaign asked for, to its exit status."""
    if request.space is None:
        return run_list(request)
    if request.dry_run:
        return dry_run_space(request)
    if request.replay is not None:
        return replay_space(request)
    return run_search(request)


# --- a list of experiments ------------------------------------------------------------


def run_list(request: Request) -> int:
    """`sweep NAMES | --all`: the experiments not yet measured, cheapest order first."""
    names = check_names(reference_experiments() if request.all else list(request.experiments))
    manifest = _open(request)
    pending = manifest.pending(names)
    if manifest.measured:
        done = len(names) - len(pending)
        print(f"{manifest.path}: {done} of {len(names)} experiments already measured.")
    if not pending:
        return _report_only(manifest, "Every experiment asked for is measured; the report:")
    if not request.dry_run:
        _needs_first(request)
    design = design_sweep(
        pending, request.search, stack=request.stack, extra=request.extra,
        gcp_project=request.gcp_project,
    )  # fmt: skip
    if not request.dry_run:
        _ready_to_run(request, design, manifest)
    print(describe(design, request.max_usd), end="")
    print(ranking_line(request), end="")
    if request.dry_run:
        if request.json:
            _write_json(request.json, dry_run_json(design, request.max_usd))
        over = request.max_usd is not None and design.estimate.usd > request.max_usd
        return 2 if over else 0
    design = _pinned(design, manifest)
    manifest.order = list(dict.fromkeys([*manifest.order, *(e.name for e in design.experiments)]))
    _save_before_run(manifest)
    sweep = _sweep_run(request, design, manifest, ListedSteps(design))
    return _finish(manifest, sweep.run())


def ranking_line(request: Request) -> str:
    """What the report will rank by, as the dry run says it."""
    prices = "spot" if request.deploy_spot else "on-demand"
    if request.target_rps is None:
        return f"The report ranks by requests per dollar at {prices} prices.\n"
    return (
        f"The report ranks by the cost per hour of serving {request.target_rps:g} requests/s: "
        "whole nodes from the low end of each capacity range, cluster fee and load balancer "
        f"included, at {prices} prices.\n"
    )


# --- a search of a space --------------------------------------------------------------


def load_space(request: Request) -> SearchSpace:
    assert request.space is not None
    return read_space(
        request.space, stack=request.stack, extra=request.extra, deploy_spot=request.deploy_spot
    )


def trials_allowed(request: Request, space: SearchSpace) -> int:
    """--max-trials, or a tenth of the space when only --max-usd (or nothing) bounds it,
    and never fewer than the machine types it spans: each gets a trial."""
    if request.max_trials is not None:
        return min(request.max_trials, len(space.candidates))
    if request.max_usd is not None:
        return len(space.candidates)
    machines = len(space.dimensions.get("machineType", ()))
    return min(
        len(space.candidates),
        max(
            MIN_DEFAULT_TRIALS,
            machines,
            math.ceil(len(space.candidates) * DEFAULT_TRIALS_FRACTION),
        ),
    )


def earlier_outcomes(request: Request, space: SearchSpace) -> tuple[Outcome, ...]:
    """--from RESULTS: what an earlier sweep measured, for the search to start from."""
    if request.from_results is None:
        return ()
    results = read_results(request.from_results, space)
    check_objective(results, request.search, "--from")
    return tuple(
        Outcome(name, recorded.low, recorded.high, earlier=True)
        for name, recorded in results.by_candidate.items()
    )


def check_objective(results: Results, search: SearchSettings, option: str) -> None:
    """Results measured at another objective do not compare with this search's."""
    measured = results.objective
    if not measured:
        return
    asked = {"p99_ms": search.p99_ms, "max_error_rate": search.max_error_rate}
    for key, value in asked.items():
        if value is not None and key in measured and float(measured[key]) != float(value):
            flag = "--p99-ms" if key == "p99_ms" else "--max-error-rate"
            raise ConfigError(
                option,
                f"{results.source} was measured at {key} {measured[key]:g}, this search asks "
                f"for {flag} {value:g}: capacities at another objective do not compare. Pass "
                f"{flag} {measured[key]:g}, or measure again",
            )


def dry_run_space(request: Request) -> int:
    """`sweep --space FILE --dry-run`: the space, what ranks it, what a search costs."""
    space = load_space(request)
    plan = SearchPlan(
        space,
        Goal(request.target_rps),
        trials_allowed(request, space),
        request.search,
        Durations.from_data(),
        request.max_usd,
        request.sampler,
    )
    print(describe_space(plan), end="")
    if request.json:
        _write_json(request.json, plan_json(plan))
    return 0


def replay_space(request: Request) -> int:
    """`sweep --space FILE --replay RESULTS`: the search run offline against results
    measured earlier; exit 1 when it picks nothing."""
    assert request.replay is not None
    space = load_space(request)
    trials = trials_allowed(request, space)
    results = read_results(request.replay, space)
    check_objective(results, request.search, "--replay")
    search = request.search
    if results.objective and search.p99_ms is None:
        search = replace(search, p99_ms=float(results.objective["p99_ms"]))
    outcome = replay(
        space,
        results,
        Goal(request.target_rps),
        search,
        max_trials=trials,
        max_usd=request.max_usd,
        seed=request.seed,
        sampler=request.sampler,
        durations=Durations.from_data(),
        earlier=earlier_outcomes(request, space),
    )
    print(describe_replay(outcome, space, results, trials), end="")
    if request.json:
        document = replay_json(outcome, space, results, request.sampler, request.seed)
        _write_json(request.json, document)
    return 1 if outcome.picked is None else 0


def run_search(request: Request) -> int:
    """`sweep --space FILE` for real: the trials a search chooses, on one sweep stack."""
    _needs_objective(request)
    space = load_space(request)
    goal = Goal(request.target_rps)
    trials = trials_allowed(request, space)
    manifest = _open(request)
    searcher = Search(space, goal, seed=request.seed, sampler=request.sampler, max_trials=trials)
    searcher.seed_with(earlier_outcomes(request, space))
    done = resumed(searcher, manifest.results(), space)
    if done:
        print(f"{manifest.path}: {len(done)} configurations of the space already measured.")
    first = searcher.next() if len(done) < trials else None
    if first is None:
        return _report_only(manifest, "The search has measured what it may; the report:")
    _needs_first(request)
    d = Durations.from_data()
    ttl = ttl_hours(request.search, d)

    def plan(candidate: Candidate) -> StackPlan:
        settings = candidate_settings(space, candidate, request.stack, ttl)
        return plan_configuration(
            request.stack, candidate.name, settings, request.gcp_project, request.search
        )

    def assembled(candidates: list[Candidate]) -> SweepDesign:
        return assemble(
            [plan(c) for c in candidates], request.search, stack=request.stack,
            extra=space.settings, durations=d, names=[c.name for c in candidates],
        )  # fmt: skip

    design = assembled([first])
    # The quota it needs at most: the two largest node pools, one replacing the other.
    largest = sorted(space.candidates, key=lambda c: -c.vcpus * c.price.nodes)[:2]
    design = replace(design, need=assembled(largest[::-1]).need)
    search_plan = SearchPlan(
        space, goal, trials, request.search, d, request.max_usd, request.sampler
    )
    print(describe_space(search_plan), end="")
    _ready_to_run(request, design, manifest)
    design = _pinned(design, manifest)
    _save_before_run(manifest)
    assert request.max_usd is not None, "checked by _needs_first"
    chooser = SearchSteps(
        search=searcher,
        space=space,
        design=design,
        plan=lambda c: assembled([c]).steps[0].experiment,
        max_trials=trials,
        max_usd=request.max_usd,
        trials=len(done),
    )
    sweep = _sweep_run(request, design, manifest, chooser)
    status = sweep.run()
    print(f"Search: {sweep.stopped or chooser.stopped}. {search_summary(searcher)}")
    return _finish(manifest, status)


# --- what both take -------------------------------------------------------------------


def _open(request: Request) -> SweepManifest:
    """The sweep folder's manifest, what it ranks by now, and what changed since."""
    compared = {key: getattr(request.search, key) for key in COMPARED}
    manifest = open_manifest(request.directory, request.stack, compared, request.extra)
    if manifest.lost:
        print(
            f"Note: {manifest.path} lists {', '.join(manifest.lost)} as measured, but "
            f"{'its results file is' if len(manifest.lost) == 1 else 'their results files are'}"
            f" gone from {request.directory / 'results'}: measured again."
        )
    goal = request.goal()
    before, now = manifest.goal.get("space"), goal.get("space")
    if before and before != now:
        print(
            f"Note: {request.directory} holds a search of {before}; this one is of "
            f"{now or 'a list'}: what was measured of configurations in both counts, the rest "
            "is left out."
        )
    manifest.goal = goal
    return manifest


def _report_only(manifest: SweepManifest, why: str) -> int:
    """Nothing left to measure: the report of what was, and exit 0."""
    print(why)
    _save_before_run(manifest)  # what the report ranks by, as it now does
    report, _ = write_report(manifest)
    print(markdown(report), end="")
    return 0


def _needs_objective(request: Request) -> None:
    if request.search.p99_ms is None or request.max_usd is None:
        raise ConfigError(
            "sweep",
            f"a real {request.what} needs --p99-ms (the objective) and --max-usd (the budget)",
        )


def _needs_first(request: Request) -> None:
    """What a real run needs that takes no planning (the objective, the budget, the Pulumi
    CLI), checked before the plan is made; the project (which the sweep stack's own config
    may give) is checked once it is planned, before it is printed."""
    _needs_objective(request)
    if not shutil.which("pulumi"):
        raise ConfigError(
            "sweep",
            "needs the Pulumi CLI on PATH (the Automation API drives it): "
            "https://www.pulumi.com/docs/install/ ; `--dry-run` works without it",
        )


def _ready_to_run(request: Request, design: SweepDesign, manifest: SweepManifest) -> None:
    """What a real run needs of its plan (the budget, the quota), checked before anything is
    created."""
    assert request.max_usd is not None, "checked by _needs_first"
    if design.gcp_project in ("", PLACEHOLDER_GCP_PROJECT):
        raise ConfigError(
            "gcp:project",
            f"is not set for the sweep: pass --gcp-project, set {PROJECT_ENVS[0]}, or run "
            f"`pulumi config set gcp:project <id> --stack {design.stack}`",
        )
    total = manifest.spent_usd + design.estimate.usd
    if total > request.max_usd:
        spent = (
            f"{manifest.spent_usd:.2f} USD spent by earlier runs + " if manifest.spent_usd else ""
        )
        raise ConfigError(
            "--max-usd",
            f"{spent}an estimate of {design.estimate.usd:.2f} USD is over the budget of "
            f"{request.max_usd:g} USD: refused before creating anything. Raise --max-usd, or "
            "sweep fewer experiments or fewer capacity steps (--max-steps).",
        )
    if not request.skip_quota_check:
        print(live.check_quota(design))


def _pinned(design: SweepDesign, manifest: SweepManifest) -> SweepDesign:
    """The design with every model pinned to the artifact the campaign measures (recorded
    in the manifest, so a resumed campaign measures the same one)."""
    resolved, pins = live.resolve_models(design)
    manifest.pin_models(resolved)
    return replace(design, model_pins=pins)


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


def _sweep_run(
    request: Request,
    design: SweepDesign,
    manifest: SweepManifest,
    chooser: ListedSteps | SearchSteps,
) -> SweepRun:
    """The one run loop, on the sweep stack through the Automation API, torn down at the
    end; a search's chooser may stop a capacity search that shows it cannot win."""
    assert request.max_usd is not None, "checked by _needs_first"
    stop_when = chooser.stop_reason if isinstance(chooser, SearchSteps) else None
    return SweepRun(
        design=design,
        manifest=manifest,
        stack=live.automation_stack(request.stack),
        config_values=live.config_values(design),
        measure=(
            live.cluster_measure(design, seed=request.seed)
            if stop_when is None
            else live.cluster_measure(design, stop_when=stop_when, seed=request.seed)
        ),
        max_usd=request.max_usd,
        exists=gcp_exists(print),
        keep=request.keep,
        chooser=chooser,
    )


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


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nWrote {path}")
