"""Quality benchmark of issue 5: methods × dims × datasets on BEIR, ablations, two-stage search.

Writes ``quality.md`` (tables, overlap notes, verdicts), ``quality.json`` (per-seed values and
training wall times) and ``quality.png`` (nDCG@10 against dims per method, like the paper's
Figure 5) under ``--out``. Supervised methods train on the ``train`` split only; every method is
scored on ``test`` with exact cosine search (BEIR conventions, see ``smec_vdb.eval.metrics``).

    .venv/bin/python benchmarks/quality.py            # the full report (< 30 min on 2 cores)
    .venv/bin/python benchmarks/quality.py --quick    # smoke check: SciFact, 2 dims, 2 epochs
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.eval.experiment import RERANK_METRIC, MethodSpec, full_dim_row, overlap_note, ranking_examples, run_method
from smec_vdb.eval.report import ResultRow, markdown_table, plot_ndcg_vs_dims, write_json
from smec_vdb.train.config import TrainConfig

MINILM, MPNET = "minilm-l6-v2", "all-mpnet-base-v2"
MINILM_DIMS = (192, 128, 96, 64, 48, 32)  # one nested schedule covers 128/64/32 and 192/96/48
MPNET_DIMS = (192, 96, 48)
ABLATION_DIMS = (128, 64, 32)

UNSUPERVISED = [
    MethodSpec("truncate", "truncate"),
    MethodSpec("pca", "pca"),
    MethodSpec("mrl-adaptor", "mrl"),
    MethodSpec("smec", "smec"),
]
SUPERVISED = [
    MethodSpec("mrl-adaptor (sup.)", "mrl", supervised=True),
    MethodSpec("search-adaptor (sup.)", "search-adaptor", supervised=True),
    MethodSpec("smec (sup.)", "smec", supervised=True),
]
# Paper Table 1: MRL as the base, each SMEC component added alone, then all three (= SMEC).
ABLATIONS = [
    MethodSpec("MRL", "smec", True, {"use_smrl": False, "use_ads": False, "use_xbm": False}),
    MethodSpec("MRL + SMRL", "smec", True, {"use_smrl": True, "use_ads": False, "use_xbm": False}),
    MethodSpec("MRL + ADS", "smec", True, {"use_smrl": False, "use_ads": True, "use_xbm": False}),
    MethodSpec("MRL + S-XBM", "smec", True, {"use_smrl": False, "use_ads": False, "use_xbm": True}),
    MethodSpec("SMEC (all three)", "smec", True),
]


@dataclass
class Block:
    """One table of the report: methods trained on one dataset/model at one dims schedule."""

    title: str
    dataset: str
    model: str
    dims: tuple[int, ...]
    specs: list[MethodSpec]
    seeds: list[int]
    repeated: tuple[str, ...] = ()  # labels trained with every seed; the others with the first only
    rows: list[ResultRow] = field(default_factory=list)
    overlap: str = ""


def plan(quick: bool, seeds: int) -> list[Block]:
    if quick:
        return [Block("SciFact · MiniLM (quick)", "scifact", MINILM, (64, 32),
                      [*UNSUPERVISED[:2], UNSUPERVISED[3], SUPERVISED[2]], [0])]
    # Budget (< 30 min on 2 cores): several seeds for SMEC on SciFact, where its claims are judged;
    # one seed elsewhere; no Matryoshka-Adaptor on the 768-d inputs (its 6-dim run is the slowest).
    main_seeds, single = list(range(seeds)), [0]
    smec_labels = ("smec", "smec (sup.)")
    mpnet_specs = [UNSUPERVISED[0], UNSUPERVISED[1], UNSUPERVISED[3], SUPERVISED[2]]
    return [
        Block("SciFact · MiniLM 384-d", "scifact", MINILM, MINILM_DIMS, UNSUPERVISED + SUPERVISED, main_seeds,
              smec_labels),
        Block("NFCorpus · MiniLM 384-d", "nfcorpus", MINILM, MINILM_DIMS, UNSUPERVISED + SUPERVISED, single),
        Block("Ablations (paper Table 1), supervised · SciFact · MiniLM", "scifact", MINILM, ABLATION_DIMS,
              ABLATIONS, single),
        Block("SciFact · all-mpnet-base-v2 768-d", "scifact", MPNET, MPNET_DIMS, mpnet_specs, single),
        Block("NFCorpus · all-mpnet-base-v2 768-d", "nfcorpus", MPNET, MPNET_DIMS, mpnet_specs, single),
    ]


def run_block(block: Block, config: TrainConfig, data_dir: Path, log) -> None:
    embeddings = data_dir / "beir" / block.dataset / "embeddings" / block.model
    if not embeddings.is_dir():
        log(f"skip {block.title}: {embeddings} not found")
        return
    ds = load_beir(block.dataset, block.model, data_dir=data_dir)
    examples = None
    if any(s.supervised for s in block.specs):
        examples = ranking_examples(ds, "train", hard_negatives=config.rank_negatives)
        block.overlap = overlap_note(ds)
    block.rows.append(full_dim_row(ds))
    for spec in block.specs:
        started = time.perf_counter()
        seeds = block.seeds if spec.label in block.repeated else block.seeds[:1]
        rows = run_method(ds, spec, block.dims, seeds, config, examples=examples)
        block.rows += rows
        summary = ", ".join(f"{r.dim}: {r.mean('ndcg@10'):.3f}" for r in rows)
        log(f"{block.title} · {spec.label}: {summary} ({time.perf_counter() - started:.0f}s)")


def verdicts(block: Block) -> list[str]:
    """Plain statements: does SMEC beat each baseline at each dim <= 128 in this run?"""
    by = {(r.method, r.dim): r.mean("ndcg@10") for r in block.rows}
    pairs = [("smec", "pca"), ("smec", "mrl-adaptor"), ("smec (sup.)", "mrl-adaptor (sup.)"),
             ("smec (sup.)", "search-adaptor (sup.)"), ("SMEC (all three)", "MRL")]
    lines = []
    for ours, theirs in pairs:
        dims = [d for d in block.dims if d <= 128 and (ours, d) in by and (theirs, d) in by]
        if not dims:
            continue
        cells = ", ".join(f"{d}-d {by[(ours, d)]:.3f} vs {by[(theirs, d)]:.3f}" for d in dims)
        wins = sum(by[(ours, d)] > by[(theirs, d)] for d in dims)
        outcome = "beats" if wins == len(dims) else ("does not beat" if wins == 0 else f"beats at {wins}/{len(dims)} dims")
        lines.append(f"- {ours} {outcome} {theirs}: {cells}")
    return lines


def render(blocks: list[Block], config: TrainConfig, seconds: float, command: str) -> str:
    parts = [
        "# Quality benchmark (issue 5)",
        "",
        f"Command: `{command}` · total wall time {seconds / 60:.1f} min on {torch.get_num_threads()} CPU thread(s), "
        f"{platform.processor() or platform.machine()} · TrainConfig: epochs={config.epochs}, patience={config.patience}.",
        "",
        "nDCG@10 and recall@100 from exact cosine search on the test split (BEIR conventions: linear graded gain, "
        "log2 discount, IDCG over all judged docs, self-id dropped, trec_eval tie-break). "
        f"'{RERANK_METRIC}' is two-stage search: the top 100 at that dim reranked with the full vectors. "
        "Cells are mean ± std over seeds where a method is stochastic and was run with several seeds; "
        "'train s' is the mean wall time of one training run. Unsupervised methods see corpus vectors only; "
        "supervised ones also the train split's qrels (never test queries).",
        "",
        "Published reference (f-linus/matryoshka_adaptor, MiniLM on SciFact, 128/64/32): truncation "
        ".602/.484/.337, Matryoshka-Adaptor unsupervised .604/.528/.430, supervised .650/.561/.497.",
    ]
    for block in blocks:
        if not block.rows:
            continue
        seeds = (f"Seeds {block.seeds} for {', '.join(block.repeated)}; seed {block.seeds[0]} for the others."
                 if block.repeated and len(block.seeds) > 1 else f"One run per method (seed {block.seeds[0]}).")
        parts += ["", f"## {block.title}", "", seeds]
        if block.overlap:
            parts += ["", f"Supervised rows train on the train qrels; {block.overlap} (docs judged relevant to "
                          "test queries that are also judged relevant to train queries), so supervised figures "
                          "partly reflect a learned prior over the cited documents."]
        for metric in ("ndcg@10", "recall@100", RERANK_METRIC):
            parts += ["", markdown_table(block.rows, metric=metric).rstrip()]
        found = verdicts(block)
        if found:
            parts += ["", "Verdicts (this run):", *found]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke check: SciFact, 64/32, 2 epochs, 1 seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for SMEC on SciFact MiniLM (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs per stage/run (default: TrainConfig's)")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding beir/ (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or shared_data_dir()
    if not (data_dir / "beir").is_dir():
        sys.exit(f"shared BEIR data not found under {data_dir} (pass --data-dir or set SMEC_VDB_SHARED_DATA)")
    epochs = args.epochs or (2 if args.quick else None)
    config = TrainConfig(epochs=epochs) if epochs else TrainConfig()
    command = shlex.join(["python", "benchmarks/quality.py", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {message}", flush=True)

    blocks = plan(args.quick, args.seeds)
    for block in blocks:
        run_block(block, config, data_dir, log)
    seconds = time.perf_counter() - started
    rows = [r for b in blocks for r in b.rows]
    name = "quality_quick" if args.quick else "quality"
    report = render(blocks, config, seconds, command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.md").write_text(report, encoding="utf-8")
    write_json(rows, args.out / f"{name}.json", {"command": command, "seconds": seconds, "config": config.to_dict(),
                                                  "blocks": [{"title": b.title, "seeds": b.seeds} for b in blocks]})
    main_rows = [r for b in blocks if not b.title.startswith("Ablations") for r in b.rows]
    plot_ndcg_vs_dims(main_rows, args.out / f"{name}.png")
    print(report)
    log(f"wrote {args.out / name}.{{md,json,png}}")


if __name__ == "__main__":
    main()
