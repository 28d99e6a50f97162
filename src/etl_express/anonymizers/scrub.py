"""``ScrubPII``: find and replace personal data inside free text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr

from .. import _speedups
from .._validate import name_list
from ..errors import AnonymizationError
from ..secrets import SecretRef
from .base import Anonymizer
from .columns import canonical_all, column_index
from .detectors import KIND_NAMES, classify_many, luhn_ok, snils_low_range
from .normalize import digits_only
from .pseudonymize import KeyedHasher

KINDS = ("email", "phone", "passport", "snils", "inn", "ogrn", "card")
#: optional kinds found by a NER model (``pip install "etl-express[ner]"``; see :mod:`.ner`)
NER_KINDS = ("name", "address")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in (*KINDS, *NER_KINDS)}

# One cheap pass decides which rows can hold personal data at all: an "@", ten or more
# digits in a run of digits and phone-like separators (spaces, brackets, dashes, dots), or a
# passport context word. Every rule's match holds one of these. Only those rows are scanned.
PREFILTER = r"(?i)@|[0-9](?:[\s().\-]*[0-9]){9}|паспорт|серия|серии|выдан"


@dataclass(frozen=True)
class _Program:
    """A rule's regular expression as ``_native.replace_program`` runs it: alternatives, each
    a sequence of tokens ``(bytes of a class, min, max)`` or ``None`` for ``\\b`` (ASCII word
    boundary). Written by hand next to the RE2 pattern it mirrors; tests fuzz both."""

    alternatives: tuple[tuple[tuple[bytes, int, int] | None, ...], ...]

    @property
    def code(self) -> bytes:
        out = bytearray([len(self.alternatives)])
        for alternative in self.alternatives:
            out.append(len(alternative))
            for token in alternative:
                out += (
                    bytes([1, 0, 0]) + bytes(32)
                    if token is None
                    else bytes([0, token[1], token[2]]) + _bits(token[0])
                )
        return bytes(out)

    @property
    def first(self) -> bytes:
        """The bytes a match can start with (each alternative's first class, which is required)."""
        chars = b""
        for alternative in self.alternatives:
            head = next(t for t in alternative if t is not None)
            assert head[1] >= 1, "a program's first class must be required"
            chars += head[0]
        return _bits(chars)

    @property
    def min_len(self) -> int:
        return min(
            sum(t[1] for t in alternative if t is not None) for alternative in self.alternatives
        )


def _bits(chars: bytes) -> bytes:
    bits = bytearray(32)
    for c in chars:
        bits[c >> 3] |= 1 << (c & 7)
    return bytes(bits)


Token = tuple[bytes, int, int] | None


def _token_re(token: Token) -> str:
    """The RE2 text of one token (``None``: ``\\b``)."""
    if token is None:
        return r"\b"
    chars, low, high = token
    if chars == b"0123456789":
        body = "[0-9]"
    else:
        escaped = "".join(
            {9: r"\t", 10: r"\n", 12: r"\f", 13: r"\r"}.get(
                c, "\\" + chr(c) if chr(c) in "()+-.[]" else chr(c)
            )
            for c in chars
        )
        body = escaped if len(chars) == 1 else f"[{escaped}]"
    if (low, high) == (1, 1):
        return body
    if (low, high) == (0, 1):
        return body + "?"
    return body + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")


def _program_rule(kind: str, program: _Program, literal: str | None = None) -> _Rule:
    """A rule whose RE2 pattern is written from the same tokens as its compiled program, so
    the two match exactly the same (top-level alternatives tried in order, each a sequence of
    greedy tokens: RE2's leftmost-first semantics and the matcher's backtracking agree)."""
    alternatives = "|".join("".join(_token_re(t) for t in alt) for alt in program.alternatives)
    return _Rule(kind, f"()((?:{alternatives}))()", literal=literal, native=program)


# Phones: a prefix (+7, 8 or 7, or a 9xx mobile code), then the seven subscriber digits
# grouped 3-2-2 (also 3-4 and 7) or 2-2-3, separated by spaces, dashes or dots.
_SEP = (b"\t\n\f\r -.", 0, 1)  # [\s\-.]?  (RE2's \s is [\t\n\f\r ])
_D2, _D3 = (b"0123456789", 2, 2), (b"0123456789", 3, 3)
_TAILS = (
    (_SEP, _D3, _SEP, _D2, _SEP, _D2, None),
    (_SEP, _D2, _SEP, _D2, _SEP, _D3, None),
)
_CODE = (_SEP, (b"(", 0, 1), _D3, (b")", 0, 1))
_PLUS7_PHONE = _Program(tuple(((b"+", 1, 1), (b"7", 1, 1), *_CODE, *t) for t in _TAILS))
_LOCAL_PHONE = _Program(
    tuple(
        (*prefix, *t)
        for prefix in (
            (None, (b"78", 1, 1), *_CODE),  # \b[78] code
            ((b"(", 1, 1), (b"9", 1, 1), _D2, (b")", 1, 1)),  # (9xx)
            (None, (b"9", 1, 1), _D2),  # \b9xx
        )
        for t in _TAILS
    )
)


@dataclass(frozen=True)
class _Rule:
    """An RE2 pattern with three groups: kept text before, the value, kept text after.

    ``literal``: a substring every match contains (``"@"`` for emails); rows without it are
    not scanned, and a plain substring search is several times cheaper than RE2.
    """

    kind: str
    pattern: str
    literal: str | None = None
    native: _Program | None = None

    @property
    def bare(self) -> str | None:
        """The value pattern alone when the kept groups are empty (``()(...)()``): RE2
        rewrites a match without capture groups at about half the cost."""
        p = self.pattern
        if p.startswith("()(") and p.endswith(")()") and _balanced(p[3:-3]):
            return p[3:-3]
        return None


def _balanced(pattern: str) -> bool:
    """Whether ``pattern``'s parentheses pair up on their own (escapes and classes skipped)."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


# Between a passport's series and its number: separators and a "№"/"номер" at most — never
# other words ("серии 45 12, партия 123456" is a product batch, not a passport).
_SERIES_TO_NUMBER = r"[\s,.:;]{0,3}(?:№|N|No\.?|номер|ном\.)?[\s.:]{0,3}"

# Applied in this order: emails first (they may hold digits), then passports (their digits
# would otherwise pass for an INN), then numbers with check digits, then phones.
_RULES_BEFORE_CHECKSUMS = (
    _Rule("email", r"()([\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+)()", literal="@"),
    _Rule(
        "passport",
        r"(?i)((?:паспорт\p{L}*|серия|серии)[^0-9]{0,30}?)"
        r"([0-9]{2} ?[0-9]{2}" + _SERIES_TO_NUMBER + r"[0-9]{6})([^0-9]|$)",
    ),
    _Rule("passport", r"\b()([0-9]{2} ?[0-9]{2} ?(?:№ ?)?[0-9]{6})(\s*,?\s*(?i:выдан))"),
    _program_rule("phone", _PLUS7_PHONE, literal="+7"),
)
_RULES_AFTER_CHECKSUMS = (_program_rule("phone", _LOCAL_PHONE),)

# Numbers whose check digits decide whether they are an identifier: a formatted SNILS, a
# card in groups of four, or a bare run of 10 to 19 digits. Each match is cut out as a piece
# and verified in bulk (detectors.classify_many); a match touching more digits is no number.
CHECKSUM_CANDIDATE = (
    r"[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2}|[0-9]{4}(?:[ -][0-9]{4}){3}"
    r"|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}|[0-9]{10,19}"
)
# A SNILS written as XXX-XXX-XXX YY: in the low range (up to 001-001-998, no check number)
# only this spelling counts, a bare run of eleven digits there is too often something else.
_FORMATTED_SNILS = r"^[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2}$"

# Words right before a number that say it is not personal data: orders, articles, invoices,
# barcodes, batches, timestamps, tracking and session numbers. A number so introduced is
# left alone by the check-digit and phone rules ("заказ №89161234567", "ts=1700000000",
# "штрихкод 4601234567893").
NOT_PII_CONTEXT = (
    r"(?i)(?:заказ\p{L}*|арт\.|артикул\p{L}*|парти[яиюей]\p{L}*|накладн\p{L}*"
    r"|сч[её]т\p{L}*(?:-фактур\p{L}*)?|штрих-?код\p{L}*|ean(?:-?13)?|barcode|gtin|sku"
    r"|order|invoice|ts|timestamp|unix(?:\s+time)?|epoch|метк\p{L}*\s+времени|created_at"
    r"|updated_at|трек\p{L}*(?:-номер\p{L}*)?|tracking|id\s+сессии|сесси\p{L}*|лог"
    r"|код\s+товара|сборк\p{L}*|build|версия)"
)
_NOT_PII_BEFORE = NOT_PII_CONTEXT + r"[\s:=#№.\-]*(?:(?:№|no\.?|номер)[\s:=#.\-]*)?$"
# ... and words that say it is a card: a Luhn-valid number of 13-19 digits so introduced is a
# card even where its leading digits look like something else (a 13-digit Visa that is also
# a valid EAN-13 barcode).
_CARD_BEFORE = r"(?i)(?:карт\p{L}*|card)[\s:=#№.\-]*(?:(?:№|no\.?|номер)[\s:=#.\-]*)?$"

# Marks cut a text into pieces: text, value, text, value, ..., text. NUL cannot be stored in
# PostgreSQL text anyway; a NUL in a scanned value is replaced by U+FFFD first.
_MARK = "\x00"
# (pieces, positions of the values) -> (which values to replace, their replacements)
ReplaceFn = Callable[[pa.Array, np.ndarray], tuple[np.ndarray, pa.Array]]


def _replace_pieces(texts: pa.Array, pattern: str, rewrite: str, replace: ReplaceFn) -> pa.Array:
    """Replace the values that ``pattern`` finds, deciding for all of them at once.

    ``rewrite`` wraps each value in NUL marks; the marked texts are split into pieces (text,
    value, text, ..., text), ``replace`` says which values to replace and by what, and the
    pieces are joined again. Everything is an Arrow or numpy kernel: no loop over rows.
    """
    found = pc.fill_null(pc.match_substring_regex(texts, pattern), False)
    if not pc.any(found).as_py():
        return texts
    rows = pc.filter(texts, found)
    parts = pc.split_pattern(pc.replace_substring_regex(rows, pattern, rewrite), _MARK)
    offsets = parts.offsets.to_numpy().astype(np.int64)
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
    pieces = pc.replace_with_mask(pieces, pa.array(mask), replacements.filter(pa.array(chosen)))
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array(offsets - offsets[0], pa.int32()), pieces), ""
    )
    return pc.replace_with_mask(texts, found, joined)


def _replace_emails_native(texts: pa.Array, rule: _Rule) -> pa.Array:
    """The email rule by the compiled scanner, with RE2 for the rows it is unsure of (a
    non-ASCII character next to a candidate, which RE2's ``\\p{L}`` may count in)."""
    offsets, data = _speedups.string_buffers(texts)
    new_offsets, new_data, unsure = _speedups.native.replace_ascii_emails(  # type: ignore[union-attr]
        offsets, len(texts), data, PLACEHOLDERS[rule.kind].encode()
    )
    out = _speedups.string_result(texts, new_offsets, new_data)
    return _on_rows(out, _speedups.row_flags(texts, unsure), lambda rows: _replace_re2(rows, rule))


def _replace_program_native(texts: pa.Array, program: _Program, placeholder: str) -> pa.Array:
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
        ),
    )


