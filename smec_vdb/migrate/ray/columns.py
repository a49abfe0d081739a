"""The columns of the Ray Data blocks that carry points between the source, the encoder and the sink.

A block is a batch of rows, one per point (``numpy`` batch format: a dict of arrays):

- ``id``: int64, or strings; with ``_id_int`` (bool) when a collection mixes integer and UUID ids;
- ``vector``: the vector to compress, (n, width) float32; ``smec:<name>`` the resolutions the
  encoder adds (``full``, ``d128``…), after which ``vector`` is dropped;
- a migration's blocks: ``_point``, each source point pickled, its migrated vector left empty (its id,
  payload, partition, carried dense — multivectors too — and sparse vectors, whatever the layout), so
  that the sink writes it with :func:`smec_vdb.migrate.points.target_batch` as the single-process copy
  does; ``_usable``: False where :func:`~smec_vdb.migrate.points.skipped_rows` leaves the point out (kept
  as a row so that a page is never empty, written by nobody, counted as skipped); ``_encode``: the
  usable rows that have the migrated vector (a hybrid collection's sparse-only points have none);
- an ingestion job's blocks (:func:`~smec_vdb.migrate.ray.write.write_smec`): ``payload``, the payload as
  JSON text, or any other columns named in the sink's ``payload_columns``; ``carried:<name>``: another
  dense vector kept as it is; ``sparse``: the sparse vectors as JSON text;
- a source page's place, for the copy's checkpoints: ``_range``, ``_seq`` (page number in the range),
  ``_row`` (row in the page), ``_page_rows``, ``_cursor`` (JSON: the source cursor after the page).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Batch, Point, PointId, SparseVector
from smec_vdb.migrate.points import target_batch

if TYPE_CHECKING:
    from smec_vdb.migrate.plan import SourceInfo

ID, VECTOR, PAYLOAD, SPARSE, USABLE, ID_INT = "id", "vector", "payload", "sparse", "_usable", "_id_int"
POINT, ENCODE = "_point", "_encode"
RANGE, SEQ, ROW, PAGE_ROWS, CURSOR = "_range", "_seq", "_row", "_page_rows", "_cursor"
ENCODED_PREFIX, CARRIED_PREFIX = "smec:", "carried:"


def encoded(name: str) -> str:
    return ENCODED_PREFIX + name


def carried(name: str) -> str:
    return CARRIED_PREFIX + name


def id_columns(ids: Sequence[PointId]) -> dict[str, np.ndarray]:
    if all(isinstance(i, int) for i in ids):
        return {ID: np.asarray(ids, dtype=np.int64)}
    if all(isinstance(i, str) for i in ids):
        return {ID: np.asarray(ids, dtype=object)}
    return {ID: np.asarray([str(i) for i in ids], dtype=object), ID_INT: np.asarray([isinstance(i, int) for i in ids])}


def ids_of(batch: Mapping[str, np.ndarray]) -> list[PointId]:
    ids = batch[ID].tolist()
    if ID_INT in batch:
        return [int(i) if is_int else i for i, is_int in zip(ids, batch[ID_INT].tolist())]
    return ids


def page_columns(points: Sequence[Point], x: np.ndarray, usable: np.ndarray, vector: str) -> dict[str, np.ndarray]:
    """A source page as a migration's columns (``x``: the migrated ``vector`` of each point, zero rows where absent)."""
    has = np.asarray([vector in p.vectors for p in points], dtype=bool)
    placeholder = np.empty(0, dtype=np.float32)  # the vector itself travels in ``vector``; its presence counts
    rest = [replace(p, vectors={n: (placeholder if n == vector else v) for n, v in p.vectors.items()}) for p in points]
    return {
        **id_columns([p.id for p in points]),
        VECTOR: np.where((usable & has)[:, None], x, 0.0).astype(np.float32),
        POINT: np.asarray([pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL) for p in rest], dtype=object),
        USABLE: usable,
        ENCODE: usable & has,
    }


def migrated_batch(batch: Mapping[str, np.ndarray], names: Sequence[str], info: SourceInfo, partitioned: bool
                   ) -> Batch | None:
    """The usable rows of an encoded migration block as the target stores them (None: no usable row)."""
    rows = np.flatnonzero(batch[USABLE])
    if not len(rows):
        return None
    points = [pickle.loads(batch[POINT][i]) for i in rows]
    encode = np.asarray(batch[ENCODE], dtype=bool)[rows]
    return target_batch(points, {name: np.asarray(batch[encoded(name)][rows][encode], dtype=np.float32)
                                 for name in names}, info, partitioned)


def _payloads(batch: Mapping[str, np.ndarray], rows: np.ndarray, payload_columns: Sequence[str] | None
              ) -> list[dict[str, Any]]:
    if payload_columns is None:
        return [json.loads(text) for text in batch[PAYLOAD][rows]]
    values = {c: batch[c][rows].tolist() for c in payload_columns}
    return [{c: values[c][i] for c in payload_columns} for i in range(len(rows))]


def to_batch(batch: Mapping[str, np.ndarray], names: Sequence[str], carried_names: Sequence[str],
             sparse_names: Sequence[str], payload_columns: Sequence[str] | None) -> Batch | None:
    """The usable rows of an encoded block as a :class:`~smec_vdb.backend.Batch` (None: no usable row).
    ``payload_columns`` None: the payload is the JSON column ``payload``."""
    n = len(batch[ID])
    rows = np.flatnonzero(batch[USABLE]) if USABLE in batch else np.arange(n)
    if not len(rows):
        return None
    ids = ids_of(batch)
    vectors = {name: np.asarray(batch[encoded(name)][rows], dtype=np.float32) for name in names}
    vectors.update({name: np.asarray(batch[carried(name)][rows], dtype=np.float32) for name in carried_names})
    sparse = None
    if sparse_names:
        parsed = [json.loads(text) for text in batch[SPARSE][rows]]
        sparse = {name: [SparseVector.of(*row[name]) if name in row else None for row in parsed] for name in sparse_names}
    return Batch(ids=[ids[i] for i in rows], vectors=vectors, payloads=_payloads(batch, rows, payload_columns),
                 sparse=sparse)
