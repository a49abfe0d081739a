"""Bounded retries with exponential backoff and jitter, for engine errors whose ``retriable`` is True.

Engine-agnostic: the adapters map every engine failure into :class:`smec_vdb.errors.SmecError` with
``retriable`` set (connection refused, timeouts, HTTP 429/502/503/504, gRPC UNAVAILABLE …), so one
policy serves Qdrant and Milvus alike. The retry loop is tenacity's (stop after ``attempts``, retry
only what the predicate accepts, sleep between, count the time slept); this module adds what is
ours: which errors are retried (a retriable :class:`SmecError`, never an exhausted inner policy),
equal jitter with an injectable random source, the :class:`RetriesExhaustedError` naming the attempt
count, and :func:`retrying`, which wraps a backend so that its reads and its idempotent writes
(upsert/delete by id, set a metadata key) are retried; creating a collection or an alias is not,
since a repeat after a lost reply would fail on its own success.

Example::

    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=20.0)
    points, cursor = policy.call(backend.scroll, "docs", limit=512)
    reliable = retrying(backend, policy)        # reliable.upsert(...) retries a 503
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt

from smec_vdb.errors import ConfigError, RetriesExhaustedError, SmecError

if TYPE_CHECKING:
    from smec_vdb.backend import Backend

T = TypeVar("T")

#: Backend methods safe to repeat: reads, and writes whose second run leaves the same state
RETRIED_METHODS = frozenset({
    "list_collections", "exists", "schema", "count", "scroll", "retrieve", "search", "search_stages",
    "get_metadata", "resolve_alias", "upsert", "delete", "set_metadata",
})


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` calls; before retry n (n = 1, 2, …) a sleep drawn uniformly from
    [d/2, d] with d = min(``max_delay``, ``base_delay`` · 2^(n−1)) ("equal jitter": retries of many
    clients spread out, yet never come back at once). ``sleep`` and ``random`` are injectable for tests.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"attempts must be an integer >= 1, found {self.attempts!r}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ConfigError(f"need 0 <= base_delay <= max_delay, found base_delay={self.base_delay}, "
                              f"max_delay={self.max_delay}")

    def delay(self, retry: int) -> float:
        """Seconds to sleep before retry number ``retry`` (1-based); never above ``max_delay``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return ceiling * (0.5 + 0.5 * self.random())

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, repeated while it raises a retriable :class:`SmecError`."""
        loop = Retrying(stop=stop_after_attempt(self.attempts), retry=retry_if_exception(is_retriable),
                        wait=self._wait, sleep=self.sleep)
        try:
            return loop(fn, *args, **kwargs)
        except RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            raise RetriesExhaustedError(
                f"{last} (still failing after {self.attempts} attempts over "
                f"{loop.statistics['idle_for']:.1f} s of backoff)", attempts=self.attempts,
            ) from last

    def _wait(self, state: RetryCallState) -> float:
        return self.delay(state.attempt_number)


def is_retriable(error: BaseException) -> bool:
    """A :class:`SmecError` that says a retry may help; an inner policy's exhausted error never is again."""
    return isinstance(error, SmecError) and error.retriable and not isinstance(error, RetriesExhaustedError)


#: used by migrate's copy and verify; replace it (or pass a policy to :func:`retrying`) to tune
DEFAULT_POLICY = RetryPolicy()


class _Retrying:
    """A backend whose :data:`RETRIED_METHODS` go through a :class:`RetryPolicy`; all else passes through."""

    def __init__(self, backend: Backend, policy: RetryPolicy) -> None:
        self._backend = backend
        self._policy = policy

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._backend, name)
        if name in RETRIED_METHODS:
            return functools.partial(self._policy.call, attribute)
        return attribute


def retrying(backend: Backend, policy: RetryPolicy | None = None) -> Backend:
    """``backend`` with reads and idempotent writes retried under ``policy`` (default :data:`DEFAULT_POLICY`)."""
    if isinstance(backend, _Retrying):
        return cast("Backend", backend)
    return cast("Backend", _Retrying(backend, policy or DEFAULT_POLICY))
