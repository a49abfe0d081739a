"""Property-based tests (hypothesis) of the migration data path on qdrant-edge and Milvus Lite (issue 6).

- Round trip: random ids (ints, or strings with unicode), random JSON payloads and random
  vectors → encode → upsert → iterate gives back every id once, its payload, and its vectors
  equal to a fresh encode.
- Resume from any offset: a migration interrupted after a random number of batches (batch size
  random too), then resumed, writes every source point exactly once.
- Fidelity under adversarial input: payload keys that smec-vdb once kept for itself (``_smec_id``,
  ``_smec*``), Milvus field names (``id``, ``payload``, ``$meta``), and integer and UUID ids in one
  Qdrant collection survive a migration exactly, and its verification passes.

Examples are few and small so the default run stays in seconds per engine; raise them with
``SMEC_VDB_PROPERTY_EXAMPLES``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from faults import (
    SOURCE,
    TARGET,
    EmbeddedStore,
    assert_exactly_once,
    clustered_vectors,
    read_all,
    seed_source,
    train_compressor,
)
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.artifact import load as load_compressor
from smec_vdb.migrate import MigrationInterrupted, MigrationOptions, migrate
from smec_vdb.migrate.verify import same_content


def same_json(a, b) -> bool:
    """Equal JSON, types included; floats within 1 ulp (qdrant-edge-py 0.9 rounds some doubles: the engine's
    class the migration's probe names)."""
    return same_content(a, b, ulps=1)


WIDTH = 16
ENGINES = ["qdrant-edge", "milvus-lite"]
EXAMPLES = int(os.environ.get("SMEC_VDB_PROPERTY_EXAMPLES", "4"))
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate],  # shrinking engine round trips takes minutes
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def compressor_path(tmp_path_factory) -> Path:
    return train_compressor(clustered_vectors(300, WIDTH, seed=1), (8, 4), tmp_path_factory.mktemp("c") / "smec",
                            epochs=1)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53),
                         st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=20))
#: keys that once collided with smec-vdb's bookkeeping or with engine field names
ADVERSARIAL_KEYS = ["_smec_id", "_smec", "_smec_schema", "_smec_x", "id", "payload", "$meta", "vector", "full"]
keys = st.one_of(st.sampled_from(ADVERSARIAL_KEYS), st.text(min_size=1, max_size=10))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=10)
payloads = st.dictionaries(keys, json_values, max_size=5)
#: a payload for a string-id point on Qdrant may not use the one key that keeps non-UUID ids
str_id_payloads = st.dictionaries(keys.filter(lambda k: k != "_smec_id"), json_values, max_size=5)
mixed_ids = st.lists(st.one_of(st.integers(0, 2**62), st.uuids().map(str)), min_size=2, max_size=30, unique=True)
int_ids = st.lists(st.integers(0, 2**62), min_size=1, max_size=40, unique=True)
str_ids = st.lists(st.text(min_size=1, max_size=16).filter(lambda s: "\x00" not in s), min_size=1, max_size=40,
                   unique=True)


@pytest.mark.parametrize("engine", ENGINES)
@PROPERTY_SETTINGS
@given(data=st.data(), ids=st.one_of(int_ids, str_ids))
def test_encode_upsert_iterate_round_trip(engine, compressor_path, data, ids):
    comp = load_compressor(compressor_path)
    n = len(ids)
    x = data.draw(st.builds(lambda seed: np.random.default_rng(seed).normal(size=(n, WIDTH)).astype(np.float32) * 3,
                            st.integers(0, 2**32 - 1)))
    pl = data.draw(st.lists(str_id_payloads if isinstance(ids[0], str) else payloads, min_size=n, max_size=n))
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore.make(engine, Path(tmp))
        with store.session() as b:
            col = SmecCollection.create(b, "rt", comp, id_type="str" if isinstance(ids[0], str) else "int")
            col.upsert(ids, x, pl)
            got = read_all(b, "rt")
    assert sorted(map(repr, (p.id for p in got))) == sorted(map(repr, ids))
    by_id = {p.id: p for p in got}
    for i, point_id in enumerate(ids):
        p = by_id[point_id]
        assert same_json(p.payload, pl[i]), (p.payload, pl[i])
        for r in col.resolutions:
            np.testing.assert_allclose(p.vectors[r.name], comp.encode(x[i:i + 1], r.dim)[0], atol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
@PROPERTY_SETTINGS
@given(n=st.integers(1, 120), batch=st.integers(1, 50), stop_after=st.integers(0, 10), string_ids=st.booleans())
def test_resume_from_any_offset_is_exactly_once(engine, compressor_path, n, batch, stop_after, string_ids):
    ids = [f"id-{i:04d}-ü" for i in range(n)] if string_ids else None
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore.make(engine, Path(tmp))
        seed_source(store, clustered_vectors(n, WIDTH, seed=n), ids=ids)
        opts = MigrationOptions(source=SOURCE, compressor=str(compressor_path), batch_size=batch, verify_queries=5,
                                min_recall=0.0, compressor_store=str(store.compressor_store))
        calls: list[int] = []
        with store.session() as b:
            try:
                migrate(b, opts, should_stop=lambda: calls.append(1) or len(calls) > stop_after)
                interrupted = False
            except MigrationInterrupted:
                interrupted = True
                assert b.count(TARGET) == min(n, stop_after * batch)
        if stop_after * batch < n:  # a stop requested before the last batch always stops
            assert interrupted
        with store.session() as b:
            report = migrate(b, opts)
        assert report["points_written"] == n
        assert report["resumed"] == (interrupted and stop_after > 0)
        assert_exactly_once(store, compressor_path=compressor_path)


@pytest.mark.parametrize("engine", ["qdrant-edge", "qdrant-local"])
@PROPERTY_SETTINGS
@given(data=st.data(), ids=mixed_ids)
def test_migration_keeps_adversarial_payloads_and_mixed_ids(engine, compressor_path, data, ids):
    n = len(ids)
    pl = data.draw(st.lists(payloads, min_size=n, max_size=n))
    x = clustered_vectors(n, WIDTH, seed=n)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore.make(engine, Path(tmp))
        with store.session() as b:
            b.create_collection(SOURCE, CollectionSchema((Resolution("emb", WIDTH),), id_type="any"))
            b.upsert(SOURCE, Batch(ids, {"emb": x}, pl))
            report = migrate(b, MigrationOptions(source=SOURCE, compressor=str(compressor_path), verify_queries=5,
                                                 min_recall=0.0, compressor_store=str(store.compressor_store)))
            got = {p.id: p.payload for p in read_all(b, TARGET, with_vectors=False)}
            stored = {p.id: p.payload for p in read_all(b, SOURCE, with_vectors=False)}
    assert report["verification"]["passed"] and report["verification"]["differences"] == {}
    assert sorted(map(repr, got)) == sorted(map(repr, ids))
    for point_id, expected in zip(ids, pl):  # each store may round a double by 1 ulp: compare each step
        assert same_json(stored[point_id], expected), (stored[point_id], expected)
        assert same_json(got[point_id], stored[point_id]), (got[point_id], stored[point_id])
