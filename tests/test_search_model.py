"""The search's model of capacity (infra/sweep/search/model.py): it learns effects that depend
on two settings at once, reads a stopped-early trial as a bound rather than a measurement,
and counts the threads a pod runs beyond its cores."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from infra.sweep.search.model import CapacityModel, log_interval, oversubscribed
from infra.sweep.search.objective import Goal
from infra.sweep.search.space import Candidate, read_space
from tests.conftest import ROOT

SPACE = ROOT / "experiments" / "spaces" / "e2-cpu.yaml"


@pytest.fixture(scope="module")
def space() -> Any:
    return read_space(SPACE, stack="sweep")


def interacting(c: Candidate) -> float:
    """Capacity where batching pays with one pod per node and costs with four."""
    per_pod = 10.0 * c.pod_cores**0.9
    if c.features["enableBatching"]:
        per_pod *= {1: 1.4, 2: 1.0, 4: 0.6}[c.features["podsPerNode"]]
    return float(per_pod * c.pods)


def batching_effect(model: CapacityModel, space: Any, per_node: int, rng: Any) -> float:
    """The model's mean ratio of capacity with batching to without, at `per_node` pods per
    node, over every configuration that differs only in batching."""
    effects = model.mean(rng)
    ratios: list[float] = []
    by_key: dict[tuple[Any, ...], list[Candidate]] = {}
    for c in space.candidates:
        key = tuple(
            sorted(
                (k, v) for k, v in c.features.items() if k not in ("enableBatching", "maxBatchSize")
            )
        )
        by_key.setdefault(key, []).append(c)
    for group in by_key.values():
        if group[0].features["podsPerNode"] != per_node:
            continue
        off = [c for c in group if not c.features["enableBatching"]]
        on = [c for c in group if c.features["enableBatching"]]
        if off and on:
            capacity_off = model.predict(off, effects)[0]
            ratios += [float(v) / capacity_off for v in model.predict(on, effects)]
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def test_the_model_learns_that_batching_pays_only_with_few_pods_per_node(space: Any) -> None:
    model = CapacityModel(space)
    draw = random.Random(3)
    for c in draw.sample(list(space.candidates), 60):
        truth = interacting(c)
        model.observe(c, truth * 0.98, truth * 1.02)
    rng = np.random.default_rng(0)
    # A model of one effect per value would give batching one factor everywhere.
    assert batching_effect(model, space, 1, rng) > 1.2
    assert batching_effect(model, space, 4, rng) < 0.8


def test_a_stopped_trial_bounds_capacity_without_pulling_it(space: Any) -> None:
    candidates = list(space.candidates)
    random.Random(5).shuffle(candidates)
    held_out = candidates[0]

    def trained() -> CapacityModel:
        model = CapacityModel(space)
        for c in candidates[1:80]:
            truth = interacting(c)
            model.observe(c, truth * 0.98, truth * 1.02)
        return model

    rng = np.random.default_rng(1)
    model = trained()
    before = float(model.predict([held_out], model.mean(rng, sweeps=200))[0])
    # "At most twice what the model expects": true of what it expects, so it teaches nothing.
    loose = trained()
    loose.observe(held_out, None, before * 2)
    after_loose = float(loose.predict([held_out], loose.mean(rng, sweeps=200))[0])
    assert after_loose == pytest.approx(before, rel=0.1)
    # "At most half of it" (nothing passed under a rate half the prediction): the model
    # moves most of the way to the bound (not all of it: what the other trials say of this
    # configuration's settings still counts).
    tight = trained()
    tight.observe(held_out, None, before / 2)
    after_tight = float(tight.predict([held_out], tight.mean(rng, sweeps=200))[0])
    assert after_tight < before * 0.6


def test_a_range_is_an_interval_on_log_capacity() -> None:
    assert log_interval(100, 120) == (math.log(100), math.log(120))
    assert log_interval(100, None) == (math.log(100), math.inf)  # open above
    assert log_interval(None, 80) == (-math.inf, math.log(80))  # nothing passed
    assert log_interval(None, None) is None


def test_threads_beyond_the_pods_cores_are_a_feature(space: Any) -> None:
    c = next(c for c in space.candidates if c.pod_cores == 4)
    within = replace(c, settings={**c.settings, "tensorflowIntraOpParallelism": 2},
                     features={**c.features, "tensorflowInterOpParallelism": 2})  # fmt: skip
    over = replace(c, settings={**c.settings, "tensorflowIntraOpParallelism": 4},
                   features={**c.features, "tensorflowInterOpParallelism": 4})  # fmt: skip
    assert oversubscribed(within) == 0.0
    assert oversubscribed(over) == pytest.approx(2.0)  # 16 threads on 4 cores: 2 doublings


def test_the_first_choice_needs_no_trial(space: Any) -> None:
    model = CapacityModel(space)
    chosen = model.choose(list(space.candidates), Goal(None), np.random.default_rng(0))
    assert chosen in space.candidates


def searched(space: Any, truth: Callable[[Candidate], float], *, seed: int, trials: int) -> Any:
    """A search with a budget of 80 trials, `trials` of them measured against a known
    capacity, each range within 2% of it."""
    from infra.sweep.search.strategy import Outcome, Search  # noqa: PLC0415

    search = Search(space, Goal(None), seed=seed, max_trials=80)
    for _ in range(trials):
        chosen = search.next()
        assert chosen is not None
        capacity = truth(chosen)
        search.record(Outcome(chosen.name, capacity * 0.98, capacity * 1.02))
    return search


def test_no_value_is_written_off_before_it_was_measured_in_a_good_context(space: Any) -> None:
    """A landscape where one machine type looks bad in most contexts but is the best in
    one: the search measures every value in a context the model rates well, and finds it."""

    def truth(c: Candidate) -> float:
        capacity = interacting(c)
        if c.machine_type == "e2-highmem-4":
            good = c.features["podsPerNode"] == 1 and c.features["enableBatching"]
            capacity *= 3.0 if good else 0.3
        return capacity

    search = searched(space, truth, seed=2, trials=80)
    measured = [c for c in space.candidates if c.name in search.measured]
    for key, values in space.dimensions.items():
        for value in values:
            assert any(c.features.get(key) == value for c in measured), (key, value)
    best = search.incumbent()
    assert best is not None and best[0].machine_type == "e2-highmem-4"


def test_a_machine_type_is_explored_with_pods_as_large_as_the_best_s(space: Any) -> None:
    """Exploring another machine type beside the best keeps the best's pod size, not its
    pods per node: the best runs 2 pods on 8 vCPUs, so a 16-vCPU shape is tried with 4."""
    from infra.sweep.search.strategies.bayesian import ModelStrategy  # noqa: PLC0415
    from infra.sweep.search.strategies.geometry import choice, distance  # noqa: PLC0415

    best = next(
        c
        for c in space.candidates
        if c.machine_type == "e2-standard-8" and c.features["podsPerNode"] == 2
    )
    wanted = {key: choice(value) for key, value in best.features.items()}
    wanted["machineType"] = "e2-standard-16"
    larger = [c for c in space.candidates if c.machine_type == "e2-standard-16"]
    strategy = ModelStrategy(space, 0)
    chosen = min(larger, key=lambda c: strategy._apart(c, wanted, best))
    assert chosen.features["podsPerNode"] == 4
    assert chosen.pod_cores == best.pod_cores
    assert {
        k: v for k, v in chosen.features.items() if k not in ("machineType", "podsPerNode")
    } == {k: v for k, v in best.features.items() if k not in ("machineType", "podsPerNode")}
    # By the settings alone, it would have run pods twice as large.
    assert min(larger, key=lambda c: distance(c, wanted, space)).features["podsPerNode"] == 2


def test_a_conditional_settings_absence_is_never_explored_as_a_value(space: Any) -> None:
    """A batch size with batching off is not a value to explore: batching off is, as the
    value of enableBatching. Exploring it took turns that other values never got."""
    from infra.sweep.search.strategies.bayesian import ModelStrategy  # noqa: PLC0415

    search = searched(space, interacting, seed=0, trials=60)
    assert isinstance(search.strategy, ModelStrategy)
    explored = search.strategy._explored
    assert explored  # the budget allows exploring, and the search did
    assert all(value is not None for _, value, _ in explored), sorted(map(str, explored))


def test_a_value_explored_beside_a_far_worse_configuration_is_explored_again(space: Any) -> None:
    """A value tried beside the best of its time, since far outdone (a batch size tried on
    a slow shape before a fast one was measured), has not been tried in a good context:
    it comes before values already explored beside configurations as good as the best now,
    however often it was tried beside the slow one."""
    from infra.sweep.search.strategies.bayesian import ModelStrategy  # noqa: PLC0415
    from infra.sweep.search.strategies.geometry import choice  # noqa: PLC0415
    from infra.sweep.search.strategy import Outcome, Search  # noqa: PLC0415

    def pick(machine: str, per_node: int) -> Candidate:
        found: Candidate = next(
            c
            for c in space.candidates
            if c.machine_type == machine
            and c.features["podsPerNode"] == per_node
            and c.features["enableBatching"]
            and c.features["maxBatchSize"] == 16
            and c.features["tensorflowInterOpParallelism"] == 2
        )
        return found

    slow, fast = pick("e2-highcpu-8", 1), pick("e2-standard-8", 2)
    search = Search(space, Goal(None), seed=0, max_trials=80)
    for candidate, capacity in ((slow, 20.0), (fast, 400.0)):
        search.record(Outcome(candidate.name, capacity, capacity * 1.02))
    strategy = search.strategy
    assert isinstance(strategy, ModelStrategy)
    then = Outcome(slow.name, 20.0, 20.4).score(Goal(None), slow)
    now = Outcome(fast.name, 400.0, 408.0).score(Goal(None), fast)
    # Every value the fast configuration does not hold was explored once beside one about
    # as good as it; the larger batch size twice, beside the slow one only.
    for key, values in space.dimensions.items():
        for value in values:
            if value is not None and choice(value) != choice(fast.features[key]):
                strategy._explored[(key, choice(value), False)] = [("earlier", now * 1.1)]
    strategy._explored[("maxBatchSize", 64, False)] = [(slow.name, then)] * 2
    left = [c for c in space.candidates if c.name not in search.measured]
    (chosen,) = strategy._starved(search, left)
    assert chosen.features["maxBatchSize"] == 64
    # Beside the fast configuration: only the explored value differs.
    assert {k: v for k, v in chosen.features.items() if k != "maxBatchSize"} == {
        k: v for k, v in fast.features.items() if k != "maxBatchSize"
    }


def test_the_last_tenth_of_the_trials_goes_to_the_best_s_neighbours(space: Any) -> None:
    """With a budget of 40 trials, each of the last 4 measures a configuration one setting
    away from the best so far (a batch size with batching off being no setting), while
    one is left to measure (over three searches, most of those trials have one)."""
    assert sum(_polished(space, seed) for seed in range(3)) >= 6


def _polished(space: Any, seed: int) -> int:
    """How many of a 40-trial search's last 4 trials had a neighbour of the best left to
    measure, each asserted to have measured one."""
    from infra.sweep.search.strategies.geometry import choice, distance  # noqa: PLC0415
    from infra.sweep.search.strategy import Outcome, Search  # noqa: PLC0415

    search = Search(space, Goal(None), seed=seed, max_trials=40)
    polished = 0
    for trial in range(40):
        best = search.incumbent()
        chosen = search.next()
        assert chosen is not None
        if trial >= 36:
            assert best is not None
            wanted = {key: choice(value) for key, value in best[0].features.items()}
            near = [
                c
                for c in space.candidates
                if c.name not in search.measured
                and distance(c, wanted, space, conditional=True) <= 1.0
            ]
            if near:
                assert chosen in near, (chosen.name, best[0].name)
                polished += 1
        capacity = interacting(chosen)
        search.record(Outcome(chosen.name, capacity * 0.98, capacity * 1.02))
    return polished


def test_a_value_held_only_settings_away_from_the_best_is_explored_beside_it(space: Any) -> None:
    """A configuration about as good as the best but three settings from it does not make
    its values tried in a good context (a 5 ms batch timeout as good at two pods per node
    says nothing of it at one): the value is explored with the best's other settings. One
    setting from the best and about as good, it does count."""
    from infra.sweep.search.strategies.bayesian import ModelStrategy  # noqa: PLC0415
    from infra.sweep.search.strategies.geometry import choice  # noqa: PLC0415
    from infra.sweep.search.strategy import Outcome, Search  # noqa: PLC0415

    def pick(per_node: int, batching: bool, inter: int) -> Candidate:
        found: Candidate = next(
            c
            for c in space.candidates
            if c.machine_type == "e2-standard-8"
            and c.features["podsPerNode"] == per_node
            and c.features["enableBatching"] == batching
            and c.features.get("maxBatchSize") in ((16,) if batching else (None,))
            and c.features["tensorflowInterOpParallelism"] == inter
        )
        return found

    best = pick(2, True, 2)
    apart = pick(1, False, 4)  # pods, batching and threads differ: 360/s
    beside = pick(2, True, 1)  # threads differ: 390/s
    search = Search(space, Goal(None), seed=0, max_trials=80)
    for candidate, capacity in ((best, 400.0), (apart, 360.0), (beside, 390.0)):
        search.record(Outcome(candidate.name, capacity, capacity * 1.02))
    strategy = search.strategy
    assert isinstance(strategy, ModelStrategy)
    now = Outcome(best.name, 400.0, 408.0).score(Goal(None), best)
    for key, values in space.dimensions.items():
        for value in values:
            if key != "tensorflowInterOpParallelism" and value is not None:
                strategy._explored[(key, choice(value), False)] = [(best.name, now)]
    left = [c for c in space.candidates if c.name not in search.measured]
    (chosen,) = strategy._starved(search, left)
    assert chosen.features == {**best.features, "tensorflowInterOpParallelism": 4}
    assert strategy._starved(search, [c for c in left if c is not chosen]) == []
