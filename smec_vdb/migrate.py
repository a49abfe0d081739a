"""The migration engine: turn an existing collection into a verified multi-resolution SMEC collection.

Flow (issue 4): inspect the source → train SMEC unsupervised on a sample of the source's own
vectors (or reuse a compressor) → create the target → stream source → encode → upsert in
batches, checkpointing the source cursor in the target's metadata after every batch → verify
(counts, id sets, payloads on a sample, recall@10 of coarse-to-fine on the target vs full-dim
search on the source) → report → alias swap only when verification passes.

The source is only ever read. Re-running the same command resumes from the checkpoint (or, once
complete, re-verifies); a batch written twice after a crash overwrites itself (upsert by id).

Example::

    backend = open_backend("qdrant-edge", path="./smec_data")
    report = migrate(backend, MigrationOptions(source="docs", dim=256))
    print(report["verification"]["recall_at_10"])
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import numpy as np

from smec_vdb.backend import Backend, Batch, CollectionSchema, IndexParams, Point, iterate_points
from smec_vdb.collection import COMPRESSOR_KEY, FULL, SmecCollection, plan_resolutions
from smec_vdb.layout import Layout, check_engine_support, default_layout
from smec_vdb.search import default_candidates, stage_limits
from smec_vdb.errors import (
    CollectionExistsError,
    ConfigError,
    InvalidVectorError,
    MigrationError,
    VerificationError,
)

if TYPE_CHECKING:  # torch is imported only when a compressor is loaded (keeps `smec-vdb --help` fast)
    from smec_vdb.compress.base import Compressor

CHECKPOINT_KEY = "checkpoint"
COMPLETE_KEY = "migration"
DEFAULT_COMPRESSOR_STORE = "./smec_data/compressors"


class MigrationInterrupted(MigrationError):
    """A stop was requested (Ctrl-C); the run stopped at a batch boundary and can be resumed."""


@dataclass(frozen=True)
class MigrationEvent:
    """Progress of one phase: ``phase`` in sample/train/copy/verify; ``total`` None when unknown."""

    phase: str
    done: int
    total: int | None
    detail: str = ""


ProgressCallback = Callable[[MigrationEvent], None]


@dataclass(frozen=True)
class MigrationOptions:
    """What to migrate and how. ``dims`` (explicit schedule) or ``dim`` (schedule picked from the width)."""

    source: str
    target: str | None = None
    dim: int | None = None
    dims: tuple[int, ...] | None = None
    vector: str | None = None
    compressor: str | None = None
    keep_full: bool = True
    batch_size: int = 512
    train_sample: int = 20_000
    min_recall: float = 0.95
    swap_alias: str | None = None
    restart: bool = False
    verify_queries: int = 200
    payload_sample: int = 200
    on_bad_vector: Literal["fail", "skip"] = "fail"
    seed: int = 0
    compressor_store: str = DEFAULT_COMPRESSOR_STORE
    index: IndexParams = IndexParams()
    layout: Layout | None = None  # None: smec_vdb.layout.default_layout(target engine, index kind)
    train_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.dim is None) == (self.dims is None) and self.compressor is None:
            raise ConfigError("give exactly one of --dim or --dims (or --compressor to reuse one)")
        if self.dim is not None and self.dims is not None:
            raise ConfigError("--dim and --dims are exclusive: --dims is the explicit schedule")
        if self.dims is not None and (not self.dims or any(d < 1 for d in self.dims)
                                      or any(b >= a for a, b in zip(self.dims, self.dims[1:]))):
            raise ConfigError(f"--dims must be positive and strictly decreasing, found {list(self.dims)}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, found {self.batch_size}")
        if self.train_sample < 2:
            raise ConfigError(f"--train-sample must be >= 2, found {self.train_sample}")
        if not 0.0 <= self.min_recall <= 1.0:
            raise ConfigError(f"--min-recall must be within [0, 1], found {self.min_recall}")
        if self.on_bad_vector not in ("fail", "skip"):
            raise ConfigError(f"--on-bad-vector must be fail or skip, found {self.on_bad_vector!r}")
        if self.target_name == self.source:
            raise ConfigError("the target must differ from the source: the source is never modified")

    @property
    def target_name(self) -> str:
        return self.target or f"{self.source}_smec"

    def plan_id(self, vector: str) -> str:
        """Identifies a run: a checkpoint is only resumed by the same plan."""
        key = {"source": self.source, "target": self.target_name, "vector": vector, "dim": self.dim,
               "dims": self.dims, "compressor": self.compressor, "keep_full": self.keep_full,
               "train_sample": self.train_sample, "seed": self.seed, "train": self.train_options}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SourceInfo:
    """What the source holds: the vector migrated, its width and distance, count, schema."""

    name: str
    vector: str
    width: int
    distance: str
    count: int
    schema: CollectionSchema

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.name, "vector": self.vector, "width": self.width, "distance": self.distance,
                "count": self.count, "vector_names": [r.name for r in self.schema.resolutions],
                "payload_indexes": dict(self.schema.payload_indexes), "id_type": self.schema.id_type}


def inspect_source(backend: Backend, collection: str, vector: str | None) -> SourceInfo:
    """Read the source's schema and pick the vector to migrate (``vector`` or its only one)."""
    schema = backend.schema(collection)
    names = [r.name for r in schema.resolutions]
    if vector is None:
        if len(names) > 1:
            raise ConfigError(f"source {collection!r} has several vectors {names}: choose one with --vector")
        vector = names[0]
    elif vector not in names:
        raise ConfigError(f"source {collection!r} has no vector {vector!r}; it has {names}")
    return SourceInfo(collection, vector, schema.resolution(vector).dim, schema.distance,
                      backend.count(collection), schema)


