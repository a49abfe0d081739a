"""``write_smec(ds, …)``: an ingestion job that makes embeddings in Ray Data writes a multi-resolution
SMEC collection in one call (paper §3: one compressor, every stored dim encoded on the way).

The three parts compose as Ray's own connectors do: ``ds`` (any Ray Data dataset with an id and a
vector column) → ``map_batches(SmecEncoder)`` (actors, ``num_gpus`` for a GPU each, the compressor
from the object store) → ``write_datasink(SmecSink)``. The collection is created on the driver if it
is absent (recording the compressor), else checked to be written by the same compressor. Upserts are
by id: running the job again after a failure rewrites what it rewrites and loses nothing.

Example::

    import ray
    from smec_vdb.migrate.distributed import Connection
    from smec_vdb.migrate.ray import write_smec

    ds = ray.data.from_items([{"id": i, "vector": v, "title": t} for i, (v, t) in enumerate(rows)])
    write_smec(ds, Connection("milvus", url="http://milvus:19530"), "docs_smec", "models/docs", dims=[128])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from smec_vdb.backend import IndexParams
from smec_vdb.collection import SmecCollection
from smec_vdb.layout import Layout, default_layout
from smec_vdb.migrate.ray.columns import ID, VECTOR
from smec_vdb.migrate.ray.encoder import SmecEncoder
from smec_vdb.migrate.ray.sink import SmecSink

if TYPE_CHECKING:
    import ray.data

    from smec_vdb.compress.base import Compressor
    from smec_vdb.migrate.distributed import Connection


def write_smec(ds: ray.data.Dataset, target: Connection, collection: str, compressor: Compressor | str | Path, *,
               dims: Sequence[int] | None = None, keep_full: bool = True, id_column: str = "id",
               vector_column: str = "vector", payload_columns: Sequence[str] | None = None,
               id_type: str | None = None, index: IndexParams = IndexParams(), layout: Layout | None = None,
               concurrency: int = 1, num_gpus: float | None = None, threads: int = 1,
               batch_size: int = 512) -> dict[str, int]:
    """Encode ``ds[vector_column]`` at every stored resolution and upsert each row into ``collection``.

    ``dims``: the compressed dims to store (default: all of the compressor's), plus ``full`` unless
    ``keep_full`` is False; ``payload_columns``: the columns kept as payload (default: every column
    but the id and the vector); ``id_type``: "int" or "str" (default: from the id column's type);
    ``concurrency`` encoder actors with ``threads`` torch threads each, or ``num_gpus`` GPUs each.
    Returns ``{"written": n, "skipped": 0}``. An embedded target (one writer process) is a
    :class:`~smec_vdb.errors.SingleWriterError` before anything is written.
    """
    import ray

    from smec_vdb.compress.artifact import load

    from smec_vdb.migrate.distributed import check_distributable

    check_distributable(target, "target")  # the sink's tasks are other processes
    path = Path(compressor) if isinstance(compressor, (str, Path)) else None
    comp = load(compressor) if isinstance(compressor, (str, Path)) else compressor
    columns = ds.columns()
    if payload_columns is None:
        payload_columns = [c for c in columns if c not in (id_column, vector_column)]
    backend = target.open()
    try:
        if backend.exists(collection):
            col = SmecCollection(backend, collection, comp)  # CompressorMismatchError if written by another
        else:
            schema = ds.schema()
            id_arrow_type = str(dict(zip(schema.names, schema.types))[id_column])
            kind = id_type or ("int" if id_arrow_type.startswith(("int", "uint")) else "str")
            col = SmecCollection.create(backend, collection, comp, dims=dims, keep_full=keep_full, id_type=kind,
                                        index=index, compressor_path=path,
                                        layout=layout or default_layout(backend.target, index.kind))
        names = {r.name: r.dim for r in col.resolutions}
    finally:
        backend.close()
    renames = {c: n for c, n in ((id_column, ID), (vector_column, VECTOR)) if c != n}
    encoded = (ds.rename_columns(renames) if renames else ds).map_batches(
        SmecEncoder, fn_constructor_kwargs={"compressor": ray.put(comp), "resolutions": names, "threads": threads},
        batch_size=batch_size, batch_format="numpy", concurrency=concurrency, num_cpus=threads, num_gpus=num_gpus)
    sink = SmecSink(target, collection, list(names), payload_columns=payload_columns)
    encoded.write_datasink(sink)
    return dict(sink.result)