def _replace_re2(texts: pa.Array, rule: _Rule) -> pa.Array:
    """``rule``'s matches replaced by its placeholder, by RE2 (without capture groups when
    the kept context is empty: half the cost)."""
    placeholder = PLACEHOLDERS[rule.kind]
    bare = rule.bare
    if bare is not None:
        return pc.replace_substring_regex(texts, bare, placeholder)
    return pc.replace_substring_regex(texts, rule.pattern, rf"\1{placeholder}\3")


PASSPORT_CONTEXT = r"(?i)паспорт|серия|серии|выдан"  # every passport rule needs one of these


def _gates(arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Which rows :data:`PREFILTER` picks, and (compiled path only) which hold a passport
    context word; nulls are not picked."""
    if _speedups.native is None:
        return pc.fill_null(pc.match_substring_regex(arr, PREFILTER), False), None
    offsets, data = _speedups.string_buffers(arr)
    picked, context = _speedups.native.scrub_gates(offsets, len(arr), data)
    return _speedups.row_flags(arr, picked), _speedups.row_flags(arr, context)


def _digit_runs(texts: pa.Array) -> pa.Array | None:
    """Rows where a check-digit candidate can be (ten digits or more in a run of digits,
    spaces and dashes; every CHECKSUM_CANDIDATE match is one); ``None`` without the
    compiled extension."""
    if _speedups.native is None:
        return None
    offsets, data = _speedups.string_buffers(texts)
    return _speedups.row_flags(texts, _speedups.native.digit_runs(offsets, len(texts), data, 10))


def _on_rows(
    texts: pa.Array, rows: pa.Array | None, apply: Callable[[pa.Array], pa.Array]
) -> pa.Array:
    """``apply`` on the rows flagged in ``rows`` only (all rows when ``None``)."""
    if rows is None:
        return apply(texts)
    if not pc.any(rows).as_py():
        return texts
    return pc.replace_with_mask(texts, rows, apply(pc.filter(texts, rows)))


def _has_nul(texts: pa.Array) -> bool:
    """Whether any value holds a NUL byte (one scan of the data buffer, no copy)."""
    offsets, data = _speedups.string_buffers(texts)
    start, end = int(offsets[0]), int(offsets[-1])
    return (
        end > start
        and not np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start).all()
    )


def _touches_digits(pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
    """Whether the piece before a value ends with a digit or the piece after starts with one."""
    before = pc.utf8_slice_codeunits(pieces.take(pa.array(value_at - 1)), -1, 2**31 - 1)
    after = pc.utf8_slice_codeunits(pieces.take(pa.array(value_at + 1)), 0, 1)
    return pc.ascii_is_decimal(before).to_numpy(zero_copy_only=False) | pc.ascii_is_decimal(
        after
    ).to_numpy(zero_copy_only=False)


def _introduced_as(pieces: pa.Array, value_at: np.ndarray, pattern: str) -> np.ndarray:
    """Whether the text right before each value (its last 40 characters) matches ``pattern``."""
    before = pc.utf8_slice_codeunits(pieces.take(pa.array(value_at - 1)), -40, 2**31 - 1)
    return pc.fill_null(pc.match_substring_regex(before, pattern), False).to_numpy(
        zero_copy_only=False
    )


def _introduced_as_not_pii(pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
    """Whether the text right before a value names it as something else (an order, a
    barcode, a timestamp...: :data:`NOT_PII_CONTEXT`)."""
    return _introduced_as(pieces, value_at, _NOT_PII_BEFORE)


def _inside_token(pieces: pa.Array, value_at: np.ndarray, hex_len: int) -> np.ndarray:
    """Whether a value lies inside a pseudonym ``entity:<hex_len hex digits>`` an earlier rule
    wrote (its digits could pass for a number): the hex digits before it after the colon, its
    own and those right after it make exactly ``hex_len``."""
    before = pieces.take(pa.array(value_at - 1))
    value = pieces.take(pa.array(value_at))
    after = pieces.take(pa.array(value_at + 1))
    head = pc.extract_regex(before, rf"[\w.-]:(?P<h>[0-9a-f]{{0,{hex_len - 1}}})$").field("h")
    tail = pc.extract_regex(after, r"^(?P<h>[0-9a-f]*)").field("h")
    total = pc.add(pc.add(pc.utf8_length(head), pc.utf8_length(value)), pc.utf8_length(tail))
    inside = pc.and_(pc.match_substring_regex(value, "^[0-9a-f]+$"), pc.equal(total, hex_len))
    return pc.fill_null(inside, False).to_numpy(zero_copy_only=False)


class ScrubPII(Anonymizer):
    """Finds personal data inside free text and replaces it.

    Logic: one vectorized RE2 pass (``pyarrow.compute.match_substring_regex``) picks the rows
    that could hold personal data at all — an ``@``, ten or more digits with phone-like
    separators, or a passport context word; the other rows are not touched again. On the
    picked rows, RE2 replacements remove emails, passport series and numbers next to
    ``паспорт``/``серия``/``выдан``, and Russian phones (``+7``, ``8``, ``9xx``, with
    spaces, brackets, dashes). Runs of digits that could be a SNILS, an INN (10 or 12
    digits), an OGRN/OGRNIP or a bank card (16-19 digits) are cut out of the texts by one
    RE2 rewrite and a split, and their check digits are verified all at once as numpy matrix
    operations (SNILS check number, INN weights, OGRN mod 11/13, Luhn): a number with a
    wrong check digit, or one that is part of a longer run of digits, is left alone. There
    is no Python loop over rows. Where the optional compiled extension is built, the
    prefilter, the passport context check and the email and phone rules run as byte scanners
    over the Arrow buffers that reproduce the RE2 patterns' matches exactly (RE2 still handles
    an email touching non-ASCII characters, and the passport rules on rows with a context word). Replacements are typed placeholders (``<EMAIL>``,
    ``<PHONE>``, ``<SNILS>``, ``<INN>``, ``<OGRN>``, ``<PASSPORT>``, ``<CARD>``) or, with
    ``replace="pseudonym"``, the same keyed tokens :class:`Pseudonymize` gives, so a person
    mentioned in a note still joins. Only the found text changes; nothing is kept that could
    restore it.

    Args:
        columns: free-text columns to scrub, in any spelling (``"Comment"`` is ``comment``);
            a column the batch lacks is an ``ETLConfigError`` raised before anything is written.
        kinds: what to look for (default: all of ``email, phone, passport, snils, inn, ogrn, card``).
        replace: ``"placeholder"`` (default) or ``"pseudonym"`` (needs ``key``).
        key: for pseudonyms, ``etl.secret(...)`` or a ``SecretStr`` of at least 32 bytes.

    Example::

        ScrubPII(["notes", "comment"])
    """

    #: free text only: never covers a tagged column or one derived from one
    protects = "free_text"

    def __init__(
        self,
        columns: str | Sequence[str],
        *,
        kinds: Iterable[str] = KINDS,
        replace: str = "placeholder",
        key: SecretRef | SecretStr | None = None,
    ):
        self.columns = canonical_all(name_list(columns, "columns", type(self).__name__))
        self.kinds = tuple(kinds)
        unknown = [k for k in self.kinds if k not in (*KINDS, *NER_KINDS)]
        if unknown:
            raise AnonymizationError(
                f"ScrubPII: unknown kind(s) {unknown}",
                hint=f"choose from {list(KINDS)} (and the optional {list(NER_KINDS)})",
            )
        self._ner_kinds = {k for k in self.kinds if k in NER_KINDS}
        if "name" in self._ner_kinds:
            from .ner import check_available

            check_available()
        if replace not in ("placeholder", "pseudonym"):
            raise AnonymizationError(
                f"ScrubPII: replace={replace!r} is not 'placeholder' or 'pseudonym'"
            )
        if replace == "pseudonym" and key is None:
            raise AnonymizationError(
                "ScrubPII(replace='pseudonym') needs a key", hint="pass key=etl.secret('ANON_KEY')"
            )
        self.replace = replace
        self._hasher = (
            KeyedHasher(key, "ScrubPII") if replace == "pseudonym" and key is not None else None
        )
        self._before = [r for r in _RULES_BEFORE_CHECKSUMS if r.kind in self.kinds]
        self._after = [r for r in _RULES_AFTER_CHECKSUMS if r.kind in self.kinds]
        self._checksum_kinds = {k for k in ("snils", "inn", "ogrn", "card") if k in self.kinds}

    def __repr__(self) -> str:
        return f"ScrubPII(columns={list(self.columns)!r}, kinds={list(self.kinds)!r}, replace={self.replace!r})"

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = column_index(batch.schema, column, "ScrubPII")
            batch = batch.set_column(
                i, pa.field(column, pa.string()), self.scrub(batch.column(i), column)
            )
        return batch

    def scrub(self, arr: pa.Array | pa.ChunkedArray, column: str = "text") -> pa.Array:
        """The scrubbed copy of one text column."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        if not pa.types.is_string(arr.type):
            if pa.types.is_null(arr.type):
                return arr.cast(pa.string())
            raise AnonymizationError(
                f"ScrubPII needs a text column, but column {column!r} is {arr.type}",
                hint="scrub text columns only; use Pseudonymize, Redact or Generalize for typed columns",
            )
        out = self._scrub_patterns(arr)
        if self._ner_kinds:  # optional, loaded only when asked for
            from .ner import scrub_ner

            out = scrub_ner(out, self._ner_kinds, self._ner_replacements)
        return out

    def _ner_replacements(self, values: list[str], kind: str) -> list[str]:
        return self._replacements(pa.array(values, pa.string()), kind).to_pylist()

    def _scrub_patterns(self, arr: pa.Array) -> pa.Array:
        picked, context = _gates(arr)
        if not pc.any(picked).as_py():
            return arr
        texts = pc.filter(arr, picked)
        if _has_nul(texts):
            texts = pc.replace_substring(texts, _MARK, "\ufffd")
        if context is not None:
            context = pc.filter(context, picked)
        for rule in self._before:
            if rule.kind == "passport" and context is not None:
                # passport rules need a context word: run them on the (rare) rows that have one
                texts = _on_rows(texts, context, lambda rows: self._apply(rows, rule))  # noqa: B023
                continue
            texts = self._apply(texts, rule)
        if self._checksum_kinds:
            texts = _on_rows(
                texts,
                _digit_runs(texts),
                lambda rows: _replace_pieces(
                    rows, CHECKSUM_CANDIDATE, f"{_MARK}\\0{_MARK}", self._checksummed
                ),
            )
        for rule in self._after:
            texts = self._apply_unless_introduced(texts, rule)
        return pc.replace_with_mask(arr, picked, texts)

    def _apply_unless_introduced(self, texts: pa.Array, rule: _Rule) -> pa.Array:
        """``rule`` applied, except to values introduced as something else ("заказ
        89161234567"): the rows it changed that hold such a word are redone value by value."""
        out = self._apply(texts, rule)
        changed = pc.fill_null(pc.not_equal(out, texts), False)
        if not pc.any(changed).as_py():
            return out
        redo = pc.and_(
            changed, pc.fill_null(pc.match_substring_regex(texts, NOT_PII_CONTEXT), False)
        )
        if not pc.any(redo).as_py():
            return out

        def chosen(pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
            values = pieces.take(pa.array(value_at))
            keep = _introduced_as_not_pii(pieces, value_at) | self._in_tokens(pieces, value_at)
            return ~keep, self._replacements(values, rule.kind)

        again = _replace_pieces(
            pc.filter(texts, redo), rule.pattern, f"\\1{_MARK}\\2{_MARK}\\3", chosen
        )
        return pc.replace_with_mask(out, redo, again)

    def _apply(self, texts: pa.Array, rule: _Rule) -> pa.Array:
        if self._hasher is None and _speedups.native is not None:
            if rule.kind == "email":
                return _replace_emails_native(texts, rule)
            if rule.native is not None:
                return _replace_program_native(texts, rule.native, PLACEHOLDERS[rule.kind])
        if self._hasher is None:  # match first: replacing is the dearer kernel, run it on hits only
            found = pc.fill_null(
                pc.match_substring(texts, rule.literal)
                if rule.literal
                else pc.match_substring_regex(texts, rule.pattern),
                False,
            )
            return _on_rows(texts, found, lambda rows: _replace_re2(rows, rule))

        def tokens(pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
            values = pieces.take(pa.array(value_at))
            return ~self._in_tokens(pieces, value_at), self._replacements(values, rule.kind)

        return _replace_pieces(texts, rule.pattern, f"\\1{_MARK}\\2{_MARK}\\3", tokens)

    def _checksummed(self, pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """Which candidate numbers are identifiers (check digits verified in bulk), and their
        replacements."""
        values = pieces.take(pa.array(value_at))
        digits = digits_only(values)
        kinds = classify_many(digits)
        low = snils_low_range(digits) & pc.fill_null(
            pc.match_substring_regex(values, _FORMATTED_SNILS), False
        ).to_numpy(zero_copy_only=False)
        kinds[(kinds == 0) & low] = KIND_NAMES.index("snils")
        rest = np.flatnonzero(kinds == 0)
        if len(rest):  # numbers right after "карта" that no other rule took
            carded = rest[_introduced_as(pieces, value_at[rest], _CARD_BEFORE)]
            for i in carded:  # few
                number = digits[i].as_py()
                if 13 <= len(number) <= 19 and luhn_ok(number):
                    kinds[i] = KIND_NAMES.index("card")
        kinds[_touches_digits(pieces, value_at)] = 0
        kinds[self._in_tokens(pieces, value_at)] = 0
        found = np.flatnonzero(kinds != 0)
        if len(found):
            kinds[found[_introduced_as_not_pii(pieces, value_at[found])]] = 0
        out = pa.nulls(len(values), pa.string())
        for code, kind in enumerate(KIND_NAMES):
            if code == 0 or kind not in self._checksum_kinds:
                continue
            mask = kinds == code
            if mask.any():
                replaced = self._replacements(values.filter(pa.array(mask)), kind)
                out = pc.replace_with_mask(out, pa.array(mask), replaced)
        chosen = np.isin(kinds, [KIND_NAMES.index(k) for k in self._checksum_kinds])
        return chosen, out

    def _in_tokens(self, pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
        """Values inside a pseudonym written by an earlier rule (never with placeholders)."""
        if self._hasher is None:
            return np.zeros(len(value_at), dtype=bool)
        return _inside_token(pieces, value_at, 2 * self._hasher.digest_size)

    def _replacements(self, values: pa.Array, kind: str) -> pa.Array:
        """Placeholders, or keyed tokens of the normalized values (as :class:`Pseudonymize`
        gives them), for values found to be of ``kind``."""
        placeholder = pa.scalar(PLACEHOLDERS[kind], pa.string())
        if self._hasher is None:
            return pa.repeat(placeholder, len(values))
        tokens = self._hasher.pseudonymize(values, kind)
        return pc.fill_null(tokens, placeholder)


__all__ = ["KINDS", "NER_KINDS", "PLACEHOLDERS", "ScrubPII"]
