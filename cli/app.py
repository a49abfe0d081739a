"""Typer application: registers the commands and maps every SmecError to one line and exit 1.

Tracebacks are shown only when ``SMEC_VDB_DEBUG=1``; log records (warnings and up) print as one
line each, and the engines' own loggers, which repeat as tracebacks the failures we report
ourselves, are quiet unless debugging.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from smec_vdb.errors import SmecError

app = typer.Typer(
    name="smec-vdb",
    help="Compress embeddings with SMEC and store them as multi-resolution collections in Qdrant or Milvus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: …]" must not be read as Rich markup
)


def _register_commands() -> None:
    from smec_vdb.cli import calibrate, demo, inspect, migrate, search, train
    from smec_vdb.cli import eval as eval_cmd  # the module name shadows the builtin otherwise

    train.register(app)
    eval_cmd.register(app)
    demo.register(app)
    migrate.register(app)
    search.register(app)
    inspect.register(app)
    calibrate.register(app)
    __import__("smec_vdb.cli.extend", fromlist=["register"]).register(app)


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
    handler.setFormatter(logging.Formatter() if debug else OneLineFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.CRITICAL)


def main() -> None:
    """Console-script entry point."""
    _register_commands()
    debug = os.environ.get("SMEC_VDB_DEBUG", "") not in ("", "0", "false")
    configure_logging(debug)
    try:
        app(standalone_mode=False)
    except SmecError as e:
        if debug:
            raise
        hint = " (retrying may help)" if e.retriable else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors are handled below; anything else is a bug
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (set SMEC_VDB_DEBUG=1 for a traceback)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
