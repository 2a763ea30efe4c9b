"""`python -m infra sweep`: the dry run of the 15 reference experiments (offline plans of
the real program), the order and the changes it decides, its estimates and quota check,
and the orchestration driven through a double of the Automation API's stack object."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import Deployment, OutputValue
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from infra import cli
from infra.bench.capacity import Objective
from infra.bench.session import Runs, capacity_search
from infra.design.machine import Resources
from infra.inputs.errors import ConfigError
from infra.loadgen.spec import WorkerSpec
from infra.loadgen.stats import Sample, worker_result
from infra.sweep import campaign, live, quota
from infra.sweep import cli as sweep_cli
from infra.sweep.changes import NODE_POOL, ResourceChange, pool_change, resource_changes
from infra.sweep.design import SweepDesign, design_sweep, dry_run_json, reference_experiments
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.experiment import Planned
from infra.sweep.manifest import SweepManifest, open_manifest
from infra.sweep.quota import (
    Need,
    QuotaError,
    check,
    fetch_project,
    fetch_region,
    needs,
    preemptible_quota,
)
from infra.sweep.report import build_report, markdown, reference_verdict, write_report
from infra.sweep.run import MeasureError, Meter, SweepRun
from infra.teardown.pending import CloudResource
from tests.conftest import ROOT
from tests.json_api import JsonApi

SEARCH = SearchSettings(300.0, 0.01, "rest", 20.0, 6, 5.0, 20.0)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CLUSTER = "gcp:container/cluster:Cluster"
SMALL = ["8vcpu-16gb-interop2", "8vcpu-64gb-interop4", "8vcpu-16gb-interop4"]
# Every teardown: a stale lock cleared, the state read for cut-off creates, destroy, remove.
TEARDOWN = ["cancel", "export_stack", "destroy", "remove_stack"]
REGION_FILE = ROOT / "tests" / "data" / "compute" / "region_us-central1.json"


@pytest.fixture(scope="module")
def reference() -> SweepDesign:
    return design_sweep(reference_experiments(), SEARCH)


@pytest.fixture(scope="module")
def small() -> SweepDesign:
    return design_sweep(SMALL, SEARCH, gcp_project="demo-project")


# --- the dry run ------------------------------------------------------------------------


def test_dry_run_of_the_reference_sweep_meets_the_goal(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    run = subprocess.run(
        [sys.executable, "-m", "infra", "sweep", "--all", "--dry-run", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    document = json.loads(out.read_text())
    steps = document["steps"]
    assert len(steps) == 15
    assert {s["experiment"] for s in steps} == set(reference_experiments())
    every = [
        (s["experiment"], kind, t)
        for s in steps
        for kind in ("creates", "replaces")
        for t in s[kind]
    ]
    assert [t for _, kind, t in every if t == CLUSTER] == [CLUSTER]
    assert CLUSTER in steps[0]["creates"]
    pool_operations = [t for _, _, t in every if t == NODE_POOL]
    assert len(pool_operations) <= 4
    # Measuring takes as long either way; the sweep saves 14 clusters' creations and
    # teardowns and most of the node pools' (about 5 of 13 hours at the defaults).
    saved = document["separate_stacks_estimate"]["hours"] - document["estimate"]["hours"]
    assert saved > 14 * (9 + 10) / 60
    assert document["estimate"]["usd"] < document["separate_stacks_estimate"]["usd"]
    for key in ("hours", "usd"):
        assert isinstance(document["estimate"][key], float)
    # The output names the order, each step's changes, and both estimates.
    assert "2vcpu-4gb-interop2" in run.stdout and "as separate stacks" in run.stdout
    assert "Quota needed at once in us-central1, per metric" in run.stdout
    assert [m["metric"] for m in document["quota"]["metrics"]] == [
        "CPUS", "IN_USE_ADDRESSES", "CPUS_ALL_REGIONS",
    ]  # fmt: skip


def test_experiments_on_the_same_nodes_only_roll_the_pods(reference: SweepDesign) -> None:
    document = dry_run_json(reference, None)
    for step, entry in zip(reference.steps, document["steps"], strict=True):
        if step.previous is None or step.previous.pool_shape != step.experiment.pool_shape:
            continue
        assert entry["creates"] == [] and entry["deletes"] == []
        assert set(entry["updates"]) <= {DEPLOYMENT}
        # Batching on: a new batching ConfigMap (its name carries its content's hash).
        assert set(entry["replaces"]) <= {CONFIG_MAP}
        if step.experiment.batching != step.previous.batching:
            assert entry["replaces"] == [CONFIG_MAP]
    # Labels stay the sweep's: nothing on the cloud side is touched between them.
    same_shape = [e for s, e in zip(reference.steps, document["steps"], strict=True)
                  if s.previous and s.previous.pool_shape == s.experiment.pool_shape]  # fmt: skip
    assert same_shape and all(
        not t.startswith("gcp:") for e in same_shape for t in e["updates"] + e["replaces"]
    )


def test_the_order_groups_shapes_smallest_first_then_batching(reference: SweepDesign) -> None:
    names = [e.name for e in reference.experiments]
    shapes = [e.pool_shape for e in reference.experiments]
    # Each shape's experiments come together, once.
    runs = [shape for i, shape in enumerate(shapes) if i == 0 or shape != shapes[i - 1]]
    assert len(runs) == len(set(shapes)) == 4
    assert names[:3] == ["2vcpu-4gb-interop2", "2vcpu-4gb-interop4", "2vcpu-4gb-interop8"]
    assert [e.machine_type for e in reference.experiments[::3]][:4] == [
        "e2-custom-2-4096", "e2-custom-4-8192", "e2-custom-8-16384", "e2-highmem-8",
    ]  # fmt: skip
    assert names[-3:] == [f"8vcpu-64gb-interop{i}-batch" for i in (2, 4, 8)]


def test_a_new_shape_replaces_the_pool_when_that_is_faster(reference: SweepDesign) -> None:
    kinds = {s.experiment.name: s.pool for s in reference.steps}
    # 8 nodes recreated one by one would take far longer than a new pool.
    assert kinds["4vcpu-8gb-interop2"].kind == "replace"
    assert "8 nodes" in kinds["4vcpu-8gb-interop2"].why
    step = next(s for s in reference.steps if s.experiment.name == "4vcpu-8gb-interop2")
    assert step.replace_urns == [
        "urn:pulumi:sweep::tfserving-gke::tfserving-gke:infra:GkeCluster"
        "$gcp:container/nodePool:NodePool::cluster-serving"
    ]
    # Two nodes: recreated in place, faster than a replacement.
    assert kinds["8vcpu-64gb-interop2"].kind == "in-place"
    assert kinds["8vcpu-64gb-interop2"].nodes_recreated == 2
    assert kinds["2vcpu-4gb-interop4"].kind == "keep"


def _planned(name: str, vcpus: int, memory_gib: int, nodes: int, pod_cpu_m: int) -> Planned:
    return Planned(
        name=name, plan={"resources": []}, machine_type=f"e2-custom-{vcpus}-{memory_gib * 1024}",
        vcpus=vcpus, memory_gib=memory_gib, nodes=nodes, spot=False, disk_type="pd-standard",
        disk_size_gb=30, pod_requests=Resources(pod_cpu_m, memory_gib * 900),
        node_allocatable=Resources(vcpus * 1000 - 90, memory_gib * 950), images=("img:1",),
        batching=False, fixed_usd_per_hour=0.125, nodes_usd_per_hour=0.1 * vcpus * nodes,
        load_generator_node_usd_per_hour=0.1, load_generator_node_vcpus=4,
        load_generator_max_nodes=2, serving_pool_urn="urn:pool",
    )  # fmt: skip


def test_pods_that_would_not_fit_the_new_nodes_force_a_replacement() -> None:
    d = Durations.from_data()
    big = _planned("big", 8, 32, 1, 7000)
    small = _planned("small", 4, 16, 1, 3000)
    machine = ResourceChange("update", NODE_POOL, "cluster-serving", ("nodeConfig.machineType",))
    down = pool_change(big, machine, small, d)
    assert down.kind == "replace" and "do not fit" in down.why
    up = pool_change(small, machine, big, d)
    assert up.kind == "in-place" and up.nodes_recreated == 1
    assert up.peak_vcpus == small.serving_vcpus + big.vcpus
    spot = ResourceChange("replace", NODE_POOL, "cluster-serving", ("nodeConfig.spot",))
    assert pool_change(small, spot, small, d).kind == "replace"


def test_replacement_rules_follow_the_providers(reference: SweepDesign) -> None:
    first, second = reference.experiments[0].plan, reference.experiments[1].plan
    changes = {(c.type, c.action) for c in resource_changes(first, second)}
    assert changes == {(DEPLOYMENT, "update")}
    spot = json.loads(json.dumps(second))
    for resource in spot["resources"]:
        if resource["type"] == NODE_POOL and resource["name"] == "cluster-serving":
            resource["inputs"]["nodeConfig"]["spot"] = True
        if resource["type"] == "kubernetes:core/v1:Namespace":
            resource["inputs"]["metadata"]["name"] = "other"
    found = {(c.type, c.name): c.action for c in resource_changes(second, spot)}
    assert found[(NODE_POOL, "cluster-serving")] == "replace"
    assert found[("kubernetes:core/v1:Namespace", "serving-namespace")] == "replace"


def test_estimates_count_every_phase_and_the_separate_stacks(reference: SweepDesign) -> None:
    sweep, separate = reference.estimate, reference.separate
    d = reference.durations
    assert sum(1 for p in sweep.phases if p.what == "capacity search") == 15
    assert sum(1 for p in sweep.phases if p.what.startswith("create")) == 1
    assert sum(1 for p in sweep.phases if p.what == "destroy") == 1
    assert sum(1 for p in separate.phases if p.what.startswith("create")) == 15
    assert sum(1 for p in separate.phases if p.what == "destroy") == 15
    assert sweep.minutes == pytest.approx(sum(p.minutes for p in sweep.phases))
    # Same capacity searches either way; the sweep saves the ups and destroys.
    search = SEARCH.minutes(d)
    assert search == pytest.approx(6 * (25 / 60 + d.bench_step_overhead))
    assert separate.minutes - sweep.minutes > 13 * (d.cluster_create + d.destroy)


def test_dry_run_over_the_budget_says_so_and_fails(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "infra", "sweep", "8vcpu-16gb-interop2", "8vcpu-16gb-interop4",
         "--dry-run", "--max-usd", "0.05"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "a real run would be refused" in run.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "nope", "--dry-run"], "no experiment preset named 'nope'"),
        (["sweep", "--all", "dev", "--dry-run"], "not both"),
        (["sweep", "dev", "--set", "experiment=x", "--dry-run"], "is set by the sweep"),
        (["sweep", "dev", "--set", "novalue", "--dry-run"], "expected KEY=VALUE"),
        (["sweep", "dev", "--set", "nodeCount=zero", "--dry-run"], "nodeCount"),
        (["sweep", "dev", "--max-steps", "0", "--dry-run"], "--max-steps"),
    ],
)
def test_bad_sweep_options_are_refused_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # refused by argparse, as it parses the option
        status = int(exit_.code or 0)
    assert status == 2
    assert message in capsys.readouterr().err


# --- quota --------------------------------------------------------------------------------


NEW_REGION = ROOT / "tests" / "data" / "compute" / "new_project_region_us-central1.json"
NEW_PROJECT = ROOT / "tests" / "data" / "compute" / "new_project.json"


def test_quota_check_names_what_to_request(small: SweepDesign) -> None:
    region = json.loads(REGION_FILE.read_text())
    need = needs(small.steps, small.durations)
    assert need.vcpus == 24 + 16  # in-place 2 x 8 -> highmem-8 with a surge node, + load gen.
    assert need.of("IN_USE_ADDRESSES").amount == 3 + 4  # 2 nodes and a surge, + 4 load gen.
    assert need.of("CPUS_ALL_REGIONS").amount == 40
    problems = check(region, None, need, "demo-project")
    # E2 counts against CPUS (20 free), not E2_CPUS (28 free, but not what Compute Engine
    # charges E2 to); 7 addresses fit.
    assert len(problems) == 1
    assert problems[0].startswith("CPUS quota in us-central1: 20 of 24 free (4 in use)")
    assert "Request at least 44" in problems[0]
    assert "project=demo-project" in problems[0]
    smaller = Need(tuple(replace(d, amount=min(d.amount, 7)) for d in need.demands))
    assert check(region, None, smaller, "demo-project") == []


def test_spot_vcpus_count_against_preemptible_quota_once_the_project_has_it() -> None:
    spot = design_sweep(
        SMALL, SEARCH, gcp_project="demo-project", extra={"spot": True, "loadGeneratorSpot": True}
    )
    region = json.loads(REGION_FILE.read_text())
    # PREEMPTIBLE_CPUS at 0 (as in the recorded answer): Spot VMs use the standard quotas.
    assert not preemptible_quota(region)
    standard = needs(spot.steps, spot.durations)
    assert "PREEMPTIBLE_CPUS" not in [d.metric for d in standard.demands]
    for entry in region["quotas"]:
        if entry["metric"] == "PREEMPTIBLE_CPUS":
            entry["limit"] = 64.0
    assert preemptible_quota(region)
    need = needs(spot.steps, spot.durations, preemptible=True)
    # The spot serving nodes and the spot load-generator nodes: on PREEMPTIBLE_CPUS; what
    # is left on CPUS is GKE's default pool while the cluster is created.
    assert need.of("PREEMPTIBLE_CPUS").amount == standard.of("CPUS_ALL_REGIONS").amount
    assert need.of("CPUS").amount == spot.durations.default_pool_vcpus
    assert check(region, None, need, "demo-project") == []


def test_a_new_projects_address_and_all_regions_quotas_are_checked(
    reference: SweepDesign,
) -> None:
    need = needs(reference.steps, reference.durations)
    # 8 serving nodes of 2 vCPUs and 4 load-generator nodes at once.
    assert need.of("IN_USE_ADDRESSES").amount == 12
    region = json.loads(NEW_REGION.read_text())
    project = json.loads(NEW_PROJECT.read_text())
    problems = check(region, project, need, "new-project")
    assert [p.split(" quota")[0] for p in problems] == ["IN_USE_ADDRESSES", "CPUS_ALL_REGIONS"]
    assert "8 of 8 free (0 in use), but the sweep needs 12 at once" in problems[0]
    assert "Each node holds an external address" in problems[0]
    assert "CPUS_ALL_REGIONS quota in the project (all regions): 32 of 32 free" in problems[1]


@pytest.fixture
def compute_api() -> Iterator[tuple[JsonApi, list[int]]]:
    """regions.get and projects.get on 127.0.0.1 (a new project's answers), or the
    scripted status."""
    statuses: list[int] = []

    def answer(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if statuses:
            return statuses[0], {"error": {"code": statuses[0], "message": "denied"}}
        if "/regions/" in path:
            return 200, json.loads(NEW_REGION.read_text())
        return 200, json.loads(NEW_PROJECT.read_text())

    api = JsonApi(answer)
    yield api, statuses
    api.close()


def test_quota_is_read_from_the_compute_api(compute_api: tuple[JsonApi, list[int]]) -> None:
    api, statuses = compute_api
    region = fetch_region("new-project", "us-central1", "tok3n", base_url=api.url)
    project = fetch_project("new-project", "tok3n", base_url=api.url)
    assert region["name"] == "us-central1" and project["name"] == "new-project"
    assert [r.path for r in api.requests] == [
        "/compute/v1/projects/new-project/regions/us-central1",
        "/compute/v1/projects/new-project",
    ]
    assert api.requests[0].headers["Authorization"] == "Bearer tok3n"
    statuses.append(403)
    with pytest.raises(QuotaError, match=r"HTTP 403 .*gcloud services enable compute"):
        fetch_region("new-project", "us-central1", "tok3n", base_url=api.url)


def test_sweep_all_in_a_new_project_is_refused_for_its_addresses(
    compute_api: tuple[JsonApi, list[int]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    api, _ = compute_api
    created: list[str] = []
    monkeypatch.setattr(quota, "COMPUTE_API", api.url)
    monkeypatch.setattr(quota, "access_token", lambda otherwise: "tok3n")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/local/bin/{name}")
    monkeypatch.setattr(live, "automation_stack", created.append)
    argv = ["sweep", "--all", "--p99-ms", "300", "--max-usd", "25", "--gcp-project",
            "new-project", "--dir", str(tmp_path / "sweep")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "IN_USE_ADDRESSES quota in us-central1: 8 of 8 free" in err
    assert "needs 12 at once" in err and "CPUS_ALL_REGIONS" in err
    assert created == []  # refused before anything exists


# --- orchestration through a double of the Automation API stack ---------------------------


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCliApi:
    """pulumi.automation's low-level CLI API: the refresh the teardown runs."""

    calls: list[tuple[str, Any]]

    def refresh(self, **kwargs: Any) -> CommandResult:
        self.calls.append(("refresh", kwargs))
        assert kwargs["cwd"] == str(ROOT) and callable(kwargs["on_output"])
        return CommandResult("", "", 0)


@dataclass
class FakeWorkspace:
    calls: list[tuple[str, Any]]
    work_dir: str = str(ROOT)
    env_vars: dict[str, str] = field(default_factory=dict)
    cli_api: FakeCliApi = field(init=False)

    def __post_init__(self) -> None:
        self.cli_api = FakeCliApi(self.calls)

    def remove_stack(self, name: str) -> None:
        self.calls.append(("remove_stack", name))


@dataclass
class FakeStack:
    """Answers as pulumi.automation.Stack does, records each call, and runs scripted
    trouble: an `up` that fails, a signal during `up`, destroys that fail."""

    outputs_of: dict[str, dict[str, Any]]
    clock: Clock
    name: str = "sweep"
    calls: list[tuple[str, Any]] = field(default_factory=list)
    experiment: str = ""
    up_minutes: float = 5.0
    fail_up: str = ""
    signal_in_up: str = ""
    destroy_failures: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)  # the state's pending ops
    lock_message: str = ""  # the backend's refusal while a stale lock stands
    path_config: dict[str, str] = field(default_factory=dict)
    pinned: set[str] = field(default_factory=set)  # modelSha256 values set on the stack
    workspace: FakeWorkspace = field(init=False)

    def __post_init__(self) -> None:
        self.workspace = FakeWorkspace(self.calls)

    def set_all_config(self, config: dict[str, Any], *, path: bool = False) -> None:
        if path:  # list settings, item by item (`config set-all --path`)
            assert all("[" in key for key in config)
            self.path_config = {key: value.value for key, value in config.items()}
            self.calls.append(("set_all_config --path", self.experiment))
            return
        # A list must never reach Pulumi's typed config as one plain string.
        assert not any(value.value.startswith("[") for value in config.values())
        self.experiment = config["tfserving-gke:experiment"].value
        if "tfserving-gke:modelSha256" in config:
            self.pinned.add(config["tfserving-gke:modelSha256"].value)
        assert config["tfserving-gke:experimentLabel"].value == self.name
        assert config["tfserving-gke:loadGenerator"].value == "true"
        assert config["gcp:project"].value == "demo-project"
        self.calls.append(("set_all_config", self.experiment))

    def up(self, **kwargs: Any) -> None:
        self.calls.append(("up", (self.experiment, tuple(kwargs.get("replace") or ()))))
        assert callable(kwargs["on_output"])
        self.clock.now += self.up_minutes * 60
        if self.experiment == self.signal_in_up:
            os.kill(os.getpid(), signal.SIGTERM)
        if self.experiment == self.fail_up:
            raise CommandError(CommandResult("", "error: quota exceeded", 255))

    def outputs(self) -> dict[str, OutputValue]:
        self.calls.append(("outputs", self.experiment))
        return {
            key: OutputValue(value, secret=key == "kubeconfig")
            for key, value in self.outputs_of[self.experiment].items()
        }

    def cancel(self) -> None:
        self.calls.append(("cancel", self.name))
        if not self.lock_message:
            raise CommandError(CommandResult("", "error: no stack update in progress", 255))
        self.lock_message = ""

    def export_stack(self) -> Deployment:
        self.calls.append(("export_stack", self.name))
        self._check_lock()
        return Deployment(
            version=3, deployment={"resources": [], "pending_operations": self.pending}
        )

    def _check_lock(self) -> None:
        if self.lock_message:
            raise ConcurrentUpdateError(CommandResult("", self.lock_message, 255))

    def destroy(self, **kwargs: Any) -> None:
        self.calls.append(("destroy", self.name))
        self._check_lock()
        if self.destroy_failures:
            self.destroy_failures -= 1
            raise CommandError(CommandResult("", "error: resource busy", 255))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def synthetic_run(
    capacity: float, clock: Clock, late: Callable[[WorkerSpec], bool] = lambda spec: False
) -> Runs:
    """Runs whose server meets the objective up to `capacity` requests/s, 1 min a step
    (20 s measured); a run `late` holds sends its requests 40 ms late (a stalled generator)."""

    def execute(spec: WorkerSpec, processes: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        clock.now += 60
        latency = 40.0 if spec.rate <= capacity else 900.0
        count = int(spec.rate * 20)
        lag = 40.0 if late(spec) else 0.2
        samples = [Sample(i / spec.rate, latency, None, lag) for i in range(count)]
        result = {
            "index": 0, "processes": processes, "payload": "image_input DT_FLOAT (1, 224, 224, 3)",
            "payload_bytes": 1_288_534, "signature": "serving_default", "server": None,
            **worker_result(samples, 0.0, 20.0, 0.2, 25.0),
        }  # fmt: skip
        pods = {"tfserving-0": {"mean_m": 3500, "max_m": 3900, "samples": 4}}
        return [result], {"pods_cpu": {"source": "metrics.k8s.io", "serving_pods": pods}}

    return Runs("cluster", execute, max_processes=4, fixed_processes=None)


CAPACITIES = {
    "8vcpu-16gb-interop2": 40.0,
    "8vcpu-16gb-interop4": 52.0,
    "8vcpu-64gb-interop4": 55.0,
}


@dataclass
class FakeMeasure:
    clock: Clock
    calls: list[tuple[str, Any]]
    interrupt: str = ""
    fail: str = ""
    signal_at: str = ""

    def __call__(
        self,
        experiment: Planned,
        outputs: dict[str, Any],
        rate: float,
        after_step: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        self.calls.append(("measure", (experiment.name, rate)))
        if experiment.name == self.interrupt:
            raise KeyboardInterrupt
        if experiment.name == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)
        if experiment.name == self.fail:
            raise MeasureError("no serving pod is running")
        spec = WorkerSpec(
            "rest", outputs["restEndpoint"], outputs["grpcEndpoint"], outputs["modelName"],
            "serving_default", 1, "open", rate, 1, 2.0, 0.0, 30.0, 1000,
        )  # fmt: skip
        return capacity_search(
            synthetic_run(CAPACITIES[experiment.name], self.clock), spec, outputs,
            Objective(300.0, 0.01), max_steps=10, say=lambda line: None, after_step=after_step,
        )  # fmt: skip


@dataclass
class Harness:
    design: SweepDesign
    manifest: SweepManifest
    stack: FakeStack
    measure: FakeMeasure
    clock: Clock
    said: list[str]
    existing: dict[str, bool | str] = field(default_factory=dict)  # what GCP answers

    def run(self, max_usd: float = 25.0, keep: bool = False) -> int:
        return SweepRun(
            design=self.design,
            manifest=self.manifest,
            stack=self.stack,
            config_values=live.config_values(self.design),
            measure=self.measure,
            max_usd=max_usd,
            exists=self.exists,
            keep=keep,
            say=self.said.append,
            clock=self.clock,
        ).run()

    def exists(self, resource: CloudResource) -> bool | str:
        self.stack.calls.append(("exists", resource.import_id))
        return self.existing.get(resource.import_id, False)


def outputs_by_experiment(design: SweepDesign) -> dict[str, dict[str, Any]]:
    return {e.name: {**e.plan["outputs"], "kubeconfig": "{}"} for e in design.experiments}


@pytest.fixture
def harness(small: SweepDesign, tmp_path: Path) -> Harness:
    clock = Clock()
    stack = FakeStack(outputs_by_experiment(small), clock)
    manifest = open_manifest(
        tmp_path / "sweep",
        "sweep",
        {"p99_ms": 300.0, "max_error_rate": 0.01, "protocol": "rest"},
        {},
    )
    return Harness(small, manifest, stack, FakeMeasure(clock, stack.calls), clock, [])


def test_a_sweep_ups_measures_each_experiment_in_order_then_destroys(harness: Harness) -> None:
    assert harness.run() == 0
    calls = harness.stack.calls
    order = [e.name for e in harness.design.experiments]
    assert order == ["8vcpu-16gb-interop2", "8vcpu-16gb-interop4", "8vcpu-64gb-interop4"]
    per_step = ["set_all_config", "up", "outputs", "measure"]
    assert harness.stack.names() == per_step * 3 + TEARDOWN
    assert [args for name, args in calls if name == "up"] == [
        (step.experiment.name, tuple(step.replace_urns)) for step in harness.design.steps
    ]
    # The next experiment on the same nodes starts from the previous one's capacity.
    rates = [args[1] for name, args in calls if name == "measure"]
    assert rates[0] == SEARCH.start_rate and rates[1] == pytest.approx(40.0, rel=0.05)
    manifest = json.loads(harness.manifest.path.read_text())
    assert set(manifest["measured"]) == set(order)
    assert manifest["runs"][-1]["stopped"] == "done"
    assert manifest["spent_usd"] > 0
    for name in order:
        result = json.loads(
            (harness.manifest.directory / manifest["measured"][name]["file"]).read_text()
        )
        assert result["capacity"]["rate_per_s"] is not None
    assert {p["what"] for p in manifest["phases"]} >= {"capacity search"}


def test_budget_spent_before_an_experiment_stops_and_destroys(harness: Harness) -> None:
    first = harness.design.steps[0].experiment.name
    first_usd = sum(p.usd for p in harness.design.estimate.phases if p.experiment == first)
    destroy = harness.design.estimate.phases[-1].usd
    status = harness.run(max_usd=first_usd + destroy + 0.01)
    assert status == 1
    assert [a for n, a in harness.stack.calls if n == "up"] == [(first, ())]
    assert harness.stack.names()[-4:] == TEARDOWN
    stopped = json.loads(harness.manifest.path.read_text())["runs"][-1]["stopped"]
    assert stopped.startswith("budget:") and "over --max-usd" in stopped


def test_budget_spent_during_a_search_stops_it_and_destroys(harness: Harness) -> None:
    harness.stack.up_minutes = 600  # ten hours of `up`: the first search finds it spent
    assert harness.run(max_usd=5.0) == 1
    assert harness.stack.names().count("up") == 1
    assert harness.stack.names()[-4:] == TEARDOWN
    manifest = json.loads(harness.manifest.path.read_text())
    assert "capacity search" in manifest["runs"][-1]["stopped"]
    assert manifest["measured"] == {}


def test_a_failed_up_still_destroys(harness: Harness) -> None:
    harness.stack.fail_up = "8vcpu-16gb-interop4"
    assert harness.run() == 1
    names = harness.stack.names()
    assert names.count("up") == 2 and names[-4:] == TEARDOWN
    stopped = json.loads(harness.manifest.path.read_text())["runs"][-1]["stopped"]
    assert "CommandError" in stopped and "quota exceeded" in stopped


def test_ctrl_c_during_a_search_destroys(harness: Harness) -> None:
    harness.measure.interrupt = "8vcpu-16gb-interop4"
    assert harness.run() == 130
    assert harness.stack.names()[-4:] == TEARDOWN
    assert harness.stack.names().count("up") == 2
    assert json.loads(harness.manifest.path.read_text())["runs"][-1]["stopped"] == (
        "interrupted (SIGINT)"
    )


def test_sigterm_during_up_lets_it_finish_then_destroys(harness: Harness) -> None:
    harness.stack.signal_in_up = "8vcpu-16gb-interop2"
    previous = signal.getsignal(signal.SIGTERM)
    assert harness.run() == 128 + signal.SIGTERM
    names = harness.stack.names()
    assert names == ["set_all_config", "up", *TEARDOWN]
    assert any("stopping after the current Pulumi operation" in line for line in harness.said)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_sigterm_during_a_search_stops_it_and_destroys(harness: Harness) -> None:
    harness.measure.signal_at = "8vcpu-16gb-interop2"
    assert harness.run() == 128 + signal.SIGTERM
    assert harness.stack.names()[-4:] == TEARDOWN
    assert json.loads(harness.manifest.path.read_text())["measured"] == {}


def test_an_experiment_that_cannot_be_measured_is_recorded_and_the_sweep_goes_on(
    harness: Harness,
) -> None:
    harness.measure.fail = "8vcpu-16gb-interop4"
    assert harness.run() == 1
    manifest = json.loads(harness.manifest.path.read_text())
    assert manifest["failed"] == {"8vcpu-16gb-interop4": "no serving pod is running"}
    assert set(manifest["measured"]) == {"8vcpu-16gb-interop2", "8vcpu-64gb-interop4"}
    assert harness.stack.names()[-4:] == TEARDOWN


def test_a_destroy_is_tried_twice_then_reported_loudly(harness: Harness) -> None:
    harness.stack.destroy_failures = 2
    assert harness.run() == 1
    assert harness.stack.names().count("destroy") == 2
    assert "remove_stack" not in harness.stack.names()
    said = "\n".join(harness.said)
    assert "STILL BE UP AND BILLING" in said
    # The last lines are the exact commands, and nothing comes after them but the TTL note.
    assert "pulumi cancel --yes --stack sweep" in said
    assert "pulumi destroy --yes --stack sweep" in said
    assert "python -m infra teardown sweep" in said
    harness.stack.destroy_failures = 1
    harness.stack.calls.clear()
    harness.run()
    assert harness.stack.names().count("destroy") == 2
    assert harness.stack.names()[-1] == "remove_stack"


def test_a_list_setting_reaches_every_up_as_path_keys(small: SweepDesign, tmp_path: Path) -> None:
    extra = sweep_cli._extra(
        ["exposure=external", 'loadBalancerSourceRanges=["203.0.113.7/32", "198.51.100.0/24"]']
    )
    assert extra["loadBalancerSourceRanges"] == ["203.0.113.7/32", "198.51.100.0/24"]
    design = design_sweep(SMALL[:1], SEARCH, gcp_project="demo-project", extra=extra)
    clock = Clock()
    stack = FakeStack(outputs_by_experiment(design), clock)
    manifest = open_manifest(tmp_path / "sweep", "sweep", {}, extra)
    harness = Harness(design, manifest, stack, FakeMeasure(clock, stack.calls), clock, [])
    assert harness.run() == 0
    assert stack.names()[:3] == ["set_all_config", "set_all_config --path", "up"]
    assert stack.path_config == {
        "tfserving-gke:loadBalancerSourceRanges[0]": "203.0.113.7/32",
        "tfserving-gke:loadBalancerSourceRanges[1]": "198.51.100.0/24",
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("loadBalancerSourceRanges=203.0.113.7/32", 'expected a list (e.g. ["a", "b"] as JSON)'),
        ("nodeCout=3", "Did you mean nodeCount?"),
        ("nodeCount=three", "expected a whole number"),
    ],
)
def test_set_values_are_read_as_their_declared_type(pair: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        sweep_cli._extra([pair])


def test_keep_leaves_the_stack_up(harness: Harness) -> None:
    assert harness.run(keep=True) == 0
    assert "destroy" not in harness.stack.names()
    assert any(
        "--keep" in line and "infra teardown sweep --remove" in line for line in harness.said
    )


CLUSTER_URN = (
    "urn:pulumi:sweep::tfserving-gke::tfserving-gke:infra:GkeCluster$" + CLUSTER + "::cluster"
)
POOL_URN = (
    "urn:pulumi:sweep::tfserving-gke::tfserving-gke:infra:GkeCluster$" + NODE_POOL
    + "::cluster-serving"
)  # fmt: skip
CLUSTER_ID = "projects/demo-project/locations/us-central1-a/clusters/tfs-sweep"
POOL_ID = f"{CLUSTER_ID}/nodePools/serving"


def creating(urn: str, type_: str, **inputs: Any) -> dict[str, Any]:
    """A pending create as `pulumi stack export` shows it (checkpoint v3)."""
    return {"type": "creating", "resource": {"urn": urn, "type": type_, "custom": True,
                                              "inputs": inputs}}  # fmt: skip


def test_a_cut_off_create_is_imported_where_it_exists_and_dropped_where_not(
    harness: Harness,
) -> None:
    harness.stack.pending = [
        creating(CLUSTER_URN, CLUSTER, name="tfs-sweep", location="us-central1-a",
                 project="demo-project"),
        creating(POOL_URN, NODE_POOL, name="serving", cluster="tfs-sweep",
                 location="us-central1-a", project="demo-project"),
        creating("urn:pulumi:sweep::tfserving-gke::" + DEPLOYMENT + "::serving", DEPLOYMENT),
        {"type": "updating", "resource": {"urn": "urn:x", "type": DEPLOYMENT}},
    ]  # fmt: skip
    harness.existing = {CLUSTER_ID: True, POOL_ID: False}
    harness.measure.interrupt = "8vcpu-16gb-interop2"
    assert harness.run() == 130
    names = harness.stack.names()
    assert names[-7:] == [
        "cancel", "export_stack", "exists", "exists", "refresh", "destroy", "remove_stack",
    ]  # fmt: skip
    (refresh,) = [args for name, args in harness.stack.calls if name == "refresh"]
    assert refresh["stack"] == "sweep"
    assert refresh["import_pending_creates"] == [CLUSTER_URN, CLUSTER_ID]
    assert refresh["clear_pending_creates"] is True


def test_a_create_whose_existence_is_unknown_is_never_dropped(harness: Harness) -> None:
    harness.stack.pending = [
        creating(CLUSTER_URN, CLUSTER, name="tfs-sweep", location="us-central1-a",
                 project="demo-project"),
    ]  # fmt: skip
    harness.existing = {CLUSTER_ID: "container.googleapis.com answered HTTP 403: denied"}
    assert harness.run() == 1
    (refresh,) = [args for name, args in harness.stack.calls if name == "refresh"]
    assert refresh["clear_pending_creates"] is False and refresh["import_pending_creates"] == []
    assert "remove_stack" not in harness.stack.names()  # the state still knows of it
    said = "\n".join(harness.said)
    assert "STILL BE UP AND BILLING" in said and "HTTP 403" in said
    assert "gcloud container clusters describe tfs-sweep --location us-central1-a" in said


def test_a_stale_lock_is_cleared_before_the_destroy(harness: Harness) -> None:
    harness.stack.lock_message = (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other "
        "process(es) to end or delete the lock file with `pulumi cancel`.\n  gs://state/"
        ".pulumi/locks/organization/tfserving-gke/sweep/1.json: created by runner@fv-az1 "
        "(pid 2051) at 2026-12-01T10:00:00Z"
    )
    harness.measure.interrupt = "8vcpu-16gb-interop2"
    assert harness.run() == 130
    assert harness.stack.names()[-4:] == TEARDOWN
    assert json.loads(harness.manifest.path.read_text())["runs"][-1]["stopped"] == (
        "interrupted (SIGINT)"
    )


def test_the_meter_bills_what_runs_for_as_long_as_it_runs() -> None:
    clock = Clock(0.0)
    meter = Meter(clock, spent_before=1.0)
    meter.bill(2.0)  # USD/h
    clock.now = 1800
    assert meter.spent == pytest.approx(2.0)
    meter.generator_running(0.4)
    clock.now = 3600
    meter.generator_idle(10)  # nodes stay ten minutes after the search
    clock.now = 3600 + 1800
    assert meter.spent == pytest.approx(1.0 + 2.0 * 1.5 + 0.4 * (0.5 + 10 / 60))
    meter.stop()
    clock.now += 3600
    assert meter.spent == pytest.approx(1.0 + 2.0 * 1.5 + 0.4 * (0.5 + 10 / 60))


# --- the command: resume, budget refusal, report ------------------------------------------


@pytest.fixture
def command(
    small: SweepDesign, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[list[FakeStack], FakeMeasure, Path]:
    clock = Clock()
    stacks: list[FakeStack] = []
    calls: list[tuple[str, Any]] = []
    measure = FakeMeasure(clock, calls)

    def new_stack(name: str) -> FakeStack:
        stacks.append(FakeStack(outputs_by_experiment(small), clock, name=name, calls=calls))
        return stacks[-1]

    monkeypatch.setattr(live, "automation_stack", new_stack)
    monkeypatch.setattr(live, "cluster_measure", lambda design, seed=0: measure)
    monkeypatch.setattr(live, "resolve_models", lambda design: released(design, RELEASES[0]))
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/local/bin/{name}")
    return stacks, measure, tmp_path / "sweep"


RELEASES = [("v1.0", "a" * 64), ("v1.1", "b" * 64)]


def released(
    design: SweepDesign, release: tuple[str, str]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """What resolve_models answers when `@latest` is this (tag, sha256)."""
    tag, sha = release
    sources = {str(r["modelSource"]) for r in design.model_requests().values()}
    return (
        {source: {"release_tag": tag, "sha256": sha} for source in sources},
        dict.fromkeys(design.model_requests(), sha),
    )


def sweep_command(directory: Path, *extra: str) -> list[str]:
    return [
        "sweep", *SMALL, "--p99-ms", "300", "--max-usd", "25", "--dir", str(directory),
        "--gcp-project", "demo-project", "--skip-quota-check", "--max-steps", "6", *extra,
    ]  # fmt: skip


def test_a_rerun_continues_with_what_is_not_measured(
    command: tuple[list[FakeStack], FakeMeasure, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stacks, measure, directory = command
    measure.interrupt = "8vcpu-16gb-interop4"
    assert cli.main(sweep_command(directory)) == 130
    first = [a[0] for n, a in stacks[0].calls if n == "up"]
    assert first == ["8vcpu-16gb-interop2", "8vcpu-16gb-interop4"]
    measure.interrupt = ""
    stacks[0].calls.clear()
    assert cli.main(sweep_command(directory)) == 0
    second = [a[0] for n, a in stacks[1].calls if n == "up"]
    assert second == ["8vcpu-16gb-interop4", "8vcpu-64gb-interop4"]
    out = capsys.readouterr().out
    assert "1 of 3 experiments already measured" in out
    report = json.loads((directory / "report.json").read_text())
    assert {e["experiment"] for e in report["experiments"]} == set(SMALL)
    assert report["winner"] in SMALL
    assert (directory / "report.png").stat().st_size > 1000
    assert len(json.loads((directory / "sweep.json").read_text())["runs"]) == 2
    # A third run has nothing left to do and creates nothing.
    assert cli.main(sweep_command(directory)) == 0
    assert len(stacks) == 2


def test_a_rerun_measures_again_what_lost_its_results_file(
    command: tuple[list[FakeStack], FakeMeasure, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stacks, _, directory = command
    assert cli.main(sweep_command(directory)) == 0
    (directory / "results" / "8vcpu-16gb-interop4.json").unlink()
    capsys.readouterr()
    stacks[0].calls.clear()  # every stack of the fixture records into one list
    assert cli.main(sweep_command(directory)) == 0
    out = capsys.readouterr().out
    assert "lists 8vcpu-16gb-interop4 as measured, but its results file is gone" in out
    assert "measured again" in out and "Traceback" not in out
    again = [a[0] for n, a in stacks[-1].calls if n == "up"]
    assert again == ["8vcpu-16gb-interop4"]
    assert (directory / "results" / "8vcpu-16gb-interop4.json").is_file()
    report = json.loads((directory / "report.json").read_text())
    assert {e["experiment"] for e in report["experiments"]} == set(SMALL)


def test_a_resume_after_a_new_release_is_refused_naming_both_models(
    command: tuple[list[FakeStack], FakeMeasure, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stacks, measure, directory = command
    measure.interrupt = SMALL[1]
    cli.main(sweep_command(directory))
    # Every `up` served the artifact the sweep measures: modelSha256 pinned.
    assert stacks[0].pinned == {RELEASES[0][1]}
    recorded = json.loads((directory / "sweep.json").read_text())["models"]
    assert {m["sha256"] for m in recorded.values()} == {RELEASES[0][1]}
    capsys.readouterr()
    monkeypatch.setattr(live, "resolve_models", lambda design: released(design, RELEASES[1]))
    assert cli.main(sweep_command(directory)) == 2
    err = capsys.readouterr().err
    assert f"release v1.0 (sha256 {RELEASES[0][1]})" in err
    assert f"release v1.1 (sha256 {RELEASES[1][1]})" in err
    assert f"--set modelSha256={RELEASES[0][1]}" in err
    assert len(stacks) == 1  # nothing created for the refused run


def test_a_rerun_with_another_objective_is_refused(
    command: tuple[list[FakeStack], FakeMeasure, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, measure, directory = command
    measure.interrupt = SMALL[0]
    cli.main(sweep_command(directory))
    capsys.readouterr()
    argv = sweep_command(directory)
    argv[argv.index("--p99-ms") + 1] = "200"
    assert cli.main(argv) == 2
    assert "another capacity search" in capsys.readouterr().err


def test_an_estimate_over_the_budget_is_refused_before_creating_anything(
    command: tuple[list[FakeStack], FakeMeasure, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stacks, _, directory = command
    argv = sweep_command(directory)
    argv[argv.index("--max-usd") + 1] = "0.2"
    assert cli.main(argv) == 2
    assert stacks == []
    err = capsys.readouterr().err
    assert "over the budget of 0.2 USD: refused before creating anything" in err


def test_a_real_run_needs_an_objective_a_budget_and_a_project(
    command: tuple[list[FakeStack], FakeMeasure, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stacks, _, directory = command
    for name in campaign.PROJECT_ENVS:
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["sweep", *SMALL, "--dir", str(directory), "--skip-quota-check"]) == 2
    assert "needs --p99-ms" in capsys.readouterr().err
    argv = [a for a in sweep_command(directory) if a not in ("--gcp-project", "demo-project")]
    assert cli.main(argv) == 2
    assert "gcp:project" in capsys.readouterr().err
    assert stacks == []


# --- the report ---------------------------------------------------------------------------


def test_the_report_ranks_by_requests_per_dollar_and_judges_the_reference(
    harness: Harness,
) -> None:
    assert harness.run() == 0
    report, path = write_report(harness.manifest)
    assert report == build_report(harness.manifest)
    by_name = {e["experiment"]: e for e in report["experiments"]}
    assert (
        by_name["8vcpu-16gb-interop4"]["capacity_rps"]
        > by_name["8vcpu-16gb-interop2"]["capacity_rps"]
    )
    assert by_name["8vcpu-16gb-interop4"]["cpu_per_pod_cores"] == 3.5
    # What `promote` needs: the replicas measured, the model measured, the sweep's --set.
    assert by_name["8vcpu-16gb-interop4"]["replicas"] == 2
    assert "model_sha256" in by_name["8vcpu-16gb-interop4"]
    assert report["settings"] == {}
    # Cheaper nodes at nearly the same capacity: the 16 GB shape wins per dollar.
    assert report["winner"] == "8vcpu-16gb-interop4"
    assert report["reference"]["verdict"].startswith("holds")
    text = path.read_text()
    assert "**winner**" in text and "8 vCPU / 16 GB, inter-op 4" in text
    assert markdown(report) == text


def test_reference_verdicts() -> None:
    def entry(name: str, low: int, high: int, *flags: str) -> dict[str, Any]:
        return {
            "experiment": name,
            "requests_per_usd_range": [low, high],
            "not_ranked": list(flags),
        }

    ref = entry("8vcpu-16gb-interop4", 950, 1050)
    assert reference_verdict([entry("x", 900, 1000)], "x", []).startswith("not tested")
    assert reference_verdict([ref, entry("x", 900, 1000)], ref["experiment"], ["x"]) == (
        "holds: 8vcpu-16gb-interop4 serves the most requests per dollar, tied with x"
    )
    # Overlapping ranges: a tie, whichever figure is higher.
    assert reference_verdict([ref, entry("x", 1000, 1100)], "x", [ref["experiment"]]).startswith(
        "holds as a tie"
    )
    assert reference_verdict([ref, entry("x", 1400, 1600)], "x", []) == (
        "does not hold for this model: x serves at least 1,400 requests per dollar, "
        "8vcpu-16gb-interop4 at most 1,050"
    )
    limited = entry("8vcpu-16gb-interop4", 0, 0, "limited")
    assert reference_verdict([limited, entry("x", 1400, 1600)], "x", []) == (
        "undecided: 8vcpu-16gb-interop4's figures are limited"
    )
    assert reference_verdict([ref], None, []).startswith("undecided")


def test_a_full_disk_stops_the_sweep_with_a_message_and_still_tears_down(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(harness.manifest.path))

    monkeypatch.setattr(harness.manifest, "record_result", no_space)
    assert harness.run() == 1
    assert harness.stack.names()[-4:] == TEARDOWN
    assert harness.stack.names().count("up") == 1
    stopped = json.loads(harness.manifest.path.read_text())["runs"][-1]["stopped"]
    assert "No space left on device" in stopped and "rerun the same command" in stopped
    assert any(line.startswith("Sweep stopped: could not write in") for line in harness.said)


def test_an_unwritable_sweep_folder_is_said_after_the_teardown(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(harness.manifest.path))

    monkeypatch.setattr(harness.manifest, "save", read_only)
    assert harness.run() == 1
    assert harness.stack.names()[-4:] == TEARDOWN
    assert (
        "Permission denied" in harness.said[-1]
        and "manifest could not be saved" in (harness.said[-1])
    )


def test_the_dry_run_shows_the_model_and_the_name_it_is_served_under() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "infra", "sweep", "8vcpu-16gb-interop2", "--dry-run",
         "--set", "modelSource=github:me/my-model@v3#saved_model.tar.gz"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # Not the preset's resnet50: the model the sweep brings is named from its source.
    assert "Model: my-model (/v1/models/my-model) from github:me/my-model@v3" in run.stdout
    assert "modelName is not set" in run.stdout


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["sweep", "dev"], "a real run needs --p99-ms"),
        (["sweep", "dev", "--p99-ms", "300", "--max-usd", "5"], "needs the Pulumi CLI on PATH"),
    ],
)
def test_a_real_sweep_says_what_it_lacks_before_printing_its_plan(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert said in err
    assert "Sweep on stack" not in out  # no plan printed before the refusal
