"""GitHub Actions workflows: valid under the workflow JSON schema, actions pinned, minimal
permissions, keyless GCP auth, and shell steps clean under shellcheck."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_name, step)
        for job_name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
    ]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed in this environment"
    return found


def test_workflows_exist() -> None:
    names = {path.stem for path in WORKFLOWS}
    assert names == {
        "ci", "pr-plan", "deploy", "destroy", "cleanup-expired", "sweep", "sweep-teardown",
    }  # fmt: skip


def test_workflows_are_valid_under_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  a:\n    steps: []\n", encoding="utf-8")
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_actions_are_pinned_to_a_commit_with_its_version_said(path: Path) -> None:
    # Whoever can move a tag runs code with the deployer's token: a full commit hash cannot
    # be moved. The version it is stays in a comment, which Dependabot keeps current.
    text = path.read_text(encoding="utf-8")
    for _, step in steps(load(path)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            assert re.search(rf"uses: {re.escape(step['uses'])} # v\d+\.\d+\.\d+\n", text)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_checkouts_do_not_keep_the_token(path: Path) -> None:
    # None of these jobs pushes: a token left in .git/config could only leak (to a later
    # step, or in an uploaded artifact).
    for _, step in steps(load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_dependabot_keeps_the_actions_and_requirements_current() -> None:
    config = load(ROOT / ".github" / "dependabot.yml")
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert ecosystems == {"github-actions", "pip"}


def zizmor(target: Path) -> subprocess.CompletedProcess[str]:
    """zizmor, offline, reporting findings of medium severity or above (exit 0: none)."""
    binary = BIN.parent / "scan" / "bin" / "zizmor"
    assert binary.is_file(), f"{binary} is missing: run `make test`, which installs it"
    return subprocess.run(
        [str(binary), "--offline", "--min-severity", "medium", str(target)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    result = zizmor(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_flags_a_movable_tag_and_a_kept_token(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "x.yml").write_text(
        "name: x\non: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n",
        encoding="utf-8",
    )
    result = zizmor(tmp_path)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout and "artipacked" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_permissions_are_empty_by_default_and_granted_per_job(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must state its permissions"
        assert "write-all" not in str(job["permissions"])
        granted = {k for k, v in (job["permissions"] or {}).items() if v == "write"}
        assert set(job["permissions"] or {}) <= {"contents", "id-token", "pull-requests", "actions"}
        assert granted <= {"id-token", "pull-requests"}, (name, granted)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_gcp_auth_is_keyless(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "credentials_json" not in text
    for job_name, step in steps(load(path)):
        if step.get("uses", "").startswith("google-github-actions/auth@"):
            assert set(step["with"]) == {"workload_identity_provider", "service_account"}
            job = load(path)["jobs"][job_name]
            assert job["permissions"].get("id-token") == "write"


def run_scripts() -> list[tuple[str, str]]:
    scripts = []
    for path in WORKFLOWS:
        for job_name, step in steps(load(path)):
            if "run" in step:
                scripts.append((f"{path.stem}/{job_name}/{step.get('name', '?')}", step["run"]))
    return scripts


@pytest.mark.parametrize(("where", "script"), run_scripts(), ids=[w for w, _ in run_scripts()])
def test_shell_steps_are_clean_under_shellcheck(tmp_path: Path, where: str, script: str) -> None:
    # Expressions inside scripts invite injection; values come in through env instead.
    assert "${{" not in script, f"{where}: pass values through env, not ${{{{ }}}}"
    path = tmp_path / "step.sh"
    # GitHub runs `run:` steps with bash -e -o pipefail.
    path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + script, encoding="utf-8")
    result = subprocess.run(
        [tool("shellcheck"), "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_shellcheck_flags_an_unquoted_variable(tmp_path: Path) -> None:
    path = tmp_path / "bad.sh"
    path.write_text("#!/usr/bin/env bash\nrm -rf $DIR/*\n", encoding="utf-8")
    result = subprocess.run([tool("shellcheck"), str(path)], capture_output=True, check=False)
    assert result.returncode != 0


def test_deploys_never_overlap_on_a_stack() -> None:
    for name in ("deploy", "destroy"):
        job = next(
            iter(
                j
                for j in load(ROOT / ".github/workflows" / f"{name}.yml")["jobs"].values()
                if "concurrency" in j
            )
        )
        assert job["concurrency"]["cancel-in-progress"] is False
        assert "pulumi-stack-" in job["concurrency"]["group"]


def test_release_deploy_uses_the_release_that_triggered_it() -> None:
    text = (ROOT / ".github/workflows/deploy.yml").read_text(encoding="utf-8")
    assert "TAG: ${{ github.event.release.tag_name }}" in text
    assert 'source="github:${REPOSITORY}@${TAG}#${ASSET}"' in text


def test_fork_pull_requests_get_the_offline_diff_but_no_cloud_preview() -> None:
    jobs = load(ROOT / ".github/workflows/pr-plan.yml")["jobs"]
    assert "if" not in jobs["offline-plan"]
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repository in jobs["pulumi-preview"]["if"]
    assert same_repository in jobs["comment"]["if"]


TEARDOWNS = {"destroy": "stale", "cleanup-expired": "stale", "sweep-teardown": "always"}


@pytest.mark.parametrize(("name", "unlock"), TEARDOWNS.items())
def test_every_teardown_path_clears_a_stale_lock_and_resolves_cut_off_creates(
    name: str, unlock: str
) -> None:
    """No workflow runs a bare `pulumi destroy`: each goes through `infra teardown`, which
    clears a dead operation's lock and imports or drops pending creates first."""
    workflow = load(ROOT / ".github" / "workflows" / f"{name}.yml")
    destroying = [
        (job, step)
        for job, step in steps(workflow)
        if any(word in str(step.get("run", "")) for word in ("pulumi destroy", "infra teardown"))
        or step.get("with", {}).get("command") == "destroy"
    ]
    assert destroying
    for job, step in destroying:
        assert "pulumi destroy" not in step["run"] and "command" not in step.get("with", {})
        assert "venv/bin/python -m infra teardown" in step["run"]
        assert f"--unlock {unlock}" in step["run"]
        env = {**workflow["jobs"][job].get("env", {}), **step.get("env", {})}
        assert env["PULUMI_K8S_DELETE_UNREACHABLE"] == "true"


