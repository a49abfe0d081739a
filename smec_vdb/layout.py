"""Where each resolution of a multi-resolution collection lives, and what that costs per point.

Coarse-to-fine search (paper §3) reads the coarse resolution for every candidate the graph visits,
but each wider resolution only for the few candidates it re-scores. So the coarse vector belongs in
RAM with an HNSW graph, optionally quantized (scalar int8, binary, TurboQuant) with oversampling;
the re-scoring resolutions, the full vector above all, need no graph (``m=0``) and can sit on disk
(a cold, memory-mapped tier). A :class:`Layout` says this once for a collection; the adapters map it
to each engine's settings and :func:`footprint` models the RAM and disk bytes per point.

Example::

    layout = parse_layout("tiered", quantize="int8")      # coarse int8 + HNSW in RAM, rest on disk
    fp = footprint(layout, {"full": 384, "d128": 128}, m=16)
    fp.ram, fp.disk                                        # modelled bytes per point
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping

from smec_vdb.engines import capabilities
from smec_vdb.errors import ConfigError

if TYPE_CHECKING:
    from smec_vdb.backend import CollectionSchema

Tier = Literal["ram", "disk"]
QuantKind = Literal["none", "int8", "binary", "turbo"]

BINARY_BITS = (1.0, 1.5, 2.0)
TURBO_BITS = (1.0, 1.5, 2.0, 4.0, 8.0)
QUERY_BITS = (1, 4, 8)
#: Bytes per level-0 link of an HNSW graph (2·m links per point): qdrant-edge 0.9 stores them
#: delta-compressed; 43.6 B/pt were measured in ``links_compressed.bin`` for m=16 on 6,000 points.
GRAPH_BYTES_PER_LINK = 1.4
#: Per-vector extra of a scalar int8 or TurboQuant code (its offset / norm as one float32).
CODE_HEADER_BYTES = 4


@dataclass(frozen=True)
class Quantization:
    """Quantized copy of one resolution, searched in RAM instead of its float vectors.

    kind:         ``none``, ``int8`` (scalar), ``binary`` (``bits`` 1, 1.5 or 2) or ``turbo`` (TurboQuant,
                  ``bits`` 1, 1.5, 2, 4 or 8).
    query_bits:   binary only: encode the query with 1, 4 or 8 bits (asymmetric); None = engine default.
    rescore:      re-score the quantized candidates on this resolution's own float vectors (the
                  engine-native way). False when a wider resolution re-scores them next (SMEC stacking).
    oversampling: with ``rescore``, fetch ``oversampling × limit`` quantized candidates first.
    """

    kind: QuantKind = "none"
    bits: float | None = None
    query_bits: int | None = None
    rescore: bool = False
    oversampling: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("none", "int8", "binary", "turbo"):
            raise ConfigError(f"quantization kind must be none, int8, binary or turbo, found {self.kind!r}")
        allowed = {"binary": BINARY_BITS, "turbo": TURBO_BITS}.get(self.kind)
        if allowed is None and self.bits is not None:
            raise ConfigError(f"quantization {self.kind!r} takes no bits, found bits={self.bits}")
        if allowed is not None and self.bits not in allowed:
            raise ConfigError(f"{self.kind} quantization bits must be one of {list(allowed)}, found {self.bits!r}")
        if self.query_bits is not None and (self.kind != "binary" or self.query_bits not in QUERY_BITS):
            raise ConfigError(
                f"query_bits applies to binary quantization only, with one of {list(QUERY_BITS)}; "
                f"found query_bits={self.query_bits!r} for {self.kind!r}"
            )
        if not (isinstance(self.oversampling, (int, float)) and 1.0 <= self.oversampling <= 100.0):
            raise ConfigError(f"oversampling must be within [1, 100], found {self.oversampling!r}")
        if self.kind == "none" and (self.rescore or self.oversampling != 1.0):
            raise ConfigError("rescore/oversampling need a quantization kind other than none")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def code_bytes(self, dim: int) -> float:
        """Bytes of one quantized vector of width ``dim`` (0 when not quantized)."""
        if self.kind == "int8":
            return dim + CODE_HEADER_BYTES
        if self.kind == "binary":
            return math.ceil(dim * float(self.bits) / 8)  # type: ignore[arg-type]
        if self.kind == "turbo":
            return math.ceil(dim * float(self.bits) / 8) + CODE_HEADER_BYTES  # type: ignore[arg-type]
        return 0.0

    @property
    def bits_per_dim(self) -> float:
        """Code bits per dimension (32 when not quantized)."""
        return {"none": 32.0, "int8": 8.0}.get(self.kind, float(self.bits or 0))

    @property
    def label(self) -> str:
        if self.kind in ("none", "int8"):
            return self.kind
        bits = f"{self.bits:g}"
        return f"{self.kind}{bits}" + (f"q{self.query_bits}" if self.query_bits else "")


@dataclass(frozen=True)
class VectorLayout:
    """Placement of one resolution: an HNSW ``graph`` or none (m=0), float vectors in ``tier``
    ``ram`` or ``disk`` (memory-mapped, read on demand), and an optional :class:`Quantization`."""

    graph: bool
    tier: Tier
    quantization: Quantization = Quantization()

    def __post_init__(self) -> None:
        if self.tier not in ("ram", "disk"):
            raise ConfigError(f"tier must be ram or disk, found {self.tier!r}")
        if not isinstance(self.quantization, Quantization):
            raise ConfigError(f"quantization must be a Quantization, found {type(self.quantization).__name__}")


ALL_RAM = VectorLayout(graph=True, tier="ram")
RESCORE_ON_DISK = VectorLayout(graph=False, tier="disk")


@dataclass(frozen=True)
class Layout:
    """How a collection places its resolutions: ``coarse`` (the narrowest, searched first) and
    ``rescore`` (every wider one, read only to re-score candidates). Default: tiered.

    ``vectors`` names the resolutions it places (a collection's compressed and full vectors); any
    other dense vector (one carried over from a migrated source) keeps the engine's defaults. Empty:
    every dense vector of the collection."""

    coarse: VectorLayout = ALL_RAM
    rescore: VectorLayout = RESCORE_ON_DISK
    name: str = field(default="tiered", compare=False)
    vectors: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.coarse.graph and self.coarse.tier == "disk" and not self.coarse.quantization.enabled:
            raise ConfigError("the coarse resolution needs a graph, RAM or a quantized copy: it is searched first")

    def governing(self, names: Iterable[str]) -> "Layout":
        """This layout, placing only the vectors ``names``."""
        return replace(self, vectors=tuple(names))

    def governs(self, name: str) -> bool:
        return not self.vectors or name in self.vectors

    def placement(self, resolutions: Mapping[str, int], name: str) -> VectorLayout:
        """The placement of resolution ``name`` among ``resolutions`` ({name: dim}); a vector this
        layout does not govern is placed as the engine's default (graph and floats in RAM)."""
        if name not in resolutions:
            raise ConfigError(f"no vector named {name!r}; this collection has {sorted(resolutions)}")
        if not self.governs(name):
            return ALL_RAM
        narrowest = min((n for n in resolutions if self.governs(n)), key=lambda n: resolutions[n])
        return self.coarse if name == narrowest else self.rescore

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "coarse": asdict(self.coarse), "rescore": asdict(self.rescore),
                "vectors": list(self.vectors)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Layout":
        def vector(d: Mapping[str, Any]) -> VectorLayout:
            return VectorLayout(graph=bool(d["graph"]), tier=d["tier"], quantization=Quantization(**d["quantization"]))

        try:
            return cls(coarse=vector(data["coarse"]), rescore=vector(data["rescore"]), name=str(data.get("name", "custom")),
                       vectors=tuple(str(n) for n in data.get("vectors", ())))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"malformed layout record {dict(data)!r}: {exc}") from exc


