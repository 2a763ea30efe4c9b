"""The tree shows the architecture: the root of infra/ is the command line only, and no two
packages import each other (imports run one way, from the command line down to the data)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

INFRA = ROOT / "infra"
# Pairs allowed to import each other: none.
KNOWN_MUTUAL: set[frozenset[str]] = set()


def package_imports(infra: Path = INFRA) -> dict[str, set[str]]:
    """For each top-level package (or root module) of infra/, the others it imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in infra.rglob("*.py"):
        parts = path.relative_to(infra).parts
        here = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("infra."):
                there = str(node.module).split(".")[1]
                if there != here:
                    edges[here].add(there)
    return edges


def test_the_root_of_infra_is_the_command_line_only() -> None:
    modules = sorted(p.name for p in INFRA.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py"]
    for directory in (p for p in INFRA.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if directory.name == "data" or any(directory.glob("*.py")):
            assert (directory / "__init__.py").is_file(), f"{directory} is not a package"


def test_no_two_packages_import_each_other() -> None:
    edges = package_imports()
    mutual = {
        frozenset({a, b}) for a, targets in edges.items() for b in targets if a in edges.get(b, ())
    }
    assert mutual <= KNOWN_MUTUAL, f"packages importing each other: {mutual - KNOWN_MUTUAL}"


def test_the_design_imports_nothing_that_talks_to_clusters_or_measures() -> None:
    edges = package_imports()
    above = {"bench", "loadgen", "sweep", "promote", "teardown", "components", "plan", "cli",
             "rehearsal", "scaffold", "docs"}  # fmt: skip
    assert not edges["design"] & above, edges["design"] & above
    assert not edges["model"] & (above | {"design"}), edges["model"]
    assert not edges["inputs"] - {"data"}, edges["inputs"]


def test_a_cycle_would_be_seen(tmp_path: Path) -> None:
    """The check reads real imports: two packages naming each other are caught."""
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"from infra.{other}.x import y\n")
    edges = package_imports(tmp_path)
    assert edges == {"a": {"b"}, "b": {"a"}}


def _imported(module: Path) -> dict[str, set[str]]:
    """module -> the names a file imports from it."""
    names: dict[str, set[str]] = defaultdict(set)
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names[str(node.module)] |= {alias.name for alias in node.names}
    return names


# What each command line would need to plan, run, measure or report itself.
RUNNING = {
    "sweep": {
        "infra.sweep.run", "infra.sweep.live", "infra.sweep.manifest", "infra.sweep.report",
        "infra.sweep.quota", "infra.sweep.search.run", "infra.sweep.search.replay",
        "infra.sweep.search.space", "infra.plan.run", "infra.model.source",
    },
    "bench": {"infra.loadgen.tensors", "infra.bench.report", "infra.bench.results",
              "infra.loadgen.stats"},
    "rehearsal": {"infra.plan.run", "infra.design.stack_config", "infra.model.build_context"},
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(RUNNING))
def test_a_command_line_only_reads_options(package: str) -> None:
    """`sweep`, `bench`/`compare` and `rehearse` read their options and hand them over; they
    neither plan, measure, save nor report (their campaign, command and run modules do)."""
    imported = _imported(INFRA / package / "cli.py")
    assert not set(imported) & RUNNING[package], set(imported) & RUNNING[package]
    session = imported.get("infra.bench.session", set())
    assert session <= {"BenchError"}, session  # its error type, to print it
