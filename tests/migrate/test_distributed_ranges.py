"""Pure logic of the distributed migration: the source's ranges, connections, the lazy Ray import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smec_vdb.backend import CollectionSchema, Point, Resolution
from smec_vdb.errors import ConfigError, SingleWriterError
from smec_vdb.migrate.distributed import Connection, check_distributable, plan_ranges
from smec_vdb.migrate.plan import SourceInfo


class PagedIds:
    """A source that only pages: ``scroll`` over sorted ids, the cursor being the next id (as Qdrant does)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = sorted(ids)

    def scroll(self, collection: str, *, cursor=None, limit=1000, with_vectors=True):
        start = 0 if cursor is None else self.ids.index(cursor)
        page = self.ids[start:start + limit]
        following = start + limit
        return [Point(i, {}, {}) for i in page], (self.ids[following] if following < len(self.ids) else None)


def read_range(source: PagedIds, start, size) -> list[int]:
    got: list[int] = []
    cursor = start
    while size is None or len(got) < size:
        points, cursor = source.scroll("c", cursor=cursor, limit=7 if size is None else min(7, size - len(got)))
        got += [p.id for p in points]
        if cursor is None:
            break
    return got


@pytest.mark.parametrize("n, ranges, batch", [(100, 4, 7), (5, 8, 2), (64, 2, 8), (1, 3, 4), (30, 1, 50)])
def test_ranges_cover_the_source_once_in_whole_batches(n: int, ranges: int, batch: int) -> None:
    ids = [3 * i + 1 for i in range(n)]
    source = PagedIds(ids)
    info = SourceInfo("c", "v", 4, "cosine", n, CollectionSchema((Resolution("v", 4),)))
    planned = plan_ranges(source, info, ranges, batch)  # type: ignore[arg-type]
    assert planned[0].start is None and planned[-1].size is None
    assert all(r.size is not None and r.size % batch == 0 for r in planned[:-1])
    assert len(planned) <= ranges
    read = [i for r in planned for i in read_range(source, r.start, r.size)]
    assert read == ids  # disjoint, complete, in order


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
    code = "import sys, smec_vdb.migrate.distributed; assert 'ray' not in sys.modules, 'ray imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
