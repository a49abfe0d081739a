"""A tiny HTTP fake of the Qdrant REST API, for the request-shaping tests of the qdrant-client adapter.

It speaks just enough for qdrant-client 1.20 (``GET /`` with a version, collection exists / create /
info, ``PUT …/points``) and records every request's method, path and body size. It can refuse a
body over ``max_body`` with 413 (as a server does past ``max_request_size_mb``), fail the next
requests with given statuses (503, 400 …) and hold a reply for ``delay`` seconds. It proves how
requests are shaped and retried, nothing about Qdrant's semantics: no search, no storage of points.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    body_bytes: int
    body: Any


@dataclass
class FakeQdrant:
    version: str = "1.20.0"
    max_body: int = 32 * 2**20
    delay: float = 0.0
    #: statuses to answer the next matching requests with, before answering normally
    fail_next: list[int] = field(default_factory=list)
    #: only requests whose "METHOD path" matches this regex use ``fail_next`` / ``delay``
    fail_on: str = r"PUT /collections/[^/]+/points"
    requests: list[Recorded] = field(default_factory=list)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies_done: int = 0
    url: str = ""

    def points_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PUT" and r.path.endswith("/points")]

    # -- the API ----------------------------------------------------------------------
    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        route = f"{method} {path}"
        if re.fullmatch(self.fail_on, route):
            if self.delay:
                time.sleep(self.delay)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, {"status": {"error": f"fake failure {status}"}, "time": 0.0}
        if path == "/":
            return 200, {"title": "qdrant - vector search engine", "version": self.version, "commit": "fake"}
        if match := re.fullmatch(r"/collections/([^/]+)/exists", path):
            return 200, {"result": {"exists": match.group(1) in self.collections}}
        if match := re.fullmatch(r"/collections/([^/]+)", path):
            name = match.group(1)
            if method == "PUT":
                self.collections[name] = body
                return 200, {"result": True}
            if name not in self.collections:
                return 404, {"status": {"error": f"Not found: Collection `{name}` doesn't exist!"}, "time": 0.0}
            return 200, {"result": self.info(self.collections[name])}
        if match := re.fullmatch(r"/collections/([^/]+)/points", path):
            if match.group(1) not in self.collections:
                return 404, {"status": {"error": f"Not found: Collection `{match.group(1)}` doesn't exist!"}}
            return 200, {"result": {"operation_id": len(self.requests), "status": "completed"}}
        return 400, {"status": {"error": f"the fake does not speak {route}"}}

    @staticmethod
    def info(created: dict[str, Any]) -> dict[str, Any]:
        """A CollectionInfo echoing the create request (what qdrant-client needs to parse one)."""
        return {
            "status": "green", "optimizer_status": "ok", "segments_count": 1, "payload_schema": {},
            "config": {
                "params": {"vectors": created.get("vectors"), "sparse_vectors": created.get("sparse_vectors")},
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000,
                                **(created.get("hnsw_config") or {})},
                "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5,
                                     **(created.get("optimizers_config") or {})},
                "metadata": created.get("metadata"),
            },
        }


def _handler(fake: FakeQdrant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            fake.requests.append(Recorded(self.command, path, length, None))
            if length > fake.max_body:
                status, reply = 413, {"status": {"error": "Payload too large"}}
            else:
                body = json.loads(raw) if raw else None
                fake.requests[-1].body = body
                status, reply = fake.answer(self.command, path, body)
            data = json.dumps({"status": "ok", "time": 0.0, **reply}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass
            fake.replies_done += 1

        do_GET = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def fake_qdrant() -> Iterator[FakeQdrant]:
    """A running :class:`FakeQdrant` on a free loopback port (``.url``), stopped afterwards."""
    fake = FakeQdrant()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.block_on_close = False  # a reply held for the timeout test must not delay teardown
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
