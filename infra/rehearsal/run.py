"""A rehearsal of a stack on this machine: the stack resolved and its model fetched as
`pulumi up` does, its image context and config files written, then `docker build` and
`docker run` on 127.0.0.1, the wait for the model, and the log until Ctrl-C (the container
removed however it ends). The command line (infra/rehearsal/cli.py) reads the options and
hands over; infra/rehearsal/commands.py decides the docker commands; docker.py talks to
Docker.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.design.experiment import ExperimentDesign
from infra.design.settings import PROJECT_DIR
from infra.design.stack_config import fetch_environment, serving_context
from infra.design.tfserving import config_files
from infra.model.build_context import STAGED_DIR_MODE, STAGED_FILE_MODE
from infra.plan.run import design_stack
from infra.rehearsal.commands import Ports, Rehearsal, rehearsal
from infra.rehearsal.docker import (
    AVAILABLE,
    DockerCli,
    container_state,
    wait_until_available,
)

REHEARSAL_ROOT = Path("build") / "rehearsal"
LOG_TAIL = 40


def prepare(stack: str, ports: Ports) -> tuple[Rehearsal, ExperimentDesign, list[str]]:
    """Resolve the stack, fetch its model, write the image context and the config files:
    the rehearsal's commands, the design, and the warnings a plan would show."""
    # The plan's own warnings (a missing gcp:project) concern the cloud, not a rehearsal.
    design = design_stack(stack)[3]
    settings = design.settings
    # The model is fetched here as `pulumi up` fetches it, whatever the offline plan set.
    fetch = replace(
        fetch_environment(settings.github_api_url, settings.model_max_download_mb), offline=False
    )
    serving = serving_context(settings, fetch, PROJECT_DIR, design.warmup_batch_sizes)
    context = serving.context
    config_dir = write_config_files(PROJECT_DIR / REHEARSAL_ROOT / stack, design)
    plan = rehearsal(
        design, (PROJECT_DIR / context.directory).resolve(), context.image_tag, config_dir, ports
    )
    gpu = (
        [
            f"the stack's pods run on {design.gpu.name}s; the rehearsal runs its -gpu image "
            "without one (no --gpus): TensorFlow serves on this machine's CPU, which checks "
            "the image, flags, config files and model load, not the GPU's speed"
        ]
        if design.gpu
        else []
    )
    warnings = [*design.warnings, *serving.model.warnings, *serving.warmup.warnings, *gpu]
    return plan, design, warnings


def write_config_files(directory: Path, design: ExperimentDesign) -> Path:
    """The ConfigMap's files, readable by the container's user whatever the umask."""
    target = directory / "config"
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, STAGED_DIR_MODE)
    for stale in target.iterdir():
        stale.unlink()
    for name, text in config_files(design.server).items():
        (target / name).write_text(text, encoding="utf-8")
        os.chmod(target / name, STAGED_FILE_MODE)
    return target.resolve()


def rehearse(plan: Rehearsal, design: ExperimentDesign, docker: DockerCli, timeout_s: float) -> int:
    """Build, run until the model is AVAILABLE, follow its log until Ctrl-C; the container
    is removed however this ends. 0 when it served and was stopped by Ctrl-C."""
    print(f"$ {plan.shell_lines()[0]}", flush=True)
    if docker.stream(plan.build) != 0:
        print("error: `docker build` failed (its output is above); nothing runs.", file=sys.stderr)
        return 1
    docker.capture(plan.stop)  # a container left by an earlier rehearsal holds the name
    print(f"$ {plan.shell_lines()[1]}", flush=True)
    started = docker.capture(plan.run)
    if started.returncode != 0:
        print(
            f"error: `docker run` failed: {(started.stderr or started.stdout).strip()}. If a "
            "port is taken, choose others with --rest-port and --grpc-port.",
            file=sys.stderr,
        )
        return 1
    try:
        return _serve(plan, design, docker, timeout_s)
    except KeyboardInterrupt:
        print(f"\nStopped: {plan.container} removed.")
        return 0
    finally:
        docker.capture(plan.stop)


def _serve(plan: Rehearsal, design: ExperimentDesign, docker: DockerCli, timeout_s: float) -> int:
    startup = wait_until_available(
        docker,
        plan.container,
        plan.rest_url,
        plan.model_name,
        timeout_s,
        on_state=lambda state: print(f"  model {plan.model_name}: {state or 'not answering yet'}"),
    )
    if not startup.ready:
        _show_log_tail(docker, plan.container)
        print(f"error: {_why_not_ready(plan, design, startup.state, timeout_s)}", file=sys.stderr)
        return 1
    print(
        f"Serving {plan.model_name} as the stack's pod would, after {startup.waited_s:.0f} s: "
        f"REST {plan.rest_url}, gRPC {plan.grpc_target}.\n"
        f"Try it (another terminal): {plan.bench_command()}\n"
        "Ctrl-C stops and removes it. Its log follows.",
        flush=True,
    )
    logs = docker.follow(["docker", "logs", "--follow", "--since", "1s", plan.container])
    logs.wait()
    state = container_state(docker, plan.container)
    print(f"error: {_why_not_ready(plan, design, state, timeout_s, served=True)}", file=sys.stderr)
    return 1


def _show_log_tail(docker: DockerCli, container: str) -> None:
    answer = docker.capture(["docker", "logs", "--tail", str(LOG_TAIL), container])
    text = (answer.stdout + answer.stderr).strip()
    if text:
        print(f"The server's last {LOG_TAIL} log lines:")
        print("\n".join(f"  {line}" for line in text.splitlines()))


def _why_not_ready(
    plan: Rehearsal,
    design: ExperimentDesign,
    state: Any,
    timeout_s: float,
    served: bool = False,
) -> str:
    """Why the server is not serving, in the terms of the stack's settings."""
    when = "after serving" if served else "before the model was AVAILABLE"
    if state is None:
        return f"the container {plan.container} is gone ({when}): see the log above."
    if state.oom_killed:
        return (
            f"the server was killed for memory {when}: it needs more than the pod's limit of "
            f"{design.pod_requests.memory_mib} MiB. Give the stack more memory per pod "
            "(nodeMemoryGb or a larger machineType, or fewer podsPerNode), then rehearse again."
        )
    if not state.running:
        return (
            f"the server exited with status {state.exit_code} {when}: its log above says why "
            "(a model TF Serving cannot load, a flag it refuses)."
        )
    return (
        f"the model was not {AVAILABLE} within {timeout_s:g} s (the pod's startup limit): a "
        "large model may need longer (--timeout); the log above shows where it stands."
    )
