"""`python -m infra sweep --space FILE`: a search instead of a list of experiments.

`--dry-run` designs the space and prints what a search of it would cost at most;
`--replay RESULTS` runs the search offline against results measured earlier and prints
what it would have measured, in which order, what it would have spent and what it would
have picked. A real search (neither) measures on the sweep stack, trial after trial
(infra/sweep/search/run.py).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.design.machine import machine_family
from infra.design.pricing import catalogue
from infra.inputs.errors import ConfigError
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.search.objective import Goal
from infra.sweep.search.replay import (
    Replay,
    Results,
    read_results,
    replay,
    worst_case,
)
from infra.sweep.search.space import Candidate, SearchSpace, read_space
from infra.sweep.search.strategy import Outcome, Search

SCHEMA = "tfserving-gke/search-replay/v1"
PLAN_SCHEMA = "tfserving-gke/search-plan/v1"
# Without --max-trials or --max-usd, a search measures a tenth of the space (at least 4, and
# at least one trial per machine type it spans).
DEFAULT_TRIALS_FRACTION = 0.1
MIN_DEFAULT_TRIALS = 4


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_options(args: argparse.Namespace) -> None:
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


def trials_allowed(args: argparse.Namespace, space: SearchSpace) -> int:
    """--max-trials, or a tenth of the space when only --max-usd (or nothing) bounds it,
    and never fewer than the machine types it spans: each gets a trial."""
    if args.max_trials is not None:
        return min(int(args.max_trials), len(space.candidates))
    if args.max_usd is not None:
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


def load_space(args: argparse.Namespace, extra: dict[str, Any]) -> SearchSpace:
    path = Path(args.space)
    return read_space(path, stack=args.stack, extra=extra, deploy_spot=args.deploy_spot)


def earlier_outcomes(args: argparse.Namespace, space: SearchSpace) -> tuple[Outcome, ...]:
    """--from RESULTS: what an earlier sweep measured, for the search to start from."""
    if args.from_results is None:
        return ()
    results = read_results(Path(args.from_results), space)
    check_objective(results, args, "--from")
    return tuple(
        Outcome(name, recorded.low, recorded.high, earlier=True)
        for name, recorded in results.by_candidate.items()
    )


def check_objective(results: Results, args: argparse.Namespace, option: str) -> None:
    """Results measured at another objective do not compare with this search's."""
    measured = results.objective
    if not measured:
        return
    asked = {"p99_ms": args.p99_ms, "max_error_rate": args.max_error_rate}
    for key, value in asked.items():
        if value is not None and key in measured and float(measured[key]) != float(value):
            flag = "--p99-ms" if key == "p99_ms" else "--max-error-rate"
            raise ConfigError(
                option,
                f"{results.source} was measured at {key} {measured[key]:g}, this search asks "
                f"for {flag} {value:g}: capacities at another objective do not compare. Pass "
                f"{flag} {measured[key]:g}, or measure again",
            )


def _score_text(goal: Goal, score: float) -> str:
    if not math.isfinite(score):
        return "-"
    return f"{score:.2f}" if goal.target_rps else f"{score:.4f}"


def _range_text(low: float | None, high: float | None) -> str:
    low_text = "none passed" if low is None else f"{low:,.0f}"
    high_text = "open" if high is None else f"{high:,.0f}"
    return f"{low_text} to {high_text}"


def _measured_prices(space: SearchSpace) -> str:
    """With --spot: what the configurations cost while they are measured."""
    measured = [c.measure_price.usd_per_hour for c in space.candidates]
    deployed = [c.price.usd_per_hour for c in space.candidates]
    if measured == deployed:
        return ""
    return f"; measured on spot VMs: {min(measured):.4f} to {max(measured):.4f}"


def unverified_families(space: SearchSpace) -> list[str]:
    """The space's machine families whose catalogue rates were not read from the Billing
    Catalog (infra/data/prices.yaml's unverified_families)."""
    _, prices = catalogue()
    flagged = set(prices.get("unverified_families") or [])
    return sorted({machine_family(c.machine_type) for c in space.candidates} & flagged)


