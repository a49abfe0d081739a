"""Shared helpers for the crash-safety suites (issue 6): seed a source, hash it, drive the CLI, kill it.

The three suites (``test_fault_injection``, ``test_bad_inputs``, ``test_properties``) run
``smec-vdb migrate`` against the embedded engines the way a user would, as a subprocess, and
check the outcome from outside: every source point in the target exactly once, its payload
equal, its vectors equal to a fresh encode by the saved compressor, no checkpoint left, the
source untouched.

Example::

    store = EmbeddedStore.make("qdrant-edge", tmp_path)
    seed_source(store, clustered_vectors(300, 32))
    before = source_digest(store)
    run_cli("migrate", "--collection", "src", "--compressor", str(path), *store.cli_args)
    assert_exactly_once(store, compressor_path=path)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from smec_vdb.adapters import open_backend
from smec_vdb import engines
from smec_vdb.backend import Backend, Batch, CollectionSchema, Point, Resolution
from smec_vdb.compress.artifact import load as load_compressor
from smec_vdb.migrate import CHECKPOINT_KEY, COMPLETE_KEY

SOURCE = "src"
TARGET = "src_smec"
VECTOR = "emb"
#: the embedded targets ``migrate`` runs against: name → (--backend, store path under a temp dir)
EMBEDDED = {name: (engines.target(name).engine, engines.target(name).test_store) for name in engines.target_names(embedded=True)}
#: an encoded vector read back may differ from a fresh encode by float noise (JSON/gRPC round trips)
VECTOR_ATOL = 1e-4


@dataclass(frozen=True)
class EmbeddedStore:
    """One embedded engine store in a temp dir, addressed as the CLI addresses it."""

    target: str
    backend: str
    path: Path
    compressor_store: Path

    @classmethod
    def make(cls, target: str, root: Path) -> "EmbeddedStore":
        backend, name = EMBEDDED[target]
        return cls(target, backend, root / name, root / "compressors")

    @property
    def cli_args(self) -> list[str]:
        return ["--backend", self.backend, "--path", str(self.path), "--compressor-store", str(self.compressor_store)]

    def open(self) -> Backend:
        return open_backend(self.backend, path=str(self.path))

    def session(self) -> "_Session":
        return _Session(self)


class _Session:
    """``with store.session() as b:`` opens the store and always closes it (one process per store)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def __enter__(self) -> Backend:
        self.backend = self.store.open()
        return self.backend

    def __exit__(self, *exc: Any) -> None:
        self.backend.close()


# -- data -----------------------------------------------------------------------------------
def clustered_vectors(n: int, width: int, seed: int = 0) -> np.ndarray:
    """Unit rows around 12 random centres: neighbours exist, so recall is meaningful."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, width)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, width)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def default_payload(i: int) -> dict[str, Any]:
    return {"g": i % 7, "name": f"doc {i}", "tags": ["a", "b"][: i % 3], "nested": {"k": i}}


def seed_source(
    store: EmbeddedStore,
    vectors: np.ndarray,
    *,
    ids: Sequence[Any] | None = None,
    payloads: Sequence[dict[str, Any]] | None = None,
    collection: str = SOURCE,
    vector_names: Sequence[str] = (VECTOR,),
    batch: int = 500,
) -> None:
    """Create ``collection`` (cosine) and write ``vectors`` under every name in ``vector_names``."""
    n, width = vectors.shape
    ids = list(range(n)) if ids is None else list(ids)
    id_type = "str" if ids and isinstance(ids[0], str) else "int"
    payloads = [default_payload(i) for i in range(n)] if payloads is None else list(payloads)
    schema = CollectionSchema(tuple(Resolution(v, width) for v in vector_names), "cosine", id_type, {"g": "integer"})
    with store.session() as b:
        b.create_collection(collection, schema)
        for s in range(0, n, batch):
            b.upsert(collection, Batch(ids=ids[s:s + batch], vectors={v: vectors[s:s + batch] for v in vector_names},
                                       payloads=payloads[s:s + batch]))


def read_all(b: Backend, collection: str, with_vectors: bool | Sequence[str] = True) -> list[Point]:
    """Every point of ``collection`` by paging ``scroll`` (duplicates, if any, are kept)."""
    points: list[Point] = []
    cursor = None
    while True:
        page, cursor = b.scroll(collection, cursor=cursor, limit=500, with_vectors=with_vectors)
        points.extend(page)
        if cursor is None:
            return points


def _id_key(point_id: Any) -> tuple[str, Any]:
    return (type(point_id).__name__, point_id)


def source_digest(store: EmbeddedStore, collection: str = SOURCE) -> str:
    """SHA-256 over the source's (id, payload, vectors) in id order: equal before and after = untouched."""
    with store.session() as b:
        points = read_all(b, collection)
    h = hashlib.sha256()
    for p in sorted(points, key=lambda p: _id_key(p.id)):
        h.update(json.dumps([p.id, p.payload], sort_keys=True).encode())
        for name in sorted(p.vectors):
            h.update(name.encode())
            h.update(np.round(np.asarray(p.vectors[name], dtype=np.float32), 5).tobytes())
    return h.hexdigest()


