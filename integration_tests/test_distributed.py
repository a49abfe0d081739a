"""Scale-out migration on Ray Data (issue 14): exactly-once after SIGKILL of a worker or of the driver,
and the refusal of embedded engines.

One local Ray cluster per session (``ray.init(num_cpus=2)`` in this process); ``smec-vdb migrate
--workers 2 --ray-address <it>`` runs as a subprocess (the driver) against the ``milvus-lite
server`` (fixture ``milvus_lite_server_uri``). Sources are made with pymilvus as a user would
(quick setup: pk ``id``, vector ``vector``, dynamic fields) and the target is read back with
pymilvus: every source id once, payloads equal, ``full`` equal to the normalised source vector,
``d16`` equal to a fresh encode by the saved compressor, no checkpoint key left, the report's
verification passed, the source unchanged. ``SMEC_VDB_RAY_KILLS`` (default 1) kills per kind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from targets import milvus_client

from faults import CLI, cli_env, clustered_vectors, run_cli, train_compressor
from smec_vdb.compress.artifact import load as load_compressor
from smec_vdb.errors import SingleWriterError, SmecError
from smec_vdb.migrate import CHECKPOINT_KEY, MigrationOptions
from smec_vdb.migrate.distributed import RANGE_KEY_PREFIX, Connection, migrate_distributed

pytest.importorskip("ray", reason="the distributed path needs smec-vdb[ray]")
pymilvus = pytest.importorskip("pymilvus")

N, WIDTH, BATCH = 1500, 32, 15  # 100 pages: a kill lands inside the copy
DIMS = (24, 16)
KILLS = int(os.environ.get("SMEC_VDB_RAY_KILLS", "1"))
META_SUFFIX = "__smec_meta"  # where the Milvus adapter keeps a collection's metadata (one row per key)


@pytest.fixture(scope="session")
def ray_address() -> Any:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=150 * 2**20)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def compressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_compressor(clustered_vectors(N, WIDTH, seed=1), DIMS, tmp_path_factory.mktemp("comp") / "c")


class Source:
    """A source collection made with pymilvus on the server, and its target, dropped afterwards."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = milvus_client(uri)
        self.name = f"src_{uuid.uuid4().hex[:8]}"
        self.target = f"{self.name}_smec"
        self.vectors = clustered_vectors(N, WIDTH, seed=2)
        self.client.create_collection(self.name, dimension=WIDTH, metric_type="COSINE")
        self.client.insert(self.name, [{"id": i, "vector": self.vectors[i].tolist(), "g": i % 7, "name": f"doc {i}"}
                                       for i in range(N)])

    def rows(self, collection: str, fields: list[str]) -> list[dict]:
        rows = self.client.query(collection, filter="id >= 0", output_fields=fields, limit=16384)
        return sorted(rows, key=lambda r: r["id"])

    def digest(self) -> str:
        rows = self.rows(self.name, ["*"])
        return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()

    def checkpoint(self) -> dict | None:
        """The target's checkpoint as the driver wrote it (None while there is none)."""
        if not self.client.has_collection(self.target + META_SUFFIX):  # not created yet
            return None
        rows = self.client.get(self.target + META_SUFFIX, ids=[CHECKPOINT_KEY], output_fields=["value"])
        return dict(rows[0]["value"]) if rows else None

    def range_checkpoints(self) -> list[dict]:
        if not self.client.has_collection(self.target + META_SUFFIX):
            return []
        rows = self.client.query(self.target + META_SUFFIX, filter=f'key like "{RANGE_KEY_PREFIX}%"',
                                 output_fields=["key", "value"], limit=1000)
        return [dict(r["value"]) for r in rows]

    def drop(self) -> None:
        for name in (self.target + META_SUFFIX, self.target, self.name):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        self.client.close()


@pytest.fixture
def source(milvus_lite_server_uri: str) -> Any:
    src = Source(milvus_lite_server_uri)
    yield src
    src.drop()


