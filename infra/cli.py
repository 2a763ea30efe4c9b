"""Command line: `python -m infra init ...`, `plan ...`, `rehearse ...`, `model inspect ...`,
`ttl ...`, `sweep ...`, `promote ...`, `teardown ...`, `bench ...`, `compare ...` and
`docs ...`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.design.settings import PROJECT_DIR, load_declarations
from infra.design.stack_config import fetch_environment
from infra.design.ttl import TtlDecision, decide, parse_expiry, summary_markdown
from infra.docs.sections import rendered_docs
from infra.inputs.errors import ConfigError, InputError, ModelSourceError
from infra.inputs.files import json_object, read_json
from infra.inputs.help import DefaultsOnce
from infra.inputs.values import (
    non_negative_int,
    output_dir,
    output_file,
    positive_int,
    stack_problem,
)
from infra.model.source import ModelRequest, describe_model, resolve_model
from infra.plan.diff import (
    StackDiff,
    diff_plan_sets,
    diff_plans,
    plans_at_ref,
    render_markdown,
    without_stack_name,
)
from infra.plan.render import describe, matrix, plan_json, write_plan
from infra.plan.run import StackPlan, known_stacks, plan_stack
from infra.promote.cli import add_parser as add_promote_parser
from infra.rehearsal.cli import add_parser as add_rehearse_parser
from infra.scaffold.cli import add_parser as add_init_parser
from infra.sweep.cli import add_parser as add_sweep_parser
from infra.teardown.cli import add_parser as add_teardown_parser


def _plan_all(stacks: list[str]) -> list[StackPlan]:
    plans = []
    for stack in stacks:
        try:
            plans.append(plan_stack(stack))
        except (ConfigError, InputError, ModelSourceError) as error:
            raise ConfigError(f"stack {stack}", str(error)) from None
    return plans


def _check_plan_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.all and args.stacks:
        parser.error("give stacks or --all, not both")
    if args.diff is not None and not args.diff.strip():
        parser.error(
            "--diff: the git ref is empty (an unset variable in CI?): give a branch, tag or "
            "commit, e.g. --diff origin/main"
        )
    if not (args.diff or args.compare):
        for option, value in (
            ("--changed-stacks", args.changed_stacks),
            ("--markdown", args.markdown),
        ):
            if value is not None:
                parser.error(f"{option} only works with --diff or --compare: add one of them")
    for stack in [*args.stacks, *(args.compare or [])]:
        problem = stack_problem(stack)
        if problem:
            parser.error(problem)


def _plan(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    if args.diff:
        return _diff(args)
    stacks = known_stacks() if args.all else args.stacks or ["dev"]
    if args.all:
        return _plan_every_stack(args, stacks)
    plans = _plan_all(stacks)
    for plan in plans:
        if len(plans) == 1:
            print(describe(plan))
        if args.out:
            target = write_plan(plan, args.out)
            if len(plans) == 1:
                print(f"\nWrote the Kubernetes manifests and plan.json to {target}/")
    if len(plans) > 1:
        print(matrix(plans))
        if args.out:
            print(f"\nWrote manifests and plan.json for {len(plans)} stacks under {args.out}/")
    return 0


def _plan_every_stack(args: argparse.Namespace, stacks: list[str]) -> int:
    """`plan --all`: every stack that plans, as one table, and every one that does not,
    with its error; exit 2 when any did not."""
    plans, broken = [], []
    for stack in stacks:
        try:
            plans.append(plan_stack(stack))
        except (ConfigError, InputError, ModelSourceError) as error:
            broken.append(f"stack {stack}: {error}")
    if plans:
        print(matrix(plans))
    if args.out:
        for plan in plans:
            write_plan(plan, args.out)
        print(f"\nWrote manifests and plan.json for {len(plans)} stacks under {args.out}/")
    for line in broken:
        print(f"error: {line}", file=sys.stderr)
    if broken:
        print(
            f"error: {len(broken)} of {len(stacks)} stacks did not plan (above); the other "
            f"{len(plans)} did.",
            file=sys.stderr,
        )
        return 2
    return 0


def _report(args: argparse.Namespace, title: str, diffs: dict[str, StackDiff]) -> int:
    report = render_markdown(title, diffs)
    print(report, end="")
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
    if args.changed_stacks:
        changed = [name for name, diff in diffs.items() if diff.changed]
        args.changed_stacks.write_text(json.dumps(changed) + "\n", encoding="utf-8")
    return 0


def _diff(args: argparse.Namespace) -> int:
    stacks = args.stacks or known_stacks()
    try:
        before = plans_at_ref(PROJECT_DIR, args.diff)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stacks:
        before = {name: plan for name, plan in before.items() if name in stacks}
    after = {plan.stack: plan_json(plan) for plan in _plan_all(stacks)}
    title = f"Offline plan diff: {args.diff} → working tree"
    return _report(args, title, diff_plan_sets(before, after, args.diff, "working tree"))


def _compare(args: argparse.Namespace) -> int:
    names = args.compare
    first, second = (
        without_stack_name(plan_json(plan), plan.stack) for plan in _plan_all(list(names))
    )
    diff = diff_plans(first, second, names[0], names[1])
    title = f"Experiment {names[0]} → {names[1]} (stack names shown as STACK)"
    return _report(args, title, {f"{names[0]} → {names[1]}": diff})


def _docs(args: argparse.Namespace) -> int:
    stale = []
    for path, (current, updated) in rendered_docs().items():
        if updated == current:
            continue
        if args.write:
            path.write_text(updated, encoding="utf-8")
            print(f"rewrote {path.relative_to(PROJECT_DIR)}")
        else:
            stale.append(str(path.relative_to(PROJECT_DIR)))
    if stale:
        print(f"out of date: {', '.join(stale)}: run `make docs` (python -m infra docs --write).")
        return 1
    if not args.write:
        print("docs/ is up to date: its generated sections match what they are generated from.")
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
    except (ConfigError, InputError, ModelSourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(describe_model(model))
    return 0


def _ttl_decide(args: argparse.Namespace) -> int:
    outputs = json_object(
        args.outputs, "a JSON object of {stack: its outputs}", "The cleanup workflow writes it."
    )
    try:
        now = parse_expiry(args.now) if args.now else datetime.now(UTC)
    except ValueError:
        raise InputError(
            f"--now: {args.now!r} is not a UTC time like 2026-11-24T18:00:00Z"
        ) from None
    for stack, value in outputs.items():
        if value is not None and not isinstance(value, dict):
            raise InputError(
                f"{args.outputs}: stack {stack!r} has {json.dumps(value)}, not an object of "
                "its outputs (or null when it has none): write each stack's "
                "`pulumi stack output --json` there"
            )
    decisions = [decide(stack, outputs[stack], now) for stack in sorted(outputs)]
    print(json.dumps([asdict(decision) for decision in decisions], indent=2))
    return 0


def _ttl_report(args: argparse.Namespace) -> int:
    what = "the JSON list `ttl decide` prints"
    entries = read_json(args.decisions, what)
    fields = {"stack", "destroy", "reason", "error"}
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and {"stack", "destroy", "reason"} <= set(entry) <= fields
        for entry in entries
    ):
        raise InputError(
            f"{args.decisions} is not {what} (entries of stack, destroy, reason): run "
            "`python -m infra ttl decide` for it"
        )
    decisions = [TtlDecision(**entry) for entry in entries]
    destroyed = set(args.destroyed.read_text(encoding="utf-8").split()) if args.destroyed else None
    print(summary_markdown(decisions, destroyed), end="")
    failed = [d for d in decisions if d.error or (d.destroy and d.stack not in (destroyed or ()))]
    return 1 if failed else 0


def _showing_defaults(commands: Any) -> Any:
    """Subcommands whose --help shows each option's default."""
    add = commands.add_parser

    def add_parser(name: str, **options: Any) -> argparse.ArgumentParser:
        options.setdefault("formatter_class", DefaultsOnce)
        parser: argparse.ArgumentParser = add(name, **options)
        return parser

    commands.add_parser = add_parser
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    commands = _showing_defaults(parser.add_subparsers(dest="command", required=True))
    add_init_parser(commands)
    plan = commands.add_parser(
        "plan",
        help="run the Pulumi program offline under the SDK's mocks and show what it declares",
    )
    plan.add_argument("stacks", nargs="*", help="stacks or experiment presets (default: dev)")
    plan.add_argument("--all", action="store_true", help="plan every stack and preset")
    plan.add_argument("--out", type=output_dir, help="write DIR/<stack>/*.yaml and plan.json")
    plan.add_argument(
        "--diff",
        metavar="GIT_REF",
        help="compare with the plans at a git ref (the given stacks, default all)",
    )
    plan.add_argument(
        "--compare", nargs=2, metavar=("STACK_A", "STACK_B"), help="compare two experiments"
    )
    plan.add_argument(
        "--markdown", type=output_file, help="with --diff/--compare: also write the report"
    )
    plan.add_argument(
        "--changed-stacks",
        type=output_file,
        help="with --diff/--compare: write a JSON list of the stacks that changed",
    )
    plan.set_defaults(run=_plan)
    model = commands.add_parser("model", help="model sources")
    model_commands = _showing_defaults(model.add_subparsers(dest="model_command", required=True))
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
        type=non_negative_int,
        default=declared["modelVersion"].default,
        help="version to serve an unversioned model as",
    )
    inspect.add_argument(
        "--github-api-url", default=declared["githubApiUrl"].default, help="GitHub API base URL"
    )
    inspect.add_argument(
        "--max-download-mb",
        type=positive_int,
        default=declared["modelMaxDownloadMb"].default,
        help="largest archive to download",
    )
    inspect.set_defaults(run=_model_inspect)
    ttl = commands.add_parser("ttl", help="expired-stack cleanup decisions (for the workflow)")
    ttl_commands = _showing_defaults(ttl.add_subparsers(dest="ttl_command", required=True))
    ttl_decide = ttl_commands.add_parser(
        "decide", help="which stacks to destroy, from {stack: outputs} JSON (stdout: JSON)"
    )
    ttl_decide.add_argument(
        "--outputs",
        type=Path,
        required=True,
        help="a JSON file of {stack: its outputs} (the cleanup workflow writes it)",
    )
    ttl_decide.add_argument("--now", help="the time to judge by, e.g. 2026-11-24T18:00:00Z")
    ttl_decide.set_defaults(run=_ttl_decide)
    ttl_report = ttl_commands.add_parser(
        "report", help="Markdown summary; exit 1 when a stack was kept by error or not destroyed"
    )
    ttl_report.add_argument("--decisions", type=Path, required=True)
    ttl_report.add_argument("--destroyed", type=Path, help="stacks destroyed, one per line")
    ttl_report.set_defaults(run=_ttl_report)
    add_sweep_parser(commands)
    add_rehearse_parser(commands)
    add_promote_parser(commands)
    add_teardown_parser(commands)
    # bench and compare run from infra.bench.cli (python -m infra dispatches them there);
    # listed here so that --help shows every command.
    commands.add_parser("bench", help="load-test a deployed experiment or any TF Serving URL")
    commands.add_parser("compare", help="rank bench results by requests per dollar at capacity")
    docs = commands.add_parser(
        "docs", help="check or regenerate the generated sections of docs/ (reference, code map)"
    )
    docs.add_argument("--write", action="store_true", help="rewrite the stale files in place")
    docs.set_defaults(run=_docs)
    args = parser.parse_args(argv)
    if args.command == "plan":
        _check_plan_options(parser, args)
    try:
        result: int = args.run(args)
    except (ConfigError, InputError, ModelSourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return result
