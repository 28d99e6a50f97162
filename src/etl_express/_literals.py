"""Foreign texts (database, driver and expression messages) reduced to what names a problem.

A database quotes the value it refused wherever its message puts it — ``invalid input syntax
for type integer: "…"``, ``value "…" is out of range for type integer``, ``invalid value "…"
for "DD"``, MariaDB's ``Incorrect integer value: '…' for column 'age'`` — and that value is
a record's, possibly personal data. :func:`without_literals` removes every quoted literal
wherever it stands, keeping only the quoted names the caller knows to be identifiers (the
pipeline's columns and tables, the constraint the driver reports), and removes what looks like
a value even unquoted (e-mail addresses, runs of four or more digits, ``Key (c)=(…)``).

This module has no dependency inside the package, so that :mod:`etl_express.errors` can use it;
everything else reaches it through the privacy boundary, :mod:`etl_express._privacy`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

VALUE = "<value>"

# opening and closing characters of each kind of quote
_QUOTES = {'"': '"', "'": "'", "`": "`", "«": "»", "“": "”", "‘": "’", "„": "“"}
_ANY_QUOTE = re.compile("[\"'`«»“”‘’„]")
_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['’](?=[^\W\d_])")  # can't, O’Brien inside a word
_KEY_VALUE = re.compile(r"=\(.*\)")  # Key (email)=(…): to the last parenthesis
_EMAIL = re.compile(r"[^\s\"'<>()\[\],;:]+@[^\s\"'<>()\[\],;:]+")
_DIGITS = re.compile(r"(?<![\w\x00])[+(]?\d(?:[\d \t().\-/:,+]*\d)?(?![\w\x00])")
_PLACEHOLDER = re.compile(r"\x00([a-z]+)\x00")
_REPEATED = re.compile(f"(?:{re.escape(VALUE)})+")


_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()
_KNOWN_LIMIT = 100_000


def register_identifiers(names: Iterable[str]) -> None:
    """Remember column and table names of this process's pipelines: quoted in a foreign
    message they are kept (``for column 'age'``), everything else quoted is removed."""
    with _KNOWN_LOCK:
        if len(_KNOWN) < _KNOWN_LIMIT:
            _KNOWN.update(n for n in names if isinstance(n, str) and 0 < len(n) <= 128)


def _token(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(97 + r) + letters
    return f"\x00{letters}\x00"


def _protect(text: str, identifiers: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Known identifiers in quotes become placeholders that survive the removal."""
    kept: dict[str, str] = {}
    names = sorted({n for n in identifiers if n and "\x00" not in n}, key=len, reverse=True)
    for name in names:
        for opening, closing in _QUOTES.items():
            quoted = f"{opening}{name}{closing}"
            if quoted in text:
                token = _token(len(kept))
                kept[token] = quoted
                text = text.replace(quoted, token)
    return text, kept


def _strip_segment(segment: str, inside: bool) -> tuple[str, bool]:
    """A stretch between identifiers without its quoted parts: from its first quote to its
    last one, and the part before (after) it too when a value spans in (out). Returns the
    text and whether a value is still open at its end."""
    masked = _APOSTROPHE.sub("\x01", segment)
    quotes = [m.start() for m in _ANY_QUOTE.finditer(masked)]
    if not quotes:
        return (VALUE if inside and segment else segment), inside
    open_at_end = inside != (len(quotes) % 2 == 1)
    head = VALUE if inside else segment[: quotes[0]]
    tail = VALUE if open_at_end else segment[quotes[-1] + 1 :]
    return head + VALUE + tail, open_at_end


def without_literals(text: str, identifiers: Iterable[str] = ()) -> str:
    """``text`` with every quoted literal replaced by ``<value>`` except quoted
    ``identifiers``, and with unquoted e-mail addresses, digit runs (four or more digits)
    and ``=(…)`` key values removed too."""
    if not text:
        return text
    with _KNOWN_LOCK:
        known = [*_KNOWN, *identifiers]
    protected, kept = _protect(text, known)
    lines = []
    for line in protected.split("\n"):
        parts = _PLACEHOLDER.split(line)  # text, name, text, name, ..., text
        inside = False
        for i in range(0, len(parts), 2):
            parts[i], inside = _strip_segment(parts[i], inside)
        for i in range(1, len(parts), 2):
            parts[i] = f"\x00{parts[i]}\x00"
        line = "".join(parts)
        line = _KEY_VALUE.sub(f"=({VALUE})", line)
        line = _EMAIL.sub(VALUE, line)
        line = _DIGITS.sub(lambda m: VALUE if _digit_count(m.group()) >= 4 else m.group(), line)
        lines.append(line)
    out = _REPEATED.sub(VALUE, "\n".join(lines))
    return _PLACEHOLDER.sub(lambda m: kept.get(m.group(), VALUE), out)


def _digit_count(text: str) -> int:
    return sum(c.isdigit() for c in text)


__all__ = ["VALUE", "register_identifiers", "without_literals"]
