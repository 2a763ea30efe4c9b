"""The deployer's roles in the documented one-time setup grant every permission the
program's resources and the commands' API calls need (infra/data/iam.yaml), with no role
to spare."""

from __future__ import annotations

import re

import pytest

from infra.data import load
from infra.plan.run import StackPlan, plan_stack
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def every_plan(shipped_plans: dict[str, StackPlan]) -> list[StackPlan]:
    """Every shipped stack, and a production stack as `promote` writes it (autoscaling,
    metrics and its dashboard)."""
    production = plan_stack(
        "8vcpu-16gb-interop4", {"autoscaling": True, "maxReplicas": 4, "metrics": True}
    )
    return [*shipped_plans.values(), production]


def readme_roles() -> list[str]:
    """The roles the documented one-time setup (docs/workflows.md) grants the deployer (its
    `for role in` loop)."""
    text = (ROOT / "docs" / "workflows.md").read_text(encoding="utf-8")
    loop = re.search(r"for role in (.*?); do", text, re.DOTALL)
    assert loop, "the one-time setup's role loop is gone"
    return loop.group(1).replace("\\", " ").split()


def grants(role_permissions: list[str], permission: str) -> bool:
    return any(
        permission == granted or (granted.endswith(".*") and permission.startswith(granted[:-1]))
        for granted in role_permissions
    )


def needed(plans: list[StackPlan]) -> dict[str, str]:
    """permission -> what needs it, from the resource types the plans declare and the
    commands' calls."""
    data = load("iam")
    found: dict[str, str] = {}
    types = {r.type for plan in plans for r in plan.recording.resources}
    unknown = types - set(data["resources"]) - set(data["declare_nothing"])
    assert not unknown, f"resource types without their permissions in iam.yaml: {unknown}"
    for type_ in sorted(types & set(data["resources"])):
        for permission in data["resources"][type_]:
            found.setdefault(permission, type_)
    for call, permissions in data["calls"].items():
        for permission in permissions:
            found.setdefault(permission, call)
    return found


def test_the_readme_roles_grant_what_every_plan_and_call_needs(
    every_plan: list[StackPlan],
) -> None:
    plans = every_plan
    roles = load("iam")["roles"]
    listed = readme_roles()
    assert set(listed) <= set(roles), f"roles without their permissions: {set(listed) - set(roles)}"
    missing = {
        permission: why
        for permission, why in needed(plans).items()
        if not any(grants(roles[role], permission) for role in listed)
    }
    assert missing == {}
    types = {r.type for r in plans[-1].recording.resources}
    assert "gcp:monitoring/dashboard:Dashboard" in types


def test_no_role_is_granted_for_nothing(every_plan: list[StackPlan]) -> None:
    permissions = needed(every_plan)
    roles = load("iam")["roles"]
    listed = readme_roles()
    for role in listed:
        others = [r for r in listed if r != role]
        only_here = [
            p
            for p in permissions
            if grants(roles[role], p) and not any(grants(roles[o], p) for o in others)
        ]
        assert only_here, f"{role} grants nothing the other roles do not"


def test_a_role_list_without_the_monitoring_role_misses_the_dashboard() -> None:
    roles = load("iam")["roles"]
    listed = [r for r in readme_roles() if r != "roles/monitoring.dashboardEditor"]
    assert not any(grants(roles[r], "monitoring.dashboards.create") for r in listed)
