"""`smec-vdb eval`: train compression methods on a BEIR dataset and report nDCG@10 / recall@100 per dim."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from smec_vdb.cli.common import check_output_dir, console, parse_dims
from smec_vdb.compress.registry import known_methods, method_class
from smec_vdb.errors import ConfigError

METHODS = tuple(known_methods())


def eval_command(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="BEIR dataset name under DATA_DIR/beir, or a path.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Embedding model subdir under embeddings/.")] = "minilm-l6-v2",
    methods: Annotated[str, typer.Option("--methods", help=f"Comma-separated, from: {', '.join(METHODS)}.")] = "smec,pca,truncate",
    dims: Annotated[str, typer.Option("--dims", help="Decreasing target dims, e.g. 128,64,32.")] = "128,64,32",
    supervised: Annotated[bool, typer.Option("--supervised", help="Train the methods that use labels on the train split's qrels (dev split for model selection where there is one).")] = False,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per trained method (mean ± std).")] = 1,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Max epochs per stage/run (default: TrainConfig's).")] = None,
    split: Annotated[str, typer.Option("--split", help="Qrels split to evaluate on (never used for training).")] = "test",
    rerank_candidates: Annotated[int, typer.Option("--rerank-candidates", min=0, help="Shortlist size of the two-stage search (0: skip it).")] = 100,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", envvar="SMEC_VDB_SHARED_DATA", help="Folder holding beir/ (default ../shared/data).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write eval.md, eval.json and eval.png here.")] = None,
) -> None:
    """Score methods × dims with exact cosine search on a BEIR test split (BEIR nDCG conventions).

    Example: smec-vdb eval --dataset scifact --model minilm-l6-v2 --methods smec,pca,truncate --dims 128,64,32 --out results/
    """
    from smec_vdb.eval.beir import load_beir
    from smec_vdb.eval.experiment import RERANK_METRIC, MethodSpec, full_dim_row, run_method
    from smec_vdb.eval.report import markdown_table, plot_ndcg_vs_dims, write_json
    from smec_vdb.train.config import TrainConfig

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ConfigError(f"unknown methods {unknown or names}: expected some of {', '.join(METHODS)}")
    target_dims = parse_dims(dims)
    if out is not None:
        check_output_dir(out, "--out")
    config = TrainConfig(epochs=epochs) if epochs else TrainConfig()
    ds = load_beir(dataset, model, data_dir=data_dir)
    console.print(f"{ds.name} · {ds.model}: {len(ds.corpus_ids):,} docs × {ds.dim}, "
                  f"{len(ds.split_qrels(split)):,} {split} queries")
    rows = [full_dim_row(ds, split)]
    for name in names:
        sup = supervised and method_class(name).uses_labels
        spec = MethodSpec(f"{name} (sup.)" if sup else name, name, supervised=sup)
        console.print(f"training {spec.label} → {list(target_dims)} ({seeds if spec.stochastic else 1} run(s))")
        rows += run_method(ds, spec, target_dims, list(range(seeds)), config, split=split,
                           rerank_candidates=rerank_candidates or None)
    metrics = ["ndcg@10", "recall@100"] + ([RERANK_METRIC] if rerank_candidates else [])
    report = "\n".join(markdown_table(rows, metric=m) for m in metrics)
    typer.echo(report)
    if out is not None:
        write_json(rows, out / "eval.json", {"command": shlex.join(["smec-vdb", *sys.argv[1:]])})
        (out / "eval.md").write_text(report, encoding="utf-8")
        plot_ndcg_vs_dims(rows, out / "eval.png")
        console.print(f"wrote {out / 'eval.md'}, eval.json, eval.png")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
