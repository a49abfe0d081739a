"""Performance benchmark of issue 7 (and the per-target latency table of issue 3).

Four sections, each measured against its own full-dimension or no-compression baseline in the
same run (the machine is shared and noisy, so only within-run ratios are meaningful):

1. **encode**: vectors/s of ``Compressor.encode`` (SMEC, randomly initialised weights: speed does
   not depend on their values) at batch 1, 64 and 4,096 against a plain torch ``addmm`` and a numpy
   GEMM of the same shapes (the roofline of this CPU). Target >= 0.5x the torch GEMM.
2. **migrate**: points/s of :func:`smec_vdb.migrate.migrate` with a pre-built compressor
   (``--compressor``) against a raw copy (scroll source -> upsert target, no compression, same
   batch size, same engine), with the read/encode/write/verify breakdown. Target >= 0.8.
3. **search**: median/p99 latency and QPS of full-dim search against coarse-to-fine search
   (:meth:`SmecCollection.search`) at recall@10 >= 0.99 vs exact full-dim numpy search, on the
   63,678 real MiniLM vectors of debian-packages (1,000 held out as queries) and on synthetic
   clustered 3584-d vectors (LLM scale), per engine target. Target: coarse-to-fine <= 0.25x.
4. **train**: seconds per SMEC stage (and per epoch) against the number of training vectors.

    .venv/bin/python benchmarks/perf.py            # full report (< 20 min on 2 cores)
    .venv/bin/python benchmarks/perf.py --quick    # smoke run (~2 min): small sizes, same structure

Writes ``perf.json`` and ``perf.md`` (``perf-quick.*`` with ``--quick``) under ``--out`` (default
benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, IndexParams, Resolution, SearchStage
from smec_vdb.collection import SmecCollection
from smec_vdb.search import cascade, default_candidates, plan_stages, stage_limits
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.migrate import MigrationOptions, migrate
from smec_vdb.train import train
from smec_vdb.train.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import per_call  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
K = 10
RECALL_TARGET = 0.99
ENCODE_TARGET, MIGRATE_TARGET, SEARCH_TARGET = 0.5, 0.8, 0.25
LOCAL_QUERIES = 50


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (``--quick`` shrinks every one of them)."""

    encode_seconds: float          # minimum timed wall per measurement
    encode_rounds: int             # alternating rounds (smec / torch / numpy); the median is kept
    migrate_points: int
    real_points: int | None        # None = all 63,678 minus the held-out queries
    queries: int                   # queries timed per engine (>= 50 for issue 3)
    llm_points: int
    llm_dim: int
    train_sizes: tuple[int, ...]
    train_epochs: int
    train_llm_points: int


FULL = Sizes(0.25, 5, 20_000, None, 200, 20_000, 3584, (10_000, 100_000), 1, 5_000)
QUICK = Sizes(0.04, 3, 2_000, 5_000, 50, 2_000, 3584, (2_000, 5_000), 1, 500)


# -- helpers -------------------------------------------------------------------------------------
def shared_data() -> Path:
    return Path(os.environ.get("SMEC_VDB_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_debian() -> np.ndarray:
    path = shared_data() / "debian-packages" / "embeddings" / "minilm-l6-v2" / "corpus_f16.npy"
    if not path.is_file():
        raise SystemExit(f"shared data missing: {path} (set SMEC_VDB_SHARED_DATA)")
    return np.load(path).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, seed: int, *, latent: int = 256, clusters: int = 500) -> np.ndarray:
    """Synthetic LLM-like embeddings: clusters in a ``latent``-dim subspace with a power-law spectrum,
    embedded in ``dim`` dims by a random orthonormal basis, plus isotropic noise; unit rows."""
    rng = np.random.default_rng(seed)
    spectrum = (np.arange(1, latent + 1, dtype=np.float32) ** -0.5)
    centres = rng.standard_normal((clusters, latent)).astype(np.float32) * spectrum
    z = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, latent)).astype(np.float32) * spectrum
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent)).astype(np.float32))
    x = z @ basis.T.astype(np.float32) + 0.02 * rng.standard_normal((n, dim)).astype(np.float32)
    return unit(x)


