"""Run the real Pulumi program offline, under the SDK's mocks, for one stack."""

from __future__ import annotations

import json
import logging
import os
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.design.experiment import ExperimentDesign, design_experiment
from infra.design.settings import (
    EXPERIMENTS_DIR,
    NO_PRESET,
    PLACEHOLDER_GCP_PROJECT,
    PROJECT_DIR,
    SECRET_SETTINGS,
    Settings,
    available_presets,
    load_declarations,
    project_name,
    resolve_settings,
)
from infra.design.stack_config import (
    OFFLINE_ENV,
    keys_set_in_stack_file,
    stack_file,
    stack_file_config,
)
from infra.inputs.errors import ConfigError
from infra.plan.mocks import PlanMocks, Recording, RecordingMonitor

PROGRAM = PROJECT_DIR / "__main__.py"


@dataclass(frozen=True)
class StackPlan:
    """What `pulumi up` would declare for one stack, and the decisions behind it."""

    stack: str
    settings: Settings
    design: ExperimentDesign
    recording: Recording
    warnings: tuple[str, ...]


def known_stacks() -> list[str]:
    """Stacks with a Pulumi.<stack>.yaml, then every preset without one."""
    with_files = sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in PROJECT_DIR.glob("Pulumi.*.yaml")
    )
    return with_files + [name for name in available_presets() if name not in with_files]


def stack_config(stack: str, experiment: str = "") -> tuple[dict[str, Any], str]:
    """The stack's config as the engine would pass it (declared defaults merged), and its
    GCP project. A stack without a file is planned from its preset: the one named like
    the stack, or `experiment` (as the sweep's stack is, before it exists)."""
    project = project_name()
    path = stack_file(stack)
    preset = experiment or stack
    given = experiment == NO_PRESET  # a configuration of its own, as a search's
    if not path.is_file() and not given and not (EXPERIMENTS_DIR / f"{preset}.yaml").is_file():
        raise ConfigError(
            "stack",
            f"{stack!r} has neither a Pulumi.{stack}.yaml nor an experiments/{stack}.yaml "
            f"preset. Known stacks: {', '.join(known_stacks())}.",
        )
    raw: dict[str, Any] = {}
    if path.is_file():
        raw = stack_file_config(path)
    values = {key: decl.default for key, decl in load_declarations().items()}
    for key, value in raw.items():
        short = key.removeprefix(f"{project}:")
        # Secrets stay encrypted: the offline plan never needs them (it fetches nothing).
        if ":" not in short and short not in SECRET_SETTINGS:
            values[short] = value
    gcp_project = str(raw.get("gcp:project") or "")
    return values, gcp_project


def config_string(value: Any) -> str:
    """A setting as `pulumi config set` stores it (booleans lower case, lists as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def design_stack(
    stack: str, overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str, list[str], ExperimentDesign]:
    """The stack's config values, GCP project, warnings about them and the experiment's
    design, as the program resolves them, without running the program (pure and fast)."""
    extra = dict(overrides or {})
    values, gcp_project = stack_config(stack, str(extra.get("experiment") or ""))
    gcp_project = str(extra.pop("gcp:project", gcp_project))
    values |= extra
    warnings = []
    if not gcp_project:
        gcp_project = PLACEHOLDER_GCP_PROJECT
        warnings.append(
            f"gcp:project is not set for stack {stack}; the plan uses {gcp_project!r}. "
            "Before `pulumi up`: pulumi config set gcp:project <your-project-id>"
        )
    # The same resolution the program does, so bad settings fail here with their message.
    settings = resolve_settings(
        stack=stack,
        gcp_project=gcp_project,
        config=values,
        explicit_keys=keys_set_in_stack_file(stack, project_name()) | set(extra),
    )
    return values, gcp_project, warnings, design_experiment(settings)


def plan_stack(
    stack: str, overrides: Mapping[str, Any] | None = None, preview: bool = False
) -> StackPlan:
    """Resolve settings, then run __main__.py under mocks and record every resource.

    `overrides` act as extra stack config (as `pulumi config set` would add). With
    `preview`, outputs the mocks do not fake stay unknown, as in `pulumi preview`.
    """
    project = project_name()
    values, gcp_project, warnings, design = design_stack(stack, overrides)
    settings = design.settings

    recording = Recording()
    plan_mocks = PlanMocks(gcp_project)
    program_log = _WarningCollector()
    pulumi.runtime.set_mocks(
        plan_mocks,
        project=project,
        stack=stack,
        preview=preview,
        logger=program_log.logger,
        monitor=RecordingMonitor(plan_mocks, recording),
    )
    pulumi.runtime.set_all_config(
        {f"{project}:{key}": config_string(value) for key, value in values.items()}
        | {"gcp:project": gcp_project}
    )
    # set_mocks made a root stack already; the program gets its own, as under the CLI.
    runtime_settings.ROOT.set(None)

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    previous = os.environ.get(OFFLINE_ENV)
    os.environ[OFFLINE_ENV] = "1"
    try:
        _sync_await(run_in_stack(program))
    except pulumi.RunError as error:
        raise ConfigError("program", str(error)) from None
    finally:
        if previous is None:
            os.environ.pop(OFFLINE_ENV, None)
        else:
            os.environ[OFFLINE_ENV] = previous
    return StackPlan(stack, settings, design, recording, (*warnings, *program_log.warnings))


class _WarningCollector(logging.Handler):
    """Keeps the warnings the program logs with pulumi.log.warn, in order."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []
        self.logger = logging.Logger("tfserving-gke.plan", logging.WARNING)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(record.getMessage())
