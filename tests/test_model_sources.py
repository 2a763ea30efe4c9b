"""GitHub releases and URLs against a GitHub-like server on 127.0.0.1: resolution, digests,
retries, caps, caching, offline behaviour and the token."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.inputs.errors import ModelSourceError
from infra.model.build_context import image_tag, write_build_context
from infra.model.fetch import RetryPolicy
from infra.model.source import FetchEnvironment, ModelRequest, ResolvedModel, resolve_model
from tests.conftest import ROOT
from tests.fake_github import Asset, Failure, FakeGitHub, serving
from tests.model_archives import tar_gz, tiny_model_files

ARCHIVE = tar_gz(tiny_model_files("saved_model/1/"))
ARCHIVE_SHA = hashlib.sha256(ARCHIVE).hexdigest()
OTHER = tar_gz(tiny_model_files("saved_model/2/"))
NO_WAIT = RetryPolicy(attempts=3, backoff_seconds=0, max_backoff_seconds=0)
RELEASE_API = "/repos/acme/models/releases"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serving(FakeGitHub()) as fake:
        yield fake


def env(tmp_path: Path, github: FakeGitHub, **extra: object) -> FetchEnvironment:
    options: dict[str, object] = {"retry": NO_WAIT} | extra
    return FetchEnvironment(project_dir=tmp_path, github_api_url=github.url, **options)  # type: ignore[arg-type]


def fetch(
    tmp_path: Path,
    github: FakeGitHub,
    source: str = "github:acme/models@latest#model.tar.gz",
    pinned: str = "",
    **extra: object,
) -> ResolvedModel:
    return resolve_model(ModelRequest(source, "tiny", 1, pinned), env(tmp_path, github, **extra))


def downloads(github: FakeGitHub) -> list[str]:
    return [p for p in github.paths() if p.startswith(("/download/", "/api/assets/"))]


def test_latest_release_resolves_to_an_exact_verified_artifact(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    model = fetch(tmp_path, github)
    assert (model.release_tag, model.asset, model.sha256) == ("v1.0", "model.tar.gz", ARCHIVE_SHA)
    assert model.artifact is not None and model.artifact.versions == (1,)
    assert (tmp_path / "build/cache/blobs" / ARCHIVE_SHA).read_bytes() == ARCHIVE
    assert any("follows the newest release" in w for w in model.warnings)


def test_a_second_run_downloads_nothing(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    first = fetch(tmp_path, github)
    second = fetch(tmp_path, github)
    assert len(downloads(github)) == 1
    assert first == second


def test_asset_without_digest_is_trusted_once_then_cached(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE, digest=False))
    model = fetch(tmp_path, github, "github:acme/models@v1.0#model.tar.gz")
    assert model.sha256 == ARCHIVE_SHA
    assert any("trusted on first download" in w for w in model.warnings)
    fetch(tmp_path, github, "github:acme/models@v1.0#model.tar.gz")
    assert len(downloads(github)) == 1


def test_tagged_release_and_a_new_release_change_the_image(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    v1 = fetch(tmp_path, github)
    github.publish("v2.0", Asset("model.tar.gz", OTHER))
    v2 = fetch(tmp_path, github)
    pinned = fetch(tmp_path, github, "github:acme/models@v1.0#model.tar.gz")
    assert (v1.release_tag, v2.release_tag, pinned.release_tag) == ("v1.0", "v2.0", "v1.0")
    assert image_tag("tiny", v1, "2.20.0", "cpu") == f"tiny-v1.0-{ARCHIVE_SHA[:12]}-tfs2.20.0-cpu"
    assert image_tag("tiny", v2, "2.20.0", "cpu") != image_tag("tiny", v1, "2.20.0", "cpu")
    contexts = [write_build_context("tiny", m, "2.20.0", "cpu", tmp_path) for m in (v1, v2)]
    assert contexts[0].directory != contexts[1].directory
    assert write_build_context("tiny", pinned, "2.20.0", "cpu", tmp_path) == contexts[0]


def test_wrong_digest_stops_with_both_digests_and_caches_nothing(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE, wrong_digest=True))
    with pytest.raises(ModelSourceError) as caught:
        fetch(tmp_path, github)
    message = str(caught.value)
    assert "sha256 mismatch" in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert ARCHIVE_SHA in message
    assert not list((tmp_path / "build/cache/blobs").iterdir())


def test_pinned_digest_disagreeing_with_github_stops_before_downloading(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    with pytest.raises(ModelSourceError, match=f"Expected {'0' * 64} \\(modelSha256"):
        fetch(tmp_path, github, pinned="0" * 64)
    assert downloads(github) == []


def test_pinned_digest_matching_is_accepted(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE, digest=False))
    model = fetch(tmp_path, github, pinned=f"sha256:{ARCHIVE_SHA}")
    assert model.sha256 == ARCHIVE_SHA
    assert not any("follows the newest release" in w for w in model.warnings)


def test_missing_release_and_asset_say_what_is_there(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE), Asset("notes.txt", b"hi"))
    with pytest.raises(ModelSourceError, match=r"HTTP 404, not found\. Check the owner"):
        fetch(tmp_path, github, "github:acme/models@v9#model.tar.gz")
    with pytest.raises(
        ModelSourceError,
        match=re.escape(
            "release v1.0 of acme/models has no asset named 'x.tgz' "
            "(assets: model.tar.gz, notes.txt)"
        ),
    ):
        fetch(tmp_path, github, "github:acme/models@v1.0#x.tgz")


def test_rate_limit_is_reported_at_once_with_the_fix(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    github.fail_next(
        f"{RELEASE_API}/latest",
        Failure(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000000"}, b"{}"),
    )
    with pytest.raises(ModelSourceError, match=r"rate limit exceeded.*Set GITHUB_TOKEN"):
        fetch(tmp_path, github)
    assert github.paths() == [f"{RELEASE_API}/latest"]


def test_server_errors_are_retried_then_succeed(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    github.fail_next(f"{RELEASE_API}/latest", Failure(500), Failure(503))
    github.fail_next("/download/v1.0/model.tar.gz", Failure(429, {"Retry-After": "0"}))
    model = fetch(tmp_path, github)
    assert model.sha256 == ARCHIVE_SHA
    assert github.paths().count(f"{RELEASE_API}/latest") == 3
    assert len(downloads(github)) == 2


def test_truncated_body_is_retried_and_never_trusted(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    github.fail_next("/download/v1.0/model.tar.gz", Failure(truncate_to=100))
    assert fetch(tmp_path, github).sha256 == ARCHIVE_SHA
    assert len(downloads(github)) == 2
    assert sorted(p.name for p in (tmp_path / "build/cache/blobs").iterdir()) == [ARCHIVE_SHA]


def test_persistent_failure_gives_up_after_the_bounded_attempts(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    github.fail_next("/download/v1.0/model.tar.gz", *[Failure(truncate_to=10)] * 3)
    with pytest.raises(ModelSourceError, match="gave up after 3 attempts"):
        fetch(tmp_path, github)
    assert [p.name for p in (tmp_path / "build/cache/blobs").iterdir()] == []


def test_size_cap_stops_the_download(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    with pytest.raises(ModelSourceError, match="over the 1000-byte cap \\(modelMaxDownloadMb\\)"):
        fetch(tmp_path, github, max_download_bytes=1000)


def test_offline_makes_no_request_until_the_source_is_cached(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    unresolved = fetch(tmp_path, github, offline=True)
    assert not unresolved.resolved
    assert "is not resolved" in unresolved.warnings[-1]
    assert github.paths() == []
    fetch(tmp_path, github)
    cached = fetch(tmp_path, github, offline=True)
    assert (cached.release_tag, cached.sha256) == ("v1.0", ARCHIVE_SHA)
    assert len(github.paths()) == 2


def test_token_goes_to_the_api_only_and_never_into_messages(tmp_path: Path) -> None:
    token = "ghp_secret_token_value"
    other_host = FakeGitHub(host="127.0.0.2")
    with serving(FakeGitHub()) as api, serving(other_host) as storage:
        api.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
        api.redirect_downloads_to = storage
        model = fetch(tmp_path, api, token=token)
        assert model.sha256 == ARCHIVE_SHA
        assert all(r.headers.get("Authorization") == f"Bearer {token}" for r in api.requests)
        assert [r.path for r in api.requests][-1] == "/api/assets/v1.0/model.tar.gz"
        assert storage.requests and all("Authorization" not in r.headers for r in storage.requests)
        api.fail_next(f"{RELEASE_API}/latest", Failure(401))
        with pytest.raises(ModelSourceError) as caught:
            fetch(tmp_path, api, token=token)
        assert token not in str(caught.value)


def test_plain_http_is_refused_outside_loopback(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="must be an https:// URL"):
        resolve_model(
            ModelRequest("http://models.example.com/m.tar.gz", "m", 1, ARCHIVE_SHA),
            FetchEnvironment(project_dir=tmp_path),
        )


def test_url_source_needs_and_checks_its_sha256(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v1.0", Asset("model.tar.gz", ARCHIVE))
    url = f"{github.url}/download/v1.0/model.tar.gz"
    with pytest.raises(ModelSourceError, match="set modelSha256"):
        fetch(tmp_path, github, url)
    with pytest.raises(ModelSourceError, match="sha256 mismatch"):
        fetch(tmp_path, github, url, pinned="1" * 64)
    assert fetch(tmp_path, github, url, pinned=ARCHIVE_SHA).artifact is not None


def test_model_inspect_prints_what_would_be_served(tmp_path: Path, github: FakeGitHub) -> None:
    github.publish("v3.1", Asset("model.tar.gz", ARCHIVE))
    command = [
        sys.executable,
        "-m",
        "infra",
        "model",
        "inspect",
        "github:acme/models@latest#model.tar.gz",
        "--github-api-url",
        github.url,
    ]
    environment = {"PATH": "/usr/bin:/bin", "TFSERVING_GKE_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "release     v3.1, asset model.tar.gz" in result.stdout
    assert f"sha256      {ARCHIVE_SHA}" in result.stdout
    assert "versions    1" in result.stdout
    assert "in   image_input: float32 (-1, 224, 224, 3)" in result.stdout
    failing = subprocess.run(
        [*command[:5], "github:acme/models@v404#model.tar.gz", *command[6:]],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failing.returncode == 2
    assert failing.stderr.startswith("error: ") and "HTTP 404" in failing.stderr
    assert "Traceback" not in failing.stderr


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("", "modelSource is empty. Use github:<owner>/<repo>@<tag or latest>#<asset>"),
        ("   ", "modelSource is empty"),
        (
            "github.com/owner/repo/releases/download/v1/saved_model.tar.gz",
            "looks like a URL without its scheme, and is no file or directory here: write "
            "github:owner/repo@v1#saved_model.tar.gz (or https://github.com/owner/repo/",
        ),
        ("github.com/owner/repo", "write github:owner/repo@<tag or latest>#<asset>"),
        ("www.example.com/m.tar.gz", "write https://www.example.com/m.tar.gz (with modelSha256)"),
        ("models/nope", "no such file or directory (relative paths start at the project"),
    ],
)
def test_a_source_given_wrong_says_which_forms_work(tmp_path: Path, source: str, says: str) -> None:
    with pytest.raises(ModelSourceError) as raised:
        resolve_model(ModelRequest(source, "tiny", 1), FetchEnvironment(project_dir=tmp_path))
    assert says in str(raised.value)


def test_the_command_line_says_so_for_an_empty_source() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "infra", "model", "inspect", ""],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "modelSource is empty" in run.stderr
