"""Scale-out migration on Ray Data (issues 14, 24): the copy and the verification as Ray Data pipelines.

Everything else is the single-process run (:func:`smec_vdb.migrate.run.migrate`): the plan and the
refusals, training SMEC on a sample on the driver (paper §3.2-3.4), creating the target, re-sync,
recall@10's searches and the alias swap. Two steps replace the copy and the comparison, both built
from the parts of :mod:`smec_vdb.migrate.ray`:

- :class:`RayCopy`: the source cut into key ranges by the engine's own id order
  (:func:`smec_vdb.migrate.ranges.split`, no pass over the ids for integer and UUID ids), stored in
  the target's checkpoint; then ``read_datasource(SmecSource)`` over the unfinished ranges (read in
  parallel, each from its checkpoint cursor) → ``map_batches(SmecEncoder)`` (``workers`` actors, the
  compressor through the object store) → ``write_datasink(SmecSink)``, whose tasks report the pages
  they wrote to :class:`~smec_vdb.migrate.ray.progress.RangeProgress`, which checkpoints each range
  under its own key; ``on_write_complete`` folds them, and the copy's counts go to the one checkpoint.
- :class:`RayVerify`: ``read_datasource(RangeChecks)``: each range of source and target compared
  side by side in a task, the differences and the recall queries' exact top-k merged on the driver
  while the driver runs the target's searches.

Upserts are by id, so a page written twice overwrites itself: a killed worker or node (Ray retries
its tasks; a failed run is resumed by the same command) or a killed driver (run the same command
again: only the unfinished ranges, each from its last checkpoint) leaves every point once.
Nothing is read from a path on the workers: engines are reached by their URL and credentials
(:class:`Connection`, resolved on the driver), the compressor comes through the object store.

Embedded engines allow one writer process: :func:`migrate_distributed` refuses them
(:class:`~smec_vdb.errors.SingleWriterError`) before anything is read, trained or written.

Example::

    source = Connection.resolve("milvus", url="http://milvus:19530")   # token from MILVUS_TOKEN, here
    report = migrate_distributed(source, MigrationOptions(source="docs", dim=256), workers=8,
                                 ray_address="auto", runtime_env={"pip": ["smec-vdb[milvus,ray]"]})
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from smec_vdb import engines
from smec_vdb.backend import Backend
from smec_vdb.collection import SmecCollection
from smec_vdb.connection import Connection
from smec_vdb.errors import BackendError, ConfigError, MissingDependencyError, SingleWriterError, SmecError
from smec_vdb.migrate.checkpoint import Progress
from smec_vdb.migrate.options import (
    CHECKPOINT_KEY, MigrationEvent, MigrationInterrupted, MigrationOptions, ProgressCallback, StopCheck,
)
from smec_vdb.migrate.plan import SourceInfo, Timer
from smec_vdb.migrate.ranges import KeyRange, UnorderedError, split
from smec_vdb.migrate.ray.progress import RANGE_KEY_PREFIX, new_range, range_key
from smec_vdb.migrate.recall import QuerySample, Searches, TopK, empty_topk, query_budget, recall
from smec_vdb.migrate.run import migrate
from smec_vdb.migrate.verify import Drift, pick_queries, verdict, verify, wait_for_recall

#: ranges per worker: a range is what a read task reads, so more ranges balance uneven ones
RANGES_PER_WORKER = 4
#: pages a write task takes at least (Ray Data bundles them): each task costs scheduling, so not one per page
PAGES_PER_WRITE = 4
#: a Ray Data run that leaves ranges unfinished (a task's marks lost with a node) is run again this often
ATTEMPTS = 3
INSTALL_HINT = "pip install 'smec-vdb[ray]'"
__all__ = ["RANGE_KEY_PREFIX", "Connection", "RayCopy", "RayVerify", "check_distributable", "connect_ray",
           "migrate_distributed"]
#: what every Ray worker process gets unless the caller's runtime_env says otherwise
DEFAULT_ENV_VARS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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


def _run_ray(what: str, run: Any) -> Any:
    """``run()``, with a smec-vdb error a worker raised unwrapped from Ray's exceptions around it."""
    try:
        return run()
    except SmecError:
        raise
    except Exception as e:  # Ray wraps a worker's error in its own exception types
        cause = _smec_cause(e)
        if cause is not None:
            raise cause from e
        raise BackendError(f"the Ray Data {what} failed: {type(e).__name__}: {e}; run the same command again to "
                           "resume the unfinished ranges", retriable=True) from e


