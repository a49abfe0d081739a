"""Scale-out migration on Ray Data (issue 14): the copy split into disjoint source ranges, copied by
worker processes in parallel, each range checkpointed with the target.

Everything else is the single-process run (:func:`smec_vdb.migrate.run.migrate`): the plan and the
refusals, training SMEC on a sample on the driver (paper §3.2-3.4), creating the target, re-sync,
recall@10 and the alias swap. :class:`RayCopy` replaces its copy phase:

1. one read pass over the source ids cuts it into ranges of whole batches, each a scroll cursor and
   a point count (any engine can page by its cursor), stored in the target's checkpoint;
2. a Ray Data pipeline over the unfinished ranges: ``map_batches`` with :class:`RangeCopier`, an
   actor per worker that opens both engines and loads the compressor from the store once, then
   reads → encodes → upserts its range page by page (:func:`smec_vdb.migrate.copy.copy` with a
   ``size``), checkpointing the range's cursor under its own metadata key after every page;
3. once every range is copied, their counts fold into the one checkpoint and the range keys go;
4. :class:`RayVerify` runs verification's per-point comparison (:func:`smec_vdb.migrate.verify.diff`)
   over the same ranges on the workers; the pass over the target's ids and recall@10 stay on the driver.

A range's pages are written in order by one actor (its cursor checkpoint is only valid so), ranges
in parallel. Upserts are by id, so a page written twice by a restarted worker or a re-run driver
overwrites itself: a killed worker (Ray restarts it and retries its range) or a killed driver (run
the same command again) resumes only the unfinished ranges, from their last checkpoint.

Embedded engines allow one writer process: :func:`migrate_distributed` refuses them
(:class:`~smec_vdb.errors.SingleWriterError`) before anything is read, trained or written.

Example::

    source = Connection.resolve("milvus", url="http://milvus:19530")   # token from MILVUS_TOKEN, here
    report = migrate_distributed(source, MigrationOptions(source="docs", dim=256), workers=8,
                                 ray_address="auto")
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np

from smec_vdb.backend import Backend, Point, iterate_points
from smec_vdb.collection import COMPRESSOR_KEY, SmecCollection
from smec_vdb import engines
from smec_vdb.connection import Connection
from smec_vdb.errors import BackendError, ConfigError, MigrationError, MissingDependencyError, SingleWriterError, SmecError
from smec_vdb.migrate.copy import copy
from smec_vdb.migrate.options import (
    CHECKPOINT_KEY, MigrationEvent, MigrationInterrupted, MigrationOptions, ProgressCallback, StopCheck,
)
from smec_vdb.migrate.plan import SourceInfo, Timer
from smec_vdb.migrate.run import migrate
from smec_vdb.migrate.verify import Drift, diff, verify

#: metadata key of range ``i``'s checkpoint: ``checkpoint-range-<i>``
RANGE_KEY_PREFIX = "checkpoint-range-"
#: ranges per worker: a killed worker loses at most one range's page, and uneven ranges balance out
RANGES_PER_WORKER = 4
INSTALL_HINT = "pip install 'smec-vdb[ray]'"


def range_key(index: int) -> str:
    return f"{RANGE_KEY_PREFIX}{index}"


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise MissingDependencyError(f"a distributed migration needs Ray Data, which is not installed: {INSTALL_HINT}") from e
    return ray


def check_distributable(connection: Connection, role: str) -> None:
    """SingleWriterError unless ``connection`` is a server that several worker processes can open."""
    target = connection.target
    if engines.target(target).embedded:
        servers = ", ".join(engines.target_names(embedded=False))
        raise SingleWriterError(
            f"the {role} is {target}, an embedded engine that allows one writer process, so several workers "
            f"cannot open it: run without workers, or migrate from/to a server ({servers})"
        )


@dataclass(frozen=True)
class SourceRange:
    """Points ``[start, start + size)`` of the source in scroll order: ``start`` a scroll cursor
    (None: the beginning), ``size`` None for the last range (to the end, so points appended since
    planning are copied too)."""

    start: Any
    size: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "size": self.size}


def plan_ranges(source: Backend, info: SourceInfo, n_ranges: int, batch: int) -> list[SourceRange]:
    """Cut the source into about ``n_ranges`` ranges of whole batches, reading ids only (one pass)."""
    size = batch * max(1, math.ceil(info.count / max(1, n_ranges) / batch))
    starts: list[Any] = [None]
    seen = 0
    for points, cursor in iterate_points(source, info.name, batch_size=batch, with_vectors=False):
        seen += len(points)
        if cursor is not None and seen % size == 0:
            starts.append(cursor)
    return [SourceRange(s, size if i < len(starts) - 1 else None) for i, s in enumerate(starts)]


def range_pages(source: Backend, info: SourceInfo, start: Any, size: int | None, batch: int) -> Iterator[list[Point]]:
    """The source points of one range, ``batch`` at a time (everything a verification compares)."""
    cursor, read = start, 0
    while size is None or read < size:
        points, cursor = source.scroll(info.name, cursor=cursor, limit=batch if size is None else min(batch, size - read),
                                       with_vectors=info.read_vectors)
        read += len(points)
        if points:
            yield points
        if cursor is None:
            return


class RangeWorker:
    """A Ray Data worker (``map_batches`` callable class): opens both engines and loads the compressor
    from the store once, with ``threads`` torch threads; :meth:`run` handles one range."""

    def __init__(self, source: Connection, target: Connection, info: SourceInfo, opts: MigrationOptions,
                 collection: str, compressor_path: str, plan: str, threads: int) -> None:
        import torch

        from smec_vdb.compress.artifact import load

        torch.set_num_threads(threads)
        self.source, self.target = source.open(), target.open()
        self.info, self.opts, self.plan = info, opts, plan
        self.col = SmecCollection(self.target, collection, load(compressor_path))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = [self.run(int(i), json.loads(start), None if int(size) < 0 else int(size))
                for i, start, size in zip(batch["index"], batch["start"], batch["size"])]
        return {name: [row[name] for row in rows] for name in rows[0]}

    def run(self, index: int, start: Any, size: int | None) -> dict[str, Any]:
        raise NotImplementedError


class RangeCopier(RangeWorker):
    """Copies a range (:func:`smec_vdb.migrate.copy.copy` with ``size``), resuming from its checkpoint."""

    def run(self, index: int, start: Any, size: int | None) -> dict[str, Any]:
        key = range_key(index)
        checkpoint = self.target.get_metadata(self.col.name, key) or {
            "plan": self.plan, "cursor": start, "written": 0, "skipped_ids": []}
        timer = Timer()
        written, _ = copy(self.source, self.target, self.info, self.col, self.opts, checkpoint, timer, None, None,
                          key=key, size=size)
        return {"index": index, "written": written, **{f"{p}_s": timer.seconds.get(p, 0.0) for p in PHASES}}


class RangeVerifier(RangeWorker):
    """Compares a range of the source with the target (:func:`smec_vdb.migrate.verify.diff`), JSON-encoded."""

    def run(self, index: int, start: Any, size: int | None) -> dict[str, Any]:
        pages = range_pages(self.source, self.info, start, size, max(self.opts.batch_size, 256))
        drift = diff(self.source, self.target, self.info, self.col, max(self.opts.batch_size, 256),
                     source_pages=pages, target_pass=False)
        return {"index": index, "drift": json.dumps(asdict(drift))}


PHASES = ("read", "encode", "write")


def _smec_cause(error: BaseException) -> SmecError | None:
    """The smec-vdb error a worker raised, from the Ray exceptions wrapped around it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, SmecError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__
    return None


