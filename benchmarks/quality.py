"""Quality benchmark of issue 12: the main table, the SMEC paper's analyses, each with a plot.

Sections (all nDCG@10 of exact cosine search on the BEIR test split unless named):

* ``main``     — SciFact and NFCorpus · MiniLM-384 at 128/64/32: truncation, PCA, variance-ranked and
  ADS selection, the linear PCA adaptor (ours), Matryoshka-Adaptor (Yoon 2024), Search-Adaptor
  (Yoon 2023) and SMEC, unsupervised and supervised. Baselines get SMEC's total epochs of the same
  run as their cap (§4.2 budget rule) under the same stopping rule, best held-out epoch reported.
* ``ablation`` — paper Table 1 on SciFact, unsupervised: MRL (joint), +SMRL, +ADS, +S-XBM, full, and
  the shipped default (SMRL + S-XBM, ADS off);
  ``--seeds`` seeds, mean ± sd.
* ``ads``      — paper Table 2: achievement rate (share of the kept dims among the top-d by WARE, eq. 10)
  of ADS selection, prefix truncation and variance ranking on raw SciFact MiniLM vectors.
* ``gradvar``  — paper Figs. 6–7: per-epoch variance (over the steps) of the gradient of the first
  stage's weights, MRL (all stages jointly) vs SMRL, SciFact, same epochs for both.
* ``memory``   — paper Table 3: S-XBM memory size (0 = in-batch neighbours … 20,000) vs held-out
  neighbour recall@10 of a 384→64 stage on the 63,678 debian-package vectors.
* ``schedule`` — issue 24: the schedule ``migrate --dim`` trains (§3.2: each stage trained, then
  frozen), today's :func:`~smec_vdb.migrate.plan.choose_schedule` against the halving one it
  replaced, trained as migrate does (:func:`smec_vdb.migrate.plan.train_compressor`, unsupervised,
  the whole corpus as the sample), nDCG@10 at the stored dim; ``--seeds`` seeds.

    .venv/bin/python benchmarks/quality.py                 # TrainConfig defaults; 1 seed in the main table
    .venv/bin/python benchmarks/quality.py --full          # 3 seeds in the main table too
    .venv/bin/python benchmarks/quality.py --sections main --model all-mpnet-base-v2 --out benchmarks/results/mpnet
    .venv/bin/python benchmarks/quality.py --sections ads  # one section
    .venv/bin/python benchmarks/quality.py --sections schedule --out benchmarks/results/schedule

Writes quality.md / quality.json / quality_<section>.png under --out (benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.eval.experiment import (
    MethodSpec, full_dim_row, ranking_examples, run_method, score_dims, training_qrels, validation_examples,
)
from smec_vdb.eval.report import ResultRow, markdown_table, plot_ndcg_vs_dims
from smec_vdb.train.config import TrainConfig

OUT = Path("benchmarks/results")
MINILM = "minilm-l6-v2"
DIMS = (128, 64, 32)
MAX_RELEVANT, MAX_QUERIES = 50, 1000
BASELINES = ["truncate", "pca", "linear-adaptor", "matryoshka-adaptor", "search-adaptor"]
TRAINED = {"linear-adaptor", "matryoshka-adaptor", "search-adaptor"}
ABLATION = [
    ("MRL", {"use_smrl": False, "use_ads": False, "use_xbm": False}),
    ("MRL + SMRL", {"use_smrl": True, "use_ads": False, "use_xbm": False}),
    ("MRL + ADS", {"use_smrl": False, "use_ads": True, "use_xbm": False}),
    ("MRL + S-XBM", {"use_smrl": False, "use_ads": False, "use_xbm": True}),
    ("SMEC (all three)", {"use_smrl": True, "use_ads": True, "use_xbm": True}),
    ("SMEC default (SMRL + S-XBM, ADS off)", {"use_smrl": True, "use_ads": False, "use_xbm": True}),
]
SCHEDULE_CASES = (("all-mpnet-base-v2", (128, 64)), (MINILM, (64,)))
MEMORY_SIZES = (0, 1000, 5000, 20000)
MEMORY_EPOCHS = 3  # 63,678 rows: ~250 steps an epoch
GRADVAR_EPOCHS = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main_section(config: TrainConfig, seeds: list[int], out: dict, datasets: list[str], model: str,
                 methods: list[str] | None = None) -> list[ResultRow]:
    """``methods``: the rows to run (``smec`` and/or BASELINES; default all)."""
    methods = ["smec", *BASELINES] if methods is None else methods
    rows: list[ResultRow] = []
    for name in datasets:
        ds = load_beir(name, model)
        rows.append(full_dim_row(ds))
        qrels = training_qrels(ds, max_relevant=MAX_RELEVANT, max_queries=MAX_QUERIES)
        examples = ranking_examples(ds, hard_negatives=config.rank_negatives, qrels=qrels)
        validation = validation_examples(ds, config.rank_negatives, MAX_RELEVANT)
        for supervised in (False, True):
            epochs: list[int] = []
            if "smec" in methods:
                smec = MethodSpec("smec (sup.)" if supervised else "smec", "smec", supervised)
                log(f"{name} {smec.label}")
                rows += run_method(ds, smec, DIMS, seeds, config, examples=examples, validation=validation,
                                   train_qrels=qrels, rerank_candidates=None,
                                   on_trained=lambda s, c, t: epochs.append(sum(st["epochs"] for st in c.training_info["stages"])))
            budget = max(1, round(float(np.mean(epochs)))) if epochs else config.epochs
            out.setdefault("budgets", {})[f"{name} {'sup' if supervised else 'unsup'}"] = budget
            for method in BASELINES:
                if method not in methods or (supervised and method not in TRAINED):
                    continue
                spec = MethodSpec(f"{method} (sup.)" if supervised else method, method, supervised)
                cfg = replace(config, epochs=budget) if method in TRAINED else config
                log(f"{name} {spec.label} (epochs {cfg.epochs})")
                rows += run_method(ds, spec, DIMS, seeds[:1], cfg, examples=examples, validation=validation,
                                   train_qrels=qrels, rerank_candidates=None)
    return rows


def ablation_section(config: TrainConfig, seeds: list[int]) -> list[ResultRow]:
    ds = load_beir("scifact", MINILM)
    rows = []
    for label, options in ABLATION:
        log(f"ablation {label}")
        rows += run_method(ds, MethodSpec(label, "smec", False, options), DIMS, seeds, config, rerank_candidates=None)
    return rows


def halving_schedule(width: int, dim: int) -> tuple[int, ...]:
    """The schedule ``migrate --dim`` trained before issue 24: halve from the width while above ``dim``."""
    dims, d = [], width // 2
    while d > dim:
        dims.append(d)
        d //= 2
    return (*dims, dim)


def schedule_section(seeds: list[int], dataset: str) -> list[ResultRow]:
    from smec_vdb.migrate.options import MigrationOptions
    from smec_vdb.migrate.plan import choose_schedule, train_compressor

    rows = []
    for model, targets in SCHEDULE_CASES:
        ds = load_beir(dataset, model)
        corpus = np.array(ds.corpus, dtype=np.float32)
        for label, rule in (("halving (before)", halving_schedule), ("choose_schedule", choose_schedule)):
            for dim in targets:
                dims = rule(ds.dim, dim)
                row = ResultRow(ds.name, ds.model, label, dim, {"ndcg@10": []}, [], "schedules: ")
                for seed in seeds:
                    log(f"schedule {dataset} {model} {label} {dims} seed {seed}")
                    started = time.perf_counter()
                    comp = train_compressor(corpus, dims, MigrationOptions(source=dataset, dims=dims, seed=seed), None)
                    row.train_seconds.append(time.perf_counter() - started)
                    row.metrics["ndcg@10"].append(score_dims(ds, comp.encode, [dim], rerank_candidates=None)[dim]["ndcg@10"])
                row.note = f"{ds.dim}→{'→'.join(map(str, dims))}"
                rows.append(row)
    return rows


def ware_importance(x: np.ndarray, pairs: int = 20000, seed: int = 0) -> np.ndarray:
    """WARE (eq. 10) of removing each dim: mean |cos − cos without dim i| / |cos| over random pairs."""
    rng = np.random.default_rng(seed)
    a, b = x[rng.integers(0, len(x), pairs)], x[rng.integers(0, len(x), pairs)]
    prod = a * b
    dot = prod.sum(1)
    na, nb = (a * a).sum(1), (b * b).sum(1)
    cos = dot / np.sqrt(na * nb)
    without = (dot[:, None] - prod) / np.sqrt((na[:, None] - a * a) * (nb[:, None] - b * b))
    return (np.abs(cos[:, None] - without) / np.maximum(np.abs(cos[:, None]), 1e-6)).mean(0)


def ads_section(config: TrainConfig, out: dict) -> str:
    from smec_vdb.compress.selection import SelectionCompressor

    ds = load_beir("scifact", MINILM)
    x = np.array(ds.corpus, dtype=np.float32)
    ware = ware_importance(x)
    top = np.argsort(-ware)
    result: dict = {}
    for strategy in ("ads", "prefix", "variance"):
        log(f"ads achievement: {strategy}")
        comp = SelectionCompressor.fit(x, list(DIMS), config, strategy=strategy)
        sel = comp.selected_indices()
        result[strategy] = {d: len(set(sel[d]) & set(top[:d].tolist())) / d for d in DIMS}
        nd = score_dims(ds, comp.encode, DIMS, rerank_candidates=None)
        result[strategy + " ndcg@10"] = {d: nd[d]["ndcg@10"] for d in DIMS}
    out["ads"] = result
    lines = ["| selection | " + " | ".join(f"{d}-d achievement" for d in DIMS) + " | " + " | ".join(f"{d}-d nDCG@10" for d in DIMS) + " |",
             "|---|" + "---|" * (2 * len(DIMS))]
    for strategy in ("ads", "prefix", "variance"):
        lines.append(f"| {strategy} | " + " | ".join(f"{result[strategy][d]:.1%}" for d in DIMS) + " | "
                     + " | ".join(f"{result[strategy + ' ndcg@10'][d]:.3f}" for d in DIMS) + " |")
    _plot_lines({s: [result[s][d] for d in DIMS] for s in ("ads", "prefix", "variance")}, list(DIMS),
                "dims", "achievement rate (top-d by WARE)", OUT / "quality_ads.png")
    return "\n".join(lines)


def memory_section(config: TrainConfig, out: dict) -> str:
    from smec_vdb.train.smrl import train_smec

    path = shared_data_dir() / "debian-packages" / "embeddings" / MINILM / "corpus_f16.npy"
    x = np.load(path).astype(np.float32)
    result = {}
    for size in MEMORY_SIZES:
        cfg = replace(config, use_xbm=size > 0, memory_size=max(size, 1), epochs=MEMORY_EPOCHS, patience=MEMORY_EPOCHS)
        log(f"memory size {size}")
        started = time.perf_counter()
        comp = train_smec(x, [64], cfg)
        stage = comp.training_info["stages"][0]
        result[size] = {"recall@10": stage["best_score"], "initial": stage["initial_score"], "epochs": stage["epochs"],
                        "seconds": round(time.perf_counter() - started, 1)}
    out["memory"] = result
    _plot_lines({"SMEC 384→64": [result[s]["recall@10"] for s in MEMORY_SIZES]}, list(MEMORY_SIZES),
                "S-XBM memory size (0 = in-batch)", "held-out neighbour recall@10", OUT / "quality_memory.png")
    lines = ["| memory size | held-out recall@10 | PCA start | epochs | train s |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {r['recall@10']:.4f} | {r['initial']:.4f} | {r['epochs']} | {r['seconds']} |" for s, r in result.items()]
    return "\n".join(lines)


def gradvar_section(config: TrainConfig, out: dict) -> str:
    """Record every step's gradient of the first stage's square weight through a global optimizer hook."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from smec_vdb.train.smrl import train_smec

    x = np.array(load_beir("scifact", MINILM).corpus, dtype=np.float32)
    result = {}
    for label, joint in (("MRL", True), ("SMRL", False)):
        grads: list[torch.Tensor] = []
        first: list[int] = []

        def hook(optimizer, args, kwargs):
            weight = optimizer.param_groups[0]["params"][0]
            if not first:
                first.append(id(weight))
            if id(weight) == first[0] and weight.grad is not None:
                grads.append(weight.grad.detach().flatten().clone())

        handle = register_optimizer_step_pre_hook(hook)
        try:
            log(f"gradient variance: {label}")
            cfg = replace(config, use_smrl=not joint, use_ads=False, epochs=GRADVAR_EPOCHS, patience=GRADVAR_EPOCHS)
            train_smec(x, list(DIMS), cfg)
        finally:
            handle.remove()
        steps = len(grads) // GRADVAR_EPOCHS
        per_epoch = [float(torch.stack(grads[e * steps : (e + 1) * steps]).var(dim=0).mean()) for e in range(GRADVAR_EPOCHS)]
        result[label] = per_epoch
    out["gradvar"] = result
    _plot_lines(result, list(range(1, GRADVAR_EPOCHS + 1)), "epoch", "gradient variance of stage-1 weights",
                OUT / "quality_gradvar.png", log_y=True)
    lines = ["| epoch | " + " | ".join(result) + " |", "|---|" + "---|" * len(result)]
    lines += [f"| {e + 1} | " + " | ".join(f"{result[k][e]:.3e}" for k in result) + " |" for e in range(GRADVAR_EPOCHS)]
    return "\n".join(lines)


