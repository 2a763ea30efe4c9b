"""checkov, the security scanner, on the rendered manifests of dev and an experiment: no
failed check; deliberate exceptions recorded in the manifests with checkov's annotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.plan.render import kubernetes_manifests
from infra.plan.run import StackPlan
from tests.conftest import PlanFn

SCANNED_STACKS = ("dev", "8vcpu-64gb-interop4-batch", "gpu-l4", "gpu-t4")


def checkov_binary() -> Path:
    """checkov from its own environment (make test installs it as venv/scan)."""
    override = os.environ.get("TFSERVING_GKE_CHECKOV")
    binary = Path(override) if override else Path(sys.executable).parent.parent / "scan/bin/checkov"
    assert binary.is_file(), f"{binary} is missing: run `make test`, which installs it"
    return binary


def scan(directory: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(checkov_binary()),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            # Offline: no Prisma Cloud guidelines download (this machine has no internet).
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def write_manifests(plans: list[StackPlan], directory: Path) -> None:
    for plan in plans:
        target = directory / plan.stack
        target.mkdir(parents=True)
        for name, obj in kubernetes_manifests(plan):
            (target / name).write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")


def test_rendered_manifests_pass_every_checkov_check(
    shipped_plans: dict[str, StackPlan], tmp_path: Path
) -> None:
    write_manifests([shipped_plans[stack] for stack in SCANNED_STACKS], tmp_path)
    report = scan(tmp_path)
    summary = report["summary"]
    failed = [
        (check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["passed"] >= 150
    assert summary["parsing_errors"] == 0
    skipped = {check["check_id"] for check in report["results"]["skipped_checks"]}
    assert skipped == {"CKV_K8S_11"}  # no CPU limit, on purpose (the annotation says why)


def test_the_scanner_catches_a_low_uid_and_an_unexplained_missing_cpu_limit(
    shipped_plans: dict[str, StackPlan], tmp_path: Path
) -> None:
    (deployment,) = [
        obj for _, obj in kubernetes_manifests(shipped_plans["dev"]) if obj["kind"] == "Deployment"
    ]
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 1000
    del deployment["metadata"]["annotations"]["checkov.io/skip1"]
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment), encoding="utf-8")
    failed = {check["check_id"] for check in scan(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_K8S_40", "CKV_K8S_11"} <= failed


@pytest.mark.parametrize("stack", SCANNED_STACKS)
def test_pods_run_as_a_uid_of_10000_or_more(
    shipped_plans: dict[str, StackPlan], stack: str
) -> None:
    (deployment,) = [
        obj for _, obj in kubernetes_manifests(shipped_plans[stack]) if obj["kind"] == "Deployment"
    ]
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] >= 10000 and security["runAsGroup"] >= 10000


def test_a_production_stack_passes_every_checkov_check_too(plan: PlanFn, tmp_path: Path) -> None:
    production = plan("8vcpu-16gb-interop4", autoscaling=True, metrics=True, loadGenerator=False)
    write_manifests([production], tmp_path)
    report = scan(tmp_path)
    kinds = {check["resource"].split(".")[0] for check in report["results"]["passed_checks"]}
    assert "HorizontalPodAutoscaler" in kinds or "Deployment" in kinds
    assert [c["check_id"] for c in report["results"]["failed_checks"]] == []
    assert report["summary"]["parsing_errors"] == 0
