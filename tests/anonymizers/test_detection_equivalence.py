"""The detector's shortcuts (issue 23) change no decision: on generated columns of every kind
and type, the findings (column, place, kind, matched, sampled) are those of the decision path
as it was (:mod:`.detection_reference`, which samples every column, converts and folds every
value and runs every shape test value by value).

The columns: e-mails, phones in many spellings (Russian, foreign with their country code,
national without it, Unicode spaces and full-width digits), INN/SNILS/OGRN/cards with valid
and broken check digits, passports, addresses (Russian, world, lower-case), birth dates as
text and as dates, full and first names (Latin and Cyrillic, capitalized and not), the
replication benchmark's ``name 17``, numbers, amounts, booleans as text, non-Latin text, NUL
characters, JSON with personal values inside, empty and null values; pure, and mixed at
shares around the thresholds, under neutral and personal-sounding names; as Python lists and
as Arrow columns of text, integers, floats, decimals, dates, timestamps with and without a
time zone, dictionaries, structs and lists.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from etl_express.anonymizers import detection, detection_rules, sampling
from etl_express.anonymizers.detection import Finding, detect_batch, detect_column, detect_values
from etl_express.anonymizers.detection_rules import SampleTraits, _full_name
from etl_express.anonymizers.person_names import (
    GIVEN_NAMES,
    SURNAMES,
    person_evident,
    person_shaped,
)
from etl_express.anonymizers.textfold import fold, fold_all
from etl_express.format_types import JSON_METADATA

from . import corpus
from . import detection_reference as ref
from . import idnumbers as nb
from .test_detection_shapes import _national_phone

ROWS = 260  # more than the sample: the sample is spread over the column
NAMES = (
    "value", "notes", "name", "created", "amount", "id", "contact", "phone", "passport_no",
    "date_of_birth", "dob", "address", "first_name", "client", "email", "payload", "адрес",
    "телефон", "order_no", "born", "Name", "title", "customer_name", "inn",
)  # fmt: skip
_FIRST = sorted(w.capitalize() for w in GIVEN_NAMES if w.isascii())
_LAST = sorted(w.capitalize() for w in SURNAMES if w.isascii())
_FIRST_RU = sorted(w.capitalize() for w in GIVEN_NAMES if not w.isascii())
_LAST_RU = sorted(w.capitalize() for w in SURNAMES if not w.isascii())


def _makers(rng: random.Random) -> dict[str, Callable[[], Any]]:
    """One maker of values per kind of value."""
    fake = corpus._faker(rng.randrange(1000))
    counter = iter(range(10**9))

    def birth() -> dt.date:
        return dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(365 * 90))

    def pick(*options: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: rng.choice(options)()

    return {
        "email": lambda: corpus.value_of(rng, fake, "email"),
        "phone_ru": lambda: corpus.phone_spelling(rng),
        "phone_foreign": lambda: corpus.foreign_phone_spelling(rng),
        "phone_national": lambda: _national_phone(rng, rng.choice(("US", "GB", "DE", "FR"))),
        "phone_unicode": lambda: corpus.unicode_spelling(rng, corpus.phone_spelling(rng)),
        "phone_digits": lambda: f"79{rng.randrange(10**9):09d}",
        "phone_dots": lambda: _national_phone(rng, rng.choice(("FR", "DE"))).replace(" ", "."),
        "inn": pick(lambda: nb.inn10(rng), lambda: nb.inn12(rng)),
        "inn_bad": lambda: nb.break_last(rng.choice((nb.inn10, nb.inn12))(rng)),
        "snils": pick(lambda: nb.fmt_snils(nb.snils(rng)), lambda: nb.snils(rng)),
        "snils_bad": lambda: nb.fmt_snils(nb.break_snils(nb.snils(rng))),
        "ogrn": pick(lambda: nb.ogrn(rng), lambda: nb.ogrnip(rng)),
        "card": pick(lambda: nb.fmt_card(nb.card(rng)), lambda: corpus.card_number(rng)),
        "card_bad": lambda: nb.break_last(nb.card(rng)),
        "passport": pick(
            lambda: f"{rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10**6):06d}",
            lambda: corpus.passport_spelling(rng),
            lambda: f"{rng.choice('ABC')}{rng.randrange(10**7):07d}",
        ),
        "address_world": pick(
            lambda: f"{rng.randrange(1, 999)} {rng.choice(_LAST)} Street",
            lambda: f"Flat {rng.randrange(1, 99)}, {rng.choice(_LAST)} Road",
            lambda: f"{rng.choice(_LAST)}straße {rng.randrange(1, 99)}",
            lambda: f"{rng.randrange(1, 99)} rue de la Paix",
            lambda: f"via Roma {rng.randrange(1, 99)}",
            lambda: f"{rng.randrange(1, 99)} avenue foch",
            lambda: f"viale {rng.choice(_LAST).lower()} {rng.randrange(1, 99)}",
            lambda: f"{rng.randrange(1, 99)} baker street",
        ),
        "address_lower": pick(  # no capital anywhere: only a street word admits them
            lambda: f"{rng.randrange(1, 99)} rue de la paix",
            lambda: f"via roma {rng.randrange(1, 99)}",
            lambda: f"calle mayor {rng.randrange(1, 99)}",
            lambda: f"{rng.randrange(1, 99)}, avenida paulista ",
        ),
        "address_ru": pick(
            lambda: f"ул. {rng.choice(_LAST_RU)}а, д. {rng.randrange(1, 99)}",
            lambda: f"г. Москва, Ленинский проспект, {rng.randrange(1, 99)}",
            lambda: f"{rng.choice(_LAST_RU).lower()}ая улица {rng.randrange(1, 99)}",
            lambda: fake.address().replace("\n", ", "),
        ),
        "birth_text": pick(
            lambda: birth().isoformat(),
            lambda: birth().strftime("%d.%m.%Y"),
            lambda: birth().strftime("%m/%d/%Y"),
        ),
        "name_full": pick(
            lambda: f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            lambda: f"{rng.choice(_LAST_RU)} {rng.choice(_FIRST_RU)} Иванович",
            lambda: fake.name(),
        ),
        "name_ru": lambda: f"{rng.choice(_LAST_RU)} {rng.choice(_FIRST_RU)}",
        "name_first": pick(lambda: rng.choice(_FIRST), lambda: rng.choice(_FIRST_RU)),
        "name_lower": lambda: f"{rng.choice(_FIRST).lower()} {rng.choice(_LAST).lower()}",
        "name_n": lambda: f"name {next(counter)}",
        "capital_words": lambda: " ".join(w.capitalize() for w in fake.words(rng.randrange(1, 4))),
        "number_text": lambda: str(rng.randrange(10 ** rng.randrange(1, 19))),
        "decimal_text": lambda: f"{rng.randrange(10**7) / 100:.2f}",
        "bool_text": lambda: rng.choice(("true", "false", "t", "f")),
        "words": lambda: " ".join(fake.words(rng.randrange(1, 6))),
        "sentence": lambda: fake.sentence(),
        "nonlatin": pick(
            lambda: rng.choice(("北京市朝阳区", "محمد علي", "Αθήνα 12", "ﾃｽﾄ")),
            lambda: "".join(chr(0x660 + int(d)) for d in str(rng.randrange(10**10))),
            lambda: "".join(chr(ord(c) + 0xFEE0) for c in f"{rng.randrange(10**4):04d} 567890"),
            lambda: f"ＡＢＣ {rng.randrange(100)}",
        ),
        "nul": lambda: f"a\0{rng.randrange(10**11)}",
        "json": lambda: json.dumps(
            {
                "contact": {"email": corpus.value_of(rng, fake, "email")},
                "phones": [corpus.phone_spelling(rng)],
                "n": rng.randrange(100),
                "ok": True,
                "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            },
            ensure_ascii=False,
        ),
        "empty": lambda: rng.choice(("", None)),
    }


def _columns(seed: int) -> list[tuple[str, list[Any]]]:
    """``(name, values)``: each kind pure, and mixed with other values at shares around the
    detector's thresholds (2 %, half, 60 %)."""
    rng = random.Random(seed)
    makers = _makers(rng)
    kinds = sorted(makers)
    out = []
    for kind in kinds:
        for share in (1.0, 0.55, 0.15, 0.02):
            filler = makers[rng.choice(kinds)]
            values = [makers[kind]() if rng.random() < share else filler() for _ in range(ROWS)]
            out.append((rng.choice(NAMES), values))
    for kind in ("name_ru", "name_full", "name_first", "capital_words", "address_world"):
        for rows in (40, 90, 101):  # short columns: the NER model counts (up to 100 sampled)
            out.append((rng.choice(NAMES), [makers[kind]() for _ in range(rows)]))
    out.append(("value", [rng.choice(list(makers.values()))() for _ in range(ROWS)]))
    out.append(("notes", []))
    return out