@dataclass(frozen=True)
class SearchPlan:
    """A search before it runs: its space, what it ranks by, and its bounds."""

    space: SearchSpace
    goal: Goal
    trials: int
    search: SearchSettings
    durations: Durations
    max_usd: float | None
    sampler: str


def describe_space(plan: SearchPlan) -> str:
    """The dry run of a search: the space, what ranks it, what a search costs at most."""
    space, goal, trials, search, d = plan.space, plan.goal, plan.trials, plan.search, plan.durations
    max_usd, sampler = plan.max_usd, plan.sampler
    prices = [c.price.usd_per_hour for c in space.candidates]
    dimensions = ", ".join(f"{key} ({len(values)})" for key, values in space.dimensions.items())
    lines = [
        f"Search space {space.source}: {_plural(len(space.candidates), 'configuration')}"
        + (f" over {dimensions}" if dimensions else "")
        + ".",
        *(f"Model: {name} (/v1/models/{name}) from {source}" for name, source in space.models),
    ]
    if space.refused:
        lines.append(
            f"  {len(space.refused)} more the program refuses, left out; the first: "
            f"{space.refused[0][0]}: {space.refused[0][1]}"
        )
    objective = f"p99 ≤ {search.p99_ms:g} ms" if search.p99_ms is not None else "--p99-ms"
    lines += [
        f"Ranked by {goal.unit}"
        + (f" ({goal.target_rps:g} requests/s)" if goal.target_rps else "")
        + f", at the low end of each capacity range at {objective}, errors ≤ "
        f"{search.max_error_rate:.2%}.",
        f"Prices: {min(prices):.4f} to {max(prices):.4f} USD/hour per configuration as it "
        "would be deployed (cluster fee and load balancer included)"
        + _measured_prices(space)
        + ".",
        f"Search: {sampler} sampler, at most {_plural(trials, 'trial')} "
        f"({trials / len(space.candidates):.0%} of the space); a trial stops as soon as its "
        "capacity range shows it cannot win.",
    ]
    unverified = unverified_families(space)
    if unverified:
        lines.append(
            f"Rates of {', '.join(f.upper() for f in unverified)} in the price catalogue are "
            "not read from the Billing Catalog: run `venv/bin/python scripts/refresh_prices.py` "
            "before trusting a ranking across families."
        )
    hours, usd = worst_case(space, trials, search, d)
    all_hours, all_usd = worst_case(space, len(space.candidates), search, d)
    lines += [
        f"Estimate (durations as of {d.as_of}): at most {hours:.1f} h and {usd:.2f} USD "
        f"(every trial the dearest, on a new node pool, at its most steps); measuring every "
        f"configuration in full: {all_hours:.1f} h, {all_usd:.2f} USD.",
    ]
    if max_usd is not None:
        fits = "fits" if usd <= max_usd else "is above it: the search stops at the budget"
        lines.append(f"Budget: --max-usd {max_usd:g}: the estimate of {usd:.2f} USD {fits}.")
    cheapest = sorted(space.candidates, key=lambda c: c.price.usd_per_hour)[:5]
    lines += ["", "Cheapest per hour (what a search weighs against their capacity):"]
    lines += [f"  {c.price.usd_per_hour:.4f}  {c.name}: {c.summary}" for c in cheapest]
    return "\n".join(lines) + "\n"


