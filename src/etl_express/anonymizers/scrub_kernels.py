"""The Arrow kernels ``ScrubPII``'s rules run on: replacing matches (by RE2, or by the compiled
scanners over the Arrow buffers), cutting texts into pieces around candidate values so that
whole columns of candidates are judged at once, and the cheap gates that pick the rows worth
scanning. Everything here works on whole columns: no Python loop over rows."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _speedups
from .._arrays import string_array
from .buffers import (
    any_true,
    bool_array,
    bool_values,
    false_if_null,
    int32_array,
    null_string,
    take_indices,
)
from .scrub_rules import NOT_PII_BEFORE, NOT_PII_WORDS, PLACEHOLDERS, PREFILTER, Program, Rule

# Marks cut a text into pieces: text, value, text, value, ..., text. NUL cannot be stored in
# PostgreSQL text anyway; a NUL in a scanned value is replaced by U+FFFD first.
MARK = "\x00"
# (pieces, positions of the values) -> (which values to replace, their replacements)
#: the empty separator of ``binary_join``, as an Arrow scalar (a Python "" would be converted,
#: and pyarrow imports pandas to convert a Python value)
_EMPTY = string_array([""])[0]
ReplaceFn = Callable[[pa.Array, np.ndarray], tuple[np.ndarray, pa.Array]]


def replace_pieces(texts: pa.Array, pattern: str, rewrite: str, replace: ReplaceFn) -> pa.Array:
    """Replace the values that ``pattern`` finds, deciding for all of them at once.

    ``rewrite`` wraps each value in NUL marks; the marked texts are split into pieces (text,
    value, text, ..., text), ``replace`` says which values to replace and by what, and the
    pieces are joined again. Everything is an Arrow or numpy kernel: no loop over rows.
    """
    found = false_if_null(pc.match_substring_regex(texts, pattern))
    if not any_true(found):
        return texts
    rows = pc.filter(texts, found)
    parts = pc.split_pattern(pc.replace_substring_regex(rows, pattern, rewrite), MARK)
    offsets = np.frombuffer(
        parts.buffers()[1], dtype=np.int32, count=len(parts) + 1, offset=parts.offset * 4
    ).astype(np.int64)
    pieces = parts.flatten()
    counts = np.diff(offsets)
    position = np.arange(len(pieces)) - np.repeat(offsets[:-1] - offsets[0], counts)
    value_at = np.flatnonzero(position % 2 == 1)
    if not len(value_at):
        return texts
    chosen, replacements = replace(pieces, value_at)
    if not chosen.any():
        return texts
    mask = np.zeros(len(pieces), dtype=bool)
    mask[value_at[chosen]] = True
    pieces = pc.replace_with_mask(pieces, bool_array(mask), replacements.filter(bool_array(chosen)))
    lists = pa.ListArray.from_arrays(int32_array(offsets - offsets[0]), pieces)
    joined = pc.binary_join(lists, _EMPTY)
    return pc.replace_with_mask(texts, found, joined)


def replace_emails_native(texts: pa.Array, rule: Rule) -> pa.Array:
    """The email rule by the compiled scanner, with RE2 for the rows it is unsure of (a
    non-ASCII character next to a candidate, which RE2's ``\\p{L}`` may count in)."""
    offsets, data = _speedups.string_buffers(texts)
    new_offsets, new_data, unsure = _speedups.native.replace_ascii_emails(  # type: ignore[union-attr]
        offsets, len(texts), data, PLACEHOLDERS[rule.kind].encode(), _speedups.output_buffer
    )
    out = _speedups.string_result(texts, new_offsets, new_data)
    return on_rows(out, _speedups.row_flags(texts, unsure), lambda rows: replace_re2(rows, rule))


def replace_program_native(texts: pa.Array, program: Program, placeholder: str) -> pa.Array:
    """A rule mirrored by a token program, replaced by the compiled matcher."""
    offsets, data = _speedups.string_buffers(texts)
    return _speedups.string_result(
        texts,
        *_speedups.native.replace_program(  # type: ignore[union-attr]
            offsets,
            len(texts),
            data,
            program.code,
            program.first,
            program.min_len,
            placeholder.encode(),
            _speedups.output_buffer,
        ),
    )


def replace_re2(texts: pa.Array, rule: Rule) -> pa.Array:
    """``rule``'s matches replaced by its placeholder, by RE2 (without capture groups when
    the kept context is empty: half the cost)."""
    placeholder = PLACEHOLDERS[rule.kind]
    bare = rule.bare
    if bare is not None:
        return pc.replace_substring_regex(texts, bare, placeholder)
    return pc.replace_substring_regex(texts, rule.pattern, rf"\1{placeholder}\3")


def gates(
    arr: pa.Array, special: bytes | None = None
) -> tuple[pa.Array, pa.Array | None, pa.Array | None]:
    """Which rows :data:`PREFILTER` picks, and (compiled path only) which hold a passport
    context word and, given the bitmap of :func:`.textfold.special_rows`, which hold a
    character it flags, all three in one pass over the text; nulls are not picked."""
    if _speedups.native is None:
        return false_if_null(pc.match_substring_regex(arr, PREFILTER)), None, None
    offsets, data = _speedups.string_buffers(arr)
    if special is None:
        picked, context = _speedups.native.scrub_gates(offsets, len(arr), data)
        return _speedups.row_flags(arr, picked), _speedups.row_flags(arr, context), None
    picked, context, flagged = _speedups.native.scrub_gates(offsets, len(arr), data, special)
    return (
        _speedups.row_flags(arr, picked),
        _speedups.row_flags(arr, context),
        _speedups.row_flags(arr, flagged),
    )


def digit_runs(texts: pa.Array, min_digits: int = 10) -> pa.Array | None:
    """Rows where ``min_digits`` digits or more stand in a run of digits, spaces and dashes
    (every CHECKSUM_CANDIDATE match has ten); ``None`` without the compiled extension."""
    if _speedups.native is None:
        return None
    offsets, data = _speedups.string_buffers(texts)
    return _speedups.row_flags(
        texts, _speedups.native.digit_runs(offsets, len(texts), data, min_digits)
    )


def contains_any(texts: pa.Array, literals: tuple[str, ...]) -> pa.Array:
    """Rows holding any of ``literals`` (nulls are not): the compiled byte search, several
    times cheaper than a substring search or RE2 over every row, or one RE2 pass without it."""
    if _speedups.native is None:
        any_literal = "|".join(re.escape(literal) for literal in literals)
        return false_if_null(pc.match_substring_regex(texts, any_literal))
    offsets, data = _speedups.string_buffers(texts)
    flags = np.zeros(len(texts), dtype=np.bool_)
    for literal in literals:
        found = _speedups.native.rows_containing(offsets, len(texts), data, literal.encode())
        flags |= np.frombuffer(found, dtype=np.bool_)
    return _speedups.row_flags(texts, flags.tobytes())


def not_pii_words(texts: pa.Array, before: str = "") -> pa.Array | None:
    """Rows that can match a not-PII context pattern: they hold one of :data:`NOT_PII_WORDS`
    (before the last ``before``, when given: the placeholder a context word must precede),
    by the compiled byte scan; ``None`` without the compiled extension."""
    if _speedups.native is None:
        return None
    offsets, data = _speedups.string_buffers(texts)
    flags = _speedups.native.rows_with_words(
        offsets, len(texts), data, "\0".join(NOT_PII_WORDS).encode(), before.encode()
    )
    return _speedups.row_flags(texts, flags)


def on_rows(
    texts: pa.Array, rows: pa.Array | None, apply: Callable[[pa.Array], pa.Array]
) -> pa.Array:
    """``apply`` on the rows flagged in ``rows`` only (all rows when ``None``). When ``apply``
    hands back the very array it was given (it found nothing to change), ``texts`` is returned
    as it is, without writing the same values back into a copy of it."""
    if rows is None:
        return apply(texts)
    if not any_true(rows):
        return texts
    subset = pc.filter(texts, rows)
    changed = apply(subset)
    if changed is subset:
        return texts
    return replace_rows(texts, rows, changed)


def replace_rows(texts: pa.Array, rows: pa.Array, new: pa.Array) -> pa.Array:
    """``pc.replace_with_mask(texts, rows, new)``: the rows flagged in ``rows`` (no nulls)
    replaced by the values of ``new`` (no nulls), in order. The compiled merge copies each
    row once, several times cheaper than pyarrow's kernel, which appends the rows one by one
    to a builder (a tenth of a scrub's CPU when it writes the picked rows back)."""
    if _speedups.native is None or rows.null_count or new.null_count:
        return pc.replace_with_mask(texts, rows, new)
    offsets, data = _speedups.string_buffers(texts)
    new_offsets, new_data = _speedups.string_buffers(new)
    merged_offsets, merged_data = _speedups.native.merge_rows(
        offsets,
        len(texts),
        data,
        bool_values(rows).view(np.uint8),
        new_offsets,
        len(new),
        new_data,
        _speedups.output_buffer,
    )
    out = _speedups.string_array(len(texts), merged_offsets, merged_data)
    if texts.null_count:  # null where texts is, except on the rows replaced
        out = pc.if_else(pc.or_(pc.is_valid(texts), rows), out, null_string())
    return out


def has_nul(texts: pa.Array) -> bool:
    """Whether any value holds a NUL byte (one scan of the data buffer, no copy)."""
    offsets, data = _speedups.string_buffers(texts)
    start, end = int(offsets[0]), int(offsets[-1])
    return (
        end > start
        and not np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start).all()
    )


