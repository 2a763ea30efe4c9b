"""The documentation stays true: README's two commands are the ones CI runs, its quickstart
runs as written (the offline part of it), docs/ builds as a site in strict mode, and
every generated section (settings, experiments, sweep estimate, code map, home page)
matches what it is generated from."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from infra.design.settings import load_declarations
from infra.docs import sections as docs
from infra.docs.sections import README, rendered_docs
from tests.conftest import ROOT

README_MAX_LINES = 400


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_generated_sections_match_what_they_are_generated_from() -> None:
    stale = [str(p) for p, (now, fresh) in rendered_docs().items() if now != fresh]
    assert not stale, f"stale: {stale}: run `make docs`"


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for key in load_declarations():
        assert f"| `{key}` |" in text


def test_the_code_map_names_every_package_and_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    infra = ROOT / "infra"
    for package in (p for p in infra.iterdir() if (p / "__init__.py").is_file()):
        assert f"| `infra/{package.name}/` |" in text
    for module in (p for p in infra.glob("*.py") if p.name != "__init__.py"):
        assert f"| `infra/{module.name}` |" in text


def test_a_module_without_a_docstring_fails_the_code_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "newthing"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.setattr(docs, "PROJECT_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"newthing/__init__\.py has no docstring"):
        docs._summary(package)


def test_ci_runs_the_readme_commands() -> None:
    fresh = readme().split("## Two commands on a fresh machine", 1)[1]
    commands = re.findall(r"^(make \w+)", fresh.split("```sh", 1)[1].split("```", 1)[0], re.M)
    assert commands == ["make plan", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert [line for line in ci.splitlines() if line.startswith("make ")] == commands


def test_the_readme_is_short_and_links_every_page_of_the_site() -> None:
    text = readme()
    assert len(text.splitlines()) <= README_MAX_LINES
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True and config["theme"]["name"] == "material"

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [page for item in nav for page in pages(item)]
        if isinstance(nav, dict):
            return [page for value in nav.values() for page in pages(value)]
        return []

    in_nav = set(pages(config["nav"]))
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert in_nav == on_disk
    for page in on_disk - {"index.md"}:
        assert f"](docs/{page})" in text, f"README does not link docs/{page}"


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "models" / "index.html").is_file()
    assert "rehearse" in (tmp_path / "models" / "index.html").read_text(encoding="utf-8")


def quickstart() -> list[str]:
    """The quickstart's shell lines, continuations joined, comments dropped."""
    section = readme().split("## Serve your own model", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines = []
    for raw in block.replace("\\\n", " ").splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_the_quickstart_runs_offline_as_written(tmp_path: Path) -> None:
    """A newcomer's path: every offline command of the quickstart, in order, with the
    project's tiny model as MODEL; pulumi's (no CLI here) are only checked to be there.
    Docker is kept off the PATH, so the rehearsal prints its commands."""
    lines = quickstart()
    assert lines[0].startswith("MODEL=")
    # The quickstart's stack under a name of the test's own: a user's Pulumi.my-model.yaml,
    # made by following the quickstart in this clone, is neither used nor removed.
    stack = f"my-model-{uuid.uuid4().hex[:8]}"
    lines = [re.sub(r"\bmy-model\b", stack, line) for line in lines]
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),
        "MODEL": "models/tiny_classifier",
        "TFSERVING_GKE_CACHE_DIR": str(tmp_path / "cache"),
    }
    ran: list[str] = []
    pulumi = [line for line in lines if line.startswith("pulumi ")]
    assert [p.split()[1] for p in pulumi] == ["stack", "config", "preview", "up", "destroy"]
    try:
        for line in lines[1:]:
            if not line.startswith("venv/bin/python -m infra "):
                continue
            words = shlex.split(line.replace("$MODEL", env["MODEL"]))
            argv = [sys.executable, *words[1:]]
            command = argv[3]
            if command == "bench":  # needs the deployed stack
                continue
            run = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300, env=env
            )
            expected = 1 if command == "rehearse" else 0  # no Docker: commands printed
            assert run.returncode == expected, f"{line}\n{run.stdout[-2000:]}\n{run.stderr}"
            assert "Traceback" not in run.stderr
            ran.append(command)
            if command == "init":
                assert "Next:" in run.stdout and stack_file.is_file()
            if command == "rehearse":
                assert "docker build" in run.stdout and "docker run" in run.stdout
    finally:
        stack_file.unlink(missing_ok=True)
    assert ran == ["init", "plan", "rehearse", "sweep", "sweep", "sweep"]
