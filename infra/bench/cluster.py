"""Run a load test from inside the cluster and bring its results back.

Creates the run's headless Service and Indexed Job (infra.bench.job) with the
official Kubernetes client, watches the Job until it finishes (showing process 0's
progress line, sampling the serving pods' CPU from the kubelets and the metrics API
meanwhile), reads each pod's
result line from its log, and deletes both objects, whatever happened: on success,
failure, timeout or interruption (Ctrl-C). The load goes to each serving pod directly (the
pods as listed now, looked up again through the stack's headless Service while it runs),
and the results say which node each pod ran on. The API objects are passed in, so the
calls are tested against the client's own models.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from infra.bench import job as jobs
from infra.bench import pods as pod_states
from infra.bench.fanout import results_from_output, run_deadline_s
from infra.design.machine import Resources
from infra.design.manifests import APP_NAME
from infra.loadgen.spec import WorkerError, WorkerSpec
from infra.model.serving import GRPC_PORT, REST_PORT

POLL_S = 5.0
LISTEN_ALL = "0.0.0.0"


class ClusterRunError(RuntimeError):
    """The in-cluster run failed; the message says where and why."""


# Go's duration units, the longer spelling first ("500ms" is 500 milliseconds, not 500
# minutes and a stray "s").
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _duration_s(text: str) -> float:
    """A Kubernetes duration ("30s", "1m0s", "14.5s") in seconds."""
    return sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


@dataclass
class CpuSamples:
    """CPU use of the serving pods, sampled while the run went on, from two sources:

    - the kubelet's summary API (through the API server's node proxy): each pod's
      cumulative CPU time with the time it was read. Two readings inside the measured
      window give the exact mean over the span between them, however short the window;
    - the metrics API (metrics-server): millicores averaged over a window of its own (15
      to 60 s, rarely inside a 20 s step), kept only where it lies inside the window, and
      used only for a pod the kubelet gave no two readings of.
    """

    by_pod: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    counters: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def add(self, metrics_list: dict[str, Any]) -> None:
        for item in metrics_list.get("items", []):
            used = sum(
                float(parse_quantity(container["usage"]["cpu"])) * 1000
                for container in item.get("containers", [])
            )
            end = _epoch(str(item["timestamp"]))
            begin = end - _duration_s(str(item.get("window", "0s")))
            samples = self.by_pod.setdefault(item["metadata"]["name"], [])
            if (begin, end, used) not in samples:
                samples.append((begin, end, used))

    def add_counters(self, summary: dict[str, Any], names: set[str]) -> None:
        """The pods' cumulative CPU from a node's stats/summary document."""
        for pod in summary.get("pods") or []:
            name = (pod.get("podRef") or {}).get("name")
            cpu = pod.get("cpu") or {}
            if name not in names or "usageCoreNanoSeconds" not in cpu or "time" not in cpu:
                continue
            reading = (_epoch(str(cpu["time"])), int(cpu["usageCoreNanoSeconds"]))
            readings = self.counters.setdefault(name, [])
            if reading not in readings:
                readings.append(reading)

    def summary(self, names: list[str], window: tuple[float, float]) -> dict[str, Any]:
        """Each pod's CPU over the measured window only: from the kubelet's counters where
        two readings lie inside it, else from the metrics API's samples inside it."""
        start, end = window
        pods: dict[str, Any] = {}
        for name in names:
            readings = sorted(r for r in self.counters.get(name, []) if start <= r[0] <= end)
            if len(readings) >= 2:
                rates = [
                    (later[1] - earlier[1]) / (later[0] - earlier[0]) / 1e6
                    for earlier, later in pairwise(readings)
                    if later[0] > earlier[0]
                ]
                span = readings[-1][0] - readings[0][0]
                pods[name] = {
                    "mean_m": round((readings[-1][1] - readings[0][1]) / span / 1e6),
                    "max_m": round(max(rates)),
                    "samples": len(readings),
                    "span_s": round(span, 1),
                    "source": "kubelet",
                }
                continue
            inside = [
                used
                for begin, stop, used in self.by_pod.get(name, [])
                if begin >= start and stop <= end
            ]
            pods[name] = (
                {
                    "mean_m": round(sum(inside) / len(inside)),
                    "max_m": round(max(inside)),
                    "samples": len(inside),
                    "source": "metrics API",
                }
                if inside
                else {"samples": 0}
            )
        return pods


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def placement(serving: list[tuple[str, str, str]], one_per_node: bool) -> dict[str, Any]:
    """Which node each serving pod ran on, and the nodes that held several pods where the
    experiment asked for one per node."""
    by_node: dict[str, list[str]] = {}
    for pod, _, node in serving:
        by_node.setdefault(node, []).append(pod)
    shared = {node: pods for node, pods in by_node.items() if len(pods) > 1}
    return {
        "nodes": {pod: node for pod, _, node in serving},
        "one_per_node_expected": one_per_node,
        "shared": shared if one_per_node else {},
    }


