"""`python -m infra rehearse STACK`: build the stack's own serving image and run it with
Docker on 127.0.0.1, with the stack's flags, environment and config files, until Ctrl-C.

The model is fetched and verified as `pulumi up` would (the same code, the same cache);
the image context and the ConfigMap's files are written as the program writes them. With
`--print`, or where Docker cannot run, the docker commands are printed instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.design.manifests import STARTUP_SECONDS_MAX
from infra.inputs.values import positive, stack_name
from infra.model.serving import GRPC_PORT, REST_PORT
from infra.rehearsal.commands import Ports, Rehearsal
from infra.rehearsal.docker import (
    DockerCli,
    LocalDocker,
    docker_missing,
)
from infra.rehearsal.run import prepare, rehearse


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "rehearse",
        help="run a stack's own image, flags and config files with Docker on 127.0.0.1, "
        "before paying for any of it",
        description="Fetch and verify the stack's model as `pulumi up` would, build its "
        "serving image, and run it with Docker as the Deployment's pod would run (same "
        "flags, environment, config files, user, read-only root and memory limit), on "
        "127.0.0.1 only, until Ctrl-C. Prints the bench command to try it with.",
    )
    parser.add_argument("stack", type=stack_name, help="a stack or experiment preset")
    parser.add_argument(
        "--rest-port", type=_port, default=REST_PORT, help="host port for REST on 127.0.0.1"
    )
    parser.add_argument(
        "--grpc-port", type=_port, default=GRPC_PORT, help="host port for gRPC on 127.0.0.1"
    )
    parser.add_argument(
        "--timeout",
        type=positive,
        default=float(STARTUP_SECONDS_MAX),
        help="seconds to wait for the model to load (the pod's startup limit)",
    )
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the docker commands and run nothing",
    )
    parser.set_defaults(run=run_rehearse)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return port


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
