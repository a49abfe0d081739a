"""SMEC layouts side by side with the engine's own quantization, each at its own best settings (issues 13, 23).

One engine (qdrant-edge, HNSW m=16, ef_construct=100), one process per set. Per set it builds one store
per variant, then times **every (variant, setting) interleaved in one process** over several rounds:

- ``full-hnsw``: the full vector and its graph in RAM (what a user runs today); knob: ef;
- ``native-<q>``: the full vector quantized by the engine (scalar int8, binary 1-bit, binary 2-bit with
  8-bit queries, TurboQuant 4-bit), codes + graph in RAM, floats on disk (``memory=Cold``), rescoring
  on the floats; knobs: ef x oversampling;
- ``smec-d<d>-<q>``: SMEC ``tiered`` (the d-dim code + its graph in RAM, the full vector graph-less on
  disk re-scoring the candidates exactly), the code as floats (``f32``) or quantized (int8, binary 2-bit
  q8, TurboQuant 4-bit, without engine rescoring); knobs: ef x candidates, per dim and quantization.
  Timed through ``SmecCollection.search`` (query encode included).

Every store's coarse stage walks its graph: the graph is built whatever the segment size (indexing
threshold 1 KB, ``adapters/qdrant_edge.py``) and searched whatever its size (``full_scan_threshold_kb=0``);
no plain-scan rows. Per row: modelled RAM/disk bytes per point (:func:`smec_vdb.layout.footprint`),
measured RSS of the store (this process, after opening it and after a first pass of its queries, minus
before), disk blocks of its segments, recall@10 against exact full-dim search, nDCG@10 where qrels exist,
p50 / p99 (per-query latencies of a round) and single-stream QPS: medians over rounds, with the min-max
of the p50 over rounds. The process runs pinned to one core (BLAS one thread); stores are built before.

    .venv/bin/python benchmarks/layouts.py                   # layouts.{json,md,png}
    .venv/bin/python benchmarks/layouts.py --quick           # layouts_quick.*: CI-sized smoke run
    .venv/bin/python benchmarks/layouts.py --only scifact --rounds 5
    .venv/bin/python benchmarks/layouts.py --replot benchmarks/results/layouts.json
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # one BLAS thread: set before numpy loads its BLAS
    os.environ.update({k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})

import argparse
import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import SETS, DataSet, describe, load  # noqa: E402
from harness import latency, machine, md_table, rss, train_compressor  # noqa: E402

from smec_vdb.backend import Batch, CollectionSchema, IndexParams, Resolution, SearchStage  # noqa: E402
from smec_vdb.layout import LAYOUTS, Layout, VectorLayout, footprint, parse_layout, parse_quantization  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
K = 10
MIN_RECALL = 0.99
#: every store's graph is searched, never a plain scan (module doc)
INDEX = IndexParams(kind="hnsw", m=16, ef_construct=100, ef_search=64, full_scan_threshold_kb=0)


@dataclass(frozen=True)
class Grid:
    """What is swept: variants per family and their search-time knobs."""

    full_ef: tuple[int, ...] = (32, 64, 128, 256)
    native: tuple[str, ...] = ("int8", "binary1", "binary2:q8", "turbo4")
    native_ef: tuple[int, ...] = (32, 64, 128, 256)
    oversampling: tuple[float, ...] = (1.0, 2.0, 4.0)
    smec_quant: tuple[str, ...] = ("none", "int8", "binary2:q8", "turbo4")
    smec_ef: tuple[int, ...] = (32, 64, 128, 256)
    candidates: tuple[int, ...] = (20, 40, 80, 160, 320)
    full_hnsw: bool = True

    def smec_settings(self) -> list[dict[str, int]]:
        """(candidates, ef) pairs with ef >= candidates (the engine raises a smaller ef to the limit);
        a count above every ef runs at ef = candidates."""
        out = []
        for c in self.candidates:
            efs = [ef for ef in self.smec_ef if ef >= c] or [c]
            out += [{"candidates": c, "ef": ef} for ef in efs]
        return out


QUICK = Grid(full_ef=(64,), native=("int8", "binary2:q8"), native_ef=(64,), oversampling=(1.0, 4.0),
             smec_quant=("none", "int8"), smec_ef=(64,), candidates=(40, 160))
#: SMEC widths per set (one store per width and quantization) and the compressor's training sample
SMEC_DIMS = {"debian-minilm-384": (128, 64), "scifact-mpnet-768": (256, 128), "nfcorpus-mpnet-768": (256, 128),
             "synthetic-3584": (256, 128)}
TRAIN = {"debian-minilm-384": (10_000, 3), "scifact-mpnet-768": (5_183, 3), "nfcorpus-mpnet-768": (3_633, 3),
         "synthetic-3584": (10_000, 3)}


@dataclass(frozen=True)
class Variant:
    family: str                       # full-hnsw | native | smec
    name: str
    layout: Layout | None             # None: engine defaults (everything in RAM)
    coarse_dim: int | None = None     # SMEC only
    settings: tuple[dict[str, Any], ...] = field(default=(), compare=False)


def native_layout(spec: str) -> Layout:
    q = parse_quantization(spec, rescore=True, oversampling=1.0)
    return Layout(coarse=VectorLayout(graph=True, tier="disk", quantization=q), name=f"native-{q.label}")


def variants(ds: DataSet, grid: Grid, dims: Sequence[int]) -> list[Variant]:
    out = []
    if grid.full_hnsw:
        out.append(Variant("full-hnsw", "full-hnsw", None, settings=tuple({"ef": ef} for ef in grid.full_ef)))
    for spec in grid.native:
        layout = native_layout(spec)
        out.append(Variant("native", layout.name, layout, settings=tuple(
            {"ef": ef, "oversampling": o} for ef in grid.native_ef for o in grid.oversampling)))
    for d in dims:
        for spec in grid.smec_quant:
            layout = parse_layout("tiered", quantize=None if spec == "none" else spec)
            label = "f32" if spec == "none" else layout.coarse.quantization.label
            out.append(Variant("smec", f"smec-d{d}-{label}", layout, d, tuple(grid.smec_settings())))
    return out


# -- stores -----------------------------------------------------------------------------------------
def build(v: Variant, ds: DataSet, store: Path, compressor_dir: Path) -> dict[str, float]:
    """Create, fill and optimise one variant's store (WAL removed: qdrant-edge replays it on load)."""
    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
    from smec_vdb.collection import SmecCollection, load_encoder

    shutil.rmtree(store, ignore_errors=True)
    backend = QdrantEdgeBackend(store)
    start = time.perf_counter()
    if v.family == "smec":
        col = SmecCollection.create(backend, "c", load_encoder(compressor_dir), dims=[v.coarse_dim], index=INDEX,
                                    layout=v.layout, compressor_path=compressor_dir)
        write = col.upsert
    else:
        backend.create_collection("c", CollectionSchema((Resolution("full", ds.dim),), index=INDEX, layout=v.layout))

        def write(ids: list[int], x: np.ndarray) -> None:
            backend.upsert("c", Batch(ids=ids, vectors={"full": x}))
    for s in range(0, len(ds.corpus), 4096):
        write(list(range(s, min(len(ds.corpus), s + 4096))), ds.corpus[s:s + 4096])
    loaded = time.perf_counter()
    backend.optimize("c")
    backend.close()
    shutil.rmtree(store / "c" / "shard" / "wal")
    return {"upsert_s": round(loaded - start, 1), "build_s": round(time.perf_counter() - start, 1)}


