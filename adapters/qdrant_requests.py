"""Upsert requests sized by bytes, so each one stays under a Qdrant server's request limit.

A Qdrant server refuses a REST body over ``service.max_request_size_mb`` (32 MiB by default); a
fixed point count cannot respect that (512 points of 3584 + 512 + 128 dims are 44 MiB of JSON).
Each point is measured as qdrant-client 1.20 will send it, and points are packed greedily into
requests of at most ``budget`` bytes and ``max_points`` points:

- REST: the JSON the client's own encoder writes for the ``PointStruct`` (its
  ``jsonable_encoder``: by alias, unset and None fields left out); the body is
  ``{"points":[p1,p2,…]}``, so a request is ``12 + Σ (len(pᵢ) + 1)`` bytes, exactly.
- gRPC: the protobuf ``PointStruct`` the client would convert to, framed as a repeated field of
  ``UpsertPoints`` (tag, length varint, bytes), plus that message's other fields. Qdrant's gRPC
  services accept messages of any size (read in its ``src/tonic/mod.rs``, not run here); the same
  budget still applies, so that no request runs into the timeout.

A point that alone exceeds the budget is a :class:`RequestTooLargeError` naming its id and size,
raised while planning, before any request is sent.

Example::

    shape = rest_shape(points)                        # PointStruct list → sizes
    for chunk in plan_requests(ids, shape, budget=16 * 2**20):
        client.upsert(collection, points[chunk.start:chunk.stop])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from smec_vdb.backend import PointId
from smec_vdb.errors import ConfigError, RequestTooLargeError

MIB = 2**20
#: half the server's default max_request_size_mb (32): room for proxies with a lower limit
DEFAULT_REQUEST_BUDGET = 16 * MIB
#: at most this many points per request however small they are (each request waits for the server)
MAX_POINTS_PER_REQUEST = 512
#: ``{"points":[`` and ``]}`` less the one comma the last point does not have
_REST_ENVELOPE = len('{"points":[]}') - 1


@dataclass(frozen=True)
class RequestShape:
    """Bytes of a request: ``envelope`` plus the ``framed`` size of each point it carries."""

    transport: str
    envelope: int
    framed: tuple[int, ...]


def rest_shape(points: Sequence[Any]) -> RequestShape:
    """Sizes of qdrant-client ``PointStruct``s in a REST upsert body (the client's own JSON encoder)."""
    from qdrant_client.http.api.points_api import jsonable_encoder

    return RequestShape("REST JSON", _REST_ENVELOPE,
                        tuple(len(jsonable_encoder(p).encode("utf-8")) + 1 for p in points))


def _varint_bytes(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def grpc_shape(collection: str, points: Sequence[Any]) -> RequestShape:
    """Sizes of gRPC ``PointStruct``s (``qdrant_client.grpc``) in an ``UpsertPoints`` message."""
    from qdrant_client import grpc

    envelope = grpc.UpsertPoints(collection_name=collection, wait=True).ByteSize()
    sizes = (p.ByteSize() for p in points)
    return RequestShape("gRPC", envelope, tuple(1 + _varint_bytes(s) + s for s in sizes))


def request_bytes(shape: RequestShape, chunk: range) -> int:
    """Size of the request that carries the points ``chunk`` (a non-empty range of indices)."""
    return shape.envelope + sum(shape.framed[chunk.start:chunk.stop])


def plan_requests(ids: Sequence[PointId], shape: RequestShape, *, budget: int = DEFAULT_REQUEST_BUDGET,
                  max_points: int = MAX_POINTS_PER_REQUEST) -> list[range]:
    """Consecutive index ranges, each a request of at most ``budget`` bytes and ``max_points`` points.

    Raises :class:`RequestTooLargeError` for the first point whose request alone is over ``budget``.
    """
    check_budget(budget)
    if max_points < 1:
        raise ConfigError(f"max_points must be >= 1, found {max_points}")
    for point_id, size in zip(ids, shape.framed):
        if shape.envelope + size > budget:
            raise RequestTooLargeError(
                f"point {point_id!r} alone makes a {shape.envelope + size}-byte {shape.transport} upsert request, "
                f"over request_budget={budget} bytes; expected each point to fit: raise request_budget (the "
                f"server's max_request_size_mb must allow it) or make the point smaller (payload, vector widths); "
                f"nothing was written"
            )
    chunks: list[range] = []
    start, used = 0, shape.envelope
    for i, size in enumerate(shape.framed):
        if i > start and (used + size > budget or i - start == max_points):
            chunks.append(range(start, i))
            start, used = i, shape.envelope
        used += size
    if shape.framed:
        chunks.append(range(start, len(shape.framed)))
    return chunks


def check_budget(budget: Any) -> int:
    """``budget`` if it is a usable request size in bytes (a positive int), else a ConfigError."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise ConfigError(f"request_budget must be an integer number of bytes >= 1024, found {budget!r}")
    return budget
