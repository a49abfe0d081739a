"""smec_vdb.retry: bounded attempts, bounded backoff, only retriable errors retried (pure logic, a fake backend)."""

from __future__ import annotations

import pytest

from smec_vdb.errors import BackendError, CollectionNotFoundError, ConfigError, RetriesExhaustedError
from smec_vdb.retry import RetryPolicy, retrying


class FlakyBackend:
    """Fails the first ``failures`` calls of ``scroll``/``upsert``/``create_collection`` with ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error = failures, error
        self.calls: dict[str, int] = {}

    def _call(self, name: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.calls[name] <= self.failures:
            raise self.error
        return f"{name} ok"

    def scroll(self, collection: str, **kwargs: object) -> str:
        return self._call("scroll")

    def upsert(self, collection: str, batch: object) -> str:
        return self._call("upsert")

    def create_collection(self, collection: str, schema: object) -> str:
        return self._call("create_collection")


def policy(attempts: int = 4, random: float = 1.0) -> tuple[RetryPolicy, list[float]]:
    sleeps: list[float] = []
    return RetryPolicy(attempts=attempts, base_delay=0.5, max_delay=3.0, sleep=sleeps.append,
                       random=lambda: random), sleeps


def unavailable() -> BackendError:
    return BackendError("qdrant (http://***@host:6333): UnexpectedResponse: 503 Service Unavailable", retriable=True)


def test_retriable_errors_are_retried_until_success():
    fake = FlakyBackend(failures=2, error=unavailable())
    p, sleeps = policy()
    assert retrying(fake, p).scroll("c", limit=10) == "scroll ok"  # type: ignore[arg-type,call-arg]
    assert fake.calls["scroll"] == 3
    assert sleeps == [0.5, 1.0]  # base · 2^(n−1) at the top of the jitter range


def test_backoff_is_capped_and_jittered_within_half_to_full():
    p, _ = policy(attempts=10, random=0.0)
    assert [p.delay(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.5, 1.5]  # lower end: d/2, d capped at 3 s
    high, _ = policy(attempts=10, random=1.0)
    assert max(high.delay(n) for n in range(1, 40)) == 3.0


def test_gives_up_after_the_attempts_with_the_count_in_the_error():
    fake = FlakyBackend(failures=100, error=unavailable())
    p, sleeps = policy(attempts=4)
    with pytest.raises(RetriesExhaustedError, match="after 4 attempts") as caught:
        retrying(fake, p).upsert("c", None)  # type: ignore[arg-type]
    assert fake.calls["upsert"] == 4 and len(sleeps) == 3
    assert caught.value.attempts == 4 and caught.value.retriable
    assert caught.value.__cause__ is fake.error
    assert "***@host" in str(caught.value) and "503" in str(caught.value)


@pytest.mark.parametrize("error", [BackendError("400 Bad Request: wrong vector size", retriable=False),
                                   CollectionNotFoundError("collection 'c' does not exist"),
                                   ValueError("not a smec error")])
def test_non_retriable_errors_are_raised_at_once(error):
    fake = FlakyBackend(failures=1, error=error)
    p, sleeps = policy()
    with pytest.raises(type(error)):
        retrying(fake, p).scroll("c")  # type: ignore[arg-type]
    assert fake.calls["scroll"] == 1 and sleeps == []


def test_non_idempotent_methods_are_not_retried():
    fake = FlakyBackend(failures=1, error=unavailable())
    p, sleeps = policy()
    with pytest.raises(BackendError):
        retrying(fake, p).create_collection("c", None)  # type: ignore[arg-type]
    assert fake.calls["create_collection"] == 1 and sleeps == []


def test_an_exhausted_inner_policy_is_not_retried_again():
    fake = FlakyBackend(failures=100, error=unavailable())
    inner, _ = policy(attempts=2)
    outer, outer_sleeps = policy(attempts=3)
    with pytest.raises(RetriesExhaustedError, match="after 2 attempts"):
        outer.call(retrying(fake, inner).scroll, "c")  # type: ignore[arg-type]
    assert fake.calls["scroll"] == 2 and outer_sleeps == []


def test_wrapping_twice_keeps_one_policy():
    fake = FlakyBackend(failures=0, error=unavailable())
    once = retrying(fake)  # type: ignore[arg-type]
    assert retrying(once) is once


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"attempts": 1.5}, {"base_delay": -1},
                                    {"base_delay": 5, "max_delay": 1}])
def test_bad_policies_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


class EveryOtherCallFails:
    """A real engine behind a flaky link: once ``armed``, every second scroll/retrieve/upsert/set_metadata
    fails with a retriable BackendError before reaching the engine (as a 503 from an overloaded server)."""

    FLAKY = {"scroll", "retrieve", "upsert", "set_metadata"}

    def __init__(self, backend: object) -> None:
        self._backend = backend
        self.armed = False
        self.failed = 0
        self._calls = 0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._backend, name)
        if name not in self.FLAKY or not self.armed:
            return attribute

        def flaky(*args: object, **kwargs: object) -> object:
            self._calls += 1
            if self._calls % 2 == 0:
                self.failed += 1
                raise unavailable()
            return attribute(*args, **kwargs)

        return flaky


def test_migrate_copy_and_verify_ride_out_retriable_failures(tmp_path, monkeypatch):
    """A migration whose link drops every second call from the copy phase on still copies and verifies
    every point; without the retry hunks in copy/verify the first dropped call fails the run. (Survey and
    training before the copy, and the final report write after it, are outside the hunks: the link is
    armed at the first copy event and disarmed when the recall check is done.)"""
    import numpy as np

    import smec_vdb.retry
    from smec_vdb.adapters import open_backend
    from smec_vdb.backend import Batch, CollectionSchema, Resolution
    from smec_vdb.migrate import MigrationEvent, MigrationOptions, migrate

    p, sleeps = policy(attempts=3)
    monkeypatch.setattr(smec_vdb.retry, "DEFAULT_POLICY", p)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 32)).astype(np.float32)
    engine = open_backend("qdrant", path=":memory:")
    engine.create_collection("src", CollectionSchema((Resolution("emb", 32),)))
    engine.upsert("src", Batch(ids=list(range(len(x))), vectors={"emb": x}, payloads=[{"i": i} for i in range(len(x))]))
    flaky = EveryOtherCallFails(engine)
    opts = MigrationOptions(source="src", dim=16, batch_size=100, verify_queries=20, min_recall=0.3,
                            compressor_store=str(tmp_path / "comp"), train_options={"epochs": 2})

    def flaky_during_copy_and_verify(event: MigrationEvent) -> None:
        flaky.armed = (flaky.armed or event.phase == "copy") and not (
            event.phase == "recall" and event.done == event.total)

    report = migrate(flaky, opts, progress=flaky_during_copy_and_verify)  # type: ignore[arg-type]
    assert report["verification"]["passed"], report["verification"]["summary"]
    assert report["verification"]["points_checked"] == len(x)
    assert flaky.failed > 0 and len(sleeps) == flaky.failed
