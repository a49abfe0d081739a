"""The plan-time engine probe: what the target engine does to values on its own when it stores them.

Verification compares a target with its source exactly (issue 21 §4): a payload float must come back
as the same double, a vector as the same float32. Some engines change values themselves:
qdrant-edge-py 0.9 stores about one payload double in eight 1 ulp off (measured: 298 of 2,504),
and Qdrant stores a cosine vector as v/‖v‖ computed its own way (up to 3 ulp from numpy's). Rather
than folding such changes into a silent tolerance, the plan writes a sample of the source's own
payload floats and a few raw vectors to a scratch collection on the target, reads them back, drops
the collection, and names what it found as a *difference class* with its bound. Verification then
counts the values that differ within that bound under the class's name (reported, not a failure) and
compares everything else exactly.

Example::

    fidelity = probe_engine(target, "docs_smec", survey.floats)
    fidelity.classes()     # {'payload floats rounded by the engine': '<= 1 ulp'} on qdrant-edge
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Backend, Batch, CollectionSchema, Resolution

#: the scratch collection's name: ``<target>__smec_probe`` (dropped before the plan returns)
PROBE_SUFFIX = "__smec_probe"
PROBE_VECTORS = 32
#: a normalising engine's class bound: twice the largest deviation the probe saw, at least one float32 ulp of 1.0
#: (so a real edit of 1e-6 to a unit vector stays far outside it)
COSINE_MARGIN = 2.0
FLOAT32_EPS = float(np.finfo(np.float32).eps)
FLOATS_PER_POINT = 64
#: doubles qdrant-edge-py 0.9 was measured to store 1 ulp off, so an engine that rounds shows it
#: even when the source's own floats are few
KNOWN_ROUNDED = (361.59505490948476, 1304.0000451301373, 947.0809631292421, -921.7253762584195)
PAYLOAD_FLOATS = "payload floats rounded by the engine"
COSINE_VECTORS = "cosine vectors normalised by the engine"


@dataclass(frozen=True)
class Fidelity:
    """What the target engine did to the probe's values: payload doubles changed (how many of how many,
    by at most ``payload_float_ulps``), and whether it stores cosine vectors normalised, at most
    ``cosine_atol`` from numpy's v/‖v‖ in float32."""

    floats_probed: int = 0
    floats_rounded: int = 0
    payload_float_ulps: int = 0
    normalises_cosine: bool = False
    cosine_atol: float = 0.0

    def classes(self) -> dict[str, str]:
        """The difference classes this engine makes, each with its bound (empty: it stores values exactly)."""
        out = {}
        if self.payload_float_ulps:
            out[PAYLOAD_FLOATS] = f"<= {self.payload_float_ulps} ulp"
        if self.normalises_cosine and self.cosine_atol:
            out[COSINE_VECTORS] = f"<= {self.cosine_atol:.3g} per component"
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": self.classes()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Fidelity":
        return cls(**{k: v for k, v in data.items() if k != "classes"})


def ulps_apart(a: float, b: float) -> int:
    """How many doubles lie between ``a`` and ``b`` (0: the same double)."""
    ia, ib = (int(np.array(v, dtype=np.float64).view(np.int64)) for v in (a, b))
    ia, ib = (i if i >= 0 else -(2**63) - i for i in (ia, ib))  # sign-magnitude → ordered integers
    return abs(ia - ib)


def probe_engine(target: Backend, name: str, floats: Sequence[float], dim: int, seed: int = 0) -> Fidelity:
    """Store ``floats`` (the source's payload floats, plus :data:`KNOWN_ROUNDED`) and raw ``dim``-d vectors
    in a scratch collection ``<name>__smec_probe`` of ``target``, read them back, drop it, and say what changed."""
    scratch = name + PROBE_SUFFIX
    values = [*KNOWN_ROUNDED, *floats]
    chunks = [values[i:i + FLOATS_PER_POINT] for i in range(0, len(values), FLOATS_PER_POINT)]
    n = max(PROBE_VECTORS, len(chunks))
    raw = (np.random.default_rng(seed).normal(size=(n, dim)) * 3).astype(np.float32)
    schema = CollectionSchema((Resolution("v", dim),), distance="cosine")
    if target.exists(scratch):  # left by a run killed while probing
        target.drop(scratch)
    target.create_collection(scratch, schema)
    try:
        target.upsert(scratch, Batch(ids=list(range(n)), vectors={"v": raw},
                                     payloads=[{"f": chunks[i] if i < len(chunks) else []} for i in range(n)]))
        stored = {p.id: p for p in target.retrieve(scratch, list(range(n)), with_vectors=True)}
    finally:
        target.drop(scratch)
    got = np.stack([stored[i].vectors["v"] for i in range(n)]).astype(np.float32)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    normalises = bool(np.abs(got - unit).max() < np.abs(got - raw).max())
    deviation = float(np.abs(got - unit).max()) if normalises else 0.0
    apart = [ulps_apart(a, b) for i, chunk in enumerate(chunks) for a, b in zip(chunk, stored[i].payload["f"])]
    return Fidelity(
        floats_probed=len(values), floats_rounded=sum(1 for u in apart if u), payload_float_ulps=max(apart, default=0),
        normalises_cosine=normalises,
        cosine_atol=max(COSINE_MARGIN * deviation, FLOAT32_EPS) if deviation else 0.0,
    )