@dataclass
class RangeStep:
    """What the copy and the verification share: the engines' connections and the worker pool."""

    source: Connection
    target: Connection
    workers: int
    threads: int = 1
    ranges_per_worker: int = RANGES_PER_WORKER

    def map_ranges(self, worker: type[RangeWorker], ranges: list[dict], pending: list[int], info: SourceInfo,
                   opts: MigrationOptions, collection: str, compressor_path: str, plan: str) -> Iterator[dict]:
        """Rows of ``worker`` over the ``pending`` ranges, as they finish, from a pool of ``workers`` actors."""
        ray = _ray()
        items = [{"index": i, "start": json.dumps(ranges[i]["start"]),
                  "size": -1 if ranges[i]["size"] is None else ranges[i]["size"]} for i in pending]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            worker, batch_size=1, num_cpus=self.threads,
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(items))),
            fn_constructor_kwargs={"source": self.source, "target": self.target, "info": info, "opts": opts,
                                   "collection": collection, "compressor_path": compressor_path, "plan": plan,
                                   "threads": self.threads},
        )  # Ray Data's actor pools restart a killed worker (max_restarts=-1) and retry its range
        try:
            yield from dataset.iter_rows()
        except SmecError:
            raise
        except Exception as e:  # Ray wraps a worker's error in its own exception types
            cause = _smec_cause(e)
            if cause is not None:
                raise cause from e
            raise BackendError(f"the Ray Data {worker.__name__} pool failed: {type(e).__name__}: {e}; run the same "
                               "command again to resume the unfinished ranges", retriable=True) from e


