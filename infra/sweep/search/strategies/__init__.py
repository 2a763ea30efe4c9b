"""The search's strategies, each behind one interface (`Strategy`): propose the next
configuration from those not yet measured, and learn from what measuring one found. The
search itself (infra/sweep/search/strategy.py) keeps the outcomes and the best so far; a
strategy only chooses. One file each: `bayesian` (the `model` sampler: a model of
capacity), `optuna_samplers` (`tpe` and `random`), and the distances between
configurations they share (`geometry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from infra.sweep.search.space import Candidate
    from infra.sweep.search.strategy import Outcome, Search

SAMPLERS = ("model", "tpe", "random")


class Strategy(Protocol):
    """How a search chooses: what to measure next, and what it learns from a result."""

    def propose(self, search: Search, left: list[Candidate]) -> Candidate:
        """One of `left` (the configurations not measured yet; never empty)."""
        ...

    def learn(self, search: Search, candidate: Candidate, outcome: Outcome) -> None:
        """Take in what measuring `candidate` found (already among search.outcomes)."""
        ...
