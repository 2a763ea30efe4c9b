"""Model sources: from the `modelSource` setting to one exact, verified, laid-out model.

Sources:
  github:<owner>/<repo>@<tag|latest>#<asset>   a release asset (tar or zip archive)
  https://host/path/model.tar.gz               any archive URL; needs modelSha256
  <path>                                       a local SavedModel directory or archive

`resolve_model` is the one code path for `pulumi preview/up`, the offline plan and
`python -m infra model inspect`. Downloads land in a content-addressed cache
(build/cache/), so a second run with nothing new downloads nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.inputs.errors import ModelSourceError
from infra.model.archive import ExtractionLimits, safe_extract
from infra.model.fetch import HttpClient, RetryPolicy, check_url_is_safe, github_release_asset
from infra.model.layout import SAVED_MODEL_FILE, ModelArtifact, inspect_local_model, is_version_dir
from infra.model.signatures import Signature, read_saved_model
from infra.model.warmup.check import describe_problems, warmup_file_problems

CACHE_DIR = Path("build") / "cache"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_GENERATED = (
    "none in the model: the image build generates one from its serving signatures (one "
    "Predict request each), unless the stack sets warmup false"
)
_GITHUB = re.compile(
    r"^github:(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/(?P<repo>[A-Za-z0-9._-]+)"
    r"@(?P<tag>[^#\s]+)#(?P<asset>[^\s/]+)$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelRequest:
    """What the settings ask for."""

    source: str
    name: str
    default_version: int
    pinned_sha256: str = ""


@dataclass(frozen=True)
class FetchEnvironment:
    """Where and how to fetch: credentials, network permission, cache and caps."""

    project_dir: Path
    github_api_url: str = "https://api.github.com"
    token: str = ""
    offline: bool = False
    max_download_bytes: int = 4096 * 1024 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: ExtractionLimits = field(default_factory=ExtractionLimits)
    cache_dir: Path | None = None  # default: build/cache in the project

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.project_dir / CACHE_DIR


@dataclass(frozen=True)
class ResolvedModel:
    """The exact artifact behind a source, and the model laid out from it."""

    source: str
    kind: str  # github | url | local-archive | local-directory
    release_tag: str  # the release tag, "url", or "local"
    asset: str
    url: str
    sha256: str  # of the archive (or, for a directory, of its files); "" when unresolved
    size_bytes: int
    artifact: ModelArtifact | None  # None: not resolvable offline
    signatures: tuple[Signature, ...] | None
    warmup: bool
    warnings: tuple[str, ...]

    @property
    def resolved(self) -> bool:
        return self.artifact is not None


def check_pinned_sha256(value: str) -> str:
    value = value.strip().lower().removeprefix("sha256:")
    if value and not _SHA256.match(value):
        raise ModelSourceError(
            f"modelSha256 {value!r} is not a sha256 digest (64 hex characters, optionally "
            "prefixed with sha256:)."
        )
    return value


def _mismatch(what: str, expected: str, actual: str, origin: str) -> ModelSourceError:
    return ModelSourceError(
        f"{what}: sha256 mismatch, refusing to deploy it. Expected {expected} ({origin}), got "
        f"{actual}. If the new artifact is intended, update modelSha256."
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Cache:
    """build/cache: blobs/<sha256>, models/<sha256>/, and small JSON records."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def record_path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def read_record(self, kind: str, key: str) -> dict[str, Any] | None:
        path = self.record_path(kind, key)
        try:
            record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record

    def write_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        path = self.record_path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".record-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            json.dump(record, sink)
        os.replace(name, path)

    def keep_blob(self, downloaded: Path, sha256: str) -> Path:
        target = self.blob(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(downloaded, target)
        return target

    def extracted(self, blob: Path, sha256: str, limits: ExtractionLimits) -> Path:
        target = self.root / "models" / sha256
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=target.parent))
        try:
            safe_extract(blob, staging / "tree", limits)
            os.rename(staging / "tree", target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def find_model_root(tree: Path, shown: str) -> Path:
    """The directory holding saved_model.pb or numeric version directories.

    Accepted: saved_model.pb at the top, under one top directory, or version
    directories at either place.
    """
    if not any(tree.rglob(SAVED_MODEL_FILE)):
        raise ModelSourceError(f"{shown}: no {SAVED_MODEL_FILE} anywhere in the model source.")
    for candidate in (tree, _single_subdirectory(tree)):
        if candidate is None:
            continue
        if (candidate / SAVED_MODEL_FILE).is_file():
            return candidate
        if any(is_version_dir(child) for child in candidate.iterdir()):
            return candidate
    found = sorted(str(p.relative_to(tree)) for p in tree.rglob(SAVED_MODEL_FILE))
    raise ModelSourceError(
        f"{shown}: {SAVED_MODEL_FILE} found at {found[:3]} but not where TF Serving expects "
        "it: at the top, under one top directory, or in numeric version directories there."
    )


def _single_subdirectory(tree: Path) -> Path | None:
    children = list(tree.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return None


def _serving_signatures(pb: Path, version: int, shown: str) -> tuple[Signature, ...] | None:
    """The signatures TF Serving's CPU image serves; refused when it could load none."""
    graphs = read_saved_model(pb)
    if graphs is None:
        return None
    if graphs.signatures is None:
        raise ModelSourceError(
            f"{shown}: version {version} has no MetaGraph tagged exactly {{serve}} (it has "
            f"{graphs.describe_tag_sets()}). TF Serving loads the graph whose tags equal "
            "--saved_model_tags (default serve) and would fail to load this model. Export it "
            "with tags=['serve'] (tf.saved_model.save does), or add a {serve} graph."
        )
    return graphs.signatures


def _check_own_warmup(path: Path, signatures: tuple[Signature, ...] | None, shown: str) -> None:
    """Refuse a model whose own warmup file would fail its load on every pod."""
    if signatures is None:
        return
    problems = warmup_file_problems(path.read_bytes(), signatures)
    if problems:
        raise ModelSourceError(
            f"{shown}: its warmup file {path.name} would fail the model's load on every pod "
            f"(TF Serving runs each record before serving): {describe_problems(problems)}. "
            "Fix or remove the file; without it the project generates one from the "
            "signatures (setting warmup)."
        )


def _lay_out(request: ModelRequest, root: Path, base: ResolvedModel) -> ResolvedModel:
    model_root = find_model_root(root, base.source)
    inside = model_root.relative_to(root).as_posix()
    shown = base.source if inside == "." else f"{base.source} ({inside}/)"
    artifact = inspect_local_model(model_root, request.name, request.default_version, shown)
    # TF Serving's default version policy serves the highest version, and reads warmup
    # records only from <version dir>/assets.extra/ (saved_model_warmup_util.cc).
    newest = max(artifact.versions)
    by_destination = dict(artifact.files)
    pb = by_destination[f"{newest}/{SAVED_MODEL_FILE}"]
    warmup_file = by_destination.get(f"{newest}/{WARMUP_FILE}")
    signatures = _serving_signatures(pb, newest, shown)
    if warmup_file is not None:
        _check_own_warmup(warmup_file, signatures, shown)
    warnings = list(base.warnings) + list(artifact.warnings)
    misplaced = sorted(
        dest
        for dest in by_destination
        if dest.endswith(WARMUP_FILE) and dest != f"{newest}/{WARMUP_FILE}"
    )
    if misplaced and warmup_file is None:
        warnings.append(
            f"warmup records at {', '.join(misplaced)} are not used: TF Serving serves version "
            f"{newest} and reads only {newest}/{WARMUP_FILE}, so the first requests after a "
            "rollout will be slow. Put the file there."
        )
    if signatures is None:
        warnings.append(f"version {newest}: {SAVED_MODEL_FILE} could not be read for signatures.")
    return replace(
        base,
        artifact=artifact,
        signatures=signatures,
        warmup=warmup_file is not None,
        warnings=tuple(warnings),
    )


def resolve_model(request: ModelRequest, env: FetchEnvironment) -> ResolvedModel:
    """Resolve, fetch (once), verify and lay out the requested model."""
    pinned = check_pinned_sha256(request.pinned_sha256)
    text = request.source.strip()
    if not text:
        raise ModelSourceError(
            f"modelSource is empty. {_SOURCE_FORMS} `python -m infra model inspect SOURCE` "
            "checks one."
        )
    if match := _GITHUB.match(text):
        return _from_github(request, env, pinned, **match.groupdict())
    if text.startswith(("https://", "http://")):
        return _from_url(request, env, pinned, text)
    if "://" in text or text.startswith("github:"):
        raise ModelSourceError(f"modelSource {text!r} is not understood. {_SOURCE_FORMS}")
    return _from_path(request, env, pinned, text)


_SOURCE_FORMS = (
    "Use github:<owner>/<repo>@<tag or latest>#<asset>, an https:// URL (with modelSha256), "
    "or a local path (a SavedModel directory or a .tar.gz)."
)
# A host name at the start of a path that does not exist: a URL whose scheme was left out.
_HOST_FIRST = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/", re.IGNORECASE)


def _without_scheme(text: str) -> str:
    """What to write instead of a URL given without its scheme ("" if it is not one)."""
    if not _HOST_FIRST.match(text):
        return ""
    parts = text.split("/")
    if parts[0].lower() == "github.com" and len(parts) >= 3:
        owner, repo = parts[1], parts[2]
        if len(parts) >= 7 and parts[3:5] == ["releases", "download"]:
            return f"github:{owner}/{repo}@{parts[5]}#{parts[6]} (or https://{text})"
        return f"github:{owner}/{repo}@<tag or latest>#<asset>"
    return f"https://{text} (with modelSha256)"


def _unresolved(source: str, kind: str, tag: str, asset: str, url: str) -> ResolvedModel:
    warning = (
        f"modelSource {source} is not resolved: the offline plan makes no network requests "
        "and nothing is cached for it, so the image shows placeholders. `python -m infra "
        f"model inspect {source}` downloads and caches it; pulumi preview/up resolve it."
    )
    return ResolvedModel(source, kind, tag, asset, url, "", 0, None, None, False, (warning,))


def _from_github(
    request: ModelRequest,
    env: FetchEnvironment,
    pinned: str,
    *,
    owner: str,
    repo: str,
    tag: str,
    asset: str,
) -> ResolvedModel:
    source = request.source.strip()
    cache = _Cache(env.cache)
    warnings = []
    if tag == "latest" and not pinned:
        warnings.append(
            f"{source} follows the newest release: each preview may pick a new one. Pin a "
            "tag (or modelSha256) to keep an experiment reproducible."
        )
    if env.offline:
        record = cache.read_record("resolutions", source)
        sha = pinned or (record or {}).get("sha256", "")
        if not sha or not cache.blob(sha).is_file():
            return _unresolved(source, "github", tag, asset, "")
        base = ResolvedModel(
            source,
            "github",
            (record or {}).get("tag", tag),
            asset,
            (record or {}).get("url", ""),
            sha,
            cache.blob(sha).stat().st_size,
            None,
            None,
            False,
            (
                *warnings,
                "resolved from the local cache (offline): a newer release "
                "would only be seen by pulumi preview/up or model inspect.",
            ),
        )
        return _lay_out(request, cache.extracted(cache.blob(sha), sha, env.limits), base)

    api_host = (env.github_api_url.split("//", 1)[-1]).split("/", 1)[0].split(":", 1)[0]
    check_url_is_safe(env.github_api_url, "githubApiUrl")
    client = HttpClient(env.token, api_host, env.retry)
    found = github_release_asset(
        client, env.github_api_url, owner=owner, repo=repo, tag=tag, asset=asset
    )
    if pinned and found.sha256 and pinned != found.sha256:
        raise _mismatch(
            f"{source} ({found.tag})",
            pinned,
            found.sha256,
            "modelSha256; GitHub reports the other for the release asset",
        )
    expected = pinned or found.sha256 or ""
    asset_key = f"{found.api_url}|{found.updated_at}|{found.size}"
    if not expected:
        expected = (cache.read_record("assets", asset_key) or {}).get("sha256", "")
        if not expected:
            warnings.append(
                f"{found.name} of {found.tag} has no digest from GitHub and no modelSha256: "
                "it is trusted on first download. Pin modelSha256 to verify it."
            )
    blob = cache.blob(expected) if expected else None
    if blob is None or not blob.is_file():
        url = found.api_url if env.token else found.download_url
        check_url_is_safe(url, "release asset URL")
        downloaded, actual, _ = client.download(url, cache.root / "blobs", env.max_download_bytes)
        if expected and actual != expected:
            downloaded.unlink(missing_ok=True)
            origin = "modelSha256" if pinned else "the digest GitHub reports for the asset"
            raise _mismatch(f"{source} ({found.tag})", expected, actual, origin)
        expected = actual
        blob = cache.keep_blob(downloaded, actual)
    cache.write_record("assets", asset_key, {"sha256": expected})
    cache.write_record(
        "resolutions",
        source,
        {"tag": found.tag, "sha256": expected, "url": found.download_url},
    )
    base = ResolvedModel(
        source,
        "github",
        found.tag,
        found.name,
        found.download_url,
        expected,
        blob.stat().st_size,
        None,
        None,
        False,
        tuple(warnings),
    )
    return _lay_out(request, cache.extracted(blob, expected, env.limits), base)


def _from_url(request: ModelRequest, env: FetchEnvironment, pinned: str, url: str) -> ResolvedModel:
    check_url_is_safe(url, "modelSource")
    if not pinned:
        raise ModelSourceError(
            f"modelSource {url} is a plain URL: set modelSha256 to the archive's sha256 so "
            "the download can be verified."
        )
    cache = _Cache(env.cache)
    blob = cache.blob(pinned)
    if not blob.is_file():
        if env.offline:
            return _unresolved(url, "url", "url", Path(url).name, url)
        client = HttpClient(policy=env.retry)
        downloaded, actual, _ = client.download(url, cache.root / "blobs", env.max_download_bytes)
        if actual != pinned:
            downloaded.unlink(missing_ok=True)
            raise _mismatch(url, pinned, actual, "modelSha256")
        blob = cache.keep_blob(downloaded, actual)
    base = ResolvedModel(
        url,
        "url",
        "url",
        Path(url.split("?", 1)[0]).name,
        url,
        pinned,
        blob.stat().st_size,
        None,
        None,
        False,
        (),
    )
    return _lay_out(request, cache.extracted(blob, pinned, env.limits), base)


def _from_path(
    request: ModelRequest, env: FetchEnvironment, pinned: str, text: str
) -> ResolvedModel:
    path = Path(text) if Path(text).is_absolute() else env.project_dir / text
    if path.is_dir():
        base = ResolvedModel(text, "local-directory", "local", "", "", "", 0, None, None, False, ())
        laid_out = _lay_out(request, path, base)
        assert laid_out.artifact is not None
        digest = laid_out.artifact.sha256
        if pinned and pinned != digest:
            raise _mismatch(text, pinned, digest, "modelSha256")
        return replace(laid_out, sha256=digest, size_bytes=laid_out.artifact.size_bytes)
    if path.is_file():
        digest = _file_sha256(path)
        if pinned and pinned != digest:
            raise _mismatch(text, pinned, digest, "modelSha256")
        cache = _Cache(env.cache)
        base = ResolvedModel(
            text,
            "local-archive",
            "local",
            path.name,
            "",
            digest,
            path.stat().st_size,
            None,
            None,
            False,
            (),
        )
        return _lay_out(request, cache.extracted(path, digest, env.limits), base)
    instead = _without_scheme(text)
    if instead:
        raise ModelSourceError(
            f"modelSource {text!r} looks like a URL without its scheme, and is no file or "
            f"directory here: write {instead}."
        )
    raise ModelSourceError(
        f"modelSource {text!r}: no such file or directory (relative paths start at the "
        f"project directory). {_SOURCE_FORMS}"
    )


def describe_model(model: ResolvedModel) -> str:
    """What would be served, for a terminal."""
    artifact = model.artifact
    lines = [f"source      {model.source}"]
    if model.kind == "github":
        lines.append(f"release     {model.release_tag}, asset {model.asset}")
    if model.url:
        lines.append(f"url         {model.url}")
    if artifact is None:
        lines.append("resolved    no")
    else:
        lines += [
            f"sha256      {model.sha256}",
            f"size        {model.size_bytes} bytes ({len(artifact.files)} files, "
            f"{artifact.size_bytes} bytes unpacked)",
            f"versions    {', '.join(str(v) for v in artifact.versions)}",
            f"warmup      {'yes, ' + WARMUP_FILE if model.warmup else WARMUP_GENERATED}",
        ]
        if model.signatures:
            lines.append("signatures")
            for signature in model.signatures:
                lines.append(f"  {signature.key} ({signature.method})")
                lines += [f"    in   {spec}" for spec in signature.inputs]
                lines += [f"    out  {spec}" for spec in signature.outputs]
        elif model.signatures is not None:
            lines.append("signatures  none (the {serve} graph has no serving signature)")
    if model.warnings:
        lines.append("warnings")
        lines += [f"  - {warning}" for warning in model.warnings]
    return "\n".join(lines)
