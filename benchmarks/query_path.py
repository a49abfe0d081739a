"""Where a query's time goes, part by part, at 384, 768 and 3584-d (issue 23).

1. **encode**: the compressor's encode at batch 1 against a bare numpy matvec of the same shape, and at
   batch 4,096 against the numpy matmul (and torch's); the torch ``project`` path it replaced beside.
   Random SMEC weights (speed does not depend on them); shapes 384→128, 768→128, 3584→128, 3584→256.
2. **search**: one ``SmecCollection.search`` on qdrant-edge (and Milvus Lite on SciFact) split into
   - encode: the query's encode (validation, GEMV, normalisation),
   - collection: binding check and stage planning (the rest of ``search`` outside the backend),
   - adapter: ``search_stages`` outside the engine call (request building, result conversion),
   - engine: the client's own call (``EdgeShard.query``, ``MilvusClient.search``), of which
   - re-score: on qdrant-edge the engine time of the coarse-to-fine request minus that of the coarse
     stage alone (same limit); on Milvus the numpy re-score of the adapter (outside the engine).
   Collections: the ``migrate`` default layout (tiered: coarse d128 int8 codes + HNSW m=16,
   ef_construct=100 in RAM, full graph-less on disk) with a SMEC compressor trained on the corpus,
   searched with its calibrated candidate count (:mod:`smec_vdb.calibrate`).
3. **batch**: queries per second of ``search`` one by one and of ``search_many`` at batch 1 and 64.

Everything runs in this process, pinned to one core (BLAS and torch one thread); parts are medians
over the queries of a round, figures medians over rounds with their min–max.

    .venv/bin/python benchmarks/query_path.py            # all sets (~15 min on 2 shared cores)
    .venv/bin/python benchmarks/query_path.py --quick    # smoke run
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # one BLAS thread: set before numpy loads its BLAS
    os.environ.update({k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import DataSet, describe, load  # noqa: E402
from harness import (  # noqa: E402
    interleaved,
    machine,
    md_table,
    pin_one_core,
    spread,
    summary,
    train_compressor,
)

REPO = Path(__file__).resolve().parents[1]
K = 10
SHAPES = ((384, 128), (768, 128), (3584, 128), (3584, 256))
SEARCH_SETS = ("debian-minilm-384", "scifact-mpnet-768", "synthetic-3584")
AIM_OUTSIDE, AIM_MATVEC, AIM_MATMUL = 0.25, 2.0, 1.2


# -- 1. encode ------------------------------------------------------------------------------------
def random_smec(input_dim: int, dim: int, seed: int = 0) -> Any:
    import torch

    from smec_vdb.compress.smec import SMECCompressor

    gen = torch.Generator().manual_seed(seed)
    comp = SMECCompressor(input_dim, [dim])
    with torch.no_grad():
        for stage in comp.stages:
            stage.weight.copy_(torch.randn(stage.weight.shape, generator=gen) / stage.weight.shape[1] ** 0.5)
            stage.selector.logits.copy_(torch.randn(stage.selector.logits.shape, generator=gen))
    return comp.eval()


def encode_row(input_dim: int, dim: int, rounds: int, min_seconds: float, big: int) -> dict[str, Any]:
    """One shape: encode at batch 1 vs the bare matvec, encode_many at ``big`` rows vs the matmul, interleaved."""
    import torch

    rng = np.random.default_rng(0)
    comp = random_smec(input_dim, dim)
    m_rows = comp.numpy_encoder().maps[dim].matrix          # (dim, input_dim): the cached weights, M @ q
    matrix = np.ascontiguousarray(m_rows.T)                 # (input_dim, dim): q @ W
    q = rng.standard_normal(input_dim).astype(np.float32)
    x = rng.standard_normal((big, input_dim)).astype(np.float32)
    q1, tx, tm = q[None, :], torch.from_numpy(x), torch.from_numpy(matrix)
    encoder = comp.numpy_encoder()  # what a search encodes with (SmecCollection binds it)
    small = interleaved({"numpy q @ W": lambda: q1 @ matrix, "numpy M @ q": lambda: m_rows @ q,
                         "encode b1": lambda: encoder.encode_many(q1, [dim], normalize=False),
                         "encode b1 unit": lambda: encoder.encode_many(q1, [dim]),
                         "Compressor.encode_many b1": lambda: comp.encode_many(q1, [dim]),
                         "torch path b1": lambda: comp.encode_torch(q1, [dim])}, rounds, min_seconds)
    large = interleaved({"numpy X @ W": lambda: x @ matrix, "torch X @ W": lambda: tx @ tm,
                         "encode_many": lambda: comp.encode_many(x, [dim]),
                         "encode_many +full": lambda: comp.encode_many(x, [input_dim, dim]),
                         "torch path": lambda: comp.encode_torch(x, [dim])}, rounds, min_seconds)
    matvec = [min(a, b) for a, b in zip(small["numpy q @ W"], small["numpy M @ q"])]
    return {"shape": f"{input_dim}->{dim}", "matvec_us": summary(matvec),
            "encode_b1_us": summary(small["encode b1"]), "torch_path_b1_us": summary(small["torch path b1"]),
            "compressor_b1_us": summary(small["Compressor.encode_many b1"]),
            "encode_b1_unit_us": summary(small["encode b1 unit"]),
            "encode_over_matvec": round(float(np.median(np.divide(small["encode b1"], matvec))), 2),
            "matmul_ms": summary(large["numpy X @ W"], 1e3), "torch_matmul_ms": summary(large["torch X @ W"], 1e3),
            "encode_many_ms": summary(large["encode_many"], 1e3),
            "encode_many_full_ms": summary(large["encode_many +full"], 1e3),
            "torch_path_ms": summary(large["torch path"], 1e3),
            "encode_many_over_matmul": round(float(np.median(np.divide(large["encode_many"], large["numpy X @ W"]))), 2)}


def bench_encode(rounds: int, min_seconds: float, big: int) -> list[dict[str, Any]]:
    rows = []
    for input_dim, dim in SHAPES:
        row = encode_row(input_dim, dim, rounds, min_seconds, big)
        rows.append(row)
        print(f"encode {row['shape']}: b1 {row['encode_b1_us']['median']} µs vs matvec {row['matvec_us']['median']} µs "
              f"({row['encode_over_matvec']}x); b{big} {row['encode_many_ms']['median']} ms vs matmul "
              f"{row['matmul_ms']['median']} ms ({row['encode_many_over_matmul']}x)", flush=True)
    return rows


# -- 2. the parts of one search --------------------------------------------------------------------
class Clock:
    """Seconds spent in wrapped calls since the last :meth:`take`."""

    def __init__(self) -> None:
        self.spent = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start
        return timed

    def take(self) -> float:
        spent, self.spent = self.spent, 0.0
        return spent


class TimedShard:
    """An EdgeShard whose ``query`` is timed (everything else passes through)."""

    def __init__(self, shard: Any, clock: Clock) -> None:
        self._shard, self.query = shard, clock.wrap(shard.query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shard, name)


def build(target: str, root: Path, ds: DataSet, compressor: Path) -> tuple[Any, Any]:
    """(backend, collection) of ``ds`` in the migrate default layout on ``target``."""
    from smec_vdb.adapters import open_backend
    from smec_vdb.backend import IndexParams
    from smec_vdb.collection import SmecCollection
    from smec_vdb.compress.artifact import load as load_compressor
    from smec_vdb.layout import default_layout

    shutil.rmtree(root, ignore_errors=True)
    backend = open_backend("qdrant-edge", path=str(root)) if target == "qdrant-edge" else \
        open_backend("milvus", path=str(root / "m.db"))
    index = IndexParams(kind="hnsw", m=16, ef_construct=100, ef_search=64)
    comp = load_compressor(compressor)
    col = SmecCollection.create(backend, "c", comp, dims=[128], index=index, layout=default_layout(backend.target, "hnsw"),
                                compressor_path=compressor)
    for start in range(0, len(ds.corpus), 2048):
        col.upsert(list(range(start, min(len(ds.corpus), start + 2048))), ds.corpus[start:start + 2048])
    if target == "qdrant-edge":
        backend.optimize("c")
    return backend, col


def instrument(target: str, backend: Any, col: Any) -> dict[str, Clock]:
    """Clocks on the encode, the backend's search_stages, the engine call and (Milvus) the numpy re-score."""
    clocks = {name: Clock() for name in ("encode", "stages", "engine", "rescore")}
    encoder = col._binding.query_encoder  # what a search encodes with
    encoder.encode_many = clocks["encode"].wrap(encoder.encode_many)
    backend.search_stages = clocks["stages"].wrap(backend.search_stages)
    if target == "qdrant-edge":
        backend.count("c")  # opens the shard
        name = col.bound_to
        backend._shards[name] = TimedShard(backend._shards[name], clocks["engine"])
    else:
        import smec_vdb.adapters.milvus as milvus

        backend._client.search = clocks["engine"].wrap(backend._client.search)
        milvus.rescore = clocks["rescore"].wrap(milvus.rescore)
    return clocks


