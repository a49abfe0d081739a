"""One exception hierarchy for smec-vdb.

Every failure the library reports is a :class:`SmecError`. Engine errors (gRPC, HTTP,
Rust panics) are mapped into :class:`BackendError` at the adapter boundary, with
``retriable`` saying whether trying again can help (connection refused, timeouts).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

#: a URL in free text: ``scheme://`` up to the next space, quote or angle bracket
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
#: a secret passed as a query parameter (``?api_key=…``, ``&token=…``)
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:api[_-]?key|token|password|passwd|secret)=)[^&#;]*")


def _without_credentials(url: str) -> tuple[str, str, bool]:
    """(scheme, the URL after ``scheme://`` minus its credentials, whether it had any).

    The credentials end at the *last* ``@``: a host never holds one, while a password may hold ``@``,
    ``:`` and even ``/``, ``?`` or ``#`` unencoded (urlsplit, which splits the authority off at the
    first ``/``, would then leave the password in the path). An ``@`` in a path is masked too: the
    safe mistake.
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return scheme, host if at else rest, bool(at)


def mask_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the user:password (or
    token) before the host, and secret query parameters (``api_key``, ``token``, ``password``)."""

    def mask(match: re.Match[str]) -> str:
        scheme, rest, had = _without_credentials(match.group(0))
        return _SECRET_PARAM.sub(r"\1***", f"{scheme}://{'***@' if had else ''}{rest}")

    return _URL.sub(mask, text)


def public_url(url: str) -> str:
    """``url`` without credentials, scheme and host lower-cased (:func:`urllib.parse.urlsplit`), no
    trailing ``/``: the form that may be shown, logged or used as a store's identity."""
    scheme, rest, _ = _without_credentials(url)
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        parts = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower())
        clean = urlunsplit(parts)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: keep the text as given, credentials removed
        clean = f"{scheme}://{rest}"
    return _SECRET_PARAM.sub(r"\1***", clean).rstrip("/")


class MaskingFormatter(logging.Formatter):
    """Formats a log record with ``inner`` (message, traceback), then masks every URL's credentials."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_credentials(self.inner.format(record))


class SmecError(Exception):
    """Base class of every smec-vdb error. ``retriable`` is True when a retry may succeed."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(mask_credentials(message))
        if retriable is not None:
            self.retriable = retriable


class ConfigError(SmecError):
    """Invalid options: a dims schedule that is not decreasing, an unknown method, conflicting arguments."""


class MissingDependencyError(ConfigError):
    """An optional package (an engine client, the CLI's typer/rich) is not installed; the message gives the pip line."""


class SingleWriterError(ConfigError):
    """An embedded engine (qdrant-edge, Qdrant local mode, Milvus Lite) was asked to serve several worker
    processes: it allows one writer process, so a distributed run needs a server."""


class DimensionError(SmecError):
    """A vector width or output dim does not match what the compressor or collection expects."""


class InvalidVectorError(SmecError):
    """Input vectors are empty, non-finite (NaN/inf) or all-zero where a direction is needed."""


class ArtifactError(SmecError):
    """A saved compressor is missing, corrupt, truncated, of an incompatible format, or unsafe to read
    (a weights file outside its folder or not a regular file, shapes beyond the bounds or the file)."""


class CompressorInUseError(ArtifactError):
    """A compressor a collection (or a running migration) still records was asked to be deleted."""


class DataError(SmecError):
    """Training or evaluation data is malformed (qrels, id lists, .npy files)."""


class UnsupportedServerError(ConfigError):
    """The connected server's version cannot hold what was asked (e.g. several vector fields on Milvus
    < 2.4); the message states the version found and the version needed."""


class BackendError(SmecError):
    """An engine operation failed. ``retriable`` tells whether a retry can help."""


class RetriesExhaustedError(BackendError):
    """A retriable engine error persisted through every attempt of a :class:`smec_vdb.retry.RetryPolicy`.

    ``attempts`` is how many calls were made; the last engine error is the ``__cause__``.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message, retriable=True)
        self.attempts = attempts


class RequestTooLargeError(BackendError):
    """One point alone would make a request body larger than the request-size budget (nothing was written)."""


class ServerVersionError(BackendError):
    """The server's version lacks a feature smec-vdb needs (e.g. Qdrant collection metadata, from 1.16)."""


class CollectionNotFoundError(BackendError):
    """The named collection (or alias) does not exist."""


class CollectionExistsError(BackendError):
    """A collection with that name exists already, with a schema other than the one asked for."""


class CorruptStoreError(BackendError):
    """A file of an embedded store (e.g. a qdrant-edge sidecar JSON) is unreadable; the message names it."""


class CompressorMismatchError(SmecError):
    """A collection was written by another compressor than the one used to read or write it."""


class Interrupted(SmecError):
    """A stop was requested (Ctrl-C) and honoured at a safe point; what was written is whole (the CLI exits 130)."""


class TrainingInterrupted(Interrupted):
    """Training stopped at a batch boundary because ``should_stop()`` said so; nothing was returned or saved."""


class MigrationError(SmecError):
    """A migration cannot proceed (bad source, checkpoint from another run, …)."""


class UnsupportedSourceError(MigrationError):
    """The source holds something the target cannot keep faithfully (a distance, an id kind, a vector
    name clash); raised while planning, before anything is trained or written."""


class VerificationError(MigrationError):
    """A finished migration failed its verification (ids, content, vectors, encodings or recall).

    ``report`` carries the full migration report so callers can still save it.
    """

    def __init__(self, message: str, *, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report
