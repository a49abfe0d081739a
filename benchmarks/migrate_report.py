"""Migrate a real collection end to end and keep the report: SciFact corpus (MiniLM 384-d, 5,183 docs).

Seeds a source collection ``scifact`` from ../shared/data in a fresh embedded store for each target,
then runs the real command ``smec-vdb migrate --collection scifact --dim 64`` (a subprocess, as a user
would) and saves its JSON report to benchmarks/results/migrate_scifact_<target>.json.

    .venv/bin/python benchmarks/migrate_report.py [--targets qdrant-edge,milvus-lite] [--dim 64]
    .venv/bin/python benchmarks/migrate_report.py --dims 128,64 --drop-full --min-recall 0   # storage-saving layout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.eval.beir import load_beir, shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results"


def backend_args(target: str, directory: Path) -> list[str]:
    """The CLI's engine options for an embedded target of the engine registry, its store under ``directory``."""
    spec = engines.target(target)
    if not spec.embedded:
        raise SystemExit(f"{target} is a server target: this benchmark makes a fresh embedded store per target")
    return ["--backend", spec.engine, "--path", str(directory / str(spec.test_store))]


def seed(args: list[str], corpus, ids: list[str]) -> None:
    backend = open_backend(args[1], path=args[3])
    try:
        backend.create_collection("scifact", CollectionSchema((Resolution("embedding", corpus.shape[1]),), "cosine", "str"))
        for start in range(0, len(ids), 1000):
            stop = start + 1000
            backend.upsert("scifact", Batch(ids=ids[start:stop], vectors={"embedding": corpus[start:stop]},
                                            payloads=[{"doc": i} for i in ids[start:stop]]))
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="qdrant-edge,milvus-lite")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--dims", help="explicit stored schedule, e.g. 128,64 (instead of --dim)")
    parser.add_argument("--drop-full", action="store_true", help="store only the compressed vectors")
    parser.add_argument("--min-recall", default="0.95")
    opts = parser.parse_args()
    data = load_beir(shared_data_dir() / "beir" / "scifact", "minilm-l6-v2")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for target in opts.targets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            args = backend_args(target, Path(tmp))
            seed(args, data.corpus, list(data.corpus_ids))
            layout = ["--dims", opts.dims] if opts.dims else ["--dim", str(opts.dim)]
            suffix = "_drop-full" if opts.drop_full else ""
            out = RESULTS / f"migrate_scifact_{target}{suffix}.json"
            cmd = [sys.executable, "-m", "smec_vdb.cli.app", "migrate", "--collection", "scifact", *layout,
                   *(["--drop-full"] if opts.drop_full else []), "--min-recall", opts.min_recall,
                   "--compressor-store", str(Path(tmp) / "compressors"), "--report", str(out), *args]
            subprocess.run(cmd, check=True, env={**os.environ, "COLUMNS": "120"})
            report = json.loads(out.read_text())
            v = report["verification"]
            print(f"{target}: {report['points_written']} points, {report['throughput_points_per_s']} points/s, "
                  f"recall@10 {v['recall_at_10']}, bytes/point {report['bytes_per_point']}, "
                  f"seconds {report['seconds']}")


if __name__ == "__main__":
    main()