def _key(findings: list[Finding]) -> list[tuple[Any, ...]]:
    return [(f.column, f.path, f.kind, f.matched, f.sampled) for f in findings]


@pytest.fixture(scope="module")
def columns() -> list[tuple[str, list[Any]]]:
    return _columns(23)


@pytest.fixture(scope="module", autouse=True)
def ner_once() -> Iterator[None]:
    """The NER model (where the extra is installed) asked once per list of values: both paths
    hand it the same values, and its answer to them is the same (the slow part of the test)."""
    from etl_express.anonymizers import ner

    real = ner.count_names
    cached = functools.lru_cache(maxsize=None)(lambda values: real(list(values)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ner, "count_names", lambda values: cached(tuple(values)))
        yield


def test_findings_of_value_lists_are_the_same(columns: list[tuple[str, list[Any]]]) -> None:
    found = 0
    for n, (name, values) in enumerate(columns):
        expected = _key(ref.detect_values(values, name))
        assert _key(detect_values(values, name)) == expected, name
        if n % 3 == 0:  # and as an Arrow column (sampled by Arrow kernels)
            strings = pa.array([None if v is None else str(v) for v in values], pa.string())
            assert _key(detect_values(strings, name)) == _key(ref.detect_values(strings, name))
        found += bool(expected)
    assert 20 < found < len(columns) - 20  # the columns hold personal data and plain data


def test_findings_of_json_columns_are_the_same(columns: list[tuple[str, list[Any]]]) -> None:
    for name, values in columns[::4]:
        texts = [v if isinstance(v, str) else json.dumps(v, default=str) for v in values]
        assert _key(detect_column(texts, name, json_text=True)) == _key(
            ref.detect_column(texts, name, json_text=True)
        ), name


def _typed(rng: random.Random, rows: int) -> dict[str, tuple[pa.DataType | None, list[Any]]]:
    """Columns of Arrow types other than text, with values of personal and plain kinds."""
    moment = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)

    def ints(make: Callable[[], int]) -> list[Any]:
        return [None if rng.random() < 0.05 else make() for _ in range(rows)]

    birth = [dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30000)) for _ in range(rows)]
    events = [moment + dt.timedelta(seconds=rng.randrange(10**8)) for _ in range(rows)]
    return {
        "id": (pa.int32(), list(range(1, rows + 1))),
        "phone": (pa.int64(), ints(lambda: 79_000_000_000 + rng.randrange(10**9))),
        "msisdn": (pa.uint64(), ints(lambda: 79_160_000_000 + rng.randrange(10**7))),
        "inn": (pa.int64(), ints(lambda: int(nb.inn12(rng)))),
        "taxpayer": (pa.int64(), ints(lambda: int(nb.inn10(rng)))),
        "snils_no": (pa.int64(), ints(lambda: int(nb.snils(rng)))),
        "card_no": (pa.int64(), ints(lambda: int(nb.card(rng)))),
        "delta": (pa.int16(), ints(lambda: rng.randrange(-(2**15), 2**15))),
        "big": (pa.int64(), ints(lambda: rng.choice((-(2**63), 2**63 - 1, 0)))),
        "amount": (
            pa.decimal128(12, 2),
            [decimal.Decimal(rng.randrange(10**8)) / 100 for _ in range(rows)],
        ),
        "tiny": (
            pa.decimal128(20, 10),
            [decimal.Decimal(rng.randrange(100)).scaleb(-10) for _ in range(rows)],
        ),
        "телефон": (
            pa.decimal128(20, 0),
            [decimal.Decimal(89_160_000_000 + rng.randrange(10**7)) for _ in range(rows)],
        ),
        "price": (pa.float64(), [rng.randrange(10**6) / 100 for _ in range(rows)]),
        "mobile": (
            pa.float64(),
            [float(79_160_000_000 + rng.randrange(10**7)) for _ in range(rows)],
        ),
        "birth_date": (pa.date32(), birth),
        "shipped": (pa.date32(), birth),
        "born": (pa.timestamp("us", tz="+03:00"), events),
        "created": (pa.timestamp("us", tz="UTC"), events),
        "date_of_birth": (pa.timestamp("ms"), [e.replace(tzinfo=None) for e in events]),
        "flag": (pa.bool_(), [rng.random() < 0.5 for _ in range(rows)]),
        "name": (None, [f"name {i}" for i in range(rows)]),
        "contact": (pa.large_string(), [corpus.phone_spelling(rng) for _ in range(rows)]),
        "struct": (None, [{"email": f"a{i}@mail.ru", "n": i} for i in range(rows)]),
        "phones": (None, [[corpus.phone_spelling(rng)] for _ in range(rows)]),
    }


