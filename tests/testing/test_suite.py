"""The standard suite itself: it passes a correct source and catches broken ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from etl_express import Batch, Source
from etl_express.errors import SourceError
from etl_express.testing import MakeSource, SourceTestSuite, default_records


class ListSource(Source):
    """Correct: resumable by index."""

    def __init__(self, rows: list[dict[str, Any]], batch_size: int = 6):
        self.rows, self.batch_size = rows, batch_size
        self.name, self.primary_key = "list", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        for i in range(start, len(self.rows), self.batch_size):
            yield Batch(self.rows[i : i + self.batch_size], position=i + self.batch_size)


class LosesLastRecord(ListSource):
    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        batches = list(super().read(position, partition))
        if batches and batches[-1].data:
            batches[-1].data = batches[-1].data[:-1]
        yield from batches


class IgnoresPosition(ListSource):
    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        yield from super().read(None, partition)


class BlanksBecomeNull(ListSource):
    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        for b in super().read(position, partition):
            yield Batch(
                [{k: (None if v == "" else v) for k, v in r.items()} for r in b.data], b.position
            )


class TestListSourceSuite(SourceTestSuite):
    """A correct source passes every test (and pytest collects the inherited ones)."""

    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self) -> MakeSource:
        return ListSource

    @pytest.fixture
    def bad_source(self) -> Source:
        class Unreachable(Source):
            def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
                raise SourceError("cannot connect to list://nowhere", hint="check the URL")

        return Unreachable()


def test_loss_is_caught() -> None:
    with pytest.raises(AssertionError, match="missing 1"):
        SourceTestSuite().test_every_record_arrives_exactly_once(LosesLastRecord, default_records())


def test_duplicates_on_resume_are_caught() -> None:
    with pytest.raises(AssertionError, match=r"killed after batch 1, resumed.*duplicated"):
        SourceTestSuite().test_resumed_run_adds_nothing_twice(IgnoresPosition, default_records())


def test_empty_string_turned_into_null_is_caught() -> None:
    with pytest.raises(AssertionError, match="empty value in 'text_empty'"):
        SourceTestSuite().test_empty_values_are_kept(BlanksBecomeNull)


def test_a_documented_mapping_is_accepted() -> None:
    class Suite(SourceTestSuite):
        def expected_empty(self, column: str, value: Any) -> Any:
            return None if value == "" else value

    Suite().test_empty_values_are_kept(BlanksBecomeNull)


def test_silent_bad_input_is_caught() -> None:
    with pytest.raises(AssertionError, match="neither rejected nor reported"):
        SourceTestSuite().test_bad_input_is_reported_clearly(ListSource([{"id": 1}]))


def test_missing_make_source_says_what_to_do() -> None:
    class Incomplete(SourceTestSuite):
        pass

    with pytest.raises(NotImplementedError, match="must override the make_source fixture"):
        Incomplete.make_source.__wrapped__(Incomplete())  # type: ignore[attr-defined]
