"""Bulk throughput of ``migrate`` (issue 24): its copy against a raw copy made with each engine's own client,
its verification against its copy, the verification's memory as the collection grows, and the cost model
for 10^8 × 3584-d re-derived from the per-point rates.

Targets: qdrant-edge (a shard in a temp dir), Qdrant local (qdrant-client ``:memory:``: on a path it
commits one SQLite transaction per point), Milvus Lite (a file), the milvus-lite server and the Milvus
2.3.5 server (``--lite-uri`` / ``--uri``, or env ``MILVUS_LITE_URI`` / ``MILVUS_URI``; skipped when
absent). Sets: SciFact all-mpnet-base-v2 768-d (5,183 docs, ``../shared/data``) and a synthetic 3584-d
set (``--wide-points``, default 50,000) with an anisotropic spectrum like an LLM's embeddings: a shared
mean direction (average cosine between points ≈ 0.3) plus 512 latent directions whose variances decay as
a power law (i^-1.2), mapped to 3584-d by a fixed Gaussian matrix, plus 2 % isotropic noise.

Per target and set, in one process, interleaved: the raw copy (the engine's client scrolls the source
and upserts every page, at the same batch size, into a fresh collection: no encode), ``migrate`` with a
prebuilt compressor (``full`` + ``d128``; on 2.3.5, which holds one vector field, ``d128`` alone), then
the raw copy again; the baseline is the mean of the two raw copies. ``migrate``'s copy is its wall time
(pipelined read / encode / write, checkpoints included); its verification is the streaming comparison
plus recall@10 (200 queries), with the parts' busy seconds (read source / target, encode, compare,
exact top-k, waiting for the searches). The source is made with the engine's own client as its
quickstart does (Qdrant: one unnamed vector; Milvus: quick setup).

Verification memory: a fresh process verifies a finished migration of 20k and of 100k synthetic 768-d
points on the milvus-lite server (the engine's memory is the server's): peak RSS (VmHWM) and its rise
during the verification.

    .venv/bin/python benchmarks/throughput.py [--wide-points 50000]
        [--targets qdrant-edge,qdrant-local,milvus-lite,milvus-lite-server,milvus-2.3.5] [--skip-rss]

The committed tables: ``--wide-points 50000 --skip-rss`` (torch's default threads), the memory rows from
a run of their own (``--sets none``) merged into the JSON; ``--from-json`` redraws the tables.

Writes benchmarks/results/throughput.json and throughput.md.
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
from typing import Any, Callable, Iterator

import numpy as np

from smec_vdb.adapters import open_backend
from smec_vdb.backend import Backend
from smec_vdb.migrate import MigrationOptions, migrate

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 512
DIM = 128
VERIFY_QUERIES = 200
CHUNK = 2000
EDGE_VECTOR = "emb"  # a qdrant-edge shard's named vector (the adapter reads a shard's vectors by name)
TARGETS = ("qdrant-edge", "qdrant-local", "milvus-lite", "milvus-lite-server", "milvus-2.3.5")
PHASES = ("read", "encode", "write", "checkpoint")
VERIFY_PARTS = ("verify_read_source", "verify_read_target", "verify_encode", "verify_compare", "verify_exact_top_k",
                "verify_recall_wait")


# -- data ---------------------------------------------------------------------------------------------
def anisotropic(n: int, width: int = 3584, seed: int = 0, latent: int = 512) -> Iterator[np.ndarray]:
    """Chunks of ``n`` unit vectors with an LLM-like spectrum (module doc), generated, never all in memory."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((latent, width)).astype(np.float32) / np.sqrt(latent)
    mean = rng.standard_normal(width).astype(np.float32)
    mean *= 0.65 / np.linalg.norm(mean)
    scales = (np.arange(1, latent + 1, dtype=np.float32) ** -0.6)
    scales /= np.sqrt((scales**2).sum())
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        x = (rng.standard_normal((m, latent)).astype(np.float32) * scales) @ basis
        x += mean + 0.02 / np.sqrt(width) * rng.standard_normal((m, width)).astype(np.float32)
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def scifact() -> tuple[np.ndarray, list[str]] | None:
    from smec_vdb.eval.beir import load_beir, shared_data_dir

    root = shared_data_dir() / "beir" / "scifact"
    if not root.exists():
        return None
    data = load_beir(root, "all-mpnet-base-v2")
    return data.corpus.astype(np.float32), list(data.corpus_ids)


