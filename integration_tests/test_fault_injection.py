"""Crash safety of ``smec-vdb migrate`` (issue 6): SIGKILL at random moments, resume, exactly-once.

Each embedded target gets a seeded source, copied fresh for every kill point: ``migrate`` runs as a
subprocess and is SIGKILLed at a random moment of a phase taken in turn — training, a random batch
of the copy, verification, completion/alias swap — anchored on the run's visible progress (the
checkpoint in Qdrant's metadata files; the target's creation on Milvus Lite), then the same command
is run again. After every kill the store must be consistent (every point the checkpoint claims is in
the target; no point twice; stored vectors equal a fresh encode); after the resume every source point
is in the target exactly once, the checkpoint is gone, the alias points at the target, the report
counts each point once and the source is what it was.

The default run kills each target 3 times (plus a kill during training on Milvus Lite); the full
randomised run is marked ``slow``: ``SMEC_VDB_KILLS=20 pytest -m slow integration_tests/test_fault_injection.py``.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from faults import (
    CLI,
    SOURCE,
    TARGET,
    VECTOR,
    EmbeddedStore,
    assert_exactly_once,
    assert_one_line_error,
    cli_env,
    clustered_vectors,
    target_dir_exists,
    visible_metadata,
    read_all,
    run_and_kill,
    run_cli,
    seed_source,
    source_digest,
    target_state,
    train_compressor,
)
from smec_vdb.compress.artifact import load as load_compressor
from smec_vdb.errors import BackendError
from smec_vdb.migrate import CHECKPOINT_KEY, COMPLETE_KEY

WIDTH = 32
DIMS = (24, 16)  # a layout whose coarse-to-fine search clears the default recall gate (0.95) at these sizes
#: points and batch size per target: enough batches that random kills land inside the copy
SIZES = {"qdrant-edge": (4000, 8), "milvus-lite": (900, 30), "qdrant-local": (240, 12)}
ALIAS = "live"
#: Milvus Lite 3.2.2 writes index files in place: a kill while it flushes can leave one cut short
TRUNCATED_BY_ENGINE = "a file of the collection's index is cut short"
FULL_KILLS = int(os.environ.get("SMEC_VDB_KILLS", "20"))


@dataclass
class KillLog:
    """Kill points survived on one target, by the phase the store showed afterwards."""

    target: str
    phases: collections.Counter = field(default_factory=collections.Counter)
    finished_before_kill: int = 0

    @property
    def kills(self) -> int:
        return sum(self.phases.values())


@pytest.fixture(scope="module")
def compressor(tmp_path_factory) -> Path:
    return train_compressor(clustered_vectors(500, WIDTH, seed=1), DIMS, tmp_path_factory.mktemp("comp") / "smec")


@dataclass
class Template:
    """A seeded store kept closed, copied for each kill point (seeding Qdrant local mode is slow)."""

    store: EmbeddedStore
    n: int
    batch: int
    digest: str


@pytest.fixture(scope="module", params=["qdrant-edge", "milvus-lite", "qdrant-local"])
def template(request, tmp_path_factory) -> Template:
    n, batch = SIZES[request.param]
    store = EmbeddedStore.make(request.param, tmp_path_factory.mktemp(f"tpl-{request.param}"))
    seed_source(store, clustered_vectors(n, WIDTH))
    return Template(store, n, batch, source_digest(store))


def fresh_copy(tpl: Template, root: Path) -> EmbeddedStore:
    store = EmbeddedStore.make(tpl.store.target, root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tpl.store.path, store.path)
    return store


def migrate_args(store: EmbeddedStore, batch: int, compressor: Path | None) -> list[str]:
    how = ["--compressor", str(compressor)] if compressor else ["--dims", ",".join(map(str, DIMS)), "--epochs", "2",
                                                                   "--train-sample", "600"]
    return ["migrate", "--collection", SOURCE, *how, "--batch-size", str(batch), "--verify-queries", "20",
            "--swap-alias", ALIAS, *store.cli_args]


def assert_consistent_after_kill(store: EmbeddedStore, compressor: Path | None) -> None:
    """What a killed run left: the checkpoint's points are all in the target, none twice, none half-encoded."""
    with store.session() as b:
        if not b.exists(TARGET):
            return
        checkpoint = b.get_metadata(TARGET, CHECKPOINT_KEY)
        record = b.get_metadata(TARGET, "compressor")
        src = read_all(b, SOURCE, with_vectors=[VECTOR])
        dst = read_all(b, TARGET, with_vectors=True)
    ids = [p.id for p in dst]
    assert len(ids) == len(set(ids)), "a killed run left duplicate points"
    assert set(ids) <= {p.id for p in src}, "a killed run left points that are not in the source"
    if checkpoint is not None:
        claimed = checkpoint["written"] + checkpoint["skipped"]  # no source vector here is unusable
        missing = {p.id for p in src[:claimed]} - set(ids)
        assert not missing, f"checkpoint claims {claimed} points copied but {len(missing)} are not in the target"
    if dst and record is not None:
        comp = load_compressor(compressor or record["path"])
        by_id = {p.id: p for p in src}
        x = np.stack([by_id[p.id].vectors[VECTOR] for p in dst])
        for name, dim in record["resolutions"].items():
            got = np.stack([p.vectors[name] for p in dst])
            assert np.abs(got - comp.encode(x, dim)).max() <= 1e-4, f"half-written vectors in {name!r}"


