"""A real search: the sweep stack measures, trial after trial, what the search chooses.

`SearchSteps` is the sweep's chooser (infra.sweep.run.Chooser): it asks the search for the
next configuration, plans it offline as the sweep stack (the real program under the
SDK's mocks, as every sweep step is), and turns it into the step from the configuration
before it (a new node pool, a resize or a rollout). What each trial measured goes back to
the search; a capacity search is stopped as soon as its range shows it cannot win
(`stop_reason`). The search ends at --max-trials, when the next trial would pass
--max-usd with the destroy, or when every configuration is measured; the sweep's
teardown then runs as for any sweep. A resumed search counts what the sweep folder holds
as measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.design.settings import NO_PRESET, load_declarations
from infra.sweep.changes import Step, plan_steps
from infra.sweep.design import SWEEP_SETTINGS, SweepDesign, sweep_settings
from infra.sweep.estimate import Phase, destroy_phase, sweep_estimate
from infra.sweep.experiment import Planned
from infra.sweep.search.objective import Goal
from infra.sweep.search.space import IMPLIED_BY_HARDWARE, Candidate, SearchSpace
from infra.sweep.search.strategy import Outcome, Search

Say = Callable[[str], None]


def candidate_settings(
    space: SearchSpace, candidate: Candidate, stack: str, ttl: int
) -> dict[str, Any]:
    """The sweep stack's settings while it serves this configuration. A dimension this
    configuration leaves out (a batch size with batching off) is set to its default, so
    nothing the configuration before it set stays in the stack's config."""
    if candidate.preset is not None:  # the preset's file holds its settings
        return sweep_settings(stack, candidate.preset, ttl, dict(space.settings))
    declarations = load_declarations()
    # What a configuration before it may have set: the dimensions, and what a GPU host
    # implies (the -gpu image, N1's T4), which a CPU configuration after it must not keep.
    mixed = any(c.gpus_per_pod for c in space.candidates)
    resettable = (*space.dimensions, *(IMPLIED_BY_HARDWARE if mixed else ()))
    defaults = {
        key: declarations[key].default
        for key in resettable
        if key not in candidate.settings
        and key not in space.settings
        and declarations[key].default is not None
    }
    given = {**defaults, **space.settings, **candidate.settings}
    return sweep_settings(stack, NO_PRESET, ttl, given)


def outcome_of(name: str, result: dict[str, Any] | None, earlier: bool = False) -> Outcome:
    """What a capacity results document tells the search (None: not measured)."""
    capacity = (result or {}).get("capacity") or {}
    window = capacity.get("range") or {}
    return Outcome(
        name,
        window.get("low"),
        window.get("high"),
        pruned=bool(capacity.get("stopped_early")),
        runs=int(capacity.get("runs") or 0),
        earlier=earlier,
    )


@dataclass
class SearchSteps:
    """The steps of a real search, chosen one at a time (see the module's text)."""

    search: Search
    space: SearchSpace
    design: SweepDesign  # the stack, durations, capacity search and TTL; its first step
    plan: Callable[[Candidate], Planned]  # a configuration planned as the sweep stack
    max_trials: int
    max_usd: float
    say: Say = print
    stopped: str = ""
    trials: int = 0
    _candidates: dict[str, Candidate] = field(default_factory=dict)
    _current: str = ""

    def __post_init__(self) -> None:
        self._candidates = self.space.by_name()

    @property
    def goal(self) -> Goal:
        return self.search.goal

    def phases(self, step: Step) -> list[Phase]:
        """The estimate of one trial (the first creates the cluster); the destroy apart."""
        estimate = sweep_estimate([step], self.design.search, self.design.durations)
        return [p for p in estimate.phases if p.experiment == step.experiment.name]

    def config(self, experiment: str) -> dict[str, Any]:
        settings = candidate_settings(
            self.space, self._candidates[experiment], self.design.stack, self.design.ttl_hours
        )
        pin = next(iter(self.design.model_pins.values()), "")
        if pin and "modelSha256" not in self.space.settings:
            settings["modelSha256"] = pin
        return settings

    def steps(self, spent: Callable[[], float]) -> Iterator[Step]:
        previous: Planned | None = None
        first: Step | None = self.design.steps[0]
        while True:
            if self.trials >= self.max_trials:
                self.stopped = f"--max-trials {self.max_trials} reached"
                return
            if first is not None:
                step, first = first, None
            else:
                candidate = self.search.next()
                if candidate is None:
                    self.stopped = "every configuration of the space is measured"
                    return
                planned = self.plan(candidate)
                ordered = [previous, planned] if previous is not None else [planned]
                step = plan_steps(ordered, self.design.durations)[-1]
            cost = sum(p.usd for p in self.phases(step))
            destroy = destroy_phase(step.experiment, self.design.durations).usd
            if spent() + cost + destroy > self.max_usd:
                self.stopped = (
                    f"the next trial ({step.experiment.name}, about {cost:.2f} USD) would pass "
                    f"--max-usd {self.max_usd:g} with the destroy"
                )
                return
            self.trials += 1
            self._current = step.experiment.name
            self.say(
                f"Trial {self.trials} of at most {self.max_trials}: {step.experiment.name} "
                f"({self._candidates[step.experiment.name].summary})"
            )
            yield step
            previous = step.experiment

    def measured(self, step: Step, result: dict[str, Any] | None) -> None:
        outcome = outcome_of(step.experiment.name, result)
        self.search.record(outcome)
        incumbent = self.search.incumbent()
        if incumbent is not None:
            self.say(
                f"Best so far: {incumbent[0].name} "
                f"({incumbent[1].score(self.goal, incumbent[0]):.4g} {self.goal.unit})"
            )

    def destroyed_after(self, step: Step) -> Planned:
        return step.experiment  # the next trial is chosen only after this one

    def settings_of(self, experiment: str) -> dict[str, Any] | None:
        """A configuration of a space: its own settings, the sweep's own left out."""
        config = self.config(experiment)
        settings = {k: v for k, v in config.items() if k not in SWEEP_SETTINGS}
        settings["experiment"] = config["experiment"]
        return settings

    def run_experiments(self, ran: list[Step]) -> list[str]:
        return [s.experiment.name for s in ran]

    def stop_reason(self, experiment: str, low: float | None, high: float | None) -> str:
        """Why a capacity search may stop now: its range shows it cannot win."""
        candidate = self._candidates.get(experiment)
        best = self.search.incumbent()
        if candidate is None or best is None or best[0].name == experiment:
            return ""
        incumbent = best[1].score(self.goal, best[0])
        if not self.goal.cannot_win(candidate.price, low, high, incumbent):
            return ""
        could = self.goal.score_range(candidate.price, low, high)[0]
        return (
            f"at best {could:.4g} {self.goal.unit}, no better than {best[0].name}'s {incumbent:.4g}"
        )


def resumed(search: Search, results: Mapping[str, dict[str, Any]], space: SearchSpace) -> list[str]:
    """What the sweep folder measured already: counted as measured by this search."""
    known = space.by_name()
    names = [name for name in results if name in known]
    search.seed_with([outcome_of(name, results[name], earlier=True) for name in names])
    return names
