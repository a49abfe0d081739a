"""Migrate the collection layouts users have (issue 21), on real data, and keep what each report says.

SciFact corpus (MiniLM 384-d, 5,183 docs, ../shared/data). Each source is built with its engine's own
client as its docs show; ``smec-vdb migrate`` runs as a subprocess (as a user would) with ``--report``;
then the source is edited with its own client (a payload double moved by 1 ulp, a vector component by
1e-6, a point deleted), ``--check`` reports the drift and a re-run re-syncs it. Per layout it prints the
command, the points, what the schema mapping says was kept / mapped / left out, the verification time
and the drift, and saves benchmarks/results/schema_layouts.json (and .md).

    .venv/bin/python benchmarks/schema_layouts.py [--epochs 3] [--only milvus-custom]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from smec_vdb.eval.beir import load_beir, shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results"
YEARS = 40


def payload(i: int, title: str) -> dict[str, Any]:
    return {"title": title[:200], "year": 1990 + i % YEARS, "score": i / 7, **({"tags": [f"t{i % 5}"]} if i % 3 else {})}


# -- sources, each with its engine's own client ---------------------------------------------------------------
def qdrant_quickstart(path: Path, x: np.ndarray, titles: list[str]) -> list[str]:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    client.create_collection("docs", vectors_config=models.VectorParams(size=x.shape[1], distance=models.Distance.COSINE))
    for start in range(0, len(x), 1000):
        client.upsert("docs", [models.PointStruct(id=i, vector=x[i].tolist(), payload=payload(i, titles[i]))
                               for i in range(start, min(start + 1000, len(x)))])
    client.close()
    return ["--backend", "qdrant", "--path", str(path)]


def qdrant_hybrid(path: Path, x: np.ndarray, titles: list[str]) -> list[str]:
    """Named dense + sparse ``bm25``; every 20th document has only the sparse vector."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    client.create_collection("docs", vectors_config={"dense": models.VectorParams(size=x.shape[1],
                                                                                    distance=models.Distance.COSINE)},
                             sparse_vectors_config={"bm25": models.SparseVectorParams()})
    for start in range(0, len(x), 1000):
        points = []
        for i in range(start, min(start + 1000, len(x))):
            words = sorted({hash(w) % 30_000 for w in titles[i].lower().split()}) or [0]
            vector: dict[str, Any] = {"bm25": models.SparseVector(indices=words, values=[1.0] * len(words))}
            if i % 20:
                vector["dense"] = x[i].tolist()
            points.append(models.PointStruct(id=i, vector=vector, payload=payload(i, titles[i])))
        client.upsert("docs", points)
    client.close()
    return ["--backend", "qdrant", "--path", str(path), "--vector", "dense"]


def milvus_quick_setup(path: Path, x: np.ndarray, titles: list[str]) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    client.create_collection("docs", dimension=x.shape[1])
    for start in range(0, len(x), 1000):
        client.insert("docs", [{"id": i, "vector": x[i].tolist(), **payload(i, titles[i])}
                               for i in range(start, min(start + 1000, len(x)))])
    client.close()
    return ["--backend", "milvus", "--path", str(path)]


def milvus_custom(path: Path, x: np.ndarray, titles: list[str]) -> list[str]:
    """A ``doc_id`` key, typed columns (a nullable title with an INVERTED index, a year with a default),
    the dynamic field, three partitions."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=x.shape[1])
    schema.add_field("title", DataType.VARCHAR, max_length=256, nullable=True)
    schema.add_field("year", DataType.INT64, default_value=1990)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
    index.add_index("title", index_type="INVERTED")
    client.create_collection("docs", schema=schema, index_params=index)
    for name in ("old", "recent"):
        client.create_partition("docs", name)
    for start in range(0, len(x), 1000):
        rows = [{"doc_id": f"d{i}", "embedding": x[i].tolist(), **payload(i, titles[i])}
                for i in range(start, min(start + 1000, len(x)))]
        for partition in ("_default", "old", "recent"):
            part = [r for r in rows if ("old" if r["year"] < 2000 else "recent" if r["year"] >= 2020 else "_default")
                    == partition]
            client.insert("docs", part, partition_name=partition)
    client.close()
    return ["--backend", "milvus", "--path", str(path)]


LAYOUTS: dict[str, tuple[Callable[..., list[str]], str]] = {
    "qdrant-quickstart": (qdrant_quickstart, "q"), "qdrant-hybrid": (qdrant_hybrid, "q"),
    "milvus-quick-setup": (milvus_quick_setup, "m.db"), "milvus-custom": (milvus_custom, "m.db"),
}
#: (source layout, target engine or None for the source's own store)
RUNS = [("qdrant-quickstart", "qdrant-edge"), ("qdrant-quickstart", "milvus"), ("qdrant-hybrid", "qdrant-edge"),
        ("milvus-quick-setup", None), ("milvus-custom", None), ("milvus-custom", "qdrant-edge")]


# -- edits made with the source's own client -------------------------------------------------------------------
def edit_source(layout: str, path: Path, x: np.ndarray) -> None:
    """Point 3: its score one double up; point 5: its vector's first component + 1e-6; point 9: deleted."""
    if layout.startswith("qdrant"):
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(path))
        (p3,) = client.retrieve("docs", [3])
        client.set_payload("docs", {"score": float(np.nextafter(p3.payload["score"], 1e9))}, points=[3])
        name = "dense" if layout == "qdrant-hybrid" else None
        (p5,) = client.retrieve("docs", [5], with_vectors=True)
        v = np.asarray(p5.vector[name] if name else p5.vector, dtype=np.float32)
        v[0] += 1e-6
        client.update_vectors("docs", [models.PointVectors(id=5, vector={name: v.tolist()} if name else v.tolist())])
        client.delete("docs", points_selector=models.PointIdsList(points=[9]))
        client.close()
        return
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    client.load_collection("docs")
    key = "doc_id" if layout == "milvus-custom" else "id"
    ids = ['"d3"', '"d5"', '"d9"'] if key == "doc_id" else ["3", "5", "9"]
    rows = {str(r[key]): r for r in client.query("docs", filter=f"{key} in [{', '.join(ids)}]", output_fields=["*"])}
    r3, r5 = rows[ids[0].strip('"')], rows[ids[1].strip('"')]
    r3["score"] = float(np.nextafter(r3["score"], 1e9))
    vector = "embedding" if key == "doc_id" else "vector"
    r5[vector] = (np.asarray(r5[vector], dtype=np.float32) + np.eye(1, len(r5[vector]), dtype=np.float32)[0] * 1e-6).tolist()
    for row in (r3, r5):
        partition = ("old" if row["year"] < 2000 else "recent" if row["year"] >= 2020 else "_default") \
            if layout == "milvus-custom" else "_default"
        client.upsert("docs", [row], partition_name=partition)
    client.delete("docs", filter=f"{key} in [{ids[2]}]")
    client.close()


