"""Results measured earlier, and a search replayed against them. Pure apart from reading
the results file.

Results come from a sweep's report.json or from a table in the documented format
(infra/data/schemas/search-results.schema.json). A replay runs the same search a real
`sweep --space` runs: the same sampler, the same early stop of a configuration that
cannot win (at the step of its recorded capacity search where a live search would have
stopped), the same budget, and the time and money each trial would take by the sweep's
time model (infra/data/sweep.yaml) at the space's prices. It tells what the search would
have measured, in which order, what that would have cost, and what it would have picked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from infra.bench.capacity import LIMITED, UNBALANCED
from infra.bench.confidence import FAIL, PASS
from infra.bench.report import LIMITED as REPORT_LIMITED
from infra.bench.report import UNBALANCED as REPORT_UNBALANCED
from infra.data import DATA_DIR
from infra.design.settings import coerce_setting, load_declarations
from infra.inputs.errors import ConfigError, InputError, did_you_mean
from infra.inputs.files import read_json
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.search.objective import Goal
from infra.sweep.search.space import Candidate, SearchSpace, on_its_hardware
from infra.sweep.search.strategy import Outcome, Search

RESULTS_SCHEMA = "tfserving-gke/search-results/v1"
REPORT_SCHEMA = "tfserving-gke/sweep-report/v1"
SCHEMA_FILE = DATA_DIR / "schemas" / "search-results.schema.json"


@dataclass(frozen=True)
class Step:
    rate_per_s: float
    verdict: str
    runs: int = 1


@dataclass(frozen=True)
class Recorded:
    """One configuration's measurement: its range and, if known, the steps that found it."""

    low: float | None
    high: float | None
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Results:
    source: str
    objective: Mapping[str, float]
    by_candidate: Mapping[str, Recorded]
    unmatched: tuple[str, ...]  # results of configurations the space does not hold


def running_range(steps: Sequence[Step]) -> tuple[float | None, float | None]:
    """The capacity range after these steps, as the capacity search proves it (and a live
    search prunes on): the highest rate that passed with confidence, and the lowest above
    it that failed with confidence. An undecided rate bounds nothing."""
    low = max((s.rate_per_s for s in steps if s.verdict == PASS), default=None)
    high = min(
        (s.rate_per_s for s in steps if s.verdict == FAIL and s.rate_per_s > (low or 0.0)),
        default=None,
    )
    return low, high


def _schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return document


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return bool(a == b)


def _match(
    configuration: Mapping[str, Any], preset: str | None, space: SearchSpace
) -> Candidate | None:
    """The space's configuration a result measured: by preset, or by settings (what the
    result leaves out is at its default, which the candidate then holds too, or what its
    machine implies: the -gpu image on a GPU host)."""
    configuration = on_its_hardware(configuration)
    for candidate in space.candidates:
        if preset is not None or candidate.preset is not None:
            if preset is not None and candidate.preset == preset:
                return candidate
            continue
        if all(_same(configuration.get(k), v) for k, v in candidate.settings.items()) and all(
            candidate.features[k] is None or _same(candidate.features[k], configuration[k])
            for k in configuration
            if k in space.dimensions
        ):
            return candidate
    return None


def _coerced(configuration: Mapping[str, Any], source: str) -> dict[str, Any]:
    declarations = load_declarations()
    typed = {}
    for key, raw in configuration.items():
        if key not in declarations:
            raise InputError(
                f"{source}: a result's configuration names {key!r}, not a setting of this "
                f"project.{did_you_mean(key, declarations)}"
            )
        try:
            typed[key] = coerce_setting(declarations[key], raw)
        except ConfigError as error:
            raise InputError(f"{source}: a result's configuration: {error}") from None
    return typed


def _table_entries(document: dict[str, Any], source: str) -> list[dict[str, Any]]:
    if document.get("schema") == REPORT_SCHEMA:
        entries = []
        for e in document.get("experiments") or []:
            low, high = (e.get("capacity_range") or [None, None])[:2]
            entries.append(
                {
                    "preset": e.get("preset", e["experiment"])
                    if not e.get("configuration")
                    else None,
                    "configuration": e.get("configuration"),
                    "capacity": {"low": low, "high": high, "steps": e.get("steps") or []},
                    "flags": e.get("not_ranked") or [],
                }
            )
        return entries
    try:
        jsonschema.validate(document, _schema())
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise InputError(
            f"{source} is not a results table ({RESULTS_SCHEMA}, "
            f"infra/data/schemas/search-results.schema.json): at {where}: {error.message}"
        ) from None
    return list(document["results"])


