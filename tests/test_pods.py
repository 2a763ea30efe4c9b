"""Serving pods through a Spot preemption, an OOM kill, an eviction and a rollout, as the
kubelet and the controllers write their objects (the Kubernetes client's own models), and
what a capacity search does with each: wait, measure again, or fail the rate."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodList,
    V1PodSpec,
    V1PodStatus,
)

from infra.bench import pods
from infra.bench.capacity import Objective
from infra.bench.cluster import ClusterRunError
from infra.bench.session import BenchError, Runs, capacity_search
from infra.loadgen.spec import WorkerSpec
from tests.test_cluster_run import runner
from tests.test_sweep import Clock, synthetic_run

SHUTDOWN = "Pod was terminated in response to imminent node shutdown."
WHEN = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def pod(
    name: str,
    *,
    phase: str = "Running",
    ready: bool = True,
    template: str = "7d9f8c6b5",
    node: str = "gke-sweep-serving-1a2b-x7k2",
    restarts: int = 0,
    last: V1ContainerStateTerminated | None = None,
    reason: str | None = None,
    message: str | None = None,
    conditions: tuple[V1PodCondition, ...] = (),
    deleting: bool = False,
) -> V1Pod:
    """A serving pod's object as the API returns it."""
    running = phase == "Running"
    return V1Pod(
        metadata=V1ObjectMeta(
            name=name,
            labels={
                "app.kubernetes.io/name": "tfserving",
                "app.kubernetes.io/instance": "sweep",
                "pod-template-hash": template,
            },
            deletion_timestamp=WHEN if deleting else None,
        ),
        spec=V1PodSpec(containers=[], node_name=node),
        status=V1PodStatus(
            phase=phase,
            reason=reason,
            message=message,
            pod_ip="10.8.0.12" if running else None,
            conditions=[
                *conditions,
                V1PodCondition(type="Ready", status="True" if ready and running else "False"),
            ],
            container_statuses=[
                V1ContainerStatus(
                    name="tfserving",
                    image="us-central1-docker.pkg.dev/p/r/tfserving@sha256:ab",
                    image_id="sha256:ab",
                    ready=ready and running,
                    restart_count=restarts,
                    state=V1ContainerState(running=V1ContainerStateRunning(started_at=WHEN))
                    if running
                    else V1ContainerState(
                        terminated=V1ContainerStateTerminated(exit_code=137, reason="Error")
                    ),
                    last_state=V1ContainerState(terminated=last),
                )
            ],
        ),
    )


def preempted(name: str) -> V1Pod:
    """What the kubelet's graceful node shutdown leaves when a Spot VM is preempted."""
    return pod(
        name,
        phase="Failed",
        reason="Terminated",
        message=SHUTDOWN,
        conditions=(
            V1PodCondition(
                type="DisruptionTarget",
                status="True",
                reason="TerminationByKubelet",
                message=SHUTDOWN,
            ),
        ),
    )


def oom_killed(name: str) -> V1Pod:
    """A container the kernel killed for memory, restarted in place by the kubelet."""
    return pod(
        name,
        restarts=1,
        last=V1ContainerStateTerminated(exit_code=137, reason="OOMKilled", finished_at=WHEN),
    )


def evicted(name: str) -> V1Pod:
    message = "The node was low on resource: memory. Threshold quantity: 100Mi."
    return pod(
        name,
        phase="Failed",
        reason="Evicted",
        message=message,
        conditions=(
            V1PodCondition(
                type="DisruptionTarget",
                status="True",
                reason="TerminationByKubelet",
                message=message,
            ),
        ),
    )


def test_a_preempted_pod_left_failed_does_not_count_as_serving() -> None:
    listed = [preempted("tfserving-7d9f8c6b5-a"), pod("tfserving-7d9f8c6b5-b")]
    assert list(pods.serving(listed)) == ["tfserving-7d9f8c6b5-b"]
    assert pods.stopped_by_shutdown(listed[0])
    # Its replacement ready beside it: the Deployment of two is whole again.
    assert pods.whole([*listed, pod("tfserving-7d9f8c6b5-c")], 2) == (True, "")


def test_the_deployment_is_not_whole_mid_rollout_or_short_of_ready_pods() -> None:
    settled, short = pods.whole([pod("a"), pod("b", template="5c4b3a291")], 2)
    assert not settled and "2 pod templates (a rollout)" in short
    settled, short = pods.whole([pod("a"), pod("b", ready=False)], 2)
    assert not settled and short.startswith("1 of 2 ready")
    settled, short = pods.whole([pod("a"), pod("b", deleting=True), pod("c")], 2)
    assert not settled and "1 terminating" in short


