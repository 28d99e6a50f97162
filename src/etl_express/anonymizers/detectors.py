"""Check-digit algorithms of Russian identifiers and bank cards.

Each function takes a string (separators allowed) and says whether its digits form a valid
number. :class:`~etl_express.anonymizers.ScrubPII` uses them to tell an identifier from any
other run of digits, so that a number with a wrong check digit is left alone.
"""

from __future__ import annotations

import re

_NON_DIGIT = re.compile(r"[^0-9]")

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def digits_of(text: str) -> str:
    """The ASCII digits of ``text``: ``"123-456-789 64"`` -> ``"12345678964"``."""
    return _NON_DIGIT.sub("", text)


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights))


def snils_check(first_nine: str) -> str:
    """The two check digits of a SNILS given its first nine digits."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(9, 0, -1)))
    if total > 101:
        total %= 101
    return "00" if total in (100, 101) else f"{total:02d}"


def is_valid_snils(text: str) -> bool:
    """SNILS: 11 digits, the last two are the check number of the first nine."""
    d = digits_of(text)
    return len(d) == 11 and snils_check(d[:9]) == d[9:]


def inn_check(body: str) -> str:
    """The check digit(s) of an INN given its 9 (legal entity) or 10 (person) leading digits."""
    if len(body) == 9:
        return str(_weighted(body, _INN10_WEIGHTS) % 11 % 10)
    if len(body) == 10:
        first = str(_weighted(body, _INN12_WEIGHTS_1) % 11 % 10)
        second = str(_weighted(body + first, _INN12_WEIGHTS_2) % 11 % 10)
        return first + second
    raise ValueError("an INN body has 9 or 10 digits")


def is_valid_inn(text: str) -> bool:
    """INN of a legal entity (10 digits) or of a person (12 digits), check digits verified."""
    d = digits_of(text)
    if len(d) == 10:
        return inn_check(d[:9]) == d[9]
    if len(d) == 12:
        return inn_check(d[:10]) == d[10:]
    return False


def ogrn_check(body: str) -> str:
    """The check digit of an OGRN (12 leading digits) or OGRNIP (14 leading digits)."""
    if len(body) == 12:
        return str(int(body) % 11 % 10)
    if len(body) == 14:
        return str(int(body) % 13 % 10)
    raise ValueError("an OGRN body has 12 digits, an OGRNIP body 14")


def is_valid_ogrn(text: str) -> bool:
    """OGRN: 13 digits, the first twelve mod 11, then mod 10, give the last."""
    d = digits_of(text)
    return len(d) == 13 and ogrn_check(d[:12]) == d[12]


def is_valid_ogrnip(text: str) -> bool:
    """OGRNIP: 15 digits, the first fourteen mod 13, then mod 10, give the last."""
    d = digits_of(text)
    return len(d) == 15 and ogrn_check(d[:14]) == d[14]


def luhn_ok(text: str) -> bool:
    """The Luhn check of bank card numbers (Visa, Mastercard, Mir 2200-2204, ...)."""
    d = digits_of(text)
    if not 12 <= len(d) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def classify_digits(text: str) -> str | None:
    """The kind of identifier a run of digits is (``"snils"``, ``"inn"``, ``"ogrn"``,
    ``"card"``), judged by its length and check digits; ``None`` for any other number."""
    d = digits_of(text)
    n = len(d)
    if n == 11 and is_valid_snils(d):
        return "snils"
    if n in (10, 12) and is_valid_inn(d):
        return "inn"
    if (n == 13 and is_valid_ogrn(d)) or (n == 15 and is_valid_ogrnip(d)):
        return "ogrn"
    # cards issued in Russia (Mir, Visa, Mastercard, UnionPay) have 16 to 19 digits; shorter
    # Luhn-valid runs would mostly be OGRN/OGRNIP numbers with a wrong check digit
    if 16 <= n <= 19 and luhn_ok(d):
        return "card"
    return None


__all__ = [
    "classify_digits",
    "digits_of",
    "inn_check",
    "is_valid_inn",
    "is_valid_ogrn",
    "is_valid_ogrnip",
    "is_valid_snils",
    "luhn_ok",
    "ogrn_check",
    "snils_check",
]
