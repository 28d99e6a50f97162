"""Redact, Mask, Generalize and Suppress."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from etl_express.anonymizers import Generalize, Mask, Redact, Suppress
from etl_express.errors import AnonymizationError


def test_redact() -> None:
    batch = pa.RecordBatch.from_pydict({"comment": ["secret text", None], "n": [1, 2]})
    assert Redact(["comment"]).anonymize(batch).column(0).to_pylist() == ["<REDACTED>", None]
    nulled = Redact(["n"], replacement=None).anonymize(batch)
    assert (
        nulled.column(1).to_pylist() == [None, None] and nulled.schema.field("n").type == pa.int64()
    )
    assert Redact("comment").covers() == {"comment"}


def test_mask_keeps_prefix_suffix_only_where_safe() -> None:
    m = Mask(["v"], keep_last=2)
    out = m.mask(pa.array(["+79161234567", "12345", None, "abcdef"])).to_pylist()
    # 2 of 12 or of 6 characters may show (a third at most); 2 of 5 would be more: masked fully
    assert out == ["****67", "****", None, "****ef"]
    both = (
        Mask(["v"], keep_first=1, keep_last=1, char="#", width=3)
        .mask(pa.array(["Александр"]))
        .to_pylist()
    )
    assert both == ["А###р"]
    card = Mask(["v"], keep_first=6, keep_last=4, max_revealed=0.5).mask(
        pa.array(["2200123456789010"])
    )
    assert card.to_pylist() == ["****"]  # 10 of 16 digits is more than half
    with pytest.raises(AnonymizationError, match="more than half"):
        Mask(["v"], keep_last=4, max_revealed=0.8)
    assert Mask(["v"]).mask(pa.array([123])).to_pylist() == ["****"]


def test_generalize_dates() -> None:
    dates = pa.array([dt.date(1987, 11, 23), None])
    stamps = pa.array(
        [dt.datetime(2024, 5, 17, 13, 45, tzinfo=dt.timezone.utc)], pa.timestamp("us", tz="UTC")
    )
    assert Generalize("d", to="year").generalize(dates).to_pylist() == [dt.date(1987, 1, 1), None]
    assert Generalize("d", to="month").generalize(dates).to_pylist() == [dt.date(1987, 11, 1), None]
    out = Generalize("t", to="month").generalize(stamps)
    assert out.type == stamps.type and out.to_pylist()[0] == dt.datetime(
        2024, 5, 1, tzinfo=dt.timezone.utc
    )
    with pytest.raises(AnonymizationError, match="needs a date"):
        Generalize("d", to="year").generalize(pa.array(["1987-11-23"]), "d")


def test_generalize_numbers() -> None:
    ages = pa.array([5, 18, 29, 30, 64, 65, 90, None])
    assert Generalize("age", bins=[18, 30, 65]).generalize(ages).to_pylist() == [
        "<18",
        "18-30",
        "18-30",
        "30-65",
        "30-65",
        "65+",
        "65+",
        None,
    ]
    amounts = pa.array([1234.5, 9999.0, 10000.0, -5.0])
    assert Generalize("amount", width=5000).generalize(amounts).to_pylist() == [
        "0-5000",
        "5000-10000",
        "10000-15000",
        "-5000-0",
    ]
    with pytest.raises(AnonymizationError, match="exactly one"):
        Generalize("age", bins=[1, 2], width=3)
    with pytest.raises(AnonymizationError, match="increasing"):
        Generalize("age", bins=[30, 18])


def test_generalize_addresses_to_region() -> None:
    addresses = pa.array(
        [
            "г. Москва, ул. Тверская, д. 7, кв. 12",
            "Московская обл., г. Химки, ул. Ленина 5",
            "190000, Санкт-Петербург, Невский пр. 1",
            "Екатеринбург",
            "респ. Татарстан, г. Казань, ул. Баумана 3",
            "г. Томск, пр. Ленина 30",
            "г. Омск, ул. Мира 1",
            "деревня Малые Вишенки, д. 3",
            None,
        ]
    )
    assert Generalize("address", to="region").generalize(addresses).to_pylist() == [
        "Москва",
        "Московская область",
        "Санкт-Петербург",
        "Свердловская область",
        "Республика Татарстан",
        "Томская область",
        "Омская область",
        None,
        None,
    ]


def test_suppress_columns_and_small_classes() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "id": list(range(8)),
            "scan": ["x"] * 8,
            "age": ["30-40"] * 5 + ["90+"] + ["20-30"] * 2,
            "city": ["Москва"] * 5 + ["Тверь"] + ["Москва"] * 2,
        }
    )
    s = Suppress(["scan"])
    assert s.covers() == {"scan"} and s.row_wise
    assert s.anonymize(batch).schema.names == ["id", "age", "city"]
    rows = Suppress(quasi_identifiers=["age", "city"], k=2)
    assert not rows.row_wise and rows.covers() == {"age", "city"}
    out = rows.anonymize(batch)
    assert out.column("id").to_pylist() == [0, 1, 2, 3, 4, 6, 7] and rows.rows_suppressed == 1
    with pytest.raises(AnonymizationError, match="together"):
        Suppress(quasi_identifiers=["age"])


def test_region_of_a_repeated_column_is_computed_once_per_city() -> None:
    from etl_express.anonymizers import normalize
    from etl_express.anonymizers.generalize import region_of

    cities = pa.array(["г. Химки, ул. Ленина 5", "Казань", None, "нечто"] * 5000)
    seen: list[int] = []
    original = normalize.on_distinct

    def spy(arr, fn):
        return original(arr, lambda values: (seen.append(len(values)), fn(values))[1])

    from etl_express.anonymizers import generalize

    generalize.on_distinct = spy
    try:
        out = region_of(cities)
    finally:
        generalize.on_distinct = original
    assert seen == [3]  # the three distinct texts (nulls stay null), not 20,000 rows
    assert out.to_pylist()[:4] == ["Московская область", "Республика Татарстан", None, None]
    assert region_of(cities.slice(0, 4)).equals(out.slice(0, 4))
