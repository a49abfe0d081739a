"""Scale-out (issues 14, 24): ``migrate`` on Ray Data with 1, 2, 4 workers against the single-process run,
on one milvus-lite server, with Ray's fixed costs measured apart from its per-point rate.

Source: 20,000 synthetic 768-d points (``--points``; the anisotropic LLM-like set of
``benchmarks/throughput.py``) made with pymilvus as a quick-setup collection. One compressor (SMEC,
trained once), so that runs differ only in how they copy and verify. Each run migrates into its own
target (full + d128), verifies it and drops it; all runs share one local Ray instance (started once,
its start-up timed). Fixed costs: the Ray copy of a one-page source (512 points: planning the ranges,
starting the pipeline and its actors) and Ray's start-up; the per-point rate is the rest.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/scale_out.py [--uri URI] [--workers 1,2,4]

The server is ``--uri`` (or env MILVUS_LITE_URI). Writes benchmarks/results/scale_out.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import BATCH, DIM, Engine, anisotropic, seed, train_compressor  # noqa: E402

from smec_vdb.migrate import MigrationOptions, migrate  # noqa: E402
from smec_vdb.migrate.distributed import Connection, connect_ray, migrate_distributed  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
AIM = 1.2  # Ray with one worker within 1.2x of the single-process time


def run(uri: str, source: str, compressor: Path, store: Path, workers: int | None) -> dict[str, Any]:
    """One migration (single-process when ``workers`` is None); its target is dropped after."""
    opts = MigrationOptions(source=source, target=f"{source}_{uuid.uuid4().hex[:6]}", dim=DIM,
                            compressor=str(compressor), batch_size=BATCH, min_recall=0.0, compressor_store=str(store))
    engine = Engine("milvus-lite-server", store, uri)
    try:
        if workers is None:
            report = migrate(engine.open(), opts)
        else:
            report = migrate_distributed(Connection("milvus", url=uri), opts, workers=workers)
        engine.open().drop(opts.target_name)
    finally:
        engine.open().close()
    seconds, n = report["seconds"], report["points_written"]
    row = {"workers": workers or "single process", "points": n, "copy_s": seconds["copy"],
           "copy_points_per_s": round(n / seconds["copy"], 1), "verify_s": seconds["verify"],
           "verification": report["verification"]["summary"], "recall_at_10": report["verification"]["recall_at_10"]}
    if workers:
        row["ray_seconds"] = report["distributed"]["seconds"]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MILVUS_LITE_URI"))
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.uri:
        parser.error("a milvus-lite server is needed: --uri or env MILVUS_LITE_URI (python .ci/servers.py start)")
    counts = [int(w) for w in args.workers.split(",")]
    started = time.perf_counter()
    results: dict[str, Any] = {"command": " ".join(["benchmarks/scale_out.py", *sys.argv[1:]]), "cpus": os.cpu_count(),
                               "load_average_start": [round(v, 2) for v in os.getloadavg()], "points": args.points}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        connect_ray(None, max(counts))
        results["ray_start_s"] = round(time.perf_counter() - t0, 2)
        compressor = train_compressor(anisotropic(5000, width=768, seed=1), root / "comp")
        engine = Engine("milvus-lite-server", root, args.uri)
        big, tiny = f"so_{uuid.uuid4().hex[:6]}", f"so_tiny_{uuid.uuid4().hex[:6]}"
        seed(engine, big, anisotropic(args.points, width=768), lambda i: f"doc {i}")
        seed(engine, tiny, anisotropic(BATCH, width=768, seed=2), lambda i: f"doc {i}")
        try:
            runs = {"single": run(args.uri, big, compressor, root, None)}
            results["fixed_one_page"] = run(args.uri, tiny, compressor, root, 1)
            for w in counts:
                runs[f"ray_{w}"] = run(args.uri, big, compressor, root, w)
        finally:
            for name in (big, tiny):
                engine.open().drop(name)
            engine.open().close()
    fixed = results["fixed_one_page"]["copy_s"]
    single = runs["single"]["copy_s"]
    for key, row in runs.items():
        if key != "single":
            row["copy_over_single"] = round(row["copy_s"] / single, 3)
            row["copy_minus_fixed_over_single"] = round((row["copy_s"] - fixed) / single, 3)
    one = runs.get("ray_1")
    if one:
        results["aim"] = {"ray_1_copy_over_single": one["copy_over_single"],
                          "ray_1_copy_minus_fixed_over_single": one["copy_minus_fixed_over_single"],
                          "fixed_copy_s": fixed, "ray_start_s": results["ray_start_s"], "aim": AIM,
                          "met": one["copy_minus_fixed_over_single"] <= AIM}
    results["runs"] = runs
    results["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_out.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(json.dumps({k: results[k] for k in ("aim", "runs") if k in results}, indent=2, default=float))


if __name__ == "__main__":
    main()