#: Named layouts. ``tiered`` (the default) keeps only the coarse vector and its graph in RAM;
#: ``all-ram`` is every resolution in RAM with its own graph (the layout before issue 13).
LAYOUTS: dict[str, Layout] = {
    "tiered": Layout(name="tiered"),
    "tiered-ram": Layout(rescore=VectorLayout(graph=False, tier="ram"), name="tiered-ram"),
    "all-ram": Layout(coarse=ALL_RAM, rescore=ALL_RAM, name="all-ram"),
}
DEFAULT_LAYOUT = "tiered"


def default_layout(target: str, index_kind: str = "flat") -> Layout:
    """The layout ``migrate`` uses unless told otherwise (set from ``benchmarks/layouts.py``).

    ``tiered`` with the coarse vector int8-quantized wherever the target's engine can search int8
    codes under ``index_kind`` (:class:`smec_vdb.engines.Capabilities`): every Qdrant target; Milvus
    only inside an HNSW graph (``HNSW_SQ``), else plain ``tiered``.
    """
    caps = capabilities(target)
    if "int8" in caps.quantizations and (index_kind == "hnsw" or not caps.quantize_needs_graph):
        return parse_layout(DEFAULT_LAYOUT, quantize="int8")
    return LAYOUTS[DEFAULT_LAYOUT]


def check_engine_support(target: str, layout: Layout | None, index_kind: str) -> None:
    """ConfigError when ``target`` cannot place a collection as ``layout`` says (checked before any work).

    Its engine's capabilities say which codes its index can search and whether only inside an HNSW
    graph (Milvus: ``HNSW_SQ``, int8 codes only, none on a graph-less or flat-indexed resolution).
    Qdrant targets take every layout.
    """
    caps = capabilities(target)
    if layout is None:
        return
    for role, place in (("coarse", layout.coarse), ("rescore", layout.rescore)):
        q = place.quantization
        if q.kind not in caps.quantizations:
            usable = " or ".join(k for k in ("none", "int8", "binary", "turbo") if k in caps.quantizations)
            raise ConfigError(f"{target}: layout {layout.name!r}: the engine has no index over {q.label} codes; "
                              f"use quantization {usable} for the {role} resolution")
        if q.enabled and caps.quantize_needs_graph and (index_kind != "hnsw" or not place.graph):
            raise ConfigError(f"{target}: layout {layout.name!r}: the engine quantizes only inside an HNSW graph; "
                              f"the {role} resolution needs index kind hnsw and a graph, found {index_kind!r}")


