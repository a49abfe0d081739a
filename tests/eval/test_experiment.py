"""Method runs on a small synthetic BEIR dataset: overlap counts, per-dim scoring, the `eval` command."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from smec_vdb.cli import eval as eval_cli
from smec_vdb.errors import ConfigError
from smec_vdb.eval.beir import load_beir
from smec_vdb.eval.experiment import (
    RERANK_METRIC, MethodSpec, full_dim_row, overlap_note, relevant_overlap, run_method, training_qrels,
)
from smec_vdb.train.config import TrainConfig

MODEL = "toy-16d"


@pytest.fixture
def dataset(tmp_path):
    """40 docs in 16-d whose variance sits in the last dims; each query is a noisy copy of one doc."""
    rng = np.random.default_rng(0)
    scale = np.linspace(0.1, 2.0, 16)
    docs = rng.normal(size=(40, 16)) * scale
    queries = docs[:12] + 0.3 * rng.normal(size=(12, 16)) * scale
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    root = tmp_path / "beir" / "toy"
    emb = root / "embeddings" / MODEL
    emb.mkdir(parents=True)
    (root / "qrels").mkdir()
    np.save(emb / "corpus.npy", unit(docs))
    np.save(emb / "queries.npy", unit(queries))
    (emb / "corpus_ids.json").write_text(json.dumps([f"d{i}" for i in range(40)]))
    (emb / "query_ids.json").write_text(json.dumps([f"q{i}" for i in range(12)]))
    head = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "train.tsv").write_text(head + "".join(f"q{i}\td{i}\t1\n" for i in range(6)) + "q0\td9\t1\n")
    (root / "qrels" / "test.tsv").write_text(head + "".join(f"q{i}\td{i}\t1\n" for i in range(6, 12)) + "q6\td0\t1\n")
    return tmp_path


def test_relevant_overlap_counts_test_docs_also_relevant_in_train(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    assert relevant_overlap(ds) == (2, 7)  # d0 (train q0, test q6) and d9 (train q0, test q9)


def test_deterministic_methods_score_each_dim_once_and_pca_beats_truncation(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    full = full_dim_row(ds)
    assert (full.method, full.dim) == ("full", 16) and RERANK_METRIC not in full.metrics
    pca = run_method(ds, MethodSpec("pca", "pca"), [8, 2], seeds=[0, 1, 2])
    trunc = run_method(ds, MethodSpec("truncate", "truncate"), [8, 2], seeds=[0, 1, 2])
    assert [r.dim for r in pca] == [8, 2]
    assert all(len(r.metrics["ndcg@10"]) == 1 and len(r.train_seconds) == 1 for r in pca)
    # The informative dims are the last ones: a prefix keeps noise, PCA keeps the signal.
    assert pca[1].mean("ndcg@10") > trunc[1].mean("ndcg@10")
    assert pca[1].mean(RERANK_METRIC) >= pca[1].mean("ndcg@10") - 1e-9


def test_eval_command_prints_tables_and_writes_report_files(dataset, tmp_path):
    app = typer.Typer()
    eval_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `eval` a subcommand
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "--dataset", "toy", "--model", MODEL, "--methods", "truncate,pca",
                                      "--dims", "8,4", "--data-dir", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| pca |" in result.output and "recall@100" in result.output
    assert {p.name for p in out.iterdir()} == {"eval.md", "eval.json", "eval.png"}
    rows = json.loads((out / "eval.json").read_text())["rows"]
    assert [(r["method"], r["dim"]) for r in rows] == [("full", 16), ("truncate", 8), ("truncate", 4), ("pca", 8), ("pca", 4)]


def test_eval_command_rejects_unknown_methods(dataset):
    with pytest.raises(ConfigError, match="unknown methods \\['bogus'\\]"):
        eval_cli.eval_command(dataset="toy", model=MODEL, methods="pca,bogus", data_dir=dataset)


def test_supervised_methods_cannot_be_scored_on_their_training_split(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    with pytest.raises(ConfigError, match="evaluate them on another split"):
        run_method(ds, MethodSpec("smec (sup.)", "smec", supervised=True), [8], seeds=[0], split="train")


def test_on_trained_reports_each_training_run_with_its_seed_and_wall_time(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    seen = []
    rows = run_method(ds, MethodSpec("linear-adaptor", "linear-adaptor"), [8, 2], seeds=[3, 4], config=TrainConfig(epochs=1),
                      on_trained=lambda seed, comp, seconds: seen.append((seed, comp.dims, seconds)))
    assert [(seed, list(dims)) for seed, dims, _ in seen] == [(3, [8, 2]), (4, [8, 2])]
    assert rows[0].train_seconds == [seconds for _, _, seconds in seen]


def test_training_qrels_drop_broad_queries_whole_and_the_overlap_counts_only_those_kept(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    narrow = training_qrels(ds, "train", max_relevant=1)
    assert sorted(narrow) == ["q1", "q2", "q3", "q4", "q5"]  # q0 has two relevant docs (d0, d9)
    assert relevant_overlap(ds, train_qrels=narrow) == (0, 7)
    sample = training_qrels(ds, "train", max_queries=3, seed=1)
    assert len(sample) == 3 and sample == training_qrels(ds, "train", max_queries=3, seed=1)
    assert "(the 3 training queries used)" in overlap_note(ds, train_qrels=sample)


def test_supervised_runs_select_on_the_dev_split_when_the_dataset_has_one(dataset):
    from smec_vdb.eval.experiment import validation_examples

    ds = load_beir("toy", MODEL, data_dir=dataset)
    assert validation_examples(ds) is None  # the toy set has train/test only
    head = "query-id\tcorpus-id\tscore\n"
    (dataset / "beir" / "toy" / "qrels" / "dev.tsv").write_text(head + "q10\td10\t1\nq11\td11\t2\n")
    ds = load_beir("toy", MODEL, data_dir=dataset)
    dev = validation_examples(ds, hard_negatives=3)
    assert dev.query_ids == ("q10", "q11")
    seen = []
    run_method(ds, MethodSpec("smec (sup.)", "smec", supervised=True), [8], seeds=[0],
               config=TrainConfig(epochs=1, device="cpu"), rerank_candidates=None,
               on_trained=lambda seed, comp, seconds: seen.append(comp.training_info))
    assert seen[0]["supervised"] and seen[0]["stages"][0]["criterion"] == "ndcg@10"


def test_methods_that_ignore_labels_cannot_run_supervised(dataset):
    ds = load_beir("toy", MODEL, data_dir=dataset)
    with pytest.raises(ConfigError, match="does not train on labels"):
        run_method(ds, MethodSpec("pca (sup.)", "pca", supervised=True), [8], seeds=[0])