def _batch(
    columns: dict[str, tuple[pa.DataType | None, list[Any]]], rng: random.Random
) -> pa.RecordBatch:
    fields, arrays = [], []
    for name, (type_, values) in columns.items():
        array = pa.array(values, type_)
        if pa.types.is_string(array.type) and rng.random() < 0.3:
            array = array.dictionary_encode()
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


@pytest.mark.parametrize("rows", [150, 1200])
def test_findings_of_batches_are_the_same(columns: list[tuple[str, list[Any]]], rows: int) -> None:
    """Every type, in batches shorter and longer than the sample (a long column's sample is
    picked from an even spread of it), judged for every kind and for the leftovers of a
    ``ScrubPII`` (``residual``)."""
    rng = random.Random(rows)
    typed = _typed(rng, rows)
    texts = {
        f"{name}_{i}": (None, [values[j % len(values)] if values else None for j in range(rows)])
        for i, (name, values) in enumerate(columns[:: max(1, len(columns) // 40)])
    }
    texts = {
        k: (t, [v if v is None or isinstance(v, str) else str(v) for v in vs])
        for k, (t, vs) in texts.items()
    }
    payload = pa.array(
        [json.dumps({"contact": {"email": f"u{i}@x.ru"}, "id": i}) for i in range(rows)]
    )
    batch = _batch({**typed, **texts}, rng)
    batch = batch.append_column(pa.field("payload", pa.string(), metadata=JSON_METADATA), payload)
    assert _key(detect_batch(batch)) == _key(ref.detect_batch(batch))
    for _ in range(3):
        names = batch.schema.names
        residual = {
            c: set(rng.sample(detection.DETECTED_KINDS, rng.randrange(0, 4)))
            for c in rng.sample(names, 8)
        }
        skip = set(rng.sample(names, 5)) | set(residual)
        new = detect_batch(batch, skip=skip, residual=residual)
        assert _key(new) == _key(ref.detect_batch(batch, skip=skip, residual=residual))
    kinds = {f.kind for f in ref.detect_batch(batch)}
    assert {"phone", "inn", "birth_date", "email"} <= kinds  # the batch holds what is found


def test_the_replication_table_gives_no_finding() -> None:
    """The benchmark's table (issue 23): nothing personal, by both paths."""
    rows = 1000
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(1, rows + 1), pa.int32()),
            "name": [f"name {i}" for i in range(rows)],
            "amount": pa.array(
                [decimal.Decimal(i) / 100 for i in range(rows)], pa.decimal128(12, 2)
            ),
            "created": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)] * rows,
                pa.timestamp("us", tz="UTC"),
            ),
            "flag": [i % 2 == 0 for i in range(rows)],
        }
    )
    assert detect_batch(batch) == ref.detect_batch(batch) == []


