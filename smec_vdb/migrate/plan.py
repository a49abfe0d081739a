"""Plan a migration before anything is trained or written: read the source's layout, survey every
point once, decide the target's schema, and refuse what cannot be kept faithfully.

What is kept (issue 10): the source's ids (integers, strings, or both on Qdrant), every payload
key as is, every other dense vector (with its distance) and every sparse vector unchanged. The
migrated vector is compressed by SMEC, which ranks by direction (cosine, paper §3): a cosine source
is compressed as is; a dot or euclid source only when every vector has unit length (then both
rank exactly as cosine); Manhattan never. Each refusal is an :class:`UnsupportedSourceError` or
:class:`ConfigError` raised here, naming the vector, id or setting and what to change.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from smec_vdb.backend import Backend, Batch, CollectionSchema, Point, Resolution, iterate_points
from smec_vdb.collection import FULL, plan_resolutions
from smec_vdb.errors import ConfigError, MigrationError, UnsupportedSourceError
from smec_vdb.migrate.options import MigrationEvent, MigrationOptions, ProgressCallback
from smec_vdb.migrate.recall import QueryPicker, QuerySample

if TYPE_CHECKING:  # torch is imported only when a compressor is loaded (keeps `smec-vdb --help` fast)
    from smec_vdb.compress.base import Compressor

#: a vector counts as unit length when | ‖v‖ − 1 | is below this
UNIT_NORM_TOL = 1e-3


@dataclass(frozen=True)
class SourceInfo:
    """The source: the vector migrated, its width and distance, count, schema, what else is carried."""

    name: str
    vector: str
    width: int
    distance: str
    count: int
    schema: CollectionSchema

    @property
    def carried(self) -> tuple[Resolution, ...]:
        """The source's other dense vectors, each with its own distance, copied unchanged."""
        return tuple(Resolution(r.name, r.dim, self.schema.distance_of(r.name))
                     for r in self.schema.resolutions if r.name != self.vector)

    @property
    def read_vectors(self) -> list[str]:
        return [self.vector, *(r.name for r in self.carried), *self.schema.sparse]

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.name, "vector": self.vector or "(unnamed)", "width": self.width,
                "distance": self.distance, "count": self.count,
                "vector_names": [r.name or "(unnamed)" for r in self.schema.resolutions],
                "sparse_vectors": list(self.schema.sparse), "payload_indexes": dict(self.schema.payload_indexes),
                "id_type": self.schema.id_type}


def inspect_source(backend: Backend, collection: str, vector: str | None) -> SourceInfo:
    """Read the source's schema and pick the vector to migrate (``vector`` or its only dense one)."""
    schema = backend.schema(collection)
    names = [r.name for r in schema.resolutions]
    if vector is None:
        if len(names) > 1:
            raise ConfigError(f"source {collection!r} has several dense vectors {names}: choose one with vector")
        vector = names[0]
    elif vector not in names:
        raise ConfigError(f"source {collection!r} has no dense vector {vector!r}; it has {names}")
    distance = schema.distance_of(vector)
    if distance == "manhattan":
        raise UnsupportedSourceError(
            f"source vector {vector or '(unnamed)'!r} of {collection!r} uses Manhattan distance: SMEC compresses "
            "directions (cosine, paper §3), which cannot keep L1 rankings; migrate a cosine/dot/euclid vector instead"
        )
    return SourceInfo(collection, vector, schema.resolution(vector).dim, distance, backend.count(collection), schema)


def bad_vector_rows(x: np.ndarray) -> np.ndarray:
    """Indices of rows that are non-finite or all zeros (no direction to compress)."""
    return np.flatnonzero(~np.isfinite(x).all(axis=1) | ~x.any(axis=1))


def stack(points: Sequence[Point], vector: str, width: int) -> np.ndarray:
    if not points:
        return np.empty((0, width), dtype=np.float32)
    return np.stack([np.asarray(p.vectors[vector], dtype=np.float32) for p in points])


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@dataclass
class Survey:
    """What one read pass over the source found: a training sample and the facts the plan needs."""

    sample: np.ndarray
    id_kinds: set[str] = field(default_factory=set)  # "int", "uuid", "str"
    non_unit: tuple[Any, float] | None = None  # first (id, norm) of a usable vector not of unit length
    missing_vector: tuple[Any, str] | None = None  # first (id, vector) lacking a carried dense vector
    #: the points a target is likeliest to refuse (largest integer id, first payload with a ``_smec*`` key),
    #: checked against the target before anything is trained or written
    probe: dict[str, Point] = field(default_factory=dict)
    seen: int = 0
    #: verification's held-out recall queries, picked in the same pass
    queries: QuerySample | None = None

    def note_probe(self, p: Point) -> None:
        if isinstance(p.id, int) and p.id > getattr(self.probe.get("largest id"), "id", -1):
            self.probe["largest id"] = p
        if "reserved key" not in self.probe and any(k.startswith("_smec") for k in p.payload):
            self.probe["reserved key"] = p

    def probe_batch(self, schema: CollectionSchema) -> Batch:
        points = list({id(p): p for p in self.probe.values()}.values())
        return Batch(ids=[p.id for p in points],
                     vectors={r.name: np.ones((len(points), r.dim), dtype=np.float32) for r in schema.resolutions},
                     payloads=[p.payload for p in points])


