"""Personal data that does not prove itself: found by the column's name and the values' shape.

Columns of personal data (passports without context words, Latin and Cyrillic names, birth
dates as text and as dates, postal addresses, phones without a country code, phones and
identifiers kept as numbers) are generated with Faker in several locales and with
libphonenumber's numbering plans (seeds the rules were not tuned on); columns of ordinary
business data (product codes, SKUs, order numbers, amounts, event timestamps, cities,
statuses, product and company names, job titles) must give no finding. Run this module as a
script to print the measured rates (seeds 101-110, without the NER model: what
docs/anonymization.md quotes)::

    python -m tests.anonymizers.test_detection_shapes
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import random
import string
from collections.abc import Callable
from typing import Any

import phonenumbers
import pyarrow as pa
import pytest
from faker import Faker

import etl_express as etl
from etl_express.anonymizers import detection
from etl_express.anonymizers.detection import detect_batch, detect_column, detect_values
from etl_express.anonymizers.detection_rules import named_kinds
from etl_express.errors import AnonymizationError
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.sql import SQLDatabase, SQLSource
from etl_express.sources.sql.scan import scan

from ..conftest import pg_exec
from . import idnumbers as nb

ROWS = 200
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "pl_PL", "ru_RU")
NATIONAL_REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "PL")


@functools.cache
def _faker(locale: str) -> Faker:
    return Faker(locale)  # slow to make: made once per locale, seeded per use


def _fake(locale: str, seed: int) -> Faker:
    fake = _faker(locale)
    fake.seed_instance(seed)
    return fake


def _birth(rng: random.Random) -> dt.date:
    return dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 67))


def _national_phone(rng: random.Random, region: str) -> str:
    """A valid number of ``region`` written as its people write it, without the country code."""
    while True:
        example = phonenumbers.example_number_for_type(
            region,
            rng.choice(
                [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
            ),
        )
        assert example is not None
        national = str(example.national_number)
        digits = national[:-4] + "".join(rng.choice(string.digits) for _ in range(4))
        number = phonenumbers.PhoneNumber(
            country_code=example.country_code,
            national_number=int(digits),
            italian_leading_zero=example.italian_leading_zero,
        )
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def personal_columns(seed: int) -> list[tuple[str, str, list[Any]]]:
    """``(kind, column name, values)`` of columns of personal data that carry no proof of
    their own (no context word, no country code, no check digit)."""
    rng = random.Random(seed)
    out: list[tuple[str, str, list[Any]]] = []

    def column(kind: str, name: str, make: Callable[[], Any]) -> None:
        out.append((kind, name, [make() for _ in range(ROWS)]))

    def passport() -> str:
        series, number = f"{rng.randrange(1, 99):02d}{rng.randrange(100):02d}", rng.randrange(10**6)
        return rng.choice(["{} {} {:06d}", "{}{} {:06d}", "{}{}{:06d}"]).format(
            series[:2], series[2:], number
        )

    for name in ("passport", "Паспорт", "passport_number", "серия_номер_паспорта", "pasport"):
        column("passport", name, passport)
    for locale in LOCALES:  # a column of full names, named like nothing in particular
        fake = _fake(locale, seed)
        column("name", "contact", lambda fake=fake: f"{fake.first_name()} {fake.last_name()}")
        column("name", "last_name", fake.last_name)
    for name, spell in (
        ("dob", lambda d: d.isoformat()),
        ("дата_рождения", lambda d: d.strftime("%d.%m.%Y")),
        ("BirthDate", lambda d: d.strftime("%m/%d/%Y")),
        ("born", lambda d: d),
        ("date_of_birth", lambda d: dt.datetime.combine(d, dt.time())),
    ):
        column("birth_date", name, lambda spell=spell: spell(_birth(rng)))
    for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "ru_RU"):  # addresses, in nobody's name
        fake = _fake(locale, seed)
        column("address", "location", lambda fake=fake: fake.street_address())
        column("address", "адрес", lambda fake=fake: fake.address().replace("\n", ", "))
    for region in NATIONAL_REGIONS:
        column("phone", "contact_no", lambda region=region: _national_phone(rng, region))
    column("phone", "msisdn", lambda: 79_000_000_000 + rng.randrange(10**9))
    column("phone", "телефон", lambda: float(89_160_000_000 + rng.randrange(10**7)))
    column("inn", "taxpayer", lambda: int(nb.inn12(rng)))
    column("snils", "insurance", lambda: int(nb.snils(rng)))
    return out


def business_columns(seed: int) -> list[tuple[str, list[Any]]]:
    """``(column name, values)`` of ordinary non-personal data, some under personal-sounding
    names (``passport_status``, ``name`` of a product, ``address_id``)."""
    rng = random.Random(seed)
    out: list[tuple[str, list[Any]]] = []

    def column(name: str, make: Callable[[], Any]) -> None:
        out.append((name, [make() for _ in range(ROWS)]))

    start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    column("product_code", lambda: f"PRD-{rng.randrange(10**5):05d}")
    column("sku", lambda: f"{rng.choice('ABCDEFGH')}{rng.randrange(10**7):07d}")
    column(
        "article",
        lambda: f"{rng.randrange(100, 999)}-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
    )
    column("order_no", lambda: str(rng.randrange(10**9, 10**10)))
    column("order_id", lambda: rng.randrange(10**6, 10**12))
    column("invoice", lambda: f"INV/{rng.randrange(2020, 2026)}/{rng.randrange(10**6):06d}")
    column("amount", lambda: decimal.Decimal(rng.randrange(10**8)) / 100)
    column("amount_text", lambda: f"{rng.randrange(10**7) / 100:.2f}")
    column("price", lambda: rng.randrange(10**6) / 100)
    column("kopecks", lambda: rng.randrange(10**10))
    column("created_at", lambda: start + dt.timedelta(seconds=rng.randrange(10**8)))
    column("event_time", lambda: (start + dt.timedelta(seconds=rng.randrange(10**8))).isoformat())
    column("order_date", lambda: (start + dt.timedelta(days=rng.randrange(900))).date().isoformat())
    column("shipped", lambda: (start + dt.timedelta(days=rng.randrange(900))).strftime("%d.%m.%Y"))
    column("status", lambda: rng.choice(["new", "paid", "shipped", "returned", "cancelled"]))
    column("passport_status", lambda: rng.choice(["valid", "expired", "pending"]))
    column("address_id", lambda: rng.randrange(10**6))
    column("phone_count", lambda: rng.randrange(4))
    column("quantity", lambda: rng.randrange(1, 50))
    column("tracking", lambda: f"RA{rng.randrange(10**9):09d}RU")
    column("postcode", lambda: f"{rng.randrange(10**5, 10**6)}")
    column("currency", lambda: rng.choice(["RUB", "USD", "EUR", "CNY"]))
    for locale in LOCALES:
        fake = _fake(locale, seed)
        column("city", fake.city)
        column("country", fake.country)
        column("company", fake.company)
        column("job", fake.job)
        column(
            "name",
            lambda fake=fake: " ".join(w.capitalize() for w in fake.words(rng.randrange(1, 4))),
        )
    return out


def _judge(name: str, values: list[Any]) -> set[str]:
    return {f.kind for f in detect_values(values, name)}


def rates(seeds: range) -> tuple[dict[str, tuple[int, int]], list[tuple[str, set[str]]]]:
    """Per kind, (columns found, columns); and the business columns that gave a finding."""
    found: dict[str, tuple[int, int]] = {}
    for seed in seeds:
        for kind, name, values in personal_columns(seed):
            hit, total = found.get(kind, (0, 0))
            found[kind] = (hit + (kind in _judge(name, values)), total + 1)
    false = [
        (name, kinds)
        for seed in seeds
        for name, values in business_columns(seed)
        if (kinds := _judge(name, values))
    ]
    return found, false


@pytest.fixture
def no_ner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector as it is without the optional NER extra."""
    monkeypatch.setattr(detection, "_names", lambda sample: 0)


