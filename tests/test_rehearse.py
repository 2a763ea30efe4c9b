"""`python -m infra rehearse STACK`: the stack's own image, flags and files run with Docker
on 127.0.0.1. Tested at the Docker CLI's interface: the commands it runs, against a double
that answers as docker does, and a stand-in TF Serving status API on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra import cli
from infra.rehearsal.cli import add_parser, run_rehearse
from tests.conftest import ROOT, container, manifest

DOCKER_VERSION = subprocess.CompletedProcess(["docker", "version"], 0, "27.3.1\n", "")


class FakeLogs:
    """`docker logs --follow` as Popen: it ends when the user presses Ctrl-C, or when the
    container stops (`ends_by_itself`)."""

    def __init__(self, ends_by_itself: bool) -> None:
        self.ends_by_itself = ends_by_itself

    def wait(self) -> int:
        if self.ends_by_itself:
            return 0
        raise KeyboardInterrupt


class FakeDocker:
    """Answers as the docker CLI does; records every command."""

    def __init__(
        self,
        *,
        installed: bool = True,
        daemon: bool = True,
        build_status: int = 0,
        state: dict[str, Any] | None = None,
        logs_end: bool = False,
    ) -> None:
        self._installed = installed
        self.daemon = daemon
        self.build_status = build_status
        self.state = state or {"Status": "running", "ExitCode": 0, "OOMKilled": False}
        self.logs_end = logs_end
        self.commands: list[list[str]] = []

    def installed(self) -> bool:
        return self._installed

    def capture(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(argv)
        if argv[1] == "version":
            if self.daemon:
                return DOCKER_VERSION
            return subprocess.CompletedProcess(
                argv, 1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"
            )
        if argv[1] == "inspect":
            return subprocess.CompletedProcess(argv, 0, json.dumps(self.state) + "\n", "")
        if argv[1] == "logs":
            return subprocess.CompletedProcess(argv, 0, "E external/... Loading failed\n", "")
        return subprocess.CompletedProcess(argv, 0, "0123abcd\n", "")

    def stream(self, argv: list[str]) -> int:
        self.commands.append(argv)
        return self.build_status

    def follow(self, argv: list[str]) -> Any:
        self.commands.append(argv)
        return FakeLogs(self.logs_end)

    def verbs(self) -> list[str]:
        return [" ".join(c[1:3]) if c[1] == "rm" else c[1] for c in self.commands]


@pytest.fixture
def tf_serving() -> Iterator[tuple[int, dict[str, str]]]:
    """TF Serving's model status API on 127.0.0.1: (port, {"state": ...}) to set."""
    status = {"state": "AVAILABLE"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/v1/models/tiny_classifier":
                self.send_error(404)
                return
            body = json.dumps(
                {"model_version_status": [{"version": "1", "state": status["state"]}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["rehearse", *argv])


def option(run: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in run if arg.startswith(f"--{name}=")]


def test_the_stack_runs_as_its_pod_would_until_ctrl_c(
    tf_serving: tuple[int, dict[str, str]],
    shipped_plans: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, _ = tf_serving
    docker = FakeDocker()
    assert run_rehearse(arguments("dev", "--rest-port", str(port)), docker) == 0
    assert docker.verbs() == [
        "version", "build", "rm --force", "run", "inspect", "logs", "rm --force"
    ]  # fmt: skip
    build, run = docker.commands[1], docker.commands[3]
    plan = shipped_plans["dev"]
    pod = container(plan)
    image = option(build, "tag")[0]
    # The image built from the program's own context (Dockerfile and model baked in).
    context = Path(build[-1])
    assert (context / "Dockerfile").read_text().startswith("# syntax=docker/dockerfile")
    assert (context / "models" / "tiny_classifier" / "1" / "saved_model.pb").is_file()
    # The Deployment's flags, after the image, in order; its user, read-only root,
    # capabilities and memory limit; ports on 127.0.0.1 only.
    assert run[run.index(image) + 1 :] == pod["args"]
    assert option(run, "user") == ["10001:10001"]
    assert "--read-only" in run
    assert option(run, "cap-drop") == ["ALL"]
    assert option(run, "memory") == [pod["resources"]["limits"]["memory"].removesuffix("Mi") + "m"]
    assert option(run, "publish") == ["127.0.0.1:8500:8500", f"127.0.0.1:{port}:8501"]
    # The ConfigMap's files, mounted read-only where the pod mounts them.
    source, target, mode = option(run, "volume")[0].split(":")
    assert (target, mode) == ("/etc/tfs-config", "ro")
    files = {path.name: path.read_text() for path in Path(source).iterdir()}
    assert files == manifest(plan, "ConfigMap")["data"]
    out = capsys.readouterr().out
    assert f"REST http://127.0.0.1:{port}" in out
    assert f"python -m infra bench http://127.0.0.1:{port} --model tiny_classifier" in out
    assert "Stopped: tfserving-gke-rehearse-dev removed." in out


def test_batching_and_onednn_reach_the_container(
    tf_serving: tuple[int, dict[str, str]],
) -> None:
    port, _ = tf_serving
    stack = f"rehearse-test-{uuid.uuid4().hex[:8]}"
    try:
        assert cli.main(
            ["init", stack, "--model", "models/tiny_classifier", "--preset",
             "8vcpu-64gb-interop2-batch"]
        ) == 0  # fmt: skip
        path = ROOT / f"Pulumi.{stack}.yaml"
        path.write_text(path.read_text() + "  tfserving-gke:oneDnn: 'off'\n")
        docker = FakeDocker()
        assert run_rehearse(arguments(stack, "--rest-port", str(port)), docker) == 0
        run = docker.commands[3]
        assert "--enable_batching=true" in run
        assert "--batching_parameters_file=/etc/tfs-config/batching_config.txt" in run
        assert option(run, "env") == ["TF_ENABLE_ONEDNN_OPTS=0"]
        source = Path(option(run, "volume")[0].split(":")[0])
        assert "max_batch_size { value: 128 }" in (source / "batching_config.txt").read_text()
    finally:
        (ROOT / f"Pulumi.{stack}.yaml").unlink(missing_ok=True)


def test_a_model_over_the_pods_memory_fails_naming_the_limit(
    tf_serving: tuple[int, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, status = tf_serving
    status["state"] = "LOADING"
    docker = FakeDocker(state={"Status": "exited", "ExitCode": 137, "OOMKilled": True})
    assert run_rehearse(arguments("dev", "--rest-port", str(port)), docker) == 1
    assert docker.verbs()[-1] == "rm --force"  # removed all the same
    assert "logs" in docker.verbs()
    captured = capsys.readouterr()
    assert "killed for memory before the model was AVAILABLE" in captured.err
    assert "pod's limit of 1860 MiB" in captured.err
    assert "nodeMemoryGb" in captured.err
    assert "Loading failed" in captured.out  # the log's tail, shown


def test_a_server_that_exits_after_serving_is_a_failure(
    tf_serving: tuple[int, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, _ = tf_serving
    docker = FakeDocker(logs_end=True)
    docker.state = {"Status": "running", "ExitCode": 0, "OOMKilled": False}

    def stopped(argv: list[str]) -> subprocess.CompletedProcess[str]:
        if argv[1] == "inspect" and "logs" in docker.verbs():
            docker.state = {"Status": "exited", "ExitCode": 1, "OOMKilled": False}
        return FakeDocker.capture(docker, argv)

    docker.capture = stopped  # type: ignore[method-assign]
    assert run_rehearse(arguments("dev", "--rest-port", str(port)), docker) == 1
    assert "exited with status 1 after serving" in capsys.readouterr().err


def test_a_model_that_never_loads_times_out(
    tf_serving: tuple[int, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, status = tf_serving
    status["state"] = "LOADING"
    docker = FakeDocker()
    assert run_rehearse(arguments("dev", "--rest-port", str(port), "--timeout", "1.5"), docker) == 1
    captured = capsys.readouterr()
    assert "model tiny_classifier: LOADING" in captured.out
    assert "not AVAILABLE within 1.5 s" in captured.err
    assert docker.verbs()[-1] == "rm --force"


def test_a_failed_build_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    docker = FakeDocker(build_status=1)
    assert run_rehearse(arguments("dev"), docker) == 1
    assert docker.verbs() == ["version", "build"]
    assert "`docker build` failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("docker", "why"),
    [
        (FakeDocker(installed=False), "there is no `docker` command"),
        (FakeDocker(daemon=False), "the Docker daemon does not answer (Cannot connect"),
    ],
)
def test_without_docker_the_commands_are_printed(
    docker: FakeDocker, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_rehearse(arguments("dev"), docker) == 1
    assert all(command[1] == "version" for command in docker.commands)
    captured = capsys.readouterr()
    assert "docker build \\\n    --platform=linux/amd64" in captured.out
    assert "docker run \\\n    --detach" in captured.out
    assert "python -m infra bench http://127.0.0.1:8501 --model tiny_classifier" in captured.out
    assert "docker rm --force tfserving-gke-rehearse-dev" in captured.out
    assert f"nothing was run: {why}" in captured.err


def test_print_only_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    docker = FakeDocker()
    assert run_rehearse(arguments("dev", "--print", "--grpc-port", "9500"), docker) == 0
    assert docker.commands == []
    assert "--publish=127.0.0.1:9500:8500" in capsys.readouterr().out


def test_rehearse_from_the_command_line_without_docker() -> None:
    """As a user runs it where there is no docker command: the commands, exit 1."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run(
        [sys.executable, "-m", "infra", "rehearse", "dev"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "docker build" in run.stdout
    assert "there is no `docker` command on this machine's PATH" in run.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "infra", "rehearse", "dev", "--rest-port", "99999"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "'99999' is not a TCP port (1 to 65535)" in bad.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "infra", "rehearse", "no-such-stack"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "has neither a Pulumi.no-such-stack.yaml" in unknown.stderr
