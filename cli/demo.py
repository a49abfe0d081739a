"""`smec-vdb demo`: seed a real source collection (stdlib docstrings, MiniLM 384-d) to migrate."""

from __future__ import annotations

from typing import Annotated

import typer

from smec_vdb.cli.common import BackendOpt, PathOpt, PhaseProgress, UrlOpt, backend_session, results
from smec_vdb.demo import seed_demo
from smec_vdb.errors import CollectionExistsError


def demo_command(
    collection: Annotated[str, typer.Option("--collection", "-c", help="Name of the collection to create.")] = "docs",
    limit: Annotated[int, typer.Option(min=1, help="Docstrings to embed.")] = 2000,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild the collection if it exists.")] = False,
    backend: BackendOpt = "qdrant-edge",
    url: UrlOpt = None,
    path: PathOpt = None,
) -> None:
    """Embed Python standard-library docstrings with all-MiniLM-L6-v2 into a source collection.

    Example: smec-vdb demo && smec-vdb migrate --collection docs --dim 64
    """
    with backend_session(backend, url, path) as b, PhaseProgress() as bars:
        if b.exists(collection) and not replace:
            raise CollectionExistsError(f"collection {collection!r} exists already: pass --replace to rebuild it")
        summary = seed_demo(b, collection, limit=limit, replace=replace,
                            progress=lambda done, total: bars.update("embed", done, total))
    results.print(f"created {summary['collection']!r}: {summary['points']} points, {summary['dim']}-d "
                  f"{summary['model']} on {summary['backend']}. Next: smec-vdb migrate --collection "
                  f"{summary['collection']} --dim 64")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
