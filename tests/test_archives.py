"""Archive extraction: accepted layouts, and a corpus of hostile archives refused with the
member and the reason."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from infra.inputs.errors import ModelSourceError
from infra.model.archive import ExtractionLimits
from infra.model.source import FetchEnvironment, ModelRequest, resolve_model
from tests.model_archives import OWN_WARMUP, link, tar_gz, tiny_model_files, write, zip_bytes


def resolve_archive(tmp_path: Path, content: bytes, name: str = "model.tar.gz", **limits: int):  # type: ignore[no-untyped-def]
    archive = write(tmp_path / "in" / name, content)
    env = FetchEnvironment(project_dir=tmp_path, limits=ExtractionLimits(**limits))
    return resolve_model(ModelRequest(str(archive), "tiny", 1), env)


@pytest.mark.parametrize(
    ("prefix", "versions"),
    [
        ("", (1,)),  # saved_model.pb at the root, served as modelVersion
        ("saved_model/", (1,)),  # under one top directory
        ("saved_model/1/", (1,)),  # the reference system's layout
        ("7/", (7,)),  # version directories at the root
    ],
)
def test_accepted_layouts(tmp_path: Path, prefix: str, versions: tuple[int, ...]) -> None:
    model = resolve_archive(tmp_path, tar_gz(tiny_model_files(prefix)))
    assert model.artifact is not None
    assert model.artifact.versions == versions
    destinations = {d for d, _ in model.artifact.files}
    assert f"{versions[0]}/saved_model.pb" in destinations
    assert model.signatures is not None
    assert model.signatures[0].inputs[0].name == "image_input"


def test_several_versions_are_all_served(tmp_path: Path) -> None:
    files = tiny_model_files("m/1/") | tiny_model_files("m/2/")
    model = resolve_archive(tmp_path, tar_gz(files))
    assert model.artifact is not None
    assert model.artifact.versions == (1, 2)


def test_zip_archives_are_accepted(tmp_path: Path) -> None:
    model = resolve_archive(tmp_path, zip_bytes(tiny_model_files("export/3/")), "model.zip")
    assert model.artifact is not None
    assert model.artifact.versions == (3,)


def test_warmup_file_is_kept(tmp_path: Path) -> None:
    files = tiny_model_files("m/1/") | {"m/1/assets.extra/tf_serving_warmup_requests": OWN_WARMUP}
    model = resolve_archive(tmp_path, tar_gz(files))
    assert model.warmup is True
    assert model.artifact is not None
    assert "1/assets.extra/tf_serving_warmup_requests" in {d for d, _ in model.artifact.files}


def test_non_numeric_directories_are_skipped_as_tf_serving_skips_them(tmp_path: Path) -> None:
    files = tiny_model_files("m/2/") | {"m/latest/saved_model.pb": b"x", "m/README": b"hi"}
    model = resolve_archive(tmp_path, tar_gz(files))
    assert model.artifact is not None
    assert model.artifact.versions == (2,)
    assert all(d.startswith("2/") for d, _ in model.artifact.files)
    assert any(
        "README, latest/ sit next to the version directories and are not served" in w
        for w in model.warnings
    )


def test_warmup_counts_only_in_the_served_version(tmp_path: Path) -> None:
    warmup = "assets.extra/tf_serving_warmup_requests"
    files = tiny_model_files("m/1/") | tiny_model_files("m/2/") | {f"m/1/{warmup}": b"\0"}
    model = resolve_archive(tmp_path, tar_gz(files))
    assert model.warmup is False
    assert any(
        f"warmup records at 1/{warmup} are not used: TF Serving serves version 2" in w
        for w in model.warnings
    )
    nested = tiny_model_files("m/1/") | {f"m/1/extra/{warmup}": b"\0"}
    assert resolve_archive(tmp_path / "nested", tar_gz(nested)).warmup is False


def test_missing_variables_is_only_a_warning(tmp_path: Path) -> None:
    files = {k: v for k, v in tiny_model_files("m/1/").items() if "variables" not in k}
    model = resolve_archive(tmp_path, tar_gz(files))
    assert any("version 1 has no variables/ directory" in w for w in model.warnings)


def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("m/1/null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


HOSTILE = [
    ("traversal", tar_gz({"../evil": b"x"}), {}, "member '../evil' refused: its path climbs out"),
    (
        "absolute path",
        tar_gz({"/etc/cron.d/evil": b"x"}),
        {},
        "member '/etc/cron.d/evil' refused: absolute path",
    ),
    (
        "symlink escape",
        tar_gz(tiny_model_files("m/1/"), [link("m/1/leak", "../../../etc/passwd")]),
        {},
        "member 'm/1/leak' refused: symbolic link pointing outside the archive",
    ),
    (
        "absolute symlink",
        tar_gz({}, [link("m/leak", "/etc/passwd")]),
        {},
        "member 'm/leak' refused: link to the absolute path '/etc/passwd'",
    ),
    (
        "hardlink escape",
        tar_gz({}, [link("m/hard", "../outside", tarfile.LNKTYPE)]),
        {},
        "member 'm/hard' refused: hard link pointing outside the archive",
    ),
    ("device file", tar_gz({}, [_device()]), {}, "member 'm/1/null' refused: device or special"),
    (
        "oversized member",
        tar_gz({"m/1/saved_model.pb": b"x" * 2048}),
        {"max_member_bytes": 1024},
        "member 'm/1/saved_model.pb' refused: 2048 bytes, over the 1024-byte cap",
    ),
    (
        "too much in total",
        tar_gz({f"m/1/f{i}": b"x" * 600 for i in range(3)}),
        {"max_total_bytes": 1024},
        "expands to more than 1024 bytes (at 'm/1/f1')",
    ),
    (
        "too many members",
        tar_gz({f"m/1/f{i}": b"" for i in range(20)}),
        {"max_members": 10},
        "more than 10 members (at 'm/1/f10')",
    ),
    (
        "no saved_model.pb",
        tar_gz({"m/1/variables/variables.index": b"x"}),
        {},
        "no saved_model.pb anywhere in the model source",
    ),
    (
        "saved_model.pb too deep",
        tar_gz({"a/b/c/saved_model.pb": b"x", "z": b""}),
        {},
        "saved_model.pb found at ['a/b/c/saved_model.pb'] but not where TF Serving expects it",
    ),
    (
        "two directories naming one version",
        tar_gz(tiny_model_files("m/1/") | tiny_model_files("m/01/")),
        {},
        "version directories '01' and '1' both name version 1",
    ),
    ("zip traversal", zip_bytes({"../../evil": b"x"}), {}, "member '../../evil' refused"),
    ("not an archive", b"<html>rate limited</html>", {}, "not a tar or zip archive"),
]


@pytest.mark.parametrize(
    ("archive", "limits", "message"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_archives_are_refused_with_member_and_reason(
    tmp_path: Path, archive: bytes, limits: dict[str, int], message: str
) -> None:
    name = "model.zip" if archive[:2] == b"PK" else "model.tar.gz"
    with pytest.raises(ModelSourceError) as caught:
        resolve_archive(tmp_path, archive, name, **limits)
    assert message in str(caught.value)
    assert not (tmp_path / "outside").exists()
    if "saved_model.pb" not in message and "directories" not in message:
        # Refused before extraction: nothing half-extracted is left for a later run.
        assert not list((tmp_path / "build" / "cache" / "models").glob("[0-9a-f]*"))