def in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a child process: Milvus Lite serves a path from a server inside the process that opened
    it, alive after ``close()``, so the CLI could not open a source this process built or edited."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def cli(args: list[str]) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}, timeout=3600)
    return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr


def run_one(layout: str, target: str | None, x: np.ndarray, titles: list[str], epochs: int) -> dict[str, Any]:
    build, where = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source_args = in_child(build, root / where, x, titles)
        target_args = [] if target is None else ["--target-backend", target, "--target-path",
                                                 str(root / ("t.db" if target == "milvus" else "edge"))]
        base = ["--collection", "docs", "--dim", "64", "--epochs", str(epochs), "--compressor-store",
                str(root / "c"), *source_args, *target_args]
        if layout == "qdrant-hybrid" and target == "milvus":
            base += ["--on-bad-vector", "skip"]
        code, seconds, out = cli([*base, "--report", str(root / "r.json")])
        if code:
            return {"layout": layout, "target": target or "same store", "refused": out.strip().splitlines()[-1]}
        report = json.loads((root / "r.json").read_text())
        in_child(edit_source, layout, root / where, x)
        _, check_seconds, check_out = cli([*base, "--check", "--report", str(root / "check.json")])
        if not (root / "check.json").exists():
            raise SystemExit(f"{layout} → {target or 'same store'}: --check wrote no report:\n{check_out}")
        check = json.loads((root / "check.json").read_text())
        _, _, resync_out = cli([*base, "--report", str(root / "resync.json")])
        if not (root / "resync.json").exists():
            raise SystemExit(f"{layout} → {target or 'same store'}: the re-sync wrote no report:\n{resync_out}")
        resync = json.loads((root / "resync.json").read_text())
    hows: dict[str, int] = {}
    for entry in report["schema_mapping"]:
        kind = "kept" if entry["how"] == "kept" else entry["how"].split(" ")[0]
        hows[kind] = hows.get(kind, 0) + 1
    v = report["verification"]
    return {
        "layout": layout, "target": target or "same store",
        "command": "smec-vdb migrate " + " ".join(a if not a.startswith("/") else Path(a).name for a in base),
        "points": report["source"]["count"], "points_written": report["points_written"],
        "skipped": len(report["skipped_ids"]), "without_vector": report["points_without_vector"]["count"],
        "mapping": report["schema_mapping"], "mapping_counts": hows,
        "verify_seconds": report["seconds"].get("verify"), "total_seconds": round(seconds, 1),
        "recall_at_10": v["recall_at_10"], "engine_classes": v.get("engine_classes", {}),
        "check": {"differences": check["drift"]["differences"], "first_ids": check["drift"]["first_ids"],
                  "seconds": round(check_seconds, 1)},
        "resync": {"rewritten": resync["resync"]["rewritten"], "deleted": resync["resync"]["deleted"],
                   "passed": resync["verification"]["passed"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--only", help="run only this source layout")
    opts = parser.parse_args()
    data = load_beir(shared_data_dir() / "beir" / "scifact", "minilm-l6-v2")
    x = np.asarray(data.corpus, dtype=np.float32)
    titles = [str(data.corpus_ids[i]) + " " + str(i) for i in range(len(x))]
    rows = [run_one(layout, target, x, titles, opts.epochs) for layout, target in RUNS
            if opts.only is None or layout == opts.only]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "schema_layouts.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    lines = ["| source → target | points | mapping (kept / other) | verify s | --check after 3 edits | re-sync |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['layout']} → {r['target']} | | refused: {r['refused']} | | | |")
            continue
        other = "; ".join(f"{m['item']}: {m['how']}" for m in r["mapping"] if m["how"] != "kept")
        lines.append(f"| {r['layout']} → {r['target']} | {r['points']} ({r['skipped']} skipped, {r['without_vector']} "
                     f"without vector) | {r['mapping_counts'].get('kept', 0)} kept; {other} | {r['verify_seconds']} | "
                     f"{r['check']['differences']} | {r['resync']} |")
    (RESULTS / "schema_layouts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
