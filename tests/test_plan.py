"""The real program under the Pulumi SDK mocks: every shipped stack, its manifests and
resources, checked with Kubernetes' own schemas."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.data import load
from infra.plan.mocks import Recording
from infra.plan.render import SCHEMA, describe, matrix, write_plan
from infra.plan.run import StackPlan, known_stacks, plan_stack
from tests.conftest import (
    ROOT,
    PlanFn,
    container,
    manifest,
    resource_inputs,
    serving_image,
    serving_pool,
)
from tests.crd_schemas import validate_custom
from tests.model_archives import tar_gz, tiny_model_files, write

REFERENCE_EXPERIMENTS = {
    # stack: (machine type, nodes, inter-op, intra-op, batching)
    **{f"2vcpu-4gb-interop{i}": ("e2-custom-2-4096", 8, i, 2, False) for i in (2, 4, 8)},
    **{f"4vcpu-8gb-interop{i}": ("e2-custom-4-8192", 4, i, 4, False) for i in (2, 4, 8)},
    **{f"8vcpu-16gb-interop{i}": ("e2-custom-8-16384", 2, i, 8, False) for i in (2, 4, 8)},
    **{f"8vcpu-64gb-interop{i}": ("e2-highmem-8", 2, i, 8, False) for i in (2, 4, 8)},
    **{f"8vcpu-64gb-interop{i}-batch": ("e2-highmem-8", 2, i, 8, True) for i in (2, 4, 8)},
}


def test_every_reference_experiment_and_dev_is_shipped() -> None:
    # By name: a stack a user adds (promote's Pulumi.prod.yaml, init's) is planned and
    # checked by every test below too, and breaks none of them.
    assert {*REFERENCE_EXPERIMENTS, "dev"} <= set(known_stacks())


@pytest.mark.parametrize("stack", sorted(REFERENCE_EXPERIMENTS))
def test_reference_experiment_plans_as_the_reference_ran_it(
    shipped_plans: dict[str, StackPlan], stack: str
) -> None:
    machine_type, nodes, inter_op, intra_op, batching = REFERENCE_EXPERIMENTS[stack]
    plan = shipped_plans[stack]
    pool = serving_pool(plan)
    assert (pool["nodeConfig"]["machineType"], pool["nodeCount"]) == (machine_type, nodes)
    deployment = manifest(plan, "Deployment")
    assert deployment["spec"]["replicas"] == nodes
    args = container(plan)["args"]
    assert f"--tensorflow_inter_op_parallelism={inter_op}" in args
    assert f"--tensorflow_intra_op_parallelism={intra_op}" in args
    assert ("--enable_batching=true" in args) is batching
    # The reference server's request threads: TF Serving's default, 4 per CPU it sees.
    assert f"--rest_api_num_threads={4 * intra_op}" in args
    assert f"--grpc_max_threads={4 * intra_op}" in args
    if batching:
        batching_file = manifest(plan, "ConfigMap")["data"]["batching_config.txt"]
        assert batching_file.splitlines() == [
            "max_batch_size { value: 128 }",
            "batch_timeout_micros { value: 0 }",
            "max_enqueued_batches { value: 2 }",
            "num_batch_threads { value: 2 }",
            "enable_large_batch_splitting { value: true }",
            "max_execution_batch_size { value: 128 }",
        ]
        assert any(
            "restApiNumThreads 32 and grpcMaxThreads 32" in w and "2 x 128 = 256" in w
            for w in plan.warnings
        )


@pytest.mark.parametrize("version", load("gke")["kubernetes_versions"])
def test_written_manifests_pass_strict_kubernetes_schemas(
    shipped_plans: dict[str, StackPlan], tmp_path: Path, version: str
) -> None:
    checked = expected = 0
    for plan in shipped_plans.values():
        target = write_plan(plan, tmp_path)
        for path in sorted(target.glob("*.yaml")):
            for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if obj["apiVersion"].startswith("monitoring.googleapis.com/"):
                    validate_custom(obj, version)  # a CRD: against its own schema
                else:
                    kubernetes_validate.validate(obj, version, strict=True)
                checked += 1
        # Six objects; with the load generator, its NetworkPolicy and the headless
        # Service through which it reaches each serving pod; with autoscaling, the HPA;
        # with metrics, the PodMonitoring (a user's production stack has both).
        design = plan.design
        expected += (
            6
            + 2 * (design.load_generator is not None)
            + (design.autoscaling is not None)
            + bool(design.settings.metrics)
        )
    assert checked == expected


def test_strict_schema_check_catches_a_misspelt_field() -> None:
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "lables": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.34.0", strict=True)


def test_deployment_runs_the_image_by_digest(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["dev"]
    image = container(plan)["image"]
    built = serving_image(plan)["imageName"]
    assert image.startswith(built.rsplit(":", 1)[0] + "@sha256:")
    assert plan.recording.stack_outputs["imageDigest"] == image
    assert container(plan)["imagePullPolicy"] == "IfNotPresent"


def test_pods_run_hardened(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    pod = manifest(plan, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(plan)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    namespace = manifest(plan, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_one_pod_per_node_is_enforced_and_sized_from_allocatable(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    pod = manifest(plan, "Deployment")["spec"]["template"]["spec"]
    rule = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule[0]["topologyKey"] == "kubernetes.io/hostname"
    assert container(plan)["resources"] == {
        "requests": {"cpu": "7110m", "memory": "12509Mi"},
        "limits": {"memory": "12509Mi"},
    }
    strategy = manifest(plan, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 0, "maxUnavailable": 1}


def test_several_pods_per_node_spread_and_surge_into_free_slots(plan: PlanFn) -> None:
    result = plan("8vcpu-16gb-interop4", podsPerNode=2, replicas=3)
    pod = manifest(result, "Deployment")["spec"]["template"]["spec"]
    assert "affinity" not in pod
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    strategy = manifest(result, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}


def test_only_the_startup_probe_queues_behind_predictions(
    shipped_plans: dict[str, StackPlan],
) -> None:
    served = container(shipped_plans["dev"])
    startup = served["startupProbe"]
    assert startup["httpGet"] == {"path": "/v1/models/tiny_classifier", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600
    # Accepted by the kernel and libevent's loop, not by the busy REST worker pool.
    assert served["livenessProbe"] == {
        "tcpSocket": {"port": "http"},
        "periodSeconds": 15,
        "timeoutSeconds": 5,
        "failureThreshold": 4,
    }
    assert set(served["readinessProbe"]) == {
        "tcpSocket",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
    }
    assert served["readinessProbe"]["tcpSocket"] == {"port": "grpc"}


def test_server_stops_on_sigterm_after_the_drain(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    served = container(plan)
    # tini as PID 1 forwards SIGTERM; the server is not PID 1, so the default action ends it.
    assert served["command"] == [
        "/usr/bin/tini",
        "-e",
        "143",
        "--",
        "/usr/bin/tensorflow_model_server",
    ]
    drain = served["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = manifest(plan, "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert drain == 10
    assert drain < grace <= drain + 5


def test_written_deployment_explains_termination_and_probes(
    shipped_plans: dict[str, StackPlan], tmp_path: Path
) -> None:
    target = write_plan(shipped_plans["dev"], tmp_path)
    (deployment,) = target.glob("*-deployment-*.yaml")
    text = deployment.read_text(encoding="utf-8")
    header = text.split("\n---\n", 1)[0]
    assert "SIGTERM to PID 1, tini" in header
    assert "no SIGTERM handler" in header
    assert "15 s after the deletion" in header
    assert "TCP checks" in header
    assert yaml.safe_load(text)["kind"] == "Deployment"


def test_batching_change_rolls_pods(plan: PlanFn) -> None:
    before = plan("8vcpu-64gb-interop4-batch")
    after = plan("8vcpu-64gb-interop4-batch", numBatchThreads=8)
    old_template = manifest(before, "Deployment")["spec"]["template"]
    new_template = manifest(after, "Deployment")["spec"]["template"]
    assert old_template["metadata"]["annotations"] != new_template["metadata"]["annotations"]
    old_volume = old_template["spec"]["volumes"][0]["configMap"]["name"]
    new_volume = new_template["spec"]["volumes"][0]["configMap"]["name"]
    assert old_volume != new_volume
    assert manifest(after, "ConfigMap")["metadata"]["name"] == new_volume
    assert (
        "num_batch_threads { value: 8 }"
        in manifest(after, "ConfigMap")["data"]["batching_config.txt"]
    )


def test_service_is_internal_by_default(shipped_plans: dict[str, StackPlan]) -> None:
    service = manifest(shipped_plans["dev"], "Service", "tfserving")
    assert service["metadata"]["annotations"] == {
        "networking.gke.io/load-balancer-type": "Internal",
        "pulumi.com/timeoutSeconds": "900",
    }
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [
        ("grpc", 8500),
        ("http", 8501),
    ]
    assert "loadBalancerSourceRanges" not in service["spec"]


def test_external_service_admits_only_the_allowlist(plan: PlanFn) -> None:
    result = plan(exposure="external", loadBalancerSourceRanges='["203.0.113.7/32"]')
    service = manifest(result, "Service", "tfserving")
    assert service["metadata"]["annotations"] == {"pulumi.com/timeoutSeconds": "900"}
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.7/32"]
    assert "external IPv4 address" in [line.item for line in result.design.cost.lines]


def test_network_policy_admits_only_the_serving_ports(shipped_plans: dict[str, StackPlan]) -> None:
    policy = manifest(shipped_plans["dev"], "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {"ports": [{"port": 8500, "protocol": "TCP"}, {"port": 8501, "protocol": "TCP"}]}
    ]
    assert policy["egress"] == []


def test_disruption_budget_never_blocks_a_drain(shipped_plans: dict[str, StackPlan]) -> None:
    pdb = manifest(shipped_plans["dev"], "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_cluster_is_zonal_hardened_and_destroyable(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    (cluster,) = resource_inputs(plan, "gcp:container/cluster:Cluster")
    assert cluster["location"] == "us-central1-a"
    assert cluster["deletionProtection"] is False
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "your-gcp-project.svc.id.goog"}
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["resourceLabels"]["experiment"] == "8vcpu-16gb-interop4"
    pool = serving_pool(plan)
    node = pool["nodeConfig"]
    assert (
        node["serviceAccount"]
        == "tfs-nodes-8vcpu-16gb-interop4@your-gcp-project.iam.gserviceaccount.com"
    )
    assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert node["shieldedInstanceConfig"]["enableIntegrityMonitoring"] is True
    assert node["metadata"] == {"disable-legacy-endpoints": "true"}
    assert pool["management"] == {"autoRepair": True, "autoUpgrade": True}
    assert pool["upgradeSettings"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert node["spot"] is False


def test_fixed_name_node_pools_are_deleted_before_their_replacement(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    pools = [r for r in plan.recording.resources if r.type == "gcp:container/nodePool:NodePool"]
    assert {r.name for r in pools} == {"cluster-serving", "cluster-load-generator"}
    # A spot toggle replaces the pool: created first, its successor would find the name taken.
    assert all(r.delete_before_replace and r.inputs["name"] for r in pools)


def test_experiment_label_can_be_pinned_so_switching_experiments_relabels_nothing(
    plan: PlanFn,
) -> None:
    pinned = [
        plan("sweep", experiment=name, experimentLabel="sweep")
        for name in ("4vcpu-8gb-interop2", "8vcpu-64gb-interop4-batch")
    ]
    for each in pinned:
        (cluster,) = resource_inputs(each, "gcp:container/cluster:Cluster")
        assert cluster["resourceLabels"]["experiment"] == "sweep"
        assert serving_pool(each)["nodeConfig"]["resourceLabels"]["experiment"] == "sweep"
        assert manifest(each, "Service", "tfserving")["metadata"]["labels"][
            "tfserving-gke.io/experiment"
        ] == ("sweep")
        assert each.settings.experiment != "sweep"
    default = plan("sweep", experiment="4vcpu-8gb-interop2")
    (cluster,) = resource_inputs(default, "gcp:container/cluster:Cluster")
    assert cluster["resourceLabels"]["experiment"] == "4vcpu-8gb-interop2"


def test_node_identity_is_least_privilege(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["dev"]
    roles = sorted(m["role"] for m in resource_inputs(plan, "gcp:projects/iAMMember:IAMMember"))
    assert roles == ["roles/container.defaultNodeServiceAccount"]
    (reader,) = resource_inputs(
        plan, "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
    )
    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["repository"] == "tfserving-dev"


def test_image_goes_to_artifact_registry_with_a_short_lived_token(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["dev"]
    image = serving_image(plan)
    assert image["imageName"].startswith("us-central1-docker.pkg.dev/your-gcp-project/")
    assert image["build"]["platform"] == "linux/amd64"
    assert not Path(image["build"]["context"]).is_absolute()
    assert image["registry"] == "[secret]"
    (repository,) = resource_inputs(plan, "gcp:artifactregistry/repository:Repository")
    assert repository["format"] == "DOCKER"
    policies = {p["id"]: p for p in repository["cleanupPolicies"]}
    assert policies["keep-recent"] == {
        "id": "keep-recent",
        "action": "KEEP",
        "mostRecentVersions": {"keepCount": 5},
    }
    # KEEP only exempts versions from DELETE rules: the rest must be deleted by a rule.
    assert policies["delete-older"] == {
        "id": "delete-older",
        "action": "DELETE",
        "condition": {"tagState": "ANY"},
    }
    assert repository["cleanupPolicyDryRun"] is False


def test_plan_json_has_the_documented_shape(
    shipped_plans: dict[str, StackPlan], tmp_path: Path
) -> None:
    target = write_plan(shipped_plans["8vcpu-64gb-interop4-batch"], tmp_path)
    data = json.loads((target / "plan.json").read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    assert list(data) == [
        "schema",
        "stack",
        "project",
        "experiment",
        "settings",
        "summary",
        "cost",
        "warnings",
        "resources",
        "outputs",
        "manifests",
        "placeholders",
    ]
    assert data["settings"]["enableBatching"] == {
        "value": True,
        "source": "preset 8vcpu-64gb-interop4-batch",
    }
    assert data["settings"]["zone"] == {"value": "us-central1-a", "source": "default"}
    assert data["summary"]["batching"]["num_batch_threads"] == 2
    assert data["cost"]["usd_per_month"] == round(data["cost"]["usd_per_hour"] * 730, 2)
    assert sorted(data["manifests"]) == sorted(p.name for p in target.glob("*.yaml"))
    assert {r["type"] for r in data["resources"]} >= {
        "gcp:container/cluster:Cluster",
        "kubernetes:apps/v1:Deployment",
    }
    assert any("numBatchThreads 2 is below the pod's 8 CPUs" in w for w in data["warnings"])


def test_text_plan_shows_summary_cost_and_outputs(shipped_plans: dict[str, StackPlan]) -> None:
    text = describe(shipped_plans["dev"])
    assert "machine type      e2-medium (2 vCPU, 4 GiB)" in text
    assert "serving pods      1 (1 per node), each requesting 140m CPU / 1860 MiB" in text
    assert "GKE cluster management fee" in text
    assert (
        "modelStatusCurl: curl -sS http://LOAD_BALANCER_IP:8501/v1/models/tiny_classifier" in text
    )
    assert "kubeconfig: [secret]" in text


def test_matrix_lists_every_stack_with_its_cost(shipped_plans: dict[str, StackPlan]) -> None:
    table = matrix(list(shipped_plans.values()))
    lines = table.splitlines()
    assert len(lines) == 2 + len(shipped_plans)
    row = next(line for line in lines if line.startswith("| 8vcpu-16gb-interop4 "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:4] == ["e2-custom-8-16384", "2", "2 (1/node)"]
    assert cells[-1] == f"{shipped_plans['8vcpu-16gb-interop4'].design.cost.usd_per_month:.2f}"


def test_repository_waits_for_the_artifact_registry_api(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["dev"]
    (repository,) = [
        r
        for r in plan.recording.resources
        if r.type == "gcp:artifactregistry/repository:Repository"
    ]
    assert any("artifactregistry" in urn for urn in repository.dependencies)


def test_destroy_removes_the_load_balancer_before_the_cluster(
    shipped_plans: dict[str, StackPlan],
) -> None:
    # Pulumi deletes dependents first: the Service is on the Kubernetes provider, which
    # depends on the cluster and node pool, so the Service (and its forwarding rule) goes
    # before them.
    plan = shipped_plans["dev"]
    by_type = {r.type: r for r in plan.recording.resources}
    service = by_type["kubernetes:core/v1:Service"]
    provider = by_type["pulumi:providers:kubernetes"]
    assert service.provider == provider.urn
    assert by_type["gcp:container/cluster:Cluster"].urn in provider.dependencies
    assert by_type["gcp:container/nodePool:NodePool"].urn in provider.dependencies


def test_same_archive_same_image_inputs_different_archive_different_ones(
    plan: PlanFn, tmp_path: Path
) -> None:
    one = tar_gz(tiny_model_files("m/1/"))
    first = write(tmp_path / "a" / "model.tar.gz", one)
    again = write(tmp_path / "b" / "model.tar.gz", one)
    other = write(tmp_path / "c" / "model.tar.gz", tar_gz(tiny_model_files("m/2/")))

    def image_inputs(archive: Path) -> tuple[object, object]:
        # Named alike: left unnamed, each would be named from its folder (a, b, c).
        result = plan(modelSource=str(archive), modelName="tiny")
        return serving_image(result), container(result)["image"]

    assert image_inputs(first) == image_inputs(again)
    assert image_inputs(first) != image_inputs(other)


def test_unresolved_github_source_plans_with_placeholders_and_says_so(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["8vcpu-16gb-interop4"]
    image = serving_image(plan)
    assert image["imageName"].endswith("/resnet50:resnet50-unresolved-tfs2.20.0-cpu")
    assert any("is not resolved: the offline plan makes no network" in w for w in plan.warnings)
    assert plan.recording.stack_outputs["modelSha256"] == ""


def test_outputs_give_endpoints_digest_machine_and_cost(
    shipped_plans: dict[str, StackPlan],
) -> None:
    outputs = shipped_plans["8vcpu-64gb-interop4-batch"].recording.stack_outputs
    assert outputs["restEndpoint"] == "http://LOAD_BALANCER_IP:8501"
    assert outputs["grpcEndpoint"] == "LOAD_BALANCER_IP:8500"
    assert outputs["modelStatusCurl"] == "curl -sS http://LOAD_BALANCER_IP:8501/v1/models/resnet50"
    assert outputs["machineType"] == "e2-highmem-8"
    assert outputs["costUsdPerMonth"] == 621.58
    assert outputs["serving"]["batching"]["num_batch_threads"] == 2
    assert outputs["kubeconfig"] == "[secret]"
    assert "@sha256:" in outputs["imageDigest"]


def test_image_is_pushed_only_once_nodes_may_pull_it(shipped_plans: dict[str, StackPlan]) -> None:
    by_type = {r.type: r for r in shipped_plans["dev"].recording.resources}
    reader = by_type["gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"]
    assert reader.urn in by_type["docker:index/image:Image"].dependencies
    cluster = by_type["gcp:container/cluster:Cluster"].inputs
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["ipAllocationPolicy"] == {"stackType": "IPV4"}


def test_program_also_runs_as_a_preview_with_unknown_outputs(
    shipped_plans: dict[str, StackPlan],
) -> None:
    preview = plan_stack("dev", preview=True)
    declared = sorted((r.type, r.name) for r in preview.recording.resources)
    assert declared == sorted((r.type, r.name) for r in shipped_plans["dev"].recording.resources)


def test_a_fresh_project_enables_every_api_before_it_is_used(
    shipped_plans: dict[str, StackPlan],
) -> None:
    plan = shipped_plans["dev"]
    apis = {
        r.inputs["service"]: r.urn
        for r in plan.recording.resources
        if r.type == "gcp:projects/service:Service"
    }
    assert set(apis) == {
        "container.googleapis.com",
        "artifactregistry.googleapis.com",
        "iam.googleapis.com",
        "cloudresourcemanager.googleapis.com",
    }
    by_type = {r.type: r for r in plan.recording.resources}
    account = by_type["gcp:serviceaccount/account:Account"]
    binding = by_type["gcp:projects/iAMMember:IAMMember"]
    assert apis["iam.googleapis.com"] in account.dependencies
    assert apis["cloudresourcemanager.googleapis.com"] in binding.dependencies
    for api in apis.values():
        assert api in by_type["gcp:container/cluster:Cluster"].dependencies


def test_destroy_succeeds_when_the_cluster_is_already_gone(
    shipped_plans: dict[str, StackPlan],
) -> None:
    (provider,) = resource_inputs(shipped_plans["dev"], "pulumi:providers:kubernetes")
    assert provider["deleteUnreachable"] == "true"


def test_registry_token_is_read_right_before_the_build(shipped_plans: dict[str, StackPlan]) -> None:
    plan = shipped_plans["dev"]
    reader = next(
        index
        for index, r in enumerate(plan.recording.resources)
        if r.type == "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
    )
    (registered_before,) = [
        count
        for token, count in plan.recording.invokes
        if token == "gcp:organizations/getClientConfig:getClientConfig"
    ]
    assert registered_before > reader


def test_plan_all_plans_every_good_stack_and_names_each_broken_one(tmp_path: Path) -> None:
    broken = ROOT / "Pulumi.plan-all-broken.yaml"
    broken.write_text("config:\n  tfserving-gke:oneDnn: nope\n", encoding="utf-8")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "infra", "plan", "--all", "--out", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    finally:
        broken.unlink()
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "error: stack plan-all-broken: oneDnn: 'nope' is not allowed" in run.stderr
    assert re.search(r"1 of \d+ stacks did not plan", run.stderr)
    # The good ones are planned and written all the same.
    assert (tmp_path / "dev" / "plan.json").is_file()
    assert "8vcpu-64gb-interop8-batch" in run.stdout


def test_a_pod_guaranteed_a_sliver_of_its_threads_cpu_is_warned_about(
    shipped_plans: dict[str, StackPlan],
) -> None:
    # dev: e2-medium, a pod of 140m CPU running 2 intra-op threads.
    said = [w for w in shipped_plans["dev"].design.warnings if "intra-op and" in w]
    assert said and said[0].startswith("each serving pod requests 140m CPU but runs 2 intra-op")
    for stack in REFERENCE_EXPERIMENTS:
        assert not any(
            "of a core per intra-op thread" in w for w in shipped_plans[stack].design.warnings
        )


def _reversed_keys(value: object) -> object:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_the_same_plan_writes_the_same_bytes(
    shipped_plans: dict[str, StackPlan], tmp_path: Path
) -> None:
    """Registrations arrive in whatever order the program's outputs resolve, and the mocks
    hand inputs over in whatever key order: manifest file names and plan.json do not move
    with them (pull-request diffs and refactors compare them byte for byte)."""
    plan = shipped_plans["8vcpu-16gb-interop2"]  # with a load generator: two NetworkPolicies
    shuffled = StackPlan(
        plan.stack,
        plan.settings,
        plan.design,
        Recording(
            [
                dataclasses.replace(r, inputs=_reversed_keys(r.inputs))  # type: ignore[arg-type]
                for r in reversed(plan.recording.resources)
            ],
            plan.recording.stack_outputs,
            plan.recording.invokes,
        ),
        plan.warnings,
    )
    first, second = write_plan(plan, tmp_path / "a"), write_plan(shuffled, tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert "07-networkpolicy-tfserving.yaml" in names
    assert "08-networkpolicy-tfserving-load-generator.yaml" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
