"""A list of experiments as a campaign's chooser (infra.sweep.run.Chooser): every step
known before the first runs, in the design's order (the cheapest: fewest node pool
changes: infra/sweep/order.py). A search's chooser, which picks one configuration at a
time from what the ones before measured, is infra/sweep/search/run.py `SearchSteps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from infra.sweep.changes import Step
from infra.sweep.design import SweepDesign
from infra.sweep.estimate import Phase
from infra.sweep.experiment import Planned


@dataclass
class ListedSteps:
    """A list of experiments, in the design's (cheapest) order."""

    design: SweepDesign

    def steps(self, spent: Callable[[], float]) -> Iterable[Step]:
        return self.design.steps

    def phases(self, step: Step) -> list[Phase]:
        return self.design.estimate.of(step.experiment.name)

    def config(self, experiment: str) -> dict[str, Any]:
        return self.design.config(experiment)

    def measured(self, step: Step, result: dict[str, Any] | None) -> None:
        return None

    def destroyed_after(self, step: Step) -> Planned:
        return self.design.steps[-1].experiment

    def settings_of(self, experiment: str) -> dict[str, Any] | None:
        return None

    def run_experiments(self, ran: list[Step]) -> list[str]:
        return [s.experiment.name for s in self.design.steps]
