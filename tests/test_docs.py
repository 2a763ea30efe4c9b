"""README stays true: generated sections current, its two commands the ones CI runs."""

from __future__ import annotations

import re

from infra.docs import README, render_readme
from infra.settings import load_declarations
from tests.conftest import ROOT


def test_readme_generated_sections_match_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "README is stale: run `make docs`"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for key in load_declarations():
        assert f"| `{key}` |" in text


def test_ci_runs_the_readme_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    fresh = readme.split("## Two commands on a fresh machine", 1)[1]
    commands = re.findall(r"^(make \w+)", fresh.split("```sh", 1)[1].split("```", 1)[0], re.M)
    assert commands == ["make plan", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert [line for line in ci.splitlines() if line.startswith("make ")] == commands
