"""`smec-vdb train`: fit a compressor on a .npy of embeddings and save it to a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from smec_vdb.cli.common import check_output_dir, console, parse_dims, results, stop_on_sigint
from smec_vdb.compress.registry import known_methods, method_class
from smec_vdb.errors import ConfigError, DataError, DimensionError, InvalidVectorError

EXAMPLE = "smec-vdb train --vectors corpus.npy --dims 128,64,32 --out models/scifact"


def load_vectors(path: Path, what: str = "vectors") -> np.ndarray:
    """Read a float16/float32 (n, d) .npy (memory-mapped) as float32; typed errors naming the problem."""
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {what} {path} as a .npy array: {e}") from e
    if arr.ndim != 2:
        raise DimensionError(f"{what} {path} must be a 2-D (n, dim) array, found shape {arr.shape}")
    if arr.dtype not in (np.float16, np.float32, np.float64):
        raise DataError(f"{what} {path} must hold float16/float32 values, found {arr.dtype}")
    if arr.shape[0] == 0:
        raise InvalidVectorError(f"{what} {path} has 0 rows")
    out = np.array(arr, dtype=np.float32)  # copy: a read-only memmap cannot back a torch tensor
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise InvalidVectorError(f"{what} {path}: row {int(np.argmax(bad))} holds NaN or inf ({int(bad.sum())} such rows)")
    return out


def load_ids(path: Path, expected: int, what: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        ids = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {what} {path} as JSON: {e}") from e
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
        raise DataError(f"{what} {path} must be a JSON list of ids")
    if len(ids) != expected:
        raise DataError(f"{what} {path} holds {len(ids)} ids for {expected} vector rows")
    return [str(i) for i in ids]


class StageLines:
    """Training progress where stderr is not a terminal (a log, CI): a line as each stage's first epoch ends
    (on a terminal, ``train()`` draws its own bar)."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def __call__(self, event) -> None:
        if (event.stage, event.stage_dim) not in self.seen:
            self.seen.add((event.stage, event.stage_dim))
            console.print(f"stage {event.stage + 1} → {event.stage_dim}d…")


def progress_display():
    """What the training commands pass as ``progress``: None (train()'s bar) on a terminal, else :class:`StageLines`."""
    return None if console.is_terminal else StageLines()


def summary_table(comp) -> Table:
    """One row per trained stage (or per dim of a method with nothing to train: 0 epochs)."""
    table = Table(title=f"{comp.method}: {comp.input_dim} → {', '.join(map(str, comp.dims))}")
    for col in ("dim", "epochs used", "held-out", "start → best", "early stop", "s"):
        table.add_column(col, justify="right")
    for s in comp.training_info.get("stages", []):
        table.add_row(str(s["dim"]), f"{s['epochs']} (best {s['best_epoch']})", s["criterion"],
                      f"{s['initial_score']:.3f} → {s['best_score']:.3f}", "yes" if s["stopped_early"] else "no",
                      f"{s['seconds']:.1f}")
    return table


def train_command(
    vectors: Annotated[Path, typer.Option("--vectors", help="(n, d) float16/float32 .npy of embeddings (the corpus).")],
    dims: Annotated[str, typer.Option("--dims", help="Decreasing target dims, e.g. 128,64,32.")],
    out: Annotated[Path, typer.Option("--out", help="New folder to save the compressor to (refused if it exists "
                                      "and is not empty: a saved compressor is never overwritten).")],
    method: Annotated[str, typer.Option("--method", help=f"One of: {', '.join(known_methods())}.")] = "smec",
    queries: Annotated[Optional[Path], typer.Option("--queries", help="(q, d) .npy of query embeddings (supervised).")] = None,
    query_ids: Annotated[Optional[Path], typer.Option("--query-ids", help="JSON list of ids, one per --queries row.")] = None,
    doc_ids: Annotated[Optional[Path], typer.Option("--doc-ids", help="JSON list of ids, one per --vectors row.")] = None,
    qrels: Annotated[Optional[Path], typer.Option("--qrels", help="BEIR qrels TSV (query-id, corpus-id, score).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Maximum epochs per stage.")] = None,
    patience: Annotated[Optional[int], typer.Option("--patience", help="Epochs without validation gain before a stage stops.")] = None,
    memory_size: Annotated[Optional[int], typer.Option("--memory-size", help="S-XBM memory size (frozen embeddings).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Vectors per step.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate.")] = None,
    alpha: Annotated[Optional[float], typer.Option("--alpha", help="Weight of the unsupervised loss (eq. 9).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (same seed, same weights on CPU).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda.")] = None,
) -> None:
    """Train a compressor on frozen embeddings and save it.

    Unsupervised from the vectors alone; supervised (rank loss + unsupervised term) when
    --queries, --query-ids, --doc-ids and --qrels are all given.

    Example: smec-vdb train --vectors corpus.npy --dims 128,64,32 --out models/scifact
    """
    from smec_vdb.compress.artifact import holds
    from smec_vdb.train import TrainConfig, build_ranking_examples, read_qrels, train

    schedule = parse_dims(dims)
    method_class(method)  # unknown names fail here, before any file is read
    check_output_dir(out, "--out")
    holds(out)  # an occupied --out is refused before anything is read or trained
    overrides = {"epochs": epochs, "patience": patience, "memory_size": memory_size, "batch_size": batch_size,
                 "lr": lr, "alpha": alpha, "seed": seed, "device": device}
    config = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    x = load_vectors(vectors)
    supervised = [queries, query_ids, doc_ids, qrels]
    examples = None
    if any(p is not None for p in supervised):
        if not all(p is not None for p in supervised):
            raise ConfigError("supervised training needs all of --queries, --query-ids, --doc-ids and --qrels")
        q = load_vectors(queries, "queries")
        if q.shape[1] != x.shape[1]:
            raise DimensionError(f"queries have width {q.shape[1]}, vectors {x.shape[1]}")
        examples = build_ranking_examples(
            q, x, read_qrels(qrels), load_ids(query_ids, q.shape[0], "query ids"),
            load_ids(doc_ids, x.shape[0], "doc ids"), hard_negatives=config.rank_negatives,
        )
    mode = f"supervised on {len(examples)} queries" if examples is not None else "unsupervised"
    with stop_on_sigint() as should_stop:
        console.print(f"training {method} {x.shape[1]} → {schedule} on {x.shape[0]} vectors "
                      f"({mode}, device {config.resolved_device()})")
        comp = train(x, schedule, method=method, config=config, examples=examples, should_stop=should_stop,
                     progress=progress_display())
    comp.save(out)
    results.print(summary_table(comp))
    results.print(f"saved to {out} (id {comp.manifest_hash})")


def register(app: typer.Typer) -> None:
    app.command("train", help=f"Train a compressor on frozen embeddings. Example: {EXAMPLE}")(train_command)
