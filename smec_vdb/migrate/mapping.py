"""How each part of the source's schema is held by the target: kept, compressed, mapped, left out, not kept.

The plan (:func:`smec_vdb.migrate.plan.make_plan`) builds it before anything is trained or written;
``--dry-run`` prints it and the migration report stores it (``report["schema_mapping"]``), so what
a target holds otherwise than the source had it is said before it happens, never found out later.
What is refused never gets here: the plan raises instead. The target engine says how it holds the
parts it does not keep as given (:meth:`smec_vdb.backend.Backend.mapping_notes`); everything else
is kept as the source has it.

Example::

    for entry in plan.mapping:
        print(f"{entry.item}: {entry.how}")   # e.g. "payload indexes {'title': 'keyword'}: kept"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from smec_vdb.backend import Backend, CollectionSchema, Resolution
from smec_vdb.migrate.columns import describe

if TYPE_CHECKING:
    from smec_vdb.migrate.plan import SourceInfo, Survey

KEPT = "kept"


@dataclass(frozen=True)
class Mapped:
    """One part of the source (``item``) and how the target holds it (``how``)."""

    item: str
    how: str

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "how": self.how}


def schema_mapping(info: SourceInfo, found: Survey, schema: CollectionSchema, resolutions: Sequence[Resolution],
                   target: Backend, dynamic: Mapping[str, str]) -> list[Mapped]:
    """Every part of the source and how the target (``schema`` on ``target``) holds it; ``dynamic``: the
    payload keys that stay in the dynamic field of a typed-column target, and why."""
    notes = target.mapping_notes(schema)
    kinds = {"int": "integer", "str": "string", "any": "integer and string"}[schema.id_type]
    entries = [Mapped(f"ids ({kinds})", notes.get("ids", KEPT))]
    entries += _payload_entries(info.schema, schema, found, dynamic, notes)
    compressed = ", ".join(f"{r.name} {r.dim}-d" for r in resolutions)
    entries.append(Mapped(f"vector {info.schema.resolution(info.vector).describe()} {info.distance}",
                          f"compressed by SMEC into {compressed} (cosine)"))
    entries += [Mapped(f"vector {r.describe()} {r.distance}", KEPT) for r in info.carried]
    entries += [Mapped(f"sparse vector {name!r}", KEPT) for name in info.sparse]
    entries += [Mapped(f"vector {name!r}", "left out (leave_out)") for name in info.left_out]
    for topic, value in (("payload_indexes", dict(schema.payload_indexes)), ("sharding", dict(schema.sharding)),
                         ("partitions", list(schema.partitions))):
        if value:
            entries.append(Mapped(f"{topic.replace('_', ' ')} {value}", notes.get(topic, KEPT)))
    label = info.vector or "(unnamed)"
    if found.without_vector.count:
        how = ("carried without compressed vectors" if info.partial
               else "left out (on_bad_vector skip): the target stores every vector on every point")
        entries.append(Mapped(f"{found.without_vector.count} points without vector {label!r}", how))
    if found.bad_vectors.count:
        entries.append(Mapped(f"{found.bad_vectors.count} points with a NaN/inf or all-zero {label!r}",
                              "left out (on_bad_vector skip)"))
    if found.bad_payloads.count:
        entries.append(Mapped(f"{found.bad_payloads.count} points whose payload the target cannot store "
                              f"({found.bad_payloads.detail})", "left out (on_bad_payload skip)"))
    return entries


def _payload_entries(source: CollectionSchema, schema: CollectionSchema, found: Survey, dynamic: Mapping[str, str],
                     notes: Mapping[str, str]) -> list[Mapped]:
    """How the key, the columns and the payload keys are held (see :mod:`smec_vdb.migrate.columns`)."""
    entries = []
    if source.primary is not None:
        key = f"primary key {source.primary.name!r}" + (" (auto_id)" if source.primary.auto_id else "")
        how = KEPT if schema.primary == source.primary else (
            "kept, its ids written explicitly (the target does not generate them)" if schema.primary is not None
            else "the point id (an id has no name here)")
        entries.append(Mapped(key, how))
    indexes = schema.payload_indexes
    for c in source.columns:
        kept = c in schema.columns
        how = KEPT if kept else "payload key" + (f" with a {indexes[c.name]} payload index" if c.name in indexes else "")
        entries.append(Mapped(describe(c), how))
    if source.columns and not source.dynamic_field:
        return entries
    keys = sorted(set(found.keys) - {c.name for c in source.columns})
    if schema.primary is None:  # a schemaless target, or one JSON payload field
        if keys:
            why = "".join(f"; {k!r} is {w}" for k, w in dynamic.items())
            entries.append(Mapped(f"payload keys {keys}", notes.get("payload", KEPT) + why))
        return entries
    made = {c.name: c for c in schema.columns if c not in source.columns}
    entries += [Mapped(f"payload key {k!r}", f"typed {describe(made[k])}") for k in keys if k in made]
    rest = [k for k in keys if k not in made]
    if source.primary is not None and rest:  # the source's own dynamic field, kept
        return entries + [Mapped(f"dynamic field keys {rest}", KEPT)]
    reasons: dict[str, list[str]] = {}
    for k in rest:
        # an existing target's layout was chosen when it was made: its reasons are not derived again
        reasons.setdefault(dynamic.get(k, "as the existing target was laid out"), []).append(k)
    entries += [Mapped(f"payload keys {group}", f"dynamic field ({why})") for why, group in reasons.items()]
    return entries


def as_report(entries: Sequence[Mapped]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in entries]
