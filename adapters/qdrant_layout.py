"""A :class:`smec_vdb.layout.Layout` as Qdrant settings, for qdrant-edge and qdrant-client alike.

Both take the same shapes from a different module (``qdrant_edge`` or ``qdrant_client.models``):
per named vector the memory tier (Edge: ``memory=Cached|Cold``; client: ``on_disk``), an HNSW
override (``m=0``: no graph, the vector is only read to re-score) and a quantization config whose
codes stay in RAM; per search stage the quantization search parameters (rescore, oversampling).
A carried vector also keeps its storage: datatype (float16, uint8) and multivector config.
"""

from __future__ import annotations

from typing import Any, Callable

from smec_vdb.backend import IndexParams, Resolution, SearchStage
from smec_vdb.errors import ConfigError
from smec_vdb.layout import Quantization, VectorLayout

_BINARY_ENCODINGS = {1.0: "OneBit", 1.5: "OneAndHalfBits", 2.0: "TwoBits"}
_QUERY_ENCODINGS = {1: "Binary", 4: "Scalar4Bits", 8: "Scalar8Bits"}
_TURBO_BITS = {1.0: "Bits1", 1.5: "Bits1_5", 2.0: "Bits2", 4.0: "Bits4", 8.0: "Bits8"}


def edge_quantization(e: Any, q: Quantization) -> Any:
    """qdrant-edge quantization config with its codes pinned in RAM (None when not quantized)."""
    if q.kind == "int8":
        return e.ScalarQuantizationConfig(type=e.ScalarType.Int8, memory=e.Memory.Pinned)
    if q.kind == "binary":
        query = None if q.query_bits is None else getattr(e.BinaryQuantizationQueryEncoding, _QUERY_ENCODINGS[q.query_bits])
        return e.BinaryQuantizationConfig(
            encoding=getattr(e.BinaryQuantizationEncoding, _BINARY_ENCODINGS[q.bits]),  # type: ignore[index]
            query_encoding=query, memory=e.Memory.Pinned,
        )
    if q.kind == "turbo":
        return e.TurboQuantQuantizationConfig(bits=getattr(e.TurboQuantBitSize, _TURBO_BITS[q.bits]), memory=e.Memory.Pinned)  # type: ignore[index]
    return None


#: the vector datatypes Qdrant stores besides float32
_DATATYPES = ("uint8", "float16")


def storage(r: Resolution, datatype: Callable[[str], Any], max_sim: Callable[[], Any]) -> dict[str, Any]:
    """Vector-params keywords for a vector's datatype and multivector config ({} for a plain one);
    ``datatype`` makes the engine's datatype from its name, ``max_sim`` the max-sim multivector config."""
    out: dict[str, Any] = {}
    if r.datatype != "float32":
        out["datatype"] = datatype(r.datatype)
    if r.multivector:
        out["multivector_config"] = max_sim()
    return out


def edge_storage(e: Any, r: Resolution) -> dict[str, Any]:
    return storage(r, lambda name: getattr(e.VectorStorageDatatype, name.capitalize()),
                   lambda: e.MultiVectorConfig(comparator=e.MultiVectorComparator.MaxSim))


def client_storage(m: Any, r: Resolution) -> dict[str, Any]:
    return storage(r, m.Datatype, lambda: m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM))


def check_storage(r: Resolution, engine: str) -> None:
    """ConfigError for a datatype Qdrant does not have (int8, bfloat16, binary)."""
    if r.datatype not in ("float32", *_DATATYPES):
        raise ConfigError(f"{engine}: vector {r.name!r} is {r.datatype}, which Qdrant cannot store (it has float32, "
                          "float16 and uint8 vectors)")


def edge_vector_params(e: Any, r: Resolution, distance: Any, place: VectorLayout | None, index: IndexParams) -> Any:
    """``EdgeVectorParams`` of one vector: datatype, multivector, memory tier, graph (m=0 for none), quantization."""
    storage = edge_storage(e, r)
    if place is None:
        return e.EdgeVectorParams(size=r.dim, distance=distance, **storage)
    no_graph = None if place.graph else e.HnswIndexConfig(m=0, ef_construct=index.ef_construct, full_scan_threshold=10_000)
    return e.EdgeVectorParams(
        size=r.dim, distance=distance, memory=e.Memory.Cached if place.tier == "ram" else e.Memory.Cold,
        quantization_config=edge_quantization(e, place.quantization), hnsw_config=no_graph, **storage,
    )


def client_quantization(m: Any, q: Quantization) -> Any:
    """qdrant-client ``QuantizationConfig`` with ``always_ram`` codes (None when not quantized)."""
    if q.kind == "int8":
        return m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True))
    if q.kind == "binary":
        names = {1.0: "ONE_BIT", 1.5: "ONE_AND_HALF_BITS", 2.0: "TWO_BITS"}
        queries = {1: "BINARY", 4: "SCALAR4BITS", 8: "SCALAR8BITS"}
        return m.BinaryQuantization(binary=m.BinaryQuantizationConfig(
            always_ram=True, encoding=getattr(m.BinaryQuantizationEncoding, names[q.bits]),  # type: ignore[index]
            query_encoding=None if q.query_bits is None else getattr(m.BinaryQuantizationQueryEncoding, queries[q.query_bits]),
        ))
    if q.kind == "turbo":
        bits = {1.0: "BITS1", 1.5: "BITS1_5", 2.0: "BITS2", 4.0: "BITS4", 8.0: "BITS8"}
        return m.TurboQuantization(turbo=m.TurboQuantQuantizationConfig(
            always_ram=True, bits=getattr(m.TurboQuantBitSize, bits[q.bits]),  # type: ignore[index]
        ))
    return None


def client_vector_params(m: Any, r: Resolution, distance: Any, place: VectorLayout | None) -> Any:
    """qdrant-client ``VectorParams`` of one vector (datatype, multivector, ``on_disk``, ``m=0`` override, quantization)."""
    storage = client_storage(m, r)
    if place is None:
        return m.VectorParams(size=r.dim, distance=distance, **storage)
    return m.VectorParams(
        size=r.dim, distance=distance, on_disk=place.tier == "disk",
        hnsw_config=None if place.graph else m.HnswConfigDiff(m=0),
        quantization_config=client_quantization(m, place.quantization), **storage,
    )


def quantization_search(models: Any, place: VectorLayout | None, stage: SearchStage) -> Any:
    """``QuantizationSearchParams`` for a stage on a quantized resolution (None otherwise).

    Re-scoring on the vector's own floats only when the layout asks for it (native quantization);
    a SMEC stack leaves it to the next, wider resolution.
    """
    if place is None or not place.quantization.enabled:
        return None
    q = place.quantization
    oversampling = stage.oversampling if stage.oversampling is not None else q.oversampling
    return models.QuantizationSearchParams(rescore=q.rescore, oversampling=oversampling if q.rescore else None)
