"""The edge where Pulumi config enters the program: the only reader of pulumi.Config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.settings import PROJECT_DIR, Settings, load_declarations, project_name, resolve_settings


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def keys_set_in_stack_file(stack: str, project: str, project_dir: Path = PROJECT_DIR) -> set[str]:
    """Project settings the stack's own file sets (so a preset cannot override them)."""
    path = stack_file(stack, project_dir)
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as handle:
        config: dict[str, Any] = (yaml.safe_load(handle) or {}).get("config") or {}
    prefix = f"{project}:"
    return {key.removeprefix(prefix) for key in config if ":" not in key.removeprefix(prefix)}


def settings_from_pulumi() -> Settings:
    """Settings of the stack being deployed, from its Pulumi config."""
    stack = pulumi.get_stack()
    project = project_name()
    config = pulumi.Config()
    values = {key: value for key in load_declarations() if (value := config.get(key)) is not None}
    return resolve_settings(
        stack=stack,
        gcp_project=pulumi.Config("gcp").get("project") or "",
        config=values,
        explicit_keys=keys_set_in_stack_file(stack, project),
    )