def segment_bytes(store: Path) -> int:
    """Blocks the store's segments occupy (chunk files are sparse; the WAL is gone)."""
    return sum(p.stat().st_blocks * 512 for p in (store / "c" / "shard" / "segments").rglob("*") if p.is_file())


class Opened:
    """One store opened in this process, and how it answers one setting."""

    def __init__(self, v: Variant, store: Path, compressor_dir: Path) -> None:
        from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
        from smec_vdb.collection import SmecCollection, load_encoder

        self.v = v
        self.backend = QdrantEdgeBackend(store)
        self.backend.count("c")  # opens the shard
        self.col = SmecCollection.open(self.backend, "c", load_encoder(compressor_dir)) if v.family == "smec" else None

    def runner(self, setting: dict[str, Any], queries: np.ndarray) -> Callable[[], tuple[list[float], list[list[int]]]]:
        col, backend = self.col, self.backend

        def one(q: np.ndarray) -> list[Any]:
            if col is not None:
                return col.search(q, K, candidates=setting["candidates"], ef=setting["ef"], with_payload=False)
            stage = SearchStage("full", q, K, ef=setting["ef"], oversampling=setting.get("oversampling"))
            return backend.search_stages("c", [stage], with_payload=False)

        def run() -> tuple[list[float], list[list[int]]]:
            seconds, ids = [], []
            for q in queries:
                t = time.perf_counter()
                hits = one(q)
                seconds.append(time.perf_counter() - t)
                ids.append([int(h.id) for h in hits])
            return seconds, ids
        return run


