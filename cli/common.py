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

from smec_vdb.connection import Connection
from smec_vdb.engines import engine, engines
from smec_vdb.errors import ConfigError

console = Console(stderr=True)

def _url_help() -> str:
    servers = [(e, t) for e in engines().values() for t in e.targets if t.opened_by == "url" and not t.reported]
    return ("Server URL (" + ", ".join(f"{e.name}: {t.summary}" for e, t in servers) + "). Env: "
            + " / ".join(e.url_env for e, _ in servers if e.url_env) + ".")


def _path_help() -> str:
    stores = [(e, t) for e in engines().values() for t in e.targets if t.opened_by == "path"]
    return "Embedded store: " + "; ".join(
        f"{e.name}: {t.summary}" + (f" (default {e.default_path})" if e.default_path else "") for e, t in stores) + "."


BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", envvar="SMEC_VDB_BACKEND", help="Engine: " + "; ".join(
        f"{e.name} ({e.summary})" for e in engines().values()) + ".")
]
UrlOpt = Annotated[Optional[str], typer.Option("--url", help=_url_help())]
PathOpt = Annotated[Optional[str], typer.Option("--path", help=_path_help())]


def open_backend_from_options(backend: str, url: str | None, path: str | None, *, existing: bool = False):
    """Open the engine chosen by --backend/--url/--path (API keys and tokens come from the environment).

    ``existing``: the command only reads, so an embedded store that is not there is an error
    (opening it would create an empty one, hiding a mistyped --path).
    """
    connection = Connection.resolve(backend, url, path)
    store = connection.path
    if existing and store is not None and store != engine(backend).in_memory and not Path(store).exists():
        raise ConfigError(f"no {backend} store at {store!r}: give --path of an existing store "
                          "(smec-vdb demo creates one)")
    return connection.open()


@contextmanager
def backend_session(backend: str, url: str | None, path: str | None, *, existing: bool = False) -> Iterator[Any]:
    """The opened backend, closed afterwards; ``existing`` as in :func:`open_backend_from_options`."""
    with open_backend_from_options(backend, url, path, existing=existing) as b:
        yield b


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
