"""Shared fixtures: each shipped stack planned once per test session."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.design.stack_config import CACHE_ENV
from infra.plan.render import kubernetes_manifests
from infra.plan.run import StackPlan, known_stacks, plan_stack

PlanFn = Callable[..., StackPlan]


@pytest.fixture(autouse=True, scope="session")
def isolated_model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Plans and fetches in tests never see (or fill) the developer's model cache."""
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(scope="session")
def shipped_plans() -> dict[str, StackPlan]:
    """Every stack and preset the repository ships, planned under the SDK mocks."""
    return {stack: plan_stack(stack) for stack in known_stacks()}


@pytest.fixture
def plan() -> PlanFn:
    """Plan a stack with extra stack config, as `pulumi config set` would give it."""

    def run(stack: str = "dev", **overrides: Any) -> StackPlan:
        return plan_stack(stack, overrides)

    return run


def manifest(plan: StackPlan, kind: str, name: str | None = None) -> dict[str, Any]:
    """The one declared Kubernetes object of this kind (and name, where several are)."""
    found = [
        obj
        for _, obj in kubernetes_manifests(plan)
        if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def resource_inputs(plan: StackPlan, type_: str) -> list[dict[str, Any]]:
    return [r.inputs for r in plan.recording.resources if r.type == type_]


def declared(plan: StackPlan, type_: str, name: str) -> dict[str, Any]:
    """The inputs of the one resource of this type and Pulumi name."""
    (inputs,) = [r.inputs for r in plan.recording.resources if (r.type, r.name) == (type_, name)]
    return inputs


def serving_pool(plan: StackPlan) -> dict[str, Any]:
    return declared(plan, "gcp:container/nodePool:NodePool", "cluster-serving")


def serving_image(plan: StackPlan) -> dict[str, Any]:
    return declared(plan, "docker:index/image:Image", "image-serving")


def container(plan: StackPlan) -> dict[str, Any]:
    deployment = manifest(plan, "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]


ROOT = Path(__file__).resolve().parent.parent