def coarse_only_engine(target: str, backend: Any, col: Any, clocks: dict[str, Clock], q: np.ndarray,
                       candidates: int) -> float:
    """Engine seconds of the coarse stage alone (same limit), for qdrant-edge's in-engine re-score."""
    from smec_vdb.backend import SearchStage

    coarse = col.resolutions[-1]
    vector = col._binding.query_encoder.encode_many(q[None, :], [coarse.dim], normalize=False)[coarse.dim][0]
    clocks["encode"].take()
    backend.search_stages(col.bound_to, [SearchStage(coarse.name, vector, candidates)], with_payload=False)
    clocks["stages"].take()
    return clocks["engine"].take()


def bench_search_parts(target: str, ds: DataSet, compressor: Path, workdir: Path, rounds: int) -> dict[str, Any]:
    from smec_vdb.calibrate import Reference, calibrate, store

    t0 = time.perf_counter()
    backend, col = build(target, workdir / f"{target}-{ds.name}", ds, compressor)
    built = time.perf_counter() - t0
    calibration = calibrate(col, Reference(backend, col.bound_to), queries=200)
    store(col, calibration)
    candidates = calibration.candidates or K
    clocks = instrument(target, backend, col)
    exact = ds.exact(K)
    per_round: dict[str, list[float]] = {p: [] for p in ("total", "encode", "collection", "adapter", "engine", "rescore")}
    recalls = []
    for _ in range(rounds):
        parts: dict[str, list[float]] = {p: [] for p in per_round}
        for qi, q in enumerate(ds.queries):
            for c in clocks.values():
                c.take()
            start = time.perf_counter()
            hits = col.search(q, K, with_payload=False)
            total = time.perf_counter() - start
            encode, stages, engine, rescore = (clocks[p].take() for p in ("encode", "stages", "engine", "rescore"))
            if target == "qdrant-edge":
                rescore = max(0.0, engine - coarse_only_engine(target, backend, col, clocks, q, candidates))
            parts["total"].append(total)
            parts["encode"].append(encode)
            parts["collection"].append(total - stages - encode)
            parts["adapter"].append(stages - engine)
            parts["engine"].append(engine)
            parts["rescore"].append(rescore)
            if len(recalls) < len(ds.queries):
                recalls.append(len({h.id for h in hits} & set(exact[qi].tolist())) / K)
        for p, values in parts.items():
            per_round[p].append(float(np.median(values)))
    batch = bench_batch(target, ds, col, rounds)
    outside = [t - e for t, e in zip(per_round["total"], per_round["engine"])]
    result = {"target": target, "set": ds.name, "dim": ds.dim, "points": len(ds.corpus), "queries": len(ds.queries),
              "candidates": candidates, "calibration": calibration.as_dict(), "build_s": round(built, 1),
              "recall@10": round(float(np.mean(recalls)), 4),
              **{f"{p}_us": summary(v) for p, v in per_round.items()},
              "outside_engine_us": summary(outside),
              "outside_over_engine": round(float(np.median(np.divide(outside, per_round["engine"]))), 3),
              "batch": batch}
    backend.close()
    print(f"search {target} {ds.name}: total {result['total_us']['median']} µs = encode {result['encode_us']['median']} "
          f"+ collection {result['collection_us']['median']} + adapter {result['adapter_us']['median']} + engine "
          f"{result['engine_us']['median']} (re-score {result['rescore_us']['median']}); outside/engine "
          f"{result['outside_over_engine']}", flush=True)
    return result


