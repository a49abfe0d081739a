"""Plan a migration before anything is trained or written: read the source's layout, survey every
point once, decide the target's schema, and refuse what cannot be kept faithfully.

What is kept (issues 10, 21): the source's ids (integers, strings, or both on Qdrant), every payload
key as is, every other dense vector (with its distance, datatype and multivector config) and every
sparse vector unchanged; a point without the migrated vector (a hybrid collection's sparse-only
point) is carried without compressed vectors where the target can hold it. The migrated vector is
compressed by SMEC, which ranks by direction (cosine, paper §3): a cosine source is compressed as is;
a dot or euclid source only when every vector has unit length (then both rank exactly as cosine);
Manhattan never, nor a multivector. Each refusal is an :class:`UnsupportedSourceError`,
:class:`ConfigError`, :class:`InvalidVectorError` or :class:`DataError` raised here, before anything
is trained or written, naming the vector, id or setting and the option that changes it: a carried
vector the target cannot hold (``leave_out``), a NaN/zero vector (``on_bad_vector``), a payload
beyond the target's limits or JSON (``on_bad_payload``; :meth:`Backend.payload_limits`).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import (
    Backend,
    Batch,
    CollectionSchema,
    Column,
    PayloadLimits,
    Point,
    PointId,
    PrimaryKey,
    Resolution,
    iterate_points,
)
from smec_vdb.collection import FULL, plan_resolutions
from smec_vdb.engines import capabilities
from smec_vdb.errors import (
    ConfigError,
    DataError,
    InvalidVectorError,
    MigrationError,
    UnsupportedSourceError,
)
from smec_vdb.migrate.columns import MAX_VARCHAR, column_holds, columns_from_payloads, indexes_from_columns
from smec_vdb.migrate.mapping import Mapped, as_report, schema_mapping
from smec_vdb.migrate.options import MigrationEvent, MigrationOptions, ProgressCallback, StopCheck
from smec_vdb.migrate.probe import Fidelity, probe_engine
from smec_vdb.migrate.recall import QueryPicker, QuerySample

if TYPE_CHECKING:  # torch is imported only when a compressor is loaded (keeps `smec-vdb --help` fast)
    from smec_vdb.compress.base import Compressor

#: a vector counts as unit length when | ‖v‖ − 1 | is below this
UNIT_NORM_TOL = 1e-3
#: the key field of a typed-column target made from a schemaless source, and the dynamic field's name
ID_FIELD, DYNAMIC_FIELD = "id", "$meta"


@dataclass(frozen=True)
class SourceInfo:
    """The source: the vector migrated, its width and distance, count, schema, what else is carried.

    The plan (:func:`make_plan`) adds what copy and verification must honour about the target:
    ``partial`` (it keeps points lacking some vectors: a point without the migrated vector is carried
    without compressed vectors), ``payload_limits`` (with ``on_bad_payload`` skip: points whose payload
    exceeds them are left out) and ``fidelity`` (the engine's own rounding, :mod:`smec_vdb.migrate.probe`).
    """

    name: str
    vector: str
    width: int
    distance: str
    count: int
    schema: CollectionSchema
    #: dense and sparse vectors of the source not copied (``leave_out``)
    left_out: tuple[str, ...] = ()
    partial: bool = False
    payload_limits: PayloadLimits | None = None
    fidelity: Any = None

    @property
    def carried(self) -> tuple[Resolution, ...]:
        """The source's other dense vectors, each with its own distance and storage, copied unchanged."""
        return tuple(replace(r, distance=self.schema.distance_of(r.name))
                     for r in self.schema.resolutions if r.name != self.vector and r.name not in self.left_out)

    @property
    def sparse(self) -> tuple[str, ...]:
        """The source's sparse vectors copied unchanged."""
        return tuple(name for name in self.schema.sparse if name not in self.left_out)

    @property
    def read_vectors(self) -> list[str]:
        return [self.vector, *(r.name for r in self.carried), *self.sparse]

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.name, "vector": self.vector or "(unnamed)", "width": self.width,
                "distance": self.distance, "count": self.count,
                "vector_names": [r.name or "(unnamed)" for r in self.schema.resolutions],
                "sparse_vectors": list(self.schema.sparse), "payload_indexes": dict(self.schema.payload_indexes),
                "id_type": self.schema.id_type, "left_out": list(self.left_out)}


