"""Run a sweep: one stack through the Automation API, experiment after experiment, each
measured by the in-cluster capacity search; torn down whatever happens.

The stack is anything with the Automation API stack's methods this module and its
teardown call (`set_all_config`, `up`, `outputs`, `cancel`, `export_stack`, `destroy`,
`workspace.cli_api.refresh`, `workspace.remove_stack`), so tests drive it with a double
that records the calls; the real one comes from `pulumi.automation.create_or_select_stack`
(which runs the Pulumi CLI).

Interruptions: Ctrl-C or SIGTERM while a Pulumi operation runs lets that operation end
(the CLI, which got Ctrl-C too, cancels it gracefully; after a SIGTERM it completes), then
the sweep tears the stack down (infra.teardown: a stale lock cleared, creates cut off
mid-way imported or dropped, then destroyed). During a capacity search they stop the
search at once (its Job is deleted), then tear down. `--keep` keeps the stack in every
case.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from infra.sweep.changes import Step
from infra.sweep.design import SweepDesign
from infra.sweep.estimate import CAPACITY_SEARCH, Phase, destroy_phase
from infra.sweep.experiment import Planned
from infra.sweep.listed import ListedSteps
from infra.sweep.manifest import SweepManifest, now_text
from infra.teardown.run import Exists, Teardown, recovery_commands

Say = Callable[[str], None]
SECONDS_PER_HOUR = 3600.0
ROLLOUT_SETTLE_S = 600.0


class Stack(Protocol):
    """The part of pulumi.automation.Stack a sweep uses."""

    name: str
    workspace: Any

    def set_all_config(self, config: Any, *, path: bool = False) -> None: ...

    def up(self, **kwargs: Any) -> Any: ...

    def outputs(self) -> Mapping[str, Any]: ...

    def destroy(self, **kwargs: Any) -> Any: ...

    def cancel(self) -> None: ...

    def export_stack(self) -> Any: ...


# (experiment, stack outputs, start rate, after_step) -> capacity results document
Measure = Callable[
    [Planned, dict[str, Any], float, Callable[[dict[str, Any]], None]], dict[str, Any]
]
# settings -> (plain config, path config) for set_all_config, the second with path=True
ConfigValues = Callable[[dict[str, Any]], tuple[Any, Any]]


class Chooser(Protocol):
    """Where a campaign's steps come from. A list of experiments is one whose steps are all
    known before it starts, in the cheapest order (infra/sweep/listed.py `ListedSteps`); a
    search's are chosen one at a time from what the ones before measured
    (infra/sweep/search/run.py `SearchSteps`). The run loop below is the same for both."""

    def steps(self, spent: Callable[[], float]) -> Iterable[Step]:
        """The steps to run, each asked for once the one before is measured."""
        ...

    def phases(self, step: Step) -> list[Phase]:
        """A step's estimated phases (the destroy apart)."""
        ...

    def config(self, experiment: str) -> dict[str, Any]:
        """The sweep stack's settings while it serves `experiment`."""
        ...

    def measured(self, step: Step, result: dict[str, Any] | None) -> None:
        """What measuring a step found (None: it could not be measured)."""
        ...

    def destroyed_after(self, step: Step) -> Planned:
        """The experiment the stack stands as when it is destroyed, for the budget check
        before `step`: the last of a list, the step itself for a search."""
        ...

    def settings_of(self, experiment: str) -> dict[str, Any] | None:
        """Settings recorded with a result beside the experiment's name (a configuration
        of a space has no preset to name it by); None for a preset."""
        ...

    def run_experiments(self, ran: list[Step]) -> list[str]:
        """The experiments a run is recorded as covering."""
        ...


class OverBudgetError(Exception):
    """The running total reached the budget (less what the destroy will cost)."""


class MeasureError(Exception):
    """One experiment could not be measured; the sweep goes on with the next."""