def choose_schedule(width: int, dim: int) -> tuple[int, ...]:
    """A sequential schedule for ``--dim``: halve from the width while above ``dim``, then ``dim`` (§3.2)."""
    if not 1 <= dim < width:
        raise ConfigError(f"--dim must be within [1, {width - 1}] for a source of width {width}, found {dim}")
    dims = []
    d = width // 2
    while d > dim:
        dims.append(d)
        d //= 2
    dims.append(dim)
    return tuple(dims)


def bad_vector_rows(x: np.ndarray) -> np.ndarray:
    """Indices of rows that are non-finite or all zeros (no direction to compress)."""
    return np.flatnonzero(~np.isfinite(x).all(axis=1) | ~x.any(axis=1))


def _stack(points: Sequence[Point], vector: str, width: int) -> np.ndarray:
    if not points:
        return np.empty((0, width), dtype=np.float32)
    return np.stack([np.asarray(p.vectors[vector], dtype=np.float32) for p in points])


def _sample_vectors(backend: Backend, info: SourceInfo, n: int, seed: int, batch: int,
                    progress: ProgressCallback | None) -> np.ndarray:
    """Reservoir-sample ``n`` finite, non-zero source vectors in one read pass (deterministic by seed)."""
    rng = np.random.default_rng(seed)
    reservoir = np.empty((min(n, info.count), info.width), dtype=np.float32)
    seen = filled = 0
    for points, _ in iterate_points(backend, info.name, batch_size=batch, with_vectors=[info.vector]):
        x = _stack(points, info.vector, info.width)
        x = np.delete(x, bad_vector_rows(x), axis=0)
        for row in x:
            if filled < len(reservoir):
                reservoir[filled] = row
                filled += 1
            else:
                j = rng.integers(0, seen + 1)
                if j < len(reservoir):
                    reservoir[j] = row
            seen += 1
        if progress:
            progress(MigrationEvent("sample", seen, info.count))
    if filled < 2:
        raise MigrationError(f"source {info.name!r} has fewer than 2 usable vectors to train on")
    return reservoir[:filled]


def _train(sample: np.ndarray, dims: Sequence[int], opts: MigrationOptions,
           progress: ProgressCallback | None) -> Compressor:
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    config = TrainConfig(seed=opts.seed, **opts.train_options)

    def on_event(ev: Any) -> None:
        if progress:
            progress(MigrationEvent("train", int(getattr(ev, "epoch", 0)), getattr(ev, "max_epochs", None),
                                    f"stage {getattr(ev, 'stage_dim', '?')}-d"))

    return train(sample, list(dims), method="smec", config=config, progress=on_event)


