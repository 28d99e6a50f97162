"""k-anonymity measured and enforced on a table with a known smallest class."""

from __future__ import annotations

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express.anonymizers import Generalize, KAnonymity, Suppress
from etl_express.anonymizers.kanonymity import class_sizes, smallest_class
from etl_express.errors import AnonymizationError, ETLConfigError
from etl_express.sinks.postgres import PostgresSink

from ..conftest import pg_exec
from .sources import ListSource

# classes of (age_band, region): 6 x (30-40, Москва), 4 x (40-50, Москва), 3 x (30-40, Тверь),
# 2 x (40-50, Тверь), 1 x (90+, Тверь): the smallest class has 1 row
CLASSES = [
    ("30-40", "Москва", 6),
    ("40-50", "Москва", 4),
    ("30-40", "Тверь", 3),
    ("40-50", "Тверь", 2),
    ("90+", "Тверь", 1),
]


def _rows() -> list[dict]:  # type: ignore[type-arg]
    rows = []
    for band, region, n in CLASSES:
        for _ in range(n):
            rows.append(
                {
                    "id": len(rows) + 1,
                    "age_band": band,
                    "region": region,
                    "amount": 10.0 * len(rows),
                }
            )
    return rows


def _batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(_rows())


def test_measured() -> None:
    batch = _batch()
    assert smallest_class(batch, ["age_band", "region"]) == 1
    assert smallest_class(batch, ["region"]) == 6
    sizes = class_sizes(batch, ["age_band", "region"]).tolist()
    assert sizes == [6] * 6 + [4] * 4 + [3] * 3 + [2] * 2 + [1]
    with_nulls = pa.RecordBatch.from_pydict({"a": ["x", None, None, "x", "y"]})
    assert class_sizes(with_nulls, ["a"]).tolist() == [2, 2, 2, 2, 1]


def test_enforced_fail_names_no_values() -> None:
    k = KAnonymity(["age_band", "region"], k=3)
    with pytest.raises(AnonymizationError, match=r"smallest class .* has 1 row\(s\), k=3") as info:
        k.anonymize(_batch())
    assert "Тверь" not in str(info.value) and "90+" not in str(info.value)
    assert KAnonymity(["age_band", "region"], k=2).measure(_batch()) == 1


def test_enforced_by_suppression_and_checked() -> None:
    k = KAnonymity(["age_band", "region"], k=3, on_violation="suppress")
    out = k.anonymize(_batch())
    assert out.num_rows == 13 and k.rows_suppressed == 3
    assert smallest_class(out, ["age_band", "region"]) == 3
    [check] = k.checks()
    assert check.name == "k_anonymity" and check.status == "passed"
    assert check.details["smallest_class"] == 3 and check.details["smallest_class_in_a_batch"] == 1
    assert check.details["rows_suppressed"] == 3
    assert k.checks()[0].details["rows"] == 0  # counts start afresh


def test_run_level_classes_add_up_over_batches() -> None:
    k = KAnonymity(["region"], k=2, on_violation="suppress", policy="warn")
    k.anonymize(pa.RecordBatch.from_pydict({"region": ["A", "A", "B", "B"]}))
    k.anonymize(pa.RecordBatch.from_pydict({"region": ["A", "A", "A"]}))
    assert k.run_smallest_class() == 2
    assert k.check().details["smallest_class"] == 2


def test_suppress_matches_kanonymity() -> None:
    out = Suppress(quasi_identifiers=["age_band", "region"], k=4).anonymize(_batch())
    assert out.num_rows == 10


def test_configuration_errors() -> None:
    with pytest.raises(AnonymizationError, match="k must be"):
        KAnonymity(["a"], k=1)
    with pytest.raises(ETLConfigError, match=r"KAnonymity: column\(s\) 'zip'"):
        KAnonymity(["zip"], k=2).anonymize(_batch())
    assert KAnonymity(["a"], k=2).covers() == {"a"}  # its quasi-identifiers


def test_pipeline_records_k_anonymity(pg_url: str, schema: str, pipeline_name: str) -> None:
    source = ListSource(_rows(), batch_size=100)
    pipeline = etl.Pipeline(
        pipeline_name,
        source,
        anonymizers=[
            Generalize(["amount"], width=1000),
            KAnonymity(["age_band", "region"], k=3, on_violation="suppress"),
        ],
        sink=PostgresSink(f"{schema}.people"),
    )
    result = pipeline.run()
    assert result.rows_written == 13 and result.rows_filtered == 3
    check = next(c for c in result.checks if c.name == "k_anonymity")
    assert check.ok and check.details["smallest_class"] == 3
    rows = pg_exec(
        pg_url,
        "SELECT status, details->>'smallest_class', details->>'rows_suppressed' "
        "FROM etl_express.quality_checks WHERE run_id = %s AND name = 'k_anonymity'",
        (result.run_id,),
    )
    assert rows == [("passed", "3", "3")]
    assert pg_exec(
        pg_url,
        f"SELECT min(n) FROM (SELECT count(*) n FROM {schema}.people GROUP BY age_band, region) c",
    ) == [(3,)]


def test_pipeline_fails_below_k(pg_url: str, schema: str, pipeline_name: str) -> None:
    pipeline = etl.Pipeline(
        pipeline_name,
        ListSource(_rows(), batch_size=100),
        anonymizers=[KAnonymity(["age_band", "region"], k=2)],
        sink=PostgresSink(f"{schema}.people"),
    )
    with pytest.raises(AnonymizationError, match="k-anonymity violated"):
        pipeline.run()
    assert pg_exec(pg_url, "SELECT to_regclass(%s)", (f"{schema}.people",)) == [(None,)]
