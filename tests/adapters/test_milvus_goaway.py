"""A connect refused on a channel the server closed (GOAWAY "too many pings") is told apart from others."""

from smec_vdb.adapters.milvus_connection import _closed_by_goaway
from smec_vdb.errors import BackendError


def chained(inner: BaseException) -> BackendError:
    try:
        try:
            raise inner
        except Exception as e:
            raise BackendError("milvus-server: cannot connect: Fail connecting to server") from e
    except BackendError as outer:
        return outer


def test_a_connect_refused_after_too_many_pings_is_recognised():
    assert _closed_by_goaway(chained(RuntimeError('status = StatusCode.UNAVAILABLE details = "Too many pings"')))


def test_other_failures_and_self_caused_chains_are_not_and_end():
    assert not _closed_by_goaway(chained(ConnectionRefusedError("connection refused")))
    looped = RuntimeError("Fail connecting")
    looped.__cause__ = looped  # as pymilvus's ``raise e from e`` leaves it
    assert not _closed_by_goaway(chained(looped))
