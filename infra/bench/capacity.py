"""Capacity under a latency objective, with its confidence: the highest open-loop rate
whose p99 meets the objective (errors under the limit) with 95% confidence, and the range
the true capacity lies in. Pure: it decides the rates and judges the steps; the caller
runs them.

The search has two phases (docs/bench.md says why):
- Locate: one run per rate, ramping x2 from the start rate (or /2 while it misses) until
  one rate meets the objective on its point estimates (p99 and error rate) and a higher one
  does not, then bisecting between them until they are within the tolerance (5%). Where
  to look next needs no confidence; what is claimed does.
- Certify: the claim must pass with confidence. Certification starts AIM under the
  located crossing and pools runs there (each with its own arrivals) while the pooled
  interval straddles the objective and more runs could still bring its upper end under it
  (projected from the pooled sample, infra.bench.confidence.projected_high_ms, once a few
  runs are in); when they cannot, the rate steps down (STEP_DOWN), at most CERTIFY_SPAN
  under the located crossing, or under a rate below it that failed with confidence (one
  run's point estimates located the crossing high). The first time a rate it tries shows
  itself over the capacity (it fails with confidence, or is given up on over the objective
  on its pooled point estimates with no rate above it met over more than one run) while
  the highest rate under it that met the objective on its point estimates lies more than
  a step down, the crossing is located again between the two, one run per rate (see
  _relocate). A rate's runs count with those just
  above it (POOL_ABOVE): a server is no faster under more load, so they can pass it
  (never fail it). Once a rate passes, the search climbs a step at a time while runs
  remain and the next rate is under the lowest that did not pass (given up on, failed
  with confidence, or the bracket's upper end when more than its one run missed there),
  then half-way to that rate until the two are within FINEST. When the climb has nowhere
  left to go and runs remain, the given-up rate that bounds it is tried once more, its
  earlier runs pooled with at least MIN_RUNS_TO_GIVE_UP new ones. A claim that rests on
  one run alone (it passed with confidence on its own) is run once more before it is made
  (_on_one_run).
  A rate that fails with confidence is part of the range. A run during which the server
  failed (a pod OOM-killed or evicted) fails its rate with that reason.

The range: `low` is the highest rate that passed with confidence, `high` the lowest that
failed with confidence (null: none did, the range is open above). Rates that stayed
undecided lie inside it and are listed, but tell nothing about where the capacity lies.
A search over configurations may stop a trial early (`stop_when`) only on that range.
- A step whose load generator was the limit (its send lag beside the objective), or
  whose load did not reach every serving pod evenly, measured something else than the
  server: the search stops there, and nothing is claimed above what passed before it.
  Unless the run was over the objective whatever its generator added (overwhelmed): then
  it fails its rate, as far over the capacity a lagging generator's runs do.
- Repeats count as runs against `max_steps`. A search that runs out of runs before it
  certified a rate reports its range with no capacity (`converged` false).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.bench.confidence import (
    FAIL,
    PASS,
    UNDECIDED,
    Confidence,
    confidence,
    projected_high_ms,
    verdict,
)
from infra.loadgen.stats import Cumulative, decode

GROWTH = 2.0
TOLERANCE = 0.05  # the located crossing is bracketed within 5%
# A claim is certified at most this far under the located crossing: further down, a
# capacity would be too far from the truth to be worth claiming; the search says so.
CERTIFY_SPAN = 0.15
# A claim within 6% of the truth needs 10-20 runs pooled near it (a queue's slow requests
# come in clusters, so one 20 s run is worth about 85 independent samples for its p99),
# besides the 8-10 that locate the crossing: scripts/bench_capacity.py --simulated puts 16
# of 20 searches within -6%..+1% at 40 runs and 20 repeats, 11 of 20 at 28 and 12, with
# 20 s windows (the sweep's are 40 s since: 37 of 40, a search taking 29 runs a mean; it
# stops once its climb meets a rate that did not pass).
MAX_STEPS = 40
MAX_REPEATS = 20  # runs pooled at one rate to certify it, besides its first
MIN_RATE = 0.5
# One run's tail is a few clusters of slow requests: too few to project from. A rate is
# given up for a lower one only after this many runs pooled at it.
MIN_RUNS_TO_GIVE_UP = 3
STEP_DOWN = 0.025  # a certification that cannot pass steps down this much; one that did, up
FINEST = 0.01  # the climb after a pass goes no finer than this
# Certification starts this far under the located crossing: one run's p99 is mostly under
# the long-run p99 (a tail's few slow clusters fall in some runs, not others), so the
# point estimates locate the crossing a little high, and the pooled interval's upper end
# sits over the point estimate by about this much after the runs a search has left
# (scripts/bench_capacity.py: 3% puts the median claim within 6% of the truth).
AIM = 0.03
# A rate's runs are pooled with those at rates up to this much above it to certify it: a
# server is no faster under more load (what bounds those runs' p99 from above bounds this
# rate's too), so the runs spent above are not lost when the search steps down.
POOL_ABOVE = 0.05
LIMITED, UNBALANCED = "limited", "unbalanced"
# A run its load generator limited still fails its rate when more than this share of its
# requests were slow past anything the generator could have added (see overwhelmed).
OVERWHELMED_SHARE = 0.5


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
        if document.get("server_failure"):
            return FAIL, f"the server failed at this rate: {document['server_failure']}"
        summary = document["summary"]
        balance = (document.get("server") or {}).get("balance") or {}
        if summary.get("load_generator_limited"):
            over = "" if balance.get("unbalanced") else overwhelmed(document, objective)
            if over:
                return FAIL, over
            return LIMITED, str(summary.get("load_generator_limited_reason"))
        if balance.get("unbalanced"):
            return UNBALANCED, str(balance.get("why"))
    return verdict(pooled(documents), objective.p99_ms, objective.max_error_rate)


def overwhelmed(document: dict[str, Any], objective: Objective) -> str:
    """Why a run its load generator limited still fails its rate, or "": more than
    OVERWHELMED_SHARE of its requests failed, timed out or took longer than the objective
    plus twice the generator's own delay (its p99 send lag or its mean wait for a CPU, the
    larger). The generator sent at most 1% of its requests later than its p99 send lag, and
    read their answers late no more than it sent them late (one loop does both), so most of
    those requests were held past the objective by the server. Far over the capacity, where
    a search's ramp goes (x2 a step), thousands of requests in flight slow a generator that
    shares its machine (on loopback, with the server as well): it lagged, and the search
    stopped there with nothing claimed, though the run showed the rate far over the
    capacity (scripts/bench_capacity.py, 2026-12-08)."""
    summary = document["summary"]
    delays = [
        float(delay)
        for delay in (summary.get("send_lag_p99_ms"), summary.get("generator_cpu_wait_ms"))
        if delay is not None
    ]
    requests = int(summary.get("requests") or 0)
    encoded = (document.get("histograms") or {}).get("latency_us")
    if not delays or not requests or not encoded:
        return ""
    own_ms = max(delays)
    threshold_ms = objective.p99_ms + 2 * own_ms
    slow = int(summary.get("errors") or 0) + Cumulative(decode(encoded)).count_above(
        int(threshold_ms * 1000)
    )
    share = slow / requests
    if share <= OVERWHELMED_SHARE:
        return ""
    return (
        f"{share:.0%} of its requests failed or took over {threshold_ms:g} ms (the objective "
        f"plus twice the load generator's own delay of {own_ms:g} ms): over the objective "
        "whatever the generator added"
    )


def met_on_point(kind: str, figures: Confidence | None, objective: Objective) -> bool:
    """Whether a rate looks within the objective, confidence aside: where to look next."""
    if kind in (PASS, FAIL) or figures is None:
        return kind == PASS
    return (
        figures.p99_ms is not None
        and figures.p99_ms <= objective.p99_ms
        and figures.error_rate <= objective.max_error_rate
    )


class _Search:
    """The state of one search: every rate's runs, and the range they prove."""

    def __init__(
        self,
        run_step: Callable[[float], dict[str, Any]],
        objective: Objective,
        max_steps: int,
        judge_runs: Callable[[list[dict[str, Any]]], tuple[str, str]] | None,
        on_step: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.run_step = run_step
        self.objective = objective
        self.max_steps = max_steps
        self.judge_runs = judge_runs or (lambda runs: judge(runs, objective))
        self.on_step = on_step
        self.runs = 0
        self.documents: dict[float, list[dict[str, Any]]] = {}
        self.steps: dict[float, dict[str, Any]] = {}

    def measure(self, rate: float) -> dict[str, Any]:
        """One more run at `rate`, pooled with its earlier ones; the rate's step."""
        documents = self.documents.setdefault(rate, [])
        documents.append(self.run_step(rate))
        self.runs += 1
        kind, why = self.judge_runs(documents)
        figures = _figures(documents)
        step = {
            "rate_per_s": rate,
            "verdict": kind,
            "why": why,
            "runs": len(documents),
            "met_on_point": met_on_point(kind, figures, self.objective),
            "confidence": figures.to_json() if figures else None,
            "result": documents[-1],
        }
        if kind == UNDECIDED:
            step.update(self._with_faster(rate))
        self.steps[rate] = step
        if self.on_step:
            self.on_step(step)
        return step

    def _with_faster(self, rate: float) -> dict[str, Any]:
        """A rate's runs pooled with those at the rates just above it (within POOL_ABOVE):
        a server is no faster under more load, so what those runs bound from above bounds
        this rate too. Only a pass is taken from them; they can fail nothing here."""
        higher = sorted(r for r in self.documents if rate < r <= rate * (1 + POOL_ABOVE) + 1e-9)
        if not higher:
            return {}
        documents = [d for r in [rate, *higher] for d in self.documents[r]]
        kind, why = self.judge_runs(documents)
        if kind != PASS:
            return {}
        figures = _figures(documents)
        return {
            "verdict": PASS,
            "why": f"{why}; with the runs at {', '.join(f'{r:g}' for r in higher)}/s",
            "pooled_with": higher,
            "confidence": figures.to_json() if figures else None,
        }

    def rates(self, kind: str) -> list[float]:
        return sorted(rate for rate, step in self.steps.items() if step["verdict"] == kind)

    @property
    def passing(self) -> float | None:
        return max(self.rates(PASS), default=None)

    @property
    def failing(self) -> float | None:
        """The lowest rate that failed with confidence above the highest that passed."""
        floor = self.passing or 0.0
        return min((r for r in self.rates(FAIL) if r > floor), default=None)

    def has_runs_left(self) -> bool:
        return self.runs < self.max_steps


def _figures(documents: list[dict[str, Any]]) -> Confidence | None:
    if not all(document.get("batches") for document in documents):
        return None
    return pooled(documents)


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
    objective, rate_per_s (the rate certified with confidence; else null), range {low,
    high, undecided}, converged, rps there, the index of that step, every step with its
    verdict and pooled figures, and why the search stopped. `judge_runs` judges a rate's
    runs instead of the objective (benchmarks of the load generator itself search on its
    send lag). `stop_when(low, high)` sees the proven range after each step and stops the
    search when it returns a reason (a search over configurations stops one that cannot
    win); the block then says `stopped_early`."""
    search = _Search(run_step, objective, max_steps, judge_runs, on_step)
    below: float | None = None  # highest rate that met the objective on its point estimates
    above: float | None = None  # lowest rate that did not
    stopped = ""
    early = ""
    rate = start_rate
    while not stopped:
        if not search.has_runs_left():
            stopped = f"reached the limit of {max_steps} runs before the crossing was located"
            break
        step = search.measure(rate)
        if step["verdict"] in (LIMITED, UNBALANCED):
            stopped = _elsewhere(step)
            break
        if step["met_on_point"]:
            below = rate if below is None else max(below, rate)
        else:
            above = rate if above is None else min(above, rate)
        early = stop_when(search.passing, search.failing) if stop_when else ""
        if early:
            stopped = f"stopped early: {early}"
            break
        if below is not None and above is not None and (above - below) / below <= tolerance:
            break
        if below is not None and above is not None:
            rate = _between(search, below, above, objective)
        elif below is not None:
            rate = round(rate * GROWTH, 2)
        else:
            rate = round(rate / GROWTH, 2)
            if rate < MIN_RATE:
                stopped = f"no rate down to {MIN_RATE} requests/s meets the objective"
    certified: float | None = None
    if not stopped and below is not None:
        certified, stopped, early = _certify(
            search,
            below,
            above if above is not None else math.inf,
            objective,
            max_repeats,
            tolerance=tolerance,
            stop_when=stop_when,
        )
    return _block(search, objective, certified, stopped, early)


def _elsewhere(step: dict[str, Any]) -> str:
    return (
        f"the step at {step['rate_per_s']:g} requests/s measured something else than the "
        f"server ({step['why']})"
    )


def _between(search: _Search, below: float, above: float, objective: Objective) -> float:
    """The next rate inside the bracket: where the p99 would cross the objective if its log
    grew linearly between the bracket's ends (regula falsi), kept a quarter of the bracket
    from either end; the middle when either end has no p99 to go by."""
    low_ms, high_ms = (
        (search.steps[rate].get("confidence") or {}).get("p99_ms") for rate in (below, above)
    )
    if low_ms is None or high_ms is None or not 0 < low_ms < min(high_ms, objective.p99_ms):
        return round((below + above) / 2, 2)
    share = math.log(objective.p99_ms / low_ms) / math.log(high_ms / low_ms)
    margin = (above - below) / 4
    return round(min(above - margin, max(below + margin, below + share * (above - below))), 2)


def _certify(
    search: _Search,
    located: float,
    above: float,
    objective: Objective,
    max_repeats: int,
    *,
    tolerance: float,
    stop_when: Callable[[float | None, float | None], str] | None,
) -> tuple[float | None, str, str]:
    """Certify a rate under the located crossing, then climb while runs remain: (the
    highest rate certified or None, why the search stopped, why it stopped early or "")."""
    rate = round(located * (1 - AIM), 2)
    given_up: list[float] = []  # rates whose runs could not clear the objective
    retried: set[float] = set()
    relocated = False
    while True:
        if search.passing is not None and search.passing >= rate:
            kind = PASS
        else:
            fresh = MIN_RUNS_TO_GIVE_UP if rate in retried else 0
            kind = _pool(search, rate, objective, max_repeats, fresh=fresh)
        if kind in (LIMITED, UNBALANCED):
            return None, _elsewhere(search.steps[rate]), ""
        if kind not in (PASS, "out of runs"):
            given_up.append(rate)
        floor = _floor(search, located)
        if search.passing is not None and (kind == PASS or search.passing >= floor):
            # Up from the highest rate that passed while runs remain, under the lowest rate
            # above it that did not pass (see _up).
            bounds = [*_shown(search, above), *given_up, *search.rates(FAIL)]
            higher = _up(search, search.passing, bounds)
            if higher is None:
                higher = _again(
                    search,
                    search.passing,
                    bounds,
                    given_up=given_up,
                    retried=retried,
                    max_repeats=max_repeats,
                )
                if higher is None:
                    claim = search.passing
                    if not (_on_one_run(search, claim) and search.has_runs_left()):
                        return claim, "certified with confidence", ""
                    step = search.measure(claim)
                    if step["verdict"] in (LIMITED, UNBALANCED):
                        return None, _elsewhere(step), ""
                    rate = claim
                    continue
                retried.add(higher)
            rate = higher
            continue
        if kind == "out of runs":
            return (
                None,
                f"reached the limit of {search.max_steps} runs before a rate was certified",
                "",
            )
        early = stop_when(search.passing, search.failing) if stop_when else ""
        if early:
            return None, f"stopped early: {early}", early
        again, stopped, early = (
            (None, "", "")
            if relocated
            else _relocate(search, rate, objective, tolerance, stop_when=stop_when)
        )
        if stopped:
            return None, stopped, early
        if again is not None:
            relocated = True
            located = again
            rate = round(located * (1 - AIM), 2)
            floor = _floor(search, located)
        else:
            rate = round(rate * (1 - STEP_DOWN), 2)
        if rate < floor:
            return (
                None,
                f"no rate within {CERTIFY_SPAN:.0%} under "
                f"{_crossing(search, located):g} requests/s passed with "
                "confidence",
                "",
            )


def _relocate(
    search: _Search,
    missed: float,
    objective: Objective,
    tolerance: float,
    *,
    stop_when: Callable[[float | None, float | None], str] | None,
) -> tuple[float | None, str, str]:
    """The crossing located again under a rate certification tried that showed itself
    over the capacity (_over), when the highest rate under it that met the objective on
    its point estimates lies more than a step down from it: one run at a rate the server
    cannot hold can look fast (its queue had not built up in the window) and locate the
    crossing well over the capacity, and stepping down 2.5% at a time from there, a few
    runs a rate, spent a busy loopback search's budget on the way back, and a quiet one's
    when the rates over the capacity were given up on rather than failed (docs/testing.md).
    As the first phase does: one run per rate, between the two, until they are within the
    tolerance. (the new crossing or None, why the search stopped or "", why it stopped
    early or ""); None with nothing stopped: no such rate, or the runs ran out."""
    if not _over(search, missed):
        return None, "", ""
    met = [rate for rate, step in search.steps.items() if step["met_on_point"] and rate < missed]
    if not met:
        return None, "", ""
    below, above = max(met), missed
    if below * (1 - AIM) >= missed * (1 - STEP_DOWN):
        return None, "", ""
    while (above - below) / below > tolerance:
        if not search.has_runs_left():
            return None, "", ""
        rate = _between(search, below, above, objective)
        step = search.measure(rate)
        if step["verdict"] in (LIMITED, UNBALANCED):
            return None, _elsewhere(step), ""
        early = stop_when(search.passing, search.failing) if stop_when else ""
        if early:
            return None, f"stopped early: {early}", early
        if step["met_on_point"]:
            below = rate
        else:
            above = rate
    return below, "", ""


def _on_one_run(search: _Search, rate: float) -> bool:
    """Whether a rate that passed rests on one run alone (not pooled with runs above it).
    One run at a rate over the capacity can look fast (its queue had not built up in the
    window, or the server ran fast for a while): on the simulated queue, one run made to
    look fast passed with confidence on its own at the located crossing and was claimed,
    7.9% over the truth. So such a pass is run once more, its runs pooled, before it is
    claimed; pooled, it still passes, or certification goes on under it."""
    step = search.steps[rate]
    return bool(step["runs"] == 1 and not step.get("pooled_with"))


def _over(search: _Search, rate: float) -> bool:
    """Whether a rate's runs show it over the capacity: failed with confidence, or given up
    on with its pooled point estimates over the objective after MIN_RUNS_TO_GIVE_UP runs
    while no rate above it met the objective over more than one run (then the slow runs
    here were more likely bad luck than the capacity)."""
    step = search.steps[rate]
    if step["verdict"] == FAIL:
        return True
    return (
        step["verdict"] == UNDECIDED
        and not step["met_on_point"]
        and step["runs"] >= MIN_RUNS_TO_GIVE_UP
        and not any(
            other["met_on_point"] and other["runs"] > 1
            for higher, other in search.steps.items()
            if higher > rate
        )
    )


def _up(search: _Search, passing: float, bounds: list[float]) -> float | None:
    """The next rate to certify above the highest that passed, or None when runs are too
    few for it or it would be within FINEST of what passed: STEP_DOWN over it while that is
    under the lowest rate above that did not pass (a rate just under one given up on pools
    its runs with that one's, and is that rate tried again), else half-way to that rate.
    That rate is a given-up one, a rate that failed with confidence, or the bracket's upper
    end once more than its one run showed it: a single run's point estimate over the
    objective is often a few slow bursts, and stopping there left a search that had located
    the crossing low with most of its runs unspent. A rate given up on after a few runs is
    often just under the capacity, and the runs left after a pass are worth more half-way
    to it than unspent (on the simulated queue, claims 7% under the truth came with 7-12
    runs left)."""
    if search.max_steps - search.runs < MIN_RUNS_TO_GIVE_UP:
        return None
    # A rate given up on within FINEST over the one that passed was tried again by it.
    ceiling = min(r for r in [*bounds, math.inf] if r > passing * (1 + FINEST))
    higher = round(passing * (1 + STEP_DOWN), 2)
    if higher < ceiling:
        return higher
    middle = round(math.sqrt(passing * ceiling), 2)
    if middle <= passing * (1 + FINEST) or middle in bounds:
        return None
    return middle


def _again(
    search: _Search,
    passing: float,
    bounds: list[float],
    *,
    given_up: list[float],
    retried: set[float],
    max_repeats: int,
) -> float | None:
    """The rate given up on that bounds the climb, tried once more when the climb has
    nowhere left to go and runs remain: a rate is given up after as few as
    MIN_RUNS_TO_GIVE_UP runs, and a few slow clusters in them can give up a rate a few
    percent under the capacity (on the simulated queue, searches that ended 7% under the
    truth had stopped just under a rate given up after 3 or 4 runs, with 8-15 runs
    unspent). Its earlier runs stay pooled with the new ones."""
    if search.max_steps - search.runs < MIN_RUNS_TO_GIVE_UP:
        return None
    ceiling = min((r for r in [*bounds, math.inf] if r > passing * (1 + FINEST)), default=None)
    if ceiling is None or ceiling not in given_up or ceiling in retried:
        return None
    if search.steps[ceiling]["runs"] > max_repeats:
        return None
    return ceiling


def _floor(search: _Search, located: float) -> float:
    """The lowest rate certification goes down to: CERTIFY_SPAN under the located crossing,
    or under a rate below it that failed with confidence. One run's point estimates can
    locate the crossing well over the capacity (a run at a rate the server cannot hold,
    whose queue had not yet built up in its window, meets the objective on its point
    estimates); the rates that then fail show where the capacity really lies."""
    return _crossing(search, located) * (1 - CERTIFY_SPAN)


def _crossing(search: _Search, located: float) -> float:
    """The located crossing, or the rate under it that failed with confidence."""
    return min(located, search.failing or math.inf)


def _shown(search: _Search, above: float) -> list[float]:
    """The bracket's upper end as a bound on the climb, when its runs showed more than one
    run's point estimate (infinity always bounds it)."""
    step = search.steps.get(above)
    if step is None or step["verdict"] == FAIL or step["runs"] > 1:
        return [above]
    return [math.inf]


def _pool(
    search: _Search, rate: float, objective: Objective, max_repeats: int, *, fresh: int = 0
) -> str:
    """Runs at `rate`, pooled, until its verdict is decided, more runs could not clear the
    objective (undecided) or the runs run out: the verdict, or "out of runs". A rate tried
    again is given up only after `fresh` more runs."""
    step = search.steps.get(rate)
    earlier = step["runs"] if step is not None else 0
    while True:
        if step is not None and step["verdict"] != UNDECIDED:
            return str(step["verdict"])
        if step is not None and step["runs"] > max_repeats:
            return UNDECIDED
        if not search.has_runs_left():
            return "out of runs"
        if step is not None and step["runs"] >= max(MIN_RUNS_TO_GIVE_UP, earlier + fresh):
            most = min(max_repeats + 1, step["runs"] + search.max_steps - search.runs)
            if _runs_needed(search.documents[rate], objective, most) is None:
                return UNDECIDED  # more runs here would not clear the objective
        step = search.measure(rate)


def _runs_needed(documents: list[dict[str, Any]], objective: Objective, most: int) -> int | None:
    """How many runs in all, up to `most`, would bring the pooled interval's upper end
    under the objective if the rate's runs keep looking as they do; None if none would
    (a custom judge's runs, without batches, are simply repeated)."""
    batches = [batch for document in documents for batch in document.get("batches") or []]
    if not batches:
        return most
    for total in range(len(documents) + 1, most + 1):
        high = projected_high_ms(batches, total / len(documents))
        if high is not None and high <= objective.p99_ms:
            return total
    return None


def _block(
    search: _Search, objective: Objective, certified: float | None, stopped: str, early: str
) -> dict[str, Any]:
    steps = list(search.steps.values())
    best = next(
        (i for i, s in enumerate(steps) if s["verdict"] == PASS and s["rate_per_s"] == certified),
        None,
    )
    low, high = search.passing, search.failing
    undecided = sorted(
        r
        for r in search.rates(UNDECIDED)
        if (low is None or r > low) and (high is None or r < high)
    )
    return {
        "objective": {"p99_ms": objective.p99_ms, "max_error_rate": objective.max_error_rate},
        "rate_per_s": certified,
        # The true capacity lies between the highest rate that passed with confidence and
        # the lowest that failed with confidence; undecided rates lie in between.
        "range": {
            "low": low,
            "high": high,
            "undecided": undecided,
            "undecided_at": undecided[0] if undecided else None,
        },
        "converged": certified is not None,
        "stopped_early": early or None,
        "rps": steps[best]["result"]["summary"]["rps"] if best is not None else None,
        "step": best,
        "runs": search.runs,
        "stopped": stopped,
        "steps": steps,
    }
