"""Names and labels derived from stack, experiment and model names: valid everywhere they
go, stable for ordinary names, and never shared by two stacks."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from infra.design.experiment import design_experiment
from infra.design.manifests import render_manifests
from infra.design.naming import (
    cluster_name,
    cost_labels,
    image_repository_name,
    label_value,
    node_service_account_id,
    repository_id,
)
from infra.design.settings import resolve_settings

# GKE cluster names; service account ids; Artifact Registry repository ids.
CLUSTER = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
ACCOUNT = re.compile(r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$")
REPOSITORY = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# GCE label values (Kubernetes node labels must also be alphanumeric at both ends).
GCE_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
K8S_LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DOCKER_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")

AWKWARD_STACKS = [
    "dev",
    "8vcpu-16gb-interop4",
    "my_stack",
    "my-stack",
    "My-Stack",
    "x" * 62 + "-y",
    "experiment-" + "a" * 80,
    "a" * 57 + "-" + "b" * 42,
    "___",
    "9lives",
]


@pytest.mark.parametrize("stack", AWKWARD_STACKS)
def test_every_derived_name_and_label_is_valid(stack: str) -> None:
    assert CLUSTER.match(cluster_name(stack)), cluster_name(stack)
    assert ACCOUNT.match(node_service_account_id(stack)), node_service_account_id(stack)
    assert REPOSITORY.match(repository_id(stack)), repository_id(stack)
    for value in cost_labels("tfserving-gke", stack, stack).values():
        assert GCE_LABEL.match(value) and K8S_LABEL.match(value) and len(value) <= 63, value


def test_ordinary_stack_names_are_used_as_written() -> None:
    assert cluster_name("8vcpu-16gb-interop4") == "tfs-8vcpu-16gb-interop4"
    assert node_service_account_id("dev") == "tfs-nodes-dev"
    assert repository_id("dev") == "tfserving-dev"
    assert label_value("8vcpu-64gb-interop4-batch") == "8vcpu-64gb-interop4-batch"


def test_stacks_whose_slugs_collide_get_different_names() -> None:
    stacks = ["my_stack", "my-stack", "My-Stack", "my.stack"]
    for derive in (cluster_name, node_service_account_id, repository_id, label_value):
        names = [derive(stack) for stack in stacks]
        assert len(set(names)) == len(names), (derive.__name__, names)


def test_a_cut_label_never_ends_in_a_separator() -> None:
    value = label_value("x" * 62 + "-y" + "z" * 10)
    assert len(value) == 63 and value[-1].isalnum() and value[-8].isalnum()


@pytest.mark.parametrize(
    ("model_name", "repository"),
    [
        ("tiny_classifier", "tiny_classifier"),
        ("ResNet50", "resnet50"),
        ("resnet-", "resnet"),
        ("my..model", "my-model"),
        ("a__b", "a__b"),
        ("v1.2-model", "v1.2-model"),
    ],
)
def test_image_repository_names_are_valid_docker_names(model_name: str, repository: str) -> None:
    assert image_repository_name(model_name) == repository
    assert DOCKER_COMPONENT.match(repository)


def test_manifests_of_an_odd_stack_name_pass_strict_kubernetes_schemas() -> None:
    stack = "Experiment_" + "A" * 70 + "-"
    settings = resolve_settings(
        stack=stack,
        gcp_project="my-project",
        config={"experiment": "dev"},
        explicit_keys={"experiment"},
    )
    manifests = render_manifests(design_experiment(settings), "registry/image@sha256:" + "0" * 64)
    for _, obj in manifests.items():
        kubernetes_validate.validate(obj, "1.34.0", strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == label_value(stack)