def inspect_source(backend: Backend, collection: str, vector: str | None, leave_out: Sequence[str] = ()) -> SourceInfo:
    """Read the source's schema and pick the vector to migrate (``vector`` or its only dense one that is
    not left out); ``leave_out`` names vectors not to copy."""
    schema = backend.schema(collection)
    names = [r.name for r in schema.resolutions]
    unknown = sorted(set(leave_out) - set(names) - set(schema.sparse))
    if unknown:
        raise ConfigError(f"leave_out names {unknown}, which source {collection!r} does not have; its vectors are "
                          f"{names + list(schema.sparse)}")
    if vector is None:
        candidates = [n for n in names if n not in leave_out]
        if len(candidates) != 1:
            raise ConfigError(f"source {collection!r} has several dense vectors {names}: choose one with vector")
        vector = candidates[0]
    elif vector not in names:
        raise ConfigError(f"source {collection!r} has no dense vector {vector!r}; it has {names}")
    if vector in leave_out:
        raise ConfigError(f"vector {vector!r} is the one migrated: it cannot also be in leave_out")
    label = vector or "(unnamed)"
    chosen = schema.resolution(vector)
    if chosen.multivector:
        raise UnsupportedSourceError(
            f"source vector {label!r} of {collection!r} is a multivector (several vectors per point, max-sim): SMEC "
            "compresses one vector per point (paper §3); migrate a single dense vector with vector (the multivector "
            "is then carried as it is where the target can hold it, or left out with leave_out)"
        )
    if chosen.datatype not in ("float32", "float16", "uint8"):
        raise UnsupportedSourceError(f"source vector {label!r} of {collection!r} is {chosen.datatype}: smec-vdb "
                                     "compresses float vectors; migrate another vector with vector")
    distance = schema.distance_of(vector)
    if distance == "manhattan":
        raise UnsupportedSourceError(
            f"source vector {label!r} of {collection!r} uses Manhattan distance: SMEC compresses "
            "directions (cosine, paper §3), which cannot keep L1 rankings; migrate a cosine/dot/euclid vector instead"
        )
    return SourceInfo(collection, vector, chosen.dim, distance, backend.count(collection), schema,
                      left_out=tuple(leave_out))


def bad_vector_rows(x: np.ndarray) -> np.ndarray:
    """Indices of rows that are non-finite or all zeros (no direction to compress)."""
    return np.flatnonzero(~np.isfinite(x).all(axis=1) | ~x.any(axis=1))


def stack(points: Sequence[Point], vector: str, width: int) -> np.ndarray:
    """The points' ``vector`` as rows; a point without it gets a row of zeros (see :func:`without_vector`)."""
    if not points:
        return np.empty((0, width), dtype=np.float32)
    zeros = np.zeros(width, dtype=np.float32)
    return np.stack([np.asarray(p.vectors.get(vector, zeros), dtype=np.float32) for p in points])


def without_vector(points: Sequence[Point], vector: str) -> np.ndarray:
    """Indices of the points that have no ``vector`` at all (e.g. a hybrid collection's sparse-only points)."""
    return np.flatnonzero([vector not in p.vectors for p in points])


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


FIRST_IDS = 5
#: payload floats of the source kept for the engine probe (:mod:`smec_vdb.migrate.probe`)
PROBE_FLOATS = 256


@dataclass
class Tally:
    """Points of one kind the survey found: how many, the first ids, and what the first one has."""

    count: int = 0
    first: list[PointId] = field(default_factory=list)
    detail: str = ""

    def note(self, point_id: PointId, detail: str = "") -> None:
        if not self.count:
            self.detail = detail
        self.count += 1
        if len(self.first) < FIRST_IDS:
            self.first.append(point_id)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first_ids": list(self.first), **({"first": self.detail} if self.detail else {})}


@dataclass
class KeyStats:
    """What one top-level payload key holds across the source: its JSON types, on how many points, the
    range of its integers and the longest string (what a typed column for it would need)."""

    types: set[str] = field(default_factory=set)
    count: int = 0
    int_range: tuple[int, int] | None = None
    max_bytes: int = 0
    #: the first point holding each JSON type
    first: dict[str, PointId] = field(default_factory=dict)

    def note(self, value: Any, point_id: PointId) -> None:
        self.count += 1
        kind = json_type(value)
        self.types.add(kind)
        self.first.setdefault(kind, point_id)
        if kind == "int":
            lo, hi = self.int_range or (value, value)
            self.int_range = (min(lo, value), max(hi, value))
        elif kind == "str":
            self.max_bytes = max(self.max_bytes, len(value.encode()))