# -- metrics ----------------------------------------------------------------------------------------
def recall(ids: Sequence[Sequence[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(set(row) & set(e.tolist())) / K for row, e in zip(ids, exact)]))


def ndcg(ds: DataSet, ids: list[list[int]]) -> float | None:
    if ds.qrels is None:
        return None
    from smec_vdb.eval.metrics import evaluate

    run = {qid: {ds.corpus_ids[i]: float(K - r) for r, i in enumerate(row)} for qid, row in zip(ds.query_ids, ids)}
    return round(evaluate(run, ds.qrels, ndcg_at=(K,), recall_at=(K,))[f"ndcg@{K}"], 4)


# -- one set ----------------------------------------------------------------------------------------
def bench_set(ds: DataSet, grid: Grid, workdir: Path, compressors: Path, rounds: int, cpu: int) -> dict[str, Any]:
    dims = SMEC_DIMS[ds.name]
    rows_, epochs = TRAIN[ds.name]
    t = time.perf_counter()
    compressor_dir = train_compressor(ds, sorted(dims, reverse=True), compressors, rows=min(rows_, len(ds.corpus)),
                                      epochs=1 if len(ds.corpus) < 10_000 and grid == QUICK else epochs)
    trained = json.loads((compressor_dir / "trained_s.json").read_text())["seconds"] if \
        (compressor_dir / "trained_s.json").is_file() else round(time.perf_counter() - t, 1)
    exact = ds.exact(K)
    work = workdir / ds.name
    work.mkdir(parents=True, exist_ok=True)
    vs = variants(ds, grid, dims)
    builds = {}
    for v in vs:  # built unpinned (the engine's optimiser uses every core)
        print(f"[{ds.name}] build {v.name}", flush=True)
        builds[v.name] = build(v, ds, work / v.name, compressor_dir)
    os.sched_setaffinity(0, {cpu})
    opened, memory, runs = {}, {}, {}
    for v in vs:  # open one store at a time: its RSS is the difference; the first pass warms it up
        before = rss()
        opened[v.name] = Opened(v, work / v.name, compressor_dir)
        after_open = rss()
        for setting in v.settings:
            key = f"{v.name} {json.dumps(setting)}"
            runs[key] = (v, setting, opened[v.name].runner(setting, ds.queries))
            runs[key][2]()
        after_pass = rss()
        memory[v.name] = {"rss_open_B": (after_open["VmRSS"] - before["VmRSS"]) / len(ds.corpus),
                          "anon_open_B": (after_open["RssAnon"] - before["RssAnon"]) / len(ds.corpus),
                          "rss_queries_B": (after_pass["VmRSS"] - before["VmRSS"]) / len(ds.corpus)}
    print(f"[{ds.name}] {len(runs)} settings x {len(ds.queries)} queries x {rounds} rounds, interleaved", flush=True)
    rng = random.Random(0)
    timed: dict[str, list[dict[str, float]]] = {key: [] for key in runs}
    answers: dict[str, list[list[int]]] = {}
    keys = list(runs)
    for _ in range(rounds):
        rng.shuffle(keys)
        for key in keys:
            seconds, ids = runs[key][2]()
            timed[key].append(latency(seconds))
            answers.setdefault(key, ids)
    for o in opened.values():
        o.backend.close()
    n = len(ds.corpus)
    widths = {"full": ds.dim}
    rows = []
    for key, (v, setting, _) in runs.items():
        model = footprint(v.layout or LAYOUTS["all-ram"], {**widths, **({f"d{v.coarse_dim}": v.coarse_dim} if v.coarse_dim else {})},
                          m=INDEX.m)
        p50 = [r["p50_ms"] for r in timed[key]]
        rows.append({"family": v.family, "variant": v.name, "setting": setting, "ram_model_B": round(model.ram, 1),
                     "disk_model_B": round(model.disk, 1), **{k: round(x, 1) for k, x in memory[v.name].items()},
                     "disk_B": round(segment_bytes(work / v.name) / n, 1), **builds[v.name],
                     "recall@10": round(recall(answers[key], exact), 4), "ndcg@10": ndcg(ds, answers[key]),
                     "p50_ms": round(float(np.median(p50)), 3), "p50_min_ms": min(p50), "p50_max_ms": max(p50),
                     "p99_ms": round(float(np.median([r["p99_ms"] for r in timed[key]])), 3),
                     "qps": round(float(np.median([r["qps"] for r in timed[key]])), 1)})
    for v in vs:
        shutil.rmtree(work / v.name, ignore_errors=True)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return {"dataset": ds.name, "note": ds.note, "stats": describe(ds.corpus), "points": n, "dim": ds.dim,
            "queries": len(ds.queries), "smec_dims": list(dims), "train_rows": min(rows_, n), "train_s": trained,
            "exact_ndcg@10": ndcg(ds, exact.tolist()), "rounds": rounds, "rows": rows}


