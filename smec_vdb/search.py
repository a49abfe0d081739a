"""Coarse-to-fine search, written once: how many candidates each stage keeps, and the exact cascade.

SMEC's multi-resolution layout (paper §1, §3) is searched smallest resolution first: the coarsest
stage shortlists ``candidates`` points, each larger resolution re-scores the survivors of the
previous stage and keeps fewer, the last keeps ``k``. :func:`plan_stages` builds the stages an
engine runs (:meth:`smec_vdb.backend.Backend.search_stages`); :func:`cascade` runs the re-scoring
exactly in numpy — over candidates an engine returned (adapters without native nested prefetch),
or over a whole matrix (evaluation, the migration dry run, benchmarks).

Scores follow :class:`smec_vdb.backend.Hit`: higher is better — cosine similarity, dot product,
or the *negative* (not squared) L2 distance for ``euclid``.

Example::

    stages = plan_stages({"d64": q64, "full": q}, ["d64", "full"], k=10, candidates=300)
    rows, scores = cascade(stages, {"d64": docs64, "full": docs}, "cosine")   # exact, every row
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Distance, SearchStage
from smec_vdb.errors import ConfigError

if TYPE_CHECKING:
    from smec_vdb.layout import Quantization

#: candidates per result = CANDIDATE_BUDGET / coarse width, clamped to [MIN, MAX] (benchmarks/layouts.py)
CANDIDATE_BUDGET = 2048
MIN_OVERSAMPLING = 4
MAX_OVERSAMPLING = 64
#: codes of at most this many bits per dimension rank candidates coarsely: twice the candidates
COARSE_CODE_BITS = 2.0


def default_candidates(k: int, input_dim: int, coarse_dim: int, quantization: Quantization | None = None) -> int:
    """Coarse candidates for top-``k``: k × clamp(2048 / coarse_dim, 4, 64), doubled for 1-2 bit codes.

    The default of a collection that has not been calibrated, and where calibration
    (:mod:`smec_vdb.calibrate`) starts looking for the smallest count that reaches its recall target.

    Set from ``benchmarks/layouts.py``: what decides how many true neighbours fall outside the coarse
    top-c is the coarse width (and the data), not the compression ratio. At recall@10 ≥ 0.99 against
    exact full-dim search: debian MiniLM 384 → 128 needs 160 (= 10 × 2048/128), 384 → 64 reaches
    0.985 at 320; SciFact mpnet 768 → 128 needs 40 and synthetic 3584 → 128/256 20, so the rule is
    sized on the densest set (a per-collection calibration at migrate time would fetch fewer). Binary
    2-bit coarse codes needed twice the candidates (320 for 0.99); int8 and 4-bit TurboQuant the same
    as floats. The former rule, k × max(10, 5·D/d), asked 1,400 at 3584 → 128. A coarse vector as wide
    as the input needs no re-scoring: ``k``.
    """
    if coarse_dim >= input_dim:
        return k
    oversampling = min(MAX_OVERSAMPLING, max(MIN_OVERSAMPLING, math.ceil(CANDIDATE_BUDGET / coarse_dim)))
    if quantization is not None and quantization.enabled and quantization.bits_per_dim <= COARSE_CODE_BITS:
        oversampling *= 2
    return k * oversampling


def scaled_candidates(calibrated: int, calibrated_k: int, k: int) -> int:
    """A count calibrated for top-``calibrated_k`` applied to top-``k``: the same oversampling
    (candidates per result, rounded up), never fewer than ``k``."""
    return max(k, math.ceil(calibrated * k / calibrated_k))


def stage_limits(n_stages: int, k: int, candidates: int) -> list[int]:
    """Candidates kept per stage: ``candidates`` at the coarsest, halving (never below 2k), ``k`` last."""
    if n_stages == 1:
        return [k]
    limits = [candidates]
    for _ in range(n_stages - 2):
        limits.append(max(2 * k, limits[-1] // 2))
    limits.append(k)
    return limits


def plan_stages(queries: Mapping[str, np.ndarray], coarse_to_fine: Sequence[str], k: int,
                candidates: int) -> list[SearchStage]:
    """The stages of one search: resolution names smallest first, each with its query and limit."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, found {k}")
    if candidates < k:
        raise ConfigError(f"candidates ({candidates}) must be >= k ({k})")
    limits = stage_limits(len(coarse_to_fine), k, candidates)
    return [SearchStage(name, queries[name] if type(queries[name]) is np.ndarray else np.asarray(queries[name]), limit)
            for name, limit in zip(coarse_to_fine, limits)]


def similarity(distance: Distance, query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Score each row of ``matrix`` against ``query``, higher is better (cosine, dot, or -L2)."""
    query = np.asarray(query, dtype=np.float32)
    matrix = np.asarray(matrix, dtype=np.float32).reshape(-1, query.shape[0])
    if distance == "dot":
        return matrix @ query
    if distance == "cosine":
        row_norms = np.maximum(np.linalg.norm(matrix, axis=1), np.finfo(np.float32).tiny)
        query_norm = max(float(np.linalg.norm(query)), float(np.finfo(np.float32).tiny))
        return (matrix @ query) / (row_norms * query_norm)
    return -np.linalg.norm(matrix - query[None, :], axis=1)


def cascade(
    stages: Sequence[SearchStage],
    matrices: Mapping[str, np.ndarray],
    distance: Distance,
    *,
    rows: np.ndarray | None = None,
    tie_order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``stages`` exactly: each scores the surviving rows of ``matrices[stage.name]``, keeps its ``limit``.

    ``rows``: the rows to start from (default: all). Ties keep the current order (stable), or with
    ``tie_order`` (one value per matrix row) the higher value first. Returns (rows, scores) of the
    last stage, best first.
    """
    if not stages:
        raise ConfigError("a coarse-to-fine search needs at least one stage")
    keep = np.arange(len(next(iter(matrices.values())))) if rows is None else np.asarray(rows, dtype=np.int64)
    scores = np.zeros(0, dtype=np.float32)
    for stage in stages:
        scores = similarity(distance, stage.vector, np.asarray(matrices[stage.name])[keep])
        if tie_order is None:
            order = np.argsort(-scores, kind="stable")
        else:
            order = np.lexsort((-np.asarray(tie_order)[keep], -scores))
        order = order[: stage.limit]
        keep, scores = keep[order], scores[order]
    return keep, scores