def payload(i: int, doc: str) -> dict[str, Any]:
    return {"doc": doc, "n": i, "year": 1990 + i % 35}


# -- each engine's own client: make the source, copy it raw -----------------------------------------
class Engine:
    """A target: how to open it with smec-vdb, and its own client's quickstart source and raw copy."""

    def __init__(self, name: str, root: Path, uri: str | None) -> None:
        self.name, self.root, self.uri = name, root, uri
        self.backend: Backend | None = None
        self.width = 0
        self._edge_shards: dict[str, Any] = {}

    def open(self) -> Backend:
        if self.backend is None:
            if self.name == "qdrant-edge":
                self.backend = open_backend("qdrant-edge", path=str(self.root / "edge"))
            elif self.name == "qdrant-local":
                self.backend = open_backend("qdrant", path=":memory:")
            elif self.name == "milvus-lite":
                self.backend = open_backend("milvus", path=str(self.root / "lite.db"))
            else:
                self.backend = open_backend("milvus", url=self.uri)
        return self.backend

    @property
    def milvus(self) -> Any:
        return self.open()._client  # type: ignore[attr-defined]  # the engine's own client behind the adapter

    def create(self, name: str, width: int) -> None:
        """An empty collection as the engine's quickstart makes it (one cosine vector)."""
        if self.name == "qdrant-edge":
            import qdrant_edge as e

            shard = e.EdgeShard.create(str(self.root / "edge" / name), e.EdgeConfig(
                vectors={EDGE_VECTOR: e.EdgeVectorParams(size=width, distance=e.Distance.Cosine)}))
            self._edge_shards[name] = shard
        elif self.name == "qdrant-local":
            from qdrant_client import models

            self.open()._client.create_collection(  # type: ignore[attr-defined]
                name, vectors_config=models.VectorParams(size=width, distance=models.Distance.COSINE))
        else:
            self.milvus.create_collection(name, dimension=width, metric_type="COSINE", consistency_level="Bounded")

    def insert(self, name: str, ids: list[int], x: np.ndarray, docs: list[str]) -> None:
        if self.name == "qdrant-edge":
            import qdrant_edge as e

            rows = x.tolist()
            self._edge_shards[name].update(e.UpdateOperation.upsert_points(
                [e.Point(i, {EDGE_VECTOR: rows[k]}, payload(i, docs[k])) for k, i in enumerate(ids)]))
        elif self.name == "qdrant-local":
            from qdrant_client import models

            self.open()._client.upsert(name, points=[  # type: ignore[attr-defined]
                models.PointStruct(id=i, vector=x[k].tolist(), payload=payload(i, docs[k])) for k, i in enumerate(ids)])
        else:
            self.milvus.insert(name, [{"id": i, "vector": x[k].tolist(), **payload(i, docs[k])} for k, i in enumerate(ids)])

    def finish_source(self, name: str) -> None:
        """Make the quickstart source a store smec-vdb reads (qdrant-edge: a shard in a marked collection dir)."""
        if self.name == "qdrant-edge":
            self._edge_shards.pop(name).close()
            src = self.root / "edge" / name
            shard_dir = self.root / "edge" / f"{name}.shard"
            src.rename(shard_dir)
            src.mkdir()
            shard_dir.rename(src / "shard")
            (src / ".smec-collection").touch()
            (src / "schema.json").write_text(json.dumps({
                "resolutions": [[EDGE_VECTOR, self.width]], "sparse": [], "distance": "cosine", "id_type": "int"}))
        elif self.name != "qdrant-local":
            self.milvus.flush(name)

    def raw_copy(self, source: str, width: int) -> dict[str, float]:
        """Scroll the source with the engine's own client and upsert every page into a new collection; timed
        from the first read to the last write returned (as ``migrate``'s copy: no flush, no index build)."""
        target = f"raw_{uuid.uuid4().hex[:6]}"
        read = write = 0.0
        if self.name == "qdrant-edge":
            import qdrant_edge as e

            _, src = self.open()._shard(source)  # type: ignore[attr-defined]  # the engine's shard behind the adapter
            dst = e.EdgeShard.create(str(self.root / target), e.EdgeConfig(
                vectors={EDGE_VECTOR: e.EdgeVectorParams(size=width, distance=e.Distance.Cosine)}))
            offset = None
            t_start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                records, offset = src.scroll(e.ScrollRequest(offset=offset, limit=BATCH, with_payload=True,
                                                             with_vector=True))
                t1 = time.perf_counter()
                dst.update(e.UpdateOperation.upsert_points([e.Point(r.id, r.vector, r.payload) for r in records]))
                t2 = time.perf_counter()
                read, write = read + t1 - t0, write + t2 - t1
                if offset is None:
                    break
            t_end = time.perf_counter()
            dst.close()
        elif self.name == "qdrant-local":
            from qdrant_client import models

            client = self.open()._client  # type: ignore[attr-defined]
            client.create_collection(target, vectors_config=models.VectorParams(size=width, distance=models.Distance.COSINE))
            offset = None
            t_start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                records, offset = client.scroll(source, offset=offset, limit=BATCH, with_payload=True, with_vectors=True)
                t1 = time.perf_counter()
                client.upsert(target, points=[models.PointStruct(id=r.id, vector=r.vector, payload=r.payload)
                                              for r in records])
                t2 = time.perf_counter()
                read, write = read + t1 - t0, write + t2 - t1
                if offset is None:
                    break
            t_end = time.perf_counter()
            client.delete_collection(target)
        else:
            client = self.milvus
            client.create_collection(target, dimension=width, metric_type="COSINE", consistency_level="Bounded")
            t_start = time.perf_counter()
            iterator = client.query_iterator(source, batch_size=BATCH, output_fields=["*"])
            while True:
                t0 = time.perf_counter()
                rows = iterator.next()
                t1 = time.perf_counter()
                if not rows:
                    break
                client.upsert(target, rows)
                t2 = time.perf_counter()
                read, write = read + t1 - t0, write + t2 - t1
            t_end = time.perf_counter()
            iterator.close()
            client.drop_collection(target)
        return {"seconds": round(t_end - t_start, 3), "read_s": round(read, 3), "write_s": round(write, 3)}