def read_results(path: Path, space: SearchSpace) -> Results:
    """Earlier results, matched to the space's configurations."""
    source = str(path)
    document = read_json(path, f"a sweep's report.json or a {RESULTS_SCHEMA} table")
    if not isinstance(document, dict) or document.get("schema") not in (
        RESULTS_SCHEMA,
        REPORT_SCHEMA,
    ):
        raise InputError(
            f"{source} is neither a sweep's report.json ({REPORT_SCHEMA}) nor a results "
            f"table ({RESULTS_SCHEMA}); see infra/data/schemas/search-results.schema.json"
        )
    by_candidate: dict[str, Recorded] = {}
    unmatched: list[str] = []
    for entry in _table_entries(document, source):
        if set(entry.get("flags") or ()) & {REPORT_LIMITED, REPORT_UNBALANCED}:
            continue  # measured something else than the server: not a capacity
        configuration = _coerced(entry.get("configuration") or {}, source)
        candidate = _match(configuration, entry.get("preset"), space)
        if candidate is None:
            unmatched.append(entry.get("preset") or json.dumps(entry.get("configuration")))
            continue
        capacity = entry["capacity"]
        steps = tuple(
            Step(float(s["rate_per_s"]), str(s["verdict"]), int(s.get("runs", 1)))
            for s in capacity.get("steps") or []
        )
        by_candidate[candidate.name] = Recorded(capacity.get("low"), capacity.get("high"), steps)
    objective = document.get("objective") or {}
    return Results(source, objective, by_candidate, tuple(unmatched))


@dataclass(frozen=True)
class Trial:
    candidate: str
    runs: int
    pruned: bool
    low: float | None
    high: float | None
    score: float
    minutes: float
    usd: float
    spent_usd: float  # the search's total after this trial


@dataclass
class Replay:
    """What a search would have done against recorded results."""

    goal: Goal
    trials: list[Trial] = field(default_factory=list)
    picked: str | None = None
    picked_score: float = math.inf
    best: str | None = None  # the best configuration in the results
    best_score: float = math.inf
    stopped: str = ""
    spent_usd: float = 0.0
    full_usd: float = 0.0  # every configuration measured in full
    configurations: int = 0
    missing: int = 0  # configurations of the space without a result

    @property
    def gap(self) -> float | None:
        """How much worse the pick is than the best, as a fraction (0: the best)."""
        if self.picked is None or not math.isfinite(self.best_score):
            return None
        return self.picked_score / self.best_score - 1


def up_minutes(previous: Candidate | None, candidate: Candidate, d: Durations) -> float:
    """How long `up` takes from the previous configuration to this one (the time model of
    the sweep: a new cluster first, a new node pool for a new machine type, a resize for
    another node count, a rollout for the rest)."""
    if previous is None:
        return d.cluster_create + d.node_pool_create + d.first_rollout
    if previous.machine_type != candidate.machine_type:
        return d.node_pool_create + d.first_rollout
    resize = d.node_resize if previous.price.nodes != candidate.price.nodes else 0.0
    return resize + d.rollout


def measure_minutes(runs: int, search: SearchSettings, d: Durations) -> float:
    per_run = (search.warmup_s + search.duration_s) / 60 + d.bench_step_overhead
    return d.load_generator_scale_up + runs * per_run


def trial_usd(candidate: Candidate, up: float, measuring: float, d: Durations) -> float:
    generator = candidate.generator_node_usd_per_hour * d.load_generator_nodes_assumed
    return up / 60 * candidate.measure_price.usd_per_hour + measuring / 60 * (
        candidate.measure_price.usd_per_hour + generator
    )


def worst_case(
    space: SearchSpace, trials: int, search: SearchSettings, d: Durations
) -> tuple[float, float]:
    """(hours, USD) at most for `trials` trials: the dearest configurations, each on a new
    node pool, every capacity search at its most steps, then the destroy."""
    per_trial = sorted(
        (
            (
                up_minutes(None, c, d)
                - d.cluster_create
                + measure_minutes(search.max_steps, search, d),
                trial_usd(
                    c,
                    up_minutes(None, c, d) - d.cluster_create,
                    measure_minutes(search.max_steps, search, d),
                    d,
                ),
            )
            for c in space.candidates
        ),
        key=lambda pair: -pair[1],
    )[:trials]
    cluster = max(c.measure_price.fixed_usd_per_hour for c in space.candidates)
    minutes = d.cluster_create + d.destroy + sum(m for m, _ in per_trial)
    usd = (d.cluster_create + d.destroy) / 60 * cluster + sum(u for _, u in per_trial)
    return minutes / 60, usd


