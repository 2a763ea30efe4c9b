"""Run load against one deployment, from this machine or from its cluster: one run, or a
capacity search under a latency objective. Shared by `bench` and `sweep`.

The cluster's side (Job, pods, logs) is infra.bench.cluster; the processes on this machine
are infra.bench.fanout. This module decides how many load-generator processes a run gets,
runs it again over more of them when the generator itself was the limit, and turns the
runs into results documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from infra.bench.capacity import MAX_REPEATS, Objective, find_capacity
from infra.bench.cluster import ClusterRunError, ClusterRunner, NodeShutdownError
from infra.bench.fanout import run_local
from infra.bench.gpu_metrics import attach_gpu_figures, prometheus_query
from infra.bench.kube import api_clients
from infra.bench.results import result_document, short_of_pods
from infra.design.load_generator import process_requests, processes_for
from infra.design.naming import label_value
from infra.gcp.credentials import access_token
from infra.loadgen.spec import WorkerError, WorkerSpec

# A run the serving pods changed during (a spot node preempted) is run again, this many
# times at most in one capacity search, each once the pods serve again (a new spot node
# takes minutes: GKE recreates it and the Deployment reschedules).
MAX_DISRUPTIONS = 3
RECOVERY_TIMEOUT_S = 900.0

Say = Callable[[str], None]
Execute = Callable[[WorkerSpec, int], tuple[list[dict[str, Any]], dict[str, Any] | None]]


class BenchError(Exception):
    """A problem the user can fix, reported without a traceback."""


class DisruptedError(BenchError):
    """The serving pods changed during a run (a preempted spot node): it measured nothing."""


@dataclass
class Runs:
    """Where the runs happen, and over how many load-generator processes."""

    where: str  # local | cluster
    execute: Execute
    max_processes: int
    fixed_processes: int | None  # --processes
    payload_bytes: int | None = None  # learnt from the first run
    cluster: ClusterRunner | None = None  # the cluster's side, for runs there

    def processes(self, spec: WorkerSpec) -> int:
        if self.fixed_processes:
            return self.fixed_processes
        if self.where == "local" or spec.mode == "closed":
            return 1
        return processes_for(spec.rate, spec.protocol, self.payload_bytes, self.max_processes)


def local_runs(processes: int | None) -> Runs:
    """Runs from this machine, over `processes` processes (default 1)."""

    def execute(spec: WorkerSpec, count: int) -> tuple[list[dict[str, Any]], None]:
        return run_local(spec, count), None

    return Runs("local", execute, max(1, processes or 1), processes)


def cluster_runs(
    stack: str,
    outputs: dict[str, Any],
    kubeconfig: Callable[[], str],
    processes: int | None,
    say: Say = print,
) -> Runs:
    """Runs from the stack's own cluster: its load-generator pool and image (stack
    outputs), reached with its kubeconfig (read only once the stack is known to have
    them)."""
    image, pool = outputs.get("loadGeneratorImage"), outputs.get("loadGenerator")
    if not image or not pool:
        raise BenchError(
            f"stack {stack} has no in-cluster load generator: run `pulumi config set "
            "loadGenerator true` and `pulumi up` (the pool costs nothing between runs), or "
            "bench from this machine with --local"
        )
    try:
        clients = api_clients(kubeconfig())
    except (ConfigException, ValueError) as error:
        raise BenchError(f"the stack's kubeconfig cannot be used: {error}") from None
    runner = ClusterRunner(
        *clients,
        namespace=str(outputs["namespace"]),
        stack_label=label_value(stack),
        image=str(image),
        requests=process_requests(),
        # One pod per node when the replicas fit one to a node.
        one_pod_per_node=int(outputs.get("replicas") or 0) <= int(outputs.get("nodeCount") or 0),
        say=say,
    )
    say(
        f"Load from the cluster: {pool['machineType']} pool, up to {pool['maxProcesses']} "
        f"processes, about {pool['costUsdPerHourWhileBenchmarking']} USD/hour at most while "
        "it runs"
    )
    return Runs("cluster", runner.run, int(pool["maxProcesses"]), processes, cluster=runner)


def run_once(
    runs: Runs, spec: WorkerSpec, outputs: dict[str, Any], say: Say = print
) -> dict[str, Any]:
    """One run of the spec's load: its results document. In the cluster, a run its load
    generator limited is run again over twice the processes, while the pool has them;
    then (and from this machine, or over --processes) once more over as many: a stall of
    the machine the generator runs on (another program, a noisy neighbour) passes, a
    generator too small for the load does not. What a limited run measured is dropped."""
    processes = runs.processes(spec)
    stalled = False
    while True:
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            results, extra = runs.execute(spec, processes)
        except NodeShutdownError as error:
            raise DisruptedError(str(error)) from None
        except (WorkerError, ClusterRunError) as error:
            raise BenchError(str(error)) from None
        except (ApiException, HTTPError, ConfigException) as error:
            raise BenchError(
                f"the cluster's API did not answer ({type(error).__name__}: "
                f"{str(error).strip()[:300]}). Is the cluster up, gke-gcloud-auth-plugin "
                "installed and your gcloud login current?"
            ) from None
        document = result_document(
            spec,
            results,
            outputs,
            started,
            runs.where,
            pods_cpu=(extra or {}).get("pods_cpu"),
            placement=(extra or {}).get("placement"),
        )
        disrupted = (extra or {}).get("disrupted") or (
            short_of_pods(document, int(outputs.get("replicas") or 0))
            if runs.where == "cluster"
            else ""
        )
        if disrupted:
            raise DisruptedError(disrupted)
        if (extra or {}).get("server_failure"):
            document["server_failure"] = extra["server_failure"] if extra else ""
        runs.payload_bytes = int(document["settings"]["payload_bytes"])
        summary = document["summary"]
        if not summary["load_generator_limited"] or document.get("server_failure"):
            return document
        if not runs.fixed_processes and processes < runs.max_processes:
            processes = min(runs.max_processes, processes * 2)
            say(f"  the load generator was the limit; again over {processes} processes")
            continue
        if stalled:
            return document
        stalled = True
        say(
            f"  {spec.rate:>9.2f}/s  the load generator was the limit "
            f"({str(summary['load_generator_limited_reason']).split(':')[0]}); run again "
            "once over the same "
            f"{processes} process{'es' if processes > 1 else ''}, its figures dropped"
        )


def summary_line(summary: dict[str, Any]) -> str:
    kinds = summary.get("error_kinds") or {}
    errors = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    return (
        f"{summary['rps']} RPS, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
        f"errors {summary['error_rate']:.2%}{f' ({errors})' if errors else ''}"
    )


def run_seed(seed: int, experiment: str, rate: float, repeat: int) -> int:
    """The arrival schedule's seed of one run of a capacity search: from the bench's or
    sweep's seed, the experiment, the rate and which repeat at that rate it is, so pooled
    repeats are independent and a search run again draws the same arrivals."""
    digest = hashlib.sha256(f"{seed}/{experiment}/{rate:g}/{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def capacity_search(
    runs: Runs,
    spec: WorkerSpec,
    outputs: dict[str, Any],
    objective: Objective,
    *,
    max_steps: int,
    max_repeats: int = MAX_REPEATS,
    say: Say = print,
    after_step: Callable[[dict[str, Any]], None] | None = None,
    stop_when: Callable[[float | None, float | None], str] | None = None,
) -> dict[str, Any]:
    """The capacity search from `spec.rate`: the chosen step's results document with the
    search (every step) under "capacity". `after_step` sees each run's document as soon
    as it is in (the sweep checks its budget there) and may raise to stop the search."""
    say(f"Capacity search, {objective.describe()}, from {spec.rate:g} requests/s:")

    disruptions = 0
    repeats: dict[float, int] = {}
    experiment = str(outputs.get("experiment") or "")

    def run_step(rate: float) -> dict[str, Any]:
        nonlocal disruptions
        repeat = repeats[rate] = repeats.get(rate, -1) + 1
        seed = run_seed(spec.seed, experiment, rate, repeat)
        while True:
            try:
                document = run_once(runs, replace(spec, rate=rate, seed=seed), outputs, say)
                break
            except DisruptedError as error:
                disruptions += 1
                if disruptions > MAX_DISRUPTIONS or runs.cluster is None:
                    raise BenchError(
                        f"the serving pods changed during {disruptions} runs, the last: "
                        f"{error}. Measure on on-demand nodes (leave out --spot), or later"
                    ) from None
                say(f"  {rate:>9.2f}/s  not measured: {error}; measured again once it serves")
                runs.cluster.wait_for_serving(int(outputs.get("replicas") or 1), RECOVERY_TIMEOUT_S)
        say(f"  {rate:>9.2f}/s  {summary_line(document['summary'])}")
        if document.get("server_failure") and runs.cluster is not None:
            say(f"  {rate:>9.2f}/s  the server failed: {document['server_failure']}")
            runs.cluster.wait_for_serving(int(outputs.get("replicas") or 1), RECOVERY_TIMEOUT_S)
        if after_step:
            after_step(document)
        return document

    def told(step: dict[str, Any]) -> None:
        say(f"  {step['rate_per_s']:>9.2f}/s  {step['verdict']:<9} {step['why']}")

    capacity = find_capacity(
        run_step, objective, spec.rate, max_steps=max_steps, max_repeats=max_repeats,
        on_step=told, stop_when=stop_when,
    )  # fmt: skip
    steps = capacity["steps"]
    chosen = steps[capacity["step"]] if capacity["step"] is not None else steps[-1]
    window = capacity["range"]
    high = (
        f"{window['high']:g} requests/s (the lowest rate that failed with confidence)"
        if window["high"] is not None
        else "open above (no rate failed with confidence)"
    )
    if capacity["rate_per_s"] is not None:
        say(
            f"Capacity: {capacity['rate_per_s']:g} requests/s offered ({capacity['rps']} "
            f"served) at {objective.describe()}, with 95% confidence; the true capacity lies "
            f"from there to {high} ({capacity['stopped']})."
        )
    elif window["low"] is not None:
        say(
            f"No capacity: the range runs from {window['low']:g} requests/s to {high}, and "
            f"no rate was certified ({capacity['stopped']})."
        )
    else:
        say(f"No rate met {objective.describe()} with confidence: {capacity['stopped']}.")
    # On GPUs: each step's GPU utilisation and memory, once GKE's DCGM samples landed.
    attach_gpu_figures(
        [step["result"] for step in steps if step.get("result")],
        outputs,
        lambda: prometheus_query(
            str(outputs.get("gcpProject") or ""), access_token("set metrics false to skip")
        ),
        say=say,
    )
    result: dict[str, Any] = {**chosen["result"], "capacity": capacity}
    return result
