"""The migration engine: turn an existing collection into a verified multi-resolution SMEC collection.

Flow (issues 4, 10): plan (read the source's layout, survey every point, refuse what cannot be
kept, before anything is trained or written) → train SMEC on a sample of the source's own vectors
(or reuse a compressor) → create the target → copy in batches, checkpointing the source cursor →
calibrate the coarse candidate count on held-out source points (:mod:`smec_vdb.calibrate`) → verify
every point (:mod:`smec_vdb.migrate.verify`) → alias swap only when verification passes.

Re-running the same command resumes from the checkpoint; once complete, it re-syncs: points the
source added, changed or deleted since are found by comparing content and only those are
rewritten or deleted, then the whole target is verified again. ``check`` reports that drift and
writes nothing. Writes made to the source *during* a run: a point changed behind the copy cursor
is found by the final verification, which fails naming it; the next run re-syncs it. The source is
only ever read; it may live on another engine than the target (``target_backend``).

Example::

    backend = open_backend("qdrant-edge", path="./smec_data")
    report = migrate(backend, MigrationOptions(source="docs", dim=256))
    print(report["verification"]["recall_at_10"])
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from smec_vdb.backend import Backend, Point
from smec_vdb.calibrate import Reference, calibrate, store
from smec_vdb.collection import COMPRESSOR_KEY, FULL, SmecCollection
from smec_vdb.compress.store import CompressorStore, store_name
from smec_vdb.errors import CalibrationError, CollectionExistsError, ConfigError, MigrationError, VerificationError
from smec_vdb.layout import check_engine_support, default_layout, saving
from smec_vdb.migrate.checkpoint import Progress
from smec_vdb.migrate.copy import copy, write_points
from smec_vdb.migrate.options import (
    CHECKPOINT_KEY,
    COMPLETE_KEY,
    MigrationEvent,
    MigrationOptions,
    ProgressCallback,
    StopCheck,
)
from smec_vdb.migrate.plan import SourceInfo, Timer, inspect_source, make_plan, obtain_compressor, stored_dims
from smec_vdb.migrate.probe import Fidelity
from smec_vdb.migrate.verify import diff, verify
from smec_vdb.retry import retrying

#: the copy phase: :func:`smec_vdb.migrate.copy.copy` in one process, or a scale-out one
#: (:class:`smec_vdb.migrate.distributed.RayCopy`); same arguments, returns (points written, points skipped)
CopyStep = Callable[..., tuple[int, int]]
#: the verification: :func:`smec_vdb.migrate.verify.verify`, or a scale-out one (``RayVerify``); same arguments
VerifyStep = Callable[..., dict[str, Any]]


def _interrupted_creation(backend: Backend, target: str, info: SourceInfo) -> bool:
    """An empty target with neither checkpoint nor completion record whose vectors are named the way
    migrate names them (``full``, ``d<dim>``, the source's carried ones): a run killed between creating
    it and checkpointing."""
    if backend.count(target) != 0:
        return False
    carried = {r.name for r in info.carried}
    return all(r.name == FULL or (r.name[:1] == "d" and r.name[1:].isdigit()) or r.name in carried
               for r in backend.schema(target).resolutions)


def prepare_target(backend: Backend, info: SourceInfo, opts: MigrationOptions, plan: str
                   ) -> tuple[str, dict | None, bool]:
    """How the target stands, without changing it: (state, checkpoint, drop_first) with state
    "fresh", "resume" or "complete"; ``drop_first``: a fresh run must first drop what is there
    (``restart``, or a target killed between its creation and its first checkpoint)."""
    target = opts.target_name
    if not backend.exists(target):
        return "fresh", None, False
    if opts.restart:
        return "fresh", None, True
    checkpoint = backend.get_metadata(target, CHECKPOINT_KEY)
    complete = backend.get_metadata(target, COMPLETE_KEY)
    if checkpoint is not None:
        if checkpoint.get("plan") != plan:
            raise MigrationError(
                f"target {target!r} holds a checkpoint from another run (plan {checkpoint.get('plan')}, "
                f"this run {plan}): re-run with the same options, or set restart to start over"
            )
        return "resume", checkpoint, False
    if complete is not None:
        if complete.get("plan") != plan:
            raise CollectionExistsError(
                f"target {target!r} exists from another migration (plan {complete.get('plan')}): "
                f"choose another target or set restart"
            )
        return "complete", None, False
    if not opts.check and _interrupted_creation(backend, target, info):
        return "fresh", None, True
    raise CollectionExistsError(
        f"target {target!r} exists and was not created by this migration: choose another target, "
        f"or set restart to replace it"
    )


def migrate(
    backend: Backend,
    opts: MigrationOptions,
    *,
    target_backend: Backend | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    copy_step: CopyStep = copy,
    verify_step: VerifyStep = verify,
) -> dict[str, Any]:
    """Run, resume, re-sync (or with ``check``, compare) a migration and return its report (module doc).

    ``copy_step`` and ``verify_step`` run the copy and the verification (by default in this process)."""
    started = time.perf_counter()
    timer = Timer()
    source, target = backend, target_backend or backend
    if target is source and opts.target_name == opts.source:
        raise ConfigError("the target must differ from the source: the source is never modified")
    source, target = retrying(source), retrying(target)  # every read and idempotent write below (smec_vdb.retry)
    if target_backend is None or target_backend is backend:
        opts = _through_alias(source, opts)
    info = inspect_source(source, opts.source, opts.vector, opts.leave_out)
    opts.check_width(info.width)
    check_engine_support(target.target, opts.layout, opts.index.kind)  # before training or writing
    plan = opts.plan_id(info.vector, store_name(source), store_name(target))
    name = opts.target_name
    state, checkpoint, drop_first = prepare_target(target, info, opts, plan)
    if info.count == 0 and not (state == "complete" and (opts.allow_empty_source or opts.check)):
        raise MigrationError(f"source {opts.source!r} is empty: nothing to migrate" + (
            f"; target {name!r} holds {target.count(name)} points from it: pass allow_empty_source to re-sync it to "
            "empty (deletes them all)" if state == "complete" else ""))
    if opts.check and state != "complete":
        raise MigrationError(f"nothing to check: target {name!r} is {'absent' if state == 'fresh' else 'mid-copy'}; "
                             "run without check to migrate")

    recorded = (checkpoint or {}).get("compressor_path") if state == "resume" else (
        (target.get_metadata(name, COMPRESSOR_KEY) or {}).get("path") if state == "complete" else None)
    # check writes nothing, not even the engine probe's scratch collection: it reads what the migration found
    known = _recorded_fidelity(target, name) if opts.check else None
    t0 = time.perf_counter()
    existing = None if state == "fresh" else target.schema(name)
    planned = make_plan(source, target, info, opts, recorded, progress, known, existing=existing)  # every refusal
    info = planned.info
    timer.add("survey", t0)
    t0 = time.perf_counter()
    comp = obtain_compressor(planned, opts, progress, should_stop)  # a stop here leaves nothing written
    if drop_first:  # only once nothing can be refused any more: a refusal leaves what was there
        target.drop(name)
    # a trained compressor goes to the content-addressed store: never over another one (compress/store.py)
    comp_path = planned.reused[1].resolve() if planned.reused is not None else CompressorStore(opts.compressor_store).put(comp)
    timer.add("train", t0)
    schema, reused = planned.schema, planned.reused

    resync: dict[str, Any] | None = None
    written = 0
    if state == "complete":
        col = SmecCollection(target, name, comp)
        resync = _resync(source, target, info, col, opts, timer, progress, should_stop)
        if opts.check:
            return _check_report(info, col, plan, resync, started)
        written = col.count()  # points the target holds; this run's rewrites are in resync
    else:
        if state == "fresh":
            col = SmecCollection.create(
                target, name, comp, dims=stored_dims(opts, comp.dims), keep_full=opts.keep_full,
                id_type=schema.id_type, payload_indexes=schema.payload_indexes, index=opts.index,
                compressor_path=comp_path, carried=info.carried, sparse=info.sparse,
                layout=opts.layout or default_layout(target.target, opts.index.kind), like=schema,
            )
            checkpoint = Progress(plan, compressor_path=str(comp_path),
                                  compressor_hash=comp.manifest_hash).as_record()
            target.set_metadata(name, CHECKPOINT_KEY, checkpoint)
        else:
            col = SmecCollection(target, name, comp)
        assert checkpoint is not None
        written, _ = copy_step(source, target, info, col, opts, checkpoint, timer, progress, should_stop)
    # the copy's wall time: its read/encode/write seconds overlap (threads, or Ray workers)
    copy_seconds = timer.seconds.get("copy", 0.0)

    t0 = time.perf_counter()
    verification = verify_step(source, target, info, col, min_recall=opts.min_recall, n_queries=opts.verify_queries,
                               seed=opts.seed, batch=max(opts.batch_size, 256), progress=progress,
                               should_stop=should_stop, queries=planned.found.queries, timer=timer)
    timer.add("verify", t0)
    skipped = verification.pop("skipped_ids")  # the report lists them; metadata keeps the count
    # after verification, which finds the skipped ids again (the checkpoint counts them); verification's
    # recall uses its own fixed candidate budget, so the order does not change it
    t0 = time.perf_counter()
    search = _calibrate(source, info, col, opts, skipped, progress)
    timer.add("calibrate", t0)
    footprint = saving(info.schema, col.schema)
    total = time.perf_counter() - started
    report = {
        "source": {**info.as_dict(), "store": store_name(source)},
        "target": {"collection": name, "resolutions": {r.name: r.dim for r in col.resolutions},
                   "carried": {r.name: r.dim for r in info.carried}, "sparse": list(info.sparse),
                   "id_type": col.schema.id_type, "backend": target.target, "store": store_name(target)},
        "compressor": {"path": str(comp_path), "hash": comp.manifest_hash, "method": comp.method,
                       "dims": list(comp.dims), "trained_now": reused is None},
        "plan": plan,
        "points_written": written,
        "skipped_ids": skipped,
        "bytes_per_point": {"before": 4 * info.width, "after": 4 * sum(r.dim for r in col.resolutions)},
        "footprint": footprint,
        "search": search,
        "seconds": {**{k: round(v, 3) for k, v in timer.seconds.items()}, "total": round(total, 3)},
        "verify_share": round(timer.seconds["verify"] / total, 3) if total > 0 else None,
        "throughput_points_per_s": round(written / copy_seconds, 1) if copy_seconds > 0 else None,
        "verification": verification,
        "resumed": bool(checkpoint and checkpoint.get("written")),
        "already_complete": state == "complete",
        "resync": resync,
        "alias": None,
        **planned.report(),
    }
    target.set_metadata(name, COMPLETE_KEY, {
        "plan": plan, "source_collection": info.name, "skipped": len(skipped), "verification": verification,
        "footprint": footprint, "engine_fidelity": None if info.fidelity is None else info.fidelity.as_dict()})
    target.set_metadata(name, CHECKPOINT_KEY, None)
    if not verification["passed"]:
        raise VerificationError(verification["summary"], report=report)
    if opts.swap_alias:
        target.create_alias(opts.swap_alias, name)
        report["alias"] = {"name": opts.swap_alias, "collection": name}
    return report


def _calibrate(source: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions, skipped: list,
               progress: ProgressCallback | None) -> dict[str, Any]:
    """Calibrate the coarse candidates against exact search over the source and record them as the search
    default; a target it cannot reach leaves the rule as the default and says why (the migration's own
    gate is ``min_recall``)."""
    def report(done: int, total: int) -> None:
        if progress:
            progress(MigrationEvent("calibrate", done, None))

    try:
        result = calibrate(col, Reference(source, info.name, info.vector, frozenset(skipped)),
                           queries=opts.verify_queries, seed=opts.seed, progress=report)
    except CalibrationError as e:
        col.record_search_defaults(None)
        return {"candidates": None, "reached": False, "reason": str(e), "default": col.default_candidates(10)}
    store(col, result)
    return {**result.as_dict(), "reached": True}  # candidates None: one resolution, no count to choose


def _resync(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions,
            timer: Timer, progress: ProgressCallback | None, should_stop: StopCheck | None) -> dict[str, Any]:
    """Bring a complete target up to date: rewrite missing/changed points, delete ones gone from the
    source (nothing is written with ``check``)."""
    counts = {"rewritten": 0, "deleted": 0}

    def repair(points: list[Point], x: np.ndarray) -> None:
        # deleted first: an upsert into a Milvus dynamic field keeps keys the new row lacks (Milvus Lite
        # merges them), so a key added behind our back would survive; a stop in between leaves the
        # points missing, which the next run's diff finds and rewrites
        target.delete(col.name, [p.id for p in points])
        write_points(target, col, info, points, x, timer)
        counts["rewritten"] += len(points)

    def delete_extra(ids: list) -> None:
        target.delete(col.name, ids)
        counts["deleted"] += len(ids)

    t0 = time.perf_counter()
    drift = diff(source, target, info, col, max(opts.batch_size, 256), repair=None if opts.check else repair,
                 delete_extra=None if opts.check else delete_extra, progress=progress, should_stop=should_stop,
                 phase="resync")
    timer.add("resync", t0)
    return {"drift": drift.as_dict(), **counts}


def _through_alias(source: Backend, opts: MigrationOptions) -> MigrationOptions:
    """``opts`` naming the collection the source alias points at (so that a run through the alias and one
    naming the collection are the same plan); a MigrationError when it points at this migration's own
    target (the alias swap of an earlier run moved it there), saying what to run instead."""
    if not source.supports_aliases:
        return opts
    resolved = source.resolve_alias(opts.source)
    if resolved is None or resolved == opts.source:
        return opts
    if resolved == opts.target_name:
        original = (source.get_metadata(resolved, COMPLETE_KEY) or {}).get("source_collection")
        rerun = (f"to re-sync it from its source, name that collection: collection={original!r}, target={resolved!r}"
                 if original else "name the source collection itself (not the alias)")
        raise MigrationError(
            f"source {opts.source!r} is an alias that now points at this migration's target {resolved!r} (an alias "
            f"swap moved it there), so the target would be migrated into itself; {rerun}")
    return replace(opts, source=resolved, target=opts.target_name)


def _recorded_fidelity(target: Backend, name: str) -> Fidelity | None:
    """The engine probe's findings the migration of ``name`` recorded (None before they were recorded)."""
    recorded = (target.get_metadata(name, COMPLETE_KEY) or {}).get("engine_fidelity")
    return None if recorded is None else Fidelity.from_dict(recorded)


def _check_report(info: SourceInfo, col: SmecCollection, plan: str, resync: dict[str, Any], started: float
                  ) -> dict[str, Any]:
    drift = resync["drift"]
    return {"check": True, "source": info.as_dict(), "target": {"collection": col.name}, "plan": plan,
            "drift": drift, "in_sync": not drift["differences"],
            "seconds": {"total": round(time.perf_counter() - started, 3)}}

