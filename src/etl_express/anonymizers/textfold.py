"""Unicode look-alikes folded to ASCII, one code point for one, before ``ScrubPII`` matches.

People and word processors write ``8 916 123 45 67`` with no-break or thin spaces,
``123‑456‑789 64`` with a non-breaking hyphen, ``+7 (916) 123–45–67`` with en dashes and
``４５１２ ３４５６７８`` in full-width digits. Every such character becomes its ASCII twin in a
folded copy of the text (:func:`fold`): Unicode spaces (``Zs``, and the invisible U+200B,
U+2060, U+FEFF) a space, dashes (``Pd``, U+2212 minus, soft hyphen) a hyphen, decimal digits
of any script (``Nd``) their ASCII digit, full-width ASCII forms (``＠``, ``＋``, ``（``) the
character they stand for. One code point stays one code point, so a span found in the folded
copy is the same span of the original: the rules match the folded copy, and the original text
is changed on exactly the spans they found (:func:`marker_spans`), everything else kept as
written.

Rows holding none of these characters (almost all) never pay for this: one pass over the
Arrow buffers flags the rows that do (:func:`special_rows`, compiled where the extension is
built, an RE2 class otherwise).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .. import _speedups
from .buffers import false_if_null
from .scrub_rules import KINDS

# What is folded (Unicode 15; tests/anonymizers/test_textfold.py checks these against
# unicodedata): the zero of every script's decimal digits (Nd, ten in a row), the space
# separators (Zs) and the invisible characters people and copy-paste put inside numbers, and
# the dashes (Pd, the minus sign, the soft hyphen).
DIGIT_ZEROS = (
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
)  # fmt: skip
SPACES = ((0xA0, 0xA0), (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200B), (0x202F, 0x202F),
          (0x205F, 0x2060), (0x3000, 0x3000), (0xFEFF, 0xFEFF))  # fmt: skip
DASHES = ((0xAD, 0xAD), (0x58A, 0x58A), (0x5BE, 0x5BE), (0x1400, 0x1400), (0x1806, 0x1806),
          (0x2010, 0x2015), (0x2212, 0x2212), (0x2E17, 0x2E17), (0x2E1A, 0x2E1A), (0x2E3A, 0x2E3B),
          (0x2E40, 0x2E40), (0x2E5D, 0x2E5D), (0x301C, 0x301C), (0x3030, 0x3030), (0x30A0, 0x30A0),
          (0xFE31, 0xFE32), (0xFE58, 0xFE58), (0xFE63, 0xFE63), (0x10EAD, 0x10EAD))  # fmt: skip
# full-width forms of printable ASCII (U+FF01..U+FF5E, digits included) and the small forms
_FULL_WIDTH = (0xFF01, 0xFF5E)
_SMALL_FORMS = {0xFE52: ".", 0xFE59: "(", 0xFE5A: ")", 0xFE62: "+", 0xFE6B: "@"}

#: one marker character per kind: a match found in the folded text is written as a run of its
#: kind's marker, as long as the match, so that its span carries over to the original
MARKERS = {kind: chr(0xE000 + i) for i, kind in enumerate(KINDS)}
_KIND_OF_MARKER = {m: k for k, m in MARKERS.items()}
_MARKER_RUN = re.compile("([" + "".join(MARKERS.values()) + r"])\1*")
_REPLACEMENT = 0xFFFD  # what a NUL or a marker already in the text becomes in the folded copy


@functools.lru_cache(maxsize=1)
def fold_table() -> dict[int, int]:
    """``str.translate`` table: every folded code point -> its ASCII twin."""
    table = {cp: cp - 0xFEE0 for cp in range(_FULL_WIDTH[0], _FULL_WIDTH[1] + 1)}
    for zero in DIGIT_ZEROS:
        table.update({zero + d: ord("0") + d for d in range(10)})
    for ranges, to in ((SPACES, " "), (DASHES, "-")):
        for first, last in ranges:
            table.update(dict.fromkeys(range(first, last + 1), ord(to)))
    table.update({cp: ord(to) for cp, to in _SMALL_FORMS.items()})
    return table


@functools.lru_cache(maxsize=1)
def _translation() -> dict[int, int]:
    """:func:`fold_table`, plus NUL and the marker characters made U+FFFD (never a match)."""
    out = dict(fold_table())
    out[0] = _REPLACEMENT
    out.update({ord(m): _REPLACEMENT for m in MARKERS.values()})
    return out


@functools.lru_cache(maxsize=1)
def special_bitmap() -> bytes:
    """The folded code points as a bitmap (bit ``cp`` of byte ``cp // 8``), as the compiled
    :func:`special_rows` (and ``ScrubPII``'s gates, in the same pass) take them."""
    bits = bytearray(max(fold_table()) // 8 + 1)
    for cp in fold_table():
        bits[cp >> 3] |= 1 << (cp & 7)
    return bytes(bits)


@functools.lru_cache(maxsize=1)
def special_class() -> str:
    """An RE2 class of the folded code points (the pure-Python gate)."""
    points = sorted(fold_table())
    ranges: list[tuple[int, int]] = []
    for cp in points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return (
        "["
        + "".join(f"\\x{{{a:x}}}" + (f"-\\x{{{b:x}}}" if b > a else "") for a, b in ranges)
        + "]"
    )


def special_rows(arr: pa.Array) -> pa.Array:
    """Which values hold a character :func:`fold` changes (nulls: false)."""
    if _speedups.native is None:
        return false_if_null(pc.match_substring_regex(arr, special_class()))
    offsets, data = _speedups.string_buffers(arr)
    return _speedups.row_flags(
        arr, _speedups.native.special_rows(offsets, len(arr), data, special_bitmap())
    )


def fold(text: str) -> str:
    """``text`` with every look-alike character made its ASCII twin, and NUL and the marker
    characters U+FFFD; as many code points as ``text``."""
    return text.translate(_translation())


def fold_all(texts: Sequence[str]) -> list[str]:
    """:func:`fold` of each of ``texts``; one check of their joined text when none holds a
    character :func:`fold` changes (ASCII other than NUL: the usual sample), not one
    ``translate`` per text."""
    joined = "".join(texts)
    if joined.isascii() and "\0" not in joined:
        return list(texts)
    return [fold(t) for t in texts]


def marker_spans(masked: str) -> list[tuple[int, int, str]]:
    """The runs of marker characters in a text scrubbed in marker mode: (start, end, kind)."""
    return [(m.start(), m.end(), _KIND_OF_MARKER[m.group(1)]) for m in _MARKER_RUN.finditer(masked)]


def markers_found(masked: str) -> set[str]:
    """The kinds whose markers a text scrubbed in marker mode holds."""
    return {_KIND_OF_MARKER[c] for c in set(masked) & _KIND_OF_MARKER.keys()}


__all__ = [
    "DASHES",
    "DIGIT_ZEROS",
    "MARKERS",
    "SPACES",
    "fold",
    "fold_all",
    "fold_table",
    "marker_spans",
    "markers_found",
    "special_bitmap",
    "special_class",
    "special_rows",
]
