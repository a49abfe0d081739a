"""`smec-vdb migrate` end to end on the embedded engines, driven as a user would: a subprocess per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from smec_vdb.adapters import open_backend
from smec_vdb import engines
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.migrate import CHECKPOINT_KEY, MigrationInterrupted, MigrationOptions, migrate

from faults import StopInCopy

N_POINTS = 1200
WIDTH = 48
#: the embedded targets of smec_vdb.engines but qdrant-local (one SQLite commit per point: too slow here)
TARGETS = {name: engines.target(name) for name in engines.target_names(embedded=True) if name != "qdrant-local"}


def _open(args: list[str]):
    return open_backend(args[1], path=args[3])


def clustered_vectors(n: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, width)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, width)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=sorted(TARGETS), ids=sorted(TARGETS))
def store(request, tmp_path):
    """Backend CLI args for a fresh embedded store holding a source collection ``src``."""
    spec = TARGETS[request.param]
    args = ["--backend", spec.engine, "--path", str(tmp_path / str(spec.test_store))]
    b = _open(args)
    b.create_collection("src", CollectionSchema((Resolution("emb", WIDTH),), "cosine", "int", {"g": "integer"}))
    x = clustered_vectors(N_POINTS, WIDTH)
    b.upsert("src", Batch(ids=list(range(N_POINTS)), vectors={"emb": x},
                          payloads=[{"g": i % 7, "name": f"doc {i}"} for i in range(N_POINTS)]))
    b.close()
    return args + ["--compressor-store", str(tmp_path / "compressors")]


def run_cli(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def backend_args(store: list[str]) -> list[str]:
    return store[:4]


def source_digest(args: list[str]) -> str:
    import hashlib

    b = _open(args)
    try:
        pts, cursor = [], None
        while True:
            page, cursor = b.scroll("src", cursor=cursor, limit=500, with_vectors=True)
            pts.extend(page)
            if cursor is None:
                break
        h = hashlib.sha256()
        for p in sorted(pts, key=lambda p: p.id):
            h.update(json.dumps([p.id, p.payload], sort_keys=True).encode())
            h.update(np.round(np.asarray(p.vectors["emb"], dtype=np.float32), 5).tobytes())
        return h.hexdigest()
    finally:
        b.close()


MIGRATE = ["migrate", "--collection", "src", "--dim", "16", "--epochs", "3", "--verify-queries", "40"]


def test_dry_run_writes_nothing(store, tmp_path):
    before = source_digest(backend_args(store))
    proc = run_cli(*MIGRATE, "--dry-run", "--report", str(tmp_path / "plan.json"), *store)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["dry_run"] is True
    assert plan["source"]["count"] == N_POINTS and plan["source"]["width"] == WIDTH
    assert plan["bytes_per_point"] == {"before": 4 * WIDTH, "after": 4 * (WIDTH + 16)}
    assert 0.0 <= plan["estimated_recall_at_10"] <= 1.0
    assert "dry run" in proc.stderr + proc.stdout
    b = _open(backend_args(store))
    try:
        assert b.list_collections() == ["src"]
    finally:
        b.close()
    assert not (tmp_path / "compressors").exists()
    assert source_digest(backend_args(store)) == before


def test_migrate_verifies_and_swaps_alias(store, tmp_path):
    before = source_digest(backend_args(store))
    run_cli(*MIGRATE, "--swap-alias", "live", "--min-recall", "0.5", "--report", str(tmp_path / "r.json"), *store)
    report = json.loads((tmp_path / "r.json").read_text())
    v = report["verification"]
    assert v["passed"] and v["count_target"] == N_POINTS and v["points_checked"] == N_POINTS
    assert v["differences"] == {}
    assert report["target"]["resolutions"] == {"full": WIDTH, "d16": 16}
    assert report["alias"] == {"name": "live", "collection": "src_smec"}
    b = _open(backend_args(store))
    try:
        if b.supports_aliases:
            assert b.resolve_alias("live") == "src_smec"
        assert b.get_metadata("src_smec", CHECKPOINT_KEY) is None
    finally:
        b.close()
    assert source_digest(backend_args(store)) == before
    # Idempotent: the same command again re-verifies and writes no duplicates.
    run_cli(*MIGRATE, "--min-recall", "0.5", "--report", str(tmp_path / "r2.json"), *store)
    again = json.loads((tmp_path / "r2.json").read_text())
    assert again["already_complete"] and again["verification"]["count_target"] == N_POINTS


def library_options(tmp_path, batch_size: int) -> MigrationOptions:
    """The library equivalent of MIGRATE with --min-recall 0.5 (same plan, so the CLI can resume it)."""
    return MigrationOptions(source="src", dim=16, batch_size=batch_size, verify_queries=40, min_recall=0.5,
                            compressor_store=str(tmp_path / "compressors"), train_options={"epochs": 3})


def test_resume_after_interruption_then_restart(store, tmp_path):
    args = backend_args(store)
    opts = library_options(tmp_path, batch_size=200)
    b = _open(args)
    try:
        with pytest.raises(MigrationInterrupted, match="run the same command again"):
            stop = StopInCopy(3)
            migrate(b, opts, progress=stop.progress, should_stop=stop)
        checkpoint = b.get_metadata("src_smec", CHECKPOINT_KEY)
        assert checkpoint is not None and checkpoint["written"] == 600
        assert b.count("src_smec") == 600
    finally:
        b.close()
    run_cli(*MIGRATE, "--batch-size", "200", "--min-recall", "0.5", "--report", str(tmp_path / "r.json"), *store)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed"] and report["verification"]["passed"]
    assert report["verification"]["count_target"] == N_POINTS and report["verification"]["differences"] == {}
    # Another plan on the same target is refused; --restart starts over.
    proc = run_cli(*MIGRATE[:4], "24", *MIGRATE[5:], "--min-recall", "0.5", *store, expect=1)
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    run_cli(*MIGRATE[:4], "24", *MIGRATE[5:], "--min-recall", "0.5", "--restart", "--report",
            str(tmp_path / "r3.json"), *store)
    restarted = json.loads((tmp_path / "r3.json").read_text())
    assert not restarted["resumed"] and restarted["target"]["resolutions"] == {"full": WIDTH, "d24": 24}


def test_failed_verification_exits_nonzero_and_swaps_nothing(store, tmp_path):
    proc = run_cli("migrate", "--collection", "src", "--dim", "2", "--drop-full", "--epochs", "1",
                   "--verify-queries", "40", "--min-recall", "0.99", "--swap-alias", "live",
                   "--report", str(tmp_path / "r.json"), *store, expect=1)
    assert "recall@10" in proc.stderr and "--min-recall" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert not report["verification"]["passed"] and report["alias"] is None
    b = _open(backend_args(store))
    try:
        if b.supports_aliases:
            assert b.resolve_alias("live") is None
    finally:
        b.close()


def test_bad_options_fail_with_one_line(store):
    proc = run_cli("migrate", "--collection", "nope", "--dim", "16", *store, expect=1)
    assert proc.stderr.startswith("error:") and "nope" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("migrate", "--collection", "src", "--dims", "16,32", *store, expect=1)
    assert "decreasing" in proc.stderr


def test_stop_during_verification_resumes(store, tmp_path):
    args = backend_args(store)
    opts = library_options(tmp_path, batch_size=400)
    b = _open(args)
    try:
        # 4 checks during the copy (3 batches + end), then the first one inside verification stops
        with pytest.raises(MigrationInterrupted, match="during verification"):
            stop = StopInCopy(4)
            migrate(b, opts, progress=stop.progress, should_stop=stop)
        checkpoint = b.get_metadata("src_smec", CHECKPOINT_KEY)
        assert checkpoint is not None and checkpoint["copied"] and checkpoint["written"] == N_POINTS
        report = migrate(b, opts)
    finally:
        b.close()
    assert report["verification"]["passed"] and report["points_written"] == N_POINTS
