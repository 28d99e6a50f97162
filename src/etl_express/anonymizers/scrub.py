"""``ScrubPII``: find and replace personal data inside free text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import re2
from pydantic import SecretStr

from ..errors import AnonymizationError
from ..secrets import SecretRef
from .base import Anonymizer
from .detectors import classify_digits
from .pseudonymize import KeyedHasher

KINDS = ("email", "phone", "passport", "snils", "inn", "ogrn", "card")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in KINDS}

# One cheap pass decides which rows can hold personal data at all: an "@", ten or more
# digits with phone-like separators, or a passport context word. Only those rows are scanned.
PREFILTER = r"(?i)@|[0-9][0-9\s()\-]{8,}[0-9]|паспорт|серия|серии|выдан"

_PHONE_TAIL = r"[\s\-]?[0-9]{3}[\s\-]?[0-9]{2}[\s\-]?[0-9]{2}\b"


@dataclass(frozen=True)
class _Rule:
    """An RE2 pattern with three groups: kept text before, the value, kept text after."""

    kind: str
    pattern: str


# Applied in this order: emails first (they may hold digits), then passports (their digits
# would otherwise pass for an INN), then numbers with check digits, then phones.
_RULES_BEFORE_CHECKSUMS = (
    _Rule("email", r"()([\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+)()"),
    _Rule("passport", r"(?i)((?:паспорт\p{L}*|серия|серии)[^0-9]{0,30}?)"
                      r"([0-9]{2} ?[0-9]{2}[^0-9]{0,12}?[0-9]{6})([^0-9]|$)"),
    _Rule("passport", r"\b()([0-9]{2} ?[0-9]{2} ?(?:№ ?)?[0-9]{6})(\s*,?\s*(?i:выдан))"),
    _Rule("phone", r"()(\+7[\s\-]?\(?[0-9]{3}\)?" + _PHONE_TAIL + ")()"),
)
_RULES_AFTER_CHECKSUMS = (
    _Rule("phone", r"()((?:\b[78][\s\-]?\(?[0-9]{3}\)?|\(9[0-9]{2}\)|\b9[0-9]{2})" + _PHONE_TAIL + ")()"),
)

# Numbers whose check digits decide whether they are an identifier (Python's re, for the
# look-arounds; it only runs on rows the vectorized CHECKSUM_CANDIDATE pass selected).
CHECKSUM_CANDIDATE = r"[0-9]{10}|[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2}|[0-9]{4}[ -][0-9]{4}[ -][0-9]{4}"
_CHECKED = re.compile(
    r"(?<![0-9])(?:(?P<snils>[0-9]{3}[- ][0-9]{3}[- ][0-9]{3}[- ][0-9]{2})"
    r"|(?P<card>[0-9]{4}(?:[ -][0-9]{4}){2,3})(?P<tail>[ -]?[0-9]{1,3})?"
    r"|(?P<run>[0-9]{10,19}))(?![0-9])"
)


def _classify(m: re.Match[str]) -> tuple[str, str, str] | None:
    """(kind, identifier text, text to keep after it) of a checksum candidate, or None."""
    if m.group("card") is not None:
        card, tail = m.group("card"), m.group("tail") or ""
        if tail and classify_digits(card + tail) == "card":
            return "card", card + tail, ""
        kind = classify_digits(card)
        return (kind, card, tail) if kind == "card" else None
    text = m.group(0)
    kind = classify_digits(text)
    if kind is None or (m.group("snils") is not None and kind != "snils"):
        return None
    return kind, text, ""


class ScrubPII(Anonymizer):
    """Finds personal data inside free text and replaces it.

    Logic: one vectorized RE2 pass (``pyarrow.compute.match_substring_regex``) picks the rows
    that could hold personal data at all — an ``@``, ten or more digits with phone-like
    separators, or a passport context word; the other rows are not touched again. On the
    picked rows, RE2 replacements remove emails, passport series and numbers next to
    ``паспорт``/``серия``/``выдан``, and Russian phones (``+7``, ``8``, ``9xx``, with
    spaces, brackets, dashes). Runs of digits that could be a SNILS, an INN (10 or 12
    digits), an OGRN/OGRNIP or a bank card are selected by another vectorized pass, and only
    those rows go through Python, where each candidate's check digits are verified (SNILS
    check number, INN weights, OGRN mod 11/13, Luhn): a number with a wrong check digit is
    left alone. Replacements are typed placeholders (``<EMAIL>``, ``<PHONE>``, ``<SNILS>``,
    ``<INN>``, ``<OGRN>``, ``<PASSPORT>``, ``<CARD>``) or, with ``replace="pseudonym"``,
    the same keyed tokens :class:`Pseudonymize` gives, so a person mentioned in a note still
    joins. Only the found text is changed; nothing is kept that could restore it.

    Args:
        columns: free-text columns to scrub (absent columns are skipped).
        kinds: what to look for (default: all of ``email, phone, passport, snils, inn, ogrn, card``).
        replace: ``"placeholder"`` (default) or ``"pseudonym"`` (needs ``key``).
        key: for pseudonyms, ``etl.secret(...)`` or a ``SecretStr`` of at least 32 bytes.

    Example::

        ScrubPII(["notes", "comment"])
    """

    def __init__(
        self,
        columns: str | Sequence[str],
        *,
        kinds: Iterable[str] = KINDS,
        replace: str = "placeholder",
        key: SecretRef | SecretStr | None = None,
    ):
        self.columns = (columns,) if isinstance(columns, str) else tuple(columns)
        self.kinds = tuple(kinds)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise AnonymizationError(f"ScrubPII: unknown kind(s) {unknown}", hint=f"choose from {list(KINDS)}")
        if replace not in ("placeholder", "pseudonym"):
            raise AnonymizationError(f"ScrubPII: replace={replace!r} is not 'placeholder' or 'pseudonym'")
        if replace == "pseudonym" and key is None:
            raise AnonymizationError("ScrubPII(replace='pseudonym') needs a key",
                                     hint="pass key=etl.secret('ANON_KEY')")
        self.replace = replace
        self._hasher = KeyedHasher(key, "ScrubPII") if replace == "pseudonym" and key is not None else None
        self._before = [r for r in _RULES_BEFORE_CHECKSUMS if r.kind in self.kinds]
        self._after = [r for r in _RULES_AFTER_CHECKSUMS if r.kind in self.kinds]
        self._compiled = {r.pattern: re2.compile(r.pattern) for r in (*self._before, *self._after)}
        self._checksum_kinds = {k for k in ("snils", "inn", "ogrn", "card") if k in self.kinds}

    def __repr__(self) -> str:
        return f"ScrubPII(columns={list(self.columns)!r}, kinds={list(self.kinds)!r}, replace={self.replace!r})"

    def anonymize(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for column in self.columns:
            i = batch.schema.get_field_index(column)
            if i < 0:
                continue
            batch = batch.set_column(i, pa.field(column, pa.string()), self.scrub(batch.column(i), column))
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
        picked = pc.fill_null(pc.match_substring_regex(arr, PREFILTER), False)
        if not pc.any(picked).as_py():
            return arr
        texts = pc.filter(arr, picked)
        texts = self._scrub_pseudonyms(texts) if self._hasher is not None else self._scrub_placeholders(texts)
        return pc.replace_with_mask(arr, picked, texts)

    # -- placeholders: vectorized ----------------------------------------------------------

    def _scrub_placeholders(self, texts: pa.Array) -> pa.Array:
        for rule in self._before:
            texts = pc.replace_substring_regex(texts, rule.pattern, rf"\1{PLACEHOLDERS[rule.kind]}\3")
        if self._checksum_kinds:
            texts = self._checksums(texts, lambda found: [PLACEHOLDERS[kind] for kind, _ in found])
        for rule in self._after:
            texts = pc.replace_substring_regex(texts, rule.pattern, rf"\1{PLACEHOLDERS[rule.kind]}\3")
        return texts

    def _checksums(self, texts: pa.Array, replacements: Callable[[list[tuple[str, str]]], list[str]]) -> pa.Array:
        """Replace checksum-verified identifiers; Python runs only on candidate rows."""
        candidates = pc.fill_null(pc.match_substring_regex(texts, CHECKSUM_CANDIDATE), False)
        if not pc.any(candidates).as_py():
            return texts
        values = pc.filter(texts, candidates).to_pylist()
        found: list[tuple[str, str]] = []
        for text in values:
            for m in _CHECKED.finditer(text):
                hit = _classify(m)
                if hit is not None and hit[0] in self._checksum_kinds:
                    found.append((hit[0], hit[1]))
        if not found:
            return texts
        it = iter(replacements(found))

        def sub(m: re.Match[str]) -> str:
            hit = _classify(m)
            if hit is None or hit[0] not in self._checksum_kinds:
                return m.group(0)
            return next(it) + hit[2]

        scrubbed = pa.array([_CHECKED.sub(sub, text) for text in values], pa.string())
        return pc.replace_with_mask(texts, candidates, scrubbed)

    # -- pseudonyms: keyed tokens, the same as Pseudonymize's ------------------------------

    def _tokens(self, values: list[str], kind: str) -> list[str]:
        assert self._hasher is not None
        tokens = self._hasher.pseudonymize(pa.array(values, pa.string()), kind).to_pylist()
        return [t or PLACEHOLDERS[kind] for t in tokens]

    def _scrub_pseudonyms(self, texts: pa.Array) -> pa.Array:
        values: list[str] = texts.to_pylist()
        for rule in self._before:
            values = self._pseudonymize_rule(values, rule)
        if self._checksum_kinds:
            def replacements(found: list[tuple[str, str]]) -> list[str]:
                out: list[str | None] = [None] * len(found)
                for kind in {k for k, _ in found}:
                    idx = [i for i, (k, _) in enumerate(found) if k == kind]
                    for i, token in zip(idx, self._tokens([found[i][1] for i in idx], kind)):
                        out[i] = token
                return [t or "" for t in out]

            values = self._checksums(pa.array(values, pa.string()), replacements).to_pylist()
        for rule in self._after:
            values = self._pseudonymize_rule(values, rule)
        return pa.array(values, pa.string())

    def _pseudonymize_rule(self, values: list[str | None], rule: _Rule) -> list[str | None]:
        rx = self._compiled[rule.pattern]
        matched = [m.group(2) for v in values if v for m in rx.finditer(v)]
        if not matched:
            return values
        tokens: Iterator[str] = iter(self._tokens(matched, rule.kind))

        def sub(m: re2._Match) -> str:  # type: ignore[name-defined]
            return m.group(1) + next(tokens) + m.group(3)

        return [rx.sub(sub, v) if v else v for v in values]


__all__ = ["KINDS", "PLACEHOLDERS", "ScrubPII"]
