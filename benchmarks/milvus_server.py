"""Migration throughput and verification time on a real Milvus 2.3.5 server, before and after the
consistency change of issue 11 (every read ``Strong`` → ``Session`` reads with a ``Strong`` count).

SciFact corpus vectors (MiniLM 384-d, ``../shared/data``) are written to a single-vector source
collection on the server; each run migrates it into a single-resolution ``d64`` target on the same
server (the 2.3.5 server holds one vector field per collection) with one compressor trained once,
at ``--batch-size`` 128, 512 and 2048, once with ``Strong`` reads ("before") and once with the
adapter's levels ("after"). Prints a table and saves ``benchmarks/results/milvus_server.json``.

    python .ci/servers.py start          # prints export MILVUS_URI=...
    MILVUS_URI=http://127.0.0.1:PORT .venv/bin/python benchmarks/milvus_server.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import smec_vdb.adapters.milvus_consistency as milvus_consistency
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.migrate import MigrationOptions, migrate
from smec_vdb.train import train
from smec_vdb.train.config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results" / "milvus_server.json"
SOURCE = "bench_scifact_src"
LEVELS = {"before": ("Strong", "Strong"), "after": (milvus_consistency.READ_CONSISTENCY, milvus_consistency.BARRIER_CONSISTENCY)}


def seed_source(uri: str, vectors: np.ndarray) -> None:
    backend = open_backend("milvus", url=uri)
    try:
        backend.drop(SOURCE)
        backend.create_collection(SOURCE, CollectionSchema((Resolution("full", vectors.shape[1]),)))
        for start in range(0, len(vectors), 1000):
            ids = list(range(start, min(start + 1000, len(vectors))))
            backend.upsert(SOURCE, Batch(ids, {"full": vectors[ids]}, [{"i": i} for i in ids]))
        assert backend.count(SOURCE) == len(vectors)
    finally:
        backend.close()


def one_run(uri: str, level: str, batch: int, compressor: str, verify_queries: int) -> dict:
    milvus_consistency.READ_CONSISTENCY, milvus_consistency.BARRIER_CONSISTENCY = LEVELS[level]
    target = f"bench_scifact_d64_{level}_{batch}"
    backend = open_backend("milvus", url=uri)
    try:
        backend.drop(target)
        t0 = time.perf_counter()
        report = migrate(backend, MigrationOptions(source=SOURCE, target=target, compressor=compressor, keep_full=False,
                                                   batch_size=batch, verify_queries=verify_queries, min_recall=0.0,
                                                   compressor_store=str(Path(compressor).parent / "store")))
        wall = time.perf_counter() - t0
        backend.drop(target)
    finally:
        backend.close()
    seconds = report["seconds"]
    return {"level": level, "batch_size": batch, "read_consistency": LEVELS[level][0],
            "throughput_points_per_s": report["throughput_points_per_s"], "verify_s": seconds.get("verify"),
            "total_s": round(wall, 2), "seconds": seconds, "passed": report["verification"]["passed"],
            "recall_at_10": report["verification"].get("recall_at_10")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MILVUS_URI"))
    parser.add_argument("--batch-sizes", default="128,512,2048")
    parser.add_argument("--verify-queries", type=int, default=100)
    parser.add_argument("--work", default="/tmp/smec_bench_milvus_server")
    args = parser.parse_args()
    if not args.uri:
        raise SystemExit("give --uri or set MILVUS_URI (python .ci/servers.py start prints it)")
    data = load_beir(shared_data_dir() / "beir" / "scifact", "minilm-l6-v2")
    vectors = np.ascontiguousarray(data.corpus, dtype=np.float32)
    compressor = str(Path(args.work) / "compressor")
    train(vectors, [64], config=TrainConfig(epochs=2, seed=0)).save(compressor)
    seed_source(args.uri, vectors)
    runs = [one_run(args.uri, level, int(b), compressor, args.verify_queries)
            for b in args.batch_sizes.split(",") for level in LEVELS]
    probe = open_backend("milvus", url=args.uri)
    try:
        version = probe.capabilities.version
        probe.drop(SOURCE)
    finally:
        probe.close()
    print(f"Milvus {version}, SciFact {len(vectors)} x {vectors.shape[1]} -> d64 (single resolution), "
          f"{args.verify_queries} recall queries")
    print(f"{'batch':>6} {'reads':>8} {'points/s':>10} {'verify s':>9} {'total s':>8} passed")
    for r in runs:
        print(f"{r['batch_size']:>6} {r['read_consistency']:>8} {r['throughput_points_per_s']:>10} "
              f"{r['verify_s']:>9} {r['total_s']:>8} {r['passed']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "server": version, "points": len(vectors), "width": int(vectors.shape[1]), "verify_queries": args.verify_queries,
        "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "note": "machine shared with other jobs: timings are upper bounds", "runs": runs,
    }, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
