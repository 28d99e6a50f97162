"""Valid and invalid Russian identifiers and card numbers, built from the check-digit rules
as the issue states them (independently of the library's detectors)."""

from __future__ import annotations

import random


def _snils_check(nine: str) -> str:
    s = sum(int(d) * w for d, w in zip(nine, range(9, 0, -1)))
    if s < 100:
        return f"{s:02d}"
    if s in (100, 101):
        return "00"
    s %= 101
    return "00" if s == 100 else f"{s:02d}"


def snils(rng: random.Random) -> str:
    nine = f"{rng.randrange(2_000_000, 999_999_999):09d}"
    return nine + _snils_check(nine)


def _inn_digit(digits: str, weights: list[int]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10)


def inn10(rng: random.Random) -> str:
    body = f"{rng.randrange(1, 99):02d}{rng.randrange(10**7):07d}"
    return body + _inn_digit(body, [2, 4, 10, 3, 5, 9, 4, 6, 8])


def inn12(rng: random.Random) -> str:
    body = f"{rng.randrange(1, 99):02d}{rng.randrange(10**8):08d}"
    first = _inn_digit(body, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
    second = _inn_digit(body + first, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
    return body + first + second


def ogrn(rng: random.Random) -> str:
    body = f"{rng.choice('15')}{rng.randrange(10**11):011d}"
    return body + str(int(body) % 11 % 10)


def ogrnip(rng: random.Random) -> str:
    body = f"3{rng.randrange(10**13):013d}"
    return body + str(int(body) % 13 % 10)


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:  # doubled: the check digit will be appended to the right
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str((10 - total % 10) % 10)


def card(rng: random.Random, prefix: str | None = None) -> str:
    prefix = prefix or rng.choice(["2200", "2201", "2202", "2203", "2204", "4276", "5469"])
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
    return body + _luhn_digit(body)


def break_last(number: str) -> str:
    """The same number with its last (check) digit changed."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def break_snils(number: str) -> str:
    """A SNILS with a check number that does not match its first nine digits."""
    good = int(number[9:])
    return number[:9] + f"{(good + 37) % 100:02d}"


def fmt_snils(d: str) -> str:
    return f"{d[:3]}-{d[3:6]}-{d[6:9]} {d[9:]}"


def fmt_card(d: str) -> str:
    return " ".join(d[i : i + 4] for i in range(0, len(d), 4))


def mobile(rng: random.Random) -> str:
    """Ten national digits of a Russian mobile number (9xx...)."""
    return f"9{rng.randrange(10**9):09d}"


def phone_formats(ten: str) -> list[str]:
    return [
        f"+7{ten}",
        f"8{ten}",
        f"+7 {ten[:3]} {ten[3:]}",
        f"8 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}",
        f"+7 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}",
        f"8-{ten[:3]}-{ten[3:6]}-{ten[6:8]}-{ten[8:]}",
    ]
