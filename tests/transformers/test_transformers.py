import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl_express import ETLConfigError
from etl_express.transformers import Cast, Derive, Filter, NormalizeEmpty, Rename, Select

BATCH = pa.record_batch({"id": [1, 2, 3], "name": ["a", " ", None], "amount": ["1.5", "2", "x"]})


def test_rename_normalizes_and_reports_missing():
    assert Rename({"Name": "FullName"}).transform(BATCH).schema.names == [
        "id",
        "full_name",
        "amount",
    ]
    with pytest.raises(ETLConfigError, match=r"\['nope'\]"):
        Rename({"nope": "x"}).transform(BATCH)
    with pytest.raises(ETLConfigError, match="same name"):
        Rename({"name": "id"}).transform(BATCH)


def test_select_projects_and_reports_missing():
    assert Select(["name", "id"]).transform(BATCH).schema.names == ["name", "id"]
    with pytest.raises(ETLConfigError, match="not in the batch"):
        Select(["missing"]).transform(BATCH)


def test_cast_is_safe_and_names_the_column():
    out = Cast({"id": "float64"}).transform(BATCH)
    assert out.schema.field("id").type == pa.float64()
    with pytest.raises(ETLConfigError, match="'amount'"):
        Cast({"amount": "float"}).transform(BATCH)
    assert Cast({"id": "decimal(10,2)"}).transform(BATCH).schema.field("id").type == pa.decimal128(
        10, 2
    )


def test_filter_with_callable_and_expression():
    assert Filter(lambda b: pc.greater(b["id"], 1)).transform(BATCH).column("id").to_pylist() == [
        2,
        3,
    ]
    assert Filter(pc.field("id") < 3).transform(BATCH).column("id").to_pylist() == [1, 2]


def test_derive_adds_and_replaces():
    out = Derive("double", lambda b: pc.multiply(b["id"], 2)).transform(BATCH)
    assert out.column("double").to_pylist() == [2, 4, 6]
    out = Derive("id", lambda b: pc.add(b["id"], 10)).transform(BATCH)
    assert out.column("id").to_pylist() == [11, 12, 13]


def test_normalize_empty_modes():
    assert NormalizeEmpty("null").transform(BATCH).column("name").to_pylist() == ["a", None, None]
    assert NormalizeEmpty("strip").transform(BATCH).column("name").to_pylist() == ["a", "", None]
    assert NormalizeEmpty("keep").transform(BATCH).column("name").to_pylist() == ["a", " ", None]