class NodeShutdownError(ClusterRunError):
    """A load-generator pod was stopped by its node's shutdown: the run measured nothing."""


@dataclass
class ClusterRunner:
    """One stack's cluster: where its serving pods run and its load generator may."""

    core: Any  # kubernetes.client.CoreV1Api
    batch: Any  # kubernetes.client.BatchV1Api
    custom: Any  # kubernetes.client.CustomObjectsApi (the metrics API)
    namespace: str
    stack_label: str
    image: str
    requests: Resources  # each load-generator pod's
    one_pod_per_node: bool = False  # what the experiment asked for
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    names: Callable[[], str] = field(default=lambda: f"{jobs.NAME_PREFIX}-{uuid.uuid4().hex[:8]}")

    def _serving_objects(self) -> list[Any]:
        """Every pod the serving Deployment's selector matches, finished ones included."""
        selector = (
            f"app.kubernetes.io/name={APP_NAME},app.kubernetes.io/instance={self.stack_label}"
        )
        items: list[Any] = self.core.list_namespaced_pod(
            self.namespace, label_selector=selector
        ).items
        return items

    def serving_pods(self) -> list[tuple[str, str, str]]:
        """(pod name, pod IP, node) of every serving pod that runs and can serve."""
        return sorted(
            (pod.metadata.name, pod.status.pod_ip, pod.spec.node_name or "")
            for pod in self._serving_objects()
            if pod_states.can_serve(pod) and pod.status.phase == "Running" and pod.status.pod_ip
        )

    def serving_state(self) -> dict[str, pod_states.ServingPod]:
        """pod -> (node, container restarts, last exit) of every pod that can serve."""
        return pod_states.serving(self._serving_objects())

    def wait_for_serving(self, replicas: int, timeout_s: float) -> None:
        """Until exactly `replicas` pods of the current template run, are ready and none is
        terminating: finished pods (a preempted node's, left Failed) do not count."""
        deadline = self.clock() + timeout_s
        while True:
            settled, short = pod_states.whole(self._serving_objects(), replicas)
            if settled:
                return
            if self.clock() > deadline:
                raise ClusterRunError(
                    f"the serving pods did not settle within {timeout_s:.0f} s: {short} "
                    f"(kubectl -n {self.namespace} get pods)"
                )
            self.sleep(POLL_S)

    def run(self, spec: WorkerSpec, processes: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Run the spec's load over `processes` pods; their results and the pods' CPU."""
        name = self.names()
        rest_url, grpc_target = jobs.serving_addresses(self.namespace)
        serving = self.serving_pods()
        if not serving:
            raise ClusterRunError(
                f"no serving pod is running in namespace {self.namespace}: deploy the stack "
                "(pulumi up) and check `kubectl get pods`."
            )
        spec = replace(
            spec,
            rest_url=rest_url,
            grpc_target=grpc_target,
            processes=processes,
            coordinator=jobs.coordinator(name),
            listen_host=LISTEN_ALL,
            metrics_targets=tuple((pod, f"http://{ip}:{REST_PORT}") for pod, ip, _ in serving),
            endpoints=tuple(
                (pod, f"http://{ip}:{REST_PORT}", f"{ip}:{GRPC_PORT}") for pod, ip, _ in serving
            ),
            resolve_host=jobs.pods_host(self.namespace),
            progress=True,
        )
        deadline_s = run_deadline_s(spec)
        before = self.serving_state()
        service = jobs.peers_service(name, self.namespace, self.stack_label)
        job = jobs.job(
            name=name,
            namespace=self.namespace,
            stack_label=self.stack_label,
            image=self.image,
            spec_json=spec.to_json(),
            processes=processes,
            run_deadline_s=deadline_s,
            requests=self.requests,
        )
        cpu = CpuSamples()
        self.core.create_namespaced_service(self.namespace, service)
        try:
            self.batch.create_namespaced_job(self.namespace, job)
            self.say(f"Job {name}: {processes} load-generator pods in {self.namespace}")
            self._wait(name, processes, deadline_s + jobs.EXIT_MARGIN_S, cpu, serving)
            logs = [self._log(pod) for pod in self._pods(name)]
            results = results_from_output(logs, "load-generator pod")
            after = self._serving_objects()  # the pods that served it, beside before
        except WorkerError as error:
            raise ClusterRunError(str(error)) from None
        finally:
            self._delete(name)
        start = float(results[0]["start_epoch"]) + spec.warmup_s
        window = (start, start + spec.duration_s)
        pods = [pod for pod, _, _ in serving]
        extra: dict[str, Any] = {
            "pods_cpu": {
                "source": (
                    "kubelet summary API (cumulative CPU between readings inside the "
                    "measured window), else the metrics API's samples inside it"
                ),
                "window": [round(window[0], 3), round(window[1], 3)],
                "serving_pods": cpu.summary(pods, window),
            },
            "placement": placement(serving, self.one_pod_per_node),
        }
        kind, why = pod_states.change(before, after)
        if kind == "disruption":
            extra["disrupted"] = why
        elif kind == "failure":
            extra["server_failure"] = why
        return results, extra

    def _pods(self, name: str) -> list[Any]:
        selector = f"{jobs.RUN_LABEL}={name}"
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted(pods, key=lambda pod: pod.metadata.name)

    def _log(self, pod: Any) -> str:
        text: str = self.core.read_namespaced_pod_log(
            pod.metadata.name, self.namespace, container=jobs.COMPONENT
        )
        return text

    def _wait(
        self,
        name: str,
        processes: int,
        timeout_s: float,
        cpu: CpuSamples,
        serving: list[tuple[str, str, str]],
    ) -> None:
        deadline = self.clock() + timeout_s
        said_pending = False
        shown = ""
        while True:
            status = self.batch.read_namespaced_job_status(name, self.namespace).status
            if (status.succeeded or 0) >= processes:
                return
            if status.failed:
                stopped = [
                    p.metadata.name for p in self._pods(name) if pod_states.stopped_by_shutdown(p)
                ]
                if stopped:
                    raise NodeShutdownError(
                        f"load-generator pod {stopped[0]} was stopped by its node's shutdown "
                        "(a preempted or recreated node)"
                    )
                raise ClusterRunError(self._failure(name))
            pods = self._pods(name)
            if any(pod.status.phase == "Pending" for pod in pods) and not said_pending:
                self.say(
                    "  waiting for load-generator nodes (the pool scales up from zero: a "
                    "minute or two the first time)"
                )
                said_pending = True
            if pods and all(pod.status.phase == "Running" for pod in pods):
                self._sample_cpu(cpu, serving)
                shown = self._progress(pods[0], shown)
            if self.clock() > deadline:
                raise ClusterRunError(f"Job {name} did not finish within {timeout_s:.0f} s")
            self.sleep(POLL_S)

    def _progress(self, pod: Any, shown: str) -> str:
        """Process 0's latest progress line, said when it is new."""
        try:
            tail: str = self.core.read_namespaced_pod_log(
                pod.metadata.name, self.namespace, container=jobs.COMPONENT, tail_lines=1
            )
        except ApiException:
            return shown
        line = tail.strip()
        if line and line != shown and not line.startswith(("{", "tfserving-gke-")):
            self.say(line)
            return line
        return shown

    def _sample_cpu(self, cpu: CpuSamples, serving: list[tuple[str, str, str]]) -> None:
        names = {pod for pod, _, _ in serving}
        for node in sorted({node for _, _, node in serving if node}):
            try:
                answer = self.core.connect_get_node_proxy_with_path(node, "stats/summary")
                cpu.add_counters(json.loads(answer) if isinstance(answer, str) else answer, names)
            except (ApiException, ValueError):
                continue  # optional too: the metrics API's samples stand in
        try:
            cpu.add(
                self.custom.list_namespaced_custom_object(
                    "metrics.k8s.io", "v1beta1", self.namespace, "pods"
                )
            )
        except ApiException:
            return  # the metrics API is optional: the run's figures do not depend on it

    def _failure(self, name: str) -> str:
        for pod in self._pods(name):
            if pod.status.phase == "Failed":
                tail = self._log(pod).strip().splitlines()[-5:]
                return f"load-generator pod {pod.metadata.name} failed: " + " | ".join(tail)
        return f"Job {name} failed"

    def _delete(self, name: str) -> None:
        deletions: list[Callable[[], Any]] = [
            lambda: self.batch.delete_namespaced_job(
                name, self.namespace, propagation_policy="Background"
            ),
            lambda: self.core.delete_namespaced_service(name, self.namespace),
        ]
        for delete in deletions:
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise
        self.say(f"Job {name} deleted")