def _schedule(opts: MigrationOptions, width: int) -> tuple[int, ...] | None:
    if opts.dims is not None:
        return tuple(opts.dims)
    if opts.dim is not None:
        return choose_schedule(width, opts.dim)
    return None


def _stored_dims(opts: MigrationOptions, comp: Compressor) -> list[int]:
    """Compressed resolutions to store: the explicit ``--dims``, else ``--dim``, else all of a reused compressor's."""
    if opts.dims is not None:
        return list(opts.dims)
    if opts.dim is not None:
        return [opts.dim]
    return list(comp.dims)


def _obtain_compressor(backend: Backend, info: SourceInfo, opts: MigrationOptions, recorded_path: str | None,
                       progress: ProgressCallback | None) -> tuple[Compressor, Path, float]:
    """Reuse ``--compressor``, or the one this run recorded with the target, or train one on a source sample."""
    from smec_vdb.compress.artifact import load as load_compressor

    t0 = time.perf_counter()
    if opts.compressor:
        comp = load_compressor(opts.compressor)
        path = Path(opts.compressor)
    elif recorded_path and Path(recorded_path).is_dir():
        path = Path(recorded_path)
        comp = load_compressor(path)
    else:
        dims = _schedule(opts, info.width)
        assert dims is not None
        sample = _sample_vectors(backend, info, opts.train_sample, opts.seed, opts.batch_size, progress)
        comp = _train(sample, dims, opts, progress)
        path = Path(opts.compressor_store) / f"{opts.target_name}-{opts.plan_id(info.vector)}"
        comp.save(path)
    if comp.input_dim != info.width:
        raise ConfigError(
            f"compressor takes {comp.input_dim}-d vectors but source vector {info.vector!r} is {info.width}-d"
        )
    return comp, path.resolve(), time.perf_counter() - t0


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, t0: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0


def _interrupted_creation(backend: Backend, target: str) -> bool:
    """An empty target with neither checkpoint nor completion record whose vectors are named the way
    migrate names them (``full``, ``d<dim>``): a run killed between creating it and checkpointing."""
    if backend.count(target) != 0:
        return False
    return all(r.name == FULL or (r.name[:1] == "d" and r.name[1:].isdigit())
               for r in backend.schema(target).resolutions)


def _prepare_target(backend: Backend, info: SourceInfo, opts: MigrationOptions, plan: str) -> dict | None:
    """Decide how the target stands: returns its checkpoint (resume), or None for a fresh/complete one."""
    target = opts.target_name
    if opts.restart and backend.exists(target):
        backend.drop(target)
    if not backend.exists(target):
        return None
    checkpoint = backend.get_metadata(target, CHECKPOINT_KEY)
    complete = backend.get_metadata(target, COMPLETE_KEY)
    if checkpoint is not None:
        if checkpoint.get("plan") != plan:
            raise MigrationError(
                f"target {target!r} holds a checkpoint from another run (plan {checkpoint.get('plan')}, "
                f"this run {plan}): re-run with the same options, or pass --restart to start over"
            )
        return checkpoint
    if complete is not None:
        if complete.get("plan") != plan:
            raise CollectionExistsError(
                f"target {target!r} exists from another migration (plan {complete.get('plan')}): "
                f"choose another --target or pass --restart"
            )
        return None
    if _interrupted_creation(backend, target):
        backend.drop(target)
        return None
    raise CollectionExistsError(
        f"target {target!r} exists and was not created by this migration: choose another --target, "
        f"or pass --restart to replace it"
    )


