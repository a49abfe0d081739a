"""`smec-vdb migrate`: turn an existing collection into a verified multi-resolution SMEC collection."""

from __future__ import annotations

import functools
import json
import os
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from smec_vdb.cli.common import (
    BackendOpt,
    PathOpt,
    PhaseProgress,
    UrlOpt,
    backend_session,
    check_output_dir,
    parse_dims,
    results,
    stop_on_sigint,
)
from smec_vdb.errors import ConfigError, MigrationError, SmecError, VerificationError, mask_credentials
from smec_vdb.layout import DEFAULT_LAYOUT, parse_layout
from smec_vdb.migrate import DEFAULT_COMPRESSOR_STORE, MigrationOptions, dry_run, migrate
from smec_vdb.migrate.distributed import Connection, migrate_distributed


#: library parameter names (as MigrationOptions spells them in errors) → this command's flags
_FLAGS = {"run without workers": "run without --workers/--ray-address", "workers must": "--workers must",
          "min_recall": "--min-recall", "on_bad_vector": "--on-bad-vector", "batch_size": "--batch-size",
          "train_sample": "--train-sample", "verify_queries": "--verify-queries", "swap_alias": "--swap-alias",
          "compressor_store": "--compressor-store", "keep_full is False": "--drop-full", "set restart": "pass --restart",
          "on_bad_payload": "--on-bad-payload", "set on_bad_payload to skip": "pass --on-bad-payload skip",
          "leave_out": "--leave-out", "set leave_out to": "pass --leave-out", "allow_empty_source": "--allow-empty-source",
          "pass allow_empty_source": "pass --allow-empty-source", "collection=": "--collection ", "target=": "--target ",
          "with vector": "with --vector", "without check": "without --check", "exactly one of dim or dims":
          "exactly one of --dim or --dims", "or compressor,": "or --compressor,", "set on_bad_vector to skip":
          "pass --on-bad-vector skip"}
_FLAG_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_FLAGS, key=len, reverse=True)))


def _with_flags(error: SmecError) -> SmecError:
    """The same error, its parameter names spelled as this command's flags."""
    error.args = (_FLAG_PATTERN.sub(lambda m: _FLAGS[m.group(0)], str(error)),)
    return error


def _check_writable(report: Path) -> None:
    """Refuse an unwritable --report before any work starts (nothing is left behind)."""
    existed = report.exists()
    try:
        with open(report, "a"):
            pass
    except OSError as e:
        raise ConfigError(f"--report {report}: cannot write there ({e.strerror}); choose another path") from e
    if not existed:
        os.unlink(report)


def _save(result: dict, report: Path) -> None:
    report.write_text(mask_credentials(json.dumps(result, indent=2, sort_keys=True, default=str)) + "\n")


