"""Phone numbers of every country, read by libphonenumber (the ``phonenumbers`` package).

Russian numbers, in the spellings people write them, are found by ``ScrubPII``'s compiled
rules and normalized by the compiled E.164 pass of :func:`.normalize.normalize_phone`: they
are most of the numbers here and those paths are fast. Everything those rules leave —
a ``+`` before another country code (``+1 (415) 555-0132``, ``+44 20 7946 0958``,
``+49 (0)30 901820``), an international prefix (``0044 ...``, Russia's ``8 10 ...``) — is
read by libphonenumber, which knows every country's numbering plan: it finds such numbers in
text (:func:`international_spans`, numbers it judges valid only) and writes them in E.164
(:func:`e164`), so the same number gets the same token whichever way it was written.
libphonenumber is pure Python and slow (about a millisecond a text): only the few values the
fast rules cannot judge reach it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

#: text that may hold a number written with a country code: a "+" before seven or more digits
#: with phone separators between them (an RE2 pattern, run on columns) ...
PLUS_NUMBER = r"\+[\s().\-]*[0-9](?:[\s().\-]*[0-9]){6}"
#: ... or an international prefix (00, or Russia's 8 10) before them: looked for after the
#: numbers with check digits are replaced (a SNILS "004-261-353 96" starts with 00 too)
PREFIXED_NUMBER = r"(?:^|[^0-9])(?:00|8[ \-]?10)[\s(]*[1-9](?:[\s().\-]*[0-9]){6}"
# an international prefix (00, or Russia's 8 10), made spaces and a "+" (one character for
# one) so that libphonenumber, which reads a "+", finds the number at the same place
_PREFIX = re.compile(r"(?<![0-9])(?:00|8[ \-]?10)(?=[\s(]*[1-9])")
_NON_DIGIT = re.compile(r"[^0-9]")
_LEADING_00 = re.compile(r"^[^0-9]*0[^0-9]*0")


@functools.lru_cache(maxsize=1)
def _library() -> Any:
    import phonenumbers  # imported on first use: it is only needed for foreign numbers

    return phonenumbers


def international_spans(text: str) -> list[tuple[int, int]]:
    """The spans ``(start, end)`` of ``text`` holding a valid phone number written with its
    country code (``+`` or ``00``), as libphonenumber's matcher finds them."""
    pn = _library()
    prefixes = {
        m.end() - 1: m.start() for m in _PREFIX.finditer(text) if _starts_number(text, m.start())
    }
    probe = text
    for plus, start in prefixes.items():  # its "+" -> where the prefix starts
        probe = probe[:start] + " " * (plus - start) + "+" + probe[plus + 1 :]
    return [
        (prefixes.get(match.start, match.start), match.end)
        for match in pn.PhoneNumberMatcher(probe, None, leniency=pn.Leniency.VALID)
    ]


def _starts_number(text: str, at: int) -> bool:
    """Whether a number starts at ``at``: no digit or "+" before it but separators (the "810"
    in ``+34 810 12 80 22`` is inside a number)."""
    before = text[:at].rstrip(" \t\n\r\f().-")
    return not before or not (before[-1].isdigit() or before[-1] == "+")


def e164(values: Iterable[str]) -> list[str]:
    """E.164 of phone numbers with a country code (``+44 (0)20 7946 0958``, ``0044 20 7946
    0958`` and ``8 10 44 20 7946 0958`` are all ``+442079460958``); a value libphonenumber
    cannot read is ``+`` and its digits (an international prefix dropped)."""
    pn = _library()
    out = []
    for value in values:
        digits = _NON_DIGIT.sub("", value)
        text = value
        if digits.startswith("00") and "+" not in value:
            text = "+" + _LEADING_00.sub("", value)
            digits = digits[2:]
        try:
            number = pn.parse(text, "RU")  # RU: reads Russia's "8 10" international prefix
            out.append(pn.format_number(number, pn.PhoneNumberFormat.E164))
        except pn.NumberParseException:
            out.append("+" + digits if digits else "")
    return out


__all__ = ["PLUS_NUMBER", "PREFIXED_NUMBER", "e164", "international_spans"]