def plan_json(plan: SearchPlan) -> dict[str, Any]:
    space, goal, trials, search, d = plan.space, plan.goal, plan.trials, plan.search, plan.durations
    max_usd, sampler = plan.max_usd, plan.sampler
    hours, usd = worst_case(space, trials, search, d)
    all_hours, all_usd = worst_case(space, len(space.candidates), search, d)
    return {
        "schema": PLAN_SCHEMA,
        "space": space.source,
        "dimensions": {k: [_plain(v) for v in values] for k, values in space.dimensions.items()},
        "configurations": [_candidate_json(c) for c in space.candidates],
        "refused": [{"configuration": name, "why": why} for name, why in space.refused],
        "goal": {"target_rps": goal.target_rps, "unit": goal.unit},
        "sampler": sampler,
        "max_trials": trials,
        "estimate": {"hours_at_most": round(hours, 2), "usd_at_most": round(usd, 2)},
        "every_configuration": {"hours": round(all_hours, 2), "usd": round(all_usd, 2)},
        "budget": {"max_usd": max_usd, "fits": None if max_usd is None else usd <= max_usd},
        "capacity_search": search.to_json(),
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "name": c.name,
        "preset": c.preset,
        "settings": {k: _plain(v) for k, v in c.settings.items()},
        "summary": c.summary,
        "usd_per_hour": round(c.price.usd_per_hour, 4),
        "node_usd_per_hour": round(c.price.node_usd_per_hour, 4),
        # What it costs while measured (on spot VMs with --spot).
        "measured_usd_per_hour": round(c.measure_price.usd_per_hour, 4),
        "nodes": c.price.nodes,
    }


def pick_text(goal: Goal, space: SearchSpace, name: str, result: Replay) -> str:
    """What the pick is worth; with a target, the nodes that serve it."""
    candidate = space.by_name()[name]
    low = next(t.low for t in result.trials if t.candidate == name)
    if goal.target_rps is None or low is None:
        return f"{_score_text(goal, result.picked_score)} {goal.unit}"
    nodes = goal.nodes_needed(candidate.price, low)
    return (
        f"{nodes} x {candidate.machine_type} serve {goal.target_rps:g} requests/s (at "
        f"{low / candidate.price.nodes:,.0f} requests/s per node, the low end of its range), "
        f"{result.picked_score:.2f} USD/hour with the cluster fee and load balancer"
    )


def picked_nodes(result: Replay, space: SearchSpace) -> int | None:
    """With a target: the nodes of the pick that serve it."""
    if result.picked is None or result.goal.target_rps is None:
        return None
    low = next(t.low for t in result.trials if t.candidate == result.picked)
    return (
        None if low is None else result.goal.nodes_needed(space.by_name()[result.picked].price, low)
    )


def search_summary(search: Search) -> str:
    """What a real search picked, by its goal (with a target, the nodes that serve it)."""
    best = search.incumbent()
    if best is None:
        return "No configuration tried met the objective with confidence."
    candidate, outcome = best
    goal = search.goal
    text = f"Picked: {candidate.name}"
    if goal.target_rps is not None and outcome.low:
        nodes = goal.nodes_needed(candidate.price, outcome.low)
        return (
            f"{text}: {nodes} x {candidate.machine_type} serve {goal.target_rps:g} requests/s, "
            f"{outcome.score(goal, candidate):.2f} USD/hour with the cluster fee and load "
            f"balancer (the report and `promote` carry the node count)."
        )
    return f"{text}: {outcome.score(goal, candidate):.4f} {goal.unit}."


