"""README sections generated from the declarations: settings reference, experiment table,
and the sweep of the reference experiments against separate stacks.

Between `<!-- BEGIN GENERATED: <name> -->` and `<!-- END GENERATED: <name> -->`; the test
suite fails when README.md and the declarations disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from infra.experiment import design_experiment
from infra.facts import read_yaml
from infra.settings import (
    EXPERIMENTS_DIR,
    PROJECT_DIR,
    available_presets,
    load_declarations,
    resolve_settings,
)
from infra.sweep.design import design_sweep, dry_run_json, reference_experiments
from infra.sweep.durations import DEFAULT_SEARCH

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
        preset = read_yaml(EXPERIMENTS_DIR / f"{name}.yaml")
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


def sweep_estimate_table() -> str:
    """The dry run of the reference sweep, at the sweep's defaults, beside separate stacks."""
    design = design_sweep(reference_experiments(), DEFAULT_SEARCH)
    document = dry_run_json(design, None)
    pools = document["node_pools"]
    sweep, separate = design.estimate, design.separate
    shapes = ", ".join(
        f"{step.previous.machine_type} → {step.experiment.machine_type} {step.pool.kind}"
        for step in design.steps
        if step.previous and step.pool.kind in ("replace", "in-place")
    )
    return "\n".join(
        [
            f"Durations as of {design.durations.as_of}, prices {document['prices']['catalogue']}, "
            f"at most {design.search.max_steps} capacity steps of "
            f"{design.search.warmup_s:g} + {design.search.duration_s:g} s per experiment:",
            "",
            "| | hours | USD |",
            "|---|---|---|",
            f"| one sweep: {document['clusters_created']} cluster created, node pools created "
            f"{pools['created']} and replaced {pools['replaced']} ({shapes}) "
            f"| {sweep.hours:.1f} | {sweep.usd:.2f} |",
            f"| the same {len(design.steps)} as separate stacks (up, capacity search, destroy, "
            f"one after another) | {separate.hours:.1f} | {separate.usd:.2f} |",
            "",
            f"The sweep takes {sweep.hours / separate.hours:.0%} of the time and "
            f"{sweep.usd / separate.usd:.0%} of the money. What it holds at once in "
            f"{design.region}, per quota metric:",
            "",
            "| quota | at most | when |",
            "|---|---|---|",
            *(
                f"| `{d.metric}` ({'project' if d.scope == 'project' else 'regional'}) "
                f"| {d.amount} | {d.where} |"
                for d in design.need.demands
            ),
        ]
    )


SECTIONS: dict[str, Callable[[], str]] = {
    "settings": settings_reference,
    "experiments": experiment_table,
    "sweep": sweep_estimate_table,
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
