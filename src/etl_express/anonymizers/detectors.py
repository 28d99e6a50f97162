"""Check-digit algorithms of Russian identifiers and bank cards.

Each function takes a string (separators allowed) and says whether its digits form a valid
number. :class:`~etl_express.anonymizers.ScrubPII` uses them to tell an identifier from any
other run of digits, so that a number with a wrong check digit is left alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa

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


# -- vectorized: many candidates at once ---------------------------------------------------

KIND_NAMES = ("", "snils", "inn", "ogrn", "card")
_MAX_DIGITS = 19


def _weighted_mod(d: np.ndarray, weights: tuple[int, ...]) -> np.ndarray:
    return (d[:, : len(weights)] @ np.array(weights, dtype=np.int64)) % 11 % 10


def _snils_ok(d: np.ndarray) -> np.ndarray:
    s = d[:, :9] @ np.arange(9, 0, -1, dtype=np.int64)
    check = np.where(s < 100, s, np.where(s <= 101, 0, s % 101 % 100))
    return check == d[:, 9] * 10 + d[:, 10]


def _inn_ok(d: np.ndarray, length: int) -> np.ndarray:
    if length == 10:
        return _weighted_mod(d, _INN10_WEIGHTS) == d[:, 9]
    return (_weighted_mod(d, _INN12_WEIGHTS_1) == d[:, 10]) & (
        _weighted_mod(d, _INN12_WEIGHTS_2) == d[:, 11]
    )


def _ogrn_ok(d: np.ndarray, length: int) -> np.ndarray:
    body = d[:, : length - 1] @ (10 ** np.arange(length - 2, -1, -1, dtype=np.int64))
    return body % (11 if length == 13 else 13) % 10 == d[:, length - 1]


def _luhn_ok(d: np.ndarray, length: int) -> np.ndarray:
    d = d[:, :length]
    doubled = d[:, length - 2 :: -2] * 2  # every second digit from the right
    total = d[:, length - 1 :: -2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
    return total % 10 == 0


# digit count -> (kind index in KIND_NAMES, check over a matrix of digits)
_CHECKS: dict[int, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    10: (2, lambda d: _inn_ok(d, 10)),
    11: (1, _snils_ok),
    12: (2, lambda d: _inn_ok(d, 12)),
    13: (3, lambda d: _ogrn_ok(d, 13)),
    15: (3, lambda d: _ogrn_ok(d, 15)),
    **{n: (4, functools.partial(_luhn_ok, length=n)) for n in range(16, _MAX_DIGITS + 1)},
}


def classify_many(digits: pa.Array) -> np.ndarray:
    """Vectorized :func:`classify_digits` over a string array of ASCII digits without nulls:
    an index into :data:`KIND_NAMES` per value (0: not an identifier). Values are grouped by
    length, and each group's check digits are computed as matrix operations."""
    n = len(digits)
    kinds = np.zeros(n, dtype=np.int8)
    if n == 0:
        return kinds
    _, offsets_buf, data_buf = digits.buffers()
    if data_buf is None:
        return kinds
    offsets = np.frombuffer(
        offsets_buf, dtype=np.int32, count=n + 1, offset=digits.offset * 4
    ).astype(np.int64)
    lengths = np.diff(offsets)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    for length, (kind, check) in _CHECKS.items():
        rows = np.flatnonzero(lengths == length)
        if not len(rows):
            continue
        at = offsets[rows][:, None] + np.arange(length)[None, :]
        ok = check(data[at].astype(np.int64) - 48)
        kinds[rows[ok]] = kind
    return kinds


__all__ = [
    "KIND_NAMES",
    "classify_digits",
    "classify_many",
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
