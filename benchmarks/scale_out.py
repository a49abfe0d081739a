"""Scale-out migration (issue 14): points/s with 1, 2, 4 Ray Data workers vs the single-process copy,
on one milvus-lite server target, and the per-worker figures a cost model for 10^8 points needs.

Two sources, each made with pymilvus on the server (quick-setup collections, as a user would):

- SciFact (../shared/data, all-mpnet-base-v2 768-d, 5,183 docs): the scaling table;
- synthetic 3584-d (``--wide-points``, default 2,000): the per-worker read / encode / write / verify
  seconds per point at the width of the cost model, from a 1-worker run and the single-process run.

One compressor per width (SMEC, trained once on the driver, reused by every run) so that the runs
differ only in how the copy is done. Each run migrates into its own target collection (full + d128),
verifies it, and drops it. The server is ``--uri`` (or env MILVUS_LITE_URI); without one the script
starts ``milvus-lite server`` on a free loopback port and stops it. Figures are printed and saved to
benchmarks/results/scale_out.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale_out.py [--workers 1,2,4] [--wide-points 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from smec_vdb.adapters import open_backend
from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.migrate import MigrationOptions, migrate
from smec_vdb.migrate.distributed import Connection, connect_ray, migrate_distributed

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 128


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; from milvus_lite.cmdline import main; "
            f"sys.argv = ['milvus-lite', 'server', '--data-dir', {str(data_dir)!r}, '--host', '127.0.0.1', "
            f"'--port', '{port}']; sys.exit(main())")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    import pymilvus

    deadline = time.monotonic() + 60
    while True:
        try:
            pymilvus.MilvusClient(uri=uri, timeout=2).close()
            return proc, uri
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"milvus-lite server did not start on {uri}") from None
            time.sleep(0.5)


def seed(uri: str, name: str, vectors: np.ndarray, docs: list[str]) -> None:
    """A quick-setup collection (pk ``id``, ``vector``, dynamic field ``doc``) made with pymilvus."""
    import pymilvus

    client = pymilvus.MilvusClient(uri=uri)
    if client.has_collection(name):
        client.drop_collection(name)
    client.create_collection(name, dimension=vectors.shape[1], metric_type="COSINE")
    for start in range(0, len(vectors), 500):
        client.insert(name, [{"id": i, "vector": vectors[i].tolist(), "doc": docs[i]}
                             for i in range(start, min(start + 500, len(vectors)))])
    client.close()


def train_once(vectors: np.ndarray, directory: Path, epochs: int) -> Path:
    from smec_vdb.migrate.plan import choose_schedule
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    comp = train(vectors[:5000], list(choose_schedule(vectors.shape[1], DIM)), method="smec",
                 config=TrainConfig(epochs=epochs, seed=0))
    comp.save(directory)
    return directory


def drop(uri: str, name: str) -> None:
    backend = open_backend("milvus", url=uri)
    try:
        backend.drop(name)
    finally:
        backend.close()


def run(uri: str, source: str, target: str, compressor: Path, store: Path, workers: int | None) -> dict[str, Any]:
    """One migration (single-process when ``workers`` is None) and its figures; the target is dropped after."""
    opts = MigrationOptions(source=source, target=target, dim=DIM, compressor=str(compressor), batch_size=512,
                            verify_queries=100, min_recall=0.0, compressor_store=str(store))
    t0 = time.perf_counter()
    if workers is None:
        backend = open_backend("milvus", url=uri)
        try:
            report = migrate(backend, opts)
        finally:
            backend.close()
    else:
        report = migrate_distributed(Connection("milvus", url=uri), opts, workers=workers)
    wall = time.perf_counter() - t0
    drop(uri, target)
    seconds = report["seconds"]
    n = report["points_written"]
    busy = report.get("distributed", {}).get("worker_seconds") or {p: seconds.get(p, 0.0) for p in ("read", "encode", "write")}
    copy_wall = seconds.get("copy") or sum(seconds.get(p, 0.0) for p in ("read", "encode", "write"))
    row = {
        "workers": workers or "single process", "points": n, "copy_s": round(copy_wall, 2),
        "copy_points_per_s": round(n / copy_wall, 1), "verify_s": seconds["verify"], "total_s": round(wall, 2),
        "verification": report["verification"]["summary"], "recall_at_10": report["verification"]["recall_at_10"],
        # summed over workers: per point, what one worker spends in each phase
        "worker_s_per_point": {p: busy.get(p, 0.0) / n for p in ("read", "encode", "write")},
        "ranges_s": seconds.get("ranges", 0.0),
    }
    if workers:  # what the copy's wall time holds beyond the workers' own work: Ray start, actor start-up
        row["overhead_s"] = round(copy_wall - row["ranges_s"] - sum(busy.values()) / workers, 2)
    print(json.dumps(row), flush=True)
    return row


def encode_seconds_per_point(width: int, threads: int = 1, n: int = 2048) -> float:
    """One worker's encode time per point of an untrained SMEC compressor (one fused matrix at inference)."""
    import torch

    from smec_vdb.compress.smec import SMECCompressor
    from smec_vdb.migrate.plan import choose_schedule

    torch.set_num_threads(threads)
    comp = SMECCompressor(width, choose_schedule(width, DIM)).eval()
    x = np.random.default_rng(0).standard_normal((n, width)).astype(np.float32)
    comp.encode(x[:64], DIM)
    t0 = time.perf_counter()
    for start in range(0, n, 512):
        comp.encode(x[start:start + 512], DIM)
    return (time.perf_counter() - t0) / n


