"""``SourceTestSuite``: the standard tests every source runs (see the package docstring)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa
import pytest

from ..errors import ETLError
from ..format import LINEAGE_COLUMNS, Batch, normalize_name, to_records
from ..sinks.base import Sink
from ..sources.base import Source

MakeSource = Callable[[list[dict[str, Any]]], Source]


def default_records(n: int = 25) -> list[dict[str, Any]]:
    """The suite's default dataset: ints, floats, bools, Cyrillic text, timestamps, nulls."""
    return [
        {
            "id": i,
            "name": f"Клиент {i}",
            "amount": i * 10.25,
            "active": i % 3 != 0,
            "updated_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00",
            "note": None if i % 5 == 0 else f"заметка {i}",
        }
        for i in range(1, n + 1)
    ]


def empty_value_records() -> list[dict[str, Any]]:
    """One column per kind of empty value, next to a row with ordinary values."""
    return [
        {"id": 1, "text_null": None, "text_empty": "", "text_blank": "   ", "tags": []},
        {"id": 2, "text_null": "x", "text_empty": "y", "text_blank": "z", "tags": ["a"]},
    ]


def common_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` in the common format (what a source's batches convert to)."""
    rows = list(records)
    if not rows:
        return []
    return Batch(rows).to_records()


def nested_as_json_text(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with lists and dicts replaced by their ``json.dumps`` text: what a source
    over a store without nested types (a CSV file, a SQL text column) reads back. Use it in
    ``expected`` to declare that mapping: ``common_records(nested_as_json_text(records))``."""
    return [
        {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()}
        for r in records
    ]


def records_of(batches: Sequence[Batch]) -> list[dict[str, Any]]:
    """Every record of ``batches`` in the common format (batch by batch, as the pipeline does)."""
    out: list[dict[str, Any]] = []
    for batch in batches:
        if batch.num_rows:
            out.extend(batch.to_records())
    return out


def _key(record: dict[str, Any], columns: Sequence[str]) -> str:
    return json.dumps({c: record.get(c) for c in columns}, sort_keys=True, ensure_ascii=False)


def assert_same_records(
    actual: list[dict[str, Any]], expected: list[dict[str, Any]], what: str = ""
) -> None:
    """Each expected record is in ``actual`` exactly once, and nothing else is (compared on
    the expected records' columns); the failure names missing and duplicated records."""
    columns = sorted({c for r in expected for c in r})
    have = Counter(_key(r, columns) for r in actual)
    want = Counter(_key(r, columns) for r in expected)
    missing = list((want - have).elements())
    extra = list((have - want).elements())
    assert not missing and not extra, (
        f"{what}: {len(actual)} records read, {len(expected)} expected; "
        f"missing {len(missing)} (first: {missing[:2]}), unexpected or duplicated {len(extra)} "
        f"(first: {extra[:2]})"
    )


def roundtrip(position: Any) -> Any:
    """``position`` as it comes back from the checkpoint table (through JSON)."""
    return json.loads(json.dumps(position))


class MemorySink(Sink):
    """Keeps written rows in memory, upserting on the primary key (like ``PostgresSink``)."""

    def __init__(self, state_url: Any = None):
        self.state_url = state_url
        self.rows: dict[Any, dict[str, Any]] = {}
        self.appended: list[dict[str, Any]] = []
        self.written = 0

    def write(self, conn: Any, batch: pa.RecordBatch, primary_key: Sequence[str]) -> int:
        for record in to_records(batch):
            record = {k: v for k, v in record.items() if k not in LINEAGE_COLUMNS}
            if primary_key:
                self.rows[tuple(record.get(c) for c in primary_key)] = record
            else:
                self.appended.append(record)
        self.written += batch.num_rows
        return batch.num_rows

    def records(self) -> list[dict[str, Any]]:
        return list(self.rows.values()) + self.appended


class SourceTestSuite:
    """The standard tests of a source: no loss, no duplicates, empty values kept.

    Subclass it in a test module, name the subclass ``Test...`` and override the
    ``make_source`` fixture; pytest collects the inherited tests. See the package docstring.
    """

    #: the default dataset must come out in more than one batch (configure small pages);
    #: set False for a source that always answers in one batch
    several_batches: bool = True

    # -- fixtures a connector's test module provides ----------------------------------------

    @pytest.fixture
    def make_source(self) -> MakeSource:
        """A function ``records -> Source`` that puts ``records`` where a new source reads them."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the make_source fixture: "
            "@pytest.fixture\ndef make_source(self, tmp_path): return lambda records: MySource(...)"
        )

    @pytest.fixture
    def records(self) -> list[dict[str, Any]]:
        """The dataset the source is loaded with (override for a connector-specific one)."""
        return default_records()

    @pytest.fixture
    def bad_source(self) -> Source:
        """A source over bad input (unreachable, malformed): it must fail clearly or reject."""
        pytest.skip(f"{type(self).__name__} defines no bad_source fixture")

    @pytest.fixture
    def state_url(self) -> Any:
        """The PostgreSQL holding pipeline state (``None``: the default store)."""
        return None

    # -- hooks ------------------------------------------------------------------------------

    def expected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the source yields for ``records``, in the common format (override when the
        connector converts values, e.g. a date string to a timestamp)."""
        return common_records(records)

    def expected_empty(self, column: str, value: Any) -> Any:
        """What an empty value in ``column`` comes out as (override to declare a
        documented mapping, e.g. a format that cannot tell null from ``""``)."""
        return value

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def read_all(source: Source, position: Any = None) -> list[Batch]:
        batches = list(source.read(position))
        for b in batches:
            assert isinstance(b, Batch), (
                f"{type(source).__name__}.read yielded {type(b).__name__}, not Batch"
            )
        return batches

    # -- the tests --------------------------------------------------------------------------

    def test_yields_the_common_format(
        self, make_source: MakeSource, records: list[dict[str, Any]]
    ) -> None:
        source = make_source(records)
        assert isinstance(source, Source)
        batches = self.read_all(source)
        assert batches, "the source yielded no batch for a non-empty dataset"
        if self.several_batches:
            assert len([b for b in batches if b.num_rows]) > 1, (
                "configure small pages/batches in make_source"
            )
        for b in batches:
            json.dumps(b.position)  # checkpoints are stored as JSON
            rows = b.to_records() if b.num_rows else []
            json.dumps(rows)
            for row in rows:
                assert all(k == normalize_name(k) for k in row), (
                    f"column names not snake_case: {list(row)}"
                )

    def test_every_record_arrives_exactly_once(
        self, make_source: MakeSource, records: list[dict[str, Any]]
    ) -> None:
        batches = self.read_all(make_source(records))
        assert_same_records(records_of(batches), self.expected(records), "full read")
        assert sum(len(b.rejected) for b in batches) == 0, "good input must not be rejected"

    def test_primary_key_is_unique(
        self, make_source: MakeSource, records: list[dict[str, Any]]
    ) -> None:
        source = make_source(records)
        rows = records_of(self.read_all(source))
        if not source.primary_key:
            pytest.skip("the source declares no primary key")
        keys = Counter(tuple(r.get(c) for c in source.primary_key) for r in rows)
        assert None not in {k[0] for k in keys}, f"primary key {list(source.primary_key)} is null"
        assert max(keys.values()) == 1, "a primary key occurs twice"

    def test_resumed_run_adds_nothing_twice(
        self, make_source: MakeSource, records: list[dict[str, Any]]
    ) -> None:
        source = make_source(records)
        batches = self.read_all(source)
        expected = self.expected(records)
        for k in range(len(batches) - 1):
            before = records_of(batches[: k + 1])
            after = records_of(self.read_all(source, roundtrip(batches[k].position)))
            assert_same_records(before + after, expected, f"killed after batch {k + 1}, resumed")

    def test_rerun_adds_nothing_twice(
        self, make_source: MakeSource, records: list[dict[str, Any]]
    ) -> None:
        source = make_source(records)
        batches = self.read_all(source)
        again = records_of(self.read_all(source, roundtrip(batches[-1].position)))
        if source.incremental:
            assert again == [], f"an incremental re-run with nothing new read {len(again)} records"
        else:  # a full refresh: the sink upserts, but the source must not duplicate
            expected = self.expected(records)
            columns = sorted({c for r in expected for c in r})
            keys = Counter(_key(r, columns) for r in again)
            assert not keys or max(keys.values()) == 1, "a re-run yields one record twice"
            assert set(keys) <= {_key(r, columns) for r in expected}, (
                "a re-run yields unknown records"
            )

    def test_empty_values_are_kept(self, make_source: MakeSource) -> None:
        raw = empty_value_records()
        rows = {r["id"]: r for r in records_of(self.read_all(make_source(raw)))}
        assert set(rows) == {1, 2}, f"expected ids 1 and 2, got {sorted(rows)}"
        for column, value in self.expected(raw)[0].items():
            want = self.expected_empty(column, value)
            assert rows[1].get(column) == want, (
                f"empty value in {column!r}: {want!r} became {rows[1].get(column)!r}"
            )

    def test_empty_source_is_a_clean_run(self, make_source: MakeSource) -> None:
        batches = self.read_all(make_source([]))
        assert sum(b.num_rows for b in batches) == 0
        assert sum(len(b.rejected) for b in batches) == 0
        for b in batches:
            json.dumps(b.position)

    def test_bad_input_is_reported_clearly(self, bad_source: Source) -> None:
        try:
            batches = self.read_all(bad_source)
        except ETLError as exc:
            assert exc.what and exc.hint, f"error without what/hint: {exc}"
            return
        rejected = [r for b in batches for r in b.rejected]
        assert rejected, "bad input was neither rejected nor reported as an ETLError"
        assert all(r.reason for r in rejected), "a rejected record without a reason"

    def test_pipeline_loads_every_record_once(
        self, make_source: MakeSource, records: list[dict[str, Any]], state_url: Any
    ) -> None:
        import uuid

        from ..pipeline import Pipeline

        source = make_source(records)
        sink = MemorySink(state_url)
        pipeline = Pipeline(f"suite_{uuid.uuid4().hex[:12]}", source, sink=sink, progress=False)
        try:
            first = pipeline.run()
            expected = self.expected(records)
            assert first.rows_written == len(expected) and first.rows_quarantined == 0
            second = pipeline.run()
            if source.incremental:
                assert second.rows_read == 0, "an incremental re-run with nothing new read rows"
            stored = sink.records()
            assert_same_records(
                stored if source.primary_key else sink.appended[: len(expected)],
                expected,
                "pipeline, two runs",
            )
        finally:
            pipeline.reset()


__all__ = [
    "MakeSource",
    "MemorySink",
    "SourceTestSuite",
    "assert_same_records",
    "common_records",
    "default_records",
    "empty_value_records",
    "nested_as_json_text",
    "records_of",
    "roundtrip",
]