@dataclass
class Phases:
    """Wall-clock windows (seconds after start) of one uninterrupted run's phases."""

    windows: dict[str, tuple[float, float]]

    def draw(self, phase: str, rng: np.random.Generator) -> float:
        lo, hi = self.windows[phase]
        return float(rng.uniform(lo, hi))

    def trigger(self, phase: str, store: EmbeddedStore, n: int, rng: np.random.Generator
                ) -> tuple[Callable[[], bool] | None, float]:
        """(condition, delay after it): kills anchored on the run's visible progress rather than on the
        clock alone, so they land in the phase whatever the machine's load. Qdrant's metadata is
        readable from outside: a copy kill comes a random moment of the copy's duration after its first
        checkpoint (written at a cadence, not after every batch); on Milvus Lite the anchor is the
        target's creation. Training is timed from the start, until the trained compressor is saved."""
        copy = self.windows["copy"][1] - self.windows["copy"][0]
        verify = self.windows["verify"][1] - self.windows["verify"][0]
        if phase == "train":  # a random moment, counted only while no compressor has been saved yet
            at, started = self.draw(phase, rng), time.monotonic()
            store.compressor_store.mkdir(parents=True, exist_ok=True)
            return (lambda: time.monotonic() - started >= at and not any(store.compressor_store.iterdir())), 0.0
        if visible_metadata(store) is None:
            offset = {"copy": 0.0, "verify": copy, "alias-swap": copy + verify}[phase]
            span = {"copy": copy, "verify": verify, "alias-swap": 0.3}[phase]
            return (lambda: target_dir_exists(store)), offset + float(rng.uniform(0, span))
        if phase == "copy":  # the checkpoint is written at a cadence: anchor on the first, then a random moment
            return (lambda: (visible_metadata(store).get(CHECKPOINT_KEY) or {}).get("written", 0) > 0), float(
                rng.uniform(0, copy))
        if phase == "verify":
            return (lambda: bool((visible_metadata(store).get(CHECKPOINT_KEY) or {}).get("copied"))), float(
                rng.uniform(0, verify))
        return (lambda: COMPLETE_KEY in visible_metadata(store)), float(rng.uniform(0, 0.05))


