"""The embedded adapters under the threads of the pipelined copy and the streaming verification (issue 24):
a reader, a writer and a search thread use one backend at once, and may be the first to open a collection."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb import engines


@pytest.mark.parametrize("name", [n for n in engines.target_names(embedded=True) if engines.target(n).test_store])
def test_first_use_of_a_collection_from_several_threads_at_once(tmp_path, name):
    spec = engines.target(name)
    path = str(tmp_path / (spec.test_store or "store"))
    backend = open_backend(spec.engine, path=path)
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    for c in ("src", "dst"):
        backend.create_collection(c, CollectionSchema((Resolution("v", 8),)))
    backend.upsert("src", Batch(list(range(300)), {"v": x}, [{"i": i} for i in range(300)]))
    backend.close()
    backend = open_backend(spec.engine, path=path)  # nothing opened yet: the threads race to open it
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def run(task):
        start.wait()
        try:
            task()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    def scroll():
        cursor = None
        while True:
            _, cursor = backend.scroll("src", cursor=cursor, limit=64)
            if cursor is None:
                return

    tasks = [scroll, lambda: backend.count("src"), lambda: backend.search("src", "v", x[0], 5),
             lambda: backend.upsert("dst", Batch(list(range(100)), {"v": x[:100]}, [{}] * 100)),
             lambda: backend.count("dst"), lambda: backend.set_metadata("dst", "checkpoint", {"written": 100})]
    threads = [threading.Thread(target=run, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert backend.count("dst") == 100 and backend.get_metadata("dst", "checkpoint") == {"written": 100}
    finally:
        backend.close()
