"""Plan a migration without writing anything: source stats, target schema, bytes per point, estimated recall.

The coarse-to-fine estimate here is computed in memory over the survey's sample (to be wired to
the shared coarse-to-fine module :mod:`smec_vdb.search` at merge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from smec_vdb.backend import Backend, SearchStage
from smec_vdb.collection import plan_resolutions
from smec_vdb.errors import MigrationError
from smec_vdb.layout import check_engine_support
from smec_vdb.migrate.options import MigrationOptions, ProgressCallback
from smec_vdb.migrate.plan import inspect_source, make_plan, obtain_compressor, stored_dims
from smec_vdb.search import cascade, default_candidates, stage_limits

if TYPE_CHECKING:
    from smec_vdb.compress.base import Compressor

DRY_RUN_QUERIES = 100


def _simulated_recall(comp: Compressor, pool: np.ndarray, resolutions: Sequence, n_queries: int,
                      seed: int, k: int = 10) -> float:
    """Recall@k of coarse-to-fine vs exact full-dim cosine, both computed in memory over ``pool``."""
    rng = np.random.default_rng(seed)
    q_idx = rng.choice(len(pool), size=min(n_queries, len(pool)), replace=False)
    full = comp.encode(pool, comp.input_dim)
    encoded = {r.name: comp.encode(pool, r.dim) for r in resolutions}
    coarse_to_fine = sorted(resolutions, key=lambda r: r.dim)
    limits = stage_limits(len(coarse_to_fine), k + 1, default_candidates(k + 1, comp.input_dim, coarse_to_fine[0].dim))
    recalls = []
    for qi in q_idx:
        exact = [i for i in np.argsort(-(full @ full[qi]), kind="stable")[: k + 1] if i != qi][:k]
        stages = [SearchStage(r.name, encoded[r.name][qi], lim) for r, lim in zip(coarse_to_fine, limits)]
        rows, _ = cascade(stages, encoded, "dot")
        got = [i for i in rows if i != qi][:k]
        recalls.append(len(set(exact) & set(got)) / max(1, len(exact)))
    return float(np.mean(recalls))


def dry_run(backend: Backend, opts: MigrationOptions, *, target_backend: Backend | None = None,
            progress: ProgressCallback | None = None) -> dict[str, Any]:
    """What :func:`smec_vdb.migrate.migrate` would do, refusing what it would refuse; writes nothing.

    A compressor is trained in memory on the sample (or ``compressor`` loaded); recall@10 is
    estimated over that sample only, so it is optimistic for a much larger source. The report holds
    the schema mapping (how the target holds each part of the source) and the points left out.
    """
    target = target_backend or backend
    info = inspect_source(backend, opts.source, opts.vector, opts.leave_out)
    if info.count == 0:
        raise MigrationError(f"source {opts.source!r} is empty: nothing to migrate")
    check_engine_support(target.target, opts.layout, opts.index.kind)
    planned = make_plan(backend, target, info, opts, None, progress, probe=False)
    info = planned.info
    comp = obtain_compressor(planned, opts, progress)
    schema, found = planned.schema, planned.found
    resolutions = plan_resolutions(comp, stored_dims(opts, comp.dims), opts.keep_full)
    return {
        "dry_run": True,
        "source": info.as_dict(),
        "target": {"collection": opts.target_name, "exists": target.exists(opts.target_name),
                   "resolutions": {r.name: r.dim for r in resolutions}, "distance": "cosine",
                   "carried": {r.name: r.dim for r in info.carried}, "sparse": list(info.sparse),
                   "id_type": schema.id_type},
        "schedule": list(comp.dims),
        "bytes_per_point": {"before": 4 * info.width, "after": 4 * sum(r.dim for r in resolutions)},
        "estimated_recall_at_10": round(_simulated_recall(comp, found.sample, resolutions, DRY_RUN_QUERIES, opts.seed), 4),
        "estimate_pool": len(found.sample),
        **planned.report(),  # engine_fidelity None: the engine probe writes, so only a migration runs it
    }
