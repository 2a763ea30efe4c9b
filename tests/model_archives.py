"""Model archives built by the tests: good layouts from the committed tiny model, and
hostile ones."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from tests.conftest import ROOT

TINY_MODEL = ROOT / "models" / "tiny_classifier"
# A warmup file TensorFlow runs on the tiny model (tests/data/models/README.md).
OWN_WARMUP = (ROOT / "tests" / "data" / "warmup" / "tiny_classifier_ok").read_bytes()


def tiny_model_files(prefix: str) -> dict[str, bytes]:
    """The tiny SavedModel's files under `prefix` (e.g. "saved_model/1/")."""
    return {
        prefix + path.relative_to(TINY_MODEL).as_posix(): path.read_bytes()
        for path in sorted(TINY_MODEL.rglob("*"))
        if path.is_file()
    }


def tar_gz(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
        for info in extra or []:
            tar.addfile(info)
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path