# -- the shortcuts one by one ---------------------------------------------------------------


def _all_values(columns: list[tuple[str, list[Any]]]) -> list[str]:
    extra = [
        "221B Baker Street", "Flat 3", "Apt. 7", "Hauptstraße 5", "12 rue de la Paix",
        "calle Mayor 5", "5, rua Augusta ", "piazza Navona 3", "ул. Ленина, д. 5", "УЛ. ЛЕНИНА 5",
        "Тверская улица 7", "ш. Энтузиастов 5", "name 17", "Anna", "ANNA SMITH", "ǅemal Bey 5",
        "ϒ 5 Street", "ﬀ 12", "a\0b", "", " ", "Ａｎｎａ Ｓｍｉｔｈ", "İstanbul Caddesi 5",
        "(415) 555-0132", "020 7946 0958", "030 901820", "612 34 94 98", "12.34.56.78",
        "0612.34.56", "415-555-0132", " 01.23.45.67.89 ", "(0) 12", "１２-３４-５６",
    ]  # fmt: skip
    return [str(v) for _, values in columns for v in values if v is not None] + extra


def test_sample_traits_never_rule_out_a_value_that_has_the_shape(
    columns: list[tuple[str, list[Any]]],
) -> None:
    """A trait the sample lacks rules a shape out only where no value has it: checked value by
    value (a sample of one), folded as ``shape_counts`` folds."""
    tested = {"address": 0, "name": 0, "phone": 0}
    for value in _all_values(columns):
        folded = fold(value)
        traits = SampleTraits.of([folded])
        if ref.is_street_address(folded):
            tested["address"] += 1
            assert traits.may_hold("address"), value
        if person_shaped(folded) or person_evident(folded, alone=False) or _full_name(folded):
            tested["name"] += 1
            assert traits.upper and traits.may_hold("name"), value
        if detection_rules.is_national_phone(folded):
            tested["phone"] += 1
            assert traits.may_hold("phone"), value
        if ref._name_shaped(value):
            assert SampleTraits.of([value]).upper, value
        assert detection_rules.is_street_address(folded) == ref.is_street_address(folded), value
    assert min(tested.values()) > 50