def survey(backend: Backend, info: SourceInfo, n: int, seed: int, batch: int,
           progress: ProgressCallback | None, n_queries: int = 0) -> Survey:
    """Reservoir-sample ``n`` usable source vectors (deterministic by seed), pick ``n_queries`` recall
    queries, and note id kinds, norms and points lacking a carried vector, in one read pass."""
    rng = np.random.default_rng(seed)
    picker = QueryPicker(n_queries, seed)
    reservoir = np.empty((min(n, info.count), info.width), dtype=np.float32)
    found = Survey(sample=reservoir)
    filled = 0
    carried = [r.name for r in info.carried]
    for points, _ in iterate_points(backend, info.name, batch_size=batch, with_vectors=[info.vector, *carried]):
        for p in points:
            found.id_kinds.add("int" if isinstance(p.id, int) else "uuid" if _is_uuid(p.id) else "str")
            found.note_probe(p)
            if found.missing_vector is None:
                lacking = next((c for c in carried if c not in p.vectors), None)
                if lacking is not None:
                    found.missing_vector = (p.id, lacking)
        x = stack(points, info.vector, info.width)
        bad = bad_vector_rows(x)
        keep = np.setdiff1d(np.arange(len(points)), bad)
        picker.offer([points[i].id for i in keep], x[keep])
        if found.non_unit is None and len(keep):
            norms = np.linalg.norm(x[keep], axis=1)
            off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOL)
            if len(off):
                found.non_unit = (points[keep[off[0]]].id, float(norms[off[0]]))
        for row in x[keep]:
            if filled < len(reservoir):
                reservoir[filled] = row
                filled += 1
            else:
                j = rng.integers(0, found.seen + 1)
                if j < len(reservoir):
                    reservoir[j] = row
            found.seen += 1
        if progress:
            progress(MigrationEvent("survey", found.seen, info.count))
    found.sample = reservoir[:filled]
    found.queries = picker.sample(info.width)
    return found


def target_id_type(info: SourceInfo, found: Survey) -> str:
    kinds = found.id_kinds
    if kinds <= {"int"}:
        return "int"
    if "int" not in kinds:
        return "str"
    return "any"


def check_faithful(info: SourceInfo, found: Survey, target_names: Sequence[str]) -> None:
    """Refuse, before training or writing, what the target could not keep as the source has it."""
    label = info.vector or "(unnamed)"
    if info.distance in ("dot", "euclid") and found.non_unit is not None:
        point_id, norm = found.non_unit
        raise UnsupportedSourceError(
            f"source vector {label!r} uses {info.distance} distance and point {point_id!r} has norm {norm:.4g}: "
            "SMEC compresses directions (cosine, paper §3), which ranks as dot/euclid only for unit-length "
            "vectors; normalise the source vectors, or migrate a cosine vector"
        )
    if found.missing_vector is not None:
        point_id, name = found.missing_vector
        raise UnsupportedSourceError(
            f"source point {point_id!r} has no {name!r} vector: every carried dense vector must be present on every "
            "point; choose that vector with vector, or fill it in the source"
        )
    clash = sorted({r.name for r in info.carried} & set(target_names))
    if clash:
        raise UnsupportedSourceError(
            f"source vector(s) {clash} would collide with the target's resolutions {list(target_names)}: "
            "rename them in the source, or migrate that vector with vector"
        )


def target_schema(info: SourceInfo, found: Survey, resolutions: Sequence[Resolution], opts: MigrationOptions
                  ) -> CollectionSchema:
    """The target's schema: the new resolutions (cosine), the carried vectors, the source's id kind."""
    check_faithful(info, found, [r.name for r in resolutions])
    return schema_with_ids(info, resolutions, opts, target_id_type(info, found))


def schema_with_ids(info: SourceInfo, resolutions: Sequence[Resolution], opts: MigrationOptions, id_type: str
                    ) -> CollectionSchema:
    return CollectionSchema(
        resolutions=tuple(resolutions) + info.carried, distance="cosine", id_type=id_type,  # type: ignore[arg-type]
        payload_indexes=dict(info.schema.payload_indexes), index=opts.index, sparse=info.schema.sparse,
    )


def choose_schedule(width: int, dim: int) -> tuple[int, ...]:
    """A sequential schedule for ``dim``: halve from the width while above ``dim``, then ``dim`` (§3.2)."""
    if not 1 <= dim < width:
        raise ConfigError(f"dim must be within [1, {width - 1}] for a source of width {width}, found {dim}")
    dims = []
    d = width // 2
    while d > dim:
        dims.append(d)
        d //= 2
    dims.append(dim)
    return tuple(dims)


def schedule(opts: MigrationOptions, width: int) -> tuple[int, ...] | None:
    if opts.dims is not None:
        return tuple(opts.dims)
    if opts.dim is not None:
        return choose_schedule(width, opts.dim)
    return None


