"""Overlap reading, transforming and writing pages with threads and bounded queues.

The engine clients release the GIL while they wait on I/O (gRPC, HTTP, Rust calls), so a reader
thread, the calling thread and a writer thread keep the source, the CPU and the target busy at the
same time; each queue holds at most ``depth`` pages, so memory stays bounded. Order is kept: pages
reach the writer in the order the reader produced them (a checkpoint cursor is valid only so).

Failure and stop are orderly: when the reader fails or ends early, the pages it produced before are
still transformed and written, then the error is raised; when the writer fails, nothing after the
failed page is written. Either way the caller knows that exactly the pages handed to ``write`` that
returned are in the target.

Example::

    overlap(pages(), encode, upsert, depth=2)        # pages() runs in a thread, upsert in another
    for page in prefetch(pages(), depth=2): ...       # only the read ahead
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generator, Iterable, TypeVar

A = TypeVar("A")
B = TypeVar("B")

DEPTH = 2
_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(q: queue.Queue, item: object, cancelled: threading.Event) -> bool:
    """Put ``item`` unless the consumer went away; False if it did."""
    while not cancelled.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(items: Iterable[A], depth: int = DEPTH) -> Generator[A, None, None]:
    """``items`` produced by a thread up to ``depth`` ahead of the consumer; its error re-raised here,
    after the items produced before it. Closing the iterator early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    cancelled = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(q, item, cancelled):
                    return
            _put(q, _END, cancelled)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failed(e), cancelled)

    thread = threading.Thread(target=produce, name="smec-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        cancelled.set()
        thread.join()


def overlap(items: Iterable[A], transform: Callable[[A], B], write: Callable[[B], None], depth: int = DEPTH) -> None:
    """Read ``items`` in a thread, ``transform`` each here, ``write`` the results in order in another thread.

    Returns once everything read was written; raises the first error (reader, transform or writer)
    after writing what came before it (module doc). ``depth`` 0 runs all three in this thread.
    """
    if depth <= 0:
        for item in items:
            write(transform(item))
        return
    out: queue.Queue = queue.Queue(maxsize=depth)
    cancelled = threading.Event()
    failure: list[BaseException] = []

    def drain() -> None:
        while True:
            item = out.get()
            if item is _END or failure:
                return
            try:
                write(item)
            except BaseException as e:  # noqa: BLE001 - raised by the caller
                failure.append(e)
                cancelled.set()
                return

    writer = threading.Thread(target=drain, name="smec-writer", daemon=True)
    writer.start()
    error: BaseException | None = None
    reader = prefetch(items, depth)
    try:
        for item in reader:
            result = transform(item)
            if not _put(out, result, cancelled):
                break
    except BaseException as e:  # noqa: BLE001 - the reader's or the transform's error, raised below
        error = e
    finally:
        reader.close()
        while writer.is_alive() and not _put(out, _END, cancelled):
            pass
        writer.join()
    if failure:
        raise failure[0]
    if error is not None:
        raise error