def migrate(
    backend: Backend,
    opts: MigrationOptions,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or re-verify) a migration and return its report (see module doc)."""
    started = time.perf_counter()
    timer = _Timer()
    info = inspect_source(backend, opts.source, opts.vector)
    if info.count == 0:
        raise MigrationError(f"source {opts.source!r} is empty: nothing to migrate")
    check_engine_support(backend.target, opts.layout, opts.index.kind)  # before training or writing
    plan = opts.plan_id(info.vector)
    target = opts.target_name
    checkpoint = _prepare_target(backend, info, opts, plan)
    already_complete = checkpoint is None and backend.exists(target)

    if checkpoint is not None:
        recorded = checkpoint.get("compressor_path")
    elif already_complete:
        recorded = (backend.get_metadata(target, COMPRESSOR_KEY) or {}).get("path")
    else:
        recorded = None
    comp, comp_path, train_seconds = _obtain_compressor(backend, info, opts, recorded, progress)
    timer.seconds["train"] = train_seconds
    if already_complete:
        col = SmecCollection(backend, target, comp)
        skipped: list = list((backend.get_metadata(target, COMPLETE_KEY) or {}).get("skipped_ids", []))
        written = col.count()
    else:
        if checkpoint is None:
            col = SmecCollection.create(
                backend, target, comp, dims=_stored_dims(opts, comp), keep_full=opts.keep_full,
                id_type=info.schema.id_type, payload_indexes=info.schema.payload_indexes, index=opts.index,
                compressor_path=comp_path, layout=opts.layout or default_layout(backend.target, opts.index.kind),
            )
            checkpoint = {"plan": plan, "cursor": None, "written": 0, "skipped_ids": [],
                          "compressor_path": str(comp_path), "compressor_hash": comp.manifest_hash}
            backend.set_metadata(target, CHECKPOINT_KEY, checkpoint)
        else:
            col = SmecCollection(backend, target, comp)
        written, skipped = _copy(backend, info, col, opts, checkpoint, timer, progress, should_stop)
    copy_seconds = sum(timer.seconds.get(p, 0.0) for p in ("read", "encode", "write"))

    t0 = time.perf_counter()
    verification = verify(backend, info, col, opts, skipped, progress, should_stop)
    timer.add("verify", t0)
    report = {
        "source": info.as_dict(),
        "target": {"collection": target, "resolutions": {r.name: r.dim for r in col.resolutions},
                   "backend": backend.target},
        "compressor": {"path": str(comp_path), "hash": comp.manifest_hash, "method": comp.method,
                       "dims": list(comp.dims), "trained_now": not opts.compressor and train_seconds > 0},
        "plan": plan,
        "points_written": written,
        "skipped_ids": skipped,
        "bytes_per_point": {"before": 4 * info.width, "after": 4 * sum(r.dim for r in col.resolutions)},
        "seconds": {**{k: round(v, 3) for k, v in timer.seconds.items()},
                    "total": round(time.perf_counter() - started, 3)},
        "throughput_points_per_s": round(written / copy_seconds, 1) if copy_seconds > 0 else None,
        "verification": verification,
        "resumed": bool(checkpoint and checkpoint.get("written")),
        "already_complete": already_complete,
        "alias": None,
    }
    backend.set_metadata(target, COMPLETE_KEY, {"plan": plan, "skipped_ids": skipped,
                                                "verification": verification})
    backend.set_metadata(target, CHECKPOINT_KEY, None)
    if not verification["passed"]:
        raise VerificationError(verification["summary"], report=report)
    if opts.swap_alias:
        backend.create_alias(opts.swap_alias, target)
        report["alias"] = {"name": opts.swap_alias, "collection": target}
    return report


def _copy(backend: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions, checkpoint: dict,
          timer: _Timer, progress: ProgressCallback | None, should_stop: Callable[[], bool] | None
          ) -> tuple[int, list]:
    """Stream source → encode → upsert, checkpointing the cursor after each batch."""
    written, skipped = int(checkpoint["written"]), list(checkpoint["skipped_ids"])
    cursor = checkpoint["cursor"]
    if checkpoint.get("copied"):  # killed after the last batch: only verification is left
        return written, skipped
    if progress:
        progress(MigrationEvent("copy", written + len(skipped), info.count))
    while True:
        if should_stop and should_stop():
            raise MigrationInterrupted(
                f"interrupted after {written + len(skipped)} of {info.count} points; "
                f"run the same command again to resume"
            )
        t0 = time.perf_counter()
        points, next_cursor = backend.scroll(info.name, cursor=cursor, limit=opts.batch_size,
                                             with_vectors=[info.vector])
        timer.add("read", t0)
        if points:
            x = _stack(points, info.vector, info.width)
            bad = bad_vector_rows(x)
            if len(bad) and opts.on_bad_vector == "fail":
                raise InvalidVectorError(
                    f"source point {points[bad[0]].id!r} has a NaN/inf or all-zero vector "
                    f"({len(bad)} in this batch); pass --on-bad-vector skip to leave such points out"
                )
            keep = np.setdiff1d(np.arange(len(points)), bad)
            skipped.extend(points[i].id for i in bad)
            if len(keep):
                t0 = time.perf_counter()
                vectors = col.encode(x[keep])
                timer.add("encode", t0)
                t0 = time.perf_counter()
                backend.upsert(col.name, Batch(ids=[points[i].id for i in keep], vectors=vectors,
                                               payloads=[points[i].payload for i in keep]))
                timer.add("write", t0)
                written += len(keep)
            checkpoint = {**checkpoint, "cursor": next_cursor, "written": written, "skipped_ids": skipped,
                          "copied": next_cursor is None}
            backend.set_metadata(col.name, CHECKPOINT_KEY, checkpoint)
            if progress:
                progress(MigrationEvent("copy", written + len(skipped), info.count))
        if next_cursor is None:
            if not checkpoint.get("copied"):  # the last page came back empty: mark the copy done
                checkpoint = {**checkpoint, "cursor": None, "copied": True}
                backend.set_metadata(col.name, CHECKPOINT_KEY, checkpoint)
            return written, skipped
        cursor = next_cursor


def _all_ids(backend: Backend, collection: str, batch: int) -> list:
    ids: list = []
    for points, _ in iterate_points(backend, collection, batch_size=batch, with_vectors=False):
        ids.extend(p.id for p in points)
    return ids


def verify(backend: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions,
           skipped: Sequence, progress: ProgressCallback | None = None,
           should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Counts, id sets, payloads on a sample, and recall@10 of coarse-to-fine vs full-dim source search."""
    rng = np.random.default_rng(opts.seed)
    batch = max(opts.batch_size, 1000)
    source_ids = _all_ids(backend, info.name, batch)
    target_ids = _all_ids(backend, col.name, batch)
    expected = set(source_ids) - set(skipped)
    target_set = set(target_ids)
    missing, extra = expected - target_set, target_set - expected
    dup = len(target_ids) - len(target_set)
    count_ok = col.count() == len(expected) and dup == 0
    ids_ok = not missing and not extra

    pool = sorted(expected, key=lambda i: (str(type(i)), i))
    sample = [pool[i] for i in rng.choice(len(pool), size=min(opts.payload_sample, len(pool)), replace=False)]
    src = {p.id: p for p in backend.retrieve(info.name, sample, with_vectors=False)}
    dst = {p.id: p for p in backend.retrieve(col.name, sample, with_vectors=False)}
    payload_mismatch = [i for i in sample if i not in dst or dst[i].payload != src[i].payload]

    n_queries = min(opts.verify_queries, len(pool))
    queries = [pool[i] for i in rng.choice(len(pool), size=n_queries, replace=False)]
    recalls = []
    for done, point in enumerate(backend.retrieve(info.name, queries, with_vectors=[info.vector]), 1):
        if should_stop and should_stop():
            raise MigrationInterrupted(
                "interrupted during verification (the copy is complete); run the same command again to resume"
            )
        v = np.asarray(point.vectors[info.vector], dtype=np.float32)
        exact = [h.id for h in backend.search(info.name, info.vector, v, 11, with_payload=False)
                 if h.id != point.id and h.id in expected][:10]
        got = [h.id for h in col.search(v, k=11, with_payload=False) if h.id != point.id][:10]
        if exact:
            recalls.append(len(set(exact) & set(got)) / len(exact))
        if progress:
            progress(MigrationEvent("verify", done, n_queries))
    recall = float(np.mean(recalls)) if recalls else 1.0
    recall_ok = recall >= opts.min_recall
    problems = []
    if not count_ok:
        problems.append(f"count {col.count()} (with {dup} duplicates) != expected {len(expected)}")
    if not ids_ok:
        problems.append(f"{len(missing)} ids missing, {len(extra)} unexpected")
    if payload_mismatch:
        problems.append(f"{len(payload_mismatch)} of {len(sample)} sampled payloads differ")
    if not recall_ok:
        problems.append(f"recall@10 {recall:.4f} < --min-recall {opts.min_recall}")
    return {
        "passed": not problems,
        "summary": "verification passed" if not problems else "verification failed: " + "; ".join(problems),
        "count_source": len(source_ids),
        "count_target": col.count(),
        "ids_missing": len(missing),
        "ids_unexpected": len(extra),
        "duplicates": dup,
        "payloads_checked": len(sample),
        "payloads_mismatched": len(payload_mismatch),
        "recall_at_10": round(recall, 4),
        "recall_queries": len(recalls),
        "min_recall": opts.min_recall,
        "reference": f"full-dim search on the source ({info.distance})",
    }


