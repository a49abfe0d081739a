"""What both Qdrant adapters (qdrant-client and qdrant-edge) share: id codec, payloads, filters, schema JSON.

Qdrant point ids are unsigned integers or UUIDs. Any other string id is stored under
``uuid5(SMEC_ID_NAMESPACE, id)`` with the original kept in the reserved payload key
``_smec_id``, which is hidden from every payload returned to callers.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any, Mapping

from smec_vdb.backend import CollectionSchema, IndexParams, PointId, Resolution
from smec_vdb.adapters.validation import RESERVED_PREFIX
from smec_vdb.errors import ConfigError
from smec_vdb.filters import And, AnyOf, Condition, Or, Range
from smec_vdb.layout import Layout

SMEC_ID_KEY = "_smec_id"
SMEC_ID_NAMESPACE = uuid.UUID("0f1d1c52-6a5e-4c1e-9a55-5d0c2b6e3f10")


def encode_id(point_id: PointId) -> tuple[int | str, str | None]:
    """(Qdrant id, original string to keep in the payload or None)."""
    if isinstance(point_id, int):
        return point_id, None
    try:
        if str(uuid.UUID(point_id)) == point_id:
            return point_id, None
    except ValueError:
        pass
    return str(uuid.uuid5(SMEC_ID_NAMESPACE, point_id)), point_id


def decode_id(qdrant_id: Any, payload: Mapping[str, Any] | None) -> PointId:
    """The caller's id of a stored point (from ``_smec_id`` when present)."""
    if payload and SMEC_ID_KEY in payload:
        return payload[SMEC_ID_KEY]
    if isinstance(qdrant_id, uuid.UUID):
        return str(qdrant_id)
    return qdrant_id


def stored_payload(payload: Mapping[str, Any], original_id: str | None) -> dict[str, Any]:
    return {**payload, SMEC_ID_KEY: original_id} if original_id is not None else dict(payload)


def public_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload without smec-vdb's reserved keys."""
    return {k: v for k, v in (payload or {}).items() if not k.startswith(RESERVED_PREFIX)}


def cursor_id(offset: Any) -> int | str | None:
    """A scroll offset as a JSON-serialisable cursor (int or UUID string)."""
    return str(offset) if isinstance(offset, uuid.UUID) else offset


def build_filter(condition: Condition, models: Any, range_cls: Any, *, match_booleans: bool = True) -> Any:
    """A Qdrant ``Filter`` (``models``: qdrant_client.models or qdrant_edge) for a parsed filter.

    Implements :mod:`smec_vdb.filters` natively: a number equality is a closed range [v, v] (so
    ``1`` matches ``1.0`` and never ``true``), strings and booleans are ``MatchValue``, any-of is
    ``should``, ``$not`` is ``must_not``; a dotted key is Qdrant's nested path, and Qdrant matches
    an array element by itself. ``match_booleans=False`` (qdrant-edge-py 0.9, which reads a
    boolean match as the integer 1) makes a boolean value a ConfigError instead of wrong hits.
    """

    def equals(key: str, value: Any) -> Any:
        if isinstance(value, bool):
            if not match_booleans:
                raise ConfigError(f"filter {key!r}: qdrant-edge cannot match boolean values (it reads them as 1/0); "
                                  "store them as strings or use another engine")
            return models.FieldCondition(key=key, match=models.MatchValue(value=value))
        if isinstance(value, str):
            return models.FieldCondition(key=key, match=models.MatchValue(value=value))
        return models.FieldCondition(key=key, range=range_cls(gte=float(value), lte=float(value)))

    def node(c: Condition) -> Any:
        if isinstance(c, AnyOf):
            key = ".".join(c.path)
            conditions = [equals(key, v) for v in c.values]
            return conditions[0] if len(conditions) == 1 else models.Filter(should=conditions)
        if isinstance(c, Range):
            key = ".".join(c.path)
            return models.FieldCondition(key=key, range=range_cls(gt=c.gt, gte=c.gte, lt=c.lt, lte=c.lte))
        if isinstance(c, And):
            return models.Filter(must=[node(p) for p in c.parts])
        if isinstance(c, Or):
            return models.Filter(should=[node(p) for p in c.parts])
        return models.Filter(must_not=[node(c.part)])

    top = node(condition)
    return top if isinstance(top, models.Filter) else models.Filter(must=[top])


def schema_to_json(schema: CollectionSchema) -> dict[str, Any]:
    return {
        "resolutions": [[r.name, r.dim] for r in schema.resolutions],
        "distance": schema.distance,
        "id_type": schema.id_type,
        "payload_indexes": dict(schema.payload_indexes),
        "index": asdict(schema.index),
        **({"layout": schema.layout.to_json()} if schema.layout is not None else {}),
    }


def schema_from_json(data: Mapping[str, Any]) -> CollectionSchema:
    return CollectionSchema(
        resolutions=tuple(Resolution(name, int(dim)) for name, dim in data["resolutions"]),
        distance=data["distance"],
        id_type=data["id_type"],
        payload_indexes=dict(data.get("payload_indexes", {})),
        index=IndexParams(**data.get("index", {})),
        layout=Layout.from_json(data["layout"]) if data.get("layout") else None,
    )