def json_type(value: Any) -> str:
    """``null``, ``bool``, ``int``, ``float``, ``str``, ``array`` or ``object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "object" if isinstance(value, Mapping) else "array"


@dataclass
class Survey:
    """What one read pass over the source found: a training sample and the facts the plan needs."""

    sample: np.ndarray
    id_kinds: set[str] = field(default_factory=set)  # "int", "uuid", "str"
    non_unit: tuple[Any, float] | None = None  # first (id, norm) of a usable vector not of unit length
    missing_vector: tuple[Any, str] | None = None  # first (id, vector) lacking a carried dense vector
    #: points without the migrated vector (sparse-only points of a hybrid collection)
    without_vector: Tally = field(default_factory=Tally)
    #: points whose migrated vector is NaN/inf or all zeros
    bad_vectors: Tally = field(default_factory=Tally)
    #: points whose payload the target cannot store (its :meth:`Backend.payload_limits`, or not JSON)
    bad_payloads: Tally = field(default_factory=Tally)
    #: top-level payload key -> what it holds (for typed columns on a Milvus target)
    keys: dict[str, KeyStats] = field(default_factory=dict)
    #: payload floats seen, for the engine probe
    floats: list[float] = field(default_factory=list)
    #: the points a target is likeliest to refuse (largest integer id, first payload with a ``_smec*`` key,
    #: first point lacking a vector), checked against the target before anything is trained or written
    probe: dict[str, Point] = field(default_factory=dict)
    #: usable migrated vectors seen (the sample's population)
    seen: int = 0
    #: verification's held-out recall queries, picked in the same pass
    queries: QuerySample | None = None
    #: every point read
    points: int = 0

    def note_point(self, p: Point, limits: PayloadLimits) -> None:
        """Everything the survey learns from one point but its migrated vector."""
        self.points += 1
        self.id_kinds.add("int" if isinstance(p.id, int) else "uuid" if _is_uuid(p.id) else "str")
        if isinstance(p.id, int) and p.id > getattr(self.probe.get("largest id"), "id", -1):
            self.probe["largest id"] = p
        if "reserved key" not in self.probe and any(k.startswith("_smec") for k in p.payload):
            self.probe["reserved key"] = p
        problem = limits.problem(p.payload)
        if problem is not None:
            self.bad_payloads.note(p.id, problem)
        for key, value in p.payload.items():
            self.keys.setdefault(key, KeyStats()).note(value, p.id)
            if isinstance(value, float) and len(self.floats) < PROBE_FLOATS:
                self.floats.append(value)



def probe_batch(points: Sequence[Point], schema: CollectionSchema, info: SourceInfo) -> Batch:
    """``points`` as the target would get them: their payloads, vectors of ones, none where a point lacks one."""
    points = list({id(p): p for p in points}.values())
    carried = {r.name for r in info.carried}

    def lacks(p: Point, name: str) -> bool:
        return (name if name in carried else info.vector) not in p.vectors

    absent = {r.name: [lacks(p, r.name) for p in points] for r in schema.resolutions}
    return Batch(ids=[p.id for p in points],
                 vectors={r.name: [np.ones((1, r.dim), dtype=np.float32)] * len(points) if r.multivector
                          else np.ones((len(points), r.dim), dtype=np.float32) for r in schema.resolutions},
                 payloads=[p.payload for p in points], absent={k: v for k, v in absent.items() if any(v)})


def survey(backend: Backend, info: SourceInfo, n: int, seed: int, batch: int, progress: ProgressCallback | None,
           limits: PayloadLimits, n_queries: int = 0) -> Survey:
    """Reservoir-sample ``n`` usable source vectors (deterministic by seed), pick ``n_queries`` recall
    queries among them, and note id kinds, norms, points lacking a vector, bad vectors, payloads beyond
    ``limits`` and what each payload key holds, in one read pass."""
    rng = np.random.default_rng(seed)
    picker = QueryPicker(n_queries, seed)
    reservoir = np.empty((min(n, info.count), info.width), dtype=np.float32)
    found = Survey(sample=reservoir)
    filled = 0
    carried = [r.name for r in info.carried]
    for points, _ in iterate_points(backend, info.name, batch_size=batch, with_vectors=[info.vector, *carried]):
        for p in points:
            found.note_point(p, limits)
            if found.missing_vector is None:
                lacking = next((c for c in carried if c not in p.vectors), None)
                if lacking is not None:
                    found.missing_vector = (p.id, lacking)
                    found.probe.setdefault("without vector", p)
        x = stack(points, info.vector, info.width)
        lacking_rows = without_vector(points, info.vector)
        for i in lacking_rows:
            found.without_vector.note(points[i].id)
            found.probe.setdefault("without vector", points[i])
        bad = np.setdiff1d(bad_vector_rows(x), lacking_rows)
        for i in bad:
            found.bad_vectors.note(points[i].id)
        keep = np.setdiff1d(np.arange(len(points)), np.union1d(bad, lacking_rows))
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
    if found.missing_vector is not None and not info.partial:
        point_id, name = found.missing_vector
        raise UnsupportedSourceError(
            f"source point {point_id!r} has no {name!r} vector, and the target stores every vector on every point: "
            "choose that vector with vector, leave it out with leave_out, or fill it in the source"
        )
    clash = sorted({r.name for r in info.carried} & set(target_names))
    if clash:
        raise UnsupportedSourceError(
            f"source vector(s) {clash} would collide with the target's resolutions {list(target_names)}: "
            "rename them in the source, or migrate that vector with vector"
        )


def refuse_bad_points(info: SourceInfo, found: Survey, opts: MigrationOptions, target: str) -> None:
    """Refuse the points the target would not get, unless ``opts`` say to leave them out (skip)."""
    label = info.vector or "(unnamed)"
    if opts.on_bad_vector == "fail":
        if found.without_vector.count and not info.partial:
            t = found.without_vector
            raise InvalidVectorError(
                f"{t.count} source point(s) have no {label!r} vector (first ids {t.first}), and {target} stores "
                "every vector on every point; set on_bad_vector to skip to leave such points out")
        if found.bad_vectors.count:
            t = found.bad_vectors
            raise InvalidVectorError(
                f"source point {t.first[0]!r} has a NaN/inf or all-zero vector ({t.count} points, first ids {t.first}); "
                "set on_bad_vector to skip to leave such points out")
    if found.bad_payloads.count and opts.on_bad_payload == "fail":
        t = found.bad_payloads
        raise DataError(
            f"{t.count} source point(s) have a payload {target} cannot store (first ids {t.first}; {t.first[0]!r}: "
            f"{t.detail}); set on_bad_payload to skip to leave such points out")


def check_holdable(target: Backend, info: SourceInfo) -> None:
    """Refuse each carried vector the target cannot hold (a datatype, a multivector, a name), naming it and
    the option that leaves it out."""
    for r in info.carried:
        try:
            target.check_schema(CollectionSchema((r,), distance=r.distance or "cosine"))
        except ConfigError as e:
            raise UnsupportedSourceError(
                f"the target cannot hold the source's vector {r.describe()} ({e}); set leave_out to {r.name!r} to "
                "migrate without it") from e


def holds_partial_points(target: Backend, schema: CollectionSchema, info: SourceInfo, found: Survey) -> bool:
    """Whether ``target`` keeps a point that lacks some vector (Qdrant does, Milvus stores every vector field
    on every row), asked with the first such point the survey found (its payload left out)."""
    lacking = found.probe.get("without vector")
    if lacking is None:
        return False
    stand_in = Point(0 if schema.id_type != "str" else "0", lacking.vectors, {})
    try:
        target.check_points(schema, probe_batch([stand_in], schema, info))
    except DataError:
        return False
    return True


def refuse_unfit_columns(found: Survey, columns: Sequence[Column]) -> None:
    """DataError for the first source payload whose value a typed column of the existing target cannot hold
    (a key that changed type since the target was laid out)."""
    for c in columns:
        stats = found.keys.get(c.name)
        for kind in sorted(stats.types if stats is not None else ()):
            if not column_holds(c, kind):
                raise DataError(
                    f"source point {stats.first[kind]!r} holds {'a ' + kind if kind != 'null' else 'null'} in key "  # type: ignore[union-attr]
                    f"{c.name!r} (first ids [{stats.first[kind]!r}]), which the target's {c.type} column {c.name!r} "  # type: ignore[union-attr]
                    "cannot hold: migrate with restart to lay the payload out anew")


def holds_column(target: Backend, schema: CollectionSchema, probe: Column) -> bool:
    """Whether ``target`` can hold a typed column like ``probe`` (nullable: Milvus >= 2.5; an INVERTED index:
    >= 2.4), asked with one."""
    try:
        target.check_schema(replace(schema, primary=schema.primary or PrimaryKey(), columns=(*schema.columns, probe)))
    except ConfigError:
        return False
    return True


def target_schema(info: SourceInfo, found: Survey, resolutions: Sequence[Resolution], opts: MigrationOptions
                  ) -> CollectionSchema:
    """The target's schema: the new resolutions (cosine), the carried vectors, the source's id kind."""
    check_faithful(info, found, [r.name for r in resolutions])
    return schema_with_ids(info, resolutions, opts, target_id_type(info, found))


def payload_layout(schema: CollectionSchema, found: Survey, *, typed: bool, nullable: bool, from_typed: bool,
                   inverted: bool = True) -> tuple[CollectionSchema, dict[str, str]]:
    """``schema`` with the payload laid out as the target engine holds it (:mod:`smec_vdb.migrate.columns`),
    and why each payload key that is no column stays in the dynamic field.

    ``typed``: the target has typed columns (Milvus): a source's own layout is kept as it is (its columns,
    or, from smec-vdb's own Milvus collections, ``from_typed`` without a key, one JSON payload field); a
    schemaless source's keys every point agrees on become columns (``nullable``: the target has nullable
    columns). A schemaless target gets no columns: indexed columns become payload indexes."""
    if not typed:
        indexes = {**indexes_from_columns(schema.columns), **schema.payload_indexes}
        return replace(schema, columns=(), primary=None, payload_indexes=indexes), {}
    if schema.primary is not None:  # an auto_id key's ids are written as the source has them
        return replace(schema, primary=replace(schema.primary, auto_id=False)), {}
    if from_typed:
        return schema, {}
    fields = {ID_FIELD, DYNAMIC_FIELD, *(r.name for r in schema.resolutions), *schema.sparse}
    taken = sorted(set(found.keys) & fields)
    if taken:  # a key named like a field cannot be a column nor a dynamic key: one JSON payload field holds all
        return schema, {key: "named like a field of the collection" for key in taken}
    columns, dynamic = columns_from_payloads(found.keys, found.points, reserved=fields, indexed=schema.payload_indexes,
                                             nullable=nullable, inverted=inverted)
    primary = PrimaryKey(ID_FIELD, max_length=MAX_VARCHAR if schema.id_type == "str" else None)
    return replace(schema, columns=columns, primary=primary, dynamic_field=True), dynamic


def schema_with_ids(info: SourceInfo, resolutions: Sequence[Resolution], opts: MigrationOptions, id_type: str
                    ) -> CollectionSchema:
    """The target's schema with ids of ``id_type``: the source's settings (payload indexes, sharding,
    partitions), the new resolutions and the carried vectors."""
    return replace(
        info.schema, resolutions=tuple(resolutions) + info.carried, distance="cosine",
        id_type=id_type,  # type: ignore[arg-type]
        index=opts.index, sparse=info.sparse, layout=None,
    )


def choose_schedule(width: int, dim: int) -> tuple[int, ...]:
    """The sequential schedule ``migrate --dim`` trains (§3.2: each stage trained, then frozen): stages of
    about 8× each at powers of two (the one nearest width / 8), the last one ``dim`` — 3584 → 512 → 128,
    768 → 128 → 64, 384 → 64. A stage's cost grows with its input × output width and every stage runs
    a full training, so a few steep stages train in minutes what halving (3584 → 1792 → … → 128) took
    hours for, at the same nDCG@10 (``benchmarks/quality.py --sections schedule``)."""
    if not 1 <= dim < width:
        raise ConfigError(f"dim must be within [1, {width - 1}] for a source of width {width}, found {dim}")
    dims: list[int] = []
    d = width
    while (step := 2.0 ** round(math.log2(d / 8))) > dim:
        d = int(step)
        dims.append(d)
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
                     progress: ProgressCallback | None, should_stop: StopCheck | None = None) -> Compressor:
    if len(sample) < 2:
        raise MigrationError(f"source {opts.source!r} has fewer than 2 usable vectors to train on")
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    config = TrainConfig(seed=opts.seed, **opts.train_options)

    def on_event(ev: Any) -> None:
        if progress:
            progress(MigrationEvent("train", int(getattr(ev, "epoch", 0)), getattr(ev, "max_epochs", None),
                                    f"stage {getattr(ev, 'stage_dim', '?')}-d"))

    return train(sample, list(dims), method="smec", config=config, progress=on_event, should_stop=should_stop)


@dataclass
class Plan:
    """A migration planned and checked against its target: nothing trained or written yet."""

    info: SourceInfo
    found: Survey
    schema: CollectionSchema
    resolutions: tuple[Resolution, ...]
    reused: tuple[Compressor, Path] | None
    #: how each part of the source is held by the target (:mod:`smec_vdb.migrate.mapping`)
    mapping: list[Mapped] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """What the plan found, for the migration report: the mapping, the points left out or carried
        without vectors, and the engine's own rounding."""
        fidelity = self.info.fidelity
        return {"schema_mapping": as_report(self.mapping),
                "points_without_vector": self.found.without_vector.as_dict(),
                "bad_vectors": self.found.bad_vectors.as_dict(), "bad_payloads": self.found.bad_payloads.as_dict(),
                "engine_fidelity": None if fidelity is None else fidelity.as_dict()}