def cost_model(wide: dict[str, Any], width: int, n_points: float, deadline_h: float) -> dict[str, Any]:
    """Bytes and one-worker seconds per phase for ``n_points`` × ``width`` (full + d128 target), from the
    per-point figures measured at that width; workers needed to finish within ``deadline_h``."""
    one = wide["distributed_1"]
    single = wide["single"]
    per_point = dict(one["worker_s_per_point"])
    per_point["verify"] = single["verify_s"] / single["points"]
    read_b, write_b = 4 * width + 16, 4 * (width + DIM) + 16  # floats + id/payload
    phases = {
        "read": {"bytes": read_b * n_points, "worker_h": per_point["read"] * n_points / 3600},
        "encode": {"flops": 2 * width * DIM * n_points, "worker_h": per_point["encode"] * n_points / 3600},
        "write": {"bytes": write_b * n_points, "worker_h": per_point["write"] * n_points / 3600},
        "verify": {"bytes": (read_b + write_b) * n_points, "worker_h": per_point["verify"] * n_points / 3600},
    }
    total_h = sum(p["worker_h"] for p in phases.values())
    return {
        "points": n_points, "width": width, "stored": f"full {width}-d + d{DIM}", "phases": phases,
        "worker_hours": round(total_h, 1), "deadline_h": deadline_h,
        "workers_for_deadline": int(np.ceil(total_h / deadline_h)),
        "server_write_MB_per_s_at_deadline": round(phases["write"]["bytes"] / (deadline_h * 3600) / 1e6, 1),
        "per_point_s": per_point,
    }


def model_check(scifact: dict[str, Any], cores: int) -> list[dict[str, Any]]:
    """The copy wall time the model predicts with W workers from the 1-worker per-point figures (work
    spread over min(W, cores) CPUs, plus that run's range planning and Ray start-up), against the
    measured one; ``contention`` = per-point worker seconds at W over those at 1 worker."""
    runs = scifact["runs"]
    one = sum(runs["distributed_1"]["worker_s_per_point"].values())
    rows = []
    for key, r in runs.items():
        if not key.startswith("distributed_"):
            continue
        w = int(r["workers"])
        predicted = r["ranges_s"] + r["overhead_s"] + r["points"] * one / min(w, cores)
        rows.append({"workers": w, "predicted_copy_s": round(predicted, 1), "measured_copy_s": r["copy_s"],
                     "measured_over_predicted": round(r["copy_s"] / predicted, 2),
                     "contention": round(sum(r["worker_s_per_point"].values()) / one, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MILVUS_LITE_URI"))
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--wide-points", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--deadline-hours", type=float, default=24.0)
    parser.add_argument("--from-json", type=Path, help="recompute the cost model and its check from a saved run")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        finish(results, args.deadline_hours)
        return
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, uri = (None, args.uri) if args.uri else start_server(root / "lite")
        try:
            connect_ray(None, max(counts))  # one local cluster (a CPU slot per worker) for every run
            data = load_beir(shared_data_dir() / "beir" / "scifact", "all-mpnet-base-v2")
            sets = {"scifact": (data.corpus.astype(np.float32), list(data.corpus_ids))}
            wide = np.random.default_rng(0).standard_normal((args.wide_points, 3584)).astype(np.float32)
            sets["synthetic3584"] = (wide / np.linalg.norm(wide, axis=1, keepdims=True), [str(i) for i in range(len(wide))])
            results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg(),
                                                   "note": "2-core machine shared with two other helpers' test runs: "
                                                           "timings are upper bounds"}}
            for name, (vectors, docs) in sets.items():
                seed(uri, f"{name}_src", vectors, docs)
                comp = train_once(vectors, root / f"comp_{name}", args.epochs)
                runs = {"single": run(uri, f"{name}_src", f"{name}_single", comp, root / "store", None)}
                for w in counts if name == "scifact" else [1]:
                    runs[f"distributed_{w}"] = run(uri, f"{name}_src", f"{name}_w{w}", comp, root / "store", w)
                drop(uri, f"{name}_src")
                results[name] = {"points": len(vectors), "width": vectors.shape[1], "runs": runs}
            results["encode_s_per_point_3584_1thread"] = encode_seconds_per_point(3584)
            results["machine"]["load_average_end"] = os.getloadavg()
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
    finish(results, args.deadline_hours)


def finish(results: dict[str, Any], deadline_h: float) -> None:
    """Add the cost model and its check to ``results``, print them and save benchmarks/results/scale_out.json."""
    results["cost_model"] = cost_model(results["synthetic3584"]["runs"], 3584, 1e8, deadline_h)
    results["model_check"] = model_check(results["scifact"], int(results["machine"]["cpus"] or 1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale_out.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(json.dumps({k: results[k] for k in ("cost_model", "model_check")}, indent=2, default=float))


if __name__ == "__main__":
    main()