DRY_RUN_QUERIES = 100


def _simulated_recall(comp: Compressor, pool: np.ndarray, resolutions: Sequence, n_queries: int,
                      seed: int, k: int = 10) -> float:
    """Recall@k of coarse-to-fine vs exact full-dim cosine, both computed in memory over ``pool``."""
    rng = np.random.default_rng(seed)
    q_idx = rng.choice(len(pool), size=min(n_queries, len(pool)), replace=False)
    full = comp.encode(pool, comp.input_dim)
    encoded = {r.name: comp.encode(pool, r.dim) for r in resolutions}
    coarse_to_fine = sorted(resolutions, key=lambda r: r.dim)
    limits = stage_limits(len(coarse_to_fine), k + 1, default_candidates(k + 1, comp.input_dim, coarse_to_fine[0].dim))
    recalls = []
    for qi in q_idx:
        exact = [i for i in np.argsort(-(full @ full[qi]), kind="stable")[: k + 1] if i != qi][:k]
        cand = np.arange(len(pool))
        for r, lim in zip(coarse_to_fine, limits):
            scores = encoded[r.name][cand] @ encoded[r.name][qi]
            cand = cand[np.argsort(-scores, kind="stable")[:lim]]
        got = [i for i in cand if i != qi][:k]
        recalls.append(len(set(exact) & set(got)) / max(1, len(exact)))
    return float(np.mean(recalls))


