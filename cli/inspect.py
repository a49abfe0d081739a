"""`smec-vdb inspect`: collections, their resolutions, aliases, compressor, last verification and sizes."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from smec_vdb.cli.common import BackendOpt, PathOpt, UrlOpt, backend_session, emit_json, results
from smec_vdb.collection import COMPRESSOR_KEY
from smec_vdb.layout import collection_footprint
from smec_vdb.migrate import CHECKPOINT_KEY, COMPLETE_KEY


def describe(b, name: str) -> dict:
    schema = b.schema(name)
    count = b.count(name)
    per_point = 4 * sum(r.dim for r in schema.resolutions)
    record = b.get_metadata(name, COMPRESSOR_KEY)
    checkpoint = b.get_metadata(name, CHECKPOINT_KEY)
    completed = b.get_metadata(name, COMPLETE_KEY) or {}
    return {
        "collection": name,
        "aliases": b.aliases(name) if b.supports_aliases else [],
        "points": count,
        "distance": schema.distance,
        "vectors": {r.name: r.dim for r in schema.resolutions},
        "vector_bytes_per_point": per_point,
        "vector_bytes_total": per_point * count,
        **_layout_bytes(schema),
        "compressor": record,
        "migration_in_progress": checkpoint is not None,
        "verification": completed.get("verification"),  # as the last migrate run stored it
    }


def _layout_bytes(schema) -> dict:
    fp = collection_footprint(schema)
    return {"layout": schema.layout.name if schema.layout else None,
            "ram_bytes_per_point": round(fp.ram, 1), "disk_bytes_per_point": round(fp.disk, 1)}


def _verification(v: dict[str, Any] | None) -> str:
    if not v:
        return "-"
    return f"{'passed' if v.get('passed') else 'FAILED'}, recall@10 {v.get('recall_at_10')}"


def inspect_command(
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="Only this collection.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (every field, the full verification).")] = False,
    backend: BackendOpt = "qdrant-edge",
    url: UrlOpt = None,
    path: PathOpt = None,
) -> None:
    """List collections with their aliases, resolutions, compressor, last verification and sizes.

    Example: smec-vdb inspect --collection docs_smec --json
    """
    with backend_session(backend, url, path, existing=True) as b:
        names = [collection] if collection else b.list_collections()
        rows = [describe(b, n) for n in names]
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} collection(s)")
    for c in ("collection", "aliases", "points", "vectors", "bytes/point", "RAM/disk B/pt", "compressor",
              "verification", "state"):
        table.add_column(c)
    for r in rows:
        comp = r["compressor"]
        table.add_row(
            r["collection"], ", ".join(r["aliases"]) or "-", str(r["points"]),
            ", ".join(f"{k}:{v}" for k, v in r["vectors"].items()), str(r["vector_bytes_per_point"]),
            f"{r['ram_bytes_per_point']:g} / {r['disk_bytes_per_point']:g} ({r['layout'] or 'engine default'})",
            f"{comp['method']} {comp['manifest_hash']}" if comp else "-", _verification(r["verification"]),
            "migrating" if r["migration_in_progress"] else "ready",
        )
    results.print(table)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_command)
