"""Options and helpers shared by the commands: backend selection, progress display, output, Ctrl-C.

Results go to stdout (:data:`results`), progress and logs to stderr (:data:`console`). Piped to a
file or another program, neither is cut to 80 columns: rich wraps only on a terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

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

#: line width for output that is not a terminal: wide enough that no table or line is wrapped or cut
PIPED_WIDTH = 10_000


def _width(stream: Any) -> int | None:
    return None if getattr(stream, "isatty", lambda: False)() else PIPED_WIDTH


console = Console(stderr=True, width=_width(sys.stderr))  # progress, logs, notes
results = Console(width=_width(sys.stdout))  # what a command was asked for: tables, summaries

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


def _new_store(backend: str, url: str | None, path: str | None) -> Path | None:
    """The outermost part of the embedded store's path that does not exist yet (None: it exists, or a server)."""
    store = Connection.resolve(backend, url, path).path
    if store is None or store == engine(backend).in_memory:
        return None
    new = Path(store).absolute()
    if new.exists():
        return None
    while not new.parent.exists():
        new = new.parent
    return new


def _remove(created: Path) -> None:
    if created.is_dir():
        shutil.rmtree(created, ignore_errors=True)
    else:
        created.unlink(missing_ok=True)


@contextmanager
def backend_session(backend: str, url: str | None, path: str | None, *, existing: bool = False) -> Iterator[Any]:
    """The opened backend, closed afterwards; ``existing`` as in :func:`open_backend_from_options`.

    A store this command created (a new ``--path``, with any new parent folders) is removed again
    when the command fails while the store holds no collection, so a failed command leaves nothing behind.
    """
    created = _new_store(backend, url, path)
    try:
        b = open_backend_from_options(backend, url, path, existing=existing)
    except BaseException:
        if created is not None:
            _remove(created)
        raise
    unused = False
    try:
        with b:  # closed on the way out; an error in the block is the one reported, not a failing close
            try:
                yield b
            except BaseException:
                unused = created is not None and _holds_nothing(b)
                raise
    except BaseException:
        if unused and created is not None:
            _remove(created)
        raise


def _holds_nothing(backend: Any) -> bool:
    try:
        return not backend.list_collections()
    except Exception:  # the store is in no state to say: keep it
        return False


@contextmanager
def stop_on_sigint() -> Iterator[Callable[[], bool]]:
    """A stop check for the library's ``should_stop``: true after the first Ctrl-C.

    The library then stops at its next batch boundary and raises an :class:`~smec_vdb.errors.Interrupted`
    error (one line, exit 130); a second Ctrl-C aborts at once. The previous handler is restored after.
    """
    requested: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)


def check_output_dir(path: Path, flag: str) -> None:
    """ConfigError unless ``path`` can be (or is) a directory to write to: checked before any work, so
    that a file in the way or an unwritable parent is not found only after training."""
    existing = path if path.exists() else next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {existing} is not writable")


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
    """A rich progress display with one bar per phase (points/s and ETA), fed by library callbacks.

    When stderr is not a terminal (a log file, CI) it prints one line as each phase starts instead.
    A phase ends where the next one starts: training stopped early on its held-out score shows
    ``9/9`` epochs, not ``9/30``.
    """

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
            if exc[0] is None:
                self._finish(self.tasks.values())
            self.progress.__exit__(*exc)

    def _finish(self, tasks: Any) -> None:
        for task in tasks:
            state = self.progress.tasks[task]
            if state.total is None or state.completed < state.total:
                self.progress.update(task, total=state.completed)

    def update(self, phase: str, done: int, total: int | None, detail: str = "") -> None:
        if not console.is_terminal:
            if phase not in self.tasks:
                self.tasks[phase] = TaskID(len(self.tasks))
                console.print(f"{phase}…")
            return
        if not self.started:  # start drawing on the first event, so early errors stay one line
            self.progress.__enter__()
            self.started = True
        if phase not in self.tasks:
            self._finish(self.tasks.values())
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
