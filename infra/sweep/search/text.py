"""What a search prints and writes: the dry run of a space (what it ranks by, what a
search of it costs at most), the replay of a search against earlier results (what it would
have measured, spent and picked) and a real search's pick. Text and JSON only; the
campaign (infra/sweep/campaign.py) decides what runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infra.design.machine import machine_family
from infra.design.pricing import catalogue
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.search.objective import Goal
from infra.sweep.search.replay import Replay, Results, worst_case
from infra.sweep.search.space import Candidate, SearchSpace
from infra.sweep.search.strategy import Search

SCHEMA = "tfserving-gke/search-replay/v1"
PLAN_SCHEMA = "tfserving-gke/search-plan/v1"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


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


def replay_json(
    result: Replay, space: SearchSpace, results: Results, sampler: str, seed: int
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "space": space.source,
        "results": results.source,
        "goal": {"target_rps": result.goal.target_rps, "unit": result.goal.unit},
        "sampler": sampler,
        "seed": seed,
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
