"""Scale-out migration on Ray Data (issues 14, 24): two Ray nodes on this machine, a Milvus server, and kills
of the driver, a worker process and a whole node; every point exactly once; nothing read from a shared path.

One local cluster per module (``ray.cluster_utils.Cluster``: a head node and a worker node, each its own
raylet and object store, on this machine's address: Ray rewrites a 127.0.0.1 address to it when a
driver connects). The worker node's Python processes start with an audit hook (a ``sitecustomize`` on their
``PYTHONPATH``) that refuses, and records, any file opened under the driver's directory, where the
compressor store lives: every test ends by checking that the worker node did real work (it imported
the sink or the encoder) and never tried to read there. ``smec-vdb migrate --workers 2 --ray-address
<cluster>`` runs as a subprocess (the driver) against the ``milvus-lite server`` (fixture
``milvus_lite_server_uri``). Sources are made with pymilvus as a user would (quick setup: pk ``id``,
vector ``vector``, dynamic fields) and the target is read back with pymilvus: every source id once,
payloads equal, ``full`` equal to the normalised source vector, ``d16`` equal to a fresh encode by the
saved compressor, no checkpoint key left, the report's verification passed, the source unchanged.
``SMEC_VDB_RAY_KILLS`` (default 1) kills per kind.
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
from dataclasses import dataclass
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

N, WIDTH, BATCH = 900, 32, 15  # 60 pages: a kill lands inside the copy
DIMS = (24, 16)
KILLS = int(os.environ.get("SMEC_VDB_RAY_KILLS", "1"))
META_SUFFIX = "__smec_meta"  # where the Milvus adapter keeps a collection's metadata (one row per key)

SITECUSTOMIZE = '''
import os, sys
_root = os.environ["SMEC_TEST_DRIVER_ONLY"]
def _hook(event, args):
    if event == "import" and args and str(args[0]).startswith("smec_vdb.migrate.ray."):
        with open(os.environ["SMEC_TEST_IMPORTS"], "a") as f:
            f.write(str(args[0]) + "\\n")
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(_root):
            with open(os.environ["SMEC_TEST_VIOLATIONS"], "a") as f:
                f.write(f"{os.getpid()} {path}\\n")
            raise PermissionError(f"a worker node read the driver's path {path}")
sys.addaudithook(_hook)
'''


@dataclass
class TwoNodes:
    """The cluster, the driver-only directory (compressor stores go there) and the worker node's records."""

    cluster: Any
    worker: Any
    driver_only: Path
    hook: Path

    @property
    def address(self) -> str:
        return self.cluster.address

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.hook), "SMEC_TEST_DRIVER_ONLY": str(self.driver_only),
                "SMEC_TEST_VIOLATIONS": str(self.hook / "violations"), "SMEC_TEST_IMPORTS": str(self.hook / "imports")}

    def add_worker(self) -> None:
        self.worker = self.cluster.add_node(num_cpus=3, env_vars=self.env())
        self.cluster.wait_for_nodes()

    def assert_no_shared_path(self) -> None:
        violations = self.hook / "violations"
        assert not violations.exists(), f"the worker node read the driver's files: {violations.read_text()[:500]}"
        imports = (self.hook / "imports").read_text() if (self.hook / "imports").exists() else ""
        assert "smec_vdb.migrate.ray." in imports, "no migration work ran on the worker node"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ray.cluster_utils import Cluster

    hook = tmp_path_factory.mktemp("worker-node-hook")
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "include_dashboard": False})
    nodes = TwoNodes(cluster, None, tmp_path_factory.mktemp("driver-only"), hook)
    try:
        nodes.add_worker()
        yield nodes
    finally:
        cluster.shutdown()


@pytest.fixture
def cluster(two_nodes: TwoNodes) -> Any:
    """The two nodes (the worker node restarted if a test removed it); the no-shared-path check after."""
    if two_nodes.worker not in two_nodes.cluster.worker_nodes:
        two_nodes.add_worker()
    for record in ("violations", "imports"):
        (two_nodes.hook / record).unlink(missing_ok=True)
    yield two_nodes
    two_nodes.assert_no_shared_path()


