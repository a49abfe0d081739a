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
from typing import TYPE_CHECKING, Any, Sequence

from smec_vdb.backend import Backend, CollectionSchema, Resolution

if TYPE_CHECKING:
    from smec_vdb.migrate.options import MigrationOptions
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
                   target: Backend, opts: MigrationOptions) -> list[Mapped]:
    """Every part of the source and how the target (``schema`` on ``target``) holds it."""
    notes = target.mapping_notes(schema)
    kinds = {"int": "integer", "str": "string", "any": "integer and string"}[schema.id_type]
    entries = [Mapped(f"ids ({kinds})", notes.get("ids", KEPT))]
    compressed = ", ".join(f"{r.name} {r.dim}-d" for r in resolutions)
    entries.append(Mapped(f"vector {info.schema.resolution(info.vector).describe()} {info.distance}",
                          f"compressed by SMEC into {compressed} (cosine)"))
    entries += [Mapped(f"vector {r.describe()} {r.distance}", KEPT) for r in info.carried]
    entries += [Mapped(f"sparse vector {name!r}", KEPT) for name in info.sparse]
    entries += [Mapped(f"vector {name!r}", "left out (leave_out)") for name in info.left_out]
    if found.keys:
        entries.append(Mapped(f"payload keys {sorted(found.keys)}", notes.get("payload", KEPT)))
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


def as_report(entries: Sequence[Mapped]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in entries]
