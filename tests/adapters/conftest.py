"""A tiny HTTP fake of the Qdrant REST API, for the request-shaping tests of the qdrant-client adapter.

It speaks just enough for qdrant-client 1.20 (``GET /`` with a version, collection exists / create /
info, ``PUT …/points``) and records every request's method, path and body size. It can refuse a
body over ``max_body`` with 413 (as a server does past ``max_request_size_mb``), fail the next
requests with given statuses (503, 400 …) and hold a reply for ``delay`` seconds. It proves how
requests are shaped and retried, nothing about Qdrant's semantics: no search, no storage of points.
The HTTP server is pytest-httpserver's (threaded, so that a held reply does not hold the others);
this module is only the answers.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


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


    def handle(self, request: Request) -> Response:
        """pytest-httpserver's handler: record the request, answer it (413 past ``max_body``)."""
        raw = request.get_data()
        self.requests.append(Recorded(request.method, request.path, len(raw), None))
        if len(raw) > self.max_body:
            status, reply = 413, {"status": {"error": "Payload too large"}}
        else:
            body = json.loads(raw) if raw else None
            self.requests[-1].body = body
            status, reply = self.answer(request.method, request.path, body)
        self.replies_done += 1
        return Response(json.dumps({"status": "ok", "time": 0.0, **reply}), status=status,
                        content_type="application/json")


@pytest.fixture
def fake_qdrant() -> Iterator[FakeQdrant]:
    """A running :class:`FakeQdrant` on a free loopback port (``.url``), stopped afterwards."""
    fake = FakeQdrant()
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    server.start()
    fake.url = server.url_for("").rstrip("/")
    yield fake
    server.clear()
    server.stop()
