"""A :class:`smec_vdb.layout.Layout` as Milvus index settings, one vector field at a time.

The coarse field gets HNSW (``HNSW_SQ`` with SQ8 codes when quantized int8); a re-scoring field
gets a FLAT index (no graph: it is read only for the candidates, by primary key). A field on the
``disk`` tier asks for ``mmap.enabled``: a Milvus server (2.4+) memory-maps it; Milvus Lite 3.2
accepts the parameter and keeps everything in RAM (measured: field-level mmap is
"Method not implemented"). Binary and TurboQuant codes have no HNSW-family index in Milvus Lite.
"""

from __future__ import annotations

from typing import Any

from smec_vdb.backend import IndexParams
from smec_vdb.layout import VectorLayout


def field_index(place: VectorLayout | None, index: IndexParams) -> tuple[str, dict[str, Any]]:
    """(index_type, params) of a vector field under ``place`` (None: the collection's ``index``);
    the layout was checked by :func:`smec_vdb.layout.check_engine_support`."""
    graph = {"M": index.m, "efConstruction": index.ef_construct}
    if place is None:
        return ("HNSW", graph) if index.kind == "hnsw" else ("FLAT", {})
    q = place.quantization
    mmap = {"mmap.enabled": True} if place.tier == "disk" else {}
    if index.kind == "flat" or not place.graph:
        return "FLAT", mmap
    if q.kind == "int8":
        return "HNSW_SQ", {**graph, "sq_type": "SQ8", **({"refine": True, "refine_type": "FP32"} if q.rescore else {}), **mmap}
    return "HNSW", {**graph, **mmap}
