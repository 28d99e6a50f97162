"""OneCODataSource against a local server speaking 1C's OData JSON."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from etl_express.errors import ETLConfigError, SourceError
from etl_express.sources import OneCODataSource, RESTSource
from etl_express.sources.onec import OneCNormalizer
from etl_express.sources.rest import RetryPolicy
from etl_express.testing import assert_same_records, common_records, records_of

from .conftest import PASSWORD, USER, FakeOneC, as_common, catalog, documents, guid

FAST = RetryPolicy(max_attempts=2, backoff_base=0.001)
WRONG_PASSWORD = "wrong"  # pragma: allowlist secret


def _source(onec: FakeOneC, entity: str, **kwargs) -> OneCODataSource:
    kwargs.setdefault("page_size", 7)
    return OneCODataSource(
        f"{onec.url}/trade", entity, username=USER, password=PASSWORD, retry=FAST, **kwargs
    )


def test_is_a_thin_rest_source() -> None:
    source = OneCODataSource("http://1c/trade", "Catalog_Контрагенты", username="u", password="p")
    assert isinstance(source, RESTSource)
    assert source.primary_key == ["ref_key"] and not source.incremental
    assert "p" not in repr(source.auth).replace("password", "")


def test_full_load_of_a_catalog(onec: FakeOneC) -> None:
    rows = catalog(30)
    onec.entities["Catalog_Контрагенты"] = rows
    got = records_of(list(_source(onec, "Catalog_Контрагенты").read()))
    assert_same_records(got, common_records([as_common(r) for r in rows]), "catalog")
    assert not any("navigation" in k for r in got for k in r)
    first = next(r for r in got if r["ref_key"] == guid(3))
    assert first["дата_регистрации"] is None  # 1C's empty date
    assert (
        next(r for r in got if r["ref_key"] == guid(1))["parent_key"] is None
    )  # the empty reference
    requests = onec.server.requests
    assert requests[0].query["$format"] == "json" and requests[0].query["$top"] == "7"
    assert [r.query["$skip"] for r in requests] == [
        "0",
        "7",
        "14",
        "21",
        "28",
    ]  # short last page ends it


def test_full_and_incremental_load_of_documents(onec: FakeOneC) -> None:
    docs = documents(20)
    onec.entities["Document_ЗаказКлиента"] = docs
    source = _source(onec, "Document_ЗаказКлиента", date_field="Date")
    first = list(source.read())
    assert_same_records(
        records_of(first), common_records([as_common(d) for d in docs]), "first load"
    )
    position = first[-1].position
    assert position["cursor"] == max(d["Date"] for d in docs)

    assert records_of(source.read(position)) == []
    new = documents(9, start=dt.datetime(2024, 3, 1), first=21)
    docs.extend(new)
    second = list(source.read(position))
    assert_same_records(
        records_of(second), common_records([as_common(d) for d in new]), "incremental load"
    )
    assert onec.server.requests[-1].query["$filter"] == f"Date gt datetime'{position['cursor']}'"
    row = records_of(second)[0]
    assert (
        isinstance(row["товары"], list)  # a table part stays a list of dicts (jsonb in PostgreSQL)
        and isinstance(row["товары"][0], dict)
        and row["дата_оплаты"] is None
        and row["сумма_документа"] > 0
    )


def test_filter_select_and_initial_date(onec: FakeOneC) -> None:
    docs = documents(20)
    for d in docs[::3]:
        d["DeletionMark"] = True
    onec.entities["Document_Заказ"] = docs
    source = _source(
        onec,
        "Document_Заказ",
        date_field="Date",
        filter="DeletionMark eq false",
        select=["Ref_Key", "Number"],
        initial_date=dt.datetime(2024, 1, 3),
    )
    got = records_of(source.read())
    want = [d for d in docs if not d["DeletionMark"] and d["Date"] > "2024-01-03T00:00:00"]
    assert sorted(r["ref_key"] for r in got) == sorted(d["Ref_Key"] for d in want)
    assert set(got[0]) == {"ref_key", "number", "date"}
    assert (
        onec.server.requests[0].query["$filter"]
        == "(DeletionMark eq false) and Date gt datetime'2024-01-03T00:00:00'"
    )
    assert records_of(
        _source(onec, "Document_Заказ", filter="DeletionMark eq false").read()
    ).__len__() == len([d for d in docs if not d["DeletionMark"]])


def test_dates_are_read_in_the_server_time_zone(onec: FakeOneC) -> None:
    docs = documents(3)
    onec.entities["Document_Заказ"] = docs
    got = records_of(_source(onec, "Document_Заказ", timezone="Europe/Moscow").read())
    assert_same_records(got, common_records([as_common(d, hours=3) for d in docs]), "Moscow time")


def test_normalizer_lowercases_guids_and_drops_annotations() -> None:
    norm = OneCNormalizer()
    out = norm(
        {
            "Ref_Key": "ABCDEF01-2345-6789-ABCD-EF0123456789",
            "odata.etag": "x",
            "A@navigationLinkUrl": "y",
            "Дата": "2024-05-01T12:30:00",
            "Пусто": "",
            "Строки": [{"Дата": "0001-01-01T00:00:00"}],
        }
    )
    assert out == {
        "Ref_Key": "abcdef01-2345-6789-abcd-ef0123456789",
        "Дата": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "Пусто": "",
        "Строки": [{"Дата": None}],
    }


def test_wrong_password_is_reported(onec: FakeOneC) -> None:
    onec.entities["Catalog_Номенклатура"] = catalog(2)
    source = OneCODataSource(
        f"{onec.url}/trade",
        "Catalog_Номенклатура",
        username=USER,
        password=WRONG_PASSWORD,
        retry=FAST,
    )
    with pytest.raises(SourceError, match="HTTP 401") as info:
        list(source.read())
    assert "credentials" in str(info.value) and WRONG_PASSWORD not in str(info.value)


def test_configuration_errors() -> None:
    with pytest.raises(ETLConfigError, match="not a 1C OData entity set"):
        OneCODataSource("http://1c/trade", "Контрагенты", username="u", password="p")
    with pytest.raises(ETLConfigError, match="time zone"):
        OneCODataSource(
            "http://1c/trade", "Catalog_X", username="u", password="p", timezone="Mars/Base"
        )


def test_takes_any_httpx_auth(onec: FakeOneC) -> None:
    onec.entities["Catalog_Банки"] = catalog(9)
    source = OneCODataSource(
        f"{onec.url}/trade", "Catalog_Банки", auth=httpx.BasicAuth(USER, PASSWORD), retry=FAST
    )
    assert len(records_of(list(source.read()))) == 9
    refused = OneCODataSource(
        f"{onec.url}/trade",
        "Catalog_Банки",
        auth=httpx.BasicAuth(USER, WRONG_PASSWORD),
        retry=FAST,
    )
    with pytest.raises(SourceError, match="HTTP 401"):
        list(refused.read())


def test_auth_or_username_and_password() -> None:
    with pytest.raises(ETLConfigError, match="not both"):
        OneCODataSource(
            "http://1c/trade", "Catalog_X", auth=httpx.BasicAuth("u", "p"), username="u"
        )
    with pytest.raises(ETLConfigError, match="needs credentials"):
        OneCODataSource("http://1c/trade", "Catalog_X", username="u")
    with pytest.raises(TypeError, match=r"auth=\.\.\.\) takes an httpx.Auth, not tuple"):
        OneCODataSource("http://1c/trade", "Catalog_X", auth=("u", "p"))  # type: ignore[arg-type]
