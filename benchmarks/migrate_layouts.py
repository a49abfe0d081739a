"""Migrate SciFact (MiniLM 384-d, 5,183 docs) from each source layout users have, then re-sync after drift.

For each layout the source is built with the engine's own client (qdrant-client quickstart with an
unnamed vector and mixed int/UUID ids; qdrant-client named + sparse vectors; Milvus quick setup with
dynamic fields; a Milvus ``doc_id`` VARCHAR key with two dense fields, a sparse field and two
partitions), then the real command runs as a subprocess, as a user would:

1. ``smec-vdb migrate ... --dim 64 --report r.json``: points, throughput, verify time and share;
2. the source drifts (payloads and vectors changed, points added and deleted, with its own client);
3. ``--check`` (must exit 1 and count the drift), a re-run (re-sync), ``--check`` again (must exit 0).

Figures go to benchmarks/results/migrate_layouts_scifact.json; the machine may be shared, so times
are upper bounds.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/migrate_layouts.py [--layouts a,b] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("SMEC_VDB_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
DRIFT = {"payload": 50, "vector": 20, "added": 30, "deleted": 10}


def corpus() -> tuple[np.ndarray, list[str]]:
    emb = DATA / "beir" / "scifact" / "embeddings" / "minilm-l6-v2"
    return np.load(emb / "corpus.npy").astype(np.float32), json.loads((emb / "corpus_ids.json").read_text())


def qdrant_id(i: int):
    return i if i % 2 else str(uuid.UUID(int=i + 1))


def build_qdrant(path: Path, x: np.ndarray, doc_ids: list[str], named: bool) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    if named:
        client.create_collection("scifact", vectors_config={
            "text": models.VectorParams(size=x.shape[1], distance=models.Distance.COSINE),
            "title": models.VectorParams(size=8, distance=models.Distance.DOT)},
            sparse_vectors_config={"bm25": models.SparseVectorParams()})
    else:
        client.create_collection("scifact", vectors_config=models.VectorParams(size=x.shape[1],
                                                                               distance=models.Distance.COSINE))
    points = []
    for i, (row, doc) in enumerate(zip(x, doc_ids)):
        vector = {"text": row.tolist(), "title": [float(i % 7)] * 8,
                  "bm25": models.SparseVector(indices=[i % 97, 1000 + i], values=[0.5, 0.25])} if named else row.tolist()
        points.append(models.PointStruct(id=i if named else qdrant_id(i), vector=vector,
                                         payload={"doc": doc, "n": i, "score": i / 3, "tags": {"k": [i, None]}}))
    for start in range(0, len(points), 1024):
        client.upsert("scifact", points[start:start + 1024])
    client.close()


def drift_qdrant(path: Path, x: np.ndarray, named: bool) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    pid = (lambda i: i) if named else qdrant_id
    rng = np.random.default_rng(1)
    for i in range(DRIFT["payload"]):
        client.set_payload("scifact", payload={"n": -i}, points=[pid(i)])
    new = rng.normal(size=(DRIFT["vector"] + DRIFT["added"], x.shape[1])).astype(np.float32)
    n = len(x)
    changed, added = new[:DRIFT["vector"]], new[DRIFT["vector"]:]
    client.update_vectors("scifact", points=[models.PointVectors(  # the vector only: payloads stay
        id=pid(100 + i), vector={"text": v.tolist()} if named else v.tolist()) for i, v in enumerate(changed)])
    client.upsert("scifact", [models.PointStruct(
        id=pid(n + i), vector=({"text": v.tolist(), "title": [1.0] * 8} if named else v.tolist()), payload={"new": True})
        for i, v in enumerate(added)])
    client.delete("scifact", points_selector=models.PointIdsList(points=[pid(200 + i) for i in range(DRIFT["deleted"])]))
    client.close()


def close_milvus(client, path: Path) -> None:
    """Close and stop Milvus Lite's in-process server, which outlives close() and locks the path."""
    from milvus_lite.server_manager import server_manager_instance

    client.close()
    server_manager_instance.release_server(os.path.abspath(path))


def build_milvus(path: Path, x: np.ndarray, doc_ids: list[str], doc_key: bool) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    if doc_key:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=x.shape[1])
        schema.add_field("img", DataType.FLOAT_VECTOR, dim=4)
        schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("year", DataType.INT64)
        index = client.prepare_index_params()
        index.add_index("dense", index_type="FLAT", metric_type="COSINE")
        index.add_index("img", index_type="FLAT", metric_type="L2")
        index.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        client.create_collection("scifact", schema=schema, index_params=index)
        client.create_partition("scifact", "archive")
        rows = [{"doc_id": f"doc-{d}", "dense": r.tolist(), "img": [float(i % 3), 1, 2, 3],
                 "sp": {i % 97: 0.5, 1000 + i: 0.25}, "year": 2000 + i % 20, "n": i, "score": i / 3}
                for i, (r, d) in enumerate(zip(x, doc_ids))]
        half = len(rows) // 2
        for start in range(0, len(rows), 1024):
            chunk = rows[start:start + 1024]
            client.insert("scifact", chunk, partition_name="archive" if start >= half else "_default")
    else:
        client.create_collection("scifact", dimension=x.shape[1])
        rows = [{"id": i, "vector": r.tolist(), "doc": d, "n": i, "score": i / 3, "tags": {"k": [i, None]}}
                for i, (r, d) in enumerate(zip(x, doc_ids))]
        for start in range(0, len(rows), 1024):
            client.insert("scifact", rows[start:start + 1024])
    close_milvus(client, path)


