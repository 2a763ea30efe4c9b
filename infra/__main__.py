"""Command line: `python -m infra plan ...`, `model inspect ...` and `docs ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.docs import README, render_readme
from infra.errors import ConfigError, ModelSourceError
from infra.model_source import ModelRequest, describe_model, resolve_model
from infra.plan.render import describe, matrix, write_plan
from infra.plan.run import known_stacks, plan_stack
from infra.settings import load_declarations
from infra.stack_config import fetch_environment


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


def _model_inspect(args: argparse.Namespace) -> int:
    declared = load_declarations()
    request = ModelRequest(
        source=args.source,
        name=args.name or declared["modelName"].default,
        default_version=args.version,
        pinned_sha256=args.sha256,
    )
    fetch = fetch_environment(args.github_api_url, args.max_download_mb)
    try:
        model = resolve_model(request, fetch)
    except (ConfigError, ModelSourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(describe_model(model))
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
    model = commands.add_parser("model", help="model sources")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    inspect = model_commands.add_parser(
        "inspect",
        help="resolve, download (to the cache), verify and describe a model source, exactly "
        "as a deployment would",
    )
    declared = load_declarations()
    inspect.add_argument("source", help="github:<owner>/<repo>@<tag|latest>#<asset>, URL or path")
    inspect.add_argument("--name", help="model name (default: the modelName default)")
    inspect.add_argument("--sha256", default="", help="expected sha256 (modelSha256)")
    inspect.add_argument(
        "--version",
        type=int,
        default=declared["modelVersion"].default,
        help="version to serve an unversioned model as",
    )
    inspect.add_argument(
        "--github-api-url", default=declared["githubApiUrl"].default, help="GitHub API base URL"
    )
    inspect.add_argument(
        "--max-download-mb",
        type=int,
        default=declared["modelMaxDownloadMb"].default,
        help="largest archive to download",
    )
    inspect.set_defaults(run=_model_inspect)
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
