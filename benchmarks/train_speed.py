"""Training speed (issues 12 and 24): one SMEC stage epoch against its GEMM roofline, migrate's whole
training step at LLM width, and supervised `smec-vdb train` through the CLI with its peak RSS.

Sections:

* ``stage``   — one epoch of ``train_stages`` (held-out scoring included, as a user pays it) on one
  thread, against the time this CPU needs for the stage's GEMMs alone: per step the forward
  ``(U × D) @ (D × d)`` on the U unique rows of a batch (anchors and their S-XBM neighbours, mean
  over the first 20 batches) and the weight-gradient GEMM of the same size (the inputs are frozen,
  so no input gradient), at the measured single-thread rate. ``ratio = roofline / measured``.
  ``ratio_with_search`` also counts the S-XBM neighbour search, one GEMM ``(B × D) @ (D × M)`` of
  the batch against the memory (§3.4), at its own measured rate.
* ``migrate`` — the training step of ``migrate`` exactly as it runs it:
  :func:`smec_vdb.migrate.plan.train_compressor` on a 20,000-vector sample with the schedule migrate
  picks (``--dims`` given, or :func:`~smec_vdb.migrate.plan.choose_schedule` for ``--dim``), torch's
  default threads (all cores). At 3584-d on synthetic LLM-like vectors (:func:`llm_like_vectors`:
  no real 3584-d embeddings exist here), at 384-d on 20,000 of the debian MiniLM vectors.
* ``cli``     — supervised ``smec-vdb train`` on NFCorpus MiniLM with its whole train split (2,590
  queries, up to 1,363 judged docs each), ``--dims 128,64,32``, as a child process: wall time and its
  peak RSS (``VmHWM`` of the child, plus the RSS sampled every 0.5 s to show how it swings).

Every row records the 1-minute load average before and after it: the machine is shared.

    .venv/bin/python benchmarks/train_speed.py                       # all sections
    .venv/bin/python benchmarks/train_speed.py --sections migrate --epochs 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.eval.beir import shared_data_dir
from smec_vdb.migrate.options import MigrationOptions
from smec_vdb.migrate.plan import schedule, train_compressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.objective import Objective
from smec_vdb.train.smrl import _init_stage, smec_terms, train_stages

OUT = Path("benchmarks/results")
SHAPES = ((100_000, 384, 128), (5_000, 3584, 1792))
SAMPLE = 20_000
MINILM = "minilm-l6-v2"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def llm_like_vectors(n: int, dim: int, seed: int = 0, *, clusters: int = 1000, decay: float = 1.0,
                     mean_cosine: float = 0.4, between: float = 0.5) -> np.ndarray:
    """Unit vectors shaped like LLM text embeddings, for timing where no real ones exist.

    Eigenvalues fall as a power law λ_i ∝ i^-decay (decay 1: the top 10 % of the dims hold 74 % of the
    variance at 3584-d; SciFact/NFCorpus mpnet-768 corpora: 72 % / 77 %), in a random orthogonal basis
    (no axis is special); ``between`` of that variance lies between ``clusters`` topical centres, so
    items have real near neighbours; a common mean direction gives a mean pairwise cosine of
    ``mean_cosine`` (mpnet: 0.13 / 0.25; LLM embedders are more anisotropic). Training cost depends on
    the shapes, not on the values; the spectrum and the clusters make the held-out criterion — and so
    the number of epochs a stage runs — behave as on real data rather than on isotropic noise.
    """
    g = torch.Generator().manual_seed(seed)
    scale = torch.arange(1, dim + 1, dtype=torch.float32) ** (-decay / 2)
    centres = torch.randn(clusters, dim, generator=g) * scale * between ** 0.5
    z = centres[torch.randint(clusters, (n,), generator=g)] + torch.randn(n, dim, generator=g) * scale * (1 - between) ** 0.5
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    x = torch.nn.functional.normalize(z @ basis.T, dim=1)
    mean = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
    x = torch.nn.functional.normalize(x + (mean_cosine / (1 - mean_cosine)) ** 0.5 * mean, dim=1)
    return x.numpy()


def debian_sample(n: int, seed: int = 0) -> np.ndarray:
    path = shared_data_dir() / "debian-packages" / "embeddings" / MINILM / "corpus_f16.npy"
    x = np.load(path)
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False))
    return x[rows].astype(np.float32)


# -- stage: one epoch against the GEMM roofline ---------------------------------------------------
def gemm_rate(m: int, k: int, n: int, repeats: int = 5) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * m * k * n * repeats / (time.perf_counter() - started)


def unique_rows_per_step(data: TrainingData, config: TrainConfig, batches: int = 20) -> int:
    """Mean number of distinct rows a step multiplies (anchors and their S-XBM neighbours), over the first batches."""
    objective = Objective(data, config, smec_terms(config, data.supervised))
    counts = []
    for b in range(min(batches, math.ceil(data.train_rows.numel() / config.batch_size))):
        anchors = data.train_rows[b * config.batch_size : (b + 1) * config.batch_size]
        counts.append(torch.unique(torch.cat([anchors, objective.neighbours(anchors)[1].flatten()])).numel())
    return round(sum(counts) / len(counts))


def measure_stage(n: int, dim: int, out_dim: int, config: TrainConfig) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=g) * torch.linspace(2.0, 0.1, dim) + 0.3
    data = TrainingData.build(x, config)
    comp = SMECCompressor(dim, [out_dim], use_ads=config.use_ads)
    _init_stage(comp, data, 0)
    steps = math.ceil(data.train_rows.numel() / config.batch_size)
    u = unique_rows_per_step(data, config)
    before = load()
    started = time.perf_counter()
    report = train_stages(comp, data, config, 0, 0)
    seconds = time.perf_counter() - started
    width = dim if config.use_ads else out_dim
    rate = gemm_rate(u, dim, width)
    roofline = steps * 2 * 2.0 * u * dim * width / rate
    memory = min(config.memory_size, n)
    search_rate = gemm_rate(config.batch_size, dim, memory)
    search = steps * 2.0 * config.batch_size * dim * memory / search_rate
    per_epoch = seconds / report.epochs
    return {"n": n, "dim": dim, "out_dim": out_dim, "epochs": report.epochs, "seconds_per_epoch": per_epoch,
            "steps_per_epoch": steps, "unique_rows_per_step": u, "gemm_gflops": rate / 1e9,
            "roofline_seconds_per_epoch": roofline, "ratio": roofline / per_epoch,
            "search_seconds_per_epoch": search, "ratio_with_search": (roofline + search) / per_epoch,
            "loadavg": [before, load()]}


def stage_section(args: argparse.Namespace) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(epochs=1, patience=1, device="cpu")
        rows = [measure_stage(n, d, k, config) for n, d, k in SHAPES]
    finally:
        torch.set_num_threads(threads)
    for r in rows:
        print(f"stage {r['n']:>7} × {r['dim']:>4} → {r['out_dim']:>4}: {r['seconds_per_epoch']:.1f} s/epoch, roofline "
              f"{r['roofline_seconds_per_epoch']:.1f} s ({r['gemm_gflops']:.0f} GFLOP/s), ratio {r['ratio']:.2f}; "
              f"with the S-XBM search GEMM ({r['search_seconds_per_epoch']:.1f} s) {r['ratio_with_search']:.2f} "
              f"(load {r['loadavg']})", flush=True)
    return rows


# -- migrate: the whole training step as migrate runs it -------------------------------------------
def measure_migrate(name: str, sample: np.ndarray, opts: MigrationOptions) -> dict:
    dims = schedule(opts, sample.shape[1])
    before = load()
    cpu, started = time.process_time(), time.perf_counter()
    comp = train_compressor(sample, dims, opts, None)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    stages = comp.training_info["stages"]
    row = {"case": name, "n": len(sample), "width": sample.shape[1], "schedule": list(dims),
           "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "torch_threads": torch.get_num_threads(),
           "train_options": dict(opts.train_options), "loadavg": [before, load()],
           "stages": [{k: s[k] for k in ("dim", "epochs", "best_epoch", "initial_score", "best_score", "seconds")}
                      for s in stages]}
    print(f"migrate {name}: schedule {list(dims)}, {seconds / 60:.1f} min ({cpu_seconds / 60:.1f} CPU-min, "
          f"{torch.get_num_threads()} threads, load {row['loadavg']}); per stage "
          + "; ".join(f"{s['dim']}-d {s['epochs']} ep {s['seconds']:.0f} s recall {s['initial_score']:.3f}→{s['best_score']:.3f}"
                      for s in stages), flush=True)
    return row


def migrate_section(args: argparse.Namespace) -> list[dict]:
    train_options = {"epochs": args.epochs} if args.epochs else {}
    cases = []
    if "3584" in args.widths:
        x = llm_like_vectors(SAMPLE, 3584)
        cases.append(("3584 → --dims 512,128", x, MigrationOptions(source="bench", dims=(512, 128), train_options=train_options)))
        cases.append(("3584 → --dim 128", x, MigrationOptions(source="bench", dim=128, train_options=train_options)))
    if "384" in args.widths:
        cases.append(("384 → --dim 64 (debian)", debian_sample(SAMPLE), MigrationOptions(source="bench", dim=64, train_options=train_options)))
    rows, done = [], {}
    for name, x, opts in cases:
        key = (x.shape[1], schedule(opts, x.shape[1]))
        if key in done:  # --dim picked the same schedule as an explicit --dims: same run
            rows.append({**done[key], "case": name, "same_as": done[key]["case"]})
            print(f"migrate {name}: schedule {list(key[1])}, the same run as {done[key]['case']!r}", flush=True)
            continue
        done[key] = measure_migrate(name, x, opts)
        rows.append(done[key])
    return rows


# -- cli: supervised `smec-vdb train` on NFCorpus, wall time and peak RSS ---------------------------
def _rss_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cli_section(args: argparse.Namespace) -> list[dict]:
    root = shared_data_dir() / "beir" / "nfcorpus"
    emb = root / "embeddings" / MINILM
    cli = Path(sys.executable).with_name("smec-vdb")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(cli), "train", "--vectors", str(emb / "corpus.npy"), "--queries", str(emb / "queries.npy"),
                   "--query-ids", str(emb / "query_ids.json"), "--doc-ids", str(emb / "corpus_ids.json"),
                   "--qrels", str(root / "qrels" / "train.tsv"), "--dims", "128,64,32", "--out", str(Path(tmp) / "m")]
        if args.epochs:
            command += ["--epochs", str(args.epochs)]
        before = load()
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        samples: list[tuple[float, int]] = []
        peak = [0]

        def watch() -> None:
            while child.poll() is None:
                rss, hwm = _rss_kb(child.pid, "VmRSS"), _rss_kb(child.pid, "VmHWM")
                if rss is not None:
                    samples.append((round(time.perf_counter() - started, 1), rss))
                if hwm is not None:
                    peak[0] = max(peak[0], hwm)
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        output, _ = child.communicate()
        watcher.join()
        seconds = time.perf_counter() - started
        rss = [r for _, r in samples]
        row = {"case": "nfcorpus minilm supervised, whole train split, --dims 128,64,32", "command": " ".join(command),
               "returncode": child.returncode, "seconds": round(seconds, 1), "peak_rss_mb": round(peak[0] / 1024),
               "rss_mb_min_max": [round(min(rss) / 1024), round(max(rss) / 1024)] if rss else None,
               "rss_mb_timeline": [(t, round(r / 1024)) for t, r in samples[:: max(1, len(samples) // 60)]],
               "loadavg": [before, load()], "output_tail": output[-2000:]}
    rows.append(row)
    print(f"cli {row['case']}: exit {row['returncode']}, {seconds / 60:.1f} min, peak RSS {row['peak_rss_mb']} MB "
          f"(sampled {row['rss_mb_min_max']}), load {row['loadavg']}", flush=True)
    return rows


SECTIONS = {"stage": stage_section, "migrate": migrate_section, "cli": cli_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="cli,migrate,stage", help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--widths", default="3584,384", help="migrate section: which widths")
    parser.add_argument("--epochs", type=int, help="cap the epochs per stage (smoke runs; default: TrainConfig's)")
    parser.add_argument("--out", type=Path, default=OUT / "train_speed.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "cpus": os.cpu_count(),
                              "torch_threads": torch.get_num_threads(), "loadavg_start": load()}
    for name in args.sections.split(","):
        result[name] = SECTIONS[name](args)
    result["loadavg_end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
