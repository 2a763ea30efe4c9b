"""`python -m infra teardown STACK`: destroy a stack whatever its last operation left (a
stale lock, creates cut off mid-way), as the sweep's own teardown and the destroy,
sweep-teardown and cleanup-expired workflows do."""

from __future__ import annotations

import argparse
import shutil
from typing import Any

from infra.design.settings import PROJECT_DIR
from infra.inputs.errors import ConfigError
from infra.inputs.values import positive, project_id, stack_name
from infra.teardown.cloud import gcp_exists
from infra.teardown.run import (
    STALE_LOCK_HOURS,
    UNLOCK_MODES,
    Say,
    Teardown,
    TeardownResult,
    recovery_commands,
)


def add_parser(commands: Any) -> None:
    teardown = commands.add_parser(
        "teardown",
        help="destroy a stack, clearing a stale lock and resolving cut-off creates first",
        description="Destroy a stack whatever the operation before left: a stale lock is "
        "cleared (pulumi cancel), creates a killed update left pending are imported where "
        "the resource exists in GCP and dropped where it does not, then pulumi destroy "
        "runs (twice if need be). Needs the Pulumi CLI, logged in to the stack's backend, "
        "and gcloud for the lookups.",
    )
    teardown.add_argument("stack", type=stack_name, help="the stack to destroy")
    teardown.add_argument(
        "--unlock",
        choices=UNLOCK_MODES,
        default="stale",
        help="always: cancel first (nothing else can be running on the stack); stale: cancel "
        "only a lock older than --stale-lock-hours (default: %(default)s)",
    )
    teardown.add_argument(
        "--stale-lock-hours",
        type=positive,
        default=STALE_LOCK_HOURS,
        help="with --unlock stale: a lock older than this is an operation that died "
        "(default: %(default)s)",
    )
    teardown.add_argument("--remove", action="store_true", help="remove the stack afterwards")
    teardown.add_argument(
        "--missing-ok", action="store_true", help="a stack that does not exist is not an error"
    )
    teardown.add_argument(
        "--gcp-project", type=project_id, help="GCP project (default: the stack's gcp:project)"
    )
    teardown.set_defaults(run=run_teardown)


def report(stack: str, result: TeardownResult, teardown: Teardown, say: Say) -> int:
    """The last lines: what stands, and the exact commands; exit status 0 only when
    nothing of the stack is left."""
    if result.clean:
        say(f"Stack {stack} is destroyed{' and removed' if result.removed else ''}.")
        return 0
    say(f"STACK {stack} MAY STILL BE UP AND BILLING.")
    if result.failure:
        say(result.failure)
    for note in result.unresolved:
        say(f"- {note}")
    say("To finish by hand:")
    for command in recovery_commands(stack, teardown.resolution):
        say(f"  {command}")
    return 1


def _select(stack: str) -> Any:
    from pulumi import automation as auto  # noqa: PLC0415 - only a real run needs it

    try:
        return auto.select_stack(stack_name=stack, work_dir=str(PROJECT_DIR))
    except auto.StackNotFoundError:
        return None


def run_teardown(args: argparse.Namespace) -> int:
    if args.stale_lock_hours <= 0:
        raise ConfigError("--stale-lock-hours", f"must be positive, got {args.stale_lock_hours:g}")
    if not shutil.which("pulumi"):
        raise ConfigError(
            "teardown",
            "needs the Pulumi CLI on PATH (the Automation API drives it): "
            "https://www.pulumi.com/docs/install/",
        )
    stack = _select(args.stack)
    if stack is None:
        if args.missing_ok:
            print(f"Stack {args.stack} does not exist in this backend: nothing to tear down.")
            return 0
        raise ConfigError(
            "stack",
            f"no stack named {args.stack!r} in the backend you are logged in to "
            "(`pulumi stack ls` lists them; `pulumi login <url>` picks the backend)",
        )
    project = args.gcp_project or _configured_project(stack)
    teardown = Teardown(
        stack,
        gcp_exists(print),
        project,
        unlock=args.unlock,
        stale_lock_hours=args.stale_lock_hours,
        remove=args.remove,
    )
    return report(args.stack, teardown.run(), teardown, print)


def _configured_project(stack: Any) -> str:
    try:
        return str(stack.get_config("gcp:project").value)
    except Exception:  # no gcp:project: lookups use what the state recorded
        return ""