@dataclass
class Meter:
    """The running total: what ran, at its hourly price, for as long as it ran."""

    clock: Callable[[], float]
    spent_before: float
    _total: float = 0.0
    _since: float | None = None
    _base: float = 0.0  # USD/h: cluster and serving nodes
    _generator: float = 0.0  # USD/h: load-generator nodes
    _generator_until: float | None = None  # None: while a search runs

    def _advance(self) -> float:
        now = self.clock()
        if self._since is None:
            self._since = now
        elapsed = now - self._since
        generator_end = now if self._generator_until is None else min(now, self._generator_until)
        generator_elapsed = max(0.0, generator_end - self._since)
        self._total += (
            self._base * elapsed + self._generator * generator_elapsed
        ) / SECONDS_PER_HOUR
        if self._generator_until is not None and now >= self._generator_until:
            self._generator, self._generator_until = 0.0, None
        self._since = now
        return now

    def bill(self, usd_per_hour: float) -> None:
        self._advance()
        self._base = usd_per_hour

    def generator_running(self, usd_per_hour: float) -> None:
        self._advance()
        self._generator = max(
            usd_per_hour, self._generator if self._generator_until is None else 0.0
        )
        self._generator_until = None

    def generator_idle(self, minutes: float) -> None:
        now = self._advance()
        if self._generator:
            self._generator_until = now + minutes * 60

    def stop(self) -> None:
        self._advance()
        self._base = self._generator = 0.0
        self._generator_until = None

    @property
    def spent(self) -> float:
        self._advance()
        return self.spent_before + self._total


@dataclass
class Interrupts:
    """Ctrl-C and SIGTERM: remembered while a Pulumi operation runs, raised otherwise."""

    received: str = ""
    shielded: bool = False
    say: Say = print

    def handler(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = not self.received
        self.received = self.received or name
        if self.shielded:
            if first:
                self.say(
                    f"{name}: stopping after the current Pulumi operation, then destroying the "
                    "sweep stack (unless --keep)"
                )
            return
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handler) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextmanager
    def shield(self) -> Iterator[None]:
        self.shielded = True
        try:
            yield
        finally:
            self.shielded = False