def parse_quantization(spec: str, *, rescore: bool = False, oversampling: float = 1.0) -> Quantization:
    """``none``, ``int8``, ``binary1`` / ``binary1.5`` / ``binary2`` (``:q1|q4|q8`` = query bits), ``turbo1`` … ``turbo8``."""
    text = spec.strip().lower()
    kind_bits, _, query = text.partition(":")
    for kind in ("binary", "turbo"):
        if kind_bits.startswith(kind):
            try:
                bits = float(kind_bits[len(kind):])
                query_bits = int(query[1:]) if query else None
                if query and not query.startswith("q"):
                    raise ValueError(query)
            except ValueError:
                break
            return Quantization(kind, bits, query_bits, rescore=rescore, oversampling=oversampling)
    if kind_bits in ("none", "int8") and not query:
        return Quantization(kind_bits, rescore=rescore, oversampling=oversampling)  # type: ignore[arg-type]
    raise ConfigError(
        f"quantize must be none, int8, binary1|binary1.5|binary2[:q1|q4|q8] or turbo1|1.5|2|4|8, found {spec!r}"
    )


def parse_layout(name: str = DEFAULT_LAYOUT, *, quantize: str | Quantization | None = None) -> Layout:
    """A named layout (see :data:`LAYOUTS`), optionally with its coarse vector quantized.

    A quantized coarse vector is searched in RAM through its codes, so its float vectors move to
    disk (``tiered``) and its candidates are re-scored exactly by the next resolution.
    """
    if name not in LAYOUTS:
        raise ConfigError(f"layout must be one of {sorted(LAYOUTS)}, found {name!r}")
    layout = LAYOUTS[name]
    q = parse_quantization(quantize) if isinstance(quantize, str) else quantize
    if q is None or not q.enabled:
        return layout
    tier: Tier = "ram" if name == "all-ram" else "disk"
    coarse = VectorLayout(graph=layout.coarse.graph, tier=tier, quantization=q)
    return Layout(coarse=coarse, rescore=layout.rescore, name=f"{name}+{q.label}")


def placements(schema: "CollectionSchema") -> dict[str, VectorLayout | None]:
    """Each resolution's placement, or None for all when the schema has no layout (engine defaults)."""
    widths = {r.name: r.dim for r in schema.resolutions}
    if schema.layout is None:
        return {name: None for name in widths}
    layout = schema.layout
    return {name: layout.placement(widths, name) if layout.governs(name) else None for name in widths}


@dataclass(frozen=True)
class Footprint:
    """Modelled bytes per point: ``ram`` is what the search path keeps resident (float vectors in
    the RAM tier, quantized codes, graph links), ``disk`` everything persisted. ``parts`` itemises
    them per resolution. Payload, ids and engine bookkeeping are not included."""

    ram: float
    disk: float
    parts: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        return {"ram_bytes_per_point": round(self.ram, 1), "disk_bytes_per_point": round(self.disk, 1), "parts": self.parts}


def collection_footprint(schema: "CollectionSchema") -> Footprint:
    """:func:`footprint` of a stored collection (no layout recorded: every resolution in RAM)."""
    return footprint(
        schema.layout or LAYOUTS["all-ram"], {r.name: r.dim for r in schema.resolutions},
        m=schema.index.m, graphs=schema.index.kind == "hnsw",
    )


def footprint(layout: Layout, resolutions: Mapping[str, int], *, m: int = 16, graphs: bool = True) -> Footprint:
    """Bytes per point of ``resolutions`` ({name: dim}) placed by ``layout``.

    ``m`` is the HNSW degree; ``graphs=False`` models a flat (exact) collection with no graph at all.
    """
    if m < 0:
        raise ConfigError(f"m must be >= 0, found {m}")
    parts: dict[str, dict[str, float]] = {}
    ram = disk = 0.0
    for name, dim in resolutions.items():
        place = layout.placement(resolutions, name)
        floats = 4.0 * dim
        codes = place.quantization.code_bytes(dim)
        graph = 2 * m * GRAPH_BYTES_PER_LINK if graphs and place.graph else 0.0
        resident = codes + graph + (floats if place.tier == "ram" else 0.0)
        parts[name] = {"floats": floats, "codes": codes, "graph": round(graph, 1), "ram": round(resident, 1)}
        ram += resident
        disk += floats + codes + graph
    return Footprint(ram=ram, disk=disk, parts=parts)