def touches_digits(pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
    """Whether the piece before a value ends with a digit or the piece after starts with one."""
    before = pc.utf8_slice_codeunits(pieces.take(take_indices(value_at - 1)), -1, 2**31 - 1)
    after = pc.utf8_slice_codeunits(pieces.take(take_indices(value_at + 1)), 0, 1)
    return bool_values(pc.ascii_is_decimal(before)) | bool_values(pc.ascii_is_decimal(after))


def introduced_as(pieces: pa.Array, value_at: np.ndarray, pattern: str) -> np.ndarray:
    """Whether the text right before each value (its last 40 characters) matches ``pattern``."""
    before = pc.utf8_slice_codeunits(pieces.take(take_indices(value_at - 1)), -40, 2**31 - 1)
    return bool_values(pc.match_substring_regex(before, pattern))


def introduced_as_not_pii(pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
    """Whether the text right before a value names it as something else (an order, a
    barcode, a timestamp...: :data:`NOT_PII_CONTEXT`)."""
    return introduced_as(pieces, value_at, NOT_PII_BEFORE)


def inside_token(pieces: pa.Array, value_at: np.ndarray, hex_len: int) -> np.ndarray:
    """Whether a value lies inside a pseudonym ``entity:<hex_len hex digits>`` an earlier rule
    wrote (its digits could pass for a number): the hex digits before it after the colon, its
    own and those right after it make exactly ``hex_len``."""
    before = pieces.take(take_indices(value_at - 1))
    value = pieces.take(take_indices(value_at))
    after = pieces.take(take_indices(value_at + 1))
    head = pc.extract_regex(before, rf"[\w.-]:(?P<h>[0-9a-f]{{0,{hex_len - 1}}})$").field("h")
    tail = pc.extract_regex(after, r"^(?P<h>[0-9a-f]*)").field("h")
    # hex digits are ASCII: a piece's length in bytes is its length in characters
    total = _byte_lengths(head) + _byte_lengths(value) + _byte_lengths(tail)
    hex_value = bool_values(pc.match_substring_regex(value, "^[0-9a-f]+$"))
    matched = bool_values(pc.and_(pc.is_valid(head), pc.is_valid(tail)))
    return hex_value & matched & (total == hex_len)


def _byte_lengths(texts: pa.Array) -> np.ndarray:
    """Each value's length in bytes (0 for a null), read from the offsets."""
    offsets, _ = _speedups.string_buffers(texts)
    return np.diff(offsets).astype(np.int64)


def splice(text: str, replacements: list[tuple[int, int, str]]) -> str:
    """``text`` with each span ``(start, end, replacement)`` (in order, apart) replaced."""
    pieces, last = [], 0
    for start, end, replacement in replacements:
        pieces += [text[last:start], replacement]
        last = end
    return "".join(pieces) + text[last:]


__all__ = [
    "MARK",
    "ReplaceFn",
    "contains_any",
    "digit_runs",
    "gates",
    "has_nul",
    "inside_token",
    "introduced_as",
    "introduced_as_not_pii",
    "not_pii_words",
    "on_rows",
    "replace_emails_native",
    "replace_pieces",
    "replace_program_native",
    "replace_re2",
    "replace_rows",
    "splice",
    "touches_digits",
]
