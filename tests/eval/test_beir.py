"""BEIR loading on a tiny synthetic dataset, and the published full-dim figures on the shared data."""

import json

import numpy as np
import pytest

from smec_vdb.errors import DataError
from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.eval.metrics import evaluate
from smec_vdb.eval.retrieval import exact_search

MODEL = "tiny-4d"


def _write_dataset(root, *, corpus_rows=3, qrels_lines=("q1\td1\t1", "q2\td3\t2")):
    emb = root / "embeddings" / MODEL
    emb.mkdir(parents=True)
    (root / "qrels").mkdir()
    (emb / "corpus_ids.json").write_text(json.dumps(["d1", "d2", "d3"]))
    (emb / "query_ids.json").write_text(json.dumps(["q1", "q2", "q3"]))
    np.save(emb / "corpus.npy", np.eye(4, dtype=np.float32)[:corpus_rows])
    np.save(emb / "queries.npy", np.eye(4, dtype=np.float16)[[0, 2, 1]])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels_lines) + "\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td2\t1\n")
    return root


def test_loads_ids_vectors_and_qrels_per_split(tmp_path):
    ds = load_beir(_write_dataset(tmp_path / "tiny"), MODEL)
    assert (ds.name, ds.dim, ds.corpus_ids) == ("tiny", 4, ["d1", "d2", "d3"])
    assert sorted(ds.qrels) == ["test", "train"]
    assert ds.split_qrels("test") == {"q1": {"d1": 1.0}, "q2": {"d3": 2.0}}
    ids, vectors = ds.split_queries("test")
    assert ids == ["q1", "q2"] and vectors.dtype == np.float32  # float16 file cast to float32
    np.testing.assert_array_equal(vectors, np.eye(4)[[0, 2]])
    run = exact_search(vectors, ds.corpus, ds.corpus_ids, ids, k=1)
    assert evaluate(run, ds.split_qrels("test"), ndcg_at=(1,), recall_at=(1,)) == {"ndcg@1": 1.0, "recall@1": 1.0}


def test_dataset_name_resolves_under_the_data_dir(tmp_path):
    _write_dataset(tmp_path / "beir" / "tiny")
    assert load_beir("tiny", MODEL, data_dir=tmp_path).name == "tiny"


def test_shared_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SMEC_VDB_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("SMEC_VDB_SHARED_DATA")
    assert shared_data_dir().parts[-2:] == ("shared", "data")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: (r / "embeddings" / MODEL / "corpus.npy").unlink(), "embedding file not found"),
        (lambda r: (r / "embeddings" / MODEL / "query_ids.json").write_text("{oops"), "not valid JSON"),
        (lambda r: (r / "embeddings" / MODEL / "corpus_ids.json").write_text('["d1", "d1", "d3"]'), "1 duplicate ids"),
        (lambda r: np.save(r / "embeddings" / MODEL / "corpus.npy", np.eye(4, dtype=np.float32)),
         r"expected shape \(3, dim\)"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n"),
         "1 judged queries have no embedding"),
        (lambda r: [p.unlink() for p in (r / "qrels").glob("*.tsv")], "no qrels"),
    ],
)
def test_damaged_datasets_raise_data_error(tmp_path, damage, message):
    root = _write_dataset(tmp_path / "tiny")
    damage(root)
    with pytest.raises(DataError, match=message):
        load_beir(root, MODEL)


def test_missing_dataset_model_and_split_are_named(tmp_path):
    with pytest.raises(DataError, match="BEIR dataset not found"):
        load_beir("nope", MODEL, data_dir=tmp_path)
    root = _write_dataset(tmp_path / "tiny")
    with pytest.raises(DataError, match=r"no embeddings for model 'other'.*found \['tiny-4d'\]"):
        load_beir(root, "other")
    with pytest.raises(DataError, match=r"no 'dev' split: found \['test', 'train'\]"):
        load_beir(root, MODEL).split_qrels("dev")


SHARED = shared_data_dir() / "beir"


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared BEIR data not found at {SHARED} (set SMEC_VDB_SHARED_DATA)")
@pytest.mark.parametrize("name, expected", [("scifact", 0.6451), ("nfcorpus", 0.3159)])
def test_full_dim_minilm_reproduces_published_ndcg(name, expected):
    ds = load_beir(name, "minilm-l6-v2")
    ids, queries = ds.split_queries("test")
    run = exact_search(queries, ds.corpus, ds.corpus_ids, ids, k=100)
    assert round(evaluate(run, ds.split_qrels("test"))["ndcg@10"], 4) == expected