def migrate_args(src: Source, address: str, tmp_path: Path, compressor: Path | None) -> list[str]:
    how = ["--compressor", str(compressor)] if compressor else ["--dims", ",".join(map(str, DIMS)), "--epochs", "2"]
    return ["migrate", "--collection", src.name, "--backend", "milvus", "--url", src.uri, *how,
            "--batch-size", str(BATCH), "--verify-queries", "50", "--workers", "2", "--ray-address", address,
            "--compressor-store", str(tmp_path / "store"), "--report", str(tmp_path / "report.json")]


def assert_exactly_once(src: Source, tmp_path: Path, before: str) -> dict:
    """The finished target holds every source point once, equal to the source and a fresh encode."""
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verification"]["passed"], report["verification"]["summary"]
    assert report["points_written"] == N
    total = src.client.query(src.target, filter="", output_fields=["count(*)"])[0]["count(*)"]
    rows = src.rows(src.target, ["id", "g", "name", "full", "d16"])  # the source's own columns (issue 21)
    assert total == N and [r["id"] for r in rows] == list(range(N)), "lost or duplicated points"
    comp = load_compressor(report["compressor"]["path"])
    fresh = comp.encode(src.vectors, 16)
    for r in rows:
        i = r["id"]
        assert (r["g"], r["name"]) == (i % 7, f"doc {i}")
        np.testing.assert_allclose(np.asarray(r["full"]), src.vectors[i] / np.linalg.norm(src.vectors[i]), atol=1e-4)
        np.testing.assert_allclose(np.asarray(r["d16"]), fresh[i], atol=1e-4)
    assert src.checkpoint() is None and src.range_checkpoints() == [], "a checkpoint was left behind"
    assert src.digest() == before, "the source changed"
    return report


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return  # finished before the moment came: the kill is skipped, the checks still run
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.1)