# -- analysis ---------------------------------------------------------------------------------------
def front(rows: Sequence[dict[str, Any]], x: str = "ram_model_B", y: str = "p50_ms") -> list[dict[str, Any]]:
    """Rows not dominated in (lower ``x``, lower ``y``), by ``x``."""
    out = [r for r in rows if not any(o[x] <= r[x] and o[y] <= r[y] and (o[x] < r[x] or o[y] < r[y]) for o in rows)]
    return sorted(out, key=lambda r: r[x])


def analyse(res: dict[str, Any], min_recall: float = MIN_RECALL) -> dict[str, Any]:
    """Best native = its fastest row at ``min_recall``; best SMEC = the least-RAM SMEC row at that recall
    no slower than it (else the fastest SMEC row); the RAM-p50 front among rows at ``min_recall``."""
    ok = [r for r in res["rows"] if r["recall@10"] >= min_recall]
    native = min((r for r in ok if r["family"] == "native"), key=lambda r: (r["p50_ms"], r["ram_model_B"]), default=None)
    smec_rows = [r for r in ok if r["family"] == "smec"]
    within = [r for r in smec_rows if native is not None and r["p50_ms"] <= native["p50_ms"]]
    smec = min(within, key=lambda r: (r["ram_model_B"], r["p50_ms"])) if within else \
        min(smec_rows, key=lambda r: (r["p50_ms"], r["ram_model_B"]), default=None)
    pareto = front(ok)
    ratio = round(smec["ram_model_B"] / native["ram_model_B"], 3) if smec and native else None
    return {"best_native": native, "best_smec": smec, "smec_within_native_p50": bool(within),
            "ram_ratio": ratio, "p50_ratio": round(smec["p50_ms"] / native["p50_ms"], 3) if smec and native else None,
            "front": [f"{r['variant']} {json.dumps(r['setting'])}" for r in pareto],
            "smec_on_front": any(r["family"] == "smec" for r in pareto),
            "least_ram_native": min((r for r in ok if r["family"] == "native"), key=lambda r: r["ram_model_B"], default=None),
            "least_ram_smec": min(smec_rows, key=lambda r: (r["ram_model_B"], r["p50_ms"]), default=None)}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"full-hnsw": "black", "native": "tab:orange", "smec": "tab:blue"}
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.8), squeeze=False)
    for ax, res in zip(axes[0], results):
        for fam, colour in colours.items():
            for ok, alpha in ((False, 0.15), (True, 0.9)):
                rs = [r for r in res["rows"] if r["family"] == fam and (r["recall@10"] >= MIN_RECALL) == ok]
                ax.scatter([r["ram_model_B"] for r in rs], [r["p50_ms"] for r in rs], c=colour, s=14, alpha=alpha,
                           label=f"{fam} (recall >= {MIN_RECALL})" if ok else None)
        pareto = front([r for r in res["rows"] if r["recall@10"] >= MIN_RECALL])
        ax.plot([r["ram_model_B"] for r in pareto], [r["p50_ms"] for r in pareto], "-", c="red", lw=1,
                label=f"front at recall >= {MIN_RECALL}")
        a = res["analysis"]
        for key, marker in (("best_native", "*"), ("best_smec", "P")):
            r = a[key]
            if r:
                ax.scatter([r["ram_model_B"]], [r["p50_ms"]], marker=marker, s=220, facecolors="none",
                           edgecolors="red", linewidths=1.5)
                ax.annotate(f"{key.replace('_', ' ')}: {r['variant']}\n{json.dumps(r['setting'])} r={r['recall@10']}",
                            (r["ram_model_B"], r["p50_ms"]), fontsize=6, xytext=(6, 6), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("RAM bytes/point (layout model)")
        ax.set_ylabel("p50 ms (1 core, interleaved rounds)")
        ax.set_title(f"{res['dataset']} ({res['points']:,} pts)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.suptitle(f"qdrant-edge: RAM vs p50; faint = recall@10 < {MIN_RECALL}; star = best native, plus = best SMEC")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)


def brief(r: dict[str, Any] | None) -> str:
    if r is None:
        return "none"
    return (f"{r['variant']} {json.dumps(r['setting'])}: {r['ram_model_B']} B/pt RAM, recall {r['recall@10']}, "
            f"p50 {r['p50_ms']} ms ({r['p50_min_ms']}–{r['p50_max_ms']})")


def render(report: dict[str, Any]) -> str:
    out = ["# SMEC layouts vs the engine's quantization, each at its best settings (issues 13, 23)\n",
           f"Command: `{report['command']}`  \nMachine: {report['machine']}  \nWall: {report['wall_s']} s  \n"
           f"Grid: `{json.dumps(report['grid'])}`\n",
           "qdrant-edge, HNSW m=16, ef_construct=100; every graph built (indexing threshold 1 KB) and searched "
           "(`full_scan_threshold_kb=0`): no plain scans. All settings of a set timed interleaved in one process "
           "pinned to one core, in rounds of shuffled order; p50 = median over rounds of the round's p50, with its "
           "min–max; p99 and QPS (single stream) medians over rounds. SMEC rows time `SmecCollection.search` "
           "(query encode included), the others `search_stages` on the full vector. RAM = layout model (floats in "
           "the RAM tier + codes + 2·m·1.4 B of links); RSS = this process's VmRSS growth when the store was opened "
           "/ after a first pass of its queries, per point (file-backed pages of mmapped storage count once "
           "touched); disk = blocks of the segments.\n"]
    header = ["variant", "setting", "RAM B/pt", "disk B/pt (model)", "RSS open", "RSS queries", "disk B/pt",
              "build s", "recall@10", "nDCG@10", "p50 ms (min–max)", "p99 ms", "QPS"]
    for res in report["datasets"]:
        a = res["analysis"]
        s = res["stats"]
        out.append(f"## {res['dataset']}\n\n{res['note']}. Mean pairwise cos {s['mean_pairwise_cos']}, top-128 PCs "
                   f"{s['var_top128']} of the variance, effective rank {s['effective_rank']}. SMEC dims "
                   f"{res['smec_dims']} trained on {res['train_rows']:,} rows ({res['train_s']} s). "
                   f"{res['rounds']} rounds. Exact nDCG@10: {res['exact_ndcg@10']}\n")
        out.append(f"- best native at recall >= {MIN_RECALL} (fastest): {brief(a['best_native'])}\n"
                   f"- best SMEC (least RAM no slower than it{'' if a['smec_within_native_p50'] else '; none is: fastest SMEC'}): "
                   f"{brief(a['best_smec'])}\n- SMEC / native: RAM {a['ram_ratio']}x, p50 {a['p50_ratio']}x\n"
                   f"- least-RAM rows at that recall: native {brief(a['least_ram_native'])}; SMEC {brief(a['least_ram_smec'])}\n"
                   f"- RAM–p50 front at that recall: {'; '.join(a['front'])} (SMEC on it: **{a['smec_on_front']}**)\n")
        best = {}
        for r in res["rows"]:  # per variant: its fastest row at the recall target, else its best recall
            key = r["variant"]
            rank = (r["recall@10"] >= MIN_RECALL, -r["p50_ms"] if r["recall@10"] >= MIN_RECALL else r["recall@10"])
            if key not in best or rank > best[key][0]:
                best[key] = (rank, r)
        out.append(f"Per variant, its fastest setting at recall >= {MIN_RECALL} (else its most accurate):\n")
        out.append(table(header, [r for _, r in best.values()]))
        out.append(f"\n<details><summary>all {len(res['rows'])} settings</summary>\n")
        out.append(table(header, res["rows"]))
        out.append("\n</details>\n")
    return "\n".join(out) + "\n"


def table(header: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    return md_table(header, [[r["variant"], json.dumps(r["setting"]), r["ram_model_B"], r["disk_model_B"], r["rss_open_B"],
                              r["rss_queries_B"], r["disk_B"], r["build_s"], r["recall@10"],
                              "-" if r["ndcg@10"] is None else r["ndcg@10"],
                              f"{r['p50_ms']} ({r['p50_min_ms']}–{r['p50_max_ms']})", r["p99_ms"], r["qps"]] for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run: small sets, 100 queries, 2 variants per family, 1 round")
    parser.add_argument("--only", default=None, help="comma-separated set name prefixes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=None, help="at most this many queries per set")
    parser.add_argument("--synthetic-points", type=int, default=50_000)
    parser.add_argument("--no-full-hnsw", default="", help="comma-separated set prefixes without the full-hnsw rows")
    parser.add_argument("--native", default=None, help="comma-separated native quantizations (default: the grid's)")
    parser.add_argument("--smec-quant", default=None, help="comma-separated SMEC coarse quantizations, 'none' = f32")
    parser.add_argument("--cpu", type=int, default=0, help="the core the timed part runs on")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default=None, help="file stem of the results (default layouts / layouts_quick)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/smec_layouts"))
    parser.add_argument("--compressors", type=Path, default=None, help="cache of trained compressors (default: workdir)")
    parser.add_argument("--replot", type=Path, help="re-render markdown and PNG from saved JSON reports (merged)",
                        nargs="*")
    args = parser.parse_args(argv)
    stem = args.name or ("layouts_quick" if args.quick else "layouts")
    if args.replot:
        reports = [json.loads(p.read_text()) for p in args.replot]
        report = {**reports[0], "datasets": [d for r in reports for d in r["datasets"]],
                  "command": " ; ".join(r["command"] for r in reports), "machine": " ; ".join(r["machine"] for r in reports),
                  "wall_s": round(sum(r["wall_s"] for r in reports), 1)}
        write(report, args.out, stem)
        return 0
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    grid = QUICK if args.quick else Grid()
    if args.native or args.smec_quant:
        grid = Grid(**{**grid.__dict__, **({"native": tuple(args.native.split(","))} if args.native else {}),
                       **({"smec_quant": tuple(args.smec_quant.split(","))} if args.smec_quant else {})})
    results = []
    for name in SETS:
        if args.only and not any(name.startswith(p) for p in args.only.split(",")):
            continue
        ds = load(name, synthetic_points=args.synthetic_points, quick=args.quick)
        queries = args.queries or (100 if args.quick else None)
        if queries:
            ds.queries, ds.query_ids = ds.queries[:queries], ds.query_ids[:queries]
            if ds.qrels is not None:
                ds.qrels = {q: ds.qrels[q] for q in ds.query_ids if q in ds.qrels}
        set_grid = grid if not any(name.startswith(p) for p in args.no_full_hnsw.split(",") if p) else \
            Grid(**{**grid.__dict__, "full_hnsw": False})
        res = bench_set(ds, set_grid, args.workdir, args.compressors or args.workdir, 1 if args.quick else args.rounds, args.cpu)
        res["analysis"] = analyse(res)
        results.append(res)
        print(render({"command": "", "machine": "", "wall_s": "", "grid": {}, "datasets": [res]}), flush=True)
    report = {"command": " ".join(["benchmarks/layouts.py", *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine(load_at_start), "wall_s": round(time.perf_counter() - started, 1),
              "grid": grid.__dict__, "index": INDEX.__dict__, "datasets": results}
    write(report, args.out, stem)
    return 0


def write(report: dict[str, Any], out: Path, stem: str) -> None:
    for res in report["datasets"]:
        res["analysis"] = analyse(res)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    (out / f"{stem}.md").write_text(render(report))
    plot(report["datasets"], out / f"{stem}.png")


if __name__ == "__main__":
    raise SystemExit(main())
