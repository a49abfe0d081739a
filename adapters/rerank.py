"""Client-side coarse-to-fine re-scoring, for engines without a fast native nested prefetch.

Implements the search side of SMEC's multi-resolution layout (paper §3, issue 3): stage 0 is
searched by the engine on its narrowest resolution; the candidates' vectors for the later
resolutions are fetched with them, and each later stage re-scores the previous stage's survivors
exactly in numpy and keeps its ``limit``. Used by qdrant-client local mode (whose ``prefetch`` is
correct but slow) and by the Milvus adapter.

Scores follow :class:`smec_vdb.backend.Hit`: higher is better — cosine similarity,
dot product, or the *negative* (not squared) L2 distance for ``euclid``.

Example::

    first = engine_search(stages[0], with_vectors=[s.name for s in stages[1:]])
    cands = Candidates(ids, {"full": full_matrix}, payloads)
    hits = rescore(cands, stages[1:], "cosine")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Distance, Hit, PointId, SearchStage
from smec_vdb.errors import ConfigError
from smec_vdb.search import cascade


@dataclass
class Candidates:
    """First-stage candidates, best first: ids, one (n, dim) matrix per later resolution, payloads."""

    ids: Sequence[PointId]
    vectors: Mapping[str, np.ndarray]
    payloads: Sequence[dict[str, Any] | None] | None = None


def rescore(candidates: Candidates, stages: Sequence[SearchStage], distance: Distance) -> list[Hit]:
    """Re-score ``candidates`` stage after stage, each keeping its ``limit`` best (stable on ties).

    ``stages`` are the stages *after* the first (the engine already ran stage 0); each needs its
    resolution in ``candidates.vectors``, rows aligned with ``candidates.ids``.
    """
    if not stages:
        raise ConfigError("rescore needs at least one stage after the first")
    keep, scores = cascade(stages, candidates.vectors, distance, rows=np.arange(len(candidates.ids)))
    payloads = candidates.payloads
    return [
        Hit(id=candidates.ids[i], score=float(s), payload=None if payloads is None else payloads[i])
        for i, s in zip(keep.tolist(), scores.tolist())
    ]