def _plot_lines(series: dict, xs: list, xlabel: str, ylabel: str, path: Path, log_y: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, ys in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)



LONGEST_FIRST = [("main", "scifact"), ("ablation", None), ("main", "nfcorpus"), ("memory", None), ("ads", None),
                 ("gradvar", None)]
SECTION_TITLES = {
    "main": "## Main table (test nDCG@10, exact search)",
    "ablation": "## Ablation (paper Table 1), SciFact unsupervised",
    "ads": "## ADS achievement rate (paper Table 2), SciFact MiniLM raw dims",
    "gradvar": "## Gradient variance, MRL vs SMRL (paper Figs. 6–7), SciFact unsupervised",
    "memory": "## S-XBM memory size (paper Table 3), debian-packages 63,678 × 384, stage 384→64, 3 epochs",
    "schedule": "## migrate's schedule (issue 24): halving vs choose_schedule, unsupervised, nDCG@10 at the stored dim",
}


def run_section(task: tuple[str, str | None], config: TrainConfig, seeds: list[int], out_dir: Path,
                model: str = MINILM, methods: list[str] | None = None) -> dict:
    """One unit of work (a section, or the main table of one dataset) in its own process."""
    global OUT
    OUT = out_dir
    torch.set_num_threads(1)
    name, dataset = task
    started = time.perf_counter()
    meta: dict = {}
    rows: list[ResultRow] = []
    text = ""
    if name == "main":
        rows = main_section(config, seeds, meta, [dataset], model, methods)
    elif name == "ablation":
        rows = ablation_section(config, seeds)
    elif name == "schedule":
        rows = schedule_section(seeds, dataset)
    elif name == "ads":
        text = ads_section(config, meta)
    elif name == "gradvar":
        text = gradvar_section(config, meta)
    elif name == "memory":
        text = memory_section(config, meta)
    return {"task": task, "rows": rows, "text": text, "meta": meta, "minutes": round((time.perf_counter() - started) / 60, 1)}


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="3 seeds in the main table as well")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the ablation (and of the main table with --full)")
    parser.add_argument("--sections", default="main,ablation,ads,gradvar,memory")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    parser.add_argument("--epochs", type=int, help="override the max epochs per stage (e.g. 1 for a smoke run)")
    parser.add_argument("--datasets", default="scifact,nfcorpus", help="datasets of the main table")
    parser.add_argument("--model", default=MINILM, help="embedding model of the main table (e.g. all-mpnet-base-v2)")
    parser.add_argument("--methods", default=",".join(["smec", *BASELINES]),
                        help="rows of the main table (e.g. smec alone, with --full for 3 seeds)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(device="cpu") if args.epochs is None else TrainConfig(epochs=args.epochs, device="cpu")
    seeds = list(range(args.seeds))
    sections = args.sections.split(",")
    per_dataset = ("main", "schedule")
    tasks = [(s, d) for s in sections for d in (tuple(args.datasets.split(",")) if s in per_dataset else (None,))]
    tasks.sort(key=lambda t: LONGEST_FIRST.index(t) if t in LONGEST_FIRST else 0)  # longest first
    started = time.perf_counter()
    meta: dict = {"command": " ".join(["python", *sys.argv]), "machine": platform.machine(), "cpus": os.cpu_count(),
                  "jobs": args.jobs, "loadavg_start": os.getloadavg()[0], "config": config.to_dict(), "tasks": {}}
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_section, t, config, seeds if (args.full or t[0] != "main") else [0], OUT, args.model,
                               args.methods.split(","))
                   for t in tasks]
        results = [f.result() for f in futures]
    md = [f"# Quality benchmark (issue 12)\n\nCommand: `{meta['command']}` · TrainConfig defaults "
          f"(epochs ≤ {config.epochs} per stage, lr {config.lr} with {config.lr_decays} decays × {config.lr_decay} on a "
          f"held-out plateau of {config.patience} epochs) · main table: {args.model} · {args.jobs} worker processes, "
          f"1 torch thread each, on a {os.cpu_count()}-core machine (load averages at the end)."]
    rows_json: dict = {}
    for section in sections:
        parts = [r for r in results if r["task"][0] == section]
        rows = [row for r in parts for row in r["rows"]]
        md.append(SECTION_TITLES[section] + "\n")
        for r in parts:
            meta["tasks"][" ".join(x for x in r["task"] if x)] = {"minutes": r["minutes"], **r["meta"]}
        if rows:
            if section == "main":
                budgets = {k: v for r in parts for k, v in r["meta"].get("budgets", {}).items()}
                md.append(f"Epochs given to the trained baselines = SMEC's total epochs in the same setting (§4.2): {budgets}. "
                          "Supervised runs select on the dev split (NFCorpus) or held-out train queries (SciFact).\n")
            else:
                md.append(f"Seeds {seeds}: mean ± sd.\n")
            md.append(markdown_table(rows))
            plot_ndcg_vs_dims(rows, OUT / f"quality_{section}.png")
            rows_json[section] = [r.__dict__ for r in rows]
        md += [r["text"] for r in parts if r["text"]]
    meta["minutes"] = round((time.perf_counter() - started) / 60, 1)
    meta["loadavg_end"] = os.getloadavg()[0]
    md.append(f"Total wall time {meta['minutes']} min (1-min load average {meta['loadavg_start']:.1f} at the start, "
              f"{meta['loadavg_end']:.1f} at the end). Per-task minutes in quality.json (`meta.tasks`).\n")
    (OUT / "quality.md").write_text("\n\n".join(md), encoding="utf-8")
    (OUT / "quality.json").write_text(json.dumps({"meta": meta, "rows": rows_json}, indent=1, default=str), encoding="utf-8")
    log(f"wrote {OUT / 'quality.md'} in {meta['minutes']} min")


if __name__ == "__main__":
    main()
