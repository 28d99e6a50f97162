"""Each data-quality check triggers on data built to violate it and stays quiet on clean data."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import pytest

import etl_express as etl
from etl_express.sinks.postgres import PostgresSink
from tests.conftest import pg_exec
from tests.reliability_sources import CUSTOMER_SCHEMA, ListSource, customers


def _pipeline(name: str, rows: list[dict], sink: etl.Sink, **kw) -> etl.Pipeline:
    return etl.Pipeline(
        name,
        ListSource(rows, batch_size=50, schema=CUSTOMER_SCHEMA),
        sink=sink,
        **kw,
        detect_pii="off",
    )


def _check(result: etl.RunResult, name: str) -> etl.CheckResult:
    return next(c for c in result.checks if c.name == name)


def test_clean_data_triggers_no_check(pg_url, schema, pipeline_name):
    pipeline = _pipeline(
        pipeline_name, customers(200), PostgresSink(f"{schema}.c"), required=["email", "name"]
    )
    for _ in range(3):
        pipeline.run(reset=True)
    result = pipeline.run(reset=True)

    assert result.ok
    assert not [c.name for c in result.checks if c.triggered]
    assert {c.name for c in result.checks} == {
        "reconciliation",
        "error_rate",
        "required_columns",
        "empty_columns",
        "row_count_range",
        "duplicate_keys",
        "target_count",
        "freshness",
    }
    assert (
        _check(result, "empty_columns").details["judged"]
        and _check(result, "row_count_range").details["judged"]
    )
    assert _check(result, "target_count").status == "passed"
    stored = pg_exec(
        pg_url,
        "SELECT name, status FROM etl_express.quality_checks WHERE run_id = %s",
        (result.run_id,),
    )
    assert len(stored) == 8 and all(status in ("passed", "skipped") for _, status in stored)


class LosingSink(PostgresSink):
    """Says it wrote every row but silently drops the last of each batch."""

    def write(self, conn, batch, primary_key):
        super().write(conn, batch.slice(0, batch.num_rows - 1), primary_key)
        return batch.num_rows - 1


def test_reconciliation_catches_a_sink_losing_rows(schema, pipeline_name):
    with pytest.raises(etl.QualityError, match="reconciliation") as err:
        _pipeline(pipeline_name, customers(100), LosingSink(f"{schema}.c")).run()
    check = _check(err.value.result, "reconciliation")
    assert check.status == "failed" and check.details["unbalanced_batches"] == 2
    assert check.details["rows_read"] == 100 and check.details["rows_written"] == 98


def test_required_columns_must_not_be_null_or_empty(schema, pipeline_name):
    rows = customers(100)
    rows[3]["email"] = None
    rows[60]["email"] = "   "
    with pytest.raises(etl.QualityError, match="required_columns") as err:
        _pipeline(
            pipeline_name, rows, PostgresSink(f"{schema}.c"), required=["email", "name"]
        ).run()
    assert _check(err.value.result, "required_columns").details["empty_rows"] == {"email": 2}


def test_a_column_always_filled_that_is_suddenly_all_empty(schema, pipeline_name):
    sink = PostgresSink(f"{schema}.c")
    for _ in range(2):
        _pipeline(pipeline_name, customers(100), sink).run(reset=True)
    emptied = [{**r, "email": None} for r in customers(100)]

    with pytest.raises(etl.QualityError, match="empty_columns"):
        _pipeline(pipeline_name, emptied, sink, checks={"empty_columns": "fail"}).run(reset=True)

    warned = _pipeline(pipeline_name, emptied, sink).run(reset=True)  # default policy: warn
    check = _check(warned, "empty_columns")
    assert warned.ok and check.status == "warned" and check.details["suddenly_empty"] == ["email"]
    # a warned run that succeeded is the new normal: the next one compares with it
    assert (
        _check(_pipeline(pipeline_name, emptied, sink).run(reset=True), "empty_columns").status
        == "passed"
    )


def test_row_count_outside_the_range_of_recent_runs(schema, pipeline_name):
    sink = PostgresSink(f"{schema}.c")
    for _ in range(3):
        _pipeline(pipeline_name, customers(100), sink).run(reset=True)

    result = _pipeline(pipeline_name, customers(1000), sink).run(reset=True)
    check = _check(result, "row_count_range")
    assert check.status == "warned" and check.details["expected_max"] == 200

    ignored = _pipeline(
        pipeline_name, customers(10), sink, checks={"row_count_range": "ignore"}
    ).run(reset=True)
    assert _check(ignored, "row_count_range").status == "ignored"


def test_duplicate_primary_keys_in_the_target(schema, pipeline_name):
    sink = PostgresSink(
        f"{schema}.c", write_mode="append"
    )  # no primary key constraint on the target
    once = _pipeline(pipeline_name, customers(100), sink).run()
    assert (
        _check(once, "duplicate_keys").status == "passed"
        and "enforced_by" not in _check(once, "duplicate_keys").details
    )

    with pytest.raises(etl.QualityError, match="duplicate_keys") as err:
        _pipeline(pipeline_name, customers(100), sink).run(reset=True)
    assert _check(err.value.result, "duplicate_keys").details["duplicate_keys"] == 100


def test_full_load_target_count_against_source_count(schema, pipeline_name):
    sink = PostgresSink(f"{schema}.c")
    first = _check(_pipeline(pipeline_name, customers(120), sink).run(), "target_count")
    # the run created the table: PostgreSQL's own COPY counts are its rows, no scan
    assert first.status == "passed" and first.details["target_rows"] == 120
    assert first.details["counted_by"] == "COPY row counts (a table this run created)"
    # the source lost 20 rows; a full reload leaves them behind in the target
    result = _pipeline(pipeline_name, customers(100), sink).run(reset=True)
    check = _check(result, "target_count")
    assert check.status == "warned" and (
        check.details["source_rows"],
        check.details["target_rows"],
        check.details["counted_by"],
    ) == (100, 120, "table scan")

    resumed = _pipeline(pipeline_name, customers(130), sink).run()  # incremental: not judged
    assert _check(resumed, "target_count").status == "skipped" and resumed.rows_read == 30


def test_a_new_table_with_delete_reconciliation_is_counted_in_the_table(
    pg_url, schema, pipeline_name
):
    """A delete reconciliation may remove rows after the load: the table itself is counted."""
    from etl_express.sources import SQLSource

    src = f"{schema}.src"
    pg_exec(pg_url, f"CREATE TABLE {src} (id int PRIMARY KEY, v int)")
    pg_exec(pg_url, f"INSERT INTO {src} SELECT g, g FROM generate_series(1, 100) g")
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, src, primary_key="id"),
        sink=PostgresSink(f"{schema}.dst"),
        deletes="hard",
        progress=False,
        detect_pii="off",
    )
    check = _check(pipeline.run(), "target_count")
    assert check.status == "passed" and check.details["counted_by"] == "table scan"


def test_check_policies_are_validated(pipeline_name):
    source = ListSource([])
    with pytest.raises(etl.ETLConfigError, match="unknown quality check 'row_count'"):
        etl.Pipeline(pipeline_name, source, checks={"row_count": "warn"}, detect_pii="off")
    with pytest.raises(
        etl.ETLConfigError, match="'loud' for check 'empty_columns' is not fail, warn or ignore"
    ):
        etl.Pipeline(pipeline_name, source, checks={"empty_columns": "loud"}, detect_pii="off")


def test_blank_values_counted_as_empty_without_copying_strings():
    import pyarrow as pa

    from etl_express.quality import QualityTracker

    tracker = QualityTracker(required=["name"])
    batch = pa.record_batch(
        {
            "name": pa.array(["Анна", "", " ", "\u00a0\t", None, " Пётр ", "\u3000", "x\u00a0"]),
            "n": pa.array([1, None, 3, 4, 5, 6, 7, 8]),
        }
    )
    tracker.observe(batch, rows_in=8, written=8, quarantined=0, filtered=0)
    assert tracker.required_violations == {"name": 5}  # "", " ", nbsp+tab, None, ideographic space
    assert tracker.non_empty == {"name": 3, "n": 7}


def test_empties_counted_before_the_load_give_the_same_profile():
    import pyarrow as pa

    from etl_express.quality import QualityTracker, empty_counts

    batch = pa.record_batch(
        {
            "name": pa.array(["a", "", None, " b"]),
            "n": pa.array([1, None, 3, None]),
            "_etl_source": pa.array(["s"] * 4),
        }
    )
    assert empty_counts(batch) == {"name": 2, "n": 2}
    counted, computed = QualityTracker(required=["name"]), QualityTracker(required=["name"])
    counted.observe(
        batch, rows_in=4, written=4, quarantined=0, filtered=0, empties=empty_counts(batch)
    )
    computed.observe(batch, rows_in=4, written=4, quarantined=0, filtered=0)
    assert (counted.non_empty, counted.required_violations) == (
        computed.non_empty,
        computed.required_violations,
    )
    assert counted.non_empty == {"name": 2, "n": 2} and counted.required_violations == {"name": 2}


def test_a_skipped_check_says_why() -> None:
    from etl_express.quality import CheckResult, skipped

    check = skipped("duplicate_keys", "fail", "the source declares no primary key")
    assert check.why == "the source declares no primary key"
    assert check.summary() == "skipped (the source declares no primary key)"
    assert CheckResult("error_rate", "passed").summary() == "passed"
    with pytest.raises(ValueError, match="without saying why"):
        skipped("duplicate_keys", "fail", " ")


def test_target_checks_on_a_missing_a_keyed_and_an_unkeyed_table(pg_url: str, schema: str) -> None:
    """The target checks read the catalog once each: a missing table is skipped (duplicate
    keys) or holds 0 rows (target count); a unique index answers the duplicate-key check;
    without one the rows are counted."""
    from etl_express.quality import duplicate_keys_check, target_count_check
    from etl_express.store.database import engine_for
    from etl_express.store.tables import TableName

    pg_exec(pg_url, f"CREATE TABLE {schema}.keyed (id int PRIMARY KEY)")
    pg_exec(pg_url, f"CREATE TABLE {schema}.loose (id int, _etl_source text)")
    pg_exec(pg_url, f"INSERT INTO {schema}.loose VALUES (1, 's'), (1, 's'), (2, 'other')")
    missing, keyed, loose = (TableName(schema, n) for n in ("missing", "keyed", "loose"))
    with engine_for(pg_url).begin() as conn:
        gone = duplicate_keys_check(conn, missing, ["id"], "fail")
        assert gone.status == "skipped"
        none = target_count_check(conn, missing, "s", 0, "fail")
        assert none.ok and none.details["counted_by"] == "no such table"
        assert not target_count_check(conn, missing, "s", 3, "fail").ok
        enforced = duplicate_keys_check(conn, keyed, ["id"], "fail")
        assert enforced.ok and enforced.details["enforced_by"] == "unique index"
        dup = duplicate_keys_check(conn, loose, ["id"], "fail")
        assert not dup.ok and dup.details["duplicate_keys"] == 1
        counted = target_count_check(conn, loose, "s", 2, "fail")
        assert counted.ok and counted.details["target_rows"] == 2
        assert counted.details["counted_by"] == "table scan"


def _mask_count(column):
    """The count as empty_counts made it before: one mask of null | empty | whitespace-only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = pc.is_null(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        empty = pc.invert(pc.cast(pc.binary_length(column), pa.bool_()))
        missing = pc.or_kleene(missing, pc.or_(empty, pc.utf8_is_space(column)))
    return pc.sum(missing.cast(pa.int64())).as_py() or 0


def test_empty_counts_apart_equal_the_one_mask_count():
    """Counted apart, the empties are the ones the one-mask count found: every whitespace of
    Unicode, nulls, slices, large strings, chunked columns and non-text (NaN is a value)."""
    import random

    import pyarrow as pa

    from etl_express.quality import empty_counts

    rng = random.Random(3)
    spaces = [chr(c) for c in (0x9, 0xA, 0x1C, 0x20, 0x85, 0xA0, 0x1680, 0x2007, 0x2028, 0x3000)]
    pieces = [*spaces, "a", "Ж", "é", "中", "😀", "~", "\x00", "\x7f", "ǅ", "߿"]
    for _ in range(200):
        values = [
            None
            if rng.random() < 0.1
            else "".join(rng.choice(pieces) for _ in range(rng.choice([0, 0, 1, 1, 2, 3])))
            for _ in range(rng.randrange(1, 40))
        ]
        for kind in (pa.string(), pa.large_string()):
            column = pa.array(values, kind)
            cut = rng.randrange(len(values))
            for part in (column, column.slice(cut), column.slice(0, cut)):
                assert empty_counts(pa.record_batch({"t": part})) == {"t": _mask_count(part)}
            chunked = pa.chunked_array([column.slice(0, cut), column.slice(cut)])
            assert empty_counts(pa.table({"t": chunked})) == {"t": _mask_count(chunked)}
    numbers = pa.array([1.0, None, float("nan"), 0.0])
    assert empty_counts(pa.record_batch({"x": numbers, "_etl_source": pa.array(["s"] * 4)})) == {
        "x": 1
    }


def test_empty_counts_leave_invalid_utf8_to_arrow_as_before():
    """Invalid UTF-8 is refused where Arrow's whitespace test reaches it, as it was."""
    import pyarrow as pa
    import pytest

    from etl_express.quality import empty_counts

    def raw(*texts: bytes) -> pa.Array:
        offsets = [0]
        for t in texts:
            offsets.append(offsets[-1] + len(t))
        buffers = [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(texts))]
        return pa.Array.from_buffers(pa.string(), len(texts), buffers)

    for texts in [(b" \xff",), (b"\xd0A",), (b"\x80",), (b"ok", b"\xc2\xa0\xff")]:
        with pytest.raises(pa.ArrowInvalid):
            _mask_count(raw(*texts))
        with pytest.raises(pa.ArrowInvalid):
            empty_counts(pa.record_batch({"t": raw(*texts)}))
    assert empty_counts(pa.record_batch({"t": raw(b"a\xff", b"\xd0\x96\xff", b"")})) == {"t": 1}
    assert _mask_count(raw(b"a\xff", b"\xd0\x96\xff", b"")) == 1