# -- the exactly-once check -------------------------------------------------------------------
@dataclass
class TargetCheck:
    """What :func:`assert_exactly_once` found (for reports)."""

    points: int
    lost: int
    duplicated: int
    unexpected: int


def assert_exactly_once(
    store: EmbeddedStore,
    *,
    compressor_path: str | Path | None = None,
    skipped: Sequence[Any] = (),
    source: str = SOURCE,
    target: str = TARGET,
    vector: str = VECTOR,
) -> TargetCheck:
    """Every source point (less ``skipped``) is in the target exactly once, with its payload and with
    every stored resolution equal to a fresh encode of its source vector; no checkpoint is left.

    The compressor is ``compressor_path`` or the one the target records.
    """
    with store.session() as b:
        src = read_all(b, source, with_vectors=[vector])
        dst = read_all(b, target, with_vectors=True)
        record = b.get_metadata(target, "compressor")
        checkpoint = b.get_metadata(target, CHECKPOINT_KEY)
        complete = b.get_metadata(target, COMPLETE_KEY)
        count = b.count(target)
    assert checkpoint is None, f"checkpoint left behind: {checkpoint}"
    assert complete is not None, "no completion record on the target"
    comp = load_compressor(compressor_path or record["path"])
    assert record["manifest_hash"] == comp.manifest_hash
    skipped_set = {_id_key(i) for i in skipped}
    expected = {_id_key(p.id): p for p in src if _id_key(p.id) not in skipped_set}
    seen: dict[tuple, Point] = {}
    duplicated = 0
    for p in dst:
        key = _id_key(p.id)
        duplicated += key in seen
        seen[key] = p
    lost = sorted(set(expected) - set(seen))
    unexpected = sorted(set(seen) - set(expected))
    check = TargetCheck(len(dst), len(lost), duplicated, len(unexpected))
    assert not lost and not duplicated and not unexpected, f"{check}; lost e.g. {lost[:5]}, unexpected {unexpected[:5]}"
    assert count == len(expected), f"count() says {count}, {len(expected)} expected"
    keys = sorted(expected)
    x = np.stack([expected[k].vectors[vector] for k in keys]).astype(np.float32)
    for name, stored_dim in record["resolutions"].items():
        fresh = comp.encode(x, stored_dim)
        got = np.stack([seen[k].vectors[name] for k in keys]).astype(np.float32)
        err = float(np.abs(got - fresh).max())
        assert err <= VECTOR_ATOL, f"resolution {name!r}: stored vectors differ from a fresh encode by {err}"
    mismatched = [k for k in keys if seen[k].payload != expected[k].payload]
    assert not mismatched, f"{len(mismatched)} payloads differ, e.g. {mismatched[:3]}"
    return check


# -- driving the CLI ------------------------------------------------------------------------
def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "160",
            "PYTHONUNBUFFERED": "1"}


CLI = [sys.executable, "-m", "smec_vdb.cli.app"]


