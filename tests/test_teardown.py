"""`python -m infra teardown` and the teardown every path shares: stale locks (the
backend's own refusal text), creates a killed `up` left pending (a stack export), GCP
asked whether each exists (an API on 127.0.0.1), and the order of what runs, through a
double of the Automation API stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation import Deployment
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from infra.teardown.cli import report
from infra.teardown.cloud import exists
from infra.teardown.locks import locks_in, stale
from infra.teardown.pending import pending_creates, resolve
from infra.teardown.run import Teardown
from tests.conftest import ROOT
from tests.json_api import JsonApi

EXPORT = json.loads(
    (ROOT / "tests" / "data" / "pulumi" / "stack_export_interrupted.json").read_text()
)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def diy_lock(at: str) -> str:
    """The refusal of a self-managed backend (pkg/backend/diy/lock.go checkForLock)."""
    return (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other "
        "process(es) to end or delete the lock file with `pulumi cancel`.\n"
        "  gs://demo-state/.pulumi/locks/organization/tfserving-gke/sweep/5b0e.json: created "
        f"by runner@fv-az123 (pid 2051) at {at}"
    )


def test_locks_are_read_from_the_backends_refusal() -> None:
    (lock,) = locks_in(diy_lock("2026-12-02T03:00:00Z"))
    assert (lock.who, lock.pid) == ("runner@fv-az123", 2051)
    assert stale(diy_lock("2026-12-02T03:00:00Z"), NOW, 6)  # 9 hours old
    assert not stale(diy_lock("2026-12-02T10:30:00+00:00"), NOW, 6)  # 1.5 hours old
    # Pulumi Cloud says no time: never judged stale.
    assert not stale("[409] Conflict: Another update is currently in progress.", NOW, 6)


def test_pending_creates_are_located_by_their_fixed_names() -> None:
    creates = pending_creates(EXPORT["deployment"], "demo-project")
    located = {c.type: c.cloud for c in creates}
    cluster = located["gcp:container/cluster:Cluster"]
    assert cluster is not None
    assert cluster.import_id == "projects/demo-project/locations/us-central1-a/clusters/tfs-sweep"
    assert cluster.path == f"/v1/{cluster.import_id}"
    repository = located["gcp:artifactregistry/repository:Repository"]
    assert repository is not None and repository.api == "artifactregistry"
    assert repository.import_id.endswith("/locations/us-central1/repositories/tfserving-sweep")
    assert located["docker:index/image:Image"] is None  # goes with its repository
    assert len(creates) == 3  # the pending update is not a create
    resolution = resolve(creates, {creates[0].urn: True, creates[1].urn: False})
    assert resolution.import_arguments == [creates[0].urn, cluster.import_id]
    assert set(resolution.dropped) == {creates[1].urn, creates[2].urn}


@pytest.fixture
def gcp() -> Iterator[JsonApi]:
    """GKE, Artifact Registry and IAM reads on 127.0.0.1: the cluster exists, the rest not,
    and one path is forbidden."""

    def answer(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if path.endswith("/clusters/tfs-sweep"):
            return 200, {"name": "tfs-sweep", "status": "PROVISIONING"}
        if "forbidden" in path:
            return 403, {"error": {"code": 403, "message": "Permission denied"}}
        return 404, {"error": {"code": 404, "message": "Not found"}}

    api = JsonApi(answer)
    yield api
    api.close()


def test_gcp_says_what_exists(gcp: JsonApi) -> None:
    urls = dict.fromkeys(("container", "artifactregistry", "iam"), gcp.url)
    cluster, repository, _ = (c.cloud for c in pending_creates(EXPORT["deployment"], "p"))
    assert cluster is not None and repository is not None
    assert exists(cluster, "tok3n", api_urls=urls) is True
    assert exists(repository, "tok3n", api_urls=urls) is False
    assert gcp.requests[0].headers["Authorization"] == "Bearer tok3n"
    assert (
        gcp.requests[0].path
        == "/v1/projects/demo-project/locations/us-central1-a/clusters/tfs-sweep"
    )
    forbidden = type(cluster)(**{**cluster.__dict__, "path": "/v1/forbidden"})
    answer = exists(forbidden, "tok3n", api_urls=urls)
    assert isinstance(answer, str) and "HTTP 403" in answer


@dataclass
class Workspace:
    calls: list[tuple[str, Any]]
    work_dir: str = str(ROOT)
    env_vars: dict[str, str] = field(default_factory=lambda: {"PULUMI_CONFIG_PASSPHRASE": "x"})
    cli_api: Any = None

    def __post_init__(self) -> None:
        workspace = self

        class CliApi:
            def refresh(self, **kwargs: Any) -> CommandResult:
                workspace.calls.append(("refresh", kwargs))
                return CommandResult("", "", 0)

        self.cli_api = CliApi()

    def remove_stack(self, name: str) -> None:
        self.calls.append(("remove_stack", name))


@dataclass
class Stack:
    """Answers as pulumi.automation.Stack does; a lock refuses every command until
    cancelled."""

    lock: str = ""
    deployment: dict[str, Any] = field(default_factory=dict)
    name: str = "sweep"
    calls: list[tuple[str, Any]] = field(default_factory=list)
    workspace: Workspace = field(init=False)

    def __post_init__(self) -> None:
        self.workspace = Workspace(self.calls)

    def _locked(self) -> None:
        if self.lock:
            raise ConcurrentUpdateError(CommandResult("", self.lock, 255))

    def cancel(self) -> None:
        self.calls.append(("cancel", None))
        if not self.lock:
            raise CommandError(CommandResult("", "error: no update in progress", 255))
        self.lock = ""

    def export_stack(self) -> Deployment:
        self.calls.append(("export_stack", None))
        self._locked()
        return Deployment(3, self.deployment)

    def destroy(self, **kwargs: Any) -> None:
        self.calls.append(("destroy", None))
        self._locked()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def teardown(stack: Stack, unlock: str, answers: dict[str, bool | str] | None = None) -> Teardown:
    def look(resource: Any) -> bool | str:
        stack.calls.append(("exists", resource.import_id))
        return (answers or {}).get(resource.import_id, False)

    return Teardown(
        stack, look, "demo-project", say=lambda line: None, unlock=unlock, remove=True,
        now=lambda: NOW,
    )  # fmt: skip


def test_the_order_a_cut_off_sweep_is_torn_down_in() -> None:
    stack = Stack(lock=diy_lock("2026-12-02T11:55:00Z"), deployment=EXPORT["deployment"])
    cluster_id = "projects/demo-project/locations/us-central1-a/clusters/tfs-sweep"
    result = teardown(stack, "always", {cluster_id: True}).run()
    assert result.clean and result.removed
    assert stack.names() == [
        "cancel", "export_stack", "exists", "exists", "refresh", "destroy", "remove_stack",
    ]  # fmt: skip
    refresh = stack.calls[4][1]
    cluster_urn = EXPORT["deployment"]["pending_operations"][0]["resource"]["urn"]
    assert refresh["import_pending_creates"] == [cluster_urn, cluster_id]
    assert refresh["clear_pending_creates"] is True
    assert refresh["additional_env"] == {"PULUMI_CONFIG_PASSPHRASE": "x"}


def test_a_stale_lock_is_cancelled_only_when_the_backend_dates_it_old() -> None:
    old = Stack(lock=diy_lock("2026-12-01T23:00:00Z"))
    assert teardown(old, "stale").run().clean
    assert old.names() == ["export_stack", "cancel", "export_stack", "destroy", "remove_stack"]
    fresh = Stack(lock=diy_lock("2026-12-02T11:30:00Z"))
    kept = teardown(fresh, "stale")
    result = kept.run()
    assert not result.destroyed and "cancel" not in fresh.names()
    assert (
        "may still run" in result.failure and "pulumi cancel --yes --stack sweep" in result.failure
    )
    said: list[str] = []
    assert report("sweep", result, kept, said.append) == 1
    assert said[0] == "STACK sweep MAY STILL BE UP AND BILLING."
    assert said[-1] == "  (or all of it: python -m infra teardown sweep)"


def test_the_command_needs_the_pulumi_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run(
        [sys.executable, "-m", "infra", "teardown", "sweep"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60, env=env,
    )  # fmt: skip
    assert run.returncode == 2
    assert "needs the Pulumi CLI on PATH" in run.stderr and "Traceback" not in run.stderr
