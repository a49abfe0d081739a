"""Layouts side by side with the engine's own quantization, in one engine (qdrant-edge) and one run.

Issue 13. Per dataset (debian MiniLM 384-d, SciFact mpnet 768-d, a synthetic 3584-d set) it builds:

- ``full-hnsw``: the full vector with an HNSW graph, all in RAM (what a user runs today), over an ef grid;
- ``native``: the full vector quantized by the engine (int8, binary, TurboQuant), codes + graph in RAM,
  floats on disk, rescoring over an oversampling grid;
- ``smec``: tiered layouts (SMEC coarse code + graph in RAM, full vector graph-less on disk) over a
  candidate grid;
- ``smec+q``: the same with the coarse code quantized (no engine rescore: the full vector re-scores).

Each variant is measured in a fresh process pinned to one CPU: RSS after load and after the
queries, recall@10 vs exact full-dim search (and nDCG@10 on SciFact), p50/p99 latency, QPS. RAM
bytes/point come from the layout model (:func:`smec_vdb.layout.footprint`), disk bytes/point from the
blocks the shard occupies. Milvus Lite's equivalents run on a small debian subset.

    .venv/bin/python benchmarks/layouts.py            # full run (~20 min on 2 cores)
    .venv/bin/python benchmarks/layouts.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from perf import clustered, exact_topk, latency_stats, load_debian, md_table, recall  # noqa: E402

from smec_vdb.backend import Batch, CollectionSchema, IndexParams, Resolution, SearchStage  # noqa: E402
from smec_vdb.layout import LAYOUTS, Layout, Quantization, VectorLayout, footprint, parse_layout  # noqa: E402

K = 10
PASSES = 2
INDEX = IndexParams(kind="hnsw", m=16, ef_construct=100, ef_search=64)  # ef_construct: Qdrant's default


@dataclass(frozen=True)
class Grid:
    """Search-time settings swept per variant family."""

    ef: tuple[int, ...] = (64, 128, 256, 512)
    oversampling: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    native_ef: int = 256
    candidates: tuple[int, ...] = (20, 40, 80, 160, 320)
    native: tuple[str, ...] = ("int8", "binary1", "binary2:q8", "turbo2", "turbo4")
    stacked: tuple[str, ...] = ("int8", "binary2:q8", "turbo4")


@dataclass
class DataSet:
    name: str
    corpus: np.ndarray
    queries: np.ndarray
    coarse_dims: tuple[int, ...]        # SMEC tiered variants, one per coarse width
    stacked_dim: int                    # coarse width that gets quantized
    train_rows: int
    train_epochs: int
    note: str
    qrels: dict[str, dict[str, float]] | None = None
    query_ids: list[str] = field(default_factory=list)
    corpus_ids: list[str] = field(default_factory=list)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def load_sets(quick: bool) -> list[DataSet]:
    from smec_vdb.eval.beir import load_beir

    rng = np.random.default_rng(0)
    debian = unit(load_debian())
    held = rng.choice(len(debian), 200 if quick else 1000, replace=False)
    keep = np.setdiff1d(np.arange(len(debian)), held)
    if quick:
        keep = keep[:12_000]
    sets = [DataSet("debian-minilm-384", debian[keep], debian[held], (64, 128), 128, 10_000, 2 if quick else 4,
                    f"{len(keep):,} real Debian package MiniLM vectors; {len(held):,} held-out vectors as queries")]
    sci = load_beir("scifact", "all-mpnet-base-v2")
    qids, queries = sci.split_queries("test")
    sets.append(DataSet("scifact-mpnet-768", unit(sci.corpus), unit(queries), (128,), 128, len(sci.corpus),
                        2 if quick else 4, "SciFact corpus (5,183 docs), 300 test queries with qrels",
                        qrels=sci.split_qrels("test"), query_ids=qids, corpus_ids=sci.corpus_ids))
    n = 3_000 if quick else 10_000
    llm = clustered(n + 200, 3584, seed=7)
    sets.append(DataSet("synthetic-3584", llm[:n], llm[n:], (128, 256), 256, 3_000, 1,
                        f"SYNTHETIC: {n:,} clustered 3584-d vectors (256-d latent, power-law spectrum) + 200 queries"))
    return sets


# -- variants ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    family: str                       # full-hnsw | native | smec | smec+q
    name: str
    layout: Layout | None             # None = engine defaults (all in RAM)
    coarse_dim: int | None = None     # SMEC only


def native_layout(spec: str) -> Layout:
    from smec_vdb.layout import parse_quantization

    q = parse_quantization(spec, rescore=True, oversampling=1.0)
    return Layout(coarse=VectorLayout(graph=True, tier="disk", quantization=q), name=f"native-{q.label}")


def variants(ds: DataSet, grid: Grid) -> list[Variant]:
    out = [Variant("full-hnsw", "full-hnsw", None)]
    out += [Variant("native", f"native-{native_layout(s).coarse.quantization.label}", native_layout(s)) for s in grid.native]
    out += [Variant("smec", f"smec-d{d}-tiered", LAYOUTS["tiered"], d) for d in ds.coarse_dims]
    for spec in grid.stacked:
        layout = parse_layout("tiered", quantize=spec)
        out.append(Variant("smec+q", f"smec-d{ds.stacked_dim}-{layout.coarse.quantization.label}", layout, ds.stacked_dim))
    return out


def searches(v: Variant, grid: Grid) -> list[dict[str, Any]]:
    if v.family == "full-hnsw":
        return [{"ef": ef} for ef in grid.ef]
    if v.family == "native":
        return [{"ef": grid.native_ef, "oversampling": o} for o in grid.oversampling]
    return [{"candidates": c} for c in grid.candidates]


def build(v: Variant, ds: DataSet, store: Path, compressor_dir: Path | None) -> dict[str, Any]:
    """Create, load and optimise one variant's shard; returns timings."""
    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
    from smec_vdb.collection import SmecCollection
    from smec_vdb.compress.artifact import load as load_compressor

    shutil.rmtree(store, ignore_errors=True)
    backend = QdrantEdgeBackend(store)
    start = time.perf_counter()
    ids = list(range(len(ds.corpus)))
    if v.family in ("smec", "smec+q"):
        col = SmecCollection.create(backend, "c", load_compressor(compressor_dir), dims=[v.coarse_dim], index=INDEX,
                                    layout=v.layout, compressor_path=compressor_dir)
        for s in range(0, len(ids), 4096):
            col.upsert(ids[s:s + 4096], ds.corpus[s:s + 4096])
    else:
        backend.create_collection("c", CollectionSchema((Resolution("full", ds.corpus.shape[1]),), index=INDEX, layout=v.layout))
        for s in range(0, len(ids), 4096):
            backend.upsert("c", Batch(ids=ids[s:s + 4096], vectors={"full": ds.corpus[s:s + 4096]}))
    loaded = time.perf_counter()
    backend.optimize("c")
    backend.close()
    # qdrant-edge replays its whole WAL on load (measured: +50 MB file-backed and +18 MB heap RSS for
    # 20k x (384 + 128)); measure the store as it is once the WAL is truncated after a flush.
    shutil.rmtree(store / "c" / "shard" / "wal")
    done = time.perf_counter()
    return {"load_s": round(loaded - start, 2), "optimize_s": round(done - loaded, 2), "build_s": round(done - start, 2)}