def run_cli(*args: str, expect: int | None = 0, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``smec-vdb ARGS`` to completion; assert its exit status when ``expect`` is not None."""
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=cli_env(), timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1 and one ``error: ...`` line, the last on stderr (progress bars may precede it), no
    traceback; the line contains every needle."""
    assert proc.returncode == 1, f"exit {proc.returncode}\nstderr:{proc.stderr}"
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"not a one-line error:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def run_and_kill(args: Sequence[str], delay: float, *, sig: int = signal.SIGKILL,
                 trigger: Callable[[], bool] | None = None) -> tuple[int, bool, str]:
    """Start ``smec-vdb ARGS`` and send ``sig`` ``delay`` seconds after ``trigger()`` first holds (polled
    every 5 ms; without a trigger, after start); (returncode, finished_first, stderr)."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        while trigger is not None and proc.poll() is None and not trigger():
            time.sleep(0.005)
        proc.wait(timeout=delay)
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, finished, err


def visible_metadata(store: EmbeddedStore, collection: str = TARGET) -> dict[str, Any] | None:
    """The target's metadata as another process sees it while a run holds the store, read from the
    engine's files: qdrant-edge's ``metadata.json`` (replaced atomically), Qdrant local mode's
    ``meta.json``; {} while it is unreadable or absent. None for Milvus Lite, whose metadata sits in
    its WAL: there only the target's existence is visible (:func:`target_dir_exists`)."""
    if store.target == "milvus-lite":
        return None
    try:
        if store.target == "qdrant-edge":
            return json.loads((store.path / collection / "metadata.json").read_text())
        meta = json.loads((store.path / "meta.json").read_text())
        return dict(meta["collections"][collection].get("metadata") or {})
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def target_dir_exists(store: EmbeddedStore, collection: str = TARGET) -> bool:
    """Whether the engine has created ``collection`` on disk (visible to other processes)."""
    if store.target == "milvus-lite":
        return (store.path / "collections" / collection / "schema.json").exists()
    if store.target == "qdrant-edge":
        return (store.path / collection / "schema.json").exists()
    return (store.path / "collection" / collection).exists()


def target_state(store: EmbeddedStore, n_source: int, alias: str | None = None) -> str:
    """Where a migration stands, read from the store: the phase a kill interrupted."""
    with store.session() as b:
        if not b.exists(TARGET):
            return "no-target"
        checkpoint = b.get_metadata(TARGET, CHECKPOINT_KEY)
        complete = b.get_metadata(TARGET, COMPLETE_KEY)
        if checkpoint is not None:
            done = int(checkpoint.get("written", 0)) + int(checkpoint.get("skipped", 0))
            if checkpoint.get("copied") or done >= n_source:
                return "copied"
            return f"copy {done}/{n_source}"
        if complete is not None:
            if alias and b.resolve_alias(alias) == TARGET:
                return "alias-swapped"
            return "complete"
        return "created-empty"


def train_compressor(vectors: np.ndarray, dims: Sequence[int], directory: Path, epochs: int = 2) -> Path:
    """A small SMEC compressor trained in-process and saved (for kill runs that skip training)."""
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    comp = train(vectors, list(dims), method="smec", config=TrainConfig(epochs=epochs, seed=0))
    comp.save(directory)
    return directory


def run_main(*args: str) -> tuple[int, str]:
    """Run ``smec-vdb ARGS`` in this process (no interpreter start-up): (exit status, stderr).

    For the many quick error cases; crash tests use :func:`run_cli` / :func:`run_and_kill`.
    """
    import contextlib
    import io

    from smec_vdb.cli import app as cli_app

    err, argv = io.StringIO(), sys.argv
    sys.argv = ["smec-vdb", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            cli_app.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return code, err.getvalue()


def assert_one_line_failure(result: tuple[int, str], *needles: str) -> str:
    """:func:`assert_one_line_error` for :func:`run_main`'s (status, stderr)."""
    code, stderr = result
    return assert_one_line_error(subprocess.CompletedProcess([], code, "", stderr), *needles)


def inject_raw_vectors(store: EmbeddedStore, rows: dict[int, list[float]], collection: str = SOURCE,
                       vector: str = VECTOR) -> None:
    """Write vectors the adapters refuse (NaN/inf) straight into the engine, as another writer could.

    Only qdrant-edge and Milvus Lite accept them (qdrant-client's local mode rejects NaN itself).
    """
    with store.session() as b:
        if store.target == "qdrant-edge":
            e = b._edge  # the engine module behind the adapter
            _, shard = b._shard(collection)
            shard.update(e.UpdateOperation.upsert_points([e.Point(i, {vector: v}, {"bad": True}) for i, v in rows.items()]))
        elif store.target == "milvus-lite":
            b._client.upsert(collection, [{"id": i, "payload": {"bad": True}, vector: v} for i, v in rows.items()])
        else:
            raise ValueError(f"{store.target} refuses non-finite vectors itself")


class StopInCopy:
    """A ``should_stop`` for :func:`smec_vdb.migrate.migrate` that asks to stop at its ``(checks + 1)``-th
    call after the copy started: training, before the copy, asks it too (every batch, so that Ctrl-C
    stops it), which a count over all calls would spend. Pass ``progress=stop.progress`` as well."""

    def __init__(self, checks: int) -> None:
        self.checks, self.calls, self.copying = checks, 0, False

    def progress(self, event: Any) -> None:
        self.copying = self.copying or event.phase == "copy"

    def __call__(self) -> bool:
        if self.copying:
            self.calls += 1
        return self.calls > self.checks
