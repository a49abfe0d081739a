"""Pure logic of the distributed migration: connections, the lazy Ray import, the blocks' columns, the
per-range checkpoints (the key ranges themselves: test_ranges.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from smec_vdb.backend import CollectionSchema, Point, Resolution, SparseVector
from smec_vdb.errors import ConfigError, SingleWriterError
from smec_vdb.migrate.distributed import Connection, check_distributable
from smec_vdb.migrate.plan import SourceInfo
from smec_vdb.migrate.ray.columns import encoded, migrated_batch, page_columns, to_batch
from smec_vdb.migrate.ray.progress import RangeProgress, new_range, range_key


def test_embedded_connections_are_refused_without_opening_them(tmp_path) -> None:
    for connection in (Connection("qdrant-edge", path=str(tmp_path / "e")), Connection("qdrant", path=str(tmp_path / "q")),
                       Connection("milvus", path=str(tmp_path / "m.db")), Connection.parse(f"milvus:///{tmp_path}/x.db")):
        with pytest.raises(SingleWriterError, match="embedded engine that allows one writer process"):
            check_distributable(connection, "target")
    with pytest.raises(ConfigError, match="server url starts with http:// or https:// or tcp://"):
        Connection("milvus", url=str(tmp_path / "x.db"))  # a Lite file given as a url is refused, not guessed
    check_distributable(Connection("milvus", url="http://h:19530"), "source")
    check_distributable(Connection("qdrant", url="http://h:6333"), "source")
    assert list(tmp_path.iterdir()) == []


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILVUS_TOKEN", "s3cret")
    monkeypatch.setenv("MILVUS_URI", "http://h:19530")
    connection = Connection.resolve("milvus")
    assert connection.credential == "s3cret" and connection.url == "http://h:19530"  # workers elsewhere lack the env
    assert "s3cret" not in repr(connection)


def test_importing_the_distributed_path_does_not_import_ray() -> None:
    code = ("import sys, smec_vdb.migrate.distributed, smec_vdb.migrate.ray.progress, smec_vdb.migrate.ray.columns; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_a_page_survives_the_trip_through_columns():
    """A migration's block carries each point whole (partition, multivector, sparse, a point without the
    migrated vector) and the sink writes it as the single-process copy does (points.target_batch)."""
    info = SourceInfo("c", "v", 3, "cosine", 3, CollectionSchema(
        (Resolution("v", 3), Resolution("colbert", 2, multivector=True)), sparse=("s",)), partial=True)
    points = [Point(7, {"v": np.ones(3, np.float32), "colbert": np.arange(4, dtype=np.float32).reshape(2, 2)},
                    {"a": 1, "b": [1.5, None]}, {"s": SparseVector.of([3], [0.5])}, partition="p1"),
              Point("e0c4e1c2-4b52-4a2c-9b4f-2b1c5a6a9d10", {"v": np.zeros(3, np.float32),
                                                            "colbert": np.ones((1, 2), np.float32)}, {"a": 1.0}, {}),
              Point(9, {"colbert": np.ones((3, 2), np.float32)}, {"a": 2}, {"s": SparseVector.of([1], [1.0])})]
    x = np.stack([p.vectors.get("v", np.zeros(3, np.float32)) for p in points])
    columns = page_columns(points, x, np.array([True, False, True]), "v")
    assert columns["_encode"].tolist() == [True, False, False] and columns["_id_int"].tolist() == [True, False, True]
    columns[encoded("d2")] = np.full((3, 2), 5.0, np.float32)
    batch = migrated_batch(columns, ["d2"], info, partitioned=True)
    assert batch is not None and batch.ids == [7, 9], "the unusable row is not written"
    assert batch.payloads == [{"a": 1, "b": [1.5, None]}, {"a": 2}] and type(batch.payloads[0]["a"]) is int
    assert batch.partitions == ["p1", None]
    assert batch.sparse == {"s": [SparseVector.of([3], [0.5]), SparseVector.of([1], [1.0])]}
    np.testing.assert_array_equal(batch.vectors["d2"][0], [5.0, 5.0])
    assert batch.absent == {"d2": [False, True]}, "the point without the migrated vector gets no encoding"
    np.testing.assert_array_equal(batch.vectors["colbert"][1], np.ones((3, 2)))


def test_an_ingestion_block_survives_the_trip_through_columns():
    columns = {"id": np.array([1, 2]), "smec:d2": np.ones((2, 2), np.float32), "payload": np.array(['{"a": 1}', '{}'],
                                                                                                   dtype=object)}
    batch = to_batch(columns, ["d2"], [], [], None)
    assert batch is not None and batch.ids == [1, 2] and batch.payloads == [{"a": 1}, {}]


class _Store:
    def __init__(self) -> None:
        self.writes: list[tuple[str, dict | None]] = []

    def set_metadata(self, collection, key, value):
        self.writes.append((key, value))


class _To:
    """A connection whose open() gives an in-memory metadata store."""

    def __init__(self, store: _Store) -> None:
        self.store = store

    def open(self) -> _Store:
        return self.store


def test_range_checkpoints_advance_only_over_pages_written_without_a_gap():
    store = _Store()
    keeper = RangeProgress(_To(store), "t", {0: new_range(None, 100), 1: {**new_range(100, None), "cursor": 150,
                                                                              "written": 50}})
    keeper.written(0, 1, 0, 10, 10, "c1", 10, 0)  # page 1 before page 0: not yet
    assert keeper.finish()[0]["written"] == 0
    keeper.written(0, 0, 0, 6, 10, "c0", 6, 0)  # half of page 0 (a split block)
    keeper.written(0, 0, 0, 6, 10, "c0", 6, 0)  # the same rows again (a retried task): ignored
    assert keeper.finish()[0]["written"] == 0
    keeper.written(0, 0, 6, 4, 10, "c0", 3, 1)
    state = keeper.finish()[0]
    assert (state["written"], state["skipped"], state["cursor"], state["copied"]) == (19, 1, "c1", False)
    keeper.read(0, 2)
    keeper.read(1, 0)  # range 1 had nothing left after its stored cursor
    states = keeper.finish()
    assert states[0]["copied"] and states[0]["cursor"] is None and states[1]["copied"] and states[1]["written"] == 50
    keeper.written(0, 0, 0, 10, 10, "c0", 10, 0)  # a late duplicate of a counted page
    assert keeper.finish()[0]["written"] == 19
    assert {key for key, _ in store.writes} == {range_key(0), range_key(1)}