# -- measurement in a fresh process --------------------------------------------------------------
def rss() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def warm_up_engine(dim: int, compressor: Any) -> None:
    """Page in qdrant-edge's (and the compressor's) code on a scratch shard, so RSS deltas are data."""
    import tempfile

    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend

    with tempfile.TemporaryDirectory() as scratch:
        backend = QdrantEdgeBackend(scratch)
        x = np.eye(16, dim, dtype=np.float32) + 0.01
        backend.create_collection("w", CollectionSchema((Resolution("full", dim),), layout=parse_layout("tiered", quantize="int8")))
        backend.upsert("w", Batch(ids=list(range(16)), vectors={"full": x}))
        backend.search_stages("w", [SearchStage("full", x[0], 4)], with_payload=False)
        backend.close()
    if compressor is not None:
        compressor.encode_many(x[:1], [compressor.input_dim, *compressor.dims])


def measure(spec_path: Path) -> None:
    """Child process: open one store, time every search setting, print JSON (ids and latencies)."""
    spec = json.loads(spec_path.read_text())
    os.sched_setaffinity(0, {spec["cpu"]})
    import torch

    torch.set_num_threads(1)
    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
    from smec_vdb.collection import SmecCollection
    from smec_vdb.compress.artifact import load as load_compressor

    queries = np.load(spec["queries"])
    compressor = load_compressor(spec["compressor"]) if spec["compressor"] else None
    warm_up_engine(queries.shape[1], compressor)
    before = rss()  # the engine's code and the compressor are resident: what follows is the store
    backend = QdrantEdgeBackend(spec["store"])
    backend.count("c")  # opens the shard
    col = SmecCollection.open(backend, "c", compressor) if compressor is not None else None
    after_load = rss()
    results = []
    for setting in spec["searches"]:
        passes = []
        for _ in range(PASSES):  # the machine is shared: keep the pass least disturbed by other jobs
            seconds, ids = [], []
            for q in queries:
                t = time.perf_counter()
                if col is not None:
                    hits = col.search(q, k=K, candidates=setting["candidates"], with_payload=False)
                else:
                    stage = SearchStage("full", q, K, ef=setting.get("ef"), oversampling=setting.get("oversampling"))
                    hits = backend.search_stages("c", [stage], with_payload=False)
                seconds.append(time.perf_counter() - t)
                ids.append([int(h.id) for h in hits])
            passes.append((float(np.median(seconds)), seconds, ids))
        _, seconds, ids = min(passes, key=lambda p: p[0])
        results.append({"setting": setting, "ids": ids, "seconds": seconds})
    after_queries = rss()
    backend.close()
    print(json.dumps({"rss_before": before, "rss_after_load": after_load, "rss_after_queries": after_queries,
                      "results": results}))


