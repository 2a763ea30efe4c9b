"""Which configuration to measure next. Pure (the samplers are seeded).

Three samplers (`sweep --sampler`):
- `model` (the default): a Bayesian model of capacity and Thompson sampling over it
  (infra/search/model.py). Cost is known before a trial runs (the price catalogue); only
  capacity is not, and it has structure (it grows with the pods' cores, each dimension
  shifts it by a factor, some settings act only together): modelling that structure lets
  a few trials inform every configuration, where a sampler that models the score directly
  learns each value of each dimension separately. With a budget that allows it, every
  EXPLORE_EVERY-th trial explores on purpose: a value no configuration near the best has
  held is measured in the context the model prices cheapest, else the configuration most
  likely to beat the best so far.
- `tpe`: Optuna's TPE sampler (multivariate) proposes the dimension values; the search
  measures the unmeasured configuration nearest to the proposal (the space holds only the
  configurations the program can deploy, so a proposal may not exist, or may be measured
  already), and tells the sampler what it measured. It models discrete values directly and
  needs no gradient, but learns from the scores alone.
- `random`: the baseline.
scripts/bench_search.py and scripts/bench_landscapes.py measure them (docs/testing.md gives
the figures).

Two things make any of them cheaper than measuring every configuration in full:
- A measurement stops as soon as the configuration's capacity range shows it cannot win
  (the best it could be is no better than what the best so far is sure of): the rest of
  its capacity search would only tell how much it loses by (infra/search/objective.py).
- Results measured earlier (an earlier sweep's report.json or a results table) seed the
  sampler and count as measured.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState, create_trial

from infra.search.model import CapacityModel
from infra.search.objective import Goal
from infra.search.space import Candidate, SearchSpace

# Random trials before TPE models the results (Optuna's default is 10, too many when a
# search may measure a tenth of a hundred configurations).
STARTUP_TRIALS = 4
SAMPLERS = ("model", "tpe", "random")
# With a trial budget, the model's last trials go where its mean prices cheapest.
EXPLOIT_LAST = 2
# Scores are finite for the sampler: a configuration nothing passed on ranks last.
WORST_SCORE = 1e12
# No value of a dimension is written off before it was measured in a good context: every
# EXPLORE_EVERY-th trial, a value that no configuration near the best so far (within
# GOOD_CONTEXT of its score) holds is measured with the best configuration's other
# settings (the context they are known best in).
# With no value left to try, that trial goes to the configuration most likely to beat
# the best so far (probability of improvement: where a target load's whole nodes make a
# cliff, a configuration just over it is worth measuring even when most draws put it
# under). A budget too small to try every value twice over leaves all to Thompson sampling.
EXPLORE_EVERY = 4
GOOD_CONTEXT = 1.25
EXPLORE_BUDGET = 2  # trials per value of the space the budget must allow


@dataclass(frozen=True)
class Outcome:
    """What measuring one configuration found."""

    candidate: str
    low: float | None  # capacity range, requests/s (None: nothing passed)
    high: float | None  # None: open above
    pruned: bool = False  # stopped early: it could not win
    runs: int = 0  # capacity runs it took
    earlier: bool = False  # measured before this search (seeded from results)

    def score(self, goal: Goal, candidate: Candidate) -> float:
        """What it is sure of (the range's low end)."""
        return goal.score(candidate.price, self.low)


def _choice(value: Any) -> Any:
    """A feature as Optuna's categorical choices hold it (None, bool, int, float, str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _distance(candidate: Candidate, params: Mapping[str, Any], space: SearchSpace) -> float:
    """How far a configuration is from the proposal: per dimension 0 when equal, else the
    distance between the values' positions for numbers (as a fraction), 1 for the rest."""
    total = 0.0
    for key, values in space.dimensions.items():
        mine, wanted = _choice(candidate.features[key]), params.get(key)
        if mine == wanted:
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if mine in numbers and wanted in numbers and len(numbers) > 1:
            ordered = sorted(numbers)
            total += abs(ordered.index(mine) - ordered.index(wanted)) / (len(ordered) - 1)
        else:
            total += 1.0
    return total


@dataclass
class Search:
    """A seeded search over a space: ask `next()`, measure, `record()` what it found."""

    space: SearchSpace
    goal: Goal
    seed: int = 0
    sampler: str = "model"  # "model" (infra/search/model.py), "tpe" or "random"
    startup_trials: int = STARTUP_TRIALS
    max_trials: int | None = None  # known: the last trials exploit what the model learnt
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._random = random.Random(self.seed)
        self._numbers = np.random.default_rng(self.seed)
        self._model = CapacityModel(self.space)
        self._distributions: dict[str, BaseDistribution] = {
            key: CategoricalDistribution([_choice(v) for v in values])
            for key, values in self.space.dimensions.items()
        }
        sampler = (
            optuna.samplers.TPESampler(
                seed=self.seed, n_startup_trials=self.startup_trials, multivariate=True
            )
            if self.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=self.seed)
        )
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        self._candidates = self.space.by_name()
        # Each value explored: the best configuration it was tried beside, and how often.
        self._explored: dict[tuple[str, Any], tuple[str, int]] = {}

    @property
    def measured(self) -> set[str]:
        return {o.candidate for o in self.outcomes}

    def incumbent(self) -> tuple[Candidate, Outcome] | None:
        """The best configuration so far by what it is sure of (its range's low end),
        among those a capacity passed on."""
        scored = [
            (o.score(self.goal, self._candidates[o.candidate]), o)
            for o in self.outcomes
            if o.low and not o.pruned
        ]
        if not scored:
            return None
        _, outcome = min(scored, key=lambda pair: pair[0])
        return self._candidates[outcome.candidate], outcome

    def incumbent_score(self) -> float:
        best = self.incumbent()
        return math.inf if best is None else best[1].score(self.goal, best[0])

    def next(self) -> Candidate | None:
        """The configuration to measure next; None when every one is measured."""
        measured = self.measured
        left = [c for c in self.space.candidates if c.name not in measured]
        if not left:
            return None
        if not self._distributions:
            return left[0]
        if self.sampler == "model":
            taken = sum(not o.earlier for o in self.outcomes)
            last = self.max_trials is not None and self.max_trials - taken <= EXPLOIT_LAST
            if not last and self._explores(taken):
                holding = self._starved(left)
                if holding:
                    return self._model.choose(holding, self.goal, self._numbers)
                incumbent = self.incumbent_score()
                if math.isfinite(incumbent):
                    chances = self._model.improvement_probabilities(
                        left, self.goal, incumbent, self._numbers
                    )
                    return left[int(np.argmax(chances))]
            return self._model.choose(left, self.goal, self._numbers, exploit=last)
        trial = self._study.ask(self._distributions)
        params = trial.params
        # The proposal itself is not measured; what is measured is told below (record).
        self._study.tell(trial, state=TrialState.FAIL)
        ranked = sorted(
            left, key=lambda c: (_distance(c, params, self.space), self._random.random())
        )
        return ranked[0]

    def _explores(self, taken: int) -> bool:
        """Whether this trial is one of the exploring ones (see EXPLORE_EVERY)."""
        values = sum(len(v) for v in self.space.dimensions.values() if len(v) > 1)
        affordable = self.max_trials is None or self.max_trials >= EXPLORE_BUDGET * values
        return affordable and taken >= self.startup_trials and taken % EXPLORE_EVERY == 0

    def _starved(self, left: Sequence[Candidate]) -> list[Candidate]:
        """For the value least often explored of those not yet measured in a good context
        (near the best so far, or with the best so far's other settings): the unmeasured
        configuration nearest to the best so far with that value swapped in, or, before any
        configuration passed, every one that holds it. Empty when no value is left. A new
        best is a new context: what was tried beside the old one is tried again."""
        incumbent = self.incumbent()
        score = self.incumbent_score()
        context = incumbent[0].name if incumbent is not None else ""
        good: set[tuple[str, Any]] = set()
        for outcome in self.outcomes:
            candidate = self._candidates[outcome.candidate]
            if outcome.score(self.goal, candidate) <= score * GOOD_CONTEXT:
                good |= {(key, _choice(value)) for key, value in candidate.features.items()}
        starved = [
            (key, value)
            for key, values in self.space.dimensions.items()
            if len(values) > 1
            for value in values
            if (key, _choice(value)) not in good
            and self._explored.get((key, _choice(value)), ("", 0))[0] != context
        ]
        starved.sort(key=lambda kv: self._explored.get((kv[0], _choice(kv[1])), ("", 0))[1])
        for key, value in starved:
            done = self._explored.get((key, _choice(value)), ("", 0))[1]
            self._explored[(key, _choice(value))] = (context, done + 1)
            holding = [c for c in left if _choice(c.features.get(key)) == _choice(value)]
            if holding and incumbent is not None:
                wanted = {k: _choice(v) for k, v in incumbent[0].features.items()}
                wanted[key] = _choice(value)
                return [min(holding, key=lambda c: _distance(c, wanted, self.space))]
            if holding:
                return holding
        return []

    def record(self, outcome: Outcome) -> None:
        candidate = self._candidates[outcome.candidate]
        self.outcomes.append(outcome)
        self._model.observe(candidate, outcome.low, outcome.high)
        if not self._distributions:
            return
        if outcome.pruned:
            # What it could at best be: no better than the incumbent, so never "good".
            value = self.goal.score_range(candidate.price, outcome.low, outcome.high)[0]
        else:
            value = outcome.score(self.goal, candidate)
        self._study.add_trial(
            create_trial(
                params={key: _choice(candidate.features[key]) for key in self._distributions},
                distributions=self._distributions,
                value=min(value, WORST_SCORE) if math.isfinite(value) else WORST_SCORE,
            )
        )

    def seed_with(self, earlier: Sequence[Outcome]) -> None:
        """Results measured before this search: counted as measured, and learnt from."""
        for outcome in earlier:
            if outcome.candidate in self._candidates and outcome.candidate not in self.measured:
                self.record(Outcome(**{**outcome.__dict__, "earlier": True}))