def stored_dims(opts: MigrationOptions, dims: Sequence[int]) -> list[int]:
    """Compressed resolutions to store: the explicit ``dims``, else ``dim``, else all of a reused compressor's."""
    if opts.dims is not None:
        return list(opts.dims)
    if opts.dim is not None:
        return [opts.dim]
    return list(dims)


def planned_resolutions(opts: MigrationOptions, info: SourceInfo, reused: Compressor | None) -> tuple[Resolution, ...]:
    """The target's resolutions, known before training: from the schedule, or the reused compressor."""
    if reused is not None:
        return plan_resolutions(reused, stored_dims(opts, reused.dims), opts.keep_full)
    dims = stored_dims(opts, schedule(opts, info.width) or ())
    widths = sorted({*dims, *([info.width] if opts.keep_full else [])}, reverse=True)
    if not widths:
        raise ConfigError("nothing to store: no compressed dims and keep_full is False")
    return tuple(Resolution(FULL if w == info.width else f"d{w}", w) for w in widths)


def check_compressor_output(comp: Compressor, probe: np.ndarray, dims: Sequence[int]) -> None:
    """Refuse a degenerate compressor at load: non-finite, all-zero or identical encodings of distinct inputs."""
    probe = probe[: min(len(probe), 256)]
    if not len(probe):
        return
    for d in dims:
        z = comp.encode(probe, d)
        if not np.isfinite(z).all():
            raise MigrationError(f"compressor encodes to NaN/inf at {d}-d: it is corrupt; retrain it or pass another")
        if not np.abs(z).sum(axis=1).all():
            raise MigrationError(f"compressor encodes some vectors to all zeros at {d}-d: retrain it or pass another")
        if len(z) > 1 and np.allclose(z, z[0], atol=1e-6):
            raise MigrationError(f"compressor encodes every vector alike at {d}-d (constant rows): retrain it or pass another")


def reused_compressor(opts: MigrationOptions, recorded_path: str | None) -> tuple[Compressor, Path] | None:
    """The compressor given in ``compressor``, or the one this run recorded with its target, if any."""
    from smec_vdb.compress.artifact import load as load_compressor

    if opts.compressor:
        return load_compressor(opts.compressor), Path(opts.compressor)
    if recorded_path and Path(recorded_path).is_dir():
        return load_compressor(recorded_path), Path(recorded_path)
    return None


def train_compressor(sample: np.ndarray, dims: Sequence[int], opts: MigrationOptions,
                     progress: ProgressCallback | None) -> Compressor:
    if len(sample) < 2:
        raise MigrationError(f"source {opts.source!r} has fewer than 2 usable vectors to train on")
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    config = TrainConfig(seed=opts.seed, **opts.train_options)

    def on_event(ev: Any) -> None:
        if progress:
            progress(MigrationEvent("train", int(getattr(ev, "epoch", 0)), getattr(ev, "max_epochs", None),
                                    f"stage {getattr(ev, 'stage_dim', '?')}-d"))

    return train(sample, list(dims), method="smec", config=config, progress=on_event)


@dataclass
class Plan:
    """A migration planned and checked against its target: nothing trained or written yet."""

    info: SourceInfo
    found: Survey
    schema: CollectionSchema
    resolutions: tuple[Resolution, ...]
    reused: tuple[Compressor, Path] | None


def make_plan(source: Backend, target: Backend, info: SourceInfo, opts: MigrationOptions, recorded_path: str | None,
              progress: ProgressCallback | None) -> Plan:
    """Survey the source and refuse, before training or writing, whatever the target could not keep."""
    reused = reused_compressor(opts, recorded_path)
    resolutions = planned_resolutions(opts, info, reused[0] if reused else None)
    # what the target can hold (vector fields, their names, a server's version) is known before the
    # source is read: refuse it before sampling; the id kind, known after the survey, is checked below
    target.check_schema(schema_with_ids(info, resolutions, opts, "int"))
    found = survey(source, info, opts.train_sample, opts.seed, opts.batch_size, progress, opts.verify_queries)
    schema = target_schema(info, found, resolutions, opts)
    target.check_schema(schema)
    target.check_points(schema, found.probe_batch(schema))
    return Plan(info, found, schema, resolutions, reused)


def obtain_compressor(plan: Plan, opts: MigrationOptions, progress: ProgressCallback | None) -> Compressor:
    """The reused compressor, or one trained on the survey's sample; refused if it does not fit the source
    or encodes degenerately."""
    info = plan.info
    if plan.reused is not None:
        comp = plan.reused[0]
    else:
        comp = train_compressor(plan.found.sample, schedule(opts, info.width) or (), opts, progress)
    if comp.input_dim != info.width:
        raise ConfigError(f"compressor takes {comp.input_dim}-d vectors but source vector "
                          f"{info.vector or '(unnamed)'!r} is {info.width}-d")
    check_compressor_output(comp, plan.found.sample, [r.dim for r in plan.resolutions if r.dim != info.width])
    return comp


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, t0: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

