"""`smec-vdb extend`: add a smaller dim to a saved SMEC compressor (SMEC paper §3.2: sequential
training can continue from the frozen last level); the outputs of its existing dims stay
bit-identical."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from smec_vdb.cli.common import check_output_dir, console, results, stop_on_sigint
from smec_vdb.cli.train import load_vectors, progress_display, summary_table

EXAMPLE = "smec-vdb extend --compressor models/scifact --vectors corpus.npy --dim 16 --out models/scifact-16"


def extend_command(
    compressor: Annotated[Path, typer.Option("--compressor", help="Directory of a saved SMEC compressor.")],
    vectors: Annotated[Path, typer.Option("--vectors", help="(n, d) float16/float32 .npy to train the new stage on.")],
    dim: Annotated[int, typer.Option("--dim", help="The new dim, smaller than the compressor's smallest.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the extended compressor (refused if it exists and "
                                      "is not empty); --compressor is left as it is.")],
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Maximum epochs of the new stage.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda.")] = None,
) -> None:
    """Train one more stage (last dim → --dim) and save the extended compressor as a new one.

    The original stays loadable and unchanged: collections that record it keep working until they
    are migrated with the new one (smec-vdb migrate --compressor <--out>).

    Example: smec-vdb extend --compressor models/scifact --vectors corpus.npy --dim 16 --out models/scifact-16
    """
    import smec_vdb
    from smec_vdb.compress.artifact import holds
    from smec_vdb.compress.base import validate_schedule
    from smec_vdb.compress.smec import SMECCompressor
    from smec_vdb.errors import ConfigError, DimensionError
    from smec_vdb.train.config import TrainConfig
    from smec_vdb.train.loop import stop_when
    from smec_vdb.train.progress_bar import EpochBars
    from smec_vdb.train.smrl import extend_smec

    check_output_dir(out, "--out")
    holds(out)  # an occupied --out (--compressor itself included) is refused before anything is trained
    comp = smec_vdb.load(compressor)
    if not isinstance(comp, SMECCompressor):
        raise ConfigError(f"only SMEC compressors can be extended; {compressor} holds method {comp.method!r}")
    validate_schedule(comp.input_dim, (*comp.dims, dim))
    overrides: dict[str, Any] = {"epochs": epochs, "seed": seed, "device": device}
    config = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    x = load_vectors(vectors)
    if x.shape[1] != comp.input_dim:
        raise DimensionError(f"vectors {vectors} have width {x.shape[1]}, the compressor takes {comp.input_dim}")
    console.print(f"extending {comp.method} {comp.input_dim} → {list(comp.dims)} with {dim} on {x.shape[0]} vectors")
    with stop_on_sigint() as should_stop, stop_when(should_stop), EpochBars() as bars:
        extended = extend_smec(comp, x, dim, config, progress=progress_display() or bars)
    extended.save(out)
    results.print(summary_table(extended))
    results.print(f"saved to {out} (id {extended.manifest_hash}); {compressor} is unchanged")


def register(app: typer.Typer) -> None:
    app.command("extend", help=f"Add a smaller dim to a saved SMEC compressor. Example: {EXAMPLE}")(extend_command)
