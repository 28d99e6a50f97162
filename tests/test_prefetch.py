"""Read-ahead keeps order, hands over errors in place, stays bounded and cleans up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from etl_express.prefetch import ReadAhead, read_ahead


def test_items_arrive_in_order() -> None:
    with ReadAhead(iter(range(100)), depth=3) as items:
        assert list(items) == list(range(100))


def test_an_error_is_raised_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("boom")

    items = ReadAhead(produce())
    assert next(items) == 1
    assert next(items) == 2
    with pytest.raises(KeyError, match="boom"):
        next(items)
    with pytest.raises(StopIteration):
        next(items)


def test_reads_at_most_depth_plus_one_ahead() -> None:
    produced: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            produced.append(i)
            yield i

    items = ReadAhead(produce(), depth=2)
    assert next(items) == 0
    time.sleep(0.3)  # give the thread every chance to run ahead
    # one handed out, two queued, one held by a producer blocked on the full queue
    assert len(produced) <= 4
    items.close()


def test_close_stops_the_thread_and_closes_the_generator() -> None:
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    items = ReadAhead(produce(), depth=1)
    assert next(items) == 0
    items.close()
    assert closed.wait(5)
    assert not items._thread.is_alive()
    with pytest.raises(StopIteration):
        next(items)


def test_sources_can_opt_out_of_threads() -> None:
    threads: set[str] = set()

    class Local:
        read_ahead = False

    def produce() -> Iterator[int]:
        threads.add(threading.current_thread().name)
        yield 1

    items = read_ahead(Local(), produce())
    assert list(items) == [1]
    items.close()
    assert threads == {threading.current_thread().name}


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(iter([]), depth=0)
