"""pymilvus, imported on first use, and its exceptions mapped into smec-vdb's hierarchy.

Every call the Milvus adapter makes runs inside :func:`engine_errors`, so callers only ever see
:class:`~smec_vdb.errors.SmecError`: a missing collection becomes
:class:`~smec_vdb.errors.CollectionNotFoundError`, anything else a
:class:`~smec_vdb.errors.BackendError` whose ``retriable`` says whether trying again may help
(pymilvus's own ``MilvusException.retriable``, its "cannot connect" code 2, gRPC transport failures).

Example::

    with engine_errors("milvus-lite", "count points of 'docs'", "docs"):
        client.query("docs", filter="", output_fields=["count(*)"])
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from smec_vdb.adapters.errors import is_retriable
from smec_vdb.errors import BackendError, CollectionNotFoundError, MissingDependencyError, SmecError

RETRIABLE_HINTS = ("fail connecting", "unavailable", "deadline exceeded", "timeout", "timed out", "connection refused")


def pymilvus() -> Any:
    """The pymilvus module; MissingDependencyError with the install line when the [milvus] extra is absent."""
    # gRPC's C core logs transport chatter (e.g. Milvus Lite's "too_many_pings" GOAWAY) straight to
    # stderr; every real failure still reaches us as an exception, so keep the terminal clean.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    # pymilvus's first import dictConfig()s its logger to WARNING with a handler of its own, over a level
    # the host application set (the CLI quiets engine loggers: their tracebacks repeat our one-line error)
    host_level = logging.getLogger("pymilvus").level
    try:
        import pymilvus as module
    except ImportError as e:
        from smec_vdb.engines import engine

        raise MissingDependencyError(f"the milvus backend needs pymilvus: {engine('milvus').install_hint}") from e
    if host_level:
        logging.getLogger("pymilvus").setLevel(host_level)
    try:  # pymilvus execs scipy.sparse afresh on its first search, unlocked: two threads at once (a search
        import scipy.sparse  # noqa: F401 - beside the verification's recall thread) failed with KeyError
    except ImportError:  # 'scipy.sparse' (seen in CI); imported once here, that exec finds it in sys.modules
        pass
    return module


def mapped(error: Exception, target: str, action: str, collection: str | None = None) -> SmecError:
    """The smec-vdb error for ``error``, raised by ``target`` while trying to ``action``."""
    message = getattr(error, "message", None) or str(error)
    code = getattr(error, "code", None)
    lowered = message.lower()
    if collection is not None and (code == 100 or ("collection" in lowered and "not" in lowered and "exist" in lowered)):
        return CollectionNotFoundError(f"{target}: collection {collection!r} does not exist")
    if "multiple vector fields" in lowered:
        return BackendError(
            f"{target}: cannot {action}: this Milvus server holds one vector field per collection; "
            f"multi-resolution collections need Milvus >= 2.4 ({message})"
        )
    if target == "milvus-lite" and ("another process" in lowered or "open local milvus failed" in lowered):
        return BackendError(
            f"{target}: cannot {action}: {message} (Milvus Lite allows one process per path: is another "
            "process using it? Close it or use another path)"
        )
    if "no data left in file" in lowered or "not fully written" in lowered:  # Milvus Lite 3.2.2 np.save()s index files in place (not crash-safe)
        return BackendError(
            f"{target}: cannot {action}: a file of the collection's index is cut short ({message}): Milvus Lite "
            "writes its index files in place, so a process killed while it wrote one leaves it truncated and the "
            "collection cannot be loaded again; drop and rebuild it (a migration target: run the same migrate "
            "command with --restart; the source is untouched)"
        )
    # MilvusException.retriable is the server's own verdict; code 2 is pymilvus's "cannot connect".
    retriable = (
        bool(getattr(error, "retriable", False)) or is_retriable(error) or code == 2
        or isinstance(error, pymilvus().exceptions.MilvusUnavailableException)
        or any(hint in lowered for hint in RETRIABLE_HINTS)
    )
    return BackendError(f"{target}: cannot {action}: {message}", retriable=retriable)


@contextmanager
def engine_errors(target: str, action: str, collection: str | None = None) -> Iterator[None]:
    """Re-raise any pymilvus/gRPC exception of the block as its mapped smec-vdb error."""
    try:
        yield
    except SmecError:
        raise
    except Exception as e:  # noqa: BLE001 - every engine error must be mapped at this boundary
        raise mapped(e, target, action, collection) from e