def bench_batch(target: str, ds: DataSet, col: Any, rounds: int) -> dict[str, Any]:
    """Queries per second over the whole query set: ``search`` one by one, ``search_many`` one query per call
    and 64 per call, interleaved; and whether the batched answers equal the single ones."""
    queries = ds.queries

    def single() -> None:
        for q in queries:
            col.search(q, K, with_payload=False)

    def many(batch: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, len(queries), batch):
                col.search_many(queries[start:start + batch], K, with_payload=False)
        return run

    seconds = interleaved({"search": single, "search_many b1": many(1), "search_many b64": many(64)}, rounds, 0.0)
    equal = all([h.id for h in a] == [h.id for h in col.search(q, K, with_payload=False)]
                for q, a in zip(queries, col.search_many(queries, K, with_payload=False)))
    qps = {name: [len(queries) / s for s in values] for name, values in seconds.items()}
    return {"single_qps": summary(qps["search"], 1), "many1_qps": summary(qps["search_many b1"], 1),
            "many64_qps": summary(qps["search_many b64"], 1), "equal": equal, "target": target, "set": ds.name}


# -- report ---------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(report: dict[str, Any]) -> str:
    out = ["# Query path: where a query's time goes (issue 23)\n",
           f"Command: `{report['command']}`  \nMachine: {report['machine']}  \nWall: {report['wall_s']} s  \n"
           "One process pinned to one core (BLAS, torch: one thread); figures are medians over rounds of the "
           "per-round median, with the min–max over rounds in brackets.\n",
           "## Encode\n"]
    enc = report["encode"]
    out.append(md_table(
        ["shape", "numpy matvec µs", "query encode b1 µs", "ratio (aim ≤ 2)", "+ normalised µs",
         "Compressor.encode_many b1 µs", "torch path b1 µs",
         f"numpy matmul b{report['big']} ms", "torch matmul ms", "encode_many ms", "ratio (aim ≤ 1.2)",
         "encode_many +full ms", "torch path ms"],
        [[r["shape"], spread(r["matvec_us"]), spread(r["encode_b1_us"]), r["encode_over_matvec"],
          spread(r["encode_b1_unit_us"]), spread(r["compressor_b1_us"]), spread(r["torch_path_b1_us"]), spread(r["matmul_ms"]), spread(r["torch_matmul_ms"]),
          spread(r["encode_many_ms"]), r["encode_many_over_matmul"], spread(r["encode_many_full_ms"]),
          spread(r["torch_path_ms"])] for r in enc]))
    worst_b1 = max(r["encode_over_matvec"] for r in enc)
    worst_big = max(r["encode_many_over_matmul"] for r in enc)
    out.append("\n*query encode* is what a search runs: the numpy encoder's GEMV and its squared norm as the finiteness "
               "check, not normalised (cosine engines normalise the query); *+ normalised* adds the scale, "
               "*Compressor.encode_many* the module's dispatch, *torch path* is `encode_torch` (the path before issue 23).\n")
    out.append(f"\n- encode at batch 1 ≤ 2× the numpy matvec: {verdict(worst_b1 <= AIM_MATVEC)} (worst {worst_b1}×)\n"
               f"- encode_many at batch {report['big']} ≤ 1.2× the numpy matmul: {verdict(worst_big <= AIM_MATMUL)} "
               f"(worst {worst_big}×; `+full` also returns the normalised input, which the write path stores)\n")
    out.append("## One search, part by part (µs)\n")
    rows = report["search"]
    out.append(md_table(
        ["target", "set", "points", "cand.", "recall@10", "total", "encode", "collection", "adapter", "engine",
         "of which re-score", "outside engine", "outside / engine"],
        [[r["target"], r["set"], f"{r['points']:,}", r["candidates"], r["recall@10"], spread(r["total_us"]),
          spread(r["encode_us"]), spread(r["collection_us"]), spread(r["adapter_us"]), spread(r["engine_us"]),
          spread(r["rescore_us"]), spread(r["outside_engine_us"]), r["outside_over_engine"]] for r in rows]))
    for dim in (768, 3584):
        edge = [r for r in rows if r["target"] == "qdrant-edge" and r["dim"] == dim]
        if edge:
            ratio = max(r["outside_over_engine"] for r in edge)
            out.append(f"\n- CPU time outside the engine ≤ 25% of the engine's at {dim}-d (qdrant-edge): "
                       f"{verdict(ratio <= AIM_OUTSIDE)} ({ratio:.0%})")
    out.append("\n\nSets (anisotropy and spectrum, `benchmarks/datasets.py`):\n")
    out.append(md_table(["set", "note", "mean pairwise cos", "var. top-128 PCs", "var. top-256 PCs", "effective rank",
                         "median NN cos"],
                        [[name, s["note"], s["mean_pairwise_cos"], s["var_top128"], s["var_top256"], s["effective_rank"],
                          s["nn_cos_median"]] for name, s in report["sets"].items()]))
    out.append("\n## Batched search (queries/s, whole query set per round)\n")
    out.append(md_table(["target", "set", "search one by one", "search_many batch 1", "search_many batch 64",
                         "same answers"],
                        [[r["target"], r["set"], spread(r["batch"]["single_qps"]), spread(r["batch"]["many1_qps"]),
                          spread(r["batch"]["many64_qps"]), r["batch"]["equal"]] for r in rows]))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/smec_query_path"))
    parser.add_argument("--only", default=None, help="comma-separated set name prefixes for the search part")
    args = parser.parse_args(argv)
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    pin_one_core()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rounds = 3 if args.quick else args.rounds
    big = 1024 if args.quick else 4096
    report: dict[str, Any] = {"command": " ".join(["benchmarks/query_path.py", *(argv or sys.argv[1:])]), "big": big,
                              "encode": bench_encode(rounds, 0.05 if args.quick else 0.2, big), "search": [], "sets": {}}
    sets = [s for s in SEARCH_SETS if not args.only or any(s.startswith(p) for p in args.only.split(","))]
    for name in sets:
        ds = load(name, quick=args.quick)
        report["sets"][name] = {"note": ds.note, **describe(ds.corpus)}
        compressor = train_compressor(ds, [256, 128] if ds.dim > 1000 else [128], args.workdir,
                                      rows=2_000 if args.quick else 10_000, epochs=1 if args.quick else 3)
        targets = ["qdrant-edge", "milvus-lite"] if name.startswith("scifact") else ["qdrant-edge"]
        for target in targets:
            report["search"].append(bench_search_parts(target, ds, compressor, args.workdir, rounds))
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["machine"] = machine(load_at_start)
    suffix = "_quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"query_path{suffix}.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / f"query_path{suffix}.md").write_text(render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
