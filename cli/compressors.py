"""`smec-vdb compressors list|gc`: the content-addressed compressor store (:mod:`smec_vdb.compress.store`)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from smec_vdb.cli.common import backend_session, emit_json
from smec_vdb.compress.store import DEFAULT_MIN_AGE_S, CompressorStore, Reference, collect_garbage, references
from smec_vdb.errors import ConfigError
from smec_vdb.migrate.options import DEFAULT_COMPRESSOR_STORE

EXAMPLE = "smec-vdb compressors gc --collections-in qdrant-edge:./smec_data --collections-in milvus:http://milvus:19530"

StoreOpt = Annotated[Path, typer.Option("--compressor-store", help="The compressor store folder.")]
CollectionsInOpt = Annotated[Optional[list[str]], typer.Option(
    "--collections-in", metavar="ENGINE:LOCATION",
    help="An engine store whose collections record compressors: qdrant-edge:./smec_data, milvus:./x.db, "
         "milvus:http://host:19530, qdrant:http://host:6333 (keys from QDRANT_API_KEY / MILVUS_TOKEN). Repeat it "
         "for every store that uses this compressor store.")]

app = typer.Typer(help="The compressor store: one folder per compressor, named by its hash. Example: " + EXAMPLE,
                  no_args_is_help=True, rich_markup_mode=None)


def parse_store(spec: str) -> tuple[str, str | None, str | None]:
    """``ENGINE:LOCATION`` → (engine, url, path): a LOCATION with ``://`` is a server URL, else a path."""
    engine, sep, where = spec.partition(":")
    if not sep or not engine or not where:
        raise ConfigError(f"--collections-in takes ENGINE:LOCATION (e.g. qdrant-edge:./smec_data), found {spec!r}")
    return (engine, where, None) if "://" in where else (engine, None, where)


def _open_all(stack: ExitStack, specs: list[str]) -> list[Any]:
    return [stack.enter_context(backend_session(*parse_store(s), existing=True)) for s in specs]


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def list_command(
    store: StoreOpt = Path(DEFAULT_COMPRESSOR_STORE),
    collections_in: CollectionsInOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the stored compressors (with --collections-in: which collections record each).

    Example: smec-vdb compressors list --collections-in qdrant-edge:./smec_data
    """
    recorded: dict[str, list[Reference]] = {}
    with ExitStack() as stack:
        for backend in _open_all(stack, collections_in or []):
            for ref in references(backend):
                recorded.setdefault(ref.hash, []).append(ref)
    entries = CompressorStore(store).entries()
    rows: list[dict[str, Any]] = [{"hash": e.hash, "path": str(e.path), "method": e.method, "input_dim": e.input_dim, "dims": list(e.dims),
             "bytes": e.bytes, "modified": e.modified, "problem": e.problem,
             "recorded_by": [str(r) for r in recorded.get(e.hash, [])] if collections_in else None} for e in entries]
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} compressor(s) in {store}")
    for col in ("hash", "method", "shape", "bytes", "age", *(["recorded by"] if collections_in else [])):
        table.add_column(col)
    now = time.time()
    for r in rows:
        shape = f"{r['input_dim']} → {r['dims']}" if r["problem"] is None else f"unreadable: {r['problem']}"
        table.add_row(r["hash"], r["method"] or "?", shape, str(r["bytes"]), _age(now - r["modified"]),
                      *(["; ".join(r["recorded_by"]) or "nothing checked records it"] if collections_in else []))
    Console(soft_wrap=True).print(table)


def gc_command(
    hashes: Annotated[Optional[list[str]], typer.Argument(metavar="[HASH]...",
        help="Delete only these compressors (hash or a unique prefix of 4+ characters); refused if recorded.")] = None,
    collections_in: CollectionsInOpt = None,
    store: StoreOpt = Path(DEFAULT_COMPRESSOR_STORE),
    min_age: Annotated[float, typer.Option("--min-age", help="Spare compressors (and leftovers of killed writes) "
                                           "written less than this many seconds ago.")] = DEFAULT_MIN_AGE_S,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete stored compressors that no collection of the --collections-in stores records.

    A compressor a collection (or a running migration) records is never deleted: named as HASHES,
    it is refused and nothing is deleted.

    Example: smec-vdb compressors gc --collections-in qdrant-edge:./smec_data --dry-run
    """
    if not collections_in:
        raise ConfigError("gc needs --collections-in for every engine store that uses this compressor store "
                          "(their collections' records are what it keeps); nothing was deleted")
    with ExitStack() as stack:
        report = collect_garbage(CompressorStore(store), _open_all(stack, collections_in), hashes=hashes or (),
                                 min_age_s=min_age, dry_run=dry_run)
    out = Console(soft_wrap=True, highlight=False)
    out.print("checked " + ", ".join(f"{n} collection(s) in {where}" for where, n in report.checked.items()))
    for comp_hash, refs in report.kept.items():
        out.print(f"kept {comp_hash}: recorded by {', '.join(map(str, refs))}")
    for entry in report.too_young:
        out.print(f"kept {entry.hash}: written {_age(time.time() - entry.modified)} ago (--min-age {min_age:g} s)")
    verb = "would delete" if dry_run else "deleted"
    for entry in report.deleted:
        out.print(f"{verb} {entry.hash} ({entry.method or 'unreadable'} {entry.input_dim} → {list(entry.dims)})")
    for path in report.leftovers:
        out.print(f"{verb} leftover {path.name}")
    if not report.deleted and not report.leftovers:
        out.print("nothing to delete")


def register(root: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("gc")(gc_command)
    root.add_typer(app, name="compressors")
