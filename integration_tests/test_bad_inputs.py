"""Hostile inputs to ``smec-vdb migrate`` (issue 6): each a typed error with a one-line message and
exit 1, and the target left absent or resumable — or, where the input is legal, migrated exactly once.

Most cases run the CLI in-process (:func:`faults.run_main`, no interpreter start-up); the disk-full
case runs it as a subprocess on a real, small tmpfs (skipped where mounting is not permitted) and,
everywhere, through a writer that fails with ENOSPC after a few batches.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from faults import (
    SOURCE,
    TARGET,
    VECTOR,
    EmbeddedStore,
    assert_exactly_once,
    assert_one_line_failure,
    clustered_vectors,
    inject_raw_vectors,
    run_cli,
    run_main,
    seed_source,
    source_digest,
    train_compressor,
)
from smec_vdb.adapters.errors import engine_errors
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.artifact import load as load_compressor
from smec_vdb.errors import BackendError
from smec_vdb.migrate import CHECKPOINT_KEY, MigrationInterrupted, MigrationOptions, migrate

WIDTH = 32
N = 200
ENGINES = ["qdrant-edge", "milvus-lite"]


@pytest.fixture(scope="module")
def compressor(tmp_path_factory) -> Path:
    return train_compressor(clustered_vectors(400, WIDTH, seed=1), (16, 8), tmp_path_factory.mktemp("c") / "smec")


@pytest.fixture(params=ENGINES)
def store(request, tmp_path) -> EmbeddedStore:
    store = EmbeddedStore.make(request.param, tmp_path)
    seed_source(store, clustered_vectors(N, WIDTH))
    return store


def mig(store: EmbeddedStore, *extra: str, compressor: Path | None = None) -> list[str]:
    how = ["--compressor", str(compressor)] if compressor else ["--dim", "8", "--epochs", "1"]
    return ["migrate", "--collection", SOURCE, *how, "--batch-size", "40", "--verify-queries", "10",
            "--min-recall", "0.3", *extra, *store.cli_args]


def target_exists(store: EmbeddedStore, name: str = TARGET) -> bool:
    with store.session() as b:
        return b.exists(name)


def test_missing_source(store):
    assert_one_line_failure(run_main(*mig(store, "--collection", "nope")), "'nope'", "does not exist")
    assert not target_exists(store, "nope_smec")


def test_empty_source(store, compressor):
    with store.session() as b:
        b.create_collection("empty", CollectionSchema((Resolution(VECTOR, WIDTH),)))
    assert_one_line_failure(run_main(*mig(store, "--collection", "empty", compressor=compressor)), "is empty")
    assert not target_exists(store, "empty_smec")


def test_bad_vectors_fail_by_default_then_resume_skipping_them(store, compressor, tmp_path):
    """NaN, +inf (written straight into the engine) and all-zero vectors: fail, then skip and list them."""
    with store.session() as b:
        b.upsert(SOURCE, Batch(ids=[150], vectors={VECTOR: np.zeros((1, WIDTH), np.float32)}, payloads=[{}]))
    row = [0.1] * WIDTH
    inject_raw_vectors(store, {5: [float("nan")] + row[1:], 77: row[:-1] + [float("inf")]})
    before = source_digest(store)
    line = assert_one_line_failure(run_main(*mig(store, compressor=compressor)), "NaN/inf or all-zero", "skip")
    assert "5" in line
    assert not target_exists(store)  # refused by the plan's survey: nothing trained or written
    code, err = run_main(*mig(store, "--on-bad-vector", "skip", "--report", str(tmp_path / "r.json"),
                              compressor=compressor))
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(report["skipped_ids"]) == [5, 77, 150]
    assert report["points_written"] == N - 3
    assert_exactly_once(store, compressor_path=compressor, skipped=[5, 77, 150])
    assert source_digest(store) == before


def test_bad_on_bad_vector_value(store, compressor):
    assert_one_line_failure(run_main(*mig(store, "--on-bad-vector", "ignore", compressor=compressor)),
                            "fail or skip", "'ignore'")


def test_compressor_for_another_width(store, tmp_path):
    other = train_compressor(clustered_vectors(300, 24), (8,), tmp_path / "c24", epochs=1)
    assert_one_line_failure(run_main(*mig(store, compressor=other)), "24-d", f"{WIDTH}-d")
    assert not target_exists(store)


def test_vector_choice(store, compressor, tmp_path):
    """Several named vectors need --vector; an unknown --vector is named with the ones there are."""
    seed_source(store, clustered_vectors(60, WIDTH), collection="multi", vector_names=("emb", "title"))
    assert_one_line_failure(run_main(*mig(store, "--collection", "multi", compressor=compressor)),
                            "several dense vectors", "--vector")
    assert_one_line_failure(run_main(*mig(store, "--collection", "multi", "--vector", "body", compressor=compressor)),
                            "'body'", "emb", "title")
    assert not target_exists(store, "multi_smec")
    code, err = run_main(*mig(store, "--collection", "multi", "--vector", "title", compressor=compressor))
    assert code == 0, err
    assert_exactly_once(store, compressor_path=compressor, source="multi", target="multi_smec", vector="title")


@pytest.mark.parametrize("damage", ["truncated-weights", "garbage-manifest", "missing-manifest", "absent"])
def test_corrupt_or_truncated_compressor(damage, compressor, tmp_path):
    store = EmbeddedStore.make("qdrant-edge", tmp_path)
    seed_source(store, clustered_vectors(50, WIDTH))
    broken = tmp_path / "broken"
    if damage != "absent":
        shutil.copytree(compressor, broken)
        files = {p.suffix: p for p in broken.iterdir()}
        if damage == "truncated-weights":
            weights = files[".safetensors"]
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        elif damage == "garbage-manifest":
            files[".json"].write_text("{not json")
        else:
            files[".json"].unlink()
    line = assert_one_line_failure(run_main(*mig(store, compressor=broken)), str(broken))
    assert any(w in line for w in ("corrupt", "truncated", "missing", "no compressor")), line
    assert not target_exists(store)


def test_target_exists_with_other_schema_is_left_alone(store, compressor):
    with store.session() as b:
        b.create_collection(TARGET, CollectionSchema((Resolution("other", 5),), "dot"))
        b.upsert(TARGET, Batch(ids=[1, 2], vectors={"other": np.ones((2, 5), np.float32)}, payloads=[{"a": 1}, {}]))
    before = source_digest(store, TARGET)
    assert_one_line_failure(run_main(*mig(store, compressor=compressor)), TARGET, "--restart")
    assert source_digest(store, TARGET) == before
    with store.session() as b:  # an empty collection a user made is not ours to drop either
        b.drop(TARGET)
        b.create_collection(TARGET, CollectionSchema((Resolution("mine", 5),)))
    assert_one_line_failure(run_main(*mig(store, compressor=compressor)), "not created by this migration")
    with store.session() as b:
        assert b.schema(TARGET).resolutions == (Resolution("mine", 5),)


def interrupt_after(store: EmbeddedStore, opts: MigrationOptions, batches: int) -> None:
    calls: list[int] = []
    with store.session() as b:
        with pytest.raises(MigrationInterrupted):
            migrate(b, opts, should_stop=lambda: calls.append(1) or len(calls) > batches)


def test_checkpoint_from_another_run_is_refused_then_resumed(store, compressor):
    opts = MigrationOptions(source=SOURCE, compressor=str(compressor), batch_size=40, verify_queries=10,
                            min_recall=0.3, compressor_store=str(store.compressor_store))
    interrupt_after(store, opts, 2)
    assert_one_line_failure(run_main(*mig(store, "--dim", "8", "--epochs", "1")), "checkpoint from another run")
    code, err = run_main(*mig(store, compressor=compressor))
    assert code == 0, err
    assert_exactly_once(store, compressor_path=compressor)


@pytest.mark.parametrize("left", ["schema-only", "compressor-record"])
def test_target_created_but_never_checkpointed_resumes(store, compressor, left):
    """A kill between creating the target and writing its first checkpoint leaves an empty target."""
    comp = load_compressor(compressor)
    with store.session() as b:
        if left == "schema-only":
            b.create_collection(TARGET, CollectionSchema((Resolution("full", WIDTH), Resolution("d16", 16),
                                                          Resolution("d8", 8))))
        else:
            SmecCollection.create(b, TARGET, comp, compressor_path=compressor)
    code, err = run_main(*mig(store, compressor=compressor))
    assert code == 0, err
    assert_exactly_once(store, compressor_path=compressor)


def test_duplicate_ids_in_a_batch_last_wins(store, compressor):
    comp = load_compressor(compressor)
    x = clustered_vectors(3, WIDTH, seed=9)
    with store.session() as b:
        col = SmecCollection.create(b, "dups", comp)
        col.upsert([1, 2, 1], x, [{"v": "first"}, {"v": "two"}, {"v": "last"}])
        assert col.count() == 2
        (p,) = b.retrieve("dups", [1])
    assert p.payload == {"v": "last"}
    np.testing.assert_allclose(p.vectors["d8"], comp.encode(x[2:3], 8)[0], atol=1e-5)


def test_very_large_payloads(store, compressor):
    big = {"text": "ü" * 100_000, "keys": {f"k{i}": i for i in range(1000)}, "deep": {"a": {"b": {"c": [1, {"d": 2}]}}},
           "list": list(range(2000)), "float": 1.5e300, "neg": -7, "null": None, "flag": False}
    with store.session() as b:
        b.upsert(SOURCE, Batch(ids=[3, 120], vectors={VECTOR: clustered_vectors(2, WIDTH, seed=3)},
                               payloads=[big, {**big, "text": "日本語 🙂 " * 5000}]))
    code, err = run_main(*mig(store, compressor=compressor))
    assert code == 0, err
    assert_exactly_once(store, compressor_path=compressor)


def test_unicode_uuid_and_awkward_string_ids(tmp_path, compressor):
    ids = ["日本語-ü-🙂", str(uuid.UUID(int=7)), str(uuid.uuid4()), 'quote"d', "back\\slash", "a'b", "sp ace",
           "x" * 200, "0", "-1", "{json}", "null"] + [f"doc-{i}" for i in range(48)]
    for engine in ENGINES:
        store = EmbeddedStore.make(engine, tmp_path / engine)
        seed_source(store, clustered_vectors(len(ids), WIDTH), ids=ids,
                    payloads=[{"id": i} for i in ids])
        code, err = run_main(*mig(store, compressor=compressor))
        assert code == 0, f"{engine}: {err}"
        assert_exactly_once(store, compressor_path=compressor)


class FullDisk:
    """A backend whose upserts into the target fail with ENOSPC after ``ok_batches`` (mapped like any engine
    error); the plan's engine probe writes its scratch collection before that."""

    def __init__(self, backend, ok_batches: int) -> None:
        self._backend, self._left = backend, ok_batches

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def upsert(self, collection: str, batch: Batch) -> None:
        if collection != TARGET:
            return self._backend.upsert(collection, batch)
        if self._left <= 0:
            with engine_errors("fault-injecting writer", collection):
                raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= 1
        self._backend.upsert(collection, batch)


