"""ScrubPII on Unicode look-alikes (spaces, dashes, digits), phones of other countries and
Mir cards: found, and replaced on exactly their span of the original text."""

from __future__ import annotations

import random
import unicodedata

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express import _speedups
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.anonymizers import textfold as tf

from . import idnumbers as nb


def _scrub(texts: list[str | None], **options: object) -> list[str | None]:
    return ScrubPII(["notes"], **options).scrub(pa.array(texts, pa.string())).to_pylist()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "space", ["\u00a0", "\u2009", "\u202f", "\u2007", "\u2002", "\u3000", "\u200b"]
)
@pytest.mark.parametrize("dash", ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212"])
def test_unicode_separators_inside_numbers(space: str, dash: str) -> None:
    rng = random.Random(1)
    snils, card = nb.snils(rng), nb.card(rng, "2200")
    note = (
        f"Тел.{space}8{space}(916){space}123{dash}45{dash}67,{space}СНИЛС{space}"
        f"{snils[:3]}{dash}{snils[3:6]}{dash}{snils[6:9]}{space}{snils[9:]},{space}карта{space}"
        f"{space.join(card[i : i + 4] for i in range(0, 16, 4))}{space}—{space}ок"
    )
    assert _scrub([note]) == [
        f"Тел.{space}<PHONE>,{space}СНИЛС{space}<SNILS>,{space}карта{space}<CARD>{space}—{space}ок"
    ]


def test_full_width_and_other_scripts_digits() -> None:
    assert _scrub(
        ["звонить ８ ９１６ １２３ ４５ ６７ вечером", "ИНН ٧٧٠٧٠٨٣٨٩٣", "ｉｖａｎ＠ｍａｉｌ．ｒｕ"]
    ) == [
        "звонить <PHONE> вечером",
        "ИНН <INN>",
        "<EMAIL>",
    ]


def test_the_rest_of_the_text_is_kept_exactly_as_written() -> None:
    note = "\ue001Счёт\u00a0№\u00a07\u2009500\u00a0руб.\x00 тел.\u00a0+7\u00a0916\u00a0123\u201145\u201167 \U0001f600"
    (out,) = _scrub([note])
    # a private-use character already in the text is not mistaken for a found span, a NUL
    # becomes U+FFFD (PostgreSQL text holds no NUL) as on every scanned row
    assert out == "\ue001Счёт\u00a0№\u00a07\u2009500\u00a0руб.\ufffd тел.\u00a0<PHONE> \U0001f600"


def test_pseudonyms_of_look_alike_spellings_equal_the_ascii_ones(anon_key: etl.SecretRef) -> None:
    scrub = ScrubPII(["notes"], replace="pseudonym", key=anon_key)
    plain, fancy = scrub.scrub(
        pa.array(["тел. 8 916 123-45-67", "тел.\u00a0８\u202f９１６\u202f１２３\u201145\u201167"])
    ).to_pylist()
    token = Pseudonymize(["phone"], key=anon_key).token("+79161234567", "phone")
    assert plain == f"тел. {token}" and fancy == f"тел.\u00a0{token}"


@pytest.mark.parametrize(
    "text, e164",
    [
        ("звонить +1 (415) 555-0132 после 18:00", "+14155550132"),
        ("Лондон: +44 20 7946 0958.", "+442079460958"),
        ("офис в Берлине +49 30 901820, доб. 5", "+4930901820"),
        ("+49 (0)30 901820", "+4930901820"),
        ("с мобильного 0044 7911 123456", "+447911123456"),
        ("через 8 10 49 30 901820", "+4930901820"),
        ("Минск +375 29 123-45-67", "+375291234567"),
        ("Алматы +7 727 258 2555", "+77272582555"),
        ("Tokyo +81 3-1234-5678", "+81312345678"),
        ("Ташкент +998\u00a090\u00a0123\u201145\u201167", "+998901234567"),
    ],
)
def test_phones_of_every_country(text: str, e164: str, anon_key: etl.SecretRef) -> None:
    (out,) = _scrub([text])
    assert "<PHONE>" in out and e164[-4:] not in out.replace(" ", "").replace("-", "")
    (token,) = _scrub([text], replace="pseudonym", key=anon_key)
    assert Pseudonymize(["p"], key=anon_key).token(e164, "phone") in token


@pytest.mark.parametrize(
    "text",
    [
        "рост +15 %, план +12000 шт.",
        "температура −12 °C, давление 755 мм",
        "период 2024‑01‑15 — 2024‑02‑15",
        "сумма 1\u00a0250\u00a0000\u00a0руб.",
        "ISO 9001:2015, ГОСТ 12345‑78",
        "версия +1.2.3",
    ],
)
def test_look_alike_business_text_is_left_alone(text: str) -> None:
    assert _scrub([text]) == [text]


@pytest.mark.parametrize("prefix", ["2200", "2201", "2202", "2203", "2204"])
def test_mir_cards_in_every_spelling(prefix: str) -> None:
    rng = random.Random(int(prefix))
    sixteen = nb.card(rng, prefix)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(14))
    nineteen = body + nb._luhn_digit(body)
    spellings = [
        sixteen,
        " ".join(sixteen[i : i + 4] for i in range(0, 16, 4)),
        "-".join(sixteen[i : i + 4] for i in range(0, 16, 4)),
        "\u2009".join(sixteen[i : i + 4] for i in range(0, 16, 4)),
        nineteen,
        " ".join(nineteen[i : i + 4] for i in range(0, 16, 4)) + " " + nineteen[16:],
    ]
    out = _scrub([f"оплата {s}, спасибо" for s in spellings])
    assert out == ["оплата <CARD>, спасибо"] * len(spellings)
    assert _scrub([f"карта {spellings[1]} 25 шт"]) == ["карта <CARD> 25 шт"]
    wrong = sixteen[:-1] + str((int(sixteen[-1]) + 1) % 10)  # Luhn fails: not a card
    assert _scrub([f"оплата {wrong}"]) != ["оплата <CARD>"]


