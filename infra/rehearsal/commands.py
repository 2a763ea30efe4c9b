"""The Docker commands of a rehearsal, from a stack's design. Pure: values in, argv out.

The container runs as the Deployment's pod would: the same image context (model and
warmup baked in), the same tensorflow_model_server flags and environment, the ConfigMap's
files mounted read-only where the pod mounts them, the pod's user, its read-only root
with a small writable /tmp, no capabilities, and the pod's memory limit (a model that
does not fit is killed here, as it would be there). Its ports are published on
127.0.0.1 only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from infra.design.experiment import ExperimentDesign
from infra.design.tfserving import CONFIG_DIR, ONEDNN_ENV, server_args
from infra.model.build_context import RUN_AS_GID, RUN_AS_UID
from infra.model.serving import GRPC_PORT, REST_PORT

IMAGE_PREFIX = "tfserving-gke-rehearsal"
CONTAINER_PREFIX = "tfserving-gke-rehearse"
# TF Serving's images are built for linux/amd64 only; elsewhere Docker emulates it.
PLATFORM = "linux/amd64"
LINE_WIDTH = 100
TMP_SIZE = "256m"  # the pod's /tmp emptyDir sizeLimit


@dataclass(frozen=True)
class Ports:
    """The host ports the rehearsal publishes on 127.0.0.1."""

    rest: int = REST_PORT
    grpc: int = GRPC_PORT


@dataclass(frozen=True)
class Rehearsal:
    """Everything a rehearsal runs, as argv lists, and where it answers."""

    stack: str
    model_name: str
    image: str
    container: str
    build: list[str]
    run: list[str]
    stop: list[str]
    rest_url: str
    grpc_target: str

    def shell_lines(self) -> list[str]:
        """The commands as a user would type them (long ones continued over lines)."""
        return [_shell(argv) for argv in (self.build, self.run, self.stop)]

    def bench_command(self) -> str:
        return shlex.join(
            ["python", "-m", "infra", "bench", self.rest_url, "--model", self.model_name,
             "--rate", "5"]
        )  # fmt: skip


def _shell(argv: list[str]) -> str:
    """A command for a shell: one line, or options continued one to a line when long."""
    line = shlex.join(argv)
    if len(line) <= LINE_WIDTH:
        return line
    words = [shlex.quote(word) for word in argv]
    # The command and its subcommand stay together; each option gets a line.
    return " \\\n    ".join([" ".join(words[:2]), *words[2:]])


def _container_name(stack: str) -> str:
    """A Docker container name for the stack ([a-zA-Z0-9][a-zA-Z0-9_.-]*)."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in stack)
    return f"{CONTAINER_PREFIX}-{safe}"


def rehearsal(
    design: ExperimentDesign,
    context_dir: Path,
    image_tag: str,
    config_dir: Path,
    ports: Ports = Ports(),
) -> Rehearsal:
    """The build, run and stop commands of one stack's rehearsal. `context_dir` and
    `config_dir` are absolute: Docker resolves a bind mount's source on its own side."""
    s = design.settings
    image = f"{IMAGE_PREFIX}/{s.model_name.lower()}:{image_tag}"
    container = _container_name(s.stack)
    env = [f"--env={ONEDNN_ENV}={design.server.onednn_env}"] if design.server.onednn_env else []
    run = [
        "docker", "run", "--detach", f"--name={container}", f"--platform={PLATFORM}",
        f"--publish=127.0.0.1:{ports.grpc}:{GRPC_PORT}",
        f"--publish=127.0.0.1:{ports.rest}:{REST_PORT}",
        f"--user={RUN_AS_UID}:{RUN_AS_GID}", "--read-only", f"--tmpfs=/tmp:rw,size={TMP_SIZE}",
        "--cap-drop=ALL", "--security-opt=no-new-privileges",
        f"--memory={design.pod_requests.memory_mib}m",
        f"--volume={config_dir}:{CONFIG_DIR}:ro",
        *env,
        image,
        *server_args(design.server),
    ]  # fmt: skip
    return Rehearsal(
        stack=s.stack,
        model_name=s.model_name,
        image=image,
        container=container,
        build=["docker", "build", f"--platform={PLATFORM}", f"--tag={image}", str(context_dir)],
        run=run,
        stop=["docker", "rm", "--force", container],
        rest_url=f"http://127.0.0.1:{ports.rest}",
        grpc_target=f"127.0.0.1:{ports.grpc}",
    )
