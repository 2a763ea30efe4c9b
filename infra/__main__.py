"""Command line: `python -m infra plan ...` and `python -m infra docs ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.docs import README, render_readme
from infra.errors import ConfigError, ModelSourceError
from infra.plan.render import describe, matrix, write_plan
from infra.plan.run import known_stacks, plan_stack


def _plan(args: argparse.Namespace) -> int:
    stacks = known_stacks() if args.all else [args.stack or "dev"]
    plans = []
    for stack in stacks:
        try:
            plans.append(plan_stack(stack))
        except (ConfigError, ModelSourceError) as error:
            print(f"error: stack {stack}: {error}", file=sys.stderr)
            return 2
    for plan in plans:
        if not args.all:
            print(describe(plan))
        if args.out:
            target = write_plan(plan, args.out)
            if not args.all:
                print(f"\nWrote the Kubernetes manifests and plan.json to {target}/")
    if args.all:
        print(matrix(plans))
        if args.out:
            print(f"\nWrote manifests and plan.json for {len(plans)} stacks under {args.out}/")
    return 0


def _docs(args: argparse.Namespace) -> int:
    current = README.read_text(encoding="utf-8")
    updated = render_readme(current)
    if args.write:
        README.write_text(updated, encoding="utf-8")
        return 0
    if updated != current:
        print("README.md is out of date: run `make docs` (python -m infra docs --write).")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan",
        help="run the Pulumi program offline under the SDK's mocks and show what it declares",
    )
    plan.add_argument("stack", nargs="?", help="stack or experiment preset (default: dev)")
    plan.add_argument("--all", action="store_true", help="plan every stack and preset")
    plan.add_argument("--out", type=Path, help="write DIR/<stack>/*.yaml and plan.json")
    plan.set_defaults(run=_plan)
    docs = commands.add_parser("docs", help="check or regenerate README's generated sections")
    docs.add_argument("--write", action="store_true", help="rewrite README.md in place")
    docs.set_defaults(run=_docs)
    args = parser.parse_args(argv)
    if args.command == "plan" and args.all and args.stack:
        parser.error("give a stack or --all, not both")
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
