"""`python -m infra init STACK --model SOURCE [--preset NAME]`: write a commented
Pulumi.<stack>.yaml for a model of one's own, plan it offline, and say what to run next.

The file is checked as `pulumi up` would check it before it is written, and planned after:
a stack that does not plan (a source that is not there, a setting no machine takes) is not
left behind, and a file it would replace is put back.
"""

from __future__ import annotations

import argparse
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.design.experiment import design_experiment
from infra.design.settings import (
    NO_PRESET,
    available_presets,
    load_declarations,
    model_name_from_source,
    project_name,
    resolve_values,
)
from infra.design.stack_config import stack_file
from infra.inputs.errors import ConfigError, InputError, ModelSourceError, did_you_mean
from infra.inputs.values import project_id, stack_name
from infra.model.source import check_pinned_sha256
from infra.plan.render import describe
from infra.plan.run import StackPlan, plan_stack
from infra.scaffold.stack_file import NewStack, render

# Commands up to this long get their comment beside them; longer ones, on the line above.
COMMAND_WIDTH = 64


def add_parser(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write a new stack for your own model, plan it offline, print the next commands",
        description="Write Pulumi.<stack>.yaml serving your model (its name taken from the "
        "source unless --name says otherwise), with the settings you change next listed in "
        "it, commented out, at the values in effect. Checked and planned offline, as "
        "`python -m infra plan` does; nothing is written when it would not plan.",
    )
    init.add_argument("stack", type=stack_name, help="the new stack's name, e.g. my-model")
    init.add_argument(
        "--model",
        required=True,
        metavar="SOURCE",
        help="github:<owner>/<repo>@<tag|latest>#<asset>, an https URL of an archive, or a "
        "path in the project",
    )
    init.add_argument(
        "--preset",
        default=NO_PRESET,
        metavar="NAME",
        help=f"an experiment preset of experiments/ to start from (default: {NO_PRESET}, "
        "the defaults of Pulumi.yaml)",
    )
    init.add_argument(
        "--name", default="", help="the model's name in TF Serving (default: from the source)"
    )
    init.add_argument(
        "--sha256", default="", help="the archive's sha256, pinned as modelSha256 (recommended)"
    )
    init.add_argument("--gcp-project", type=project_id, default="", help="written as gcp:project")
    init.add_argument("--force", action="store_true", help="replace an existing stack file")
    init.set_defaults(run=run_init)


def _values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the new file sets, checked one by one."""
    source = args.model.strip()
    if not source:
        raise InputError(
            "--model is empty: give the SavedModel's source, e.g. "
            "--model github:<owner>/<repo>@v1#saved_model.tar.gz or --model models/my_model"
        )
    presets = available_presets()
    if args.preset != NO_PRESET and args.preset not in presets:
        raise InputError(
            f"--preset {args.preset!r} is not a preset.{did_you_mean(args.preset, presets)} "
            f"Presets (experiments/): {', '.join(presets)}; or leave --preset out for the "
            "defaults of Pulumi.yaml."
        )
    values: dict[str, Any] = {
        "experiment": args.preset,
        "modelSource": source,
        "modelName": args.name.strip() or model_name_from_source(source),
    }
    try:
        pinned = check_pinned_sha256(args.sha256)
    except ModelSourceError as error:
        raise InputError(f"--sha256: {error}") from None
    if pinned:
        values["modelSha256"] = pinned
    return values


def _plan_written(stack: str, target: Path, text: str) -> StackPlan:
    """Write the file, plan the stack from it; on any failure put back what was there."""
    previous = target.read_bytes() if target.exists() else None
    staging = target.with_name(f".{target.name}.init")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, target)
    try:
        return plan_stack(stack)
    except BaseException:
        if previous is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(previous)
        raise


def run_init(args: argparse.Namespace) -> int:
    target = stack_file(args.stack)
    if target.exists() and not args.force:
        raise InputError(
            f"{target.name} exists: stack {args.stack} is set up already. Plan it with "
            f"`python -m infra plan {args.stack}`, pick another name, or pass --force to "
            "replace the file."
        )
    values = _values(args)
    try:
        design = design_experiment(resolve_values(args.stack, values, args.gcp_project))
    except ConfigError as error:
        raise ConfigError(f"init {args.stack}", f"{error} (nothing was written)") from None
    new = NewStack(
        project_name(), args.stack, values, args.gcp_project, f"{datetime.now(UTC):%Y-%m-%d}"
    )
    text = render(new, design, load_declarations())
    try:
        plan = _plan_written(args.stack, target, text)
    except (ConfigError, InputError, ModelSourceError) as error:
        raise ConfigError(f"init {args.stack}", f"{error} (nothing was written)") from None
    print(describe(plan))
    print(f"\nWrote {target.name}: model {values['modelName']!r} from {values['modelSource']}.")
    if not args.name.strip():
        print(
            f"  modelName {values['modelName']!r} was taken from the source; edit it in the "
            "file (or pass --name) to serve it under another."
        )
    print(next_commands(args.stack, args.gcp_project, values))
    return 0


def next_commands(stack: str, gcp_project: str, values: dict[str, Any]) -> str:
    """What to run next, in order, from offline to billed to gone."""
    project = gcp_project or "<your-project-id>"
    model_name = str(values["modelName"])
    model = " ".join(
        f"--set {shlex.quote(f'{key}={values[key]}')}"
        for key in ("modelSource", "modelName", "modelSha256")
        if key in values
    )
    steps = [
        (f"python -m infra plan {stack}", "offline again, after each edit"),
        (f"python -m infra rehearse {stack}", "run it with Docker here, free"),
        (
            f"python -m infra bench http://127.0.0.1:8501 --model {model_name} --rate 5",
            "while the rehearsal runs",
        ),
        (f"pulumi stack init {stack}", "once; then pulumi stack select it"),
        *(
            []
            if gcp_project
            else [(f"pulumi config set gcp:project {project}", "the project to bill")]
        ),
        (f"pulumi preview --stack {stack}", "what would be created"),
        (f"pulumi up --stack {stack}", "billing starts here"),
        (f"python -m infra bench {stack} --find-capacity --p99-ms 300", "its capacity"),
        (
            f"python -m infra sweep --all {model} --dry-run",
            "the 15 reference experiments on it: time and cost",
        ),
        (f"pulumi destroy --stack {stack}", "billing stops here"),
    ]
    width = max(len(command) for command, _ in steps if len(command) <= COMMAND_WIDTH)
    lines = ["Next:"]
    for command, why in steps:
        if len(command) <= COMMAND_WIDTH:
            lines.append(f"  {command:<{width}}  # {why}")
        else:
            lines += [f"  # {why}:", f"  {command}"]
    return "\n".join(lines)