def describe_replay(result: Replay, space: SearchSpace, results: Results, trials: int) -> str:
    goal = result.goal
    lines = [
        f"Replay of a search of {space.source} against {results.source}: "
        f"{_plural(result.configurations, 'configuration')} with a result"
        + (f" ({result.missing} of the space without one, never chosen)" if result.missing else "")
        + f", at most {_plural(trials, 'trial')}. Ranked by {goal.unit}"
        + (f" ({goal.target_rps:g} requests/s)." if goal.target_rps else "."),
        "",
        f"{'#':>3}  {'runs':>4}  {'capacity range (req/s)':<22} {'score':>9} {'USD':>6}  "
        "configuration (* stopped early: it cannot win)",
    ]
    for index, trial in enumerate(result.trials, start=1):
        lines.append(
            f"{index:>3}  {trial.runs:>4}  {_range_text(trial.low, trial.high):<22} "
            f"{_score_text(goal, trial.score):>9} {trial.usd:>6.2f}  "
            f"{'*' if trial.pruned else ' '}{trial.candidate}"
        )
    pruned = sum(t.pruned for t in result.trials)
    lines += [
        "",
        f"Stopped: {result.stopped}. {_plural(len(result.trials), 'trial')}, {pruned} of them "
        "stopped early; spent about "
        f"{result.spent_usd:.2f} USD with the destroy (measuring every configuration in full: "
        f"{result.full_usd:.2f} USD).",
    ]
    if result.picked is None:
        lines.append(
            "Picked: nothing; the search stopped before its first trial."
            if not result.trials
            else "Picked: nothing; no configuration tried met the objective with confidence."
        )
        return "\n".join(lines) + "\n"
    lines.append(f"Picked: {result.picked}: {pick_text(goal, space, result.picked, result)}.")
    if result.best is not None and result.gap is not None:
        if result.picked == result.best:
            lines.append("It is the best configuration in the results.")
        else:
            lines.append(
                f"The best in the results: {result.best} ({_score_text(goal, result.best_score)}"
                f"): the pick costs {result.gap:.1%} more."
            )
    return "\n".join(lines) + "\n"


def replay_json(result: Replay, space: SearchSpace, results: Results, args: Any) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "space": space.source,
        "results": results.source,
        "goal": {"target_rps": result.goal.target_rps, "unit": result.goal.unit},
        "sampler": args.sampler,
        "seed": args.seed,
        "trials": [
            {
                "configuration": t.candidate,
                "runs": t.runs,
                "stopped_early": t.pruned,
                "capacity_range": [t.low, t.high],
                "score": t.score if math.isfinite(t.score) else None,
                "minutes": t.minutes,
                "usd": t.usd,
                "spent_usd": t.spent_usd,
            }
            for t in result.trials
        ],
        "stopped": result.stopped,
        "spent_usd": round(result.spent_usd, 4),
        "every_configuration_usd": round(result.full_usd, 4),
        "picked": result.picked,
        "picked_nodes": picked_nodes(result, space),
        "picked_score": result.picked_score if math.isfinite(result.picked_score) else None,
        "best": result.best,
        "best_score": result.best_score if math.isfinite(result.best_score) else None,
        "gap": None if result.gap is None else round(result.gap, 6),
        "configurations_with_results": result.configurations,
        "configurations_without_results": result.missing,
        "unmatched_results": list(results.unmatched),
    }


def run_space(
    args: argparse.Namespace, search: SearchSettings, extra: dict[str, Any]
) -> int | None:
    """The dry run or the replay of a search; None when a real search is to run."""
    goal = Goal(args.target_rps)
    space = load_space(args, extra)
    trials = trials_allowed(args, space)
    d = Durations.from_data()
    if args.dry_run:
        plan = SearchPlan(space, goal, trials, search, d, args.max_usd, args.sampler)
        print(describe_space(plan), end="")
        if args.json:
            document = plan_json(plan)
            args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            print(f"\nWrote {args.json}")
        return 0
    if args.replay is None:
        return None
    results = read_results(Path(args.replay), space)
    check_objective(results, args, "--replay")
    if results.objective and args.p99_ms is None:
        search = replace(search, p99_ms=float(results.objective["p99_ms"]))
    outcome = replay(
        space,
        results,
        goal,
        search,
        max_trials=trials,
        max_usd=args.max_usd,
        seed=args.seed,
        sampler=args.sampler,
        durations=d,
        earlier=earlier_outcomes(args, space),
    )
    print(describe_replay(outcome, space, results, trials), end="")
    if args.json:
        document = replay_json(outcome, space, results, args)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"\nWrote {args.json}")
    if outcome.picked is None:
        return 1
    return 0