@pytest.mark.parametrize(
    ("after", "kind", "said"),
    [
        (pod("p-0"), "", ""),
        (preempted("p-0"), "disruption", "its node shut down (a preempted Spot VM"),
        (None, "disruption", "its pod object is gone"),
        (oom_killed("p-0"), "failure", "restarted during the run: its container ended OOMKilled"),
        (evicted("p-0"), "failure", "the kubelet evicted it: The node was low on resource"),
        (
            pod(
                "p-0",
                phase="Failed",
                conditions=(
                    V1PodCondition(
                        type="DisruptionTarget",
                        status="True",
                        reason="PreemptionByScheduler",
                        message="Preempted by a pod on node n-1",
                    ),
                ),
            ),
            "disruption",
            "PreemptionByScheduler",
        ),
    ],
)
def test_why_a_serving_pod_changed_during_a_run(after: V1Pod | None, kind: str, said: str) -> None:
    before = pods.serving([pod("p-0")])
    found_kind, why = pods.change(before, [after] if after is not None else [])
    assert found_kind == kind and said in why
    if kind == "failure" and "OOMKilled" in said:
        assert "(exit 137)" in why


def test_an_older_kubelets_shutdown_reason_is_read_too() -> None:
    assert pods.stopped_by_shutdown(pod("p", phase="Failed", reason="Shutdown"))
    refused = pod(
        "p",
        phase="Failed",
        reason="NodeShutdown",
        message="Pod was rejected as the node is shutting down.",
    )
    assert pods.stopped_by_shutdown(refused)
    assert not pods.stopped_by_shutdown(evicted("p"))


@dataclass
class PodsCore:
    """CoreV1Api listing the serving pods: one answer per call, the last one repeated."""

    answers: list[list[V1Pod]]
    calls: int = 0

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> V1PodList:
        self.calls += 1
        return V1PodList(items=self.answers[min(self.calls, len(self.answers)) - 1])


def test_waiting_for_serving_settles_beside_a_preempted_pods_object() -> None:
    # Before the fix the Failed object was counted and the wait ran out its 15 minutes.
    after_preemption = [
        preempted("tfserving-7d9f8c6b5-a"),
        pod("tfserving-7d9f8c6b5-b"),
        pod("tfserving-7d9f8c6b5-c"),
    ]
    core = PodsCore([after_preemption])
    run, _ = runner_with(core)
    run.wait_for_serving(2, timeout_s=60)
    assert core.calls == 1
    assert [name for name, _, _ in run.serving_pods()] == [
        "tfserving-7d9f8c6b5-b",
        "tfserving-7d9f8c6b5-c",
    ]
    clock = iter(range(0, 10_000, 30))
    stuck = replace(run, core=PodsCore([[preempted("a"), pod("b")]]), clock=lambda: next(clock))
    with pytest.raises(ClusterRunError, match=r"1 of 2 ready, 1 live.*1 finished"):
        stuck.wait_for_serving(2, timeout_s=60)


def runner_with(core: Any) -> Any:
    run, cluster = runner(core, stack_label="sweep")
    return replace(run, core=core), cluster


@dataclass
class Waits:
    replicas: list[int] = field(default_factory=list)

    def wait_for_serving(self, replicas: int, timeout_s: float) -> None:
        self.replicas.append(replicas)


SPEC = WorkerSpec(
    "rest", "http://10.0.0.1:8501", "10.0.0.1:8500", "m", "serving_default", 1, "open",
    20.0, 1, 2.0, 0.0, 30.0, 1000,
)  # fmt: skip