def measure_phases(tpl: Template, root: Path, compressor: Path | None) -> Phases:
    """Time a startup (a run that fails at once) and a whole run whose report splits train/copy/verify."""
    store = fresh_copy(tpl, root)
    t0 = time.perf_counter()
    run_cli("migrate", "--collection", "missing", "--dim", "8", *store.cli_args, expect=1)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_cli(*migrate_args(store, tpl.batch, compressor), "--report", str(root / "report.json"))
    wall = time.perf_counter() - t0
    seconds = json.loads((root / "report.json").read_text())["seconds"]
    train_end = startup + seconds.get("train", 0.0)
    copy_end = train_end + seconds["copy"]
    verify_end = copy_end + seconds.get("verify", 0.0)
    windows = {"copy": (train_end, copy_end), "verify": (copy_end, verify_end),
               "alias-swap": (verify_end, max(wall, verify_end + 0.2))}
    if compressor is None:
        windows["train"] = (startup, train_end)
    return Phases(windows)


def kill_points(tpl: Template, root: Path, compressor: Path | None, n_kills: int, seed: int,
                phases: tuple[str, ...] = ("copy", "verify", "alias-swap"), kill_resumes: bool = False) -> KillLog:
    """``n_kills`` times: a fresh copy of the source, a run SIGKILLed at a random moment of a phase
    (phases taken in turn, shuffled), optionally a resume killed at a random moment too, then a
    resume to the end and the exactly-once check."""
    rng = np.random.default_rng(seed)
    timing = measure_phases(tpl, root / "timing", compressor)
    order = [phases[i] for i in rng.permutation(len(phases))]
    log = KillLog(tpl.store.target)
    for i in range(n_kills):
        delays = [0.0]  # the first kill's moment comes from Phases.trigger
        if kill_resumes and rng.random() < 0.5:
            delays.append(float(rng.uniform(timing.windows["copy"][0], timing.windows["alias-swap"][1])))
        for attempt in range(5):  # a run that finished before its kill is retried on a fresh copy, sooner
            store = fresh_copy(tpl, root / f"kill{i}-{attempt}")
            args = migrate_args(store, tpl.batch, compressor)
            trigger, delay = timing.trigger(order[i % len(order)], store, tpl.n, rng)
            rc, finished, err = run_and_kill(args, delay * 0.8 ** attempt, trigger=trigger)
            if not finished:
                break
            assert rc == 0, f"a run that was not killed failed (exit {rc}): {err}"
            log.finished_before_kill += 1
        resume = ["--report", str(root / f"kill{i}.json")]
        for n, delay in enumerate(delays):
            if n:
                rc, finished, err = run_and_kill(args, delay)
                if finished:
                    assert rc == 0, f"a resumed run that was not killed failed (exit {rc}): {err}"
                    log.finished_before_kill += 1
                    continue
            assert rc == -signal.SIGKILL, f"exit {rc}: {err}"
            try:  # loading the target for the state or the consistency check may meet it first
                state = target_state(store, tpl.n, ALIAS)
                assert_consistent_after_kill(store, compressor)
            except BackendError as e:  # Milvus Lite killed while writing an index file in place
                assert TRUNCATED_BY_ENGINE in str(e), e
                log.phases["engine file cut short"] += 1
                assert_one_line_error(run_cli(*args, expect=1), TRUNCATED_BY_ENGINE, "--restart")
                resume.append("--restart")  # the way out the error names
                break
            log.phases[phase_name(state)] += 1
        run_cli(*args, *resume)  # resume to the end
        final = json.loads((root / f"kill{i}.json").read_text())
        assert final["points_written"] == tpl.n, "a resume re-counted (re-copied) points"
        assert_exactly_once(store, compressor_path=compressor)
        with store.session() as b:
            assert b.resolve_alias(ALIAS) == TARGET
        assert source_digest(store) == tpl.digest, "the source changed"
    return log


def phase_name(state: str) -> str:
    """The phase a kill interrupted, from the state it left (see :func:`faults.target_state`)."""
    if state.startswith("copy"):
        return "copy"
    return {"no-target": "startup/train", "created-empty": "create", "copied": "verify",
            "complete": "alias-swap", "alias-swapped": "exit"}.get(state, state)