def run_child(store: Path, queries_path: Path, searches_: list[dict[str, Any]], compressor: Path | None,
              workdir: Path) -> dict[str, Any]:
    spec = workdir / "spec.json"
    spec.write_text(json.dumps({"store": str(store), "queries": str(queries_path), "searches": searches_,
                                "compressor": str(compressor) if compressor else None, "cpu": os.cpu_count() - 1}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--measure", str(spec)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"measurement of {store} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ndcg(ds: DataSet, ids: list[list[int]]) -> float | None:
    if ds.qrels is None:
        return None
    from smec_vdb.eval.metrics import evaluate

    run = {qid: {ds.corpus_ids[i]: float(K - r) for r, i in enumerate(row)} for qid, row in zip(ds.query_ids, ids)}
    return round(evaluate(run, ds.qrels, ndcg_at=(K,), recall_at=(K,))[f"ndcg@{K}"], 4)


def segment_bytes(store: Path) -> int:
    """Blocks the shard's segments occupy (chunk files are sparse; the WAL is excluded)."""
    return sum(p.stat().st_blocks * 512 for p in (store / "c" / "shard" / "segments").rglob("*") if p.is_file())


def bench_set(ds: DataSet, grid: Grid, workdir: Path) -> dict[str, Any]:
    from smec_vdb.compress.artifact import save
    from smec_vdb.train import TrainConfig, train

    work = workdir / ds.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    queries_path = work / "queries.npy"
    np.save(queries_path, ds.queries)
    exact = exact_topk(ds.corpus, ds.queries, K)
    rng = np.random.default_rng(1)
    sample = ds.corpus[rng.choice(len(ds.corpus), min(ds.train_rows, len(ds.corpus)), replace=False)]
    t = time.perf_counter()
    dims = sorted({*ds.coarse_dims, ds.stacked_dim}, reverse=True)
    comp = train(sample, dims, config=TrainConfig(epochs=ds.train_epochs, patience=1, seed=0))
    train_s = time.perf_counter() - t
    compressor_dir = save(comp, work / "compressor")
    n, dim = ds.corpus.shape
    rows = []
    for v in variants(ds, grid):
        store = work / v.name
        print(f"[{ds.name}] build {v.name}", flush=True)
        timing = build(v, ds, store, compressor_dir)
        child = run_child(store, queries_path, searches(v, grid), compressor_dir if v.coarse_dim else None, work)
        widths = {"full": dim, **({f"d{v.coarse_dim}": v.coarse_dim} if v.coarse_dim else {})}
        model = footprint(v.layout or LAYOUTS["all-ram"], widths, m=INDEX.m)
        disk = segment_bytes(store) / n
        base = child["rss_before"]
        for r in child["results"]:
            stats = latency_stats(r["seconds"])
            rows.append({
                "dataset": ds.name, "family": v.family, "variant": v.name, "setting": r["setting"],
                "layout": None if v.layout is None else v.layout.to_json(),
                "ram_model_B": round(model.ram, 1), "disk_model_B": round(model.disk, 1),
                "ram_rss_load_B": round((child["rss_after_load"]["VmRSS"] - base["VmRSS"]) / n, 1),
                "anon_rss_load_B": round((child["rss_after_load"]["RssAnon"] - base["RssAnon"]) / n, 1),
                "ram_rss_queries_B": round((child["rss_after_queries"]["VmRSS"] - base["VmRSS"]) / n, 1),
                "anon_rss_queries_B": round((child["rss_after_queries"]["RssAnon"] - base["RssAnon"]) / n, 1),
                "disk_B": round(disk, 1), **timing,
                "recall@10": round(recall(r["ids"], exact), 4), "ndcg@10": ndcg(ds, r["ids"]),
                "p50_ms": stats["median_ms"], "p99_ms": stats["p99_ms"], "qps": stats["qps"],
            })
            print(f"  {v.name} {r['setting']} recall={rows[-1]['recall@10']} p50={stats['median_ms']}ms "
                  f"ram={model.ram:.0f}B rss={rows[-1]['ram_rss_load_B']}B", flush=True)
        shutil.rmtree(store, ignore_errors=True)
    exact_ndcg = ndcg(ds, exact.tolist())
    return {"dataset": ds.name, "note": ds.note, "points": n, "dim": dim, "queries": len(ds.queries),
            "train_s": round(train_s, 1), "train_rows": len(sample), "train_epochs": ds.train_epochs,
            "exact_ndcg@10": exact_ndcg, "rows": rows}


# -- Milvus Lite (small) -------------------------------------------------------------------------
def bench_milvus(ds: DataSet, points: int, n_queries: int, workdir: Path, grid: Grid) -> dict[str, Any]:
    """Milvus Lite's supported equivalents on a subset: HNSW, HNSW_SQ (int8) on full, SMEC tiered
    (HNSW coarse + FLAT full) and SMEC + HNSW_SQ coarse. RAM from the layout model only (the Lite
    engine holds everything in its process; mmap is accepted but not honoured)."""
    from smec_vdb.adapters.milvus import MilvusBackend
    from smec_vdb.collection import SmecCollection
    from smec_vdb.compress.artifact import load as load_compressor

    corpus, queries = ds.corpus[:points], ds.queries[:n_queries]
    exact = exact_topk(corpus, queries, K)
    comp = load_compressor(workdir / ds.name / "compressor")
    root = workdir / "milvus"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    backend = MilvusBackend(str(root / "m.db"))
    rows, ids = [], list(range(points))
    native_q8 = Layout(coarse=VectorLayout(graph=True, tier="disk", quantization=Quantization("int8")), name="native-int8")
    specs = [("full-hnsw", None, None), ("native-int8 (HNSW_SQ)", native_q8, None),
             (f"smec-d{ds.stacked_dim}-tiered", LAYOUTS["tiered"], ds.stacked_dim),
             (f"smec-d{ds.stacked_dim}-int8 (HNSW_SQ)", parse_layout("tiered", quantize="int8"), ds.stacked_dim)]
    # The Milvus adapter takes ef from the collection's IndexParams, so each ef is its own collection.
    runs = [(name, layout, coarse, {"ef": ef}) for name, layout, coarse in specs[:2] for ef in (64, 256)]
    runs += [(name, layout, coarse, {"candidates": c}) for name, layout, coarse in specs[2:] for c in grid.candidates[:4]]
    built: dict[tuple[str, int], float] = {}
    for name, layout, coarse, setting in runs:
        ef = setting.get("ef", INDEX.ef_search)
        collection = f"v{specs.index((name, layout, coarse))}_{ef}"
        if (name, ef) not in built:
            t = time.perf_counter()
            index = IndexParams(kind="hnsw", m=INDEX.m, ef_construct=INDEX.ef_construct, ef_search=ef)
            if coarse is None:
                backend.create_collection(collection, CollectionSchema((Resolution("full", corpus.shape[1]),), index=index, layout=layout))
                backend.upsert(collection, Batch(ids=ids, vectors={"full": corpus}))
            else:
                SmecCollection.create(backend, collection, comp, dims=[coarse], index=index, layout=layout).upsert(ids, corpus)
            backend.count(collection)
            built[(name, ef)] = time.perf_counter() - t
        build_s = built[(name, ef)]
        col = SmecCollection(backend, collection, comp) if coarse is not None else None
        seconds, got = [], []
        for q in queries:
            t = time.perf_counter()
            if col is None:
                hits = backend.search_stages(collection, [SearchStage("full", q, K)], with_payload=False)
            else:
                hits = col.search(q, k=K, candidates=setting["candidates"], with_payload=False)
            seconds.append(time.perf_counter() - t)
            got.append([int(h.id) for h in hits])
        widths = {"full": corpus.shape[1], **({f"d{coarse}": coarse} if coarse else {})}
        model = footprint(layout or LAYOUTS["all-ram"], widths, m=INDEX.m)
        stats = latency_stats(seconds)
        rows.append({"variant": name, "setting": setting, "ram_model_B": round(model.ram, 1),
                     "build_s": round(build_s, 1), "recall@10": round(recall(got, exact), 4),
                     "p50_ms": stats["median_ms"], "p99_ms": stats["p99_ms"], "qps": stats["qps"]})
        print(f"  milvus {name} {setting} recall={rows[-1]['recall@10']} p50={stats['median_ms']}ms", flush=True)
    backend.close()
    shutil.rmtree(root, ignore_errors=True)
    return {"dataset": ds.name, "points": points, "queries": n_queries, "rows": rows}


# -- analysis ------------------------------------------------------------------------------------
def pareto(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows not dominated in (lower RAM model, higher recall@10)."""
    front = []
    for r in rows:
        if not any(o["ram_model_B"] <= r["ram_model_B"] and o["recall@10"] >= r["recall@10"]
                   and (o["ram_model_B"] < r["ram_model_B"] or o["recall@10"] > r["recall@10"]) for o in rows):
            front.append(r)
    return sorted(front, key=lambda r: r["ram_model_B"])


def best_at(rows: Sequence[dict[str, Any]], families: Sequence[str], min_recall: float = 0.99,
            max_p50: float | None = None) -> dict[str, Any] | None:
    ok = [r for r in rows if r["family"] in families and r["recall@10"] >= min_recall
          and (max_p50 is None or r["p50_ms"] <= max_p50)]
    return min(ok, key=lambda r: (r["ram_model_B"], r["p50_ms"])) if ok else None


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    full = [r for r in rows if r["family"] == "full-hnsw"]
    ref = best_at(full, ["full-hnsw"]) or max(full, key=lambda r: r["recall@10"])
    capped = [r for r in rows if r["p50_ms"] <= ref["p50_ms"]]
    front = pareto(capped)
    native = best_at(rows, ["native"])
    smec = best_at(rows, ["smec", "smec+q"], max_p50=native["p50_ms"] if native else None)
    smec_any = best_at(rows, ["smec", "smec+q"])
    return {
        "reference_full_hnsw": ref,
        "front_p50_capped": [f"{r['variant']} {r['setting']}" for r in front],
        "smec_on_capped_front": any(r["family"].startswith("smec") for r in front),
        "best_native_at_0.99": native, "best_smec_at_0.99_within_native_p50": smec, "best_smec_at_0.99": smec_any,
        "smec_over_native_ram": round(smec["ram_model_B"] / native["ram_model_B"], 3) if smec and native else None,
        "smec_ram_over_full_hnsw": round(smec_any["ram_model_B"] / ref["ram_model_B"], 3) if smec_any else None,
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"full-hnsw": "black", "native": "tab:orange", "smec": "tab:blue", "smec+q": "tab:green"}
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5))
    for ax, res in zip(np.atleast_1d(axes), results):
        for fam, colour in colours.items():
            rs = [r for r in res["rows"] if r["family"] == fam]
            ax.scatter([r["ram_model_B"] for r in rs], [r["recall@10"] for r in rs], c=colour, label=fam, s=18)
        front = pareto(res["rows"])
        ax.plot([r["ram_model_B"] for r in front], [r["recall@10"] for r in front], "--", c="grey", lw=0.8,
                label="front, any latency")
        ref = res["analysis"]["reference_full_hnsw"]
        capped = pareto([r for r in res["rows"] if r["p50_ms"] <= ref["p50_ms"]])
        ax.plot([r["ram_model_B"] for r in capped], [r["recall@10"] for r in capped], "-", c="red", lw=1.0,
                label=f"front, p50 <= {ref['p50_ms']:.2f} ms (full-dim HNSW)")
        for r in capped:
            ax.annotate(f"{r['variant']} {r['p50_ms']:.2f}ms", (r["ram_model_B"], r["recall@10"]), fontsize=6,
                        rotation=-20)
        ax.set_xscale("log")
        ax.set_xlabel("RAM bytes/point (layout model)")
        ax.set_ylabel("recall@10 vs exact full-dim (>= 0.95 shown)")
        ax.set_title(res["dataset"])
        ax.set_ylim(0.95, 1.002)  # rows below 0.95 are off the chart (all are in the tables)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("qdrant-edge: modelled RAM bytes/point vs recall@10 (fronts annotated with p50 latency, 1 core)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)


def render(report: dict[str, Any]) -> str:
    out = ["# Layouts vs native quantization (issue 13)\n",
           f"Command: `{report['command']}`  \nMachine: {report['machine']}  \nWall: {report['wall_s']} s\n",
           "RAM = layout model (float vectors in the RAM tier + quantized codes + HNSW links); RSS = measured in a "
           "fresh process pinned to one core, after load / after the queries, minus the process before opening the "
           "store (file-backed pages of memory-mapped storage count once touched). Disk = blocks of the segments.\n"]
    header = ["variant", "setting", "RAM B/pt", "RSS load", "RSS queries", "disk B/pt", "build s", "recall@10",
              "nDCG@10", "p50 ms", "p99 ms", "QPS"]
    for res in report["datasets"]:
        out.append(f"## {res['dataset']}\n\n{res['note']}; SMEC trained on {res['train_rows']:,} rows, "
                   f"{res['train_epochs']} epoch(s)/stage in {res['train_s']} s. Exact nDCG@10: {res['exact_ndcg@10']}\n")
        out.append(md_table(header, [[r["variant"], json.dumps(r["setting"]), r["ram_model_B"], r["ram_rss_load_B"],
                                      r["ram_rss_queries_B"], r["disk_B"], r["build_s"], r["recall@10"],
                                      r["ndcg@10"] if r["ndcg@10"] is not None else "-", r["p50_ms"], r["p99_ms"],
                                      r["qps"]] for r in res["rows"]]))
        a = res["analysis"]

        def brief(r: dict[str, Any] | None) -> str:
            return "none" if r is None else f"{r['variant']} {json.dumps(r['setting'])}: {r['ram_model_B']} B/pt, " \
                                            f"recall {r['recall@10']}, p50 {r['p50_ms']} ms"

        out.append(f"\n- full-dim HNSW reference: {brief(a['reference_full_hnsw'])}\n"
                   f"- Pareto front among p50 <= reference: {', '.join(a['front_p50_capped'])}\n"
                   f"- SMEC layout on that front: **{a['smec_on_capped_front']}**\n"
                   f"- best native at recall >= 0.99: {brief(a['best_native_at_0.99'])}\n"
                   f"- best SMEC at recall >= 0.99 within that p50: {brief(a['best_smec_at_0.99_within_native_p50'])}"
                   f" (RAM ratio to native: {a['smec_over_native_ram']})\n"
                   f"- best SMEC at recall >= 0.99 at any latency: {brief(a['best_smec_at_0.99'])} "
                   f"(RAM ratio to full-dim HNSW: {a['smec_ram_over_full_hnsw']})\n")
    if report.get("milvus"):
        m = report["milvus"]
        out.append(f"## milvus-lite ({m['dataset']}, first {m['points']:,} points, {m['queries']} queries)\n")
        out.append(md_table(["variant", "setting", "RAM B/pt (model)", "build s", "recall@10", "p50 ms", "p99 ms", "QPS"],
                            [[r["variant"], json.dumps(r["setting"]), r["ram_model_B"], r["build_s"], r["recall@10"],
                              r["p50_ms"], r["p99_ms"], r["qps"]] for r in m["rows"]]))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/smec_layouts"))
    parser.add_argument("--only", default=None, help="comma-separated dataset name prefixes")
    parser.add_argument("--no-milvus", action="store_true")
    parser.add_argument("--replot", type=Path, help="re-render markdown and PNG from a saved JSON report")
    parser.add_argument("--milvus-into", type=Path, help="rerun only the Milvus Lite part into this saved report "
                        "(reuses the debian compressor left in --workdir)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure)
        return 0
    if args.milvus_into:
        report = json.loads(args.milvus_into.read_text())
        debian = load_sets(args.quick)[0]
        report["milvus"] = bench_milvus(debian, 2_000 if args.quick else 10_000, 50 if args.quick else 200, args.workdir, Grid())
        args.milvus_into.write_text(json.dumps(report, indent=1, default=str))
        args.replot = args.milvus_into
    if args.replot:
        report = json.loads(args.replot.read_text())
        for res in report["datasets"]:
            res["analysis"] = analyse(res)
        args.replot.write_text(json.dumps(report, indent=1, default=str))
        args.replot.with_suffix(".md").write_text(render(report))
        plot(report["datasets"], args.replot.with_suffix(".png"))
        return 0
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    grid = Grid()
    if args.quick:
        grid = Grid(ef=(64, 128), oversampling=(1.0, 4.0), candidates=(40, 160), native=("int8", "turbo2"),
                    stacked=("int8",))
    sets = load_sets(args.quick)
    if args.only:
        sets = [s for s in sets if any(s.name.startswith(p) for p in args.only.split(","))]
    results = []
    for ds in sets:
        res = bench_set(ds, grid, args.workdir)
        res["analysis"] = analyse(res)
        results.append(res)
    milvus = None
    if not args.no_milvus and sets and sets[0].name.startswith("debian"):
        milvus = bench_milvus(sets[0], 2_000 if args.quick else 10_000, 50 if args.quick else 200, args.workdir, grid)
    suffix = "_quick" if args.quick else ""
    report = {"command": " ".join(["benchmarks/layouts.py", *(argv if argv is not None else sys.argv[1:])]),
              "machine": f"{platform.node()} {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} at start, "
                         f"{os.getloadavg()[0]:.1f} at end (a load above the core count means other jobs shared them)",
              "wall_s": round(time.perf_counter() - start, 1), "grid": grid.__dict__, "index": INDEX.__dict__,
              "datasets": results, "milvus": milvus}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"layouts{suffix}.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / f"layouts{suffix}.md").write_text(render(report))
    plot(results, args.out / f"layouts{suffix}.png")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
