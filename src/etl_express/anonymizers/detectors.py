"""Check-digit algorithms of Russian identifiers and bank cards.

Each function takes a string (separators allowed) and says whether its digits form a valid
number. :class:`~etl_express.anonymizers.ScrubPII` uses them to tell an identifier from any
other run of digits, so that a number with a wrong check digit is left alone.
"""

from __future__ import annotations

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


#: SNILS numbers up to 001-001-998 were issued before the check number was introduced
SNILS_LOW_RANGE_MAX = 1_001_998


def is_valid_snils(text: str) -> bool:
    """SNILS: 11 digits, the last two are the check number of the first nine (any two in
    the low range up to 001-001-998, which has no check-digit rule)."""
    d = digits_of(text)
    return len(d) == 11 and (snils_check(d[:9]) == d[9:] or int(d[:9]) <= SNILS_LOW_RANGE_MAX)


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
    """OGRN: 13 digits starting with 1 or 5 (the sign of a legal entity); the first twelve
    mod 11, then mod 10, give the last."""
    d = digits_of(text)
    return len(d) == 13 and d[0] in "15" and ogrn_check(d[:12]) == d[12]


def is_valid_ogrnip(text: str) -> bool:
    """OGRNIP: 15 digits starting with 3 (the sign of an entrepreneur); the first fourteen
    mod 13, then mod 10, give the last."""
    d = digits_of(text)
    return len(d) == 15 and d[0] == "3" and ogrn_check(d[:14]) == d[14]


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


def ean13_ok(text: str) -> bool:
    """The EAN-13 barcode check digit (weights 1, 3 alternating)."""
    d = digits_of(text)
    if len(d) != 13:
        return False
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(d[:12]))
    return (10 - total % 10) % 10 == int(d[12])


def card_issuer_ok(text: str) -> bool:
    """Whether a number's length and leading digits belong to a card scheme: Visa (4; 13, 16
    or 19 digits), Mastercard (51-55, 2221-2720), Mir (2200-2204), Maestro/UnionPay/Discover
    (50, 56-69), JCB (3528-3589), American Express (34, 37; 15 digits), Diners Club (300-305,
    309, 36, 38, 39; 14-19). A 13-digit number that is also a valid EAN-13 is a barcode."""
    d = digits_of(text)
    n = len(d)
    if not 13 <= n <= 19:
        return False
    two, four = int(d[:2]), int(d[:4])
    if n == 13:
        return d[0] == "4" and not ean13_ok(d)
    if n == 14:
        return 3000 <= four <= 3059 or two in (36, 38, 39) or four == 3095
    if n == 15:
        return two in (34, 37)
    return (
        d[0] in "456"
        or 2200 <= four <= 2204
        or 2221 <= four <= 2720
        or 3528 <= four <= 3589
        or two in (36, 38, 39)
    )


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
    if 13 <= n <= 19 and luhn_ok(d) and card_issuer_ok(d):
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


def _number(d: np.ndarray, start: int, stop: int) -> np.ndarray:
    return d[:, start:stop] @ (10 ** np.arange(stop - start - 1, -1, -1, dtype=np.int64))


def _ogrn_ok(d: np.ndarray, length: int) -> np.ndarray:
    body = _number(d, 0, length - 1)
    sign = np.isin(d[:, 0], [1, 5] if length == 13 else [3])
    return sign & (body % (11 if length == 13 else 13) % 10 == d[:, length - 1])


def _luhn_ok(d: np.ndarray, length: int) -> np.ndarray:
    d = d[:, :length]
    doubled = d[:, length - 2 :: -2] * 2  # every second digit from the right
    total = d[:, length - 1 :: -2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
    return total % 10 == 0


def _ean13_ok(d: np.ndarray) -> np.ndarray:
    total = d[:, :12] @ np.array([1, 3] * 6, dtype=np.int64)
    return (10 - total % 10) % 10 == d[:, 12]


def _issuer_ok(d: np.ndarray, length: int) -> np.ndarray:
    """Vectorized :func:`card_issuer_ok` for numbers of ``length`` digits."""
    two, four = _number(d, 0, 2), _number(d, 0, 4)
    if length == 13:
        return (d[:, 0] == 4) & ~_ean13_ok(d)
    if length == 14:
        return ((four >= 3000) & (four <= 3059)) | np.isin(two, [36, 38, 39]) | (four == 3095)
    if length == 15:
        return np.isin(two, [34, 37])
    return (
        np.isin(d[:, 0], [4, 5, 6])
        | ((four >= 2200) & (four <= 2204))
        | ((four >= 2221) & (four <= 2720))
        | ((four >= 3528) & (four <= 3589))
        | np.isin(two, [36, 38, 39])
    )


def _card_ok(length: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda d: _luhn_ok(d, length) & _issuer_ok(d, length)


# digit count -> the checks tried in order, as (kind index in KIND_NAMES, check over a matrix
# of digits); the first that passes decides
_CHECKS: dict[int, list[tuple[int, Callable[[np.ndarray], np.ndarray]]]] = {
    10: [(2, lambda d: _inn_ok(d, 10))],
    11: [(1, _snils_ok)],
    12: [(2, lambda d: _inn_ok(d, 12))],
    13: [(3, lambda d: _ogrn_ok(d, 13)), (4, _card_ok(13))],
    14: [(4, _card_ok(14))],
    15: [(3, lambda d: _ogrn_ok(d, 15)), (4, _card_ok(15))],
    **{n: [(4, _card_ok(n))] for n in range(16, _MAX_DIGITS + 1)},
}


def snils_low_range(digits: pa.Array) -> np.ndarray:
    """Which values (ASCII digits, no nulls) are 11-digit numbers in the SNILS low range
    (first nine digits up to 001-001-998), which has no check number."""
    # read from the buffers, as classify_many does: a literal handed to a compute function
    # and Array.to_numpy make pyarrow import pandas (0.2 s of a fresh process)
    n = len(digits)
    out = np.zeros(n, dtype=bool)
    _, offsets_buf, data_buf = digits.buffers()
    if n == 0 or data_buf is None:
        return out
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=digits.offset * 4)
    rows = np.flatnonzero(np.diff(offsets) == 11)
    if not len(rows):
        return out
    at = offsets[rows].astype(np.int64)[:, None] + np.arange(9)[None, :]
    first = (np.frombuffer(data_buf, dtype=np.uint8)[at].astype(np.int64) - 48) @ 10 ** np.arange(
        8, -1, -1, dtype=np.int64
    )
    out[rows] = first <= SNILS_LOW_RANGE_MAX
    return out


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
    for length, checks in _CHECKS.items():
        rows = np.flatnonzero(lengths == length)
        if not len(rows):
            continue
        at = offsets[rows][:, None] + np.arange(length)[None, :]
        matrix = data[at].astype(np.int64) - 48
        undecided = np.ones(len(rows), dtype=bool)
        for kind, check in checks:
            ok = check(matrix) & undecided
            kinds[rows[ok]] = kind
            undecided &= ~ok
    return kinds


__all__ = [
    "KIND_NAMES",
    "SNILS_LOW_RANGE_MAX",
    "card_issuer_ok",
    "classify_digits",
    "classify_many",
    "digits_of",
    "ean13_ok",
    "inn_check",
    "is_valid_inn",
    "is_valid_ogrn",
    "is_valid_ogrnip",
    "is_valid_snils",
    "luhn_ok",
    "ogrn_check",
    "snils_check",
    "snils_low_range",
]