def report(log: KillLog, title: str) -> None:
    print(f"\n{title} {log.target}: {log.kills} kill points survived {dict(log.phases)}; "
          f"{log.finished_before_kill} runs finished before their kill")


def test_kill_and_resume_is_exactly_once(template, compressor, tmp_path):
    log = kill_points(template, tmp_path, compressor, n_kills=3, seed=zlib.crc32(template.store.target.encode()) % 1000)
    report(log, "kills")
    assert log.kills >= 3


def test_kill_during_training_resumes(tmp_path):
    # one engine in the default run; the slow run kills training on every target
    n, batch = 400, 25
    store = EmbeddedStore.make("milvus-lite", tmp_path / "tpl")
    seed_source(store, clustered_vectors(n, WIDTH))
    tpl = Template(store, n, batch, source_digest(store))
    log = kill_points(tpl, tmp_path, None, n_kills=1, seed=7, phases=("train",))
    report(log, "training kills")
    assert log.phases["startup/train"] == 1, log.phases


def test_an_index_file_milvus_lite_left_cut_short_is_named_and_restart_rebuilds(compressor, tmp_path):
    """What a kill while Milvus Lite writes an index file leaves (it writes them in place; seen once in
    the random kills): the re-run names the cause and ``--restart`` in one line; ``--restart`` rebuilds
    the target, every point exactly once."""
    n = 300
    store = EmbeddedStore.make("milvus-lite", tmp_path)
    seed_source(store, clustered_vectors(n, WIDTH))
    args = migrate_args(store, 50, compressor)
    run_cli(*args)
    index_files = sorted((store.path / "collections" / TARGET).glob("partitions/*/indexes/*"))
    assert index_files, f"no index file of {TARGET!r} under {store.path}"
    index_files[0].write_bytes(b"")  # as a kill right after open(path, "wb") leaves it
    assert_one_line_error(run_cli(*args, expect=1), TRUNCATED_BY_ENGINE, "--restart")
    run_cli(*args, "--restart", "--report", str(tmp_path / "report.json"))
    assert json.loads((tmp_path / "report.json").read_text())["points_written"] == n
    assert_exactly_once(store, compressor_path=compressor)


