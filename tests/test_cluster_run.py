"""The in-cluster run, at the Kubernetes client's boundary: test doubles of CoreV1Api,
BatchV1Api and CustomObjectsApi that record every call and answer with the client's own
models (V1Job, V1PodList, ...), never a fake API server."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1Job,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodList,
    V1PodSpec,
    V1PodStatus,
)
from kubernetes.client.exceptions import ApiException

from infra.bench.cluster import ClusterRunError, ClusterRunner, NodeShutdownError, _duration_s
from infra.design.load_generator import process_requests
from infra.loadgen.spec import RESULT_MARKER, WorkerSpec
from infra.loadgen.stats import Sample, merge, worker_result
from tests.conftest import ROOT
from tests.load_servers import Capacity, rest_server

NAMESPACE = "tfserving"
START = 1_780_000_000.0  # the run's agreed start (epoch s)
SPEC = WorkerSpec(
    "rest", "http://203.0.113.7:8501", "203.0.113.7:8500", "resnet50", "serving_default", 1,
    "open", 60.0, 1, 2.0, 1.0, 30.0, 1000,
)  # fmt: skip


def result_line(index: int, processes: int) -> str:
    samples = [Sample(1 + i / 30, 20.0 + index, None, 0.3) for i in range(60)]
    result = {
        "index": index,
        "processes": processes,
        "payload": "image_input DT_FLOAT (1, 224, 224, 3)",
        "payload_bytes": 1_300_000,
        "signature": "serving_default",
        "server": None,
        "start_epoch": START,
        **worker_result(samples, 1.0, 2.0, 0.4, 3.0),
    }
    return (
        f"Starting...\n  1 s  60 req/s  p99 21 ms  errors 0\n{RESULT_MARKER}{json.dumps(result)}\n"
    )


@dataclass
class FakeCluster:
    """What CoreV1Api, BatchV1Api and CustomObjectsApi answer, scripted per test."""

    statuses: list[V1JobStatus] = field(default_factory=list)
    pod_phases: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    serving_running: int = 2
    one_node: bool = False  # every serving pod on one node
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_create_job: bool = False
    # load-generator pod index -> (status reason, message), e.g. a node's shutdown
    pod_reasons: dict[int, tuple[str, str]] = field(default_factory=dict)
    summary_reads: dict[str, int] = field(default_factory=dict)  # node -> stats/summary reads

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    # CoreV1Api
    def create_namespaced_service(self, namespace: str, body: dict[str, Any]) -> None:
        self._record("create_namespaced_service", namespace)
        self.created["service"] = body

    def delete_namespaced_service(self, name: str, namespace: str) -> None:
        self._record("delete_namespaced_service", name, namespace)

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> V1PodList:
        self._record("list_namespaced_pod", namespace, label_selector=label_selector)
        if label_selector.startswith("app.kubernetes.io/name=tfserving,"):
            return V1PodList(
                items=[
                    V1Pod(
                        metadata=V1ObjectMeta(name=f"tfserving-{i}"),
                        spec=V1PodSpec(
                            containers=[], node_name="node-a" if self.one_node else f"node-{i}"
                        ),
                        status=V1PodStatus(phase="Running", pod_ip=f"10.8.0.{i + 10}"),
                    )
                    for i in range(self.serving_running)
                ]
            )
        name = label_selector.split("=", 1)[1]
        return V1PodList(
            items=[
                V1Pod(
                    metadata=V1ObjectMeta(name=f"{name}-{i}-x"),
                    status=V1PodStatus(
                        phase=phase,
                        reason=self.pod_reasons.get(i, (None, None))[0],
                        message=self.pod_reasons.get(i, (None, None))[1],
                    ),
                )
                for i, phase in enumerate(self.pod_phases)
            ]
        )

    def read_namespaced_pod_log(
        self, name: str, namespace: str, container: str, tail_lines: int | None = None
    ) -> str:
        self._record("read_namespaced_pod_log", name, namespace, container=container)
        log = self.logs.get(name, "")
        if tail_lines:
            return "\n".join(log.splitlines()[-tail_lines - 1 : -1]) + "\n"  # before the result
        return log

    # BatchV1Api
    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> None:
        self._record("create_namespaced_job", namespace)
        if self.fail_create_job:
            raise ApiException(status=403, reason="Forbidden")
        self.created["job"] = body

    def read_namespaced_job_status(self, name: str, namespace: str) -> V1Job:
        self._record("read_namespaced_job_status", name, namespace)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return V1Job(metadata=V1ObjectMeta(name=name), status=status)

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        self._record(
            "delete_namespaced_job", name, namespace, propagation_policy=propagation_policy
        )

    # The kubelet's summary API through the node proxy: cumulative CPU per pod. Readings
    # at START+1.5 and START+2.5 (inside the window) and one before it.
    def connect_get_node_proxy_with_path(self, name: str, path: str) -> str:
        self._record("connect_get_node_proxy_with_path", name, path)
        assert path == "stats/summary"
        self.summary_reads[name] = self.summary_reads.get(name, 0) + 1
        seconds = {1: 0.5, 2: 1.5}.get(self.summary_reads[name], 2.5)
        when = datetime.fromtimestamp(START + seconds, UTC).isoformat().replace("+00:00", "Z")
        pod = "tfserving-0" if name == "node-0" else "tfserving-1"
        used = {"tfserving-0": 7.2e9, "tfserving-1": 6.4e9}[pod]  # CPU-seconds a second, ns
        return json.dumps(
            {
                "node": {"nodeName": name},
                "pods": [
                    {
                        "podRef": {"name": pod, "namespace": NAMESPACE},
                        "cpu": {"time": when, "usageCoreNanoSeconds": int(used * seconds)},
                    },
                    {
                        "podRef": {"name": "kube-proxy-x", "namespace": "kube-system"},
                        "cpu": {"time": when, "usageCoreNanoSeconds": 5},
                    },
                ],
            }
        )

    # CustomObjectsApi (the metrics API)
    def list_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str
    ) -> dict[str, Any]:
        self._record("list_namespaced_custom_object", group, version, namespace, plural)

        # metrics-server's shape: each sample averages `window` up to `timestamp`; one
        # inside the measured window (START+1 to START+3), one from before it.
        def at(seconds: float) -> str:
            return datetime.fromtimestamp(START + seconds, UTC).isoformat().replace("+00:00", "Z")

        return {
            "items": [
                {
                    "metadata": {"name": "tfserving-0"},
                    "timestamp": at(2.5), "window": "1s",
                    "containers": [{"name": "tfserving", "usage": {"cpu": "7500m"}}],
                },
                {
                    "metadata": {"name": "tfserving-1"},
                    "timestamp": at(2.5), "window": "1s",
                    "containers": [{"name": "tfserving", "usage": {"cpu": "6900000000n"}}],
                },
                {
                    "metadata": {"name": "tfserving-1"},
                    "timestamp": at(0.5), "window": "15s",
                    "containers": [{"name": "tfserving", "usage": {"cpu": "100m"}}],
                },
            ]
        }  # fmt: skip

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def runner(cluster: FakeCluster, **overrides: Any) -> tuple[ClusterRunner, list[str]]:
    said: list[str] = []
    defaults: dict[str, Any] = {
        "namespace": NAMESPACE,
        "stack_label": "8vcpu-16gb-interop4",
        "image": "registry/load-generator@sha256:" + "1" * 64,
        "requests": process_requests(),
        "say": said.append,
        "sleep": lambda seconds: None,
        "names": lambda: "tfserving-bench-run1",
    }
    return ClusterRunner(cluster, cluster, cluster, **(defaults | overrides)), said


def finished(processes: int) -> FakeCluster:
    return FakeCluster(
        statuses=[V1JobStatus(active=processes), V1JobStatus(succeeded=processes)],
        pod_phases=["Running"] * processes,
        logs={f"tfserving-bench-run1-{i}-x": result_line(i, processes) for i in range(processes)},
    )


def test_a_run_creates_watches_reads_and_deletes_its_job() -> None:
    cluster = finished(3)
    run, said = runner(cluster)
    results, extra = run.run(SPEC, 3)
    job, service = cluster.created["job"], cluster.created["service"]
    assert job["metadata"]["name"] == service["metadata"]["name"] == "tfserving-bench-run1"
    assert job["spec"]["completions"] == 3
    spec = WorkerSpec.from_json(job["spec"]["template"]["spec"]["containers"][0]["args"][1])
    # The load goes to each serving pod in turn, by its address, looked up again through
    # the headless Service; process 0 reads every serving pod's counters.
    assert spec.endpoints == (
        ("tfserving-0", "http://10.8.0.10:8501", "10.8.0.10:8500"),
        ("tfserving-1", "http://10.8.0.11:8501", "10.8.0.11:8500"),
    )
    assert spec.resolve_host == "tfserving-pods.tfserving.svc.cluster.local"
    assert spec.rest_url == "http://tfserving.tfserving.svc.cluster.local:8501"
    assert spec.coordinator == "tfserving-bench-run1-0.tfserving-bench-run1:7077"
    assert spec.listen_host == "0.0.0.0"
    assert spec.metrics_targets == (
        ("tfserving-0", "http://10.8.0.10:8501"),
        ("tfserving-1", "http://10.8.0.11:8501"),
    )
    assert [r["index"] for r in results] == [0, 1, 2]
    assert merge(results, 2.0)["summary"]["requests"] == 3 * 60
    # CPU from the samples inside the measured window only (the earlier 100m left out).
    # (One poll: a single kubelet reading per pod, which bounds no span.)
    assert extra["pods_cpu"]["serving_pods"] == {
        "tfserving-0": {"mean_m": 7500, "max_m": 7500, "samples": 1, "source": "metrics API"},
        "tfserving-1": {"mean_m": 6900, "max_m": 6900, "samples": 1, "source": "metrics API"},
    }
    assert extra["pods_cpu"]["window"] == [START + 1, START + 3]
    assert extra["placement"]["nodes"] == {"tfserving-0": "node-0", "tfserving-1": "node-1"}
    assert extra["placement"]["shared"] == {}
    # Process 0's progress line, as it ran.
    assert "1 s  60 req/s  p99 21 ms  errors 0" in said
    names = cluster.names()
    assert names.index("create_namespaced_service") < names.index("create_namespaced_job")
    assert names[-2:] == ["delete_namespaced_job", "delete_namespaced_service"]
    assert ("delete_namespaced_job", ("tfserving-bench-run1", NAMESPACE),
            {"propagation_policy": "Background"}) in cluster.calls  # fmt: skip
    assert said[-1] == "Job tfserving-bench-run1 deleted"


def test_cpu_comes_from_the_kubelets_counters_inside_the_window() -> None:
    cluster = finished(2)
    cluster.statuses = [V1JobStatus(active=2)] * 3 + [V1JobStatus(succeeded=2)]
    run, _ = runner(cluster)
    _, extra = run.run(SPEC, 2)
    # Readings at 0.5 s (before the window, left out), 1.5 s and 2.5 s: the difference of
    # the two inside it over their second, exact however short the window.
    assert extra["pods_cpu"]["serving_pods"] == {
        "tfserving-0": {
            "mean_m": 7200, "max_m": 7200, "samples": 2, "span_s": 1.0, "source": "kubelet"
        },
        "tfserving-1": {
            "mean_m": 6400, "max_m": 6400, "samples": 2, "span_s": 1.0, "source": "kubelet"
        },
    }  # fmt: skip
    # Each serving pod's node read through the API server's node proxy.
    proxied = {c[1] for c in cluster.calls if c[0] == "connect_get_node_proxy_with_path"}
    assert proxied == {("node-0", "stats/summary"), ("node-1", "stats/summary")}


def test_a_duration_in_milliseconds_is_not_read_as_minutes() -> None:
    assert _duration_s("500ms") == pytest.approx(0.5)
    assert _duration_s("1m30s") == pytest.approx(90.0)
    assert _duration_s("14.5s") == pytest.approx(14.5)
    assert _duration_s("250us") == pytest.approx(0.00025)


def test_two_serving_pods_on_one_node_are_flagged_where_one_per_node_was_asked() -> None:
    cluster = finished(2)
    cluster.one_node = True
    run, _ = runner(cluster, one_pod_per_node=True)
    _, extra = run.run(SPEC, 2)
    assert extra["placement"]["shared"] == {"node-a": ["tfserving-0", "tfserving-1"]}


def test_pods_waiting_for_nodes_are_explained() -> None:
    cluster = finished(2)
    cluster.pod_phases = ["Pending", "Pending"]
    cluster.statuses = [V1JobStatus(active=2), V1JobStatus(succeeded=2)]
    run, said = runner(cluster)
    run.run(SPEC, 2)
    assert any("the pool scales up from zero" in line for line in said)


def test_a_failed_pod_fails_the_run_with_its_log_and_the_job_is_deleted() -> None:
    cluster = finished(2)
    cluster.statuses = [V1JobStatus(failed=1)]
    cluster.pod_phases = ["Failed", "Running"]
    cluster.logs["tfserving-bench-run1-0-x"] = "tfserving-gke-error cannot build a payload\n"
    run, _ = runner(cluster)
    with pytest.raises(ClusterRunError, match=r"pod tfserving-bench-run1-0-x failed: .*payload"):
        run.run(SPEC, 2)
    assert cluster.names()[-2:] == ["delete_namespaced_job", "delete_namespaced_service"]


def test_a_pod_its_nodes_shutdown_stopped_is_a_disruption_not_a_failure() -> None:
    cluster = finished(2)
    cluster.statuses = [V1JobStatus(failed=1)]
    cluster.pod_phases = ["Failed", "Running"]
    # What the kubelet's graceful node shutdown leaves on a pod (a Spot VM preempted).
    message = "Pod was terminated in response to imminent node shutdown."
    cluster.pod_reasons = {0: ("Terminated", message)}
    run, _ = runner(cluster)
    with pytest.raises(NodeShutdownError, match="tfserving-bench-run1-0-x was stopped by its"):
        run.run(SPEC, 2)
    assert cluster.names()[-2:] == ["delete_namespaced_job", "delete_namespaced_service"]


def test_ctrl_c_deletes_the_job() -> None:
    cluster = finished(2)
    cluster.statuses = [V1JobStatus(active=2)]

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    run, _ = runner(cluster, sleep=interrupt)
    with pytest.raises(KeyboardInterrupt):
        run.run(SPEC, 2)
    assert cluster.names()[-2:] == ["delete_namespaced_job", "delete_namespaced_service"]


def test_a_job_that_never_ends_is_stopped_at_its_deadline() -> None:
    cluster = finished(2)
    cluster.statuses = [V1JobStatus(active=2)]
    ticks = iter(range(0, 100_000, 100))
    run, _ = runner(cluster, clock=lambda: float(next(ticks)))
    with pytest.raises(ClusterRunError, match="did not finish within"):
        run.run(SPEC, 2)
    assert "delete_namespaced_job" in cluster.names()


def test_without_serving_pods_nothing_is_created() -> None:
    cluster = finished(2)
    cluster.serving_running = 0
    run, _ = runner(cluster)
    with pytest.raises(ClusterRunError, match="no serving pod is running in namespace tfserving"):
        run.run(SPEC, 2)
    assert "create_namespaced_job" not in cluster.names()
    assert "create_namespaced_service" not in cluster.names()


def test_a_refused_job_still_removes_its_service() -> None:
    cluster = finished(2)
    cluster.fail_create_job = True
    run, _ = runner(cluster)
    with pytest.raises(ApiException):
        run.run(SPEC, 2)
    assert cluster.names()[-1] == "delete_namespaced_service"


def bench_stack(
    tmp_path: Path, outputs: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    return subprocess.run(
        [sys.executable, "-m", "infra", "bench", "8vcpu-16gb-interop4", "--outputs",
         str(outputs_file), "--rate", "20", "--warmup", "0.5", "--duration", "1",
         "--out", str(tmp_path / "out.json"), *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_a_stack_without_a_load_generator_is_told_how_to_get_one(tmp_path: Path) -> None:
    run = bench_stack(tmp_path, {"modelName": "toy", "restEndpoint": "http://10.1.2.3:8501"})
    assert run.returncode == 2
    assert "has no in-cluster load generator: run `pulumi config set loadGenerator true`" in (
        run.stderr
    )
    assert "--local" in run.stderr


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    outputs = {
        "modelName": "toy",
        "namespace": "tfserving",
        "loadGeneratorImage": "registry/load-generator@sha256:" + "1" * 64,
        "loadGenerator": {"machineType": "e2-highcpu-4", "maxProcesses": 12,
                          "costUsdPerHourWhileBenchmarking": 0.4},
    }  # fmt: skip
    run = bench_stack(tmp_path, outputs, "--kubeconfig", str(kubeconfig))
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: the cluster's API did not answer")
    assert "Traceback" not in run.stderr


def test_local_sends_from_this_machine_to_the_stack_s_endpoint(tmp_path: Path) -> None:
    with rest_server(Capacity(4, 0.005)) as url:
        run = bench_stack(
            tmp_path, {"modelName": "toy", "restEndpoint": url}, "--local", "--arrivals", "uniform"
        )
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["settings"]["where"] == "local"
    assert result["summary"]["requests"] == 20


@dataclass
class RolloutCore:
    """CoreV1Api listing serving pods as a rollout leaves them, one answer per poll."""

    answers: list[list[V1Pod]]
    polls: int = 0

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> V1PodList:
        assert label_selector == "app.kubernetes.io/name=tfserving,app.kubernetes.io/instance=sweep"
        self.polls += 1
        return V1PodList(items=self.answers[min(self.polls, len(self.answers)) - 1])


def serving_pod(name: str, ready: bool = True, leaving: bool = False) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(
            name=name, deletion_timestamp=datetime(2026, 11, 24, tzinfo=UTC) if leaving else None
        ),
        spec=V1PodSpec(containers=[], node_name="node-0"),
        status=V1PodStatus(
            phase="Running",
            pod_ip="10.8.0.9",
            conditions=[V1PodCondition(type="Ready", status="True" if ready else "False")],
        ),
    )


def test_measuring_waits_until_the_old_pods_are_gone_and_the_new_ones_ready() -> None:
    core = RolloutCore(
        [
            [serving_pod("old-0", leaving=True), serving_pod("new-0"), serving_pod("new-1", False)],
            [serving_pod("old-0", leaving=True), serving_pod("new-0"), serving_pod("new-1")],
            [serving_pod("new-0"), serving_pod("new-1")],
        ]
    )
    run, _ = runner(FakeCluster(), stack_label="sweep")
    run = replace(run, core=core)
    # A terminating pod is never a measurement target.
    assert [name for name, _, _ in run.serving_pods()] == ["new-0", "new-1"]
    core.polls = 0
    run.wait_for_serving(2, timeout_s=60)
    assert core.polls == 3
    clock = iter(range(0, 10_000, 30))
    stuck = replace(
        run, core=RolloutCore([[serving_pod("new-0", ready=False)]]), clock=lambda: next(clock)
    )
    with pytest.raises(ClusterRunError, match=r"did not settle within 60 s: 0 of 1 ready"):
        stuck.wait_for_serving(1, timeout_s=60)
