"""The in-cluster load generator as the program declares it: its pool, its cost while
benchmarking, its image (built from this project's own code), and its Job's manifests,
checked with Kubernetes' schemas, the client's models, hadolint and checkov."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_validate
import pytest
import yaml

from infra.bench import job as jobs
from infra.bench.image import MODULES, context_files, write_load_generator_context
from infra.data import load
from infra.design.experiment import design_experiment
from infra.design.load_generator import process_requests, processes_for
from infra.design.settings import resolve_settings
from infra.inputs.errors import ConfigError
from infra.loadgen.spec import WorkerSpec
from infra.plan.render import kubernetes_manifests, plan_json
from infra.plan.run import StackPlan
from tests.conftest import PlanFn, resource_inputs
from tests.test_model_and_image import hadolint
from tests.test_security_scan import scan

POOL_TYPE = "gcp:container/nodePool:NodePool"


def pools(plan: StackPlan) -> dict[str, dict[str, Any]]:
    return {inputs["name"]: inputs for inputs in resource_inputs(plan, POOL_TYPE)}


def test_experiments_declare_a_load_generator_pool_scaled_from_zero(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    pool = pools(plan)["load-generator"]
    assert pool["initialNodeCount"] == 0
    assert pool["autoscaling"] == {
        "totalMinNodeCount": 0, "totalMaxNodeCount": 4, "locationPolicy": "ANY",
    }  # fmt: skip
    node = pool["nodeConfig"]
    assert node["machineType"] == "e2-highcpu-4"
    assert node["taints"] == [
        {"key": "tfserving-gke.io/load-generator", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert node["labels"]["tfserving-gke.io/role"] == "load-generator"
    serving = pools(plan)["serving"]
    assert "taints" not in serving["nodeConfig"] and serving["nodeCount"] == 2
    outputs = plan.recording.stack_outputs
    assert outputs["loadGenerator"]["maxProcesses"] == 12  # 3 one-core processes a node
    assert "/load-generator@sha256:" in outputs["loadGeneratorImage"]


def test_a_regional_stacks_load_generator_pool_counts_all_its_zones(plan: PlanFn) -> None:
    zonal = plan("8vcpu-16gb-interop4")
    regional = plan("8vcpu-16gb-interop4", regional=True)
    pool = pools(regional)["load-generator"]
    # Total limits: 4 nodes over the region's zones, not 4 in each.
    assert pool["autoscaling"]["totalMaxNodeCount"] == 4 and "maxNodeCount" not in pool
    assert (
        regional.recording.stack_outputs["loadGenerator"]
        == zonal.recording.stack_outputs["loadGenerator"]
    )


def test_dev_has_no_load_generator(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["dev"]
    assert set(pools(plan)) == {"serving"}
    assert plan.recording.stack_outputs.get("loadGenerator") is None
    assert plan_json(plan)["cost"]["while_benchmarking"] is None


def test_the_plan_prices_the_pool_while_benchmarking_apart(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    cost = plan_json(plan)["cost"]
    benchmarking = cost["while_benchmarking"]
    assert [line["item"] for line in benchmarking["lines"]] == [
        "e2-highcpu-4 load-generator nodes",
        "pd-standard boot disks, 30 GB each",
    ]
    assert benchmarking["usd_per_hour"] == pytest.approx(4 * (0.0989 + 30 * 0.04 / 730), abs=1e-3)
    # Not in the always-on total: the pool is empty between runs.
    assert cost["usd_per_hour"] == pytest.approx(0.593, abs=1e-3)


def test_a_shared_core_load_generator_is_refused() -> None:
    settings = resolve_settings(
        stack="scratch",
        gcp_project="my-project",
        config={"loadGenerator": True, "loadGeneratorMachineType": "e2-medium"},
        explicit_keys={"loadGenerator", "loadGeneratorMachineType"},
    )
    with pytest.raises(ConfigError, match="loadGeneratorMachineType: e2-medium is shared-core"):
        design_experiment(settings)
    with pytest.raises(
        ConfigError, match="loadGeneratorMachineType: 'c2-standard-4': C2 is not supported"
    ):
        design_experiment(
            resolve_settings(
                stack="scratch",
                gcp_project="my-project",
                config={"loadGenerator": True, "loadGeneratorMachineType": "c2-standard-4"},
                explicit_keys={"loadGenerator", "loadGeneratorMachineType"},
            )
        )


def test_processes_follow_the_rate_and_the_body_size() -> None:
    # Half of what one process held in the benchmark: 3000 small REST requests a second.
    assert processes_for(1400, "rest", None, 12) == 1
    assert processes_for(3000, "rest", 500, 12) == 2
    # The reference model's 1.3 MB JSON body: bytes, not requests, limit a process (about
    # 770 a second of them, half of that planned).
    assert processes_for(1000, "rest", 1_300_000, 12) == 3
    assert processes_for(100_000, "rest", 500, 12) == 12  # never more than the pool holds


def test_the_image_is_built_from_this_projects_code_on_a_pinned_python(tmp_path: Path) -> None:
    relative, tag = write_load_generator_context(tmp_path)
    context = tmp_path / relative
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert f"FROM {load('image')['load_generator_base']}\n" in dockerfile
    assert load("image")["load_generator_base"].startswith("python:3.11.")
    assert "USER 10001:10001" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "infra.loadgen.worker"]' in dockerfile
    result = hadolint(context / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
    assert files == sorted([".dockerignore", "Dockerfile", "requirements.txt", *MODULES])
    assert write_load_generator_context(tmp_path) == (relative, tag)  # same code, same image


def test_the_image_holds_every_module_a_load_generator_imports(tmp_path: Path) -> None:
    relative, _ = write_load_generator_context(tmp_path)
    # Only the context and the installed packages on the path, as in the image.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", "import infra, infra.loadgen.worker; print(infra.__file__)"],
        cwd=tmp_path / relative,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / relative))
    assert "requirements.txt" in context_files()


def job_objects(processes: int = 3) -> tuple[dict[str, Any], dict[str, Any], WorkerSpec]:
    spec = WorkerSpec(
        "rest", "http://x", "x:8500", "resnet50", "serving_default", 1, "open", 300.0, 1,
        60.0, 10.0, 30.0, 1000, processes=processes, coordinator=jobs.coordinator("run-1"),
        listen_host="0.0.0.0",
    )  # fmt: skip
    job = jobs.job(
        name="run-1",
        namespace="tfserving",
        stack_label="8vcpu-16gb-interop4",
        image="us-central1-docker.pkg.dev/p/r/load-generator@sha256:" + "0" * 64,
        spec_json=spec.to_json(),
        processes=processes,
        run_deadline_s=700.0,
        requests=process_requests(),
    )
    return job, jobs.peers_service("run-1", "tfserving", "8vcpu-16gb-interop4"), spec


@pytest.mark.parametrize("version", load("gke")["kubernetes_versions"])
def test_the_job_and_its_service_pass_strict_kubernetes_schemas(version: str) -> None:
    job, service, _ = job_objects()
    kubernetes_validate.validate(job, version, strict=True)
    kubernetes_validate.validate(service, version, strict=True)


def test_the_job_is_what_the_kubernetes_client_models_read() -> None:
    job, service, _ = job_objects()
    client = kubernetes.client.ApiClient()
    model = client.deserialize(json.dumps(job), "V1Job", "application/json")
    assert model.spec.completion_mode == "Indexed"
    assert model.spec.template.spec.subdomain == "run-1"
    headless = client.deserialize(json.dumps(service), "V1Service", "application/json")
    assert headless.spec.cluster_ip == "None"


def test_the_job_runs_one_process_per_pod_on_the_load_generator_pool() -> None:
    job, service, spec = job_objects(processes=5)
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 5
    assert job["spec"]["backoffLimit"] == 0  # a retried process would send at the wrong time
    assert job["spec"]["activeDeadlineSeconds"] == 760
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "load-generator"}
    assert pod["tolerations"][0]["key"] == "tfserving-gke.io/load-generator"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"] == ["--spec", spec.to_json()]
    assert WorkerSpec.from_json(container["args"][1]).coordinator == "run-1-0.run-1:7077"
    assert container["resources"]["requests"] == {"cpu": "900m", "memory": "512Mi"}
    # The headless Service finds the pods the Job makes, and names them in DNS.
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert pod["subdomain"] == service["metadata"]["name"] == "run-1"


def load_generator_policy(plan: StackPlan) -> dict[str, Any]:
    (policy,) = [
        obj
        for _, obj in kubernetes_manifests(plan)
        if obj["metadata"]["name"] == "tfserving-load-generator"
    ]
    return policy


def test_load_generator_pods_reach_only_the_serving_pods_their_peers_and_dns(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    policy = load_generator_policy(plan)["spec"]
    job, _, _ = job_objects()
    # The policy selects the Job's pods.
    assert policy["podSelector"]["matchLabels"].items() <= (
        job["spec"]["template"]["metadata"]["labels"].items()
    )
    serving, peers, dns = policy["egress"]
    assert {p["port"] for p in serving["ports"]} == {8500, 8501}
    assert peers["ports"] == [{"port": 7077, "protocol": "TCP"}]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert policy["ingress"] == [{"from": [{"podSelector": policy["podSelector"]}],
                                  "ports": [{"port": 7077, "protocol": "TCP"}]}]  # fmt: skip


def test_the_job_passes_checkov(shipped_plans: dict[str, StackPlan], tmp_path: Path) -> None:
    job, service, _ = job_objects()
    policy = load_generator_policy(shipped_plans["8vcpu-16gb-interop4"])
    (tmp_path / "job.yaml").write_text(yaml.safe_dump_all([job, service, policy]), encoding="utf-8")
    report = scan(tmp_path)
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    assert failed == []
    assert {c["check_id"] for c in report["results"]["skipped_checks"]} == {"CKV_K8S_11"}
