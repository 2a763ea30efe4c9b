"""HTTP for model sources: GitHub release lookups and verified, cached downloads.

Timeouts on every request; bounded retries with exponential backoff on 429, 5xx,
connection errors and truncated bodies; a size cap; atomic writes. The token is sent
only to the API host (requests drops it on redirects to another host) and never
appears in messages.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from infra.inputs.errors import ModelSourceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "tfserving-gke (model fetch)"
GITHUB_API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff and timeouts (seconds)."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0


class _RetryableError(Exception):
    """A failure worth another attempt."""


def check_url_is_safe(url: str, what: str) -> None:
    """Only https, or plain http to this machine (loopback) for tests and local mirrors."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise ModelSourceError(
        f"{what} {url!r} must be an https:// URL (plain http is only accepted for loopback "
        "addresses)."
    )


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class HttpClient:
    """requests with this project's timeouts, retries and token handling."""

    def __init__(
        self,
        token: str = "",
        token_host: str = "",
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self._token_host = token_host
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT

    def _headers(self, url: str, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self._token and urlsplit(url).hostname == self._token_host:
            headers["Authorization"] = f"Bearer {self._token}"
        if urlsplit(url).hostname == self._token_host:
            headers["X-GitHub-Api-Version"] = GITHUB_API_VERSION
        return headers

    def _attempts(self, url: str, call: Callable[[], Any]) -> Any:
        delay = self.policy.backoff_seconds
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return call()
            except _RetryableError as failure:
                if attempt == self.policy.attempts:
                    raise ModelSourceError(
                        f"{url}: gave up after {attempt} attempts ({failure.args[0]})."
                    ) from None
                wait = failure.args[1] if len(failure.args) > 1 and failure.args[1] else delay
                self._sleep(min(float(wait), self.policy.max_backoff_seconds))
                delay = min(delay * 2, self.policy.max_backoff_seconds)
        raise AssertionError("unreachable")

    @contextmanager
    def _get(self, url: str, accept: str) -> Iterator[requests.Response]:
        try:
            response = self._session.get(
                url,
                headers=self._headers(url, accept),
                timeout=(self.policy.connect_timeout_seconds, self.policy.read_timeout_seconds),
                stream=True,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _RetryableError(f"connection failed: {type(error).__name__}") from None
        with response:
            if response.status_code in RETRY_STATUSES and not _rate_limited(response):
                raise _RetryableError(
                    f"HTTP {response.status_code}", _retry_after_seconds(response)
                )
            if response.status_code >= 400:
                raise _http_error(url, response)
            yield response

    def get_json(self, url: str) -> Any:
        """GET a JSON document."""

        def call() -> Any:
            with self._get(url, "application/vnd.github+json") as response:
                try:
                    return response.json()
                except (ValueError, requests.RequestException) as error:
                    raise _RetryableError(f"unreadable JSON: {type(error).__name__}") from None

        return self._attempts(url, call)

    def download(
        self, url: str, directory: Path, max_bytes: int, accept: str = "application/octet-stream"
    ) -> tuple[Path, str, int]:
        """Stream url into a temporary file in directory; return (path, sha256, size).

        The caller renames the file into place once it is verified; a killed run leaves
        only a temporary file no later run trusts.
        """
        directory.mkdir(parents=True, exist_ok=True)

        def call() -> tuple[Path, str, int]:
            handle, name = tempfile.mkstemp(prefix=".download-", dir=directory)
            path = Path(name)
            try:
                with os.fdopen(handle, "wb") as sink, self._get(url, accept) as response:
                    expected = response.headers.get("Content-Length")
                    if expected and int(expected) > max_bytes:
                        raise _too_large(url, int(expected), max_bytes)
                    digest, size = hashlib.sha256(), 0
                    try:
                        for chunk in response.iter_content(chunk_size=1 << 20):
                            size += len(chunk)
                            if size > max_bytes:
                                raise _too_large(url, size, max_bytes)
                            digest.update(chunk)
                            sink.write(chunk)
                    except (
                        requests.ConnectionError,
                        requests.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                    ) as error:
                        raise _RetryableError(
                            f"download interrupted: {type(error).__name__}"
                        ) from None
                    if expected and size != int(expected):
                        raise _RetryableError(f"truncated body: {size} of {expected} bytes")
                return path, digest.hexdigest(), size
            except BaseException:
                path.unlink(missing_ok=True)
                raise

        result: tuple[Path, str, int] = self._attempts(url, call)
        return result


def _rate_limited(response: requests.Response) -> bool:
    return (
        response.status_code in (403, 429) and response.headers.get("X-RateLimit-Remaining") == "0"
    )


def _too_large(url: str, size: int, max_bytes: int) -> ModelSourceError:
    return ModelSourceError(
        f"{url}: {size} bytes is over the {max_bytes}-byte cap (modelMaxDownloadMb); raise "
        "the cap if this model really is that large."
    )


def _http_error(url: str, response: requests.Response) -> ModelSourceError:
    status = response.status_code
    if _rate_limited(response):
        reset = response.headers.get("X-RateLimit-Reset", "")
        when = (
            time.strftime("%H:%M:%S UTC", time.gmtime(int(reset))) if reset.isdigit() else "later"
        )
        return ModelSourceError(
            f"{url}: GitHub API rate limit exceeded (HTTP {status}); it resets at {when}. Set "
            "GITHUB_TOKEN (or the githubToken secret setting) for a higher limit."
        )
    if status in (401, 403):
        return ModelSourceError(
            f"{url}: HTTP {status}, access denied. For a private repository set GITHUB_TOKEN "
            "(or githubToken) to a token that can read it."
        )
    if status == 404:
        return ModelSourceError(
            f"{url}: HTTP 404, not found. Check the owner, repository, tag and asset name; a "
            "private repository also answers 404 without a token."
        )
    return ModelSourceError(f"{url}: HTTP {status}.")


@dataclass(frozen=True)
class ReleaseAsset:
    """One asset of one GitHub release, as the REST API describes it."""

    tag: str
    name: str
    api_url: str
    download_url: str
    size: int
    sha256: str | None  # from the API's "digest" field, when GitHub computed one
    updated_at: str


def github_release_asset(
    client: HttpClient, api_base: str, *, owner: str, repo: str, tag: str, asset: str
) -> ReleaseAsset:
    """The named asset of the latest release (tag "latest") or of the release with this tag."""
    release_path = "releases/latest" if tag == "latest" else f"releases/tags/{tag}"
    release = client.get_json(f"{api_base.rstrip('/')}/repos/{owner}/{repo}/{release_path}")
    assets = release.get("assets") or []
    for entry in assets:
        if entry.get("name") == asset:
            digest = entry.get("digest") or ""
            return ReleaseAsset(
                tag=str(release.get("tag_name")),
                name=asset,
                api_url=str(entry["url"]),
                download_url=str(entry["browser_download_url"]),
                size=int(entry.get("size") or 0),
                sha256=digest.removeprefix("sha256:") if digest.startswith("sha256:") else None,
                updated_at=str(entry.get("updated_at") or ""),
            )
    names = ", ".join(sorted(str(entry.get("name")) for entry in assets)) or "none"
    raise ModelSourceError(
        f"release {release.get('tag_name')} of {owner}/{repo} has no asset named {asset!r} "
        f"(assets: {names})."
    )