def runs_where(extra_at: dict[float, dict[str, Any]], capacity: float = 50.0) -> tuple[Runs, Waits]:
    """Runs of a server good for `capacity` requests/s, whose runs at some rates report
    what the cluster saw (a failure, a pod short)."""
    good = synthetic_run(capacity, Clock())
    seen: set[float] = set()

    def execute(spec: WorkerSpec, processes: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        results, extra = good.execute(spec, processes)
        extra = dict(extra or {})
        if spec.rate in extra_at and spec.rate not in seen:
            seen.add(spec.rate)
            extra.update(extra_at[spec.rate])
        return results, extra

    waits = Waits()
    runs = Runs("cluster", execute, max_processes=4, fixed_processes=None)
    runs.cluster = waits  # type: ignore[assignment]
    return runs, waits


def test_an_oom_kill_fails_the_rate_with_its_reason_and_the_search_goes_on() -> None:
    why = (
        "serving pod p-0 on node n-1 restarted during the run: its container ended OOMKilled "
        "(exit 137)"
    )
    runs, waits = runs_where({40.0: {"server_failure": why}})
    said: list[str] = []
    result = capacity_search(
        runs, SPEC, {"replicas": 2}, Objective(300.0, 0.01), max_steps=20, say=said.append
    )
    at_40 = next(s for s in result["capacity"]["steps"] if s["rate_per_s"] == 40.0)
    assert at_40["verdict"] == "fail" and "OOMKilled (exit 137)" in at_40["why"]
    assert any("the server failed: " in line and "OOMKilled" in line for line in said)
    assert waits.replicas == [2]  # the restarted pod waited for before the next run
    assert result["capacity"]["rate_per_s"] is not None  # found under the failing rate


def test_a_run_that_missed_a_pod_is_run_again_once_the_deployment_is_whole() -> None:
    runs, waits = runs_where({})
    original = runs.execute
    first = [True]

    def short(
        spec: WorkerSpec, processes: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        results, extra = original(spec, processes)
        if spec.rate == 40.0 and first[0]:
            first[0] = False
            for result in results:
                result["sent_by_endpoint"] = {"p-0": 800}  # the other pod was not listed
        else:
            for result in results:
                result["sent_by_endpoint"] = {"p-0": 400, "p-1": 400}
        return results, extra

    runs.execute = short
    said: list[str] = []
    result = capacity_search(
        runs, SPEC, {"replicas": 2}, Objective(300.0, 0.01), max_steps=20, say=said.append
    )
    assert any("not measured: the load reached 1 of the Deployment's 2" in line for line in said)
    assert waits.replicas == [2]
    at_40 = next(s for s in result["capacity"]["steps"] if s["rate_per_s"] == 40.0)
    assert at_40["runs"] == 1 and at_40["verdict"] == "pass"


def test_disruptions_past_the_limit_end_the_search_with_advice() -> None:
    runs, _ = runs_where({})
    original = runs.execute

    def always(spec: WorkerSpec, processes: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        results, extra = original(spec, processes)
        disrupted = "serving pod p-0 stopped serving: its node shut down"
        return results, {**(extra or {}), "disrupted": disrupted}

    runs.execute = always
    with pytest.raises(BenchError, match="leave out --spot"):
        capacity_search(
            runs, SPEC, {"replicas": 1}, Objective(300.0, 0.01), max_steps=20, say=print
        )


def stalling(where: str, stalls: int, max_processes: int) -> tuple[Runs, list[tuple[float, int]]]:
    """Runs of a server good for 50 requests/s whose load generator, at 40/s, sends its
    first `stalls` runs' requests late (a stall of its machine); every run's (rate,
    processes)."""
    calls: list[tuple[float, int]] = []

    def late(spec: WorkerSpec) -> bool:
        return spec.rate == 40.0 and sum(rate == 40.0 for rate, _ in calls) <= stalls

    good = synthetic_run(50.0, Clock(), late)

    def execute(
        spec: WorkerSpec, processes: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        calls.append((spec.rate, processes))
        return good.execute(spec, processes)

    return Runs(where, execute, max_processes=max_processes, fixed_processes=None), calls


def test_a_run_a_stall_of_the_generators_machine_limited_is_run_again_once() -> None:
    runs, calls = stalling("local", stalls=1, max_processes=1)
    said: list[str] = []
    result = capacity_search(runs, SPEC, {}, Objective(300.0, 0.01), max_steps=20, say=said.append)
    assert calls.count((40.0, 1)) == 2
    assert any(
        "40.00/s  the load generator was the limit (p99 send lag 40.03 ms is over 5 ms); run "
        "again once over the same 1 process, its figures dropped" in line
        for line in said
    )
    at_40 = next(s for s in result["capacity"]["steps"] if s["rate_per_s"] == 40.0)
    assert at_40["runs"] == 1 and at_40["verdict"] == "pass"
    assert not at_40["result"]["summary"]["load_generator_limited"]
    assert result["capacity"]["rate_per_s"] is not None


def test_a_generator_limited_twice_over_its_most_processes_ends_the_search() -> None:
    runs, calls = stalling("cluster", stalls=99, max_processes=4)
    result = capacity_search(runs, SPEC, {}, Objective(300.0, 0.01), max_steps=20, say=print)
    # Twice the processes while the pool has them, then once more over as many: no more.
    assert [processes for rate, processes in calls if rate == 40.0] == [1, 2, 4, 4]
    capacity = result["capacity"]
    assert capacity["steps"][-1]["verdict"] == "limited"
    assert "measured something else than the server" in capacity["stopped"]
    assert capacity["rate_per_s"] is None
