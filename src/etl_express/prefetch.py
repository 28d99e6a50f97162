"""Read-ahead: a source's batches are read in a background thread.

While the pipeline anonymizes batch *n* and waits for PostgreSQL to load it, the next
batch is already being fetched and decoded. Both sides spend most of their time outside
the GIL — ADBC decodes PostgreSQL's COPY stream in C++, Arrow kernels and psycopg's socket
waits release it — so on a two-core machine reading costs almost no wall time.

Memory stays bounded: at most ``depth`` batches wait in the queue, plus the one being read
and the one being processed. Exactly-once is unaffected: a batch read ahead but not yet
committed is simply dropped when the run stops, and the next run resumes from the last
committed checkpoint, as without read-ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1
_JOIN_SECONDS = 5.0


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class ReadAhead(Generic[T], Iterator[T]):
    """Iterates ``iterable`` in a daemon thread, up to ``depth`` items ahead.

    Items and exceptions arrive in the order the iterable produced them: an exception
    raised by the iterable is raised by ``next()`` after the items yielded before it.
    :meth:`close` (also on ``with`` exit) stops the thread and closes the iterable in that
    thread (so a generator's ``finally`` blocks — closing connections — run there).

    >>> with ReadAhead(iter(range(3))) as items:
    ...     list(items)
    [0, 1, 2]
    """

    def __init__(self, iterable: Iterable[T], depth: int = 1, name: str = "etl-express-read-ahead"):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._iterable = iterable
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        iterator = iter(self._iterable)
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Raised(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # the consumer has stopped listening; nothing to report to
                    pass

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Raised):
            self._finished = True
            raise item.exc
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop reading ahead and release the iterable (idempotent)."""
        self._finished = True
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            # a read in progress finishes on its own; the thread then closes the iterable
            self._thread.join(timeout=_JOIN_SECONDS)

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_ahead(source: object, iterable: Iterable[T], depth: int = 1) -> ReadAhead[T] | _InPlace[T]:
    """``iterable`` read ahead in a thread, unless ``source.read_ahead`` is ``False``.

    Sources whose reads must stay on the calling thread (an in-memory SQLite database
    lives in one connection of one thread) set ``read_ahead = False``; they are iterated
    in place. The result always has a ``close()`` method.
    """
    if getattr(source, "read_ahead", True):
        return ReadAhead(iterable, depth=depth)
    return _InPlace(iter(iterable))


class _InPlace(Iterator[T]):
    def __init__(self, iterator: Iterator[T]):
        self._iterator = iterator

    def __next__(self) -> T:
        return next(self._iterator)

    def close(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


__all__ = ["ReadAhead", "read_ahead"]
