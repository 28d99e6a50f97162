"""What ``ScrubPII`` looks for: its rules, as RE2 patterns and (for the phone rules) as the
token programs the compiled matcher runs, and the context words that say a number is or is not
personal data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

KINDS = ("email", "phone", "passport", "snils", "inn", "ogrn", "card")
#: optional kinds found by a NER model (``pip install "etl-express[ner]"``; see :mod:`.ner`)
NER_KINDS = ("name", "address")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in (*KINDS, *NER_KINDS)}

# One cheap pass decides which rows can hold personal data at all: an "@", ten or more
# digits in a run of digits and phone-like separators (spaces, brackets, dashes, dots), a "+"
# before seven or more such digits (a number of any country), or a passport context word.
# Every rule's match holds one of these. Only those rows are scanned.
PREFILTER = (
    r"(?i)@|[0-9](?:[\s().\-]*[0-9]){9}|\+[\s().\-]*[0-9](?:[\s().\-]*[0-9]){6}"
    r"|паспорт|серия|серии|выдан"
)
PASSPORT_CONTEXT = r"(?i)паспорт|серия|серии|выдан"  # every passport rule needs one of these


@dataclass(frozen=True)
class Program:
    """A rule's regular expression as ``_native.replace_program`` runs it: alternatives, each
    a sequence of tokens ``(bytes of a class, min, max)`` or ``None`` for ``\\b`` (ASCII word
    boundary). Written by hand next to the RE2 pattern it mirrors; tests fuzz both."""

    alternatives: tuple[tuple[tuple[bytes, int, int] | None, ...], ...]

    @cached_property
    def code(self) -> bytes:
        out = bytearray([len(self.alternatives)])
        for alternative in self.alternatives:
            out.append(len(alternative))
            for token in alternative:
                out += (
                    bytes([1, 0, 0]) + bytes(32)
                    if token is None
                    else bytes([0, token[1], token[2]]) + bits_of(token[0])
                )
        return bytes(out)

    @cached_property
    def first(self) -> bytes:
        """The bytes a match can start with (each alternative's first class, which is required)."""
        chars = b""
        for alternative in self.alternatives:
            head = next(t for t in alternative if t is not None)
            assert head[1] >= 1, "a program's first class must be required"
            chars += head[0]
        return bits_of(chars)

    @cached_property
    def min_len(self) -> int:
        return min(
            sum(t[1] for t in alternative if t is not None) for alternative in self.alternatives
        )


def bits_of(chars: bytes) -> bytes:
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


def program_rule(kind: str, program: Program, literal: str | None = None) -> Rule:
    """A rule whose RE2 pattern is written from the same tokens as its compiled program, so
    the two match exactly the same (top-level alternatives tried in order, each a sequence of
    greedy tokens: RE2's leftmost-first semantics and the matcher's backtracking agree)."""
    alternatives = "|".join("".join(_token_re(t) for t in alt) for alt in program.alternatives)
    return Rule(kind, f"()((?:{alternatives}))()", literal=literal, native=program)


# Phones: a prefix (+7, 8 or 7, or a 9xx mobile code), then the seven subscriber digits
# grouped 3-2-2 (also 3-4 and 7) or 2-2-3, separated by spaces, dashes or dots.
_SEP = (b"\t\n\f\r -.", 0, 1)  # [\s\-.]?  (RE2's \s is [\t\n\f\r ])
_D2, _D3 = (b"0123456789", 2, 2), (b"0123456789", 3, 3)
_TAILS = (
    (_SEP, _D3, _SEP, _D2, _SEP, _D2, None),
    (_SEP, _D2, _SEP, _D2, _SEP, _D3, None),
)
_CODE = (_SEP, (b"(", 0, 1), _D3, (b")", 0, 1))
_PLUS7_PHONE = Program(tuple(((b"+", 1, 1), (b"7", 1, 1), *_CODE, *t) for t in _TAILS))
_LOCAL_PHONE = Program(
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
class Rule:
    """An RE2 pattern with three groups: kept text before, the value, kept text after.

    ``literal``: a substring every match contains (``"@"`` for emails); rows without it are
    not scanned, and a plain substring search is several times cheaper than RE2.
    """

    kind: str
    pattern: str
    literal: str | None = None
    native: Program | None = None

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
RULES_BEFORE_CHECKSUMS = (
    Rule("email", r"()([\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+)()", literal="@"),
    Rule(
        "passport",
        r"(?i)((?:паспорт\p{L}*|серия|серии)[^0-9]{0,30}?)"
        r"([0-9]{2} ?[0-9]{2}" + _SERIES_TO_NUMBER + r"[0-9]{6})([^0-9]|$)",
    ),
    Rule("passport", r"\b()([0-9]{2} ?[0-9]{2} ?(?:№ ?)?[0-9]{6})(\s*,?\s*(?i:выдан))"),
    program_rule("phone", _PLUS7_PHONE, literal="+7"),
)
RULES_AFTER_CHECKSUMS = (program_rule("phone", _LOCAL_PHONE),)

# Numbers whose check digits decide whether they are an identifier: a formatted SNILS, a
# card in groups of four, or a bare run of 10 to 19 digits. Each match is cut out as a piece
# and verified in bulk (detectors.classify_many); a match touching more digits is no number.
CHECKSUM_CANDIDATE = (
    r"[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2}|[0-9]{4}(?:[ -][0-9]{4}){3}"
    r"|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}|[0-9]{10,19}"
)
# A card of 17 to 19 digits in groups of four and a short last group (a Mir card printed as
# "2200 1234 5678 9012 345"), tried before CHECKSUM_CANDIDATE: a 16-digit card followed by
# another short number fails the check as a whole here and is found there on its own.
GROUPED_LONG_CARD = r"[0-9]{4}(?:[ -][0-9]{4}){3}[ -][0-9]{1,3}"
# A SNILS written as XXX-XXX-XXX YY: in the low range (up to 001-001-998, no check number)
# only this spelling counts, a bare run of eleven digits there is too often something else.
FORMATTED_SNILS = r"^[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2}$"

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
#: a word every match of :data:`NOT_PII_CONTEXT` holds, case-folded (ё written е): the
#: compiled gate (``rows_with_words``) runs the context patterns only on rows holding one
#: (tests/anonymizers/test_scrub.py checks each alternative holds one)
NOT_PII_WORDS = (
    "заказ", "арт", "парти", "накладн", "счет", "штрих", "ean", "barcode", "gtin", "sku",
    "order", "invoice", "ts", "timestamp", "unix", "epoch", "метк", "created_at", "updated_at",
    "трек", "tracking", "сесси", "лог", "код", "сборк", "build", "версия",
)  # fmt: skip
NOT_PII_BEFORE = NOT_PII_CONTEXT + r"[\s:=#№.\-]*(?:(?:№|no\.?|номер)[\s:=#.\-]*)?$"
# ... and words that say it is a card: a Luhn-valid number of 13-19 digits so introduced is a
# card even where its leading digits look like something else (a 13-digit Visa that is also
# a valid EAN-13 barcode).
CARD_BEFORE = r"(?i)(?:карт\p{L}*|card)[\s:=#№.\-]*(?:(?:№|no\.?|номер)[\s:=#.\-]*)?$"


__all__ = [
    "CARD_BEFORE",
    "CHECKSUM_CANDIDATE",
    "FORMATTED_SNILS",
    "GROUPED_LONG_CARD",
    "KINDS",
    "NER_KINDS",
    "NOT_PII_BEFORE",
    "NOT_PII_CONTEXT",
    "NOT_PII_WORDS",
    "PASSPORT_CONTEXT",
    "PLACEHOLDERS",
    "PREFILTER",
    "RULES_AFTER_CHECKSUMS",
    "RULES_BEFORE_CHECKSUMS",
    "Program",
    "Rule",
    "bits_of",
    "program_rule",
]
