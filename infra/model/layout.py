"""Model sources: check a SavedModel and lay it out as TF Serving expects.

TF Serving loads `<base>/<name>/<numeric version>/saved_model.pb` (+ variables/). A source
directory may hold saved_model.pb at its root (served as `modelVersion`) or numeric
version directories that each hold one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from infra.inputs.errors import ModelSourceError

SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
# TF Serving reads a version from a directory name with strings::safe_strto64 and skips
# names that do not parse (file_system_storage_path_source.cc). Plain ASCII digits, within
# int64, are what it and this project agree on.
_VERSION_NAME = re.compile(r"^[0-9]{1,18}$")


def is_version_dir(path: Path) -> bool:
    """Whether TF Serving reads this directory as a numeric model version."""
    return path.is_dir() and bool(_VERSION_NAME.match(path.name))


@dataclass(frozen=True)
class ModelArtifact:
    """A checked model: its files by destination path under /models/<name>/, and a digest."""

    name: str
    source: str
    versions: tuple[int, ...]
    files: tuple[tuple[str, Path], ...]
    sha256: str
    size_bytes: int
    warnings: tuple[str, ...]


def _regular_files(root: Path) -> list[Path]:
    files = []
    inside = root.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(inside):
            raise ModelSourceError(
                f"{path}: symbolic link pointing outside the model directory; copy the file "
                "in instead."
            )
        if path.is_file():
            files.append(path)
        elif not path.is_dir():
            raise ModelSourceError(f"{path}: not a regular file or directory.")
    return files


def _version_dirs(root: Path, shown: str) -> dict[int, Path] | None:
    """Numeric version directories of root, None when saved_model.pb sits at the root."""
    if (root / SAVED_MODEL_FILE).is_file():
        return None
    numeric: dict[int, Path] = {}
    for child in sorted(path for path in root.iterdir() if is_version_dir(path)):
        version = int(child.name)
        if version in numeric:
            # TF Serving would pick one of them without saying which is served.
            raise ModelSourceError(
                f"{shown}: version directories {numeric[version].name!r} and {child.name!r} "
                f"both name version {version}, and TF Serving would serve only one of them. "
                "Remove or renumber one."
            )
        numeric[version] = child
    if not numeric:
        raise ModelSourceError(
            f"{shown}: no {SAVED_MODEL_FILE} at its root nor in numeric version directories "
            f"(expected {SAVED_MODEL_FILE} or 1/{SAVED_MODEL_FILE} there)."
        )
    missing = sorted(v for v, path in numeric.items() if not (path / SAVED_MODEL_FILE).is_file())
    if missing:
        raise ModelSourceError(
            f"{shown}: version directories {missing} have no {SAVED_MODEL_FILE}."
        )
    return numeric


def inspect_local_model(
    source: Path, name: str, default_version: int, shown: str = ""
) -> ModelArtifact:
    """Check a local SavedModel directory and map its files to /models/<name>/<version>/.

    `shown` names the directory in messages (default: its path).
    """
    shown = shown or str(source)
    if not source.is_dir():
        raise ModelSourceError(f"{shown}: not a directory holding a SavedModel.")
    versions = _version_dirs(source, shown)
    layout = versions if versions is not None else {default_version: source}
    files: list[tuple[str, Path]] = []
    warnings = []
    if versions is not None:
        skipped = sorted(
            child.name + ("/" if child.is_dir() else "")
            for child in source.iterdir()
            if child not in versions.values()
        )
        if skipped:
            warnings.append(
                f"{shown}: {', '.join(skipped)} sit next to the version directories and are "
                "not served (TF Serving skips names that are not version numbers); they are "
                "left out of the image."
            )
    for version, version_dir in sorted(layout.items()):
        if not (version_dir / VARIABLES_DIR).is_dir():
            warnings.append(
                f"version {version} has no {VARIABLES_DIR}/ directory: fine for a model "
                "without variables, otherwise it will fail to load."
            )
        for path in _regular_files(version_dir):
            files.append((f"{version}/{path.relative_to(version_dir).as_posix()}", path))
    digest = hashlib.sha256()
    size = 0
    for destination, path in files:
        content = path.read_bytes()
        size += len(content)
        digest.update(f"{destination}\0{len(content)}\0".encode())
        digest.update(content)
    return ModelArtifact(
        name=name,
        source=str(source),
        versions=tuple(sorted(layout)),
        files=tuple(files),
        sha256=digest.hexdigest(),
        size_bytes=size,
        warnings=tuple(warnings),
    )
