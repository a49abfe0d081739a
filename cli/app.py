"""Typer application: registers the commands; click prints usage errors, we print our own errors.

Usage errors (an unknown option or command, a bad value, a missing option) are click's: typer
runs in standalone mode, which prints the usage line and one ``Error:`` line and exits 2. Only a
:class:`SmecError` is ours: one ``error: …`` line and exit 1, or 130 when the run was interrupted
(Ctrl-C). Tracebacks only with ``--debug`` / ``SMEC_VDB_DEBUG=1``; log records (warnings and up)
print as one line each, and the engines' own loggers, which repeat as tracebacks the failures we
report ourselves, are quiet unless debugging.

typer ≥ 0.26 vendors click as ``typer._click``: its exceptions are not ``click.ClickException``,
so catching click's classes around ``app(standalone_mode=False)`` (as this module once did) never
matched, and every usage error came out as an "internal error".
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from smec_vdb import __version__
from smec_vdb.errors import Interrupted, MaskingFormatter, SmecError

#: exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="smec-vdb",
    help="Compress embeddings with SMEC and store them as multi-resolution collections in Qdrant or Milvus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: …]" must not be read as Rich markup
)


class Settings:
    """What the root options set before a command runs (read again by :func:`main` after it).

    ``console_script``: run by :func:`main`, which owns the process's logging (an app invoked in
    another program, e.g. by typer's CliRunner in tests, leaves that program's logging alone)."""

    debug = False
    console_script = False


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"smec-vdb {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", envvar="SMEC_VDB_DEBUG",
                                        help="Show tracebacks and the engines' own logs.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Compress embeddings with SMEC and store them as multi-resolution collections in Qdrant or Milvus."""
    Settings.debug = debug
    if Settings.console_script:
        configure_logging(debug)


def _register_commands() -> None:
    from smec_vdb.cli import demo, inspect, migrate, search, train
    from smec_vdb.cli import eval as eval_cmd  # the module name shadows the builtin otherwise

    train.register(app)
    eval_cmd.register(app)
    demo.register(app)
    migrate.register(app)
    search.register(app)
    inspect.register(app)
    __import__("smec_vdb.cli.extend", fromlist=["register"]).register(app)
    __import__("smec_vdb.cli.compressors", fromlist=["register"]).register(app)


#: loggers of the embedded engines: they log (with tracebacks) each failure that reaches us as an exception
ENGINE_LOGGERS = ("pymilvus", "milvus_lite", "grpc")


class OneLineFormatter(logging.Formatter):
    """``warning: name: message`` — the first line of the message, no traceback or stack."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().splitlines()
        return f"{record.levelname.lower()}: {record.name}: {message[0] if message else ''}"


def configure_logging(debug: bool) -> None:
    """Warnings and errors of every logger on stderr, one line each; engine loggers quiet unless ``debug``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter(logging.Formatter() if debug else OneLineFormatter()))
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.WARNING)
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.CRITICAL)


def main() -> None:
    """Console-script entry point."""
    _register_commands()
    Settings.console_script = True
    try:
        app(prog_name="smec-vdb")  # standalone mode: click prints usage errors and exits 2; Ctrl-C outside a stop check exits 130
    except SmecError as e:
        if Settings.debug:
            raise
        hint = " (retrying may help)" if e.retriable else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED if isinstance(e, Interrupted) else 1)
    except Exception as e:  # anything else is a bug
        if Settings.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (set SMEC_VDB_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