@dataclass
class RayCopy(RangeStep):
    """The copy phase of :func:`~smec_vdb.migrate.run.migrate` as a Ray Data pipeline (module doc)."""

    #: per-worker seconds of the last run, by phase (summed over ranges): the cost model's inputs
    worker_seconds: dict[str, float] = field(default_factory=dict)

    def __call__(self, source: Backend, target: Backend, info: SourceInfo, col: SmecCollection,
                 opts: MigrationOptions, checkpoint: dict, timer: Timer, progress: ProgressCallback | None,
                 should_stop: StopCheck | None) -> tuple[int, list]:
        t0 = time.perf_counter()
        name = col.name
        if not checkpoint.get("copied"):
            if checkpoint.get("ranges") is None:
                ranges = plan_ranges(source, info, self.workers * self.ranges_per_worker, opts.batch_size)
                checkpoint = {**checkpoint, "ranges": [r.as_dict() for r in ranges]}
                target.set_metadata(name, CHECKPOINT_KEY, checkpoint)
                timer.add("ranges", t0)
            self._run(target, info, col, opts, checkpoint, progress, should_stop)
            checkpoint = self._fold(target, name, checkpoint)
        for i in range(len(checkpoint["ranges"])):  # also after a driver killed between fold and cleanup
            target.set_metadata(name, range_key(i), None)
        timer.add("copy", t0)
        return int(checkpoint["written"]), list(checkpoint["skipped_ids"])

    def _run(self, target: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions,
             checkpoint: dict, progress: ProgressCallback | None, should_stop: StopCheck | None) -> None:
        ranges = checkpoint["ranges"]
        states = [target.get_metadata(col.name, range_key(i)) or {} for i in range(len(ranges))]
        pending = [i for i, state in enumerate(states) if not state.get("copied")]
        done = sum(int(s.get("written", 0)) + len(s.get("skipped_ids", [])) for s in states if s.get("copied"))
        if progress:
            progress(MigrationEvent("copy", done, info.count, f"{len(pending)} of {len(ranges)} ranges left"))
        if not pending:
            return
        self.worker_seconds = {}
        for row in self.map_ranges(RangeCopier, ranges, pending, info, opts, col.name, checkpoint["compressor_path"],
                                   checkpoint["plan"]):
            for phase in PHASES:
                self.worker_seconds[phase] = self.worker_seconds.get(phase, 0.0) + float(row[f"{phase}_s"])
            done += int(row["written"])
            if progress:
                progress(MigrationEvent("copy", done, info.count, f"range {int(row['index'])} copied"))
            if should_stop and should_stop():
                raise MigrationInterrupted(f"interrupted after about {done} of {info.count} points; "
                                           "run the same command again to resume the unfinished ranges")

    @staticmethod
    def _fold(target: Backend, name: str, checkpoint: dict) -> dict:
        """Every range's counts into the one checkpoint, marked copied (then the range keys can go)."""
        written, skipped = 0, []
        for i in range(len(checkpoint["ranges"])):
            state = target.get_metadata(name, range_key(i)) or {}
            if not state.get("copied"):
                raise MigrationError(f"range {i} of the copy is unfinished after the Ray Data run; "
                                     "run the same command again to resume it")
            written += int(state["written"])
            skipped.extend(state["skipped_ids"])
        checkpoint = {**checkpoint, "cursor": None, "written": written, "skipped_ids": skipped, "copied": True}
        target.set_metadata(name, CHECKPOINT_KEY, checkpoint)
        return checkpoint