def dry_run(backend: Backend, opts: MigrationOptions, *, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Plan a migration without writing anything: source stats, schema, bytes per point, estimated recall.

    A compressor is trained in memory on the sample (or ``--compressor`` loaded); recall@10 is
    estimated over that sample only, so it is optimistic for a much larger source.
    """
    from smec_vdb.compress.artifact import load as load_compressor

    info = inspect_source(backend, opts.source, opts.vector)
    if info.count == 0:
        raise MigrationError(f"source {opts.source!r} is empty: nothing to migrate")
    sample = _sample_vectors(backend, info, opts.train_sample, opts.seed, opts.batch_size, progress)
    if opts.compressor:
        comp = load_compressor(opts.compressor)
        if comp.input_dim != info.width:
            raise ConfigError(f"compressor takes {comp.input_dim}-d vectors, source vector is {info.width}-d")
    else:
        schedule = _schedule(opts, info.width)
        assert schedule is not None
        comp = _train(sample, schedule, opts, progress)
    resolutions = plan_resolutions(comp, _stored_dims(opts, comp), opts.keep_full)
    return {
        "dry_run": True,
        "source": info.as_dict(),
        "target": {"collection": opts.target_name, "exists": backend.exists(opts.target_name),
                   "resolutions": {r.name: r.dim for r in resolutions}, "distance": "cosine"},
        "schedule": list(comp.dims),
        "bytes_per_point": {"before": 4 * info.width, "after": 4 * sum(r.dim for r in resolutions)},
        "estimated_recall_at_10": round(_simulated_recall(comp, sample, resolutions, DRY_RUN_QUERIES, opts.seed), 4),
        "estimate_pool": len(sample),
    }
