"""`python -m infra init STACK --model SOURCE`: a commented stack file for one's own model,
checked and planned offline, or nothing written at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import yaml

from infra import cli
from infra.plan.run import plan_stack
from tests.conftest import ROOT, container

PROJECT = "tfserving-gke"
LOCAL_MODEL = "models/tiny_classifier"
GITHUB_MODEL = "github:acme/resnet-serving@v2#saved_model.tar.gz"


@pytest.fixture
def stack() -> Iterator[str]:
    """A stack name whose Pulumi.<stack>.yaml the test may write, removed afterwards."""
    name = f"init-test-{uuid.uuid4().hex[:8]}"
    yield name
    (ROOT / f"Pulumi.{name}.yaml").unlink(missing_ok=True)


def init(*argv: str) -> int:
    return cli.main(["init", *argv])


def written(stack: str) -> str:
    return (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")


def config_of(stack: str) -> dict[str, object]:
    return dict(yaml.safe_load(written(stack))["config"])


def test_init_writes_a_stack_that_serves_the_model_and_plans(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(stack, "--model", LOCAL_MODEL, "--preset", "4vcpu-8gb-interop2") == 0
    assert config_of(stack) == {
        f"{PROJECT}:experiment": "4vcpu-8gb-interop2",
        f"{PROJECT}:modelSource": LOCAL_MODEL,
        f"{PROJECT}:modelName": "tiny_classifier",
    }
    text = written(stack)
    assert "pulumi config set gcp:project <your-project-id>" in text
    # The settings to change next, commented out at the values in effect (the preset's).
    assert f"  # {PROJECT}:machineType: e2-custom-4-8192  # " in text
    assert f"  # {PROJECT}:nodeCount: 4  # " in text
    assert f"  # {PROJECT}:spot: false  # " in text
    plan = plan_stack(stack)
    assert plan.settings.model_name == "tiny_classifier"
    assert "--model_name=tiny_classifier" in container(plan)["args"]
    out = capsys.readouterr().out
    assert f"Stack {stack}: experiment 4vcpu-8gb-interop2" in out  # the plan, shown
    assert f"Wrote Pulumi.{stack}.yaml: model 'tiny_classifier' from {LOCAL_MODEL}." in out
    assert "was taken from the source" in out
    nexts = out.split("Next:", 1)[1]
    order = [
        f"python -m infra plan {stack}",
        f"python -m infra rehearse {stack}",
        "python -m infra bench http://127.0.0.1:8501 --model tiny_classifier",
        f"pulumi stack init {stack}",
        "pulumi config set gcp:project <your-project-id>",
        f"pulumi preview --stack {stack}",
        f"pulumi up --stack {stack}",
        f"python -m infra bench {stack} --find-capacity",
        "python -m infra sweep --all --set modelSource=models/tiny_classifier "
        "--set modelName=tiny_classifier --dry-run",
        f"pulumi destroy --stack {stack}",
    ]
    positions = [nexts.index(command) for command in order]
    assert positions == sorted(positions)


def test_uncommenting_the_listed_settings_changes_nothing(stack: str) -> None:
    """Each commented line shows the value in effect: set as written, the plan is the same."""
    assert init(stack, "--model", LOCAL_MODEL, "--preset", "8vcpu-16gb-interop4") == 0
    before = plan_stack(stack)
    path = ROOT / f"Pulumi.{stack}.yaml"
    text = written(stack)
    uncommented = re.sub(rf"(?m)^  # ({PROJECT}:\w+: .*?)  # .*$", r"  \1", text)
    assert uncommented.count(f"  {PROJECT}:") >= 10
    path.write_text(uncommented, encoding="utf-8")
    after = plan_stack(stack)
    assert after.design.shape == before.design.shape
    assert after.design.server == before.design.server
    assert after.design.replicas == before.design.replicas
    assert after.design.cost == before.design.cost


def test_the_model_name_comes_from_the_source_unless_given(stack: str) -> None:
    assert init(stack, "--model", GITHUB_MODEL) == 0
    config = config_of(stack)
    assert config[f"{PROJECT}:modelName"] == "resnet-serving"
    assert config[f"{PROJECT}:experiment"] == "none"
    assert plan_stack(stack).settings.model_source == GITHUB_MODEL
    sha = "a" * 64
    assert init(stack, "--model", GITHUB_MODEL, "--name", "resnet", "--sha256", sha, "--force") == 0
    config = config_of(stack)
    assert config[f"{PROJECT}:modelName"] == "resnet"
    assert config[f"{PROJECT}:modelSha256"] == sha


def test_gcp_project_is_written_when_given(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(stack, "--model", LOCAL_MODEL, "--gcp-project", "acme-ml") == 0
    assert config_of(stack)["gcp:project"] == "acme-ml"
    assert "pulumi config set gcp:project" not in written(stack)
    assert "pulumi config set gcp:project" not in capsys.readouterr().out


def test_an_existing_stack_file_is_kept_unless_forced(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(stack, "--model", LOCAL_MODEL) == 0
    first = written(stack)
    capsys.readouterr()
    assert init(stack, "--model", GITHUB_MODEL) == 2
    assert f"Pulumi.{stack}.yaml exists" in capsys.readouterr().err
    assert written(stack) == first
    assert init(stack, "--model", GITHUB_MODEL, "--force") == 0
    assert config_of(stack)[f"{PROJECT}:modelSource"] == GITHUB_MODEL


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "models/no_such_model"], "models/no_such_model"),
        (["--model", "   "], "--model is empty"),
        (["--model", LOCAL_MODEL, "--preset", "8vcpu-16gb-interop"], "Did you mean"),
        (["--model", LOCAL_MODEL, "--sha256", "abc"], "--sha256: modelSha256 'abc'"),
        (["--model", LOCAL_MODEL, "--name", "my model!"], "modelName"),
    ],
)
def test_a_stack_that_would_not_plan_is_not_written(
    stack: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(stack, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert not (ROOT / f"Pulumi.{stack}.yaml").exists()
    assert not list(ROOT.glob(f".Pulumi.{stack}.yaml*"))


def test_a_failed_forced_init_puts_the_old_file_back(stack: str) -> None:
    assert init(stack, "--model", LOCAL_MODEL) == 0
    first = written(stack)
    assert init(stack, "--model", "models/no_such_model", "--force") == 2
    assert written(stack) == first


def test_init_from_the_command_line(stack: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "infra", "init", stack, "--model", GITHUB_MODEL],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Next:" in run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "infra", "init", "bad name", "--model", GITHUB_MODEL],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "is not a stack name Pulumi accepts" in bad.stderr
    assert "Traceback" not in bad.stderr