@pytest.fixture(scope="module")
def compressor(two_nodes: TwoNodes) -> Path:
    return train_compressor(clustered_vectors(N, WIDTH, seed=1), DIMS, two_nodes.driver_only / "comp")


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


def migrate_args(src: Source, nodes: TwoNodes, tmp_path: Path, compressor: Path | None) -> list[str]:
    how = ["--compressor", str(compressor)] if compressor else ["--dims", ",".join(map(str, DIMS)), "--epochs", "2"]
    return ["migrate", "--collection", src.name, "--backend", "milvus", "--url", src.uri, *how,
            "--batch-size", str(BATCH), "--verify-queries", "50", "--workers", "2", "--ray-address", nodes.address,
            "--compressor-store", str(nodes.driver_only / "store"), "--report", str(tmp_path / "report.json")]


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


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return  # finished before the moment came: the kill is skipped, the checks still run
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.1)


def range_in_progress(src: Source) -> bool:
    """A range's checkpoint shows pages written and the range unfinished (the copy is under way)."""
    return any(s.get("written") and not s.get("copied") for s in src.range_checkpoints())


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())


#: when the driver is killed: anchored on what the run has made visible in the target, then a random delay
DRIVER_KILL_POINTS: dict[str, tuple[Callable[[Source], bool], float]] = {
    "startup": (lambda s: s.checkpoint() is not None, 6.0),  # cutting the ranges, starting the workers
    "copy": (range_in_progress, 1.0),  # pages being written on both nodes
    "verify": (lambda s: bool((s.checkpoint() or {}).get("copied")), 3.0),  # every range copied
}


@pytest.mark.server
@pytest.mark.parametrize("kill", range(KILLS))
@pytest.mark.parametrize("moment", [  # CI runs the mid-copy kill; `-m slow` adds the other two phases
    pytest.param(moment, marks=() if moment == "copy" else pytest.mark.slow) for moment in DRIVER_KILL_POINTS])
def test_sigkill_driver_then_rerun_is_exactly_once(source: Source, cluster: TwoNodes, tmp_path: Path,
                                                   moment: str, kill: int) -> None:
    """The driver (training on a sample, then the Ray copy, then verifying) is killed at a random moment
    of a phase; the same command run again finishes only the unfinished ranges, each from its checkpoint."""
    rng = random.Random(f"{moment}{kill}")
    before = source.digest()
    args = migrate_args(source, cluster, tmp_path, None)
    proc = start(args)
    reached, spread = DRIVER_KILL_POINTS[moment]
    wait_for(lambda: reached(source), proc)
    time.sleep(rng.uniform(0.0, spread))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    states, checkpoint = source.range_checkpoints(), source.checkpoint() or {}
    print(f"driver kill at {moment} {kill}: killed={killed}, copy finished {bool(checkpoint.get('copied'))}, "
          f"ranges done {sum(bool(s.get('copied')) for s in states)} of {checkpoint.get('ranges')}, "
          f"points in range checkpoints {sum(int(s.get('written', 0)) for s in states)}")
    run_cli(*args)
    assert_exactly_once(source, tmp_path, before)


@pytest.mark.server
def test_a_node_removed_mid_copy_is_exactly_once(source: Source, cluster: TwoNodes, compressor: Path,
                                                 tmp_path: Path) -> None:
    """The worker node (its raylet and every worker on it) goes away while ranges are being copied: Ray
    runs its tasks again on the head node, or the run fails and the same command resumes it."""
    before = source.digest()
    args = migrate_args(source, cluster, tmp_path, compressor)
    proc = start(args)
    wait_for(lambda: range_in_progress(source), proc)
    removed = proc.poll() is None
    if removed:
        cluster.assert_no_shared_path()  # the worker node took part before it went
        cluster.cluster.remove_node(cluster.worker, allow_graceful=False)
    out, err = proc.communicate(timeout=600)
    print(f"node removed mid-copy: {removed}, driver exit {proc.returncode}: {err.strip().splitlines()[-1:]}")
    if proc.returncode != 0:
        assert err.strip().splitlines()[-1].startswith("error:"), err[-2000:]
        cluster.add_worker()
        run_cli(*args)
    assert removed, "the run finished before the node could be removed"
    assert_exactly_once(source, tmp_path, before)