def test_columns_of_every_kind_are_found_without_ner(no_ner: None) -> None:
    found, _ = rates(range(101, 102))
    missed = {kind: f"{hit}/{total}" for kind, (hit, total) in found.items() if hit < total}
    assert missed == {}


def test_business_columns_give_no_finding(no_ner: None) -> None:
    _, false = rates(range(201, 202))
    assert false == []


@pytest.mark.parametrize(
    "name, kinds",
    [
        ("passport", {"passport"}),
        ("client_passport_no", {"passport"}),
        ("ДатаРождения", {"birth_date"}),
        ("dateOfBirth", {"birth_date"}),
        ("home_address", {"address"}),
        ("Фамилия", {"name"}),
        ("first_name", {"name"}),
        ("mobile_phone", {"phone"}),
        ("passport_status", set()),
        ("address_id", set()),
        ("product_name", set()),
        ("created_at", set()),
    ],
)
def test_the_column_name_says_what_it_holds(name: str, kinds: set[str]) -> None:
    assert named_kinds(name) == kinds


def test_a_name_alone_never_refuses_values_that_are_plainly_something_else(no_ner: None) -> None:
    assert detect_values(["valid", "expired"] * 50, "passport") == []
    assert detect_values(["Москва", "Казань", "Тверь"] * 30, "address") == []
    assert detect_values([f"2024-0{m}-1{m}" for m in range(1, 9)] * 10, "created_at") == []
    assert detect_values(["Молоко", "Сыр Российский", "Green Tea"] * 30, "name") == []
    assert detect_values([str(n) for n in range(1000, 1100)], "phone") == []


