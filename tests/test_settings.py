"""Settings layers (default, preset, stack), provenance, and errors users see."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pulumi
import pytest

from infra.design.experiment import design_experiment
from infra.design.settings import SECRET_SETTINGS, load_declarations, resolve_settings, snake_case
from infra.design.stack_config import settings_from_pulumi
from infra.inputs.errors import ConfigError
from infra.plan.mocks import PlanMocks
from tests.conftest import ROOT


def resolve(stack: str = "scratch", **config: Any) -> Any:
    return resolve_settings(
        stack=stack, gcp_project="my-project", config=config, explicit_keys=set(config)
    )


def test_every_declared_setting_is_a_typed_field() -> None:
    settings = resolve()
    for key, decl in load_declarations().items():
        if key in SECRET_SETTINGS:
            assert not hasattr(settings, snake_case(key)), "secrets stay out of Settings"
            continue
        value = getattr(settings, snake_case(key))
        expected = {"string": str, "integer": int, "boolean": bool, "array": tuple}[decl.type]
        assert isinstance(value, expected), key
        assert decl.description, key


def test_stack_named_like_a_preset_uses_it() -> None:
    settings = resolve("8vcpu-16gb-interop4")
    assert settings.experiment == "8vcpu-16gb-interop4"
    assert (settings.node_vcpus, settings.node_memory_gb, settings.node_count) == (8, 16, 2)
    assert settings.sources["nodeCount"] == "preset 8vcpu-16gb-interop4"
    assert settings.sources["zone"] == "default"


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("github:me/my-model@v3#saved_model.tar.gz", "my-model"),  # a generic asset name
        ("github:acme/detector@v1#yolo_small.tar.gz", "yolo_small"),
        ("https://example.com/models/bert_base.tar.gz", "bert_base"),
        ("exports/sentiment.zip", "sentiment"),
    ],
)
def test_a_stack_bringing_its_own_model_serves_it_under_its_sources_name(
    source: str, name: str
) -> None:
    # Not as the default's tiny_classifier, nor as a preset's resnet50.
    for stack in ("mine", "8vcpu-16gb-interop4"):
        settings = resolve(stack, modelSource=source)
        assert settings.model_name == name
        assert settings.sources["modelName"] == "modelSource"
        assert any(
            w.startswith(f"modelName is not set: the model from {source} is served as {name!r}")
            for w in settings.warnings
        )
    named = resolve("8vcpu-16gb-interop4", modelSource=source, modelName="mine")
    assert named.model_name == "mine" and not any("modelName" in w for w in named.warnings)


def test_stack_config_overrides_the_preset_even_with_the_base_default() -> None:
    # nodeCount 1 is also the declared default: the stack file setting it must still win.
    settings = resolve("8vcpu-16gb-interop4", nodeCount=1, replicas=1)
    assert settings.node_count == 1
    assert settings.sources["nodeCount"] == "stack"


def test_a_value_differing_from_the_default_counts_as_set_by_the_stack() -> None:
    settings = resolve_settings(
        stack="8vcpu-16gb-interop4",
        gcp_project="my-project",
        config={"nodeCount": "3", "zone": "us-central1-a"},
        explicit_keys=set(),
    )
    assert (settings.node_count, settings.sources["nodeCount"]) == (3, "stack")
    assert settings.sources["zone"] == "default"


def test_experiment_setting_picks_a_preset_for_any_stack_name() -> None:
    settings = resolve("my-run", experiment="4vcpu-8gb-interop2")
    assert settings.node_vcpus == 4
    assert settings.tensorflow_inter_op_parallelism == 2


def test_experiment_none_uses_no_preset() -> None:
    settings = resolve("8vcpu-16gb-interop4", experiment="none")
    assert settings.node_vcpus == 2
    assert settings.experiment == "none"


def test_pulumi_strings_are_coerced_to_declared_types() -> None:
    settings = resolve(
        nodeCount="2", spot="true", loadBalancerSourceRanges='["10.0.0.0/8"]', exposure="external"
    )
    assert settings.node_count == 2
    assert settings.spot is True
    assert settings.load_balancer_source_ranges == ("10.0.0.0/8",)


def test_region_comes_from_the_zone() -> None:
    settings = resolve(zone="europe-west4-b")
    assert settings.region == "europe-west4"
    assert settings.cluster_location == "europe-west4-b"
    assert resolve(zone="europe-west4-b", regional=True).cluster_location == "europe-west4"


BAD_SETTINGS = [
    ({"nodeCount": "two"}, "nodeCount: expected a whole number, got 'two'."),
    ({"nodeCount": 0}, "nodeCount: 0 is out of range; allowed 1 to 100."),
    ({"spot": "maybe"}, "spot: expected true or false, got 'maybe'."),
    ({"nodeVcpus": 3, "nodeMemoryGb": 6}, "nodeVcpus/nodeMemoryGb: 3 vCPUs is not an E2 shape"),
    ({"machineType": "n1-standard-4"}, "machineType: 'n1-standard-4': N1 is not supported"),
    ({"podsPerNode": 4}, "podsPerNode: 4 pods do not fit on e2-custom-2-4096"),
    ({"replicas": 3}, "replicas: 3 pods cannot be scheduled: 1 node(s) x podsPerNode 1 = 1 slots"),
    (
        {"zone": "us-central1"},
        "zone: 'us-central1' is not a zone name; expected e.g. us-central1-a.",
    ),
    (
        {"namespace": "kube-system"},
        "namespace: 'kube-system' belongs to Kubernetes or GKE (default, gmp-system, gmp-public "
        "and names starting kube- or gke-)",
    ),
    ({"namespace": "default"}, "namespace: 'default' belongs to Kubernetes or GKE"),
    (
        {"enableBatching": True, "maxExecutionBatchSize": 256},
        "maxExecutionBatchSize: 256 is above maxBatchSize 128; TF Serving refuses to load the "
        "model then",
    ),
    ({"maxExecutionBatchSize": -1}, "maxExecutionBatchSize: -1 is out of range"),
    ({"grpcMaxThreads": -4}, "grpcMaxThreads: -4 is out of range"),
    (
        {"releaseChannel": "beta"},
        "releaseChannel: 'beta' is not allowed; use one of RAPID, REGULAR",
    ),
    (
        {"releaseChannel": "REGUALR"},
        "releaseChannel: 'REGUALR' is not allowed; use one of RAPID, REGULAR, STABLE, "
        "EXTENDED. Did you mean REGULAR?",
    ),
    ({"diskType": "hyperdisk"}, "diskType: 'hyperdisk' is not allowed; use one of pd-standard"),
    ({"diskSizeGb": 5}, "diskSizeGb: 5 is out of range; allowed 10 to 65536."),
    ({"tfServingVersion": "latest"}, "tfServingVersion: 'latest' is not a pinned release"),
    ({"modelName": "my model"}, "modelName: 'my model' cannot name a model in TF Serving URLs"),
    ({"namespace": "TF_Serving"}, "namespace: 'TF_Serving' is not a Kubernetes namespace name"),
    ({"experiment": "9vcpu"}, "experiment: no preset named '9vcpu'. Presets: 2vcpu-4gb-interop2"),
    ({"exposure": "public"}, "exposure: 'public' is not allowed; use one of internal, external."),
    (
        {"exposure": "external"},
        "loadBalancerSourceRanges: is empty but exposure is external, which would open gRPC "
        "and REST to the whole internet.",
    ),
    (
        {"loadBalancerSourceRanges": '["203.0.113.7/24"]'},
        "loadBalancerSourceRanges: '203.0.113.7/24' is not a CIDR range",
    ),
    (
        {"enableBatching": True, "allowedBatchSizes": "[8, 4, 128]"},
        "allowedBatchSizes: [8, 4, 128] must be strictly increasing",
    ),
    (
        {"enableBatching": True, "allowedBatchSizes": "[8, 64]"},
        "allowedBatchSizes: the last entry (64) must equal maxBatchSize (128)",
    ),
    ({"maxBatchSize": 0}, "maxBatchSize: 0 is out of range; allowed 1 to 1000000."),
    ({"tensorflowInterOpParallelism": -1}, "tensorflowInterOpParallelism: -1 is out of range"),
    ({"allowedBatchSizes": "8,16"}, "allowedBatchSizes: expected a list"),
]


@pytest.mark.parametrize(("config", "message"), BAD_SETTINGS)
def test_bad_settings_fail_before_any_resource_with_a_clear_message(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        design_experiment(resolve(**config))
    assert str(caught.value).startswith(message)


def test_missing_gcp_project_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError, match=r"gcp:project: is not set. Run `pulumi config set"):
        resolve_settings(stack="dev", gcp_project="", config={}, explicit_keys=set())


def test_unknown_setting_lists_the_real_ones() -> None:
    with pytest.raises(ConfigError, match="nodeCpus: is not a setting of this project"):
        resolve(nodeCpus=4)


@pytest.mark.parametrize(
    ("key", "hint"),
    [("nodeCout", "nodeCount"), ("nodecount", "nodeCount"), ("machinetype", "machineType")],
)
def test_a_misspelt_setting_gets_a_hint(key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve("scratch", **{key: 2})
    assert str(caught.value).startswith(
        f"{key}: is not a setting of this project. Did you mean {hint}? Settings: "
    )


def test_a_setting_far_from_any_other_gets_no_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(colour="blue")
    assert "Did you mean" not in str(caught.value)


def test_a_misspelt_preset_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"no preset named '8vcpu-16gb-interop5'\. Did you mean"):
        resolve(experiment="8vcpu-16gb-interop5")


def test_the_deployed_program_refuses_a_misspelt_setting_too() -> None:
    # Under the CLI, the program reads its settings with pulumi.Config; keys Pulumi.yaml does
    # not declare must not be dropped silently.
    pulumi.runtime.set_mocks(PlanMocks("p"), project="tfserving-gke", stack="scratch")
    pulumi.runtime.set_all_config(
        {"tfserving-gke:nodeCout": "2", "tfserving-gke:zone": "us-east1-b", "gcp:project": "p"}
    )
    with pytest.raises(ConfigError) as caught:
        settings_from_pulumi()
    assert str(caught.value).startswith(
        "nodeCout: is not a setting of this project. Did you mean nodeCount?"
    )


def test_a_model_name_docker_refuses_is_pushed_under_a_derived_name() -> None:
    settings = resolve(modelName="resnet-")
    assert any(
        "modelName 'resnet-' is not a valid image repository name" in w
        and "pushed as 'resnet'" in w
        for w in settings.warnings
    )
    assert not any("image repository" in w for w in resolve(modelName="ResNet_50").warnings)


def test_batching_values_without_batching_warn() -> None:
    settings = resolve(maxBatchSize=64)
    assert any(
        "enableBatching is false, so maxBatchSize has no effect; set enableBatching true to "
        "use it." in w
        for w in settings.warnings
    )


def test_world_open_source_range_is_taken_as_written_with_a_warning() -> None:
    settings = resolve(exposure="external", loadBalancerSourceRanges='["0.0.0.0/0"]')
    assert any("admits the whole internet" in w for w in settings.warnings)


def test_plan_command_reports_a_bad_setting_without_a_traceback(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra", "plan", "no-such-stack"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: stack no-such-stack: stack: 'no-such-stack' has")
    assert "Traceback" not in result.stderr
