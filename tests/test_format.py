import datetime as dt
import decimal
import json

import pyarrow as pa
import pytest

from etl_express import Batch, ETLConfigError
from etl_express.format import (
    LINEAGE_COLUMNS,
    TIMESTAMP,
    add_lineage,
    canonicalize,
    normalize_name,
    records_to_batch,
    to_records,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ref_Key", "ref_key"),
        ("customerID", "customer_id"),
        ("Full Name", "full_name"),
        ("ДатаРождения", "дата_рождения"),
        ("2fa", "c_2fa"),
        ("__x__", "x"),
        ("_etl_run_id", "_etl_run_id"),
    ],
)
def test_normalize_name(raw, expected):
    assert normalize_name(raw) == expected


def test_canonicalize_types_and_names():
    batch = pa.record_batch(
        {
            "SmallInt": pa.array([1, 2], pa.int16()),
            "Ratio": pa.array([1.5, None], pa.float32()),
            "When": pa.array([dt.datetime(2024, 1, 1), None], pa.timestamp("ms")),
            "Tags": pa.array([[1, 2], None], pa.list_(pa.int64())),
            "Day": pa.array([dt.date(2024, 1, 2), None], pa.date64()),
        }
    )
    out = canonicalize(batch)
    assert out.schema.names == ["small_int", "ratio", "when", "tags", "day"]
    assert out.schema.types == [pa.int64(), pa.float64(), TIMESTAMP, pa.string(), pa.date32()]
    assert out.column(3).to_pylist() == ["[1, 2]", None]


def test_canonicalize_refuses_colliding_names():
    with pytest.raises(ETLConfigError, match="both normalize to 'a_b'"):
        canonicalize(pa.record_batch({"a_b": [1], "aB": [2]}))


def test_records_to_batch_unions_keys_and_keeps_empty_values():
    records = [
        {"id": 1, "Name": "Anna"},
        {"id": 2, "Name": "", "extra": {"k": [1]}},
        {"id": 3, "Name": " "},
    ]
    batch, rejected = records_to_batch(records)
    assert rejected == []
    assert batch.schema.names == ["id", "name", "extra"]
    assert batch.column("name").to_pylist() == ["Anna", "", " "]
    assert batch.column("extra").to_pylist() == [None, '{"k": [1]}', None]


def test_records_to_batch_rejects_bad_rows_without_values_in_reason():
    schema = pa.schema([("id", pa.int64()), ("amount", pa.float64())])
    records = [
        {"id": 1, "amount": 1.5},
        {"id": "secret-value", "amount": 2.0},
        {"id": 3, "amount": "x"},
    ]
    batch, rejected = records_to_batch(records, schema)
    assert batch.column("id").to_pylist() == [1]
    assert [r.index for r in rejected] == [1, 2]
    assert "'id'" in rejected[0].reason and "secret-value" not in rejected[0].reason
    assert "'amount'" in rejected[1].reason


def test_to_records_is_json_like():
    batch = pa.record_batch(
        {
            "ts": pa.array([dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)], TIMESTAMP),
            "d": pa.array([dt.date(2024, 5, 1)]),
            "amount": pa.array([decimal.Decimal("12.30")], pa.decimal128(10, 2)),
            "flag": pa.array([True]),
            "n": pa.array([None], pa.int64()),
        }
    )
    (record,) = to_records(batch)
    assert record == {
        "ts": "2024-05-01T12:00:00+00:00",
        "d": "2024-05-01",
        "amount": "12.30",
        "flag": True,
        "n": None,
    }
    assert json.loads(json.dumps(record)) == record


def test_batch_to_records_from_dicts():
    assert Batch([{"Id": 1, "When": dt.datetime(2024, 1, 1)}]).to_records() == [
        {"id": 1, "when": "2024-01-01T00:00:00+00:00"}
    ]


def test_add_lineage():
    at = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    out = add_lineage(pa.record_batch({"id": [1, 2]}), "run-1", "crm", at)
    assert out.schema.names == ["id", *LINEAGE_COLUMNS]
    assert out.column("_etl_run_id").to_pylist() == ["run-1", "run-1"]
    assert out.column("_etl_loaded_at").type == TIMESTAMP
