"""The `tpe` and `random` strategies: an Optuna sampler proposes the dimensions' values,
and the search measures the unmeasured configuration nearest to the proposal.

The space holds only the configurations the program can deploy, so a proposal may not
exist, or may be measured already; the sampler is told what was measured instead. TPE
(multivariate) models discrete values directly and needs no gradient, but learns from the
scores alone; `random` is the baseline.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState, create_trial

from infra.sweep.search.space import Candidate, SearchSpace
from infra.sweep.search.strategies.geometry import choice, distance

if TYPE_CHECKING:
    from infra.sweep.search.strategy import Outcome, Search

# Scores are finite for the sampler: a configuration nothing passed on ranks last.
WORST_SCORE = 1e12


class OptunaStrategy:
    """Optuna's TPE (`tpe`) or random (`random`) sampler over the space's dimensions."""

    def __init__(self, space: SearchSpace, seed: int, tpe: bool, startup_trials: int) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self._random = random.Random(seed)
        self._distributions: dict[str, BaseDistribution] = {
            key: CategoricalDistribution([choice(v) for v in values])
            for key, values in space.dimensions.items()
        }
        sampler = (
            optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup_trials, multivariate=True
            )
            if tpe
            else optuna.samplers.RandomSampler(seed=seed)
        )
        self._study = optuna.create_study(direction="minimize", sampler=sampler)

    def propose(self, search: Search, left: list[Candidate]) -> Candidate:
        trial = self._study.ask(self._distributions)
        params = trial.params
        # The proposal itself is not measured; what is measured is told below (learn).
        self._study.tell(trial, state=TrialState.FAIL)
        ranked = sorted(
            left, key=lambda c: (distance(c, params, self.space), self._random.random())
        )
        return ranked[0]

    def learn(self, search: Search, candidate: Candidate, outcome: Outcome) -> None:
        if not self._distributions:
            return
        if outcome.pruned:
            # What it could at best be: no better than the incumbent, so never "good".
            value = search.goal.score_range(candidate.price, outcome.low, outcome.high)[0]
        else:
            value = outcome.score(search.goal, candidate)
        self._study.add_trial(
            create_trial(
                params={key: choice(candidate.features[key]) for key in self._distributions},
                distributions=self._distributions,
                value=min(value, WORST_SCORE) if math.isfinite(value) else WORST_SCORE,
            )
        )
