"""The edge where Pulumi config and the environment enter the program.

The only reader of pulumi.Config and of environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG

from infra.data import read_yaml
from infra.design.settings import (
    PROJECT_DIR,
    SECRET_SETTINGS,
    Settings,
    load_declarations,
    project_name,
    resolve_settings,
)
from infra.inputs.errors import ConfigError, InputError
from infra.model.build_context import BuildContext, write_build_context
from infra.model.source import FetchEnvironment, ModelRequest, ResolvedModel, resolve_model
from infra.model.warmup.records import Warmup, plan_warmup

# Set by the offline plan: resolve model sources from the cache only, never the network.
OFFLINE_ENV = "TFSERVING_GKE_OFFLINE"
# Optional: a model cache shared by several checkouts (default build/cache in the project).
CACHE_ENV = "TFSERVING_GKE_CACHE_DIR"
TOKEN_ENVS = ("GITHUB_TOKEN", "GH_TOKEN")


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def stack_file_config(path: Path) -> dict[str, Any]:
    """The `config` mapping of a stack file, as Pulumi reads it: a mapping whose keys are
    `<namespace>:<name>` (Pulumi refuses a key without its namespace)."""
    if not path.is_file():
        return {}
    document = read_yaml(path, "a stack's settings file (config: {key: value})") or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise InputError(
            f"{path}: `config` is a YAML {type(config).__name__}; it must be a mapping of "
            "settings, e.g. `config:` then `  tfserving-gke:nodeCount: 3`"
        )
    for key in config:
        if ":" not in str(key):
            raise InputError(
                f"{path}: config key {key!r} has no namespace, and Pulumi refuses it "
                f"(keys are <namespace>:<name>): write `{project_name()}:{key}` for this "
                f"project's setting (or run `pulumi config set {key} ...`, which adds it)"
            )
    return config


def _stack_file_config(stack: str, project_dir: Path) -> dict[str, Any]:
    return stack_file_config(stack_file(stack, project_dir))


def keys_set_in_stack_file(stack: str, project: str, project_dir: Path = PROJECT_DIR) -> set[str]:
    """Project settings the stack's own file sets (so a preset cannot override them).

    Also refuses secret settings stored in plain text there.
    """
    prefix = f"{project}:"
    keys = set()
    for key, value in _stack_file_config(stack, project_dir).items():
        short = key.removeprefix(prefix)
        if ":" in short:
            continue
        if short in SECRET_SETTINGS and not (isinstance(value, dict) and "secure" in value):
            raise ConfigError(
                short,
                f"is stored in plain text in Pulumi.{stack}.yaml. Remove it and run "
                f"`pulumi config set --secret {short} <value>`.",
            )
        keys.add(short)
    return keys


def fetch_environment(
    github_api_url: str,
    max_download_mb: int,
    secret_token: str = "",
    environ: Mapping[str, str] = os.environ,
) -> FetchEnvironment:
    """How model sources are fetched: the token (setting, else GITHUB_TOKEN/GH_TOKEN),
    network permission and caps."""
    token = secret_token or next((environ[name] for name in TOKEN_ENVS if environ.get(name)), "")
    return FetchEnvironment(
        project_dir=PROJECT_DIR,
        github_api_url=github_api_url,
        token=token,
        offline=environ.get(OFFLINE_ENV) == "1",
        max_download_bytes=max_download_mb * 1024 * 1024,
        cache_dir=Path(environ[CACHE_ENV]) if environ.get(CACHE_ENV) else None,
    )


def deploy_time(environ: Mapping[str, str] = os.environ) -> datetime | None:
    """Now, for a real preview or deployment; None in the offline plan (no clock in plans)."""
    return None if environ.get(OFFLINE_ENV) == "1" else datetime.now(UTC)


def settings_from_pulumi() -> tuple[Settings, FetchEnvironment]:
    """Settings of the stack being deployed, and how to fetch its model."""
    stack = pulumi.get_stack()
    project = project_name()
    config = pulumi.Config()
    declared = load_declarations()
    values = {
        key: value
        for key in declared
        if key not in SECRET_SETTINGS and (value := config.get(key)) is not None
    }
    # Keys the stack sets that Pulumi.yaml does not declare (a misspelt setting): passed on
    # so the resolution refuses them by name instead of silently ignoring them.
    prefix = f"{project}:"
    values |= {
        key.removeprefix(prefix): value
        for key, value in CONFIG.get().items()
        if key.startswith(prefix) and key.removeprefix(prefix) not in declared
    }
    settings = resolve_settings(
        stack=stack,
        gcp_project=pulumi.Config("gcp").get("project") or "",
        config=values,
        explicit_keys=keys_set_in_stack_file(stack, project),
    )
    fetch = fetch_environment(
        settings.github_api_url, settings.model_max_download_mb, config.get("githubToken") or ""
    )
    return settings, fetch


@dataclass(frozen=True)
class ServingContext:
    """What the serving image is built from: the model, its warmup records, the context."""

    model: ResolvedModel
    warmup: Warmup
    context: BuildContext


def serving_context(
    settings: Settings,
    fetch: FetchEnvironment,
    project_dir: Path,
    warmup_batch_sizes: tuple[int, ...] = (1,),
) -> ServingContext:
    """The stack's model resolved (fetched and verified; left unresolved by an offline
    fetch of a remote source), its warmup records (at the batch sizes the server runs, on
    a GPU), and the serving image's build context: what `pulumi up` builds, and what a
    rehearsal runs."""
    request = ModelRequest(
        source=settings.model_source,
        name=settings.model_name,
        default_version=settings.model_version,
        pinned_sha256=settings.model_sha256,
    )
    model = resolve_model(request, fetch)
    warmup = plan_warmup(settings.model_name, model, settings.warmup, warmup_batch_sizes)
    context = write_build_context(
        settings.model_name,
        model,
        settings.tf_serving_version,
        settings.tf_serving_variant,
        project_dir,
        warmup=warmup,
    )
    return ServingContext(model, warmup, context)
