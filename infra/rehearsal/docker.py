"""Driving the Docker CLI and watching the rehearsed server: the only code of a rehearsal
that touches the machine. Tested at the interface (the argv it runs, the answers it reads)
with a double of `DockerCli` and a server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from infra.design.tfserving import model_status_path

AVAILABLE = "AVAILABLE"


class DockerCli(Protocol):
    """What a rehearsal needs of the `docker` command."""

    def installed(self) -> bool:
        """Whether there is a `docker` command to run."""
        ...

    def capture(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run to the end, output captured."""
        ...

    def stream(self, argv: list[str]) -> int:
        """Run to the end, output shown as it comes; the exit status."""
        ...

    def follow(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start, output shown as it comes, and return at once."""
        ...


class LocalDocker:
    """The docker CLI on this machine's PATH."""

    def installed(self) -> bool:
        return shutil.which("docker") is not None

    def capture(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def stream(self, argv: list[str]) -> int:
        return subprocess.run(argv, check=False).returncode

    def follow(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv)


def docker_missing(docker: DockerCli) -> str:
    """Why Docker cannot run a container here ('' when it can)."""
    if not docker.installed():
        return "there is no `docker` command on this machine's PATH"
    answer = docker.capture(["docker", "version", "--format", "{{.Server.Version}}"])
    if answer.returncode != 0:
        detail = (answer.stderr or answer.stdout).strip().splitlines()
        return "the Docker daemon does not answer" + (f" ({detail[-1]})" if detail else "")
    return ""


@dataclass(frozen=True)
class ContainerState:
    """What `docker inspect` says of the container."""

    status: str  # created, running, exited, dead...
    exit_code: int
    oom_killed: bool

    @property
    def running(self) -> bool:
        return self.status in ("created", "running", "restarting")


def container_state(docker: DockerCli, container: str) -> ContainerState | None:
    """The container's state, or None when Docker has no such container."""
    answer = docker.capture(["docker", "inspect", "--format", "{{json .State}}", container])
    if answer.returncode != 0:
        return None
    try:
        state = json.loads(answer.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None
    return ContainerState(
        str(state.get("Status", "")),
        int(state.get("ExitCode") or 0),
        bool(state.get("OOMKilled")),
    )


def model_state(rest_url: str, model_name: str, timeout_s: float = 2.0) -> str:
    """The served model's state from TF Serving's status API (e.g. LOADING, AVAILABLE),
    '' while the server does not answer."""
    try:
        with urllib.request.urlopen(
            rest_url + model_status_path(model_name), timeout=timeout_s
        ) as response:
            status = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return ""
    versions = (status.get("model_version_status") or []) if isinstance(status, dict) else []
    states = [str(v.get("state", "")) for v in versions if isinstance(v, dict)]
    if AVAILABLE in states:
        return AVAILABLE
    return states[0] if states else ""


@dataclass(frozen=True)
class Startup:
    """How the wait for the model ended: ready, or the container stopped, or time ran out."""

    ready: bool
    state: ContainerState | None
    waited_s: float


def wait_until_available(
    docker: DockerCli,
    container: str,
    rest_url: str,
    model_name: str,
    timeout_s: float,
    *,
    poll_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_state: Callable[[str], None] = lambda _: None,
) -> Startup:
    """Poll the model's status until it is AVAILABLE, the container stops, or timeout_s."""
    began = clock()
    last = ""
    while True:
        state = model_state(rest_url, model_name)
        if state != last:
            on_state(state)
            last = state
        if state == AVAILABLE:
            return Startup(True, container_state(docker, container), clock() - began)
        container_now = container_state(docker, container)
        if container_now is None or not container_now.running:
            return Startup(False, container_now, clock() - began)
        if clock() - began >= timeout_s:
            return Startup(False, container_now, clock() - began)
        sleep(poll_s)