@dataclass
class RayCopy:
    """The copy phase of :func:`~smec_vdb.migrate.run.migrate` as a Ray Data pipeline (module doc)."""

    source: Connection
    target: Connection
    workers: int
    threads: int = 1
    ranges_per_worker: int = RANGES_PER_WORKER
    num_gpus: float | None = None
    #: seconds of the last run: cutting the ranges, the Ray Data pipeline
    seconds: dict[str, float] = field(default_factory=dict)

    def __call__(self, source: Backend, target: Backend, info: SourceInfo, col: SmecCollection,
                 opts: MigrationOptions, checkpoint: dict, timer: Timer, progress: ProgressCallback | None,
                 should_stop: StopCheck | None) -> tuple[int, int]:
        t0 = time.perf_counter()
        state = Progress.from_record(checkpoint)
        name = col.name
        if not state.copied:
            count = state.extra.get("ranges")
            if count is None:  # first run: cut the ranges and store each one's checkpoint, then their count
                cuts = split(source, info.name, self.workers * self.ranges_per_worker, batch=opts.batch_size)
                for i, r in enumerate(cuts):
                    target.set_metadata(name, range_key(i), new_range(r.lo, r.hi))
                count = len(cuts)
                state = replace(state, extra={**state.extra, "ranges": count})
                target.set_metadata(name, CHECKPOINT_KEY, state.as_record())
                self.seconds["ranges"] = time.perf_counter() - t0
            records = {i: target.get_metadata(name, range_key(i)) or {} for i in range(int(count))}
            for _ in range(ATTEMPTS):
                pending = {i: r for i, r in records.items() if not r.get("copied")}
                if not pending or (should_stop and should_stop()):
                    break
                if progress:
                    progress(MigrationEvent("copy", sum(int(r.get("written", 0)) + int(r.get("skipped", 0))
                                                        for r in records.values()), info.count,
                                            f"{len(pending)} of {len(records)} ranges left"))
                records.update(self._run(info, col, opts, pending))
            unfinished = sorted(i for i, r in records.items() if not r.get("copied"))
            if unfinished:
                raise MigrationInterrupted(f"ranges {unfinished[:10]} of the copy are unfinished; run the same "
                                           "command again to resume them")
            state = replace(state, cursor=None, copied=True, written=sum(int(r["written"]) for r in records.values()),
                            skipped=sum(int(r["skipped"]) for r in records.values()))
            target.set_metadata(name, CHECKPOINT_KEY, state.as_record())
        for i in range(int(state.extra.get("ranges") or 0)):  # also after a driver killed between fold and cleanup
            target.set_metadata(name, range_key(i), None)
        timer.add("copy", t0)
        return state.written, state.skipped

    def _run(self, info: SourceInfo, col: SmecCollection, opts: MigrationOptions, pending: dict[int, dict]
             ) -> dict[int, dict]:
        """One Ray Data run over the ``pending`` ranges; their checkpoint records after it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from smec_vdb.migrate.ray import SmecEncoder, SmecSink, SmecSource
        from smec_vdb.migrate.ray.progress import RangeProgress

        ray = _ray()
        t0 = time.perf_counter()
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        keeper = ray.remote(RangeProgress).options(num_cpus=0, scheduling_strategy=here).remote(
            self.target, col.name, pending)
        ranges = {i: KeyRange(r.get("lo"), r.get("hi")) for i, r in pending.items()}
        source = SmecSource(self.source, info, ranges, cursors={i: r.get("cursor") for i, r in pending.items()},
                            batch=opts.batch_size, opts=opts, progress=keeper)
        sink = SmecSink(self.target, col.name, [r.name for r in col.resolutions], info=info,
                        partitioned=bool(col.schema.partitions), progress=keeper,
                        rows_per_write=PAGES_PER_WRITE * opts.batch_size)
        resolutions = {r.name: r.dim for r in col.resolutions}

        def run() -> None:
            ds = ray.data.read_datasource(source, concurrency=self.workers, override_num_blocks=len(ranges))
            ds = ds.map_batches(SmecEncoder, fn_constructor_kwargs={
                "compressor": ray.put(col.compressor), "resolutions": resolutions, "threads": self.threads},
                batch_size=None, batch_format="numpy", concurrency=self.workers, num_cpus=self.threads,
                num_gpus=self.num_gpus)
            ds.write_datasink(sink, concurrency=self.workers)

        try:
            _run_ray("copy", run)
        finally:
            records = sink.ranges or _run_ray("copy's checkpoints", lambda: ray.get(keeper.finish.remote()))
            ray.kill(keeper)
            self.seconds["pipeline"] = self.seconds.get("pipeline", 0.0) + time.perf_counter() - t0
        return records


@dataclass
class RayVerify:
    """:func:`~smec_vdb.migrate.verify.verify` with the per-point comparison of each key range of the source
    and the target run by a Ray Data task (module doc); a target that does not scroll in the source's
    id order is verified in this process."""

    source: Connection
    target: Connection
    workers: int
    ranges_per_worker: int = RANGES_PER_WORKER

    def __call__(self, source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, *, min_recall: float,
                 n_queries: int, seed: int, batch: int, progress: ProgressCallback | None = None,
                 should_stop: StopCheck | None = None, queries: QuerySample | None = None,
                 timer: Timer | None = None) -> dict[str, Any]:
        if queries is None:
            queries = pick_queries(source, info, n_queries, seed, batch)
        budget = query_budget(col, queries)
        searches = Searches(col, queries, budget)
        try:
            drift, exact = self._compare(source, info, col, queries, batch, progress, should_stop)
        except UnorderedError:
            searches.cancel()
            return verify(source, target, info, col, min_recall=min_recall, n_queries=n_queries, seed=seed,
                          batch=batch, progress=progress, should_stop=should_stop, queries=queries, timer=timer)
        except BaseException:
            searches.cancel()
            raise
        recall_at_10, counted = recall(queries, exact, wait_for_recall(searches, progress))
        return verdict(info, drift, recall_at_10, counted, budget, min_recall)

    def _compare(self, source: Backend, info: SourceInfo, col: SmecCollection, queries: QuerySample, batch: int,
                 progress: ProgressCallback | None, should_stop: StopCheck | None) -> tuple[Drift, TopK]:
        from smec_vdb.migrate.ray.checks import RangeChecks

        ray = _ray()
        ranges = dict(enumerate(split(source, info.name, self.workers * self.ranges_per_worker, batch=batch)))
        checks = RangeChecks(self.source, self.target, info, col.name, ranges, ray.put(col.compressor),
                             ray.put(queries), batch)
        parts: dict[int, tuple[Drift, TopK]] = {}

        def rows() -> Iterator[dict]:
            yield from ray.data.read_datasource(checks, concurrency=self.workers,
                                                override_num_blocks=len(ranges)).iter_rows()

        done = 0
        for row in _iterate("verification", rows):
            part = Drift(**json.loads(row["drift"]))
            parts[int(row["range"])] = (part, TopK.from_json(row["topk"], queries.vectors, empty_topk(queries).k))
            done += part.checked + len(part.skipped)
            if progress:
                progress(MigrationEvent("verify", done, info.count, f"range {int(row['range'])} compared"))
            if should_stop and should_stop():
                raise MigrationInterrupted("interrupted during verification; run the same command again to resume")
        drift, exact = Drift(), empty_topk(queries)
        for i in sorted(parts):  # in range order, so the first ids listed are the single-process run's
            drift.merge(parts[i][0])
            exact.merge(parts[i][1])
        return drift, exact


def _iterate(what: str, rows: Any) -> Iterator[Any]:
    """``rows()``'s items, with a worker's smec-vdb error unwrapped (see :func:`_run_ray`)."""
    iterator = _run_ray(what, lambda: iter(rows()))
    while True:
        item = _run_ray(what, lambda: next(iterator, StopIteration))
        if item is StopIteration:
            return
        yield item


def connect_ray(address: str | None, workers: int, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join the Ray cluster at ``address`` ("auto", "ray://host:10001"), or start a local one with room for
    ``workers`` encoders and their read and write tasks; True when this call started or joined it (and
    should shut it down). ``runtime_env``: Ray's, for every worker (e.g. ``{"pip": ["smec-vdb[milvus,ray]"]}``
    on a cluster without the package); its ``env_vars`` are added to :data:`DEFAULT_ENV_VARS`."""
    ray = _ray()
    if ray.is_initialized():
        return False
    env = dict(runtime_env or {})
    env["env_vars"] = {**DEFAULT_ENV_VARS, **env.get("env_vars", {})}
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "runtime_env": env}
    if address is None:
        ray.init(num_cpus=max(3 * workers, os.cpu_count() or 1), include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return True


def migrate_distributed(source: Connection, opts: MigrationOptions, *, target: Connection | None = None,
                        workers: int | None = None, ray_address: str | None = None, threads: int = 1,
                        num_gpus: float | None = None, runtime_env: dict[str, Any] | None = None,
                        progress: ProgressCallback | None = None, should_stop: StopCheck | None = None
                        ) -> dict[str, Any]:
    """:func:`~smec_vdb.migrate.run.migrate` with its copy and its comparison run by Ray Data (module doc).

    ``workers``: encoder actors (and concurrent read and write tasks; default: the cluster's CPUs /
    ``threads`` / 3); ``ray_address``: the cluster to join (None starts a local one); ``threads``:
    torch threads and CPUs per encoder; ``num_gpus``: GPUs per encoder; ``runtime_env``: see
    :func:`connect_ray`. Both ends must be servers (SingleWriterError otherwise, before anything is
    read or written).
    """
    check_distributable(source, "source")
    check_distributable(target or source, "target")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, found {workers}")
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, found {threads}")
    started = connect_ray(ray_address, workers or 1, runtime_env)
    ray = _ray()
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // (3 * threads))
        step = RayCopy(source, target or source, workers, threads, num_gpus=num_gpus)
        check = RayVerify(source, target or source, workers)
        with ExitStack() as stack:
            opened = [source.open(), *([target.open()] if target is not None else [])]
            for backend in opened:
                stack.callback(backend.close)
            report = migrate(opened[0], opts, target_backend=opened[-1], progress=progress,
                             should_stop=should_stop, copy_step=step, verify_step=check)
        report["distributed"] = {"workers": workers, "threads_per_worker": threads,
                                 "seconds": {k: round(v, 3) for k, v in step.seconds.items()}}
        return report
    finally:
        if started:
            ray.shutdown()