@pytest.mark.slow
@pytest.mark.parametrize("trained", [False, True], ids=["reused-compressor", "trained-in-run"])
def test_many_random_kills(template, compressor, tmp_path, trained):
    """The full randomised run: ``SMEC_VDB_KILLS`` (default 20) kills per target with a reused
    compressor, and a quarter as many with training inside the run."""
    n_kills = FULL_KILLS if not trained else max(1, FULL_KILLS // 4)
    phases = ("train", "copy", "verify", "alias-swap") if trained else ("copy", "copy", "verify", "alias-swap")
    log = kill_points(template, tmp_path, None if trained else compressor, n_kills=n_kills, phases=phases,
                      seed=1000 + trained + (zlib.crc32(template.store.target.encode()) % 1000), kill_resumes=True)
    report(log, "slow kills")
    assert log.kills >= n_kills


def _wait_for_checkpoint(store: EmbeddedStore, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll qdrant-edge's metadata file (plain JSON, readable while the run holds the store)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        checkpoint = visible_metadata(store).get(CHECKPOINT_KEY)
        if checkpoint and checkpoint.get("written", 0) > 0:
            return checkpoint["written"]
        time.sleep(0.01)
    raise AssertionError("the run never wrote a checkpoint")


def test_sigint_stops_at_batch_boundary_and_resumes(compressor, tmp_path):
    n = 3000
    store = EmbeddedStore.make("qdrant-edge", tmp_path)
    seed_source(store, clustered_vectors(n, WIDTH))
    before = source_digest(store)
    args = migrate_args(store, 5, compressor)
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    _wait_for_checkpoint(store, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, f"exit {proc.returncode}: {err}"
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted after ") and "run the same command again to resume" in last
    done = int(last.split("interrupted after ")[1].split(" of ")[0])
    assert 0 < done < n and done % 5 == 0, f"not a batch boundary: {done}"
    assert "Traceback" not in err
    with store.session() as b:
        assert b.count(TARGET) == done
        assert b.get_metadata(TARGET, CHECKPOINT_KEY)["written"] == done
        assert b.resolve_alias(ALIAS) is None
    run_cli(*args)
    assert_exactly_once(store, compressor_path=compressor)
    assert source_digest(store) == before


@pytest.mark.server
def test_thirty_thousand_skipped_ids_on_milvus_2_3_5_finish_and_resume(milvus_server_uri, tmp_path):
    """Issue 22 §3: a checkpoint stays small however many ids are skipped (Milvus keeps a metadata value in
    a JSON field of at most 64 KB, which used to fail every run past ~11.8k skipped ids). A source made with
    pymilvus on the 2.3.5 server with 30,000 all-zero vectors among 31,000 points: the run is killed mid-copy
    after more than 12,000 skips, the same command resumes it, and the report lists every skipped id."""
    import uuid

    pymilvus = pytest.importorskip("pymilvus")
    client = pymilvus.MilvusClient(uri=milvus_server_uri)
    name = f"skips_{uuid.uuid4().hex[:8]}"
    good = clustered_vectors(1000, WIDTH, seed=3)
    client.create_collection(name, dimension=WIDTH, metric_type="COSINE")
    zero = [0.0] * WIDTH
    for start in range(0, 31_000, 5_000):
        client.insert(name, [{"id": i, "vector": good[i // 31].tolist() if i % 31 == 0 else zero, "n": i}
                             for i in range(start, start + 5_000) if i < 31_000])
    good_ids = list(range(0, 31_000, 31))
    meta = f"{name}_smec__smec_meta"
    # pages of 50: a copy long enough that the checkpoint cadence (>= 20x a write, <= 10 s) writes several past
    # 12,000 skips (measured idle: every 0.4 s, 1.6 s of copy with > 12,000; pages of 250 left one 0.4 s window,
    # which a fresh CI machine missed)
    args = ["migrate", "--collection", name, "--backend", "milvus", "--url", milvus_server_uri, "--dim", "8",
            "--drop-full", "--on-bad-vector", "skip", "--epochs", "1", "--batch-size", "50", "--verify-queries", "20",
            "--min-recall", "0", "--compressor-store", str(tmp_path / "store"), "--report", str(tmp_path / "r.json")]

    def skipped_so_far() -> bool:
        time.sleep(0.05)
        try:  # the run creates and loads the metadata collection meanwhile
            rows = client.get(meta, ids=[CHECKPOINT_KEY], output_fields=["value"], consistency_level="Strong")
        except pymilvus.exceptions.MilvusException:
            return False
        return bool(rows) and rows[0]["value"].get("skipped", 0) > 12_000 and not rows[0]["value"].get("copied")

    try:
        rc, finished, err = run_and_kill(args, 0.0, trigger=skipped_so_far)
        assert not finished and rc == -signal.SIGKILL, f"the run ended before its kill (exit {rc}): {err[-2000:]}"
        run_cli(*args, timeout=900)
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["resumed"] and report["verification"]["passed"], report["verification"]["summary"]
        assert sorted(report["skipped_ids"]) == sorted(set(range(31_000)) - set(good_ids))
        assert report["points_written"] == 1000
        target = f"{name}_smec"
        stored = client.query(target, filter="id >= 0", output_fields=["id"], limit=16384, consistency_level="Strong")
        assert sorted(r["id"] for r in stored) == good_ids
        assert not client.get(meta, ids=[CHECKPOINT_KEY], output_fields=["value"], consistency_level="Strong")
    finally:
        for collection in (meta, f"{name}_smec", name):
            if client.has_collection(collection):
                client.drop_collection(collection)
        client.close()
