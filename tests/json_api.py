"""A JSON API on 127.0.0.1 for tests of the clients of Google's APIs: a function decides
each answer; every request is kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer an http.server request with a JSON body."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


# (path, query, headers) -> (HTTP status, JSON body)
Answer = Callable[[str, dict[str, list[str]], dict[str, str]], tuple[int, Any]]


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class JsonApi:
    answer: Answer
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(parts.path, parse_qs(parts.query), dict(self.headers))
                api.requests.append(request)
                send_json(self, *api.answer(request.path, request.query, request.headers))

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