def test_find_names_the_kinds_in_each_value() -> None:
    found = ScrubPII(["n"]).find(["тел. +44 20 7946 0958", "a@b.ru и 8 916 123 45 67", "ok", None])
    assert found == [{"phone"}, {"email", "phone"}, set(), set()]
    assert ScrubPII(["n"], kinds=["email"]).find(["<EMAIL> a@b.ru 8 916 123 45 67"]) == [{"email"}]


def test_scrub_protects_free_text_only() -> None:
    assert ScrubPII.protects == "free_text"


def test_fold_table_is_what_unicode_says() -> None:
    table = tf.fold_table()
    for cp, to in table.items():
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Nd":
            assert chr(to) == str(unicodedata.decimal(ch))
        elif category == "Zs" or cp in (0x180E, 0x200B, 0x2060, 0xFEFF):
            assert chr(to) == " "
        elif category == "Pd" or cp in (0xAD, 0x2212, 0xFE63, 0xFF0D):
            assert chr(to) == "-"
        else:
            assert unicodedata.normalize("NFKC", ch) == chr(to)
    every = {
        cp
        for cp in range(0x80, 0x20000)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) in ("Nd", "Zs", "Pd")
    }
    assert every <= set(table)  # this Python's Unicode has nothing the table misses


def test_special_rows_native_and_re2_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    alphabet = [*"ab 1-", "я", "\u00a0", "\u2011", "５", "\U0001d7ce", "\ue000", "é", "\U0001f600"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(8))) for _ in range(3000)]
    arr = pa.array([*texts, None])
    fast = tf.special_rows(arr).to_pylist()
    monkeypatch.setattr(_speedups, "native", None)
    assert tf.special_rows(arr).to_pylist() == fast
    assert fast == [any(ord(c) in tf.fold_table() for c in t) for t in texts] + [False]