# -- one set on one target -------------------------------------------------------------------------
def seed(engine: Engine, name: str, chunks: Iterator[np.ndarray], docs: Callable[[int], str]) -> int:
    n = 0
    for x in chunks:
        if not n:
            engine.width = x.shape[1]
            engine.create(name, x.shape[1])
        ids = list(range(n, n + len(x)))
        for start in range(0, len(x), BATCH):
            part = ids[start:start + BATCH]
            engine.insert(name, part, x[start:start + BATCH], [docs(i) for i in part])
        n += len(x)
    engine.finish_source(name)
    return n


def measure(engine: Engine, name: str, n: int, width: int, compressor: Path, store: Path) -> dict[str, Any]:
    """Raw copy, migrate (copy + verification), raw copy again; rates per point."""
    single_field = engine.name == "milvus-2.3.5"
    raw_before = engine.raw_copy(name, width)
    opts = MigrationOptions(source=name, target=f"{name}_smec", compressor=str(compressor), batch_size=BATCH,
                            keep_full=not single_field, verify_queries=VERIFY_QUERIES, min_recall=0.0,
                            compressor_store=str(store), dim=DIM)
    t0 = time.perf_counter()
    report = migrate(engine.open(), opts)
    wall = time.perf_counter() - t0
    raw_after = engine.raw_copy(name, width)
    engine.open().drop(opts.target_name)
    seconds = report["seconds"]
    raw_pps = 2 * n / (raw_before["seconds"] + raw_after["seconds"])
    copy_pps = n / seconds["copy"]
    stored = sum(report["target"]["resolutions"].values())
    mb = 1e6
    return {
        "points": n, "width": width, "stored": report["target"]["resolutions"],
        "raw_copy": {"before": raw_before, "after": raw_after, "points_per_s": round(raw_pps, 1),
                     "MB_per_s": round(raw_pps * 2 * 4 * width / mb, 1)},
        "migrate_copy": {"seconds": seconds["copy"], "points_per_s": round(copy_pps, 1),
                         "MB_per_s": round(copy_pps * 4 * (width + stored) / mb, 1),
                         "busy_s": {p: seconds.get(p, 0.0) for p in PHASES}},
        "copy_over_raw": round(copy_pps / raw_pps, 3),
        "verify": {"seconds": seconds["verify"], "points_per_s": round(n / seconds["verify"], 1),
                   "MB_per_s": round(n / seconds["verify"] * 4 * (width + stored) / mb, 1),
                   "busy_s": {p: seconds.get(p, 0.0) for p in VERIFY_PARTS},
                   "recall_at_10": report["verification"]["recall_at_10"],
                   "passed": report["verification"]["passed"]},
        "verify_over_copy": round(seconds["verify"] / seconds["copy"], 3),
        "survey_s": seconds.get("survey"), "migrate_wall_s": round(wall, 2),
    }