@dataclass
class SweepRun:
    """One invocation of a sweep over the design's (pending) experiments."""

    design: SweepDesign
    manifest: SweepManifest
    stack: Stack
    config_values: ConfigValues  # settings -> what stack.set_all_config takes
    measure: Measure
    max_usd: float
    exists: Exists  # does a cut-off create's resource exist in GCP (teardown)
    keep: bool = False
    chooser: Chooser | None = None  # None: the design's steps, in order (ListedSteps)
    say: Say = print
    clock: Callable[[], float] = time.monotonic
    interrupts: Interrupts = field(default_factory=Interrupts)
    stopped: str = ""
    still_up: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=now_text)
    ran: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.steps_from: Chooser = self.chooser or ListedSteps(self.design)

    def run(self) -> int:
        """Run every step, then tear down (unless --keep). Exit status: 0 all measured; 1
        stopped (budget, failure), some not measured, or the destroy failed; 128 + the
        signal's number when interrupted. The manifest says which."""
        meter = Meter(self.clock, self.manifest.spent_usd)
        self.interrupts.say = self.say
        with self.interrupts.installed():
            try:
                self._steps(meter)
            except KeyboardInterrupt:
                self.interrupts.received = self.interrupts.received or "SIGINT"
            except OverBudgetError as error:
                self.stopped = f"budget: {error}"
            except OSError as error:  # a full disk or an unwritable sweep folder
                self.stopped = (
                    f"could not write in {self.manifest.directory}: {error.strerror or error} "
                    f"({error.filename or 'the sweep folder'}). Free the space or fix the "
                    "folder's permissions, then rerun the same command: it goes on with what "
                    "is not measured"
                )
            except Exception as error:  # any failure still tears down
                self.stopped = f"failed: {type(error).__name__}: {str(error)[-500:]}"
            finally:
                if self.interrupts.received:
                    self.stopped = f"interrupted ({self.interrupts.received})"
                if self.stopped:
                    self.say(f"Sweep stopped: {self.stopped}")
                # Whatever stopped it, the stack goes; a failure to say so is said last.
                destroyed = self._teardown(meter)
                self._close_run(meter)
        if self.interrupts.received:
            return 128 + int(signal.Signals[self.interrupts.received])
        if not destroyed or self.stopped or self.manifest.failed:
            return 1
        return 0

    def _destroy_usd(self, step: Step) -> float:
        return destroy_phase(self.steps_from.destroyed_after(step), self.design.durations).usd

    def _phases(self, step: Step) -> list[Phase]:
        return self.steps_from.phases(step)

    @property
    def _billing_usd_per_hour(self) -> float:
        """What the stack bills while it stands: the last experiment `up` reached."""
        last = self.ran[-1] if self.ran else self.design.steps[-1]
        return last.experiment.usd_per_hour

    def _steps(self, meter: Meter) -> None:
        start_rates: dict[tuple[str, bool, str, int], float] = {}
        for step in self.steps_from.steps(lambda: meter.spent):
            if self.interrupts.received:
                raise KeyboardInterrupt
            destroy_usd = self._destroy_usd(step)
            self._check_budget(meter, step, destroy_usd)
            outputs = self._up(step, meter)
            experiment = step.experiment
            rate = start_rates.get(experiment.pool_shape, self.design.search.start_rate)
            result = self._measure(step, outputs, rate, meter, destroy_usd)
            self.steps_from.measured(step, result)
            if result is not None:
                # The highest rate that passed with confidence, closed range or not.
                capacity = ((result.get("capacity") or {}).get("range") or {}).get("low")
                if capacity:
                    # The next experiment on these nodes starts its search here.
                    start_rates[experiment.pool_shape] = float(capacity)

    def _projected(self, step: Step) -> float:
        return sum(p.usd for p in self._phases(step))

    def _check_budget(self, meter: Meter, step: Step, destroy_usd: float) -> None:
        projected = meter.spent + self._projected(step) + destroy_usd
        if projected > self.max_usd:
            raise OverBudgetError(
                f"{meter.spent:.2f} USD spent; {step.experiment.name} would bring it to about "
                f"{projected:.2f} USD with the destroy, over --max-usd {self.max_usd:g}"
            )

    def _up(self, step: Step, meter: Meter) -> dict[str, Any]:
        experiment = step.experiment
        previous = step.previous
        self.say(f"== {experiment.name}: pulumi up ({step.pool.kind} node pool; {step.pool.why})")
        meter.bill(max(experiment.usd_per_hour, previous.usd_per_hour if previous else 0.0))
        self.ran.append(step)
        if experiment.name not in self.manifest.order:
            self.manifest.order.append(experiment.name)  # a search's trials, as chosen
        config = self.steps_from.config(experiment.name)
        plain, paths = self.config_values(config)
        self.stack.set_all_config(plain)
        if paths:
            self.stack.set_all_config(paths, path=True)
        started = self.clock()
        options: dict[str, Any] = {"on_output": self.say}
        if step.replace_urns:
            options["replace"] = step.replace_urns
        with self.interrupts.shield():
            self.stack.up(**options)
        if self.interrupts.received:
            raise KeyboardInterrupt
        meter.bill(experiment.usd_per_hour)
        self._record_phase(step, "up", started)
        return {key: getattr(value, "value", value) for key, value in self.stack.outputs().items()}

    def _measure(
        self, step: Step, outputs: dict[str, Any], rate: float, meter: Meter, destroy_usd: float
    ) -> dict[str, Any] | None:
        experiment = step.experiment
        per_node = experiment.load_generator_node_usd_per_hour
        pool = outputs.get("loadGenerator") or {}
        per_pod = max(1, int(pool.get("processesPerNode") or 1))

        def after_step(document: dict[str, Any]) -> None:
            processes = int(document["settings"]["processes"])
            meter.generator_running(per_node * -(-processes // per_pod))
            # Saved after every step: a killed sweep, resumed, counts what it spent.
            self.manifest.spent_usd = meter.spent
            self.manifest.save()
            if meter.spent + destroy_usd >= self.max_usd:
                raise OverBudgetError(
                    f"{meter.spent:.2f} USD spent during {experiment.name}'s capacity search; "
                    f"the destroy needs about {destroy_usd:.2f} of --max-usd {self.max_usd:g}"
                )

        started = self.clock()
        meter.generator_running(per_node)
        try:
            result = self.measure(experiment, outputs, rate, after_step)
        except MeasureError as error:
            self.say(f"{experiment.name}: not measured: {error}")
            self.manifest.failed[experiment.name] = str(error)
            self.manifest.save()
            return None
        finally:
            meter.generator_idle(self.design.durations.load_generator_idle)
            self._record_phase(step, CAPACITY_SEARCH, started)
        settings = self.steps_from.settings_of(experiment.name)
        self.manifest.record_result(experiment.name, result, experiment, settings)
        self.manifest.spent_usd = meter.spent
        self.manifest.save()
        self.say(f"{experiment.name}: measured; {meter.spent:.2f} USD spent so far")
        return result

    def _record_phase(self, step: Step, what: str, started: float) -> None:
        estimated = sum(
            p.minutes
            for p in self._phases(step)
            if (p.what == CAPACITY_SEARCH) == (what == CAPACITY_SEARCH)
        )
        self.manifest.phases.append(
            {
                "experiment": step.experiment.name,
                "what": what if what != "up" else f"up ({step.pool.kind} node pool)",
                "estimated_minutes": round(estimated, 1),
                "actual_minutes": round((self.clock() - started) / 60, 1),
            }
        )
        self.manifest.save()

    def _teardown(self, meter: Meter) -> bool:
        """Destroy the stack unless --keep, whatever the operation before it left (a stale
        lock, creates cut off mid-way: infra.teardown); False when it may still stand."""
        if self.keep:
            self.say(
                f"--keep: stack {self.stack.name} stays up, billing about "
                f"{self._billing_usd_per_hour:.2f} USD/hour; destroy it "
                f"with `python -m infra teardown {self.stack.name} --remove` (the "
                f"cleanup-expired workflow does after {self.design.ttl_hours} h)"
            )
            return True
        # The sweep's own operations have ended: any lock left is theirs, and stale.
        teardown = Teardown(
            self.stack, self.exists, self.design.gcp_project, say=self.say, remove=True
        )
        with self.interrupts.shield():
            result = teardown.run()
        if result.destroyed:
            meter.stop()
        if result.clean:
            return True
        self.say(
            f"THE SWEEP STACK {self.stack.name} MAY STILL BE UP AND BILLING about "
            f"{self._billing_usd_per_hour:.2f} USD/hour. "
            f"{result.failure or ' '.join(result.unresolved)}"
        )
        self.say("Finish the teardown by hand:")
        self.still_up = recovery_commands(self.stack.name, teardown.resolution)
        for command in self.still_up:
            self.say(f"  {command}")
        self.say(
            f"The cleanup-expired workflow destroys it {self.design.ttl_hours} h after its last "
            "update."
        )
        self.stopped = self.stopped or "the destroy failed"
        return False

    def _close_run(self, meter: Meter) -> None:
        self.manifest.spent_usd = meter.spent
        self.manifest.runs.append(
            {
                "started_at": self.started_at,
                "ended_at": now_text(),
                "experiments": self.steps_from.run_experiments(self.ran),
                "stopped": self.stopped or "done",
                "spent_usd": round(meter.spent - meter.spent_before, 4),
                # The commands that finish a teardown that failed (empty: torn down).
                "still_up": self.still_up,
            }
        )
        try:
            self.manifest.save()
        except OSError as error:
            self.say(f"error: the sweep's manifest could not be saved: {error}")
