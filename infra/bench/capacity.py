"""Capacity under a latency objective: the highest open-loop rate whose p99 meets the
objective with errors under the limit. Pure: it decides the rates and judges the steps;
the caller runs them.

Ramp (x2 per step from the start rate, or /2 while the start rate already fails) until
one rate passes and a higher one fails, then bisect between them until they are within the
tolerance. A step whose load generator was the limit ends the search: above that rate the
server was not what was measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROWTH = 2.0
TOLERANCE = 0.05  # stop when the failing rate is within 5% of the passing one
MAX_STEPS = 12
MIN_RATE = 0.5


@dataclass(frozen=True)
class Objective:
    """What a step must meet."""

    p99_ms: float
    max_error_rate: float

    def describe(self) -> str:
        return f"p99 ≤ {self.p99_ms:g} ms, errors ≤ {self.max_error_rate:.2%}"


def judge(summary: dict[str, Any], objective: Objective) -> tuple[str, str]:
    """("pass" | "fail" | "limited", why) for one step's summary."""
    if summary.get("load_generator_limited"):
        return "limited", str(summary.get("load_generator_limited_reason"))
    if summary["error_rate"] > objective.max_error_rate:
        return "fail", f"errors {summary['error_rate']:.2%} over {objective.max_error_rate:.2%}"
    p99 = summary["p99_ms"]
    if p99 is None or p99 > objective.p99_ms:
        return "fail", f"p99 {p99} ms over {objective.p99_ms:g} ms"
    return "pass", f"p99 {p99} ms, errors {summary['error_rate']:.2%}"


Verdict = Callable[[dict[str, Any]], tuple[str, str]]


def find_capacity(
    run_step: Callable[[float], dict[str, Any]],
    objective: Objective,
    start_rate: float,
    *,
    max_steps: int = MAX_STEPS,
    tolerance: float = TOLERANCE,
    verdict_of: Verdict | None = None,
) -> dict[str, Any]:
    """Run steps (run_step(rate) -> results document) and return the capacity block:
    objective, rate_per_s and rps of the best passing step (null when none passed), the
    index of that step, every step with its verdict, and why the search stopped.
    `verdict_of` judges a step's summary instead of the objective (benchmarks of the load
    generator itself search on its send lag)."""
    steps: list[dict[str, Any]] = []
    passing: float | None = None
    failing: float | None = None
    rate = start_rate
    stopped = f"reached the limit of {max_steps} steps"
    while len(steps) < max_steps:
        document = run_step(rate)
        verdict, why = (verdict_of or (lambda summary: judge(summary, objective)))(
            document["summary"]
        )
        steps.append({"rate_per_s": rate, "verdict": verdict, "why": why, "result": document})
        if verdict == "limited":
            stopped = (
                f"the load generator could not offer {rate:g} requests/s ({why}); spread the "
                "load over more processes"
            )
            break
        if verdict == "pass":
            passing = rate if passing is None else max(passing, rate)
        else:
            failing = rate if failing is None else min(failing, rate)
        if passing is not None and failing is not None:
            if (failing - passing) / passing <= tolerance:
                stopped = f"bracketed within {tolerance:.0%}"
                break
            rate = round((passing + failing) / 2, 2)
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
            if step["verdict"] == "pass" and step["rate_per_s"] == passing
        ),
        None,
    )
    return {
        "objective": {"p99_ms": objective.p99_ms, "max_error_rate": objective.max_error_rate},
        "rate_per_s": passing,
        "rps": steps[best]["result"]["summary"]["rps"] if best is not None else None,
        "step": best,
        "stopped": stopped,
        "steps": steps,
    }
