"""ScrubPII on columns: placeholders, keyed pseudonyms, untouched rows, types."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

import etl_express as etl
from etl_express.anonymizers import Pseudonymize, ScrubPII
from etl_express.errors import AnonymizationError

from . import idnumbers as nb


def test_rows_without_pii_are_untouched_and_nulls_stay() -> None:
    texts = ["без данных", None, "звонок 8 916 123 45 67", "сумма 1 500 руб", ""]
    out = ScrubPII(["notes"]).anonymize(
        pa.RecordBatch.from_pydict({"notes": texts, "id": [1, 2, 3, 4, 5]})
    )
    assert out.column("notes").to_pylist() == [
        "без данных",
        None,
        "звонок <PHONE>",
        "сумма 1 500 руб",
        "",
    ]
    assert out.column("id").to_pylist() == [1, 2, 3, 4, 5]


def test_everything_in_one_note() -> None:
    rng = random.Random(3)
    snils, inn, card, ogrn = nb.snils(rng), nb.inn12(rng), nb.card(rng, "2202"), nb.ogrn(rng)
    note = (
        f"Клиент Ivan@Example.ru, тел. +7 (916) 555-12-34, СНИЛС {nb.fmt_snils(snils)}, "
        f"ИНН {inn}, ОГРН {ogrn}, карта {nb.fmt_card(card)}, паспорт 45 06 123456 выдан ОВД"
    )
    out = ScrubPII("notes").scrub(pa.array([note]))[0].as_py()
    assert out == (
        "Клиент <EMAIL>, тел. <PHONE>, СНИЛС <SNILS>, ИНН <INN>, ОГРН <OGRN>, "
        "карта <CARD>, паспорт <PASSPORT> выдан ОВД"
    )


def test_pseudonyms_match_pseudonymize_tokens(anon_key: etl.SecretRef) -> None:
    rng = random.Random(5)
    inn = nb.inn10(rng)
    note = f"пишите IVAN@example.ru или звоните 8 (916) 555-12-34; ИНН {inn}"
    out = ScrubPII(["notes"], replace="pseudonym", key=anon_key).scrub(pa.array([note]))[0].as_py()
    p = Pseudonymize(["email", "phone", "inn"], key=anon_key)
    row = p.anonymize(
        pa.RecordBatch.from_pydict(
            {"email": ["ivan@example.ru"], "phone": ["+79165551234"], "inn": [inn]}
        )
    ).to_pylist()[0]
    assert out == f"пишите {row['email']} или звоните {row['phone']}; ИНН {row['inn']}"


def test_digits_inside_a_pseudonym_are_not_scrubbed_again() -> None:
    """A token's hex can hold ten digits in a row that pass an INN's check digits (about one
    key in thirty for a given email): the later rules must leave the token whole."""
    import re

    from pydantic import SecretStr

    from etl_express.anonymizers.detectors import classify_many
    from etl_express.anonymizers.pseudonymize import KeyedHasher

    rng = random.Random(17)
    for _ in range(20_000):
        key = SecretStr(
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
        )
        token = KeyedHasher(key, "test").token("ivan@example.ru", "email")
        runs = re.findall(r"[0-9]{10,19}", token.split(":")[1])
        if runs and classify_many(pa.array(runs)).any():
            break
    else:
        pytest.fail("no key gave a token with a number inside")
    out = (
        ScrubPII(["notes"], replace="pseudonym", key=key)
        .scrub(pa.array(["пишите IVAN@example.ru"]))[0]
        .as_py()
    )
    assert out == f"пишите {token}"
    # a real number written right after a colon is still found
    inn = nb.inn10(random.Random(5))
    out = (
        ScrubPII(["notes"], replace="pseudonym", key=key).scrub(pa.array([f"inn:{inn}"]))[0].as_py()
    )
    assert inn not in out and out.startswith("inn:inn:")


def test_bad_configuration_and_types() -> None:
    with pytest.raises(AnonymizationError, match="unknown kind"):
        ScrubPII(["notes"], kinds=["snils", "dna"])
    with pytest.raises(AnonymizationError, match="needs a key"):
        ScrubPII(["notes"], replace="pseudonym")
    with pytest.raises(AnonymizationError, match="literal key"):
        ScrubPII(["notes"], replace="pseudonym", key="k" * 40)  # type: ignore[arg-type]
    with pytest.raises(AnonymizationError, match="'amount' is int64"):
        ScrubPII(["amount"]).anonymize(pa.RecordBatch.from_pydict({"amount": [1]}))


def test_large_strings_and_chunked_input() -> None:
    arr = pa.chunked_array(
        [pa.array(["a@b.ru"], pa.large_string()), pa.array(["нет"], pa.large_string())]
    )
    assert ScrubPII(["t"]).scrub(arr).to_pylist() == ["<EMAIL>", "нет"]


def test_rules_rewrite_without_groups_when_kept_groups_are_empty() -> None:
    from etl_express.anonymizers.scrub_rules import (
        RULES_AFTER_CHECKSUMS,
        RULES_BEFORE_CHECKSUMS,
        Rule,
    )

    kinds = {r.kind: r.bare is not None for r in RULES_BEFORE_CHECKSUMS + RULES_AFTER_CHECKSUMS}
    assert kinds["email"] and kinds["phone"] and not kinds["passport"]
    assert Rule("x", r"()(a)|(b)()").bare is None  # the outer groups do not enclose the whole value
    assert Rule("x", r"()([()])()").bare == "[()]"


def test_literal_gated_rules_find_what_the_full_patterns_find() -> None:
    import re2

    from etl_express.anonymizers.scrub_rules import PLACEHOLDERS, RULES_BEFORE_CHECKSUMS

    texts = [
        "мой адрес Иван.Петров@Почта.рф, запасной a_b+c@mail-box.co.uk",
        "без почты, но с @ собакой",
        "+7 916 123-45-67 и +7(495)1234567",
        "почта@",
        "x@y",
        "тел +7916",
    ]
    out = ScrubPII(["t"], kinds=["email", "phone"]).scrub(pa.array(texts)).to_pylist()
    for rule in RULES_BEFORE_CHECKSUMS:
        if rule.literal is None:
            continue
        for text, scrubbed in zip(texts, out):
            expected = re2.sub(rule.pattern, rf"\1{PLACEHOLDERS[rule.kind]}\3", text)
            if expected != text:  # whatever the full pattern replaces is gone from the output
                assert re2.search(rule.pattern, scrubbed) is None
    assert out[0] == "мой адрес <EMAIL>, запасной <EMAIL>"
    assert out[1] == "без почты, но с @ собакой"
    assert out[2] == "<PHONE> и <PHONE>"
    assert out[3:] == ["почта@", "x@y", "тел +7916"]


def test_nul_bytes_in_a_sliced_column_are_found() -> None:
    from etl_express.anonymizers.scrub_kernels import has_nul

    arr = pa.array(["a\x00b", "clean", "also clean", "x\x00"])
    assert has_nul(arr)
    assert not has_nul(arr.slice(1, 2))
    assert has_nul(arr.slice(2))
    assert not has_nul(pa.array(["", None], pa.string()))
    # a NUL next to an email still scrubs and is stored as U+FFFD (PostgreSQL text holds no NUL)
    assert ScrubPII(["t"]).scrub(pa.array(["a@b.ru\x00x"])).to_pylist() == ["<EMAIL>\ufffdx"]


def test_a_phone_introduced_as_something_else_is_kept_only_there(anon_key: etl.SecretRef) -> None:
    # the re-check looks where a not-PII word stands right before a phone's placeholder: a
    # word after the phone, before another number, or before an earlier placeholder keeps
    # nothing else, and the pseudonym path keeps the same values
    notes = [
        "заказ 89161234567, тел. 8 916 765-43-21",
        "тел. 8 916 765-43-21, счёт: 89161234567",
        "Перезвонить: 8 (916) 765-43-21, счёт: a@b.ru",
        "Заказ № 8 916 765-43-21 и 8 916 765-43-22",
        "лог <PHONE> 8 916 765-43-21",
        "сессия\u00a089161234567, 8\u00a0916\u00a0765-43-21",
    ]
    assert ScrubPII(["n"]).scrub(pa.array(notes)).to_pylist() == [
        "заказ 89161234567, тел. <PHONE>",
        "тел. <PHONE>, счёт: 89161234567",
        "Перезвонить: <PHONE>, счёт: <EMAIL>",
        "Заказ № 8 916 765-43-21 и <PHONE>",
        "лог <PHONE> <PHONE>",
        "сессия\u00a089161234567, <PHONE>",
    ]
    tokens = ScrubPII(["n"], replace="pseudonym", key=anon_key).scrub(pa.array(notes))
    kept = ["89161234567", "89161234567", "", "8 916 765-43-21", "", "89161234567"]
    gone = ["765-43-21", "765-43-21", "765-43-21", "765-43-22", "765-43-21", "765-43-21"]
    for note, k, g in zip(tokens.to_pylist(), kept, gone):
        assert k in note and g not in note, note
