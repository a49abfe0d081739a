"""`smec-vdb search`: coarse-to-fine search of a SMEC collection with a full-width query vector."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from smec_vdb.cli.common import BackendOpt, PathOpt, UrlOpt, backend_session, emit_json, results
from smec_vdb.collection import SmecCollection
from smec_vdb.errors import ConfigError, DataError
from smec_vdb.filters import parse
from smec_vdb.search import CANDIDATE_BUDGET, MAX_OVERSAMPLING, MIN_OVERSAMPLING

#: the rule of smec_vdb.search.default_candidates, in words
CANDIDATES_HELP = (f"Coarse candidates [default: k × clamp({CANDIDATE_BUDGET} / coarse dim, {MIN_OVERSAMPLING}, "
                   f"{MAX_OVERSAMPLING}), twice that for coarse codes of ≤ 2 bits, k when the coarse vector is "
                   "full width].")


def read_query(source: str) -> np.ndarray:
    """A query vector from a .npy file (first row), a .json file / JSON text, or '-' for JSON on stdin."""
    try:
        if source == "-":
            data = json.loads(sys.stdin.read())
        elif source.endswith(".npy"):
            data = np.load(source, allow_pickle=False)
        elif source.lstrip().startswith("["):
            data = json.loads(source)
        else:
            data = json.loads(Path(source).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read a query vector from {source!r}: {e}") from e
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] >= 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"expected one query vector, found shape {arr.shape}")
    return arr


def parse_filter_option(text: str | None) -> dict | None:
    """--filter as a JSON object in the language of :mod:`smec_vdb.filters`; None when not given."""
    if text is None:
        return None
    try:
        flt = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"--filter must be a JSON object such as '{{\"kind\": \"class\"}}', found {text!r}") from e
    if not isinstance(flt, dict):
        raise ConfigError(f"--filter must be a JSON object such as '{{\"kind\": \"class\"}}', found {text!r}")
    parse(flt)  # malformed filters fail here, before the store is opened
    return flt


def search_command(
    collection: Annotated[str, typer.Option("--collection", "-c", help="SMEC collection (or alias) to search.")],
    query: Annotated[str, typer.Option("--query", "-q", help="Query vector: x.npy, x.json, a JSON list, or - for stdin.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Hits to return.")] = 10,
    candidates: Annotated[Optional[int], typer.Option(min=1, help=CANDIDATES_HELP)] = None,
    filter_: Annotated[Optional[str], typer.Option("--filter", help='Payload filter as a JSON object: {"kind": "class"}, {"kind": ["a", "b"]}, {"n": {"$gte": 2}}, {"$or": [...]}, {"$not": {...}}, dotted keys for nested fields.')] = None,
    compressor: Annotated[Optional[Path], typer.Option(help="Compressor dir [default: the one the collection records].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    backend: BackendOpt = "qdrant-edge",
    url: UrlOpt = None,
    path: PathOpt = None,
) -> None:
    """Search a SMEC collection coarse-to-fine with a full-width query vector.

    Example: smec-vdb search --collection docs_smec --query q.npy -k 5 --filter '{"kind": "function"}'
    """
    vector = read_query(query)
    flt = parse_filter_option(filter_)
    with backend_session(backend, url, path, existing=True) as b:
        name = b.resolve_alias(collection) if b.supports_aliases and not b.exists(collection) else None
        col = SmecCollection.open(b, name or collection, compressor)
        hits = col.search(vector, k=k, candidates=candidates, filter=flt)
    if as_json:
        emit_json([{"id": h.id, "score": h.score, "payload": h.payload} for h in hits])
        return
    table = Table(title=f"{col.name}: top {k}")
    for c in ("rank", "id", "score", "payload"):
        table.add_column(c)
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), str(h.id), f"{h.score:.4f}", json.dumps(h.payload, ensure_ascii=False)[:100])
    results.print(table)


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)
