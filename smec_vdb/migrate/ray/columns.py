"""The columns of the Ray Data blocks that carry points between the source, the encoder and the sink.

A block is a batch of rows, one per point (``numpy`` batch format: a dict of arrays):

- ``id``: int64, or strings; with ``_id_int`` (bool) when a collection mixes integer and UUID ids;
- ``vector``: the vector to compress, (n, width) float32; ``smec:<name>`` the resolutions the
  encoder adds (``full``, ``d128``…), after which ``vector`` is dropped;
- ``payload``: the payload as JSON text, or any other columns named in the sink's ``payload_columns``
  (an ingestion job's own columns);
- ``carried:<name>``: another dense vector kept as it is; ``sparse``: the sparse vectors as JSON text;
- ``_usable``: False where the source vector is NaN/inf/all-zero (kept as a row so that a page is
  never empty, written by nobody, counted as skipped);
- a source page's place, for the copy's checkpoints: ``_range``, ``_seq`` (page number in the range),
  ``_row`` (row in the page), ``_page_rows``, ``_cursor`` (JSON: the source cursor after the page).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Batch, Point, PointId, SparseVector

ID, VECTOR, PAYLOAD, SPARSE, USABLE, ID_INT = "id", "vector", "payload", "sparse", "_usable", "_id_int"
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


def page_columns(points: Sequence[Point], x: np.ndarray, usable: np.ndarray, carried_names: Sequence[str],
                 sparse_names: Sequence[str]) -> dict[str, np.ndarray]:
    """A source page as columns (``x``: the vectors to compress, zero rows where not ``usable``)."""
    columns: dict[str, np.ndarray] = {
        **id_columns([p.id for p in points]),
        VECTOR: np.where(usable[:, None], x, 0.0).astype(np.float32),
        PAYLOAD: np.asarray([json.dumps(p.payload, ensure_ascii=False) for p in points], dtype=object),
        USABLE: usable,
    }
    for name in carried_names:
        columns[carried(name)] = np.stack([np.asarray(p.vectors[name], dtype=np.float32) for p in points])
    if sparse_names:
        columns[SPARSE] = np.asarray([json.dumps({n: [list(v.indices), list(v.values)] for n, v in p.sparse.items()
                                                  if n in sparse_names}) for p in points], dtype=object)
    return columns


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