def train_compressor(chunks: Iterator[np.ndarray], directory: Path) -> Path:
    """A compressor for ``full`` + ``d128`` (SMEC, a few epochs on 5,000 points: its speed, not its quality, counts)."""
    from smec_vdb.migrate.plan import choose_schedule
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    x = np.concatenate([c for _, c in zip(range(3), chunks)])[:5000]
    comp = train(x, list(choose_schedule(x.shape[1], DIM)), method="smec", config=TrainConfig(epochs=2, seed=0))
    comp.save(directory)
    return directory


def run_set(set_name: str, make: Callable[[], Iterator[np.ndarray]], docs: Callable[[int], str],
            targets: list[str], uris: dict[str, str | None], root: Path) -> dict[str, Any]:
    compressor = train_compressor(make(), root / f"comp_{set_name}")
    out: dict[str, Any] = {}
    for target in targets:
        if target in ("milvus-lite-server", "milvus-2.3.5") and not uris.get(target):
            out[target] = {"skipped": "no server URI (--lite-uri / --uri)"}
            continue
        engine = Engine(target, root / f"{set_name}-{target}", uris.get(target))
        engine.root.mkdir(parents=True, exist_ok=True)
        name = f"tp_{set_name}_{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        n = seed(engine, name, make(), docs)
        seeded = time.perf_counter() - t0
        try:
            row = measure(engine, name, n, engine.width, compressor, root / "store")
            row["seed_s"] = round(seeded, 1)
            row["load_average"] = os.getloadavg()
        finally:
            if engine.name not in ("qdrant-edge", "qdrant-local", "milvus-lite"):
                engine.open().drop(name)
            engine.open().close()
        out[target] = row
        print(json.dumps({set_name: {target: {k: row[k] for k in ("copy_over_raw", "verify_over_copy")}}}), flush=True)
    return out


# -- verification memory ---------------------------------------------------------------------------------
RSS_SCRIPT = r"""
import json, sys, threading, time
from smec_vdb.adapters import open_backend
from smec_vdb.collection import SmecCollection
from smec_vdb.migrate.plan import inspect_source
from smec_vdb.migrate.verify import verify

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
uri, source, target = sys.argv[1:4]
backend = open_backend("milvus", url=uri)
info = inspect_source(backend, source, None)
col = SmecCollection.open(backend, target)
before = status("VmRSS")
peak = [before]
done = threading.Event()
def sample():
    while not done.wait(0.02):
        peak[0] = max(peak[0], status("VmRSS"))
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
result = verify(backend, backend, info, col, min_recall=0.0, n_queries=200, seed=0, batch=512)
done.set()
print(json.dumps({"rss_before_verify": before, "peak_rss_during_verify": peak[0], "vm_hwm": status("VmHWM"),
                  "seconds": time.perf_counter() - t0, "passed": result["passed"]}))
"""


