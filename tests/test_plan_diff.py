"""Plan diffs: experiment against experiment, and git ref against git ref."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra.plan.diff import diff_plans, render_markdown, without_stack_name
from infra.plan.render import plan_json
from infra.plan.run import StackPlan
from tests.conftest import ROOT, PlanFn


def test_same_plan_gives_no_changes(shipped_plans: dict[str, StackPlan]) -> None:
    document = plan_json(shipped_plans["dev"])
    diff = diff_plans(document, document, "main", "head")
    assert not diff.changed
    assert render_markdown("t", {"dev": diff}) == "## t\n\nNo changes (1 stack compared).\n"


def test_experiment_vs_experiment_shows_settings_resources_and_cost(
    shipped_plans: dict[str, StackPlan],
) -> None:
    before = without_stack_name(
        plan_json(shipped_plans["8vcpu-16gb-interop4"]), "8vcpu-16gb-interop4"
    )
    after = without_stack_name(
        plan_json(shipped_plans["8vcpu-64gb-interop4"]), "8vcpu-64gb-interop4"
    )
    diff = diff_plans(before, after, "16gb", "64gb")
    # machineType is empty in both, but takes effect as another type.
    assert [c.key for c in diff.settings] == ["machineType", "nodeMemoryGb"]
    pools = [r for r in diff.resources if r.resource.endswith("NodePool::cluster-serving")]
    assert pools and "nodeConfig.machineType" in pools[0].fields
    text = render_markdown("compare", {"16gb → 64gb": diff})
    assert (
        "| `nodeMemoryGb` | 16 (preset experiments/8vcpu-16gb-interop4.yaml) | 64 (preset "
        "experiments/8vcpu-64gb-interop4.yaml) |" in text
    )
    assert (
        '| `machineType` | "", in effect "e2-custom-8-16384" (default in Pulumi.yaml) | "", in '
        'effect "e2-highmem-8" (default in Pulumi.yaml) |' in text
    )
    assert "432.86 → 621.58 (+188.72)" in text
    assert re.search(r"^- +memory: 12509Mi$", text, re.M)
    assert re.search(r"^\+ +memory: 58712Mi$", text, re.M)
    changed = {r.resource for r in diff.resources}
    assert changed == {
        "gcp:container/nodePool:NodePool::cluster-serving",
        "kubernetes:apps/v1:Deployment::serving-deployment",
    }


def test_a_settings_change_shows_the_setting_affected_resources_and_cost(plan: PlanFn) -> None:
    before = plan_json(plan("dev"))
    after = plan_json(plan("dev", nodeCount=2, replicas=2))
    diff = diff_plans(before, after, "before", "after")
    assert {(c.key, c.after) for c in diff.settings} == {
        ("nodeCount", "2 (Pulumi.dev.yaml)"),
        ("replicas", "2 (Pulumi.dev.yaml)"),
    }
    changed = {r.resource: r.fields for r in diff.resources}
    assert changed["gcp:container/nodePool:NodePool::cluster-serving"] == ("nodeCount",)
    assert changed["kubernetes:apps/v1:Deployment::serving-deployment"] == ("spec.replicas",)
    assert diff.cost_after and diff.cost_before
    assert diff.cost_after["usd_per_hour"] > diff.cost_before["usd_per_hour"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_ref_against_ref_in_a_repository(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(ROOT), str(clone))
    command = [
        sys.executable,
        "-m",
        "infra",
        "plan",
        "--diff",
        "HEAD",
        "dev",
        "--changed-stacks",
        str(tmp_path / "changed.json"),
    ]
    unchanged = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "No changes (1 stack compared)." in unchanged.stdout
    assert (tmp_path / "changed.json").read_text() == "[]\n"

    stack_file = clone / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  tfserving-gke:diskSizeGb: 50\n")
    git(clone, "commit", "--quiet", "-am", "bigger disks")
    command[command.index("HEAD")] = "HEAD~1"
    changed = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
    assert changed.returncode == 0, changed.stderr
    row = "| `diskSizeGb` | 30 (preset experiments/dev.yaml) | 50 (Pulumi.dev.yaml) |"
    assert row in changed.stdout
    assert (
        "gcp:container/nodePool:NodePool::cluster-serving (nodeConfig.diskSizeGb)" in changed.stdout
    )
    # 20 GB more of pd-standard at 0.04 USD per GB-month.
    assert "107.13 → 107.93 (+0.80)" in changed.stdout
    assert (tmp_path / "changed.json").read_text() == '["dev"]\n'
    shutil.rmtree(clone)


def test_bad_ref_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra", "plan", "--diff", "no-such-ref", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read git ref 'no-such-ref'")
