"""`smec-vdb migrate`: turn an existing collection into a verified multi-resolution SMEC collection."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from smec_vdb.cli.common import BackendOpt, PathOpt, PhaseProgress, UrlOpt, backend_session, console, emit_json, parse_dims
from smec_vdb.errors import VerificationError
from smec_vdb.layout import DEFAULT_LAYOUT, parse_layout
from smec_vdb.migrate import DEFAULT_COMPRESSOR_STORE, MigrationOptions, dry_run, migrate


def migrate_command(
    collection: Annotated[str, typer.Option("--collection", "-c", help="Source collection (never modified).")],
    dim: Annotated[Optional[int], typer.Option(help="Target dim; the schedule is picked from the source width.")] = None,
    dims: Annotated[Optional[str], typer.Option(help="Explicit schedule of stored dims, e.g. 512,256.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Target collection [default: <collection>_smec].")] = None,
    vector: Annotated[Optional[str], typer.Option(help="Source vector name when it has several.")] = None,
    compressor: Annotated[Optional[Path], typer.Option(help="Reuse this trained compressor directory.")] = None,
    keep_full: Annotated[bool, typer.Option("--keep-full/--drop-full", help="Also store the full vector.")] = True,
    batch_size: Annotated[int, typer.Option(help="Points per read/encode/write batch.")] = 512,
    train_sample: Annotated[int, typer.Option(help="Source vectors sampled to train the compressor.")] = 20_000,
    dry_run_: Annotated[bool, typer.Option("--dry-run", help="Plan only: write nothing.")] = False,
    swap_alias: Annotated[Optional[str], typer.Option(help="Point this alias at the target if it verifies.")] = None,
    min_recall: Annotated[float, typer.Option(help="Fail verification below this recall@10.")] = 0.95,
    restart: Annotated[bool, typer.Option("--restart", help="Drop a partial target and start over.")] = False,
    on_bad_vector: Annotated[str, typer.Option(help="NaN/inf/zero source vectors: fail or skip.")] = "fail",
    verify_queries: Annotated[int, typer.Option(help="Source vectors used as queries for recall.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for sampling and training.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Max training epochs per stage.")] = None,
    compressor_store: Annotated[Path, typer.Option(help="Where trained compressors are saved.")] = Path(
        DEFAULT_COMPRESSOR_STORE),
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    layout: Annotated[Optional[str], typer.Option(
        help="Placement: tiered (coarse + graph in RAM, wider vectors graph-less on disk), tiered-ram, all-ram "
             "[default: tiered, coarse int8 where the engine supports it].")] = None,
    quantize: Annotated[Optional[str], typer.Option(
        help="Coarse-vector codes: none, int8, binary1|binary1.5|binary2[:q1|q4|q8], turbo1|1.5|2|4|8.")] = None,
    backend: BackendOpt = "qdrant-edge",
    url: UrlOpt = None,
    path: PathOpt = None,
) -> None:
    """Migrate COLLECTION to a multi-resolution SMEC collection, verified, resumable.

    Example: smec-vdb migrate --collection docs --dim 64 --swap-alias docs_live
    """
    opts = MigrationOptions(
        source=collection, target=target, dim=dim, dims=parse_dims(dims), vector=vector,
        compressor=str(compressor) if compressor else None, keep_full=keep_full, batch_size=batch_size,
        train_sample=train_sample, min_recall=min_recall, swap_alias=swap_alias, restart=restart,
        on_bad_vector=on_bad_vector,  # type: ignore[arg-type]
        verify_queries=verify_queries, seed=seed, compressor_store=str(compressor_store),
        train_options={"epochs": epochs} if epochs else {},
        layout=None if layout is None and quantize is None else parse_layout(layout or DEFAULT_LAYOUT, quantize=quantize),
    )
    stop_requested: list[bool] = []

    def on_sigint(signum, frame):  # first Ctrl-C: stop at the next batch boundary; second: abort
        if stop_requested:
            raise KeyboardInterrupt
        stop_requested.append(True)
        console.print("[yellow]stopping after the current batch… (Ctrl-C again to abort)[/]")

    with backend_session(backend, url, path) as b, PhaseProgress() as bars:
        def progress(ev):
            bars.update(ev.phase, ev.done, ev.total, ev.detail)

        if dry_run_:
            result = dry_run(b, opts, progress=progress)
        else:
            previous = signal.signal(signal.SIGINT, on_sigint)
            try:
                result = migrate(b, opts, progress=progress, should_stop=lambda: bool(stop_requested))
            except VerificationError as e:
                if report and e.report:
                    emit_json(e.report, report)
                raise
            finally:
                signal.signal(signal.SIGINT, previous)
    _print_summary(result)
    if report:
        emit_json(result, report)


def _print_summary(result: dict) -> None:
    table = Table(title="dry run (nothing written)" if result.get("dry_run") else "migration")
    table.add_column("what")
    table.add_column("value")
    src = result["source"]
    table.add_row("source", f"{src['collection']} ({src['count']} points, {src['width']}-d {src['distance']})")
    tgt = result["target"]
    table.add_row("target", f"{tgt['collection']}: " + ", ".join(f"{k} {v}-d" for k, v in tgt["resolutions"].items()))
    bpp = result["bytes_per_point"]
    table.add_row("vector bytes/point", f"{bpp['before']} → {bpp['after']} ({bpp['after'] / bpp['before']:.2f}× the source)")
    if result.get("dry_run"):
        table.add_row("est. recall@10", f"{result['estimated_recall_at_10']:.4f} (over {result['estimate_pool']} sampled)")
    else:
        v = result["verification"]
        table.add_row("written", f"{result['points_written']} (skipped {len(result['skipped_ids'])})")
        table.add_row("throughput", f"{result['throughput_points_per_s']} points/s")
        table.add_row("recall@10", f"{v['recall_at_10']:.4f} over {v['recall_queries']} queries")
        table.add_row("verification", v["summary"])
        if result.get("alias"):
            table.add_row("alias", f"{result['alias']['name']} → {result['alias']['collection']}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