def walk(
    recorded: Recorded,
    candidate: Candidate,
    goal: Goal,
    incumbent: float,
    search: SearchSettings,
) -> tuple[float | None, float | None, int, bool]:
    """(low, high, runs, pruned): the recorded search, stopped at the step where its range
    shows it cannot beat the incumbent."""
    if not recorded.steps:
        return recorded.low, recorded.high, search.max_steps, False
    done: list[Step] = []
    for index, step in enumerate(recorded.steps):
        done.append(step)
        if step.verdict in (LIMITED, UNBALANCED) or index == len(recorded.steps) - 1:
            break  # measured in full: nothing saved by stopping now
        low, high = running_range(done)
        if goal.cannot_win(candidate.price, low, high, incumbent):
            return low, high, sum(s.runs for s in done), True
    return recorded.low, recorded.high, sum(s.runs for s in done), False


def replay(
    space: SearchSpace,
    results: Results,
    goal: Goal,
    search_settings: SearchSettings,
    *,
    max_trials: int | None,
    max_usd: float | None = None,
    seed: int = 0,
    sampler: str = "model",
    durations: Durations | None = None,
    earlier: Sequence[Outcome] = (),
) -> Replay:
    """Run the search against the results (see the module's text)."""
    d = durations or Durations.from_data()
    measurable = [c for c in space.candidates if c.name in results.by_candidate]
    if not measurable:
        raise InputError(
            f"{results.source} holds no result for any configuration of {space.source}: "
            "replay needs the results of the space it searches"
        )
    sub = SearchSpace(space.source, space.settings, space.dimensions, tuple(measurable), ())
    outcome = Replay(goal, configurations=len(measurable))
    outcome.missing = len(space.candidates) - len(measurable)
    by_name = sub.by_name()
    for candidate in measurable:
        recorded = results.by_candidate[candidate.name]
        score = goal.score(candidate.price, recorded.low)
        if score < outcome.best_score:
            outcome.best, outcome.best_score = candidate.name, score
    # Priced as the dry run prices it, so the two say the same for the same space.
    outcome.full_usd = worst_case(sub, len(measurable), search_settings, d)[1]
    search = Search(sub, goal, seed=seed, sampler=sampler, max_trials=max_trials)
    search.seed_with(earlier)
    previous: Candidate | None = None
    destroy_usd = (d.destroy / 60) * max(c.measure_price.fixed_usd_per_hour for c in measurable)
    while max_trials is None or len(outcome.trials) < max_trials:
        chosen = search.next()
        if chosen is None:
            outcome.stopped = "every configuration measured"
            break
        candidate = chosen
        recorded = results.by_candidate[candidate.name]
        low, high, runs, pruned = walk(
            recorded, candidate, goal, search.incumbent_score(), search_settings
        )
        up = up_minutes(previous, candidate, d)
        measuring = measure_minutes(runs, search_settings, d)
        usd = trial_usd(candidate, up, measuring, d)
        if max_usd is not None and outcome.spent_usd + usd + destroy_usd > max_usd:
            outcome.stopped = (
                f"the next trial ({candidate.name}, about {usd:.2f} USD) would pass --max-usd "
                f"{max_usd:g} with the destroy"
            )
            break
        outcome.spent_usd += usd
        search.record(Outcome(candidate.name, low, high, pruned, runs))
        outcome.trials.append(
            Trial(
                candidate.name,
                runs,
                pruned,
                low,
                high,
                goal.score(candidate.price, low),
                round(up + measuring, 1),
                round(usd, 4),
                round(outcome.spent_usd, 4),
            )
        )
        previous = candidate
    else:
        outcome.stopped = f"--max-trials {max_trials} reached"
    outcome.spent_usd += destroy_usd
    best = search.incumbent()
    if best is not None:
        outcome.picked = best[0].name
        outcome.picked_score = best[1].score(goal, by_name[best[0].name])
    return outcome