def test_a_cancelled_sweep_is_torn_down_by_a_run_of_its_own() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "sweep-teardown.yml")
    trigger = workflow[True]["workflow_run"]  # YAML reads `on` as True
    assert trigger == {"workflows": ["sweep"], "types": ["completed"]}
    teardown = workflow["jobs"]["teardown"]
    # Its own job with the time a destroy takes, never beside another operation of ours.
    assert teardown["timeout-minutes"] >= 60
    assert teardown["concurrency"]["group"] == "pulumi-stack-${{ needs.stack.outputs.name }}"
    assert teardown["concurrency"]["cancel-in-progress"] is False
    # Only for runs of this repository's own sweep workflow, started by hand here (not a
    # fork's), and only a stack name read from them.
    guard = workflow["jobs"]["stack"]["if"]
    assert "github.event.workflow_run.path == '.github/workflows/sweep.yml'" in guard
    assert "github.event.workflow_run.event == 'workflow_dispatch'" in guard
    assert "head_repository.full_name == github.repository" in guard
    check = workflow["jobs"]["stack"]["steps"][1]["run"]
    assert "grep -Eqx '[A-Za-z0-9_.-]{1,100}'" in check and "exit 1" in check
    download = workflow["jobs"]["stack"]["steps"][0]
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    # The sweep names its stack before anything else can fail.
    sweep = load(ROOT / ".github" / "workflows" / "sweep.yml")
    (job,) = sweep["jobs"].values()
    upload = job["steps"][1]
    assert upload["with"]["name"] == download["with"]["name"] == "sweep-stack"


def test_the_sweep_workflow_reports_and_leaves_teardown_to_its_own_run() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "sweep.yml")
    inputs = workflow[True]["workflow_dispatch"]["inputs"]  # YAML reads `on` as True
    assert {"experiments", "p99_ms", "max_usd"} <= set(inputs)
    (job,) = workflow["jobs"].values()
    assert job["env"]["PULUMI_K8S_DELETE_UNREACHABLE"] == "true"
    assert job["concurrency"]["cancel-in-progress"] is False
    runs = [step for step in job["steps"] if "run" in step]
    sweep = next(step for step in runs if "python -m infra sweep" in step["run"])
    assert '--p99-ms "$P99_MS" --max-usd "$MAX_USD"' in sweep["run"]
    # No short `if: always()` destroy step: sweep-teardown has the time a destroy needs.
    assert not any("destroy" in step["run"] for step in runs)
    report = next(step for step in runs if "GITHUB_STEP_SUMMARY" in step["run"])
    assert report["if"] == "always()"
    upload = next(
        s
        for s in job["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
        and s["with"]["name"] == "sweep-results"
    )
    assert upload["if"] == "always()" and upload["with"]["path"] == "sweep-results/"