def test_disk_full_writer_then_resume(store, compressor):
    opts = MigrationOptions(source=SOURCE, compressor=str(compressor), batch_size=40, verify_queries=10,
                            min_recall=0.3, compressor_store=str(store.compressor_store))
    with store.session() as b:
        with pytest.raises(BackendError, match="No space left on device"):
            migrate(FullDisk(b, ok_batches=2), opts)
        assert b.get_metadata(TARGET, CHECKPOINT_KEY)["written"] == 80
    code, err = run_main(*mig(store, compressor=compressor))
    assert code == 0, err
    assert_exactly_once(store, compressor_path=compressor)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here ({e}); the fault-injecting writer covers ENOSPC")

    def resize(kib: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={kib}k", str(mount)], check=True)

    yield mount, resize
    subprocess.run(["umount", "-l", str(mount)], check=False)


def used_kib(path: Path) -> int:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0])


def test_qdrant_edge_half_created_target_does_not_block_migrate(tmp_path, compressor):
    store = EmbeddedStore.make("qdrant-edge", tmp_path)
    seed_source(store, clustered_vectors(50, WIDTH))
    (store.path / TARGET / "shard").mkdir(parents=True)  # what a create killed before schema.json leaves
    code, err = run_main(*mig(store, compressor=compressor))
    assert code == 0, err