@dataclass
class RayVerify(RangeStep):
    """:func:`~smec_vdb.migrate.verify.verify` with the per-point comparison run over the source's ranges
    by the workers (the copy's ranges, else cut anew); the pass over the target's ids and recall@10
    run on the driver."""

    opts: MigrationOptions | None = None  # the run's options, for the workers

    def __call__(self, source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, *, batch: int,
                 progress: ProgressCallback | None = None, should_stop: StopCheck | None = None,
                 **options: Any) -> dict[str, Any]:
        checkpoint = target.get_metadata(col.name, CHECKPOINT_KEY) or {}
        ranges = checkpoint.get("ranges") or [
            r.as_dict() for r in plan_ranges(source, info, self.workers * self.ranges_per_worker, batch)]
        compressor_path = (target.get_metadata(col.name, COMPRESSOR_KEY) or {}).get("path") or checkpoint["compressor_path"]
        parts: dict[int, Drift] = {}
        done = 0
        assert self.opts is not None, "RayVerify needs the run's options"
        for row in self.map_ranges(RangeVerifier, ranges, list(range(len(ranges))), info, self.opts, col.name,
                                   compressor_path, checkpoint.get("plan", "")):
            parts[int(row["index"])] = Drift(**json.loads(row["drift"]))
            done += parts[int(row["index"])].checked + len(parts[int(row["index"])].skipped)
            if progress:
                progress(MigrationEvent("verify", done, info.count, f"range {int(row['index'])} compared"))
            if should_stop and should_stop():
                raise MigrationInterrupted("interrupted during verification; run the same command again to resume")
        drift = Drift()
        for i in sorted(parts):  # in range order, so the first ids listed are the single-process run's
            drift.merge(parts[i])
        drift.merge(diff(source, target, info, col, batch, source_pages=(), target_pass=True))
        return verify(source, target, info, col, batch=batch, progress=progress, should_stop=should_stop,
                      drift=drift, **options)


def connect_ray(address: str | None, workers: int) -> bool:
    """Join the Ray cluster at ``address`` ("auto", "ray://host:10001"), or start a local one with a CPU
    slot per worker; True when this call started or joined it (and should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return True


def migrate_distributed(source: Connection, opts: MigrationOptions, *, target: Connection | None = None,
                        workers: int | None = None, ray_address: str | None = None, threads: int = 1,
                        progress: ProgressCallback | None = None, should_stop: StopCheck | None = None
                        ) -> dict[str, Any]:
    """:func:`~smec_vdb.migrate.run.migrate` with its copy run by ``workers`` Ray Data workers (module doc).

    ``workers``: actors copying in parallel (default: the cluster's CPUs / ``threads``); ``ray_address``:
    the cluster to join (None starts a local one); ``threads``: torch threads and CPUs per worker.
    Both ends must be servers (SingleWriterError otherwise, before anything is read or written).
    """
    check_distributable(source, "source")
    check_distributable(target or source, "target")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, found {workers}")
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, found {threads}")
    started = connect_ray(ray_address, workers or 1)
    ray = _ray()
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        step = RayCopy(source, target or source, workers, threads)
        check = RayVerify(source, target or source, workers, threads, opts=opts)
        with ExitStack() as stack:
            opened = [source.open(), *([target.open()] if target is not None else [])]
            for backend in opened:
                stack.callback(backend.close)
            report = migrate(opened[0], opts, target_backend=opened[-1], progress=progress,
                             should_stop=should_stop, copy_step=step, verify_step=check)
        report["distributed"] = {"workers": workers, "threads_per_worker": threads,
                                 "worker_seconds": {k: round(v, 3) for k, v in step.worker_seconds.items()}}
        return report
    finally:
        if started:
            ray.shutdown()

