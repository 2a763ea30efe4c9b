"""The `model` strategy: a Bayesian model of capacity (infra/sweep/search/model.py) and Thompson
sampling over it, with exploration on purpose when the budget allows.

Cost is known before a trial runs (the price catalogue); only capacity is not, and it has
structure (it grows with the pods' cores, each dimension shifts it by a factor, some
settings act only together): modelling that structure lets a few trials inform every
configuration. With a budget that allows it, every EXPLORE_EVERY-th trial explores: a
value no configuration near the best has held is measured beside the best (its other
settings, and its pod's cores), else the configuration most likely to beat the best so
far. The budget's last tenth goes to the best's unmeasured neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from infra.sweep.search.model import CapacityModel
from infra.sweep.search.space import Candidate, SearchSpace
from infra.sweep.search.strategies.geometry import choice, distance, settings

if TYPE_CHECKING:
    from infra.sweep.search.strategy import Outcome, Search

# With a trial budget, the model's last trials go where its mean prices cheapest.
EXPLOIT_LAST = 2
# No value of a dimension is written off before it was measured in a good context: every
# EXPLORE_EVERY-th trial, a value that no configuration near the best so far (within
# GOOD_CONTEXT of its score and NEAR_CONTEXT of its settings) holds is measured with the
# best configuration's other settings (the context they are known best in).
# With no value left to try, that trial goes to the configuration most likely to beat
# the best so far (probability of improvement: where a target load's whole nodes make a
# cliff, a configuration just over it is worth measuring even when most draws put it
# under). A budget too small to try every value twice over leaves all to Thompson sampling.
EXPLORE_EVERY = 4
EXPLORE_EVERY_MIXED = 3  # in a space of CPU machines and GPU hosts
GOOD_CONTEXT = 1.25
# ... and one setting from it at most (geometry.distance, a setting with no effect on
# either side no difference): a value held only by configurations as good as the best but
# settings away from it (a batch timeout tried on a GPU host at two pods per node, when
# the best runs one) has not been tried where it would matter. On the GPU landscape this
# took the worst pick by requests per dollar from 290% over the best to 44%, on the
# queueing one from 11.6% to 10.3% (3 tables x 40 seeds, 2026-12-07).
NEAR_CONTEXT = 1.0
EXPLORE_BUDGET = 2  # trials per value of the space the budget must allow
# With a trial budget, its last tenth goes to the unmeasured neighbours of the best so far
# (one setting changed), the one a posterior draw prices cheapest (the last EXPLOIT_LAST
# by the posterior's mean): where the model's form does not fit the space (settings that
# act only together), the best is often a step from what the model prices best. On the
# queueing landscape this took the worst pick by requests per dollar from 1.8% over the
# best to 0.0% (scripts/bench_landscapes.py, 2026-12-06).
POLISH_SHARE = 0.1


class ModelStrategy:
    """Thompson sampling over the capacity model, exploring on purpose every few trials."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self._numbers = np.random.default_rng(seed)
        self._model = CapacityModel(space)
        # Each value explored (on each kind of hardware): the best configuration it was
        # tried beside each time, and that configuration's score then.
        self._explored: dict[tuple[str, Any, bool], list[tuple[str, float]]] = {}
        self._mixed = len({bool(c.gpus_per_pod) for c in space.candidates}) > 1

    def propose(self, search: Search, left: list[Candidate]) -> Candidate:
        taken = sum(not o.earlier for o in search.outcomes)
        remaining = None if search.max_trials is None else search.max_trials - taken
        last = remaining is not None and remaining <= EXPLOIT_LAST
        if remaining is not None and remaining <= POLISH_SHARE * (search.max_trials or 0):
            near = self._neighbours(search, left)
            if near:
                return self._model.choose(near, search.goal, self._numbers, exploit=last)
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

    def _neighbours(self, search: Search, left: Sequence[Candidate]) -> list[Candidate]:
        """The unmeasured configurations near the best so far, on its kind of hardware: one
        setting changed, or two numbers a step each (geometry.distance within 1); a
        setting with no effect on either side (a batch size with batching off) is no
        difference."""
        best = search.incumbent()
        if best is None:
            return []
        wanted = settings(best[0])
        on_gpu = bool(best[0].gpus_per_pod)
        return [
            c
            for c in left
            if bool(c.gpus_per_pod) == on_gpu
            and distance(c, wanted, self.space, conditional=True) <= 1.0
        ]

    def _explores(self, search: Search, taken: int) -> bool:
        """Whether this trial is one of the exploring ones (see EXPLORE_EVERY)."""
        # The values there are to explore (a conditional setting's absence is none).
        values = sum(
            sum(value is not None for value in v)
            for v in self.space.dimensions.values()
            if len(v) > 1
        )
        affordable = search.max_trials is None or search.max_trials >= EXPLORE_BUDGET * values
        # Two kinds of hardware take turns exploring: each then gets its turn as often.
        every = EXPLORE_EVERY_MIXED if self._mixed else EXPLORE_EVERY
        return affordable and taken >= search.startup_trials and taken % every == 0

    def _starved(self, search: Search, left: Sequence[Candidate]) -> list[Candidate]:
        """For the value least often explored of those not yet measured in a good context
        (in a configuration about as good as the best so far and one setting from it, or
        with the best so far's other settings): the unmeasured
        configuration nearest to the best so far with that value swapped in, or, before any
        configuration passed, every one that holds it. Empty when no value is left. A new
        best is a new context: what was tried beside the old one is tried again, first
        what was tried only beside configurations far worse than the best now. A
        conditional setting's absence (a batch size with batching off) is not a value.

        Where a space mixes CPU machines and GPU hosts, each kind of hardware is explored in
        its own context (a GPU server's best settings are not a CPU's: one pod per GPU,
        batching): a value counts as tried in a good context for a kind when a
        configuration of that kind near that kind's best (in score and settings) holds
        it."""
        candidates = self.space.by_name()
        kinds = sorted({bool(c.gpus_per_pod) for c in self.space.candidates})
        starved: list[tuple[bool, str, Any, str, float]] = []
        for kind in kinds:
            best = self._best_of(search, kind if len(kinds) > 1 else None)
            context, score = (best[1].name, best[0]) if best else ("", math.inf)
            around = settings(best[1]) if best else {}
            good: set[tuple[str, Any]] = set()
            for outcome in search.outcomes:
                candidate = candidates[outcome.candidate]
                if len(kinds) > 1 and bool(candidate.gpus_per_pod) != kind:
                    continue
                if (
                    best
                    and outcome.score(search.goal, candidate) <= best[0] * GOOD_CONTEXT
                    and distance(candidate, around, self.space, conditional=True) <= NEAR_CONTEXT
                ):
                    good |= set(settings(candidate).items())
            for key, values in self.space.dimensions.items():
                if len(values) < 2:
                    continue
                for value in values:
                    if value is None:
                        # A conditional dimension's absence (no batch size with batching
                        # off) is its parent's value, explored as that.
                        continue
                    mark = (key, choice(value), kind)
                    tried = self._explored.get(mark, [("", 0.0)])[-1][0] == context
                    if (key, choice(value)) in good or tried:
                        continue
                    if any(
                        choice(c.features.get(key)) == choice(value)
                        and bool(c.gpus_per_pod) == kind
                        for c in left
                    ):
                        starved.append((kind, key, value, context, score))
        # The value least often explored beside a configuration about as good as its kind's
        # best now (one explored only beside a configuration since far outdone, as a batch
        # timeout tried on the slowest GPU host before the fastest was measured, counts as
        # not explored), and between kinds of hardware, the kind explored least so far
        # (each gets its turn).
        turns = {
            kind: sum(len(beside) for (_, _, k), beside in self._explored.items() if k == kind)
            for kind in kinds
        }

        def explored(entry: tuple[bool, str, Any, str, float]) -> int:
            kind, key, value, _, now = entry
            beside = self._explored.get((key, choice(value), kind), [])
            return sum(then <= now * GOOD_CONTEXT for _, then in beside)

        starved.sort(key=lambda entry: (explored(entry), turns[entry[0]]))
        for kind, key, value, context, score in starved:
            mark = (key, choice(value), kind)
            self._explored.setdefault(mark, []).append((context, score))
            holding = [
                c
                for c in left
                if choice(c.features.get(key)) == choice(value) and bool(c.gpus_per_pod) == kind
            ]
            best = self._best_of(search, kind if len(kinds) > 1 else None)
            if best is not None:
                wanted = settings(best[1])
                wanted[key] = choice(value)
                return [min(holding, key=lambda c: self._apart(c, wanted, best[1]))]
            return holding
        return []

    def _apart(self, candidate: Candidate, wanted: dict[str, Any], best: Candidate) -> float:
        """How far a configuration is from the context a value is explored in: the best
        configuration's settings (geometry.distance) and its pod's cores, each doubling or
        halving of them counting as one setting changed. A machine type is then tried
        with as many cores per pod as the best has (pods per node follow the shape): a
        pod's cores, not its pods per node, are what its threads and batches run on, and
        a 16-vCPU shape tried at the best 8-vCPU shape's pods per node runs pods twice as
        large, and looks worse than it is. On the queueing landscape this took the picks
        by requests per dollar from 13 to 20 of 20 within 3% of the best."""
        apart = distance(candidate, wanted, self.space)
        if best.pod_cores and candidate.pod_cores:
            apart += abs(math.log2(candidate.pod_cores / best.pod_cores))
        return apart

    def _best_of(self, search: Search, on_gpu: bool | None) -> tuple[float, Candidate] | None:
        """The best configuration measured so far (of one kind of hardware, unless None) by
        what it is sure of; a kind whose every trial was stopped early has its best of
        those (the context it is known best in)."""
        if on_gpu is None:
            best = search.incumbent()
            return None if best is None else (search.incumbent_score(), best[0])
        candidates = self.space.by_name()
        scored = sorted(
            (outcome.pruned, outcome.score(search.goal, candidates[outcome.candidate]), name)
            for outcome in search.outcomes
            if outcome.low and bool(candidates[(name := outcome.candidate)].gpus_per_pod) == on_gpu
        )
        if not scored:
            return None
        _, score, name = scored[0]
        return score, candidates[name]
