"""Pipeline(deletes="soft") on a 1C source: DeletionMark becomes _etl_deleted_at."""

# detect_pii="off" below: these tests load made-up people raw on purpose (not what they
# test); the personal-data detector has its own tests (tests/anonymizers/test_detection.py)

from __future__ import annotations

import pytest

import etl_express as etl
from etl_express.errors import ETLConfigError
from etl_express.sinks import PostgresSink
from etl_express.sources import OneCODataSource
from tests.conftest import pg_exec

from .conftest import PASSWORD, USER, FakeOneC, catalog, guid


def _pipeline(onec: FakeOneC, schema: str, name: str, sink: PostgresSink, **kw) -> etl.Pipeline:
    source = OneCODataSource(
        f"{onec.url}/trade", "Catalog_Контрагенты", username=USER, password=PASSWORD, **kw
    )
    return etl.Pipeline(name, source, sink=sink, deletes="soft", progress=False, detect_pii="off")


@pytest.mark.parametrize("history", [False, True])
def test_deletion_mark_is_a_soft_delete(onec, pg_url, schema, pipeline_name, history):
    rows = catalog(30)  # every 7th is marked for deletion
    onec.entities["Catalog_Контрагенты"] = rows
    target = f"{schema}.counterparties"
    p = _pipeline(onec, schema, pipeline_name, PostgresSink(target, history=history))
    first = p.run()
    (check,) = [c for c in first.checks if c.name == "deletes"]
    assert check.details["strategy"] == "deletion_mark" and check.details["marked"] == 4

    def keys(where: str) -> list[str]:
        return sorted(r[0] for r in pg_exec(pg_url, f"SELECT ref_key FROM {target} WHERE {where}"))

    if history:  # an object first seen marked never had a live version
        assert keys("_etl_valid_to IS NULL") == sorted(guid(i) for i in range(1, 31) if i % 7 != 0)
    else:
        assert keys("_etl_deleted_at IS NOT NULL") == sorted(guid(i) for i in (7, 14, 21, 28))

    # the mark is removed from one object and set on another
    rows[6]["DeletionMark"] = False
    rows[0]["DeletionMark"] = True
    p.run(reset=True)  # a catalog has no date field: every run reads it whole
    if history:
        current = keys("_etl_valid_to IS NULL")
        assert guid(7) in current and guid(1) not in current and len(current) == 26
        closed = pg_exec(
            pg_url,
            f"SELECT _etl_deleted_at IS NOT NULL FROM {target} WHERE ref_key = %s",
            (guid(1),),
        )
        assert closed == [(True,)]  # its only version, closed by the mark
    else:
        assert keys("_etl_deleted_at IS NOT NULL") == sorted(guid(i) for i in (1, 14, 21, 28))
        assert len(keys("true")) == 30


def test_hard_deletes_are_refused_for_1c(onec, schema, pipeline_name):
    onec.entities["Catalog_Контрагенты"] = catalog(3)
    p = etl.Pipeline(
        pipeline_name,
        OneCODataSource(
            f"{onec.url}/trade", "Catalog_Контрагенты", username=USER, password=PASSWORD
        ),
        sink=PostgresSink(f"{schema}.c"),
        deletes="hard",
        progress=False,
        detect_pii="off",
    )
    with pytest.raises(ETLConfigError, match="use deletes='soft'"):
        p.run()
