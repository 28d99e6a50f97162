"""Each Russian identifier detector: valid numbers are found, a wrong check digit is left alone."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from etl_express.anonymizers import ScrubPII, detectors

from . import idnumbers as nb

RNG = random.Random(20240501)
N = 40


def _scrub(texts: list[str], **kw: object) -> list[str]:
    return ScrubPII(["t"], **kw).scrub(pa.array(texts, pa.string())).to_pylist()  # type: ignore[arg-type]


def test_known_real_numbers_validate() -> None:
    # published example numbers
    assert detectors.is_valid_inn("7707083893")  # Sberbank
    assert detectors.is_valid_inn("500100732259")  # 12-digit example
    assert detectors.is_valid_ogrn("1027700132195")  # Sberbank
    assert detectors.is_valid_ogrnip("304500116000157")
    assert detectors.is_valid_snils("112-233-445 95")
    assert detectors.luhn_ok("4111 1111 1111 1111")
    assert not detectors.is_valid_inn("7707083894")
    assert not detectors.luhn_ok("4111 1111 1111 1112")


@pytest.mark.parametrize(
    "make, check",
    [
        (nb.snils, detectors.is_valid_snils),
        (nb.inn10, detectors.is_valid_inn),
        (nb.inn12, detectors.is_valid_inn),
        (nb.ogrn, detectors.is_valid_ogrn),
        (nb.ogrnip, detectors.is_valid_ogrnip),
        (nb.card, detectors.luhn_ok),
    ],
)
def test_check_digit_functions(make, check) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        number = make(RNG)
        assert check(number), number
        broken = nb.break_snils(number) if make is nb.snils else nb.break_last(number)
        assert not check(broken), broken


def test_snils_check_number_edge_cases() -> None:
    # weighted sums 99, 100, 101, 102 (9*9 + 2*8 + last digit)
    assert detectors.snils_check("920000002") == "99"
    assert detectors.snils_check("920000003") == "00"
    assert detectors.snils_check("920000004") == "00"
    assert detectors.snils_check("920000005") == "01"
    # 9*9 + 9*8 + ... + 9*1 = 405 -> 405 mod 101 = 1
    assert detectors.snils_check("999999999") == "01"


@pytest.mark.parametrize(
    "make, fmt, placeholder",
    [
        (nb.snils, nb.fmt_snils, "<SNILS>"),
        (nb.snils, lambda d: d, "<SNILS>"),
        (nb.inn10, lambda d: d, "<INN>"),
        (nb.inn12, lambda d: d, "<INN>"),
        (nb.ogrn, lambda d: d, "<OGRN>"),
        (nb.ogrnip, lambda d: d, "<OGRN>"),
        (nb.card, nb.fmt_card, "<CARD>"),
        (nb.card, lambda d: d, "<CARD>"),
    ],
)
def test_scrub_finds_valid_and_leaves_wrong_check_digits(make, fmt, placeholder) -> None:  # type: ignore[no-untyped-def]
    valid = []
    while len(valid) < N:
        number = make(RNG)
        # a bare 11-digit number starting with 7/8 is also a phone: keep the test about checksums
        if not (fmt(number) == number and number[0] in "789" and len(number) in (10, 11)):
            valid.append(number)
    texts = [f"клиент: {fmt(v)}, спасибо" for v in valid]
    out = _scrub(texts)
    for v, o in zip(valid, out):
        assert fmt(v) not in o and v not in o
        assert o == f"клиент: {placeholder}, спасибо"

    broken = [nb.break_snils(v) if make is nb.snils else nb.break_last(v) for v in valid]
    # a broken OGRNIP can still be a valid card of another scheme (15 digits: American Express)
    broken = [b for b in broken if detectors.classify_digits(b) is None]
    texts = [f"номер {fmt(b)} ок" for b in broken]
    assert _scrub(texts) == texts


def test_mir_cards_found() -> None:
    for prefix in ("2200", "2201", "2202", "2203", "2204"):
        number = nb.card(RNG, prefix)
        assert _scrub([f"карта Мир {nb.fmt_card(number)}"]) == ["карта Мир <CARD>"]
        assert _scrub([f"карта {nb.fmt_card(nb.break_last(number))}"]) == [
            f"карта {nb.fmt_card(nb.break_last(number))}"
        ]


def test_emails_and_phones() -> None:
    ten = nb.mobile(RNG)
    texts = [f"позвоните {f} до 18:00" for f in nb.phone_formats(ten)]
    assert _scrub(texts) == ["позвоните <PHONE> до 18:00"] * len(texts)
    assert _scrub(["пишите Ivan.Petrov+crm@Mail.RU или иван@почта.рф"]) == [
        "пишите <EMAIL> или <EMAIL>"
    ]
    # numbers that are not phones stay
    assert _scrub(["заказ 12345 на 15 000 руб от 12.03.2024"]) == [
        "заказ 12345 на 15 000 руб от 12.03.2024"
    ]


def test_passports_next_to_context_words() -> None:
    texts = [
        "паспорт 45 06 123456 выдан ОВД района",
        "Паспорт РФ: 4506 123456",
        "серия 4510 номер 654321",
        "4509 111222, выдан УФМС",
    ]
    out = _scrub(texts)
    assert out == [
        "паспорт <PASSPORT> выдан ОВД района",
        "Паспорт РФ: <PASSPORT>",
        "серия <PASSPORT>",
        "<PASSPORT>, выдан УФМС",
    ]
    # the same digits without a context word are no passport (a 10-digit number is judged by its INN check)
    assert "<PASSPORT>" not in _scrub(["код 4506 123456"])[0]


def test_kinds_select_detectors() -> None:
    inn = nb.inn10(RNG)
    assert _scrub([f"a@b.ru {inn}"], kinds=["inn"]) == ["a@b.ru <INN>"]


def test_classify_digits() -> None:
    assert detectors.classify_digits(nb.snils(RNG)) == "snils"
    assert detectors.classify_digits(nb.inn12(RNG)) == "inn"
    assert detectors.classify_digits(nb.ogrnip(RNG)) == "ogrn"
    assert detectors.classify_digits("12345") is None


def test_vectorized_classification_agrees_with_scalar() -> None:
    rng = random.Random(11)
    values = []
    for make in (nb.snils, nb.inn10, nb.inn12, nb.ogrn, nb.ogrnip, nb.card):
        for _ in range(300):
            v = make(rng)
            values += [v, nb.break_last(v), v[:-2]]
    values += [str(rng.randrange(10 ** (k - 1), 10**k)) for k in range(1, 22) for _ in range(300)]
    values += ["92000000300", "92000000400", "92000000501", "", "4111111111111111"]
    kinds = detectors.classify_many(pa.array(values).slice(3))
    assert [detectors.KIND_NAMES[k] or None for k in kinds] == [
        detectors.classify_digits(v) for v in values[3:]
    ]
    assert sum(1 for k in kinds if k) > 1000