def make_plan(source: Backend, target: Backend, info: SourceInfo, opts: MigrationOptions, recorded_path: str | None,
              progress: ProgressCallback | None, fidelity: Fidelity | None = None, *, probe: bool = True,
              existing: CollectionSchema | None = None) -> Plan:
    """Survey the source and refuse, before training or writing, whatever the target could not keep.

    The target engine's own rounding is probed (:mod:`smec_vdb.migrate.probe`, a scratch collection made
    and dropped) unless ``fidelity`` is given (a ``check`` run reads the one its migration recorded) or
    ``probe`` is False (a dry run writes nothing at all). ``existing``: the target's schema when it exists
    (a resumed or re-synced run), whose typed columns every source payload must still fit."""
    reused = reused_compressor(opts, recorded_path)
    resolutions = planned_resolutions(opts, info, reused[0] if reused else None)
    # what the target can hold (vector fields, their names and storage, a server's version) is known before
    # the source is read: refuse it before sampling; the id kind, known after the survey, is checked below
    check_holdable(target, info)
    provisional = schema_with_ids(info, resolutions, opts, "int")
    target.check_schema(provisional)
    found = survey(source, info, opts.train_sample, opts.seed, opts.batch_size, progress,
                   target.payload_limits(provisional), opts.verify_queries)
    info = replace(info, partial=holds_partial_points(target, provisional, info, found))
    refuse_bad_points(info, found, opts, target.target)
    if found.bad_payloads.count:  # left out (skip): copy and verification skip the same points
        info = replace(info, payload_limits=target.payload_limits(provisional))
    schema = target_schema(info, found, resolutions, opts)
    typed = capabilities(target.target).columns and schema.id_type != "any"
    dynamic: dict[str, str] = {}
    if existing is not None and existing.primary is not None:  # laid out by the run that made it
        schema = replace(schema, columns=existing.columns, primary=existing.primary, dynamic_field=existing.dynamic_field)
        refuse_unfit_columns(found, existing.columns)
    else:
        schema, dynamic = payload_layout(
            schema, found, typed=typed, from_typed=capabilities(source.target).columns,
            nullable=typed and holds_column(target, schema, Column("nullable_probe", "int64", nullable=True)),
            inverted=typed and holds_column(target, schema, Column("index_probe", "int64", index="INVERTED")))
    target.check_schema(schema)
    kept = [p for why, p in found.probe.items() if why != "without vector" or info.partial]  # else left out
    target.check_points(schema, probe_batch(kept, schema, info))
    if fidelity is None and probe:
        cosine = [r.dim for r in schema.resolutions if schema.distance_of(r.name) == "cosine" and r.plain]
        fidelity = probe_engine(target, opts.target_name, found.floats, max(cosine, default=info.width))
    info = replace(info, fidelity=fidelity)
    return Plan(info, found, schema, resolutions, reused, schema_mapping(info, found, schema, resolutions, target, dynamic))


def obtain_compressor(plan: Plan, opts: MigrationOptions, progress: ProgressCallback | None,
                      should_stop: StopCheck | None = None) -> Compressor:
    """The reused compressor, or one trained on the survey's sample; refused if it does not fit the source
    or encodes degenerately."""
    info = plan.info
    if plan.reused is not None:
        comp = plan.reused[0]
    else:
        comp = train_compressor(plan.found.sample, schedule(opts, info.width) or (), opts, progress, should_stop)
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

