"""Scenarios that need what not every server target has, asserted as a refusal where it is missing.

The Milvus 2.3.5 server target holds one vector field per collection (``max_vector_fields == 1``,
read from the server version at connect): a scenario that needs several (a multi-resolution
collection) must there be refused with :class:`~smec_vdb.errors.UnsupportedServerError` stating the
server's version, before anything is written. :func:`needs_multi_vector` turns such a test into
that assertion on such a target, and runs it unchanged everywhere else.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import pytest

from smec_vdb.engines import capabilities
from smec_vdb.errors import UnsupportedServerError

#: what the refusal must say: the server's version and the version needed
REFUSAL = r"Milvus v?\d+\.\d+\.\d+.*one vector field.*need Milvus >= 2\.4"


def single_vector(backend: Any) -> bool:
    """Whether ``backend`` holds one vector field per collection: its engine never holds more, or the
    connected server does not (Milvus < 2.4, read at connect)."""
    return not capabilities(backend.target).multi_vector or getattr(backend, "max_vector_fields", None) == 1


def needs_multi_vector(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``test``; on a single-vector target assert instead that it is refused as above."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        if "backend" in kwargs:
            backend = kwargs["backend"]
        else:  # embedded engines hold several vector fields; a second client of one may not even open
            target = kwargs["target"]
            backend = None if target.embedded else target.open()
        if backend is None or not single_vector(backend):
            test(*args, **kwargs)
            return
        with pytest.raises(UnsupportedServerError, match=REFUSAL):
            test(*args, **kwargs)

    return run
