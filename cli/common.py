"""Options and helpers shared by the commands: backend selection, progress display, JSON output."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from smec_vdb.engines import DEFAULT_ENGINE, ENGINES
from smec_vdb.errors import ConfigError

console = Console(stderr=True)

BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", envvar="SMEC_VDB_BACKEND", help="Engine: " + "; ".join(
        f"{e.name} ({e.summary})" for e in ENGINES.values()) + ".")
]
UrlOpt = Annotated[
    Optional[str], typer.Option("--url", help="Server URL (qdrant: http://host:6333, milvus: http://host:19530). "
                                "Env: QDRANT_URL / MILVUS_URI.")
]
PathOpt = Annotated[
    Optional[str], typer.Option("--path", help="Embedded store: a directory (qdrant, qdrant-edge; default "
                                "./smec_data for qdrant-edge) or a Milvus Lite file such as x.db.")
]


def open_backend_from_options(backend: str, url: str | None, path: str | None, *, existing: bool = False):
    """Open the engine chosen by --backend/--url/--path (API keys and tokens come from the environment).

    ``existing``: the command only reads, so an embedded store that is not there is an error
    (opening it would create an empty one, hiding a mistyped --path).
    """
    from smec_vdb.adapters import DEFAULT_STORE, open_backend

    if existing and url is None and path != ":memory:":
        store = path if path is not None else (DEFAULT_STORE if backend == DEFAULT_ENGINE else None)
        if store is not None and not Path(store).exists():
            raise ConfigError(f"no {backend} store at {store!r}: give --path of an existing store "
                              "(smec-vdb demo creates one)")
    return open_backend(backend, url=url, path=path)


@contextmanager
def backend_session(backend: str, url: str | None, path: str | None, *, existing: bool = False) -> Iterator[Any]:
    """The opened backend, closed afterwards; ``existing`` as in :func:`open_backend_from_options`."""
    b = open_backend_from_options(backend, url, path, existing=existing)
    try:
        yield b
    except BaseException:
        try:  # the error that stopped the command is the one to report, not a failing close after it
            b.close()
        except Exception:
            pass
        raise
    b.close()


def parse_dims(text: str | None) -> tuple[int, ...] | None:
    """"512,256" → (512, 256); ConfigError on anything else."""
    if text is None:
        return None
    try:
        dims = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as e:
        raise ConfigError(f"dims must be comma-separated integers such as 512,256, found {text!r}") from e
    if not dims:
        raise ConfigError(f"dims must be comma-separated integers such as 512,256, found {text!r}")
    return dims


class PhaseProgress:
    """A rich progress display with one bar per phase (points/s and ETA), fed by library callbacks."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

        self.started = False

    def __enter__(self) -> "PhaseProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.progress.__exit__(*exc)

    def update(self, phase: str, done: int, total: int | None, detail: str = "") -> None:
        if not self.started:  # start drawing on the first event, so early errors stay one line
            self.progress.__enter__()
            self.started = True
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total, rate="")
        task = self.tasks[phase]
        elapsed = self.progress.tasks[task].elapsed or 0.0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 and phase != "train" else detail
        self.progress.update(task, completed=done, total=total, rate=rate)


def emit_json(data: Any, path: Path | None = None) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    if path is None:
        typer.echo(text)
    else:
        path.write_text(text + "\n")