def test_numbers_dates_and_json_are_sampled_as_written() -> None:
    rng = random.Random(4)
    batch = pa.RecordBatch.from_pydict(
        {
            "msisdn": pa.array([79_160_000_000 + rng.randrange(10**7) for _ in range(50)]),
            "inn": pa.array(
                [decimal.Decimal(nb.inn12(rng)) for _ in range(50)], pa.decimal128(12, 0)
            ),
            "birthday": pa.array([_birth(rng) for _ in range(50)], pa.date32()),
            "amount": pa.array([rng.random() * 1000 for _ in range(50)]),
            "ok": pa.array([True] * 50),
            "payload": pa.array(
                [
                    json.dumps({"person": {"dob": _birth(rng).isoformat(), "n": 1}})
                    for _ in range(50)
                ]
            ),
        }
    )
    found = detect_batch(batch)
    assert {(f.where, f.kind) for f in found} == {
        ("msisdn", "phone"),
        ("inn", "inn"),
        ("birthday", "birth_date"),
    }
    nested = detect_column(batch.column("payload"), "payload", json_text=True)
    assert [(f.where, f.kind) for f in nested] == [("payload.person.dob", "birth_date")]


# -- end to end: a PostgreSQL source table, nothing written -------------------------------


def test_each_new_kind_is_refused_before_anything_is_written(
    pg_url: str, schema: str, pipeline_name: str, no_ner: None
) -> None:
    rng = random.Random(8)
    fake = _fake("en_US", 8)
    pg_exec(
        pg_url,
        f"CREATE TABLE {schema}.people (id int PRIMARY KEY, status text, passport text, "
        "client text, dob text, born date, address text, contact_no text, msisdn bigint, "
        "taxpayer bigint)",
    )
    rows = [
        (
            i,
            "new",
            f"{rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10**6):06d}",
            f"{fake.first_name()} {fake.last_name()}",
            _birth(rng).strftime("%d.%m.%Y"),
            _birth(rng),
            f"ул. {fake.last_name()}а, д. {rng.randrange(1, 99)}, кв. {rng.randrange(1, 200)}",
            _national_phone(rng, "GB"),
            79_160_000_000 + rng.randrange(10**7),
            int(nb.inn12(rng)),
        )
        for i in range(40)
    ]
    one = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    pg_exec(
        pg_url,
        f"INSERT INTO {schema}.people VALUES " + ", ".join([one] * len(rows)),
        [v for row in rows for v in row],
    )
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=f"{schema}.people", primary_key="id", batch_size=20),
        sink=PostgresSink(table=f"{schema}.target"),
    )
    with pytest.raises(AnonymizationError) as raised:
        pipeline.run()
    text = str(raised.value)
    for column, kind in [
        ("passport", "passport"),
        ("client", "name"),
        ("dob", "birth_date"),
        ("born", "birth_date"),
        ("address", "address"),
        ("contact_no", "phone"),
        ("msisdn", "phone"),
        ("taxpayer", "inn"),
    ]:
        assert f"'{column}' looks like {kind}" in text
    assert "not_pii=" in text and "Redact(['address'])" in text  # the fix suits the kind
    raw = {str(v) for row in rows for v in row[2:]} | {row[3].split()[0] for row in rows}
    assert not [v for v in raw if v in text]
    tables = pg_exec(
        pg_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (schema,),
    )
    assert [t[0] for t in tables] == ["people"]  # not even the target table
    # etl-express scan asks the same detector, numbers and dates included
    (report,) = scan(SQLDatabase(pg_url, schema=schema)).tables
    assert {c: k for c, k in report.personal.items() if c != "client"} == {
        "passport": ["passport"],
        "dob": ["birth", "birth_date"],  # by the column's name too
        "born": ["birth_date"],
        "address": ["address"],
        "contact_no": ["phone"],
        "msisdn": ["phone"],
        "taxpayer": ["inn"],
    } and "name" in report.personal["client"]


if __name__ == "__main__":
    detection._names = lambda sample: 0  # measured without the optional NER model
    found, false = rates(range(101, 111))
    for kind, (hit, total) in sorted(found.items()):
        print(f"{kind:12} {hit}/{total} personal columns found")
    business = 10 * len(business_columns(0))
    print(f"business columns with a finding: {len(false)}/{business} = {len(false) / business:.2%}")
    for name, kinds in false:
        print("  ", name, sorted(kinds))