def worker_pids() -> list[int]:
    """Ray Data workers copying ranges (their process title names the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"RangeCopier" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


#: when the driver is killed: anchored on what the run has made visible in the target, then a random delay
DRIVER_KILL_POINTS: dict[str, tuple[Callable[[Source], bool], float]] = {
    "startup": (lambda s: s.checkpoint() is not None, 6.0),  # planning the ranges, starting the workers
    "copy": (lambda s: range_in_progress(s), 1.0),  # pages being written by both workers
    "verify": (lambda s: bool((s.checkpoint() or {}).get("copied")), 3.0),  # every range copied
}


@pytest.mark.server
@pytest.mark.parametrize("kill", range(KILLS))
@pytest.mark.parametrize("moment", [  # CI runs the mid-copy kill; `-m slow` adds the other two phases (45 s each)
    pytest.param(moment, marks=() if moment == "copy" else pytest.mark.slow) for moment in DRIVER_KILL_POINTS])
def test_sigkill_driver_then_rerun_is_exactly_once(source: Source, ray_address: str, tmp_path: Path,
                                                   moment: str, kill: int) -> None:
    """The driver (training on a sample, then the Ray copy, then verifying) is killed at a random moment
    of a phase; the same command run again finishes only the unfinished ranges."""
    rng = random.Random(f"{moment}{kill}")
    before = source.digest()
    args = migrate_args(source, ray_address, tmp_path, None)
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    reached, spread = DRIVER_KILL_POINTS[moment]
    wait_for(lambda: reached(source), proc)
    time.sleep(rng.uniform(0.0, spread))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    states, checkpoint = source.range_checkpoints(), source.checkpoint() or {}
    print(f"driver kill at {moment} {kill}: killed={killed}, copy finished {bool(checkpoint.get('copied'))}, "
          f"ranges done {sum(bool(s.get('copied')) for s in states)} of {len(checkpoint.get('ranges') or [])}, "
          f"points in range checkpoints {sum(int(s.get('written', 0)) for s in states)}")
    run_cli(*args)
    assert_exactly_once(source, tmp_path, before)


def range_in_progress(src: Source) -> bool:
    return any(s.get("written") and not s.get("copied") for s in src.range_checkpoints())


@pytest.mark.server
@pytest.mark.parametrize("kill", range(KILLS))
def test_sigkill_worker_is_exactly_once(source: Source, ray_address: str, compressor: Path, tmp_path: Path,
                                        kill: int) -> None:
    """A worker is killed in the middle of a range: Ray restarts it and the range resumes from its
    checkpoint in the same run (else the rerun does); the target is exact either way."""
    rng = random.Random(100 + kill)
    before = source.digest()
    args = migrate_args(source, ray_address, tmp_path, compressor)
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    wait_for(lambda: range_in_progress(source), proc)
    pids = worker_pids()
    if proc.poll() is None and pids:
        os.kill(rng.choice(pids), signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    print(f"worker kill {kill}: {len(pids)} workers seen, driver exit {proc.returncode}")
    if proc.returncode != 0:
        run_cli(*args)
    assert pids, "no Ray Data worker was found to kill"
    assert_exactly_once(source, tmp_path, before)


@pytest.mark.parametrize("end", ["source", "target"])
@pytest.mark.parametrize("embedded", [Connection("milvus", path="lite.db"), Connection("qdrant", path="qdrant"),
                                      Connection("qdrant-edge", path="edge")], ids=lambda c: c.target)
def test_embedded_engines_are_refused_before_anything_is_written(tmp_path: Path, end: str,
                                                                 embedded: Connection) -> None:
    """One writer process per embedded store: refused before reading, training or writing (no store
    created, no compressor saved); the server end is never contacted."""
    local = Connection(embedded.engine, path=str(tmp_path / str(embedded.path)))
    server = Connection("milvus", url="http://127.0.0.1:9")  # nothing listens there: it must not be needed
    source, target = (local, server) if end == "source" else (server, local)
    opts = MigrationOptions(source="docs", dim=16, compressor_store=str(tmp_path / "store"))
    with pytest.raises(SingleWriterError, match=f"{end} is {local.target}, an embedded engine"):
        migrate_distributed(source, opts, target=target, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_embedded_store_with_workers(tmp_path: Path) -> None:
    proc = run_cli("migrate", "--collection", "docs", "--dim", "16", "--path", str(tmp_path / "edge"),
                   "--workers", "2", "--compressor-store", str(tmp_path / "store"), expect=1)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "qdrant-edge, an embedded engine" in lines[0] and "--workers" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_library_errors_name_parameters() -> None:
    with pytest.raises(SmecError, match="workers must be >= 1"):
        migrate_distributed(Connection("milvus", url="http://127.0.0.1:9"), MigrationOptions(source="d", dim=8),
                            workers=0)


@pytest.mark.server
def test_verification_of_a_distributed_run_fails_on_a_corrupted_target_and_the_rerun_repairs_it(
        source: Source, ray_address: str, compressor: Path, tmp_path: Path) -> None:
    """The distributed command verifies like the single-process one: a target changed behind its back
    (a point deleted, a payload edited, an encoding overwritten, with pymilvus) fails ``--check`` naming
    each kind, and the same command without it rewrites only those points and passes."""
    before = source.digest()
    args = migrate_args(source, ray_address, tmp_path, compressor)
    run_cli(*args)
    rows = {r["id"]: r for r in source.rows(source.target, ["id", "payload", "full", "d16", "d24"])}
    source.client.delete(source.target, ids=[3])
    source.client.upsert(source.target, [{**rows[5], "payload": {"g": 99, "name": "doc 5"}},
                                         {**rows[8], "d16": [0.25] * 16}])
    check = run_cli(*args, "--check", expect=1)
    assert "missing" in check.stderr + check.stdout and "payload or sparse vectors differ" in check.stderr + check.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["drift"]["first_ids"] == {"missing": [3], "payload or sparse vectors differ": [5],
                                            "encoding differs from a fresh encode": [8]}
    run_cli(*args)
    report = assert_exactly_once(source, tmp_path, before)
    assert report["resync"]["rewritten"] == 3
