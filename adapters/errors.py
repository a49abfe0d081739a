"""Map engine exceptions (qdrant-client, qdrant-edge, gRPC, httpx) into smec-vdb's hierarchy.

Used at every adapter boundary so callers only ever see :class:`smec_vdb.errors.SmecError`:
"collection not found" becomes :class:`CollectionNotFoundError`; anything else a
:class:`BackendError` whose ``retriable`` is True when trying again may help (connection
refused, timeouts, 429/502/503/504, gRPC UNAVAILABLE/DEADLINE_EXCEEDED/RESOURCE_EXHAUSTED).
Engine modules are never imported here: exceptions are recognised by class name.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from smec_vdb.errors import BackendError, CollectionNotFoundError, SmecError

_RETRIABLE_CLASSES = {
    "ConnectionError", "TimeoutError", "ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout",
    "PoolTimeout", "TimeoutException", "NetworkError", "RemoteProtocolError", "ResponseHandlingException",
}
_RETRIABLE_HTTP = {408, 429, 502, 503, 504}
_RETRIABLE_GRPC = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}
_NOT_FOUND_WORDS = ("not found", "doesn't exist", "does not exist", "not exist")


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _grpc_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if callable(code) and "RpcError" in _class_names(exc):
        try:
            return getattr(code(), "name", None)
        except Exception:  # a grpc error without a status
            return None
    return None


def is_retriable(exc: BaseException) -> bool:
    """Whether a retry of the failed call may succeed (transport failures, overload, timeouts)."""
    if _class_names(exc) & _RETRIABLE_CLASSES:
        return True
    if getattr(exc, "status_code", None) in _RETRIABLE_HTTP:
        return True
    return _grpc_code(exc) in _RETRIABLE_GRPC


def _is_not_found(exc: BaseException, collection: str | None) -> bool:
    if collection is None:
        return False
    if getattr(exc, "status_code", None) == 404 or _grpc_code(exc) == "NOT_FOUND":
        return True
    text = str(exc).lower()
    return collection.lower() in text and any(word in text for word in _NOT_FOUND_WORDS)


def map_engine_error(exc: BaseException, engine: str, collection: str | None = None) -> SmecError:
    """The smec-vdb error for an exception raised by ``engine`` while working on ``collection``."""
    if isinstance(exc, SmecError):
        return exc
    if _is_not_found(exc, collection):
        return CollectionNotFoundError(f"{engine}: collection {collection!r} does not exist")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = f" on collection {collection!r}" if collection else ""
    return BackendError(f"{engine}{where}: {type(exc).__name__}: {detail}", retriable=is_retriable(exc))


@contextmanager
def engine_errors(engine: str, collection: str | None = None) -> Iterator[None]:
    """Re-raise any non-smec exception of the block as its mapped smec-vdb error."""
    try:
        yield
    except SmecError:
        raise
    except Exception as exc:
        raise map_engine_error(exc, engine, collection) from exc
