"""A small GitHub-like release API and file server on 127.0.0.1, started by the tests.

Releases and assets are plain data; per-path scripts make the next responses fail in
chosen ways (status codes, rate limits, truncated bodies). Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Asset:
    name: str
    content: bytes
    digest: bool = True  # GitHub computes digests for assets uploaded since mid-2025
    wrong_digest: bool = False
    updated_at: str = "2026-01-01T00:00:00Z"


@dataclass
class Failure:
    """One scripted response instead of the real one."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncate_to: int | None = None  # send a Content-Length larger than the body


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    host: str


class FakeGitHub:
    """Serve releases of one repository: /repos/<owner>/<repo>/releases/..."""

    def __init__(self, owner: str = "acme", repo: str = "models", host: str = "127.0.0.1") -> None:
        self.owner, self.repo = owner, repo
        self.releases: dict[str, list[Asset]] = {}  # tag -> assets, in publication order
        self.failures: dict[str, list[Failure]] = {}
        self.requests: list[Recorded] = []
        self.redirect_downloads_to: FakeGitHub | None = None
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def publish(self, tag: str, *assets: Asset) -> None:
        self.releases[tag] = list(assets)

    def fail_next(self, path: str, *failures: Failure) -> None:
        self.failures.setdefault(path, []).extend(failures)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def _release_json(self, tag: str) -> dict[str, Any]:
        assets = []
        for index, asset in enumerate(self.releases[tag]):
            digest = hashlib.sha256(b"tampered" if asset.wrong_digest else asset.content)
            assets.append(
                {
                    "id": index,
                    "name": asset.name,
                    "size": len(asset.content),
                    "url": f"{self.url}/api/assets/{tag}/{asset.name}",
                    "browser_download_url": f"{self.url}/download/{tag}/{asset.name}",
                    "updated_at": asset.updated_at,
                    "digest": f"sha256:{digest.hexdigest()}" if asset.digest else None,
                }
            )
        return {"tag_name": tag, "assets": assets}

    def _route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        prefix = f"/repos/{self.owner}/{self.repo}/releases/"
        if path == prefix + "latest" and self.releases:
            return self._json(self._release_json(list(self.releases)[-1]))
        if (
            path.startswith(prefix + "tags/")
            and path.removeprefix(prefix + "tags/") in self.releases
        ):
            return self._json(self._release_json(path.removeprefix(prefix + "tags/")))
        for kind in ("/download/", "/api/assets/"):
            if path.startswith(kind):
                tag, name = path.removeprefix(kind).split("/", 1)
                asset = next((a for a in self.releases.get(tag, []) if a.name == name), None)
                if asset is None:
                    break
                if self.redirect_downloads_to is not None:
                    target = self.redirect_downloads_to
                    target.publish(tag, *self.releases[tag])
                    return 302, {"Location": f"{target.url}/download/{tag}/{name}"}, b""
                return 200, {"Content-Type": "application/octet-stream"}, asset.content
        return self._json({"message": "Not Found"}, 404)

    @staticmethod
    def _json(document: object, status: int = 200) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json"}, json.dumps(document).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(
                    Recorded(self.path, dict(self.headers), self.headers.get("Host", ""))
                )
                scripted = fake.failures.get(self.path)
                if scripted:
                    failure = scripted.pop(0)
                    status, headers, body = fake._route(self.path)
                    if failure.status != 200:
                        status, headers, body = failure.status, failure.headers, failure.body
                    length = len(body)
                    if failure.truncate_to is not None:
                        body = body[: failure.truncate_to]
                else:
                    status, headers, body = fake._route(self.path)
                    length = len(body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        return Handler


@contextmanager
def serving(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
