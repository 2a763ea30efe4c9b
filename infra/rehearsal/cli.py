"""`python -m infra rehearse STACK`: build the stack's own serving image and run it with
Docker on 127.0.0.1, with the stack's flags, environment and config files, until Ctrl-C.

The model is fetched and verified as `pulumi up` would (the same code, the same cache);
the image context and the ConfigMap's files are written as the program writes them. With
`--print`, or where Docker cannot run, the docker commands are printed instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.design.experiment import ExperimentDesign
from infra.design.manifests import STARTUP_SECONDS_MAX
from infra.design.settings import PROJECT_DIR
from infra.design.stack_config import fetch_environment, serving_context
from infra.design.tfserving import config_files
from infra.inputs.values import positive, stack_name
from infra.model.build_context import STAGED_DIR_MODE, STAGED_FILE_MODE
from infra.model.serving import GRPC_PORT, REST_PORT
from infra.plan.run import design_stack
from infra.rehearsal.commands import Ports, Rehearsal, rehearsal
from infra.rehearsal.docker import (
    AVAILABLE,
    DockerCli,
    LocalDocker,
    container_state,
    docker_missing,
    wait_until_available,
)

REHEARSAL_ROOT = Path("build") / "rehearsal"
LOG_TAIL = 40


def add_parser(commands: Any) -> None:
    rehearse = commands.add_parser(
        "rehearse",
        help="run a stack's own image, flags and config files with Docker on 127.0.0.1, "
        "before paying for any of it",
        description="Fetch and verify the stack's model as `pulumi up` would, build its "
        "serving image, and run it with Docker as the Deployment's pod would run (same "
        "flags, environment, config files, user, read-only root and memory limit), on "
        "127.0.0.1 only, until Ctrl-C. Prints the bench command to try it with.",
    )
    rehearse.add_argument("stack", type=stack_name, help="a stack or experiment preset")
    rehearse.add_argument(
        "--rest-port", type=_port, default=REST_PORT, help="host port for REST on 127.0.0.1"
    )
    rehearse.add_argument(
        "--grpc-port", type=_port, default=GRPC_PORT, help="host port for gRPC on 127.0.0.1"
    )
    rehearse.add_argument(
        "--timeout",
        type=positive,
        default=float(STARTUP_SECONDS_MAX),
        help="seconds to wait for the model to load (the pod's startup limit)",
    )
    rehearse.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the docker commands and run nothing",
    )
    rehearse.set_defaults(run=run_rehearse)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return port


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
    return plan, design, [*design.warnings, *serving.model.warnings, *serving.warmup.warnings]


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


def run_rehearse(args: argparse.Namespace, docker: DockerCli | None = None) -> int:
    plan, design, warnings = prepare(args.stack, Ports(args.rest_port, args.grpc_port))
    for warning in warnings:
        print(f"warning: {warning}")
    docker = docker or LocalDocker()
    if args.print_only:
        _print_commands(plan)
        return 0
    missing = docker_missing(docker)
    if missing:
        _print_commands(plan)
        print(
            f"error: nothing was run: {missing}. Install Docker (or start it) and run "
            f"`python -m infra rehearse {args.stack}` again, or run the commands above where "
            "Docker runs.",
            file=sys.stderr,
        )
        return 1
    return rehearse(plan, design, docker, args.timeout)


def _print_commands(plan: Rehearsal) -> None:
    build, run, stop = plan.shell_lines()
    print("Build the stack's image, run it on 127.0.0.1, try it, stop it:")
    for line in (build, run, plan.bench_command(), stop):
        print(f"  {line}")


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
