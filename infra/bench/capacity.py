"""Capacity under a latency objective, with its confidence: the highest open-loop rate
whose p99 meets the objective (errors under the limit) with 95% confidence, and the range
the true capacity lies in. Pure: it decides the rates and judges the steps; the caller
runs them.

The rules (the README says why):
- Ramp x2 per step from the start rate (or /2 while it fails) until one rate passes with
  confidence and a higher one does not, then bisect between them until they are within
  the tolerance (5%).
- A step whose interval straddles the objective (infra.bench.confidence) is repeated at
  the same rate, up to `max_repeats` times, its windows pooled, until the interval clears
  the objective; still undecided, it counts as not passing (a capacity is only claimed
  with confidence), and the range says so.
- A step whose load generator was the limit (its send lag beside the objective), or whose
  load did not reach every serving pod evenly, measured something else than the server:
  the search stops there, and nothing is claimed above what passed before it.
- Repeats count as steps against `max_steps`. A search that runs out of steps before its
  range closed reports the range with no capacity (`converged` false): never a gap as if
  it were a capacity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.bench.confidence import FAIL, PASS, UNDECIDED, Confidence, confidence, verdict

GROWTH = 2.0
TOLERANCE = 0.05  # the range is closed when its ends are within 5% of the passing rate
MAX_STEPS = 12
MAX_REPEATS = 2  # an undecided rate is measured at most three times
MIN_RATE = 0.5
LIMITED, UNBALANCED = "limited", "unbalanced"


@dataclass(frozen=True)
class Objective:
    """What a step must meet."""

    p99_ms: float
    max_error_rate: float

    def describe(self) -> str:
        return f"p99 ≤ {self.p99_ms:g} ms, errors ≤ {self.max_error_rate:.2%}"


def pooled(documents: list[dict[str, Any]]) -> Confidence:
    """The figures of every run at one rate, their windows side by side."""
    return confidence([batch for document in documents for batch in document["batches"]])


def judge(documents: list[dict[str, Any]], objective: Objective) -> tuple[str, str]:
    """(pass | fail | undecided | limited | unbalanced, why) for the runs at one rate."""
    for document in documents:
        summary = document["summary"]
        if summary.get("load_generator_limited"):
            return LIMITED, str(summary.get("load_generator_limited_reason"))
        balance = (document.get("server") or {}).get("balance") or {}
        if balance.get("unbalanced"):
            return UNBALANCED, str(balance.get("why"))
    return verdict(pooled(documents), objective.p99_ms, objective.max_error_rate)


def find_capacity(
    run_step: Callable[[float], dict[str, Any]],
    objective: Objective,
    start_rate: float,
    *,
    max_steps: int = MAX_STEPS,
    max_repeats: int = MAX_REPEATS,
    tolerance: float = TOLERANCE,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    judge_runs: Callable[[list[dict[str, Any]]], tuple[str, str]] | None = None,
    stop_when: Callable[[float | None, float | None], str] | None = None,
) -> dict[str, Any]:
    """Run steps (run_step(rate) -> results document) and return the capacity block:
    objective, rate_per_s (the highest rate that passed with confidence, once the range
    closed; else null), range {low, high}, converged, rps there, the index of that step,
    every step with its verdict and pooled figures, and why the search stopped.
    `judge_runs` judges a rate's runs instead of the objective (benchmarks of the load
    generator itself search on its send lag). `stop_when(low, high)` sees the range after
    each step and stops the search when it returns a reason (a search over configurations
    stops one that cannot win); the block then says `stopped_early`."""
    steps: list[dict[str, Any]] = []
    runs = 0
    passing: float | None = None  # highest rate that passed with confidence
    failing: float | None = None  # lowest rate that failed with confidence
    undecided: float | None = None  # lowest rate left undecided
    rate = start_rate
    stopped = f"reached the limit of {max_steps} steps before the range closed"
    converged = False
    early = ""
    while runs < max_steps:
        documents: list[dict[str, Any]] = []
        while True:
            documents.append(run_step(rate))
            runs += 1
            kind, why = (judge_runs or (lambda runs: judge(runs, objective)))(documents)
            if kind != UNDECIDED or len(documents) > max_repeats or runs >= max_steps:
                break
        figures = pooled(documents)
        steps.append(
            {
                "rate_per_s": rate,
                "verdict": kind,
                "why": why,
                "runs": len(documents),
                "confidence": figures.to_json(),
                "result": documents[-1],
            }
        )
        if on_step:
            on_step(steps[-1])
        if kind in (LIMITED, UNBALANCED):
            stopped = (
                f"the step at {rate:g} requests/s measured something else than the server ({why})"
            )
            break
        if kind == PASS:
            passing = rate if passing is None else max(passing, rate)
        elif kind == FAIL:
            failing = rate if failing is None else min(failing, rate)
        else:
            undecided = rate if undecided is None else min(undecided, rate)
        upper = min((r for r in (failing, undecided) if r is not None), default=None)
        if passing is not None and upper is not None and (upper - passing) / passing <= tolerance:
            converged = True
            stopped = f"range closed within {tolerance:.0%}"
            break
        early = stop_when(passing, upper) if stop_when and runs < max_steps else ""
        if early:
            stopped = f"stopped early: {early}"
            break
        if passing is not None and upper is not None:
            rate = round((passing + upper) / 2, 2)
        elif passing is not None:
            rate = round(rate * GROWTH, 2)
        else:
            rate = round(rate / GROWTH, 2)
            if rate < MIN_RATE:
                stopped = f"no rate down to {MIN_RATE} requests/s meets the objective"
                break
    best = next(
        (
            index
            for index, step in enumerate(steps)
            if step["verdict"] == PASS and step["rate_per_s"] == passing
        ),
        None,
    )
    return {
        "objective": {"p99_ms": objective.p99_ms, "max_error_rate": objective.max_error_rate},
        "rate_per_s": passing if converged else None,
        # The true capacity lies between the highest rate that passed and the lowest that
        # did not (failed, or stayed undecided).
        "range": {
            "low": passing,
            "high": min((r for r in (failing, undecided) if r is not None), default=None),
            "undecided_at": undecided,
        },
        "converged": converged,
        "stopped_early": early or None,
        "rps": steps[best]["result"]["summary"]["rps"] if best is not None else None,
        "step": best,
        "runs": runs,
        "stopped": stopped,
        "steps": steps,
    }
