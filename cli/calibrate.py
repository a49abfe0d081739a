"""`smec-vdb calibrate`: the smallest coarse candidate count reaching a recall target, as the search default."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from smec_vdb.cli.common import BackendOpt, PathOpt, UrlOpt, backend_session, emit_json
from smec_vdb.errors import ConfigError


def calibrate_command(
    collection: Annotated[str, typer.Option("--collection", "-c", help="SMEC collection (or alias) to calibrate.")],
    recall: Annotated[float, typer.Option(help="Recall@k target against exact full-dim search.")] = 0.99,
    k: Annotated[int, typer.Option("-k", help="Results per query the target is measured at.")] = 10,
    queries: Annotated[int, typer.Option(help="Held-out points per query set (one to choose on, one to report on).")] = 200,
    source: Annotated[Optional[str], typer.Option(help="Collection of the full vectors to compare with "
                                                       "[default: the collection's own 'full' vectors].")] = None,
    vector: Annotated[Optional[str], typer.Option(help="Vector of --source [default: its only dense vector].")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out query sampling.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    backend: BackendOpt = "qdrant-edge",
    url: UrlOpt = None,
    path: PathOpt = None,
) -> None:
    """Find the smallest coarse candidate count whose recall@k reaches --recall on held-out points, and
    store it as the collection's search default (reported with recall and p50 latency on a second set).

    Example: smec-vdb calibrate --collection docs_smec --recall 0.99
    """
    from smec_vdb.calibrate import Reference, calibrate, store
    from smec_vdb.collection import FULL, SmecCollection
    from smec_vdb.migrate.plan import inspect_source

    if k < 1 or queries < 2:
        raise ConfigError(f"-k must be >= 1 and --queries >= 2, found {k} and {queries}")
    with backend_session(backend, url, path, existing=True) as b:
        col = SmecCollection.open(b, collection)
        if source is None:
            if FULL not in {r.name for r in col.resolutions}:
                raise ConfigError(f"{collection!r} stores no full vector to compare with: give --source, "
                                  "the collection it was migrated from")
            ref = Reference(b, col.bound_to, FULL)
        else:
            ref = Reference(b, source, inspect_source(b, source, vector).vector)
        result = calibrate(col, ref, target=recall, k=k, queries=queries, seed=seed)
        store(col, result)
    if as_json:
        emit_json({"collection": col.bound_to, **result.as_dict()})
        return
    table = Table(title=f"{col.bound_to}: coarse candidates for recall@{k} >= {recall}")
    table.add_column("what")
    table.add_column("value")
    if result.candidates is None:
        table.add_row("candidates", "none to choose: one resolution, nothing is re-scored")
    else:
        table.add_row("candidates", f"{result.candidates} (stored as the search default; the rule gives {result.rule})")
        table.add_row("tried", ", ".join(f"{c}: {r:.4f}" for c, r in sorted(result.tried.items())))
    held = result.held_out
    table.add_row("held-out", f"recall@{k} {held['recall']:.4f}, p50 {held['p50_ms']:.2f} ms, p99 {held['p99_ms']:.2f} ms "
                              f"over {held['queries']} queries")
    table.add_row("reference", result.reference)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