def verify_memory(uri: str, sizes: tuple[int, ...], root: Path) -> list[dict[str, Any]]:
    """Peak RSS of a fresh process verifying a finished migration of each size (768-d, milvus-lite server)."""
    rows = []
    comp = train_compressor(anisotropic(5000, width=768, seed=1), root / "rss_comp")
    for n in sizes:
        engine = Engine("milvus-lite-server", root / f"rss{n}", uri)
        name = f"rss_{uuid.uuid4().hex[:6]}"
        seed(engine, name, anisotropic(n, width=768, seed=n), lambda i: f"doc {i}")
        migrate(engine.open(), MigrationOptions(source=name, compressor=str(comp), dim=DIM, batch_size=BATCH,
                                                min_recall=0.0, compressor_store=str(root / "store")))
        proc = subprocess.run([sys.executable, "-c", RSS_SCRIPT, uri, name, f"{name}_smec"], capture_output=True,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["points"] = n
        rows.append(result)
        for c in (f"{name}_smec", name):
            engine.open().drop(c)
        engine.open().close()
        print(json.dumps({"verify_rss": result}), flush=True)
    return rows


# -- the cost model ----------------------------------------------------------------------------------------
def cost_model(wide: dict[str, Any], n_points: float = 1e8, deadline_h: float = 24.0) -> dict[str, Any]:
    """Worker-hours of a migration of ``n_points`` × 3584-d (full + d128) from the per-point rates measured on
    the milvus-lite server (one process: its copy wall per point, and its verification's streaming pass per
    point: the verification less the wait for the 200 recall searches, a cost that does not grow with the
    collection), and the bandwidth the server must give at the workers a ``deadline_h`` needs."""
    row = wide["milvus-lite-server"]
    width = row["width"]
    recall_s = row["verify"]["busy_s"]["verify_recall_wait"]
    copy_s = row["migrate_copy"]["seconds"] / row["points"]
    verify_s = (row["verify"]["seconds"] - recall_s) / row["points"]
    hours = (copy_s + verify_s) * n_points / 3600
    workers = int(np.ceil(hours / deadline_h))
    read_b, write_b = 4 * width + 64, 4 * (width + DIM) + 64
    seconds = deadline_h * 3600
    return {
        "points": n_points, "width": width, "stored": f"full {width}-d + d{DIM}",
        "per_point_s": {"copy": copy_s, "verify": verify_s}, "recall_searches_s": recall_s,
        "worker_hours": round(hours, 1),
        "aim_worker_hours": 100, "meets_aim": hours <= 100, "deadline_h": deadline_h, "workers_for_deadline": workers,
        "server_MB_per_s_at_deadline": {
            "copy_read": round(read_b * n_points / seconds / 1e6, 1), "copy_write": round(write_b * n_points / seconds / 1e6, 1),
            "verify_read": round((read_b + write_b) * n_points / seconds / 1e6, 1)},
        "note": "the rates come from one process on this shared 2-core machine, the server on the same cores",
    }


def markdown(results: dict[str, Any]) -> str:
    out = ["# Throughput (issue 24)", "", f"Command: `{results['command']}`; load average {results['load_average_start']} "
           f"→ {results['load_average_end']}; {results['minutes']} min.", ""]
    for set_name in ("scifact", "synthetic3584"):
        if set_name not in results:
            continue
        out += [f"## {set_name}", "", "| target | points | raw copy pts/s (MB/s) | migrate copy pts/s (MB/s) | copy / raw "
                "(aim ≥ 0.9) | verify s | copy s | verify / copy (aim ≤ 1) | pass / copy (verify less the recall wait) | "
                "copy busy s read / encode / write / ckpt | verify busy s read src / read tgt / encode / compare / top-k / "
                "recall wait | recall@10 |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for target, r in results[set_name].items():
            if "skipped" in r:
                out.append(f"| {target} | skipped: {r['skipped']} ||||||||||| ")
                continue
            busy, vbusy = r["migrate_copy"]["busy_s"], r["verify"]["busy_s"]
            out.append(
                f"| {target} | {r['points']:,} | {r['raw_copy']['points_per_s']:,.0f} ({r['raw_copy']['MB_per_s']}) | "
                f"{r['migrate_copy']['points_per_s']:,.0f} ({r['migrate_copy']['MB_per_s']}) | {r['copy_over_raw']} "
                f"{'met' if r['copy_over_raw'] >= 0.9 else 'missed'} | {r['verify']['seconds']} | "
                f"{r['migrate_copy']['seconds']} | {r['verify_over_copy']} {'met' if r['verify_over_copy'] <= 1 else 'missed'}"
                f" | {(r['verify']['seconds'] - vbusy['verify_recall_wait']) / r['migrate_copy']['seconds']:.3f}"
                f" | {' / '.join(str(round(busy[p], 1)) for p in PHASES)} | "
                f"{' / '.join(str(round(vbusy[p], 1)) for p in VERIFY_PARTS)} | {r['verify']['recall_at_10']} |")
        out.append("")
    if results.get("verify_rss"):
        rows = results["verify_rss"]
        run = results.get("verify_rss_run")  # measured by a run of its own (--sets none), merged into this file
        out += ["## Verification memory (milvus-lite server, 768-d)", ""]
        if run:
            out += [f"Command: `{run['command']}`; load average {run['load_average_start']} → {run['load_average_end']}; "
                    f"{run['minutes']} min.", ""]
        out += ["| points | RSS before | peak during verify | "
                "rise | verify s |", "|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r['points']:,} | {r['rss_before_verify'] / 2**20:.0f} MiB | "
                       f"{r['peak_rss_during_verify'] / 2**20:.0f} MiB | "
                       f"{(r['peak_rss_during_verify'] - r['rss_before_verify']) / 2**20:.0f} MiB | {r['seconds']:.1f} |")
        ratio = rows[-1]["peak_rss_during_verify"] / rows[0]["peak_rss_during_verify"]
        out += ["", f"Peak at {rows[-1]['points']:,} over peak at {rows[0]['points']:,}: {ratio:.3f} "
                f"(aim ≤ 1.2: {'met' if ratio <= 1.2 else 'missed'})", ""]
    if results.get("cost_model"):
        m = results["cost_model"]
        out += ["## Cost model, 10^8 × 3584-d (full + d128)", "", f"{m['worker_hours']} worker-hours (aim ≤ 100: "
                f"{'met' if m['meets_aim'] else 'missed'}) from {m['per_point_s']['copy'] * 1e3:.2f} ms copy + "
                f"{m['per_point_s']['verify'] * 1e3:.2f} ms verification pass per point (plus "
                f"{m['recall_searches_s']:.0f} s of recall searches, whatever the size); {m['workers_for_deadline']} workers for "
                f"{m['deadline_h']} h, the server then serving {m['server_MB_per_s_at_deadline']} MB/s.", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MILVUS_URI"), help="Milvus 2.3.5 server")
    parser.add_argument("--lite-uri", default=os.environ.get("MILVUS_LITE_URI"), help="milvus-lite server")
    parser.add_argument("--wide-points", type=int, default=50_000)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--sets", default="scifact,synthetic3584")
    parser.add_argument("--rss-sizes", default="20000,100000")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--from-json", type=Path, help="recompute the cost model and the tables of a saved run")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        finish(results, args.out)
        return
    targets = args.targets.split(",")
    uris = {"milvus-lite-server": args.lite_uri, "milvus-2.3.5": args.uri}
    started = time.perf_counter()
    results: dict[str, Any] = {"command": " ".join(["benchmarks/throughput.py", *sys.argv[1:]]),
                               "load_average_start": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "scifact" in args.sets:
            data = scifact()
            if data is None:
                results["scifact"] = {t: {"skipped": "../shared/data is absent"} for t in targets}
            else:
                vectors, ids = data
                results["scifact"] = run_set("scifact", lambda: iter([vectors]), lambda i: ids[i], targets, uris, root)
        if "synthetic3584" in args.sets:
            results["synthetic3584"] = run_set("synthetic3584", lambda: anisotropic(args.wide_points), lambda i: f"doc {i}",
                                               targets, uris, root)
        if not args.skip_rss and args.lite_uri:
            results["verify_rss"] = verify_memory(args.lite_uri, tuple(int(s) for s in args.rss_sizes.split(",")), root)
    results["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    finish(results, args.out)


def finish(results: dict[str, Any], out: Path) -> None:
    """The cost model (from the milvus-lite server's 3584-d rates), then the JSON and the tables saved and printed."""
    wide = results.get("synthetic3584", {})
    if "skipped" not in wide.get("milvus-lite-server", {"skipped": "absent"}):
        results["cost_model"] = cost_model(wide)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    text = markdown(results)
    (out / "throughput.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
