"""README sections generated from the declarations: settings reference and experiment table.

Between `<!-- BEGIN GENERATED: <name> -->` and `<!-- END GENERATED: <name> -->`; the test
suite fails when README.md and the declarations disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml

from infra.experiment import design_experiment
from infra.settings import (
    EXPERIMENTS_DIR,
    PROJECT_DIR,
    available_presets,
    load_declarations,
    resolve_settings,
)

README = PROJECT_DIR / "README.md"
_DOCS_PROJECT = "your-gcp-project"


def _default_text(value: Any) -> str:
    if value in ("", []):
        return "(empty)"
    return f"`{json.dumps(value) if isinstance(value, (bool, list)) else value}`"


def settings_reference() -> str:
    """Markdown table of every setting declared in Pulumi.yaml."""
    rows = ["| setting | type | default | what it does |", "|---|---|---|---|"]
    for decl in load_declarations().values():
        description = decl.description.replace("|", "\\|").replace("<", "&lt;")
        rows.append(
            f"| `{decl.key}` | {decl.type} | {_default_text(decl.default)} | {description} |"
        )
    return "\n".join(rows)


def experiment_table() -> str:
    """Markdown table of the shipped presets with their shape, threads and cost."""
    rows = [
        "| preset | reference experiment | machine type | nodes | intra/inter-op | batching "
        "| USD/hour | USD/month |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in available_presets():
        with (EXPERIMENTS_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
            preset = yaml.safe_load(handle)
        settings = resolve_settings(
            stack=name,
            gcp_project=_DOCS_PROJECT,
            config={"experiment": name},
            explicit_keys={"experiment"},
        )
        design = design_experiment(settings)
        server = design.server
        params = server.batching
        batching = (
            "off"
            if params is None
            else f"max {params.max_batch_size}, {params.num_batch_threads} threads"
        )
        rows.append(
            f"| `{name}` | {preset.get('reference', '-')} | {design.shape.machine_type}"
            f"{' (spot)' if settings.spot else ''} | {design.nodes_total} | "
            f"{server.intra_op_parallelism}/{server.inter_op_parallelism} | {batching} | "
            f"{design.cost.usd_per_hour:.4f} | {design.cost.usd_per_month:.2f} |"
        )
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "settings": settings_reference,
    "experiments": experiment_table,
}


def render_readme(text: str) -> str:
    """README text with every generated section brought up to date."""
    for name, build in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.S
        )
        if not pattern.search(text):
            raise ValueError(f"README.md lacks the generated section markers for {name!r}")
        text = pattern.sub(lambda m, b=build: f"{m[1]}{b()}\n{m[2]}", text)  # type: ignore[misc]
    return text
