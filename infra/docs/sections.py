"""Documentation sections generated from the project itself: the settings reference, the
experiment table, the sweep of the reference experiments against separate stacks (from the
declarations and presets), the code map (from the tree and each module's docstring), and
the site's home page (from README.md).

Each lives in one file of docs/, between `<!-- BEGIN GENERATED: <name> -->` and
`<!-- END GENERATED: <name> -->`; the test suite fails when a file and what it is generated
from disagree (`python -m infra docs --write` brings them up to date).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.data import read_yaml
from infra.design.experiment import design_experiment
from infra.design.settings import (
    EXPERIMENTS_DIR,
    PROJECT_DIR,
    available_presets,
    load_declarations,
    resolve_settings,
)
from infra.sweep.design import design_sweep, dry_run_json, reference_experiments
from infra.sweep.durations import DEFAULT_SEARCH

README = PROJECT_DIR / "README.md"
DOCS_DIR = PROJECT_DIR / "docs"
_DOCS_PROJECT = "your-gcp-project"
INFRA_DIR = PROJECT_DIR / "infra"
# A sentence ends at a period and a space, except in "e.g." and "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s+")


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


def _summary(path: Path) -> str:
    """The first sentence of a module's docstring (a package's: its __init__.py)."""
    source = path / "__init__.py" if path.is_dir() else path
    docstring = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or ""
    first = " ".join(docstring.split("\n\n", 1)[0].split())
    if not first:
        raise ValueError(
            f"{source.relative_to(PROJECT_DIR)} has no docstring: the code map shows each "
            "module's first sentence, so say in one what it is for"
        )
    return _SENTENCE_END.split(first, 1)[0].rstrip(".") + "."


def code_map() -> str:
    """Markdown table of the program's packages and modules, each with the first sentence
    of its docstring: a package or module added without one fails the docs check."""
    main = _summary(PROJECT_DIR / "__main__.py")
    rows = ["| where | what it is |", "|---|---|", f"| `__main__.py` | {main} |"]
    packages = sorted(p for p in INFRA_DIR.iterdir() if (p / "__init__.py").is_file())
    modules = sorted(p for p in INFRA_DIR.glob("*.py") if p.name != "__init__.py")
    for path in [*packages, *modules]:
        shown = f"infra/{path.name}{'/' if path.is_dir() else ''}"
        summary = _summary(path).replace("|", "\\|")
        rows.append(f"| `{shown}` | {summary} |")
    return "\n".join(rows)


def readme_page() -> str:
    """The site's home page: README.md, its links to docs/ made relative to the site."""
    text = README.read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text).strip()


SECTIONS: dict[str, Callable[[], str]] = {
    "settings": settings_reference,
    "experiments": experiment_table,
    "sweep": sweep_estimate_table,
    "code-map": code_map,
    "readme": readme_page,
}
# The file each generated section lives in.
PLACES = {
    "settings": DOCS_DIR / "settings.md",
    "experiments": DOCS_DIR / "experiments.md",
    "sweep": DOCS_DIR / "sweep.md",
    "code-map": DOCS_DIR / "architecture.md",
    "readme": DOCS_DIR / "index.md",
}


def render_sections(text: str, names: list[str], shown: str) -> str:
    """`text` with the named generated sections brought up to date."""
    for name in names:
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.S
        )
        if not pattern.search(text):
            raise ValueError(f"{shown} lacks the generated section markers for {name!r}")
        text = pattern.sub(lambda m, b=SECTIONS[name]: f"{m[1]}{b()}\n{m[2]}", text)  # type: ignore[misc]
    return text


def rendered_docs() -> dict[Path, tuple[str, str]]:
    """Every file holding generated sections: (its text now, its text brought up to date)."""
    files: dict[Path, list[str]] = {}
    for name, path in PLACES.items():
        files.setdefault(path, []).append(name)
    result = {}
    for path, names in files.items():
        current = path.read_text(encoding="utf-8")
        shown = str(path.relative_to(PROJECT_DIR))
        result[path] = (current, render_sections(current, names, shown))
    return result
