"""The overlapped reader → transform → writer: order kept, bounded, and what came before a failure written."""

from __future__ import annotations

import threading
import time

import pytest

from smec_vdb.migrate.pipeline import overlap, prefetch


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_everything_is_written_in_order(depth):
    written: list[int] = []
    overlap(iter(range(50)), lambda i: i * 2, written.append, depth)
    assert written == [2 * i for i in range(50)]


def test_stages_overlap_in_threads_with_a_bounded_read_ahead():
    read, seen = [], []

    def items():
        for i in range(20):
            read.append((i, threading.current_thread().name))
            yield i

    def write(i):
        seen.append((i, len(read), threading.current_thread().name))
        time.sleep(0.002)

    overlap(items(), lambda i: i, write, depth=2)
    assert {name for _, name in read} == {"smec-prefetch"} and {name for *_, name in seen} == {"smec-writer"}
    assert all(n_read - i <= 2 + 2 + 2 for i, n_read, _ in seen), "the reader ran unbounded ahead of the writer"


def test_a_reader_error_comes_after_what_was_read_before_it():
    written: list[int] = []

    def items():
        yield from range(5)
        raise ValueError("page 5 is bad")

    with pytest.raises(ValueError, match="page 5"):
        overlap(items(), lambda i: i, written.append, depth=2)
    assert written == [0, 1, 2, 3, 4]


def test_a_writer_error_stops_the_rest():
    written: list[int] = []

    def write(i):
        if i == 3:
            raise OSError("disk full")
        written.append(i)

    with pytest.raises(OSError, match="disk full"):
        overlap(iter(range(100)), lambda i: i, write, depth=2)
    assert written == [0, 1, 2]


def test_a_transform_error_is_raised_after_earlier_items_are_written():
    written: list[int] = []

    def transform(i):
        if i == 4:
            raise RuntimeError("encode failed")
        return i

    with pytest.raises(RuntimeError, match="encode failed"):
        overlap(iter(range(10)), transform, written.append, depth=2)
    assert written == [0, 1, 2, 3]


def test_prefetch_closed_early_stops_its_thread():
    produced: list[int] = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert len(produced) <= 6