def random_smec(input_dim: int, dims: Sequence[int], seed: int = 0) -> SMECCompressor:
    """An SMEC compressor with random stage weights (encode speed does not depend on the values)."""
    gen = torch.Generator().manual_seed(seed)
    comp = SMECCompressor(input_dim, dims)
    with torch.no_grad():
        for stage in comp.stages:
            w = stage.weight
            w.copy_(torch.randn(w.shape, generator=gen) / w.shape[1] ** 0.5)
            stage.selector.logits.copy_(torch.randn(stage.selector.logits.shape, generator=gen))
    return comp.eval()


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "qps": round(len(ms) / (ms.sum() / 1e3), 1)}


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def exact_topk(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine top-k ids (rows are unit vectors) of each query, best first."""
    scores = queries @ corpus.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(-scores, top, axis=1).argsort(axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def recall(got: Sequence[Sequence[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(e.tolist())) / len(e) for g, e in zip(got, exact)]))


def simulated_candidates(comp: SMECCompressor, corpus: np.ndarray, queries: np.ndarray, dims: Sequence[int],
                         exact: np.ndarray, ladder: Sequence[int]) -> dict[int, float]:
    """Recall@10 of coarse-to-fine with exact search at every stage, in numpy, for each candidates value."""
    coarse_to_fine = sorted(dims)
    enc = {d: comp.encode(corpus, d) for d in coarse_to_fine}
    qenc = {d: comp.encode(queries, d) for d in coarse_to_fine}
    coarse = qenc[coarse_to_fine[0]] @ enc[coarse_to_fine[0]].T
    order = np.argsort(-coarse, axis=1, kind="stable")
    out = {}
    for c in ladder:
        limits = stage_limits(len(coarse_to_fine) + 1, K, c)
        matrices = {**{str(d): enc[d] for d in coarse_to_fine[1:]}, "full": corpus}
        got = []
        for qi in range(len(queries)):
            later = [SearchStage(str(d), qenc[d][qi], lim) for d, lim in zip(coarse_to_fine[1:], limits[1:])]
            later.append(SearchStage("full", queries[qi], limits[-1]))
            rows, _ = cascade(later, matrices, "dot", rows=order[qi, :c])
            got.append(rows.tolist())
        out[c] = recall(got, exact)
    return out


# -- 1. encode -----------------------------------------------------------------------------------
ENCODE_SHAPES = ((3584, (512, 128)), (384, (192, 96)))
ENCODE_BATCHES = (1, 64, 4096)


def profile_batch1(comp: SMECCompressor, x: np.ndarray, dim: int, calls: int = 2000) -> list[str]:
    """The functions that take the most own time when encoding one vector at a time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        comp.encode(x, dim)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    rows = []
    for (file, line, func), (_cc, _nc, tt, _ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]:
        rows.append(f"{tt / calls * 1e6:7.1f} us/call own  {Path(file).name}:{line}({func})")
    return rows


def bench_encode(sizes: Sizes) -> dict[str, Any]:
    rows, profiles = [], {}
    for input_dim, dims in ENCODE_SHAPES:
        comp = random_smec(input_dim, dims)
        rng = np.random.default_rng(0)
        data = rng.standard_normal((max(ENCODE_BATCHES), input_dim)).astype(np.float32)
        for dim in dims:
            matrix = comp.level_matrix(comp.dims.index(dim) + 1)  # the collapsed chain: one (dim, D) matrix
            m_t = matrix.T.contiguous()
            m_np = m_t.numpy()
            for batch in ENCODE_BATCHES:
                x = np.ascontiguousarray(data[:batch])
                xt = torch.from_numpy(x)
                fns = {
                    "smec": lambda x=x, dim=dim, comp=comp: comp.encode(x, dim),
                    "torch": lambda xt=xt, m_t=m_t: xt @ m_t,
                    "numpy": lambda x=x, m_np=m_np: x @ m_np,
                }
                per_round: dict[str, list[float]] = {name: [] for name in fns}
                with torch.inference_mode():
                    for _ in range(sizes.encode_rounds):
                        for name, fn in fns.items():
                            per_round[name].append(per_call(fn, sizes.encode_seconds))
                sec = {name: statistics.median(v) for name, v in per_round.items()}
                ratios = [t / s for t, s in zip(per_round["torch"], per_round["smec"])]
                flops = 2.0 * batch * input_dim * dim
                rows.append({
                    "shape": f"{input_dim}->{dim}", "chain": "->".join(map(str, (input_dim, *dims))), "batch": batch,
                    "smec_vps": round(batch / sec["smec"], 1), "torch_gemm_vps": round(batch / sec["torch"], 1),
                    "numpy_gemm_vps": round(batch / sec["numpy"], 1),
                    "torch_gemm_gflops": round(flops / sec["torch"] / 1e9, 2),
                    "smec_us_per_call": round(sec["smec"] * 1e6, 1), "torch_us_per_call": round(sec["torch"] * 1e6, 1),
                    "ratio_vs_torch": round(statistics.median(ratios), 3),
                    "meets_target": statistics.median(ratios) >= ENCODE_TARGET,
                })
        profiles[f"{input_dim}->{dims[-1]} batch 1"] = profile_batch1(comp, data[:1], dims[-1])
    return {"compressors": "SMEC with random weights (speed does not depend on weight values)",
            "torch_threads": torch.get_num_threads(), "target_ratio": ENCODE_TARGET, "rows": rows,
            "batch1_profile": profiles}


# -- 2. migrate ----------------------------------------------------------------------------------
MIGRATE_BATCH = 512
MIGRATE_DIMS, MIGRATE_STORED = (192, 96), (96,)


def _open(target: str, root: Path) -> Any:
    """An embedded target of the engine registry: in memory where its engine can be, else its store under ``root``."""
    spec = engines.target(target)
    record = engines.engine(spec.engine)
    return open_backend(record.name, path=record.in_memory or str(root / str(spec.test_store)))


def _load_source(backend: Any, name: str, vectors: np.ndarray) -> None:
    backend.create_collection(name, CollectionSchema((Resolution("full", vectors.shape[1]),)))
    for start in range(0, len(vectors), 4096):
        ids = list(range(start, min(start + 4096, len(vectors))))
        backend.upsert(name, Batch(ids=ids, vectors={"full": vectors[ids]},
                                   payloads=[{"pkg": f"p{i}", "n": i} for i in ids]))
    # Settle the source before anything is timed: Milvus Lite flushes pending writes on the first read.
    backend.scroll(name, limit=1, with_vectors=False)


def raw_copy(backend: Any, source: str, target: str, width: int, batch: int) -> dict[str, float]:
    """Scroll the source and upsert the same points (full vector only, no compression) into ``target``."""
    backend.create_collection(target, CollectionSchema((Resolution("full", width),)))
    read = write = 0.0
    cursor, n = None, 0
    while True:
        t0 = time.perf_counter()
        points, cursor = backend.scroll(source, cursor=cursor, limit=batch, with_vectors=["full"])
        t1 = time.perf_counter()
        if points:
            x = np.stack([p.vectors["full"] for p in points]).astype(np.float32)
            backend.upsert(target, Batch(ids=[p.id for p in points], vectors={"full": x},
                                         payloads=[p.payload for p in points]))
            n += len(points)
        write += time.perf_counter() - t1
        read += t1 - t0
        if cursor is None:
            break
    total = read + write
    return {"points": n, "read": round(read, 3), "write": round(write, 3), "total": round(total, 3),
            "points_per_s": round(n / total, 1)}


def bench_migrate(sizes: Sizes, vectors: np.ndarray, workdir: Path) -> dict[str, Any]:
    data = vectors[: sizes.migrate_points]
    comp = SMECCompressor.from_pca(torch.from_numpy(data[:10_000]), MIGRATE_DIMS).eval()
    comp_dir = workdir / "migrate-compressor"
    comp.save(comp_dir)
    out: dict[str, Any] = {"points": len(data), "batch_size": MIGRATE_BATCH, "width": data.shape[1],
                           "compressor": f"SMEC {data.shape[1]}->{'->'.join(map(str, MIGRATE_DIMS))} (PCA-initialised, untrained)",
                           "stored": "full + " + " + ".join(f"d{d}" for d in MIGRATE_STORED),
                           "target_ratio": MIGRATE_TARGET, "engines": {}}
    for target in ("qdrant-edge", "milvus-lite"):
        root = workdir / f"migrate-{target}"
        backend = _open(target, root)
        try:
            _load_source(backend, "src", data)
            raw_before = raw_copy(backend, "src", "raw1", data.shape[1], MIGRATE_BATCH)
            t0 = time.perf_counter()
            report = migrate(backend, MigrationOptions(
                source="src", target="src_smec", compressor=str(comp_dir), dims=MIGRATE_STORED,
                batch_size=MIGRATE_BATCH, verify_queries=100))
            wall = time.perf_counter() - t0
            raw_after = raw_copy(backend, "src", "raw2", data.shape[1], MIGRATE_BATCH)
        finally:
            backend.close()
        sec = report["seconds"]
        copy_wall = sec["total"] - sec.get("train", 0.0) - sec.get("verify", 0.0)
        raw_pps = (raw_before["points_per_s"] + raw_after["points_per_s"]) / 2
        mig_pps = report["points_written"] / copy_wall
        out["engines"][target] = {
            "raw_copy": {"before": raw_before, "after": raw_after, "points_per_s": round(raw_pps, 1)},
            "migrate": {"seconds": sec, "copy_wall_s": round(copy_wall, 3), "points_per_s": round(mig_pps, 1),
                        "phase_points_per_s": report["throughput_points_per_s"], "wall_s": round(wall, 3),
                        "recall_at_10": report["verification"]["recall_at_10"],
                        "bytes_per_point": report["bytes_per_point"]},
            "ratio": round(mig_pps / raw_pps, 3),
            "meets_target": mig_pps / raw_pps >= MIGRATE_TARGET,
        }
    return out


# -- 3. search -----------------------------------------------------------------------------------
def layout_bytes(input_dim: int, dims: Sequence[int]) -> list[dict[str, Any]]:
    """float32 vector bytes per point of each layout: full + all dims, then dropping the widest first."""
    layouts = [(input_dim, *dims), *[tuple(dims[i:]) for i in range(len(dims))]]
    return [{"layout": " + ".join("full" if d == input_dim else str(d) for d in lay),
             "vector_bytes_per_point": 4 * sum(lay),
             "vs_full_only": round(sum(lay) / input_dim, 3)} for lay in layouts]


def _stages(col: SmecCollection, q: np.ndarray, candidates: int) -> list[SearchStage]:
    """The search stages :meth:`SmecCollection.search` sends to the engine for query ``q``."""
    encoded = col.encode(q.reshape(1, -1))
    return plan_stages({n: m[0] for n, m in encoded.items()}, [r.name for r in reversed(col.resolutions)], K, candidates)


def _time_queries(col: SmecCollection, queries: np.ndarray, candidates: int) -> dict[str, Any]:
    """Per query, interleaved so all three see the same machine load: full-dim search, coarse-to-fine
    through the library (query encoding included), and the engine part of it alone (pre-encoded stages)."""
    backend, name = col.backend, col.name
    stages = [_stages(col, q, candidates) for q in queries]
    for q, st in zip(queries[:5], stages):  # warm-up
        backend.search(name, "full", q, K, with_payload=False)
        col.search(q, k=K, candidates=candidates, with_payload=False)
        backend.search_stages(name, st, with_payload=False)
    seconds: dict[str, list[float]] = {"full": [], "coarse_to_fine": [], "c2f_engine_only": []}
    ids: dict[str, list[list]] = {"full": [], "coarse_to_fine": []}
    for q, st in zip(queries, stages):
        t0 = time.perf_counter()
        hits = backend.search(name, "full", q, K, with_payload=False)
        t1 = time.perf_counter()
        c2f = col.search(q, k=K, candidates=candidates, with_payload=False)
        t2 = time.perf_counter()
        backend.search_stages(name, st, with_payload=False)
        t3 = time.perf_counter()
        seconds["full"].append(t1 - t0)
        seconds["coarse_to_fine"].append(t2 - t1)
        seconds["c2f_engine_only"].append(t3 - t2)
        ids["full"].append([h.id for h in hits])
        ids["coarse_to_fine"].append([h.id for h in c2f])
    return {"stats": {k: latency_stats(v) for k, v in seconds.items()}, "ids": ids}


def measure_target(col: SmecCollection, queries: np.ndarray, exact: np.ndarray, ladder: Sequence[int],
                   label: str) -> dict[str, Any]:
    """Climb the candidates ladder until coarse-to-fine reaches recall@10 >= 0.99; time both searches."""
    tried = []
    for c in ladder:
        timed = _time_queries(col, queries, c)
        stats, ids = timed["stats"], timed["ids"]
        step = {"candidates": c, "queries": len(queries),
                "full": {**stats["full"], "recall_at_10": round(recall(ids["full"], exact), 4)},
                "coarse_to_fine": {**stats["coarse_to_fine"], "recall_at_10": round(recall(ids["coarse_to_fine"], exact), 4)},
                "c2f_engine_only": stats["c2f_engine_only"]}
        step["latency_ratio"] = round(stats["coarse_to_fine"]["median_ms"] / stats["full"]["median_ms"], 3)
        step["engine_only_ratio"] = round(stats["c2f_engine_only"]["median_ms"] / stats["full"]["median_ms"], 3)
        tried.append(step)
        print(f"    {label}: candidates {c:5d}  full {stats['full']['median_ms']:.2f} ms (r {step['full']['recall_at_10']:.3f})"
              f"  c2f {stats['coarse_to_fine']['median_ms']:.2f} ms (r {step['coarse_to_fine']['recall_at_10']:.3f})"
              f"  engine part {stats['c2f_engine_only']['median_ms']:.2f} ms", flush=True)
        if step["coarse_to_fine"]["recall_at_10"] >= RECALL_TARGET:
            break
    chosen = tried[-1]
    return {**chosen, "reached_recall": chosen["coarse_to_fine"]["recall_at_10"] >= RECALL_TARGET,
            "meets_target": chosen["coarse_to_fine"]["recall_at_10"] >= RECALL_TARGET
            and chosen["latency_ratio"] <= SEARCH_TARGET, "ladder": tried}


def build_collection(target: str, root: Path, comp: SMECCompressor, dims: Sequence[int], corpus: np.ndarray,
                     index: IndexParams) -> tuple[Any, SmecCollection, float]:
    backend = _open(target, root)
    col = SmecCollection.create(backend, "bench", comp, dims=dims, keep_full=True, index=index)
    t0 = time.perf_counter()
    for start in range(0, len(corpus), 2048):
        stop = min(start + 2048, len(corpus))
        col.upsert(list(range(start, stop)), corpus[start:stop])
    return backend, col, time.perf_counter() - t0


def candidate_ladder(simulated: dict[int, float]) -> list[int]:
    """From the first simulated candidates value reaching the target (exact coarse stage) upwards."""
    values = sorted(simulated)
    start = next((c for c in values if simulated[c] >= RECALL_TARGET), values[-1])
    return [c for c in values if c >= start]


def bench_search_set(label: str, corpus: np.ndarray, queries: np.ndarray, comp: SMECCompressor,
                     dims: Sequence[int], targets: Sequence[str], workdir: Path) -> dict[str, Any]:
    exact = exact_topk(corpus, queries, K)
    ladder = [50, 100, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200]
    simulated = simulated_candidates(comp, corpus, queries, dims, exact, ladder)
    ladder = candidate_ladder(simulated)
    result: dict[str, Any] = {
        "points": len(corpus), "queries": len(queries), "dim": corpus.shape[1], "stored": ["full", *map(str, dims)],
        "default_candidates": default_candidates(K, corpus.shape[1], min(dims)),
        "simulated_recall_exact_stages": {str(c): round(r, 4) for c, r in simulated.items()},
        "layouts": layout_bytes(corpus.shape[1], comp.dims), "targets": {}}
    print(f"  {label}: {len(corpus)} x {corpus.shape[1]}, ladder {ladder}", flush=True)
    hnsw = IndexParams(kind="hnsw", m=16, ef_construct=128, ef_search=128)
    for target in targets:
        root = workdir / f"search-{label}-{target}"
        index = IndexParams() if target == "qdrant-local" else hnsw
        backend, col, load_s = build_collection(target, root, comp, dims, corpus, index)
        try:
            if target == "qdrant-edge":
                # Edge builds HNSW only in optimize(): before it the segments are scanned exactly (flat).
                result["targets"]["qdrant-edge (flat)"] = {"load_s": round(load_s, 2),
                                                         **measure_target(col, queries, exact, ladder, "edge flat")}
                t0 = time.perf_counter()
                backend.optimize("bench")
                build = time.perf_counter() - t0
                name = "qdrant-edge (hnsw)"
                result["targets"][name] = {"load_s": round(load_s, 2), "index_build_s": round(build, 2),
                                           **measure_target(col, queries, exact, ladder, "edge hnsw")}
            else:
                name = {"milvus-lite": "milvus-lite (hnsw)", "qdrant-local": "qdrant-local (flat, :memory:)"}[target]
                # qdrant-client local mode scans in Python (~0.1 s per query at 60k): time fewer queries.
                n = LOCAL_QUERIES if target == "qdrant-local" else len(queries)
                result["targets"][name] = {"load_s": round(load_s, 2),
                                           **measure_target(col, queries[:n], exact[:n], ladder, target)}
        finally:
            backend.close()
        if root.exists():
            result["targets"][name]["disk_bytes_per_point"] = round(dir_bytes(root) / len(corpus), 1)
            shutil.rmtree(root, ignore_errors=True)
    return result


def bench_search(sizes: Sizes, debian: np.ndarray, workdir: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(debian))
    held_out, rest = order[:1000], order[1000:]
    if sizes.real_points is not None:
        rest = rest[: sizes.real_points]
    corpus = unit(debian[np.sort(rest)])
    queries = unit(debian[held_out[: sizes.queries]])
    comp = SMECCompressor.from_pca(torch.from_numpy(corpus[:20_000]), MIGRATE_DIMS).eval()
    real = bench_search_set("debian-minilm", corpus, queries, comp, MIGRATE_STORED,
                            ("qdrant-edge", "qdrant-local", "milvus-lite"), workdir)
    real["compressor"] = "SMEC 384->192->96, PCA-initialised (untrained), fitted on 20k corpus vectors"
    llm_all = clustered(sizes.llm_points + sizes.queries, sizes.llm_dim, seed=1)
    llm_corpus, llm_queries = llm_all[: sizes.llm_points], llm_all[sizes.llm_points:]
    llm_comp = SMECCompressor.from_pca(torch.from_numpy(llm_corpus[:10_000]), (512, 128)).eval()
    llm = bench_search_set("synthetic-3584", llm_corpus, llm_queries, llm_comp, (512, 128),
                           ("qdrant-edge", "milvus-lite"), workdir)
    llm["compressor"] = f"SMEC {sizes.llm_dim}->512->128, PCA-initialised (untrained), fitted on 10k corpus vectors"
    return {"k": K, "recall_target": RECALL_TARGET, "target_ratio": SEARCH_TARGET,
            "sets": {"debian-minilm": real, "synthetic-3584": llm}}


# -- 4. training cost ----------------------------------------------------------------------------
def bench_train(sizes: Sizes, debian: np.ndarray) -> dict[str, Any]:
    rows = []
    config = TrainConfig(epochs=sizes.train_epochs, patience=sizes.train_epochs, seed=0, device="cpu")
    runs = [(n, 384, (192, 96)) for n in sizes.train_sizes] + [(sizes.train_llm_points, 3584, (512, 128))]
    for n, dim, dims in runs:
        if dim == 384 and n <= len(debian):
            x, source = unit(debian[:n]), "debian-packages MiniLM"
        elif dim == 384:
            x, source = np.concatenate([unit(debian), clustered(n - len(debian), 384, seed=2)]), "debian + synthetic"
        else:
            x, source = clustered(n, dim, seed=3), "synthetic clustered"
        t0 = time.perf_counter()
        comp = train(x, list(dims), method="smec", config=config)
        total = time.perf_counter() - t0
        stages = comp.training_info["stages"]
        rows.append({"vectors": n, "dim": dim, "dims": list(dims), "source": source, "total_s": round(total, 2),
                     "stages": [{"dim": s["dim"], "epochs": s["epochs"], "seconds": round(s["seconds"], 2),
                                 "s_per_epoch": round(s["seconds"] / max(1, s["epochs"]), 2)} for s in stages],
                     "outside_stages_s": round(total - sum(s["seconds"] for s in stages), 2)})
        print(f"  train {n} x {dim}: {total:.1f} s", flush=True)
    return {"config": config.to_dict(), "rows": rows}


# -- report --------------------------------------------------------------------------------------
def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    out = ["# Performance benchmark (issue 7)\n",
           f"Command: `{results['command']}`  \nMachine: {results['machine']}  \n"
           f"Load average at start / end: {results['load_average_start']} / {results.get('load_average_end')}  \n"
           f"Wall: {results.get('wall_s')} s. Ratios are measured within this run (shared, noisy machine).\n"]
    enc = results.get("encode")
    if enc:
        out.append(f"## 1. Encode (vectors/s; {enc['compressors']}; torch threads {enc['torch_threads']})\n")
        out.append(md_table(
            ["shape", "batch", "SMEC encode", "torch GEMM", "numpy GEMM", "GEMM GFLOP/s", "ratio vs torch", f">= {ENCODE_TARGET}"],
            [[r["shape"], r["batch"], f"{r['smec_vps']:,.0f}", f"{r['torch_gemm_vps']:,.0f}", f"{r['numpy_gemm_vps']:,.0f}",
              r["torch_gemm_gflops"], r["ratio_vs_torch"], "yes" if r["meets_target"] else "**no**"] for r in enc["rows"]]))
        for name, prof in enc["batch1_profile"].items():
            out.append(f"\nProfile of encode at {name} (own time per call):\n```\n" + "\n".join(prof) + "\n```")
    mig = results.get("migrate")
    if mig:
        out.append(f"\n## 2. Migrate ({mig['points']:,} x {mig['width']}-d, batch {mig['batch_size']}, "
                   f"{mig['compressor']}, stored {mig['stored']})\n")
        rows = []
        for eng, r in mig["engines"].items():
            s = r["migrate"]["seconds"]
            rows.append([eng, f"{r['raw_copy']['points_per_s']:,.0f}", f"{r['migrate']['points_per_s']:,.0f}", r["ratio"],
                         "yes" if r["meets_target"] else "**no**", s.get("read"), s.get("encode"), s.get("write"),
                         round(r["migrate"]["copy_wall_s"] - s.get("read", 0) - s.get("encode", 0) - s.get("write", 0), 3),
                         s.get("verify"), f"{r['raw_copy']['before']['read']} / {r['raw_copy']['before']['write']}",
                         r["migrate"]["recall_at_10"]])
        out.append(md_table(["engine", "raw copy pts/s", "migrate pts/s", "ratio", f">= {MIGRATE_TARGET}", "read s",
                             "encode s", "write s", "checkpoint+other s", "verify s", "raw read / write s", "verify recall@10"],
                            rows))
    srch = results.get("search")
    if srch:
        out.append(f"\n## 3. Search (k={srch['k']}, coarse-to-fine at recall@10 >= {srch['recall_target']} vs exact full-dim)\n")
        for label, s in srch["sets"].items():
            out.append(f"\n### {label}: {s['points']:,} points x {s['dim']}-d, {s['queries']} queries; stored "
                       f"{' + '.join(s['stored'])}; {s['compressor']}\n")
            rows = []
            for t, r in s["targets"].items():
                f, c = r["full"], r["coarse_to_fine"]
                rows.append([t, r["candidates"], f["median_ms"], f["p99_ms"], f["qps"], f["recall_at_10"], c["median_ms"],
                             c["p99_ms"], c["qps"], c["recall_at_10"], r["c2f_engine_only"]["median_ms"], r["latency_ratio"],
                             "yes" if r["meets_target"] else "**no**", r.get("index_build_s", "-"),
                             r.get("disk_bytes_per_point", "-")])
            out.append(md_table(["target", "candidates", "full med ms", "full p99", "full QPS", "full R@10",
                                 "c2f med ms", "c2f p99", "c2f QPS", "c2f R@10", "c2f engine part med ms", "c2f/full", f"<= {SEARCH_TARGET}",
                                 "index build s", "disk B/pt"], rows))
            out.append(f"\nSimulated recall@10 with exact stages (numpy), by candidates: {s['simulated_recall_exact_stages']}; "
                       f"library default candidates: {s['default_candidates']}.\n")
            out.append(md_table(["layout", "vector bytes/point", "vs full only"],
                                [[row["layout"], row["vector_bytes_per_point"], row["vs_full_only"]] for row in s["layouts"]]))
    tr = results.get("train")
    if tr:
        out.append(f"\n## 4. Training cost (SMEC, {tr['config']['epochs']} epochs per stage, batch "
                   f"{tr['config']['batch_size']}, S-XBM {tr['config']['memory_size']})\n")
        out.append(md_table(["vectors", "dim", "schedule", "source", "total s", "per stage: s (s/epoch)", "outside stages s"],
                            [[f"{r['vectors']:,}", r["dim"], "->".join(map(str, [r["dim"], *r["dims"]])), r["source"],
                              r["total_s"], "; ".join(f"{s['dim']}: {s['seconds']} ({s['s_per_epoch']})" for s in r["stages"]),
                              r["outside_stages_s"]] for r in tr["rows"]]))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: .venv/bin/python benchmarks/perf.py --quick --sections encode,train")
    parser.add_argument("--quick", action="store_true", help="small sizes: a ~2 minute smoke run")
    parser.add_argument("--sections", default="encode,migrate,search,train", help="comma-separated subset to run")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); 1 gives steadier figures on an oversubscribed machine")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where perf.json/perf.md go")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - {"encode", "migrate", "search", "train"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "benchmarks/perf.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick, "sizes": sizes.__dict__,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"numpy {np.__version__}, Python {platform.python_version()}",
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
    }
    debian = load_debian() if {"migrate", "search", "train"} & set(sections) else np.empty((0, 384), np.float32)
    with tempfile.TemporaryDirectory(prefix="smec-perf-") as tmp:
        workdir = Path(tmp)
        for section in sections:
            print(f"== {section}", flush=True)
            t0 = time.perf_counter()
            if section == "encode":
                results["encode"] = bench_encode(sizes)
            elif section == "migrate":
                results["migrate"] = bench_migrate(sizes, unit(debian), workdir)
            elif section == "search":
                results["search"] = bench_search(sizes, debian, workdir)
            else:
                results["train"] = bench_train(sizes, debian)
            results.setdefault("section_seconds", {})[section] = round(time.perf_counter() - t0, 1)
    results["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "perf-quick" if args.quick else "perf"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    report = render(results)
    (args.out / f"{stem}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