def _migrate_command(
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
    check: Annotated[bool, typer.Option("--check", help="Report drift between source and a migrated target; "
                                        "write nothing (exit 1 if they differ).")] = False,
    on_bad_vector: Annotated[str, typer.Option(help="NaN/inf/zero source vectors: fail or skip.")] = "fail",
    on_bad_payload: Annotated[str, typer.Option(help="Payloads the target cannot store (over its size or nesting "
                                                "limits, integers beyond 64 bits, NaN): fail or skip.")] = "fail",
    leave_out: Annotated[Optional[list[str]], typer.Option(help="Source vector not to copy (e.g. a multivector the "
                                                           "target cannot hold); repeat for several.")] = None,
    allow_empty_source: Annotated[bool, typer.Option("--allow-empty-source", help="Re-sync a migrated target to a "
                                                     "source that is now empty (deletes every point).")] = False,
    verify_queries: Annotated[int, typer.Option(help="Source vectors used as queries for recall.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for sampling and training.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Max training epochs per stage.")] = None,
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
    target_backend: Annotated[Optional[str], typer.Option(help="Target engine when it differs from the source's "
                                                          "(qdrant-edge, qdrant, milvus).")] = None,
    target_url: Annotated[Optional[str], typer.Option(help="Target server URL (with --target-backend).")] = None,
    target_path: Annotated[Optional[str], typer.Option(help="Target embedded store (with --target-backend).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Copy with N Ray Data workers in parallel (server source "
                                                   "and target only; needs smec-vdb[ray]).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster to run the workers on: auto or "
                                                       "ray://host:10001 [default: a local one].")] = None,
) -> None:
    """Migrate COLLECTION to a multi-resolution SMEC collection, verified, resumable.

    Re-running it after the source changed re-syncs the target (only differing points rewritten).

    Example: smec-vdb migrate --collection docs --dim 64 --swap-alias docs_live
    """
    if report:
        _check_writable(report)
    if not dry_run_ and compressor is None:
        check_output_dir(compressor_store, "--compressor-store")
    if (target_url or target_path) and not target_backend:
        raise ConfigError("--target-url/--target-path need --target-backend")
    opts = MigrationOptions(
        source=collection, target=target, dim=dim, dims=parse_dims(dims), vector=vector,
        compressor=str(compressor) if compressor else None, keep_full=keep_full, batch_size=batch_size,
        train_sample=train_sample, min_recall=min_recall, swap_alias=swap_alias, restart=restart,
        on_bad_vector=on_bad_vector,  # type: ignore[arg-type]
        on_bad_payload=on_bad_payload,  # type: ignore[arg-type]
        leave_out=tuple(leave_out or ()), allow_empty_source=allow_empty_source,
        verify_queries=verify_queries, seed=seed, compressor_store=str(compressor_store), check=check,
        train_options={"epochs": epochs} if epochs is not None else {},
        layout=None if layout is None and quantize is None else parse_layout(layout or DEFAULT_LAYOUT, quantize=quantize),
    )
    distributed = (workers is not None or ray_address is not None) and not dry_run_
    with ExitStack() as stack:
        b: Any = None  # a distributed run's workers open the engines themselves
        tb: Any = None
        if not distributed:
            b = stack.enter_context(backend_session(backend, url, path, existing=True))  # the source: only read
            tb = stack.enter_context(backend_session(target_backend, target_url, target_path)) if target_backend else None
        bars = stack.enter_context(PhaseProgress())

        def progress(ev):
            bars.update(ev.phase, ev.done, ev.total, ev.detail)

        if dry_run_:
            result = dry_run(b, opts, target_backend=tb, progress=progress)
        else:
            should_stop = stack.enter_context(stop_on_sigint())  # first Ctrl-C: stop at the next batch
            try:
                if distributed:
                    result = migrate_distributed(
                        Connection.resolve(backend, url, path), opts, workers=workers, ray_address=ray_address,
                        target=Connection.resolve(target_backend, target_url, target_path) if target_backend else None,
                        progress=progress, should_stop=should_stop)
                else:
                    result = migrate(b, opts, target_backend=tb, progress=progress, should_stop=should_stop)
            except VerificationError as e:
                if report and e.report:
                    _save(e.report, report)
                raise
    if report:
        _save(result, report)
    if result.get("check"):
        drift = result["drift"]
        results.print(f"{'in sync' if result['in_sync'] else 'drift'}: {drift['points_checked']} points checked, "
                      f"differences {drift['differences'] or 'none'}, first ids {drift['first_ids'] or 'none'}")
        if not result["in_sync"]:
            raise MigrationError("source and target differ: run the same command without --check to re-sync")
        return
    _print_summary(result)


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
    for entry in result.get("schema_mapping", ()):
        if result.get("dry_run") or entry["how"] != "kept":
            table.add_row("mapping", f"{entry['item']}: {entry['how']}")
    if result.get("dry_run"):
        table.add_row("est. recall@10", f"{result['estimated_recall_at_10']:.4f} (over {result['estimate_pool']} sampled)")
    else:
        v = result["verification"]
        table.add_row("written", f"{result['points_written']} (skipped {len(result['skipped_ids'])})")
        table.add_row("throughput", f"{result['throughput_points_per_s']} points/s")
        table.add_row("recall@10", f"{v['recall_at_10']:.4f} over {v['recall_queries']} queries, "
                                   f"{v['recall_candidates']} candidates")
        if result.get("resync"):
            rs = result["resync"]
            table.add_row("re-sync", f"{rs['rewritten']} rewritten, {rs['deleted']} deleted "
                                     f"(differences {rs['drift']['differences'] or 'none'})")
        table.add_row("verification", v["summary"])
        if result.get("alias"):
            table.add_row("alias", f"{result['alias']['name']} → {result['alias']['collection']}")
    results.print(table)


@functools.wraps(_migrate_command)
def migrate_command(*args, **kwargs) -> None:
    try:
        _migrate_command(*args, **kwargs)
    except SmecError as e:
        _with_flags(e)
        raise


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