def drift_milvus(path: Path, x: np.ndarray, doc_ids: list[str], doc_key: bool) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    client.load_collection("scifact")  # reopened collections start released
    key, vec = ("doc_id", "dense") if doc_key else ("id", "vector")
    pk = (lambda i: f"doc-{doc_ids[i]}" if i < len(doc_ids) else f"doc-new-{i}") if doc_key else (lambda i: i)
    rows = client.query("scifact", filter=f"{key} in {json.dumps([pk(i) for i in range(DRIFT['payload'])])}",
                        output_fields=["*"])
    changed = [{**r, "n": -1} for r in rows]
    rng = np.random.default_rng(1)
    new = rng.normal(size=(DRIFT["vector"] + DRIFT["added"], x.shape[1])).astype(np.float32)
    vec_rows = client.query("scifact", filter=f"{key} in {json.dumps([pk(100 + i) for i in range(DRIFT['vector'])])}",
                            output_fields=["*"])
    changed += [{**r, vec: v.tolist()} for r, v in zip(vec_rows, new)]
    template = dict(changed[0])
    n = len(x)
    changed += [{**template, key: pk(n + i), vec: v.tolist(), "n": n + i}
                for i, v in enumerate(new[DRIFT["vector"]:])]
    client.upsert("scifact", changed)
    client.delete("scifact", filter=f"{key} in {json.dumps([pk(200 + i) for i in range(DRIFT['deleted'])])}")
    close_milvus(client, path)


LAYOUTS = {
    "qdrant-quickstart-unnamed-mixed-ids": dict(engine="qdrant", store="qdrant", named=False, vector=None,
                                                target=["--target-backend", "qdrant-edge", "--target-path", "edge"]),
    "qdrant-named-sparse": dict(engine="qdrant", store="qdrant", named=True, vector="text", target=[]),
    "milvus-quick-setup-dynamic": dict(engine="milvus", store="m.db", doc_key=False, vector=None, target=[]),
    "milvus-doc_id-multivector-sparse-partitions": dict(engine="milvus", store="m.db", doc_key=True, vector="dense",
                                                        target=["--target-backend", "qdrant-edge", "--target-path", "edge"]),
}


def run(args: list[str], cwd: Path) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=3600)
    return proc.returncode, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "", time.perf_counter() - t0


def one_layout(name: str, spec: dict, x: np.ndarray, doc_ids: list[str], epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        store = d / spec["store"]
        if spec["engine"] == "qdrant":
            build_qdrant(store, x, doc_ids, spec["named"])
        else:
            build_milvus(store, x, doc_ids, spec["doc_key"])
        base = ["migrate", "--collection", "scifact", "--dim", "64", "--epochs", str(epochs),
                *(["--vector", spec["vector"]] if spec["vector"] else []),
                "--backend", spec["engine"], "--path", str(store), *spec["target"],
                "--compressor-store", str(d / "compressors")]
        rc, tail, seconds = run([*base, "--report", str(d / "first.json")], d)
        if rc != 0:
            return {"command": " ".join(base), "failed": tail}
        first = json.loads((d / "first.json").read_text())
        if spec["engine"] == "qdrant":
            drift_qdrant(store, x, spec["named"])
        else:
            drift_milvus(store, x, doc_ids, spec["doc_key"])
        rc_check, check_tail, _ = run([*base, "--check", "--report", str(d / "check.json")], d)
        check = json.loads((d / "check.json").read_text())
        rc_resync, resync_tail, resync_seconds = run([*base, "--report", str(d / "resync.json")], d)
        resync = json.loads((d / "resync.json").read_text()) if (d / "resync.json").exists() else {}
        rc_after, _, _ = run([*base, "--check"], d)
    v = first["verification"]
    return {
        "command": " ".join(base).replace(str(d), "$TMP"),
        "points": v["count_target"],
        "throughput_points_per_s": first["throughput_points_per_s"],
        "seconds": first["seconds"],
        "wall_seconds": round(seconds, 1),
        "verify_seconds": first["seconds"]["verify"],
        "verify_share": first["verify_share"],
        "recall_at_10": v["recall_at_10"],
        "recall_candidates": v["recall_candidates"],
        "carried": first["target"]["carried"], "sparse": first["target"]["sparse"],
        "id_type": first["target"]["id_type"],
        "drift_applied": DRIFT,
        "check_exit": rc_check, "check_differences": check["drift"]["differences"],
        "resync_exit": rc_resync, "resync": resync.get("resync"), "resync_wall_seconds": round(resync_seconds, 1),
        "resync_verification_passed": resync.get("verification", {}).get("passed"),
        "check_after_resync_exit": rc_after,
        "errors": [t for t in (check_tail if rc_check not in (0, 1) else "", resync_tail if rc_resync else "") if t],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    x, doc_ids = corpus()
    results = {}
    for name in args.layouts.split(","):
        results[name] = one_layout(name, LAYOUTS[name], x, doc_ids, args.epochs)
        print(name, json.dumps(results[name], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "migrate_layouts_scifact.json"
    kept = json.loads(out.read_text())["layouts"] if out.exists() else {}  # a --layouts subset updates its rows
    out.write_text(json.dumps({"note": "2-core machine shared with other jobs: times are upper bounds",
                               "layouts": {**kept, **results}}, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
