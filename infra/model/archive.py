"""Safe extraction of model archives (tar, optionally compressed, or zip).

Archives come from the internet: every member is checked before anything is written, and
a refusal names the member and the reason. Python's tar "data" filter is applied as well.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.inputs.errors import ModelSourceError

GIB = 1024**3


@dataclass(frozen=True)
class ExtractionLimits:
    """Caps on what one archive may expand to."""

    max_members: int = 10_000
    max_member_bytes: int = 8 * GIB
    max_total_bytes: int = 16 * GIB


def _refuse(archive: Path, member: str, why: str) -> ModelSourceError:
    return ModelSourceError(f"{archive.name}: member {member!r} refused: {why}.")


def _safe_relative(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise _refuse(archive, name, "absolute path")
    if ".." in path.parts:
        raise _refuse(archive, name, "its path climbs out of the archive with '..'")
    return path


def _check_link(archive: Path, member: tarfile.TarInfo) -> None:
    target = member.linkname
    if target.startswith("/") or PurePosixPath(target).is_absolute():
        raise _refuse(archive, member.name, f"link to the absolute path {target!r}")
    # Symlink targets are relative to the link's directory; hard links to the archive root.
    base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
    depth = 0
    for part in (base / target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            kind = "symbolic" if member.issym() else "hard"
            raise _refuse(
                archive, member.name, f"{kind} link pointing outside the archive ({target!r})"
            )


def _check_count_and_size(
    archive: Path, name: str, *, count: int, size: int, total: int, limits: ExtractionLimits
) -> None:
    if count > limits.max_members:
        raise ModelSourceError(
            f"{archive.name}: more than {limits.max_members} members (at {name!r}); refusing "
            "to extract."
        )
    if size > limits.max_member_bytes:
        raise _refuse(archive, name, f"{size} bytes, over the {limits.max_member_bytes}-byte cap")
    if total > limits.max_total_bytes:
        raise ModelSourceError(
            f"{archive.name}: expands to more than {limits.max_total_bytes} bytes (at "
            f"{name!r}); refusing to extract."
        )


def _checked_tar_members(
    archive: Path, tar: tarfile.TarFile, limits: ExtractionLimits
) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        _safe_relative(archive, member.name)
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise _refuse(archive, member.name, "device or special file")
        if member.issym() or member.islnk():
            _check_link(archive, member)
        elif not (member.isfile() or member.isdir()):
            raise _refuse(archive, member.name, "not a regular file, directory or link")
        total += member.size
        _check_count_and_size(
            archive,
            member.name,
            count=len(members) + 1,
            size=member.size,
            total=total,
            limits=limits,
        )
        members.append(member)
    return members


def _extract_zip(archive: Path, destination: Path, limits: ExtractionLimits) -> None:
    with zipfile.ZipFile(archive) as bundle:
        infos = bundle.infolist()
        total = 0
        for count, info in enumerate(infos, start=1):
            relative = _safe_relative(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse(archive, info.filename, "links are not accepted in zip archives")
            # Header sizes can lie: count the bytes actually written.
            _check_count_and_size(
                archive,
                info.filename,
                count=count,
                size=info.file_size,
                total=total + info.file_size,
                limits=limits,
            )
            target = destination / relative
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with bundle.open(info) as source, target.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    total += len(chunk)
                    _check_count_and_size(
                        archive,
                        info.filename,
                        count=count,
                        size=written,
                        total=total,
                        limits=limits,
                    )
                    sink.write(chunk)


def safe_extract(archive: Path, destination: Path, limits: ExtractionLimits) -> None:
    """Extract archive into destination (created) after checking every member."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = _checked_tar_members(archive, tar, limits)
                tar.extractall(destination, members=members, filter="data")
        elif zipfile.is_zipfile(archive):
            _extract_zip(archive, destination, limits)
        else:
            raise ModelSourceError(f"{archive.name}: not a tar or zip archive.")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise ModelSourceError(f"{archive.name}: cannot be extracted ({error}).") from None
    except ModelSourceError:
        shutil.rmtree(destination, ignore_errors=True)
        raise
