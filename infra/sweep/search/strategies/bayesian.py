"""The `model` strategy: a Bayesian model of capacity (infra/sweep/search/model.py) and Thompson
sampling over it, with exploration on purpose when the budget allows.

Cost is known before a trial runs (the price catalogue); only capacity is not, and it has
structure (it grows with the pods' cores, each dimension shifts it by a factor, some
settings act only together): modelling that structure lets a few trials inform every
configuration. With a budget that allows it, every EXPLORE_EVERY-th trial explores: a
value no configuration near the best has held is measured in the context the model prices
cheapest, else the configuration most likely to beat the best so far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from infra.sweep.search.model import CapacityModel
from infra.sweep.search.space import Candidate, SearchSpace
from infra.sweep.search.strategies.geometry import choice, distance

if TYPE_CHECKING:
    from infra.sweep.search.strategy import Outcome, Search

# With a trial budget, the model's last trials go where its mean prices cheapest.
EXPLOIT_LAST = 2
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


class ModelStrategy:
    """Thompson sampling over the capacity model, exploring on purpose every few trials."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self._numbers = np.random.default_rng(seed)
        self._model = CapacityModel(space)
        # Each value explored: the best configuration it was tried beside, and how often.
        self._explored: dict[tuple[str, Any], tuple[str, int]] = {}

    def propose(self, search: Search, left: list[Candidate]) -> Candidate:
        taken = sum(not o.earlier for o in search.outcomes)
        last = search.max_trials is not None and search.max_trials - taken <= EXPLOIT_LAST
        if not last and self._explores(search, taken):
            holding = self._starved(search, left)
            if holding:
                return self._model.choose(holding, search.goal, self._numbers)
            incumbent = search.incumbent_score()
            if math.isfinite(incumbent):
                chances = self._model.improvement_probabilities(
                    left, search.goal, incumbent, self._numbers
                )
                return left[int(np.argmax(chances))]
        return self._model.choose(left, search.goal, self._numbers, exploit=last)

    def learn(self, search: Search, candidate: Candidate, outcome: Outcome) -> None:
        self._model.observe(candidate, outcome.low, outcome.high)

    def _explores(self, search: Search, taken: int) -> bool:
        """Whether this trial is one of the exploring ones (see EXPLORE_EVERY)."""
        values = sum(len(v) for v in self.space.dimensions.values() if len(v) > 1)
        affordable = search.max_trials is None or search.max_trials >= EXPLORE_BUDGET * values
        return affordable and taken >= search.startup_trials and taken % EXPLORE_EVERY == 0

    def _starved(self, search: Search, left: Sequence[Candidate]) -> list[Candidate]:
        """For the value least often explored of those not yet measured in a good context
        (near the best so far, or with the best so far's other settings): the unmeasured
        configuration nearest to the best so far with that value swapped in, or, before any
        configuration passed, every one that holds it. Empty when no value is left. A new
        best is a new context: what was tried beside the old one is tried again."""
        incumbent = search.incumbent()
        score = search.incumbent_score()
        context = incumbent[0].name if incumbent is not None else ""
        candidates = self.space.by_name()
        good: set[tuple[str, Any]] = set()
        for outcome in search.outcomes:
            candidate = candidates[outcome.candidate]
            if outcome.score(search.goal, candidate) <= score * GOOD_CONTEXT:
                good |= {(key, choice(value)) for key, value in candidate.features.items()}
        starved = [
            (key, value)
            for key, values in self.space.dimensions.items()
            if len(values) > 1
            for value in values
            if (key, choice(value)) not in good
            and self._explored.get((key, choice(value)), ("", 0))[0] != context
        ]
        starved.sort(key=lambda kv: self._explored.get((kv[0], choice(kv[1])), ("", 0))[1])
        for key, value in starved:
            done = self._explored.get((key, choice(value)), ("", 0))[1]
            self._explored[(key, choice(value))] = (context, done + 1)
            holding = [c for c in left if choice(c.features.get(key)) == choice(value)]
            if holding and incumbent is not None:
                wanted = {k: choice(v) for k, v in incumbent[0].features.items()}
                wanted[key] = choice(value)
                return [min(holding, key=lambda c: distance(c, wanted, self.space))]
            if holding:
                return holding
        return []