EDGE_SIGBUS = ("qdrant-edge-py 0.9.0 maps its segment files: after the store hit ENOSPC the resumed migrate "
               "completes, but reading the store back in the test process dies with SIGBUS (seen 2026-11-29), "
               "which would take the whole pytest process down")


@pytest.mark.parametrize("engine", [pytest.param("qdrant-edge", marks=pytest.mark.xfail(run=False, reason=EDGE_SIGBUS)),
                                    "milvus-lite"])
def test_disk_full_tmpfs_then_resume(engine, small_disk, compressor):
    """The real thing: the store on a tmpfs with little room left, then space comes back."""
    mount, resize = small_disk
    store = EmbeddedStore.make(engine, mount)
    seed_source(store, clustered_vectors(1000, WIDTH))
    before = source_digest(store)
    resize(used_kib(mount) + 256)
    proc = run_cli(*mig(store, compressor=compressor), expect=None)
    assert proc.returncode != 0, f"{engine}: migrate succeeded on a full disk?\n{proc.stderr}"
    if proc.returncode > 0:  # a typed one-line error (the engine's own loggers may print above it)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and lines[-1].startswith("error:") and "No space left" in lines[-1], proc.stderr
    else:  # qdrant-edge writes through mmap: a full tmpfs kills the process with SIGBUS, like a crash
        assert engine == "qdrant-edge" and proc.returncode == -7, f"exit {proc.returncode}: {proc.stderr}"
    resize(64 * 1024)
    run_cli(*mig(store, compressor=compressor))
    assert_exactly_once(store, compressor_path=compressor)
    assert source_digest(store) == before