def worker_pids() -> list[int]:
    """Ray worker processes of the copy: the encoder actors (their process title names the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"SmecEncoder" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.server
@pytest.mark.slow  # the removed node covers a lost worker; this kills one process of a live node
@pytest.mark.parametrize("kill", range(KILLS))
def test_sigkill_worker_is_exactly_once(source: Source, cluster: TwoNodes, compressor: Path, tmp_path: Path,
                                        kill: int) -> None:
    """An encoder actor is killed in the middle of the copy: Ray restarts it and retries its batches
    (else the rerun resumes); the target is exact either way."""
    rng = random.Random(100 + kill)
    before = source.digest()
    args = migrate_args(source, cluster, tmp_path, compressor)
    proc = start(args)
    wait_for(lambda: range_in_progress(source), proc)
    pids = worker_pids()
    if proc.poll() is None and pids:
        os.kill(rng.choice(pids), signal.SIGKILL)
    proc.communicate(timeout=600)
    print(f"worker kill {kill}: {len(pids)} encoder workers seen, driver exit {proc.returncode}")
    if proc.returncode != 0:
        run_cli(*args)
    assert pids, "no Ray Data worker was found to kill"
    assert_exactly_once(source, tmp_path, before)


@pytest.mark.server
def test_write_smec_from_an_ingestion_dataset(milvus_lite_server_uri: str, cluster: TwoNodes, compressor: Path) -> None:
    """An ingestion job that makes embeddings in Ray writes a multi-resolution collection in one call; the
    application then reads it back with pymilvus (payload filter) and searches it with smec-vdb."""
    import ray

    from smec_vdb.collection import SmecCollection
    from smec_vdb.migrate.ray import write_smec

    vectors = clustered_vectors(600, WIDTH, seed=5)
    name = f"ingest_{uuid.uuid4().hex[:8]}"
    connection = Connection("milvus", url=milvus_lite_server_uri)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        ds = ray.data.from_items([{"id": i, "vector": vectors[i], "title": f"t{i}", "year": 2000 + i % 30}
                                  for i in range(600)], override_num_blocks=4)
        result = write_smec(ds, connection, name, compressor, dims=[16], concurrency=2)
    finally:
        ray.shutdown()
    client = pymilvus.MilvusClient(uri=milvus_lite_server_uri)
    backend = connection.open()
    try:
        assert result == {"written": 600, "skipped": 0}
        rows = client.query(name, filter='payload["year"] == 2029', output_fields=["id", "payload", "d16"], limit=100)
        assert sorted(r["id"] for r in rows) == list(range(29, 600, 30))
        comp = load_compressor(compressor)
        for r in rows:
            assert r["payload"] == {"title": f"t{r['id']}", "year": 2029}
            np.testing.assert_allclose(r["d16"], comp.encode(vectors[r["id"]], 16)[0], atol=1e-4)
        hits = SmecCollection.open(backend, name).search(vectors[7], k=5)
        assert hits[0].id == 7
    finally:
        backend.drop(name)
        backend.close()
        client.close()


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


def test_write_smec_refuses_an_embedded_target_before_writing(tmp_path: Path) -> None:
    from smec_vdb.migrate.ray import write_smec

    with pytest.raises(SingleWriterError, match="target is milvus-lite"):
        write_smec(None, Connection("milvus", path=str(tmp_path / "lite.db")), "docs", tmp_path / "nowhere")  # type: ignore[arg-type]
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
        source: Source, cluster: TwoNodes, compressor: Path, tmp_path: Path) -> None:
    """The distributed command verifies like the single-process one: a target changed behind its back
    (a point deleted, a payload edited, an encoding overwritten, with pymilvus) fails ``--check`` naming
    each kind, and the same command without it rewrites only those points and passes."""
    before = source.digest()
    args = migrate_args(source, cluster, tmp_path, compressor)
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
