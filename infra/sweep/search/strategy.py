"""Which configuration to measure next: the search's state (what was measured, the best so
far) and the strategy it asks. Pure (the strategies are seeded).

Three strategies (`sweep --sampler`), each in its own file of infra/sweep/search/strategies/:
- `model` (the default, `bayesian.py`): a Bayesian model of capacity and Thompson sampling
  over it, exploring on purpose when the budget allows;
- `tpe` (`optuna_samplers.py`): Optuna's TPE sampler proposes the dimensions' values and
  the nearest unmeasured configuration is measured;
- `random` (`optuna_samplers.py`): the baseline.
scripts/bench_search.py and scripts/bench_landscapes.py measure them (docs/testing.md gives
the figures).

Two things make any of them cheaper than measuring every configuration in full:
- A measurement stops as soon as the configuration's capacity range shows it cannot win
  (the best it could be is no better than what the best so far is sure of): the rest of
  its capacity search would only tell how much it loses by (infra/sweep/search/objective.py).
- Results measured earlier (an earlier sweep's report.json or a results table) seed the
  strategy and count as measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from infra.sweep.search.objective import Goal
from infra.sweep.search.space import Candidate, SearchSpace
from infra.sweep.search.strategies import SAMPLERS, Strategy
from infra.sweep.search.strategies.bayesian import ModelStrategy
from infra.sweep.search.strategies.optuna_samplers import OptunaStrategy

__all__ = ["SAMPLERS", "STARTUP_TRIALS", "Outcome", "Search"]

# Random trials before TPE models the results (Optuna's default is 10, too many when a
# search may measure a tenth of a hundred configurations); the model explores from then.
STARTUP_TRIALS = 4


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


@dataclass
class Search:
    """A seeded search over a space: ask `next()`, measure, `record()` what it found."""

    space: SearchSpace
    goal: Goal
    seed: int = 0
    sampler: str = "model"  # one of SAMPLERS: which strategy chooses
    startup_trials: int = STARTUP_TRIALS
    max_trials: int | None = None  # known: the last trials exploit what the model learnt
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        self.strategy: Strategy = (
            ModelStrategy(self.space, self.seed)
            if self.sampler == "model"
            else OptunaStrategy(
                self.space, self.seed, tpe=self.sampler == "tpe", startup_trials=self.startup_trials
            )
        )
        self._candidates = self.space.by_name()

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
        if not self.space.dimensions:
            return left[0]
        return self.strategy.propose(self, left)

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.strategy.learn(self, self._candidates[outcome.candidate], outcome)

    def seed_with(self, earlier: Sequence[Outcome]) -> None:
        """Results measured before this search: counted as measured, and learnt from."""
        for outcome in earlier:
            if outcome.candidate in self._candidates and outcome.candidate not in self.measured:
                self.record(Outcome(**{**outcome.__dict__, "earlier": True}))
