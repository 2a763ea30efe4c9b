"""`python -m infra promote`: a production stack file from a sweep report (or a preset),
planned offline afterwards like any stack."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra import cli
from infra.plan.render import kubernetes_manifests
from infra.plan.run import plan_stack
from tests.conftest import ROOT, manifest, serving_pool

REPORT = ROOT / "tests" / "data" / "sweep" / "report.json"
PROJECT = "tfserving-gke"


@pytest.fixture
def stack() -> Iterator[str]:
    """A stack name whose Pulumi.<stack>.yaml the test may write in the project, removed
    afterwards."""
    name = f"prod-test-{uuid.uuid4().hex[:8]}"
    yield name
    (ROOT / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def promote(*argv: str) -> int:
    return cli.main(["promote", *argv])


def config_of(stack: str) -> dict[str, object]:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    config: dict[str, object] = yaml.safe_load(text)["config"]
    return {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items()}


def test_the_winner_of_a_sweep_becomes_a_production_stack(stack: str) -> None:
    assert promote(str(REPORT), "--stack", stack, "--gcp-project", "acme-prod") == 0
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Production stack written by `python -m infra promote`")
    assert "52.1 requests/s within p99 ≤ 300 ms on 2 pods" in text
    config = config_of(stack)
    # What the winner measured, as it ran.
    assert config["machineType"] == "e2-custom-8-16384"
    assert config["tensorflowIntraOpParallelism"] == 8
    assert config["tensorflowInterOpParallelism"] == 4
    assert (config["restApiNumThreads"], config["grpcMaxThreads"]) == (32, 32)
    assert config["enableBatching"] is False
    assert config["podsPerNode"] == 1
    # The model measured, pinned.
    assert config["modelSource"] == (
        "github:deep-diver/ml-deployment-k8s-tfserving@v1.0#saved_model.tar.gz"
    )
    assert config["modelSha256"] == json.loads(REPORT.read_text())["experiments"][0]["model_sha256"]
    # Production defaults.
    assert config["experiment"] == "none"
    assert config["autoscaling"] is True
    assert (config["minReplicas"], config["maxReplicas"]) == (2, 4)
    assert config["ttlHours"] == 0
    assert config["loadGenerator"] is False
    assert config["metrics"] is True and config["warmup"] is True
    assert config["regional"] is False and config["spot"] is False
    assert config["gcp:project"] == "acme-prod"

    plan = plan_stack(stack)
    assert plan.settings.experiment == "none"
    assert plan.design.autoscaling is not None
    assert plan.design.load_generator is None
    assert plan.recording.stack_outputs["expiresAt"] == "never"
    assert serving_pool(plan)["autoscaling"]["totalMaxNodeCount"] == 4
    kinds = {obj["kind"] for _, obj in kubernetes_manifests(plan)}
    assert {"HorizontalPodAutoscaler", "PodMonitoring"} <= kinds
    assert "replicas" not in manifest(plan, "Deployment")["spec"]


def test_a_batching_winner_keeps_its_batching_and_regional_spreads_it(stack: str) -> None:
    assert promote("8vcpu-64gb-interop4-batch", "--stack", stack, "--regional") == 0
    config = config_of(stack)
    assert config["machineType"] == "e2-highmem-8"
    assert config["enableBatching"] is True
    assert (config["maxBatchSize"], config["numBatchThreads"]) == (128, 2)
    assert (config["maxEnqueuedBatches"], config["batchTimeoutMicros"]) == (2, 0)
    assert config["enableLargeBatchSplitting"] is True
    assert config["maxExecutionBatchSize"] == 128
    assert config["regional"] is True
    # A pod in each of the region's zones at the least.
    assert config["minReplicas"] == 3 and config["maxReplicas"] == 6
    assert "gcp:project" not in config
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert "pulumi config set gcp:project" in text
    assert "modelSource follows the latest release: pin it" in text
    plan = plan_stack(stack)
    assert plan.settings.regional
    assert plan.design.server.batching is not None


def test_replica_limits_can_be_chosen(stack: str) -> None:
    argv = [str(REPORT), "--stack", stack, "--min-replicas", "3", "--max-replicas", "9"]
    assert promote(*argv) == 0
    config = config_of(stack)
    assert (config["minReplicas"], config["maxReplicas"]) == (3, 9)


def test_an_existing_stack_file_is_never_overwritten_by_surprise(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote(str(REPORT), "--stack", stack) == 0
    before = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert promote("8vcpu-64gb-interop2", "--stack", stack) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8") == before
    assert promote("8vcpu-64gb-interop2", "--stack", stack, "--force") == 0
    assert config_of(stack)["machineType"] == "e2-highmem-8"


def test_bad_inputs_are_refused_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote("no-such-thing", "--out", str(tmp_path / "x.yaml")) == 2
    assert "neither a sweep report" in capsys.readouterr().err
    report = json.loads(REPORT.read_text())
    report["winner"] = None
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert promote(str(tmp_path), "--out", str(tmp_path / "x.yaml")) == 2
    assert "has no winner" in capsys.readouterr().err
    argv = [str(REPORT), "--out", str(tmp_path / "x.yaml"), "--min-replicas", "5"]
    assert promote(*argv, "--max-replicas", "2") == 2
    assert "--max-replicas 2 is below --min-replicas 5" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_a_winner_ranked_at_spot_prices_is_promoted_on_spot(stack: str, tmp_path: Path) -> None:
    report = json.loads(REPORT.read_text())
    report["goal"] = {**(report.get("goal") or {}), "deploy_spot": True}
    ranked_on_spot = tmp_path / "report.json"
    ranked_on_spot.write_text(json.dumps(report), encoding="utf-8")
    assert promote(str(ranked_on_spot), "--stack", stack, "--gcp-project", "acme-prod") == 0
    assert config_of(stack)["spot"] is True
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert "spot: true, the price basis it won on" in text
    # Measured with TensorFlow's default oneDNN choice: carried as it ran.
    assert config_of(stack)["oneDnn"] == "auto"