def test_no_ascii_character_matches_a_cyrillic_letter_case_ignored() -> None:
    """Why an ASCII value skips the Russian address pattern: each of its alternatives needs a
    Cyrillic letter, and none matches an ASCII character even with case ignored."""
    letters = {c for c in detection_rules._RU_ADDRESS.pattern if "\u0400" <= c <= "\u04ff"}
    assert len(letters) > 20
    for c in letters:
        for code in range(128):
            assert re.fullmatch(c, chr(code), re.IGNORECASE) is None, (c, code)
    for alternative in detection_rules._RU_ADDRESS.pattern.split("|[^\\W\\d_]{3,}"):
        assert re.search("[\u0400-\u04ff]", alternative)


def test_the_lower_case_street_words_are_the_patterns() -> None:
    """``SampleTraits`` lists the street words of the world pattern's lower-case alternatives:
    every word of those alternatives holds one of them."""
    groups = re.findall(
        r"\\b(?:\[0-9\]\{1,4\},\?\\s\+)?\(\?:((?:[a-z]+\|)+[a-z]+)\)",
        detection_rules._WORLD_ADDRESS.pattern,
    )
    words = {w for group in groups for w in group.split("|")}
    assert {"rue", "via", "rua", "piazza", "calle"} <= words
    for word in words:
        assert any(w in word for w in detection_rules._LOWER_STREET_WORDS), word


@pytest.mark.parametrize(
    "type_, values",
    [
        (pa.int8(), [-128, 0, 127]),
        (pa.int64(), [-(2**63), -1, 0, 7, 2**63 - 1]),
        (pa.uint64(), [0, 2**64 - 1, 79161234567]),
        (
            pa.decimal128(12, 2),
            [decimal.Decimal("0.00"), decimal.Decimal("-1.50"), decimal.Decimal("1234567890.12")],
        ),
        (
            pa.decimal128(38, 10),
            [decimal.Decimal("1E-10"), decimal.Decimal("0E-10"), decimal.Decimal("-5.0000000001")],
        ),
        (pa.decimal128(20, 0), [decimal.Decimal(89161234567), decimal.Decimal(0)]),
        (pa.string(), ["a", "Б", "79161234567"]),
        (pa.large_string(), ["a", "Б"]),
        (pa.float64(), [79161234567.0, 1.5, -0.0, 1e20]),
        (pa.date32(), [dt.date(1985, 3, 14)]),
        (pa.timestamp("us", tz="Europe/Moscow"), [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)]),
    ],
)
def test_texts_are_what_each_value_s_text_was(type_: pa.DataType, values: list[Any]) -> None:
    array = pa.array(values, type_)
    assert sampling.texts(array) == [sampling.text_of(v) for v in sampling.python_values(array)]


def test_fold_all_is_fold_of_each() -> None:
    for texts in (["abc", "12 34"], ["a\0b"], ["８ ９１６", "x"], ["-\u2212-"], [], [""]):
        assert fold_all(texts) == [fold(t) for t in texts]
