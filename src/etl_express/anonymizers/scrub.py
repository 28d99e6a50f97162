"""``ScrubPII``: find and replace personal data inside free text.

The rules are in :mod:`.scrub_rules`, the column kernels they run on in :mod:`.scrub_kernels`,
the folding of Unicode look-alikes in :mod:`.textfold`, phones of other countries in
:mod:`.phones`, the check digits in :mod:`.detectors`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import SecretStr

from .. import _speedups
from .._arrays import string_array
from .._validate import name_list
from ..errors import AnonymizationError
from ..secrets import SecretRef
from .base import Anonymizer
from .buffers import any_true, bool_array, bool_values, false_if_null, take_indices
from .columns import canonical_all, column_index
from .detectors import KIND_NAMES, classify_many, luhn_ok, snils_low_range
from .normalize import digits_only
from .phones import PLUS_NUMBER, PREFIXED_NUMBER, international_spans
from .pseudonymize import KeyedHasher
from .scrub_kernels import (
    MARK,
    contains_any,
    digit_runs,
    gates,
    has_nul,
    inside_token,
    introduced_as,
    introduced_as_not_pii,
    not_pii_words,
    on_rows,
    replace_emails_native,
    replace_pieces,
    replace_program_native,
    replace_re2,
    replace_rows,
    splice,
    touches_digits,
)
from .scrub_rules import (
    CARD_BEFORE,
    CHECKSUM_CANDIDATE,
    FORMATTED_SNILS,
    GROUPED_LONG_CARD,
    KINDS,
    NER_KINDS,
    NOT_PII_BEFORE,
    NOT_PII_CONTEXT,
    PLACEHOLDERS,
    RULES_AFTER_CHECKSUMS,
    RULES_BEFORE_CHECKSUMS,
    Rule,
)
from .textfold import MARKERS, fold, marker_spans, special_bitmap, special_rows


class ScrubPII(Anonymizer):
    """Finds personal data inside free text and replaces it.

    Logic: one pass over the column picks the rows that could hold personal data at all — an
    ``@``, ten or more digits with phone-like separators, a ``+`` before seven or more
    digits, or a passport context word; the other rows are not touched again. On the picked
    rows, RE2 replacements remove emails, passport series and numbers next to
    ``паспорт``/``серия``/``выдан``, and Russian phones (``+7``, ``8``, ``9xx``, with
    spaces, brackets, dashes, dots). Numbers written with another country code (``+1 (415)
    555-0132``, ``+44 20 7946 0958``, ``0049 30 901820``) are found and validated by
    libphonenumber (:mod:`.phones`), on the few rows that hold one. Runs of digits that could
    be a SNILS, an INN (10 or 12 digits), an OGRN/OGRNIP or a bank card (13-19 digits: Mir
    2200-2204, Visa, Mastercard, ...) are cut out of the texts by one RE2 rewrite and a split,
    and their check digits are verified all at once as numpy matrix operations (SNILS check
    number, INN weights, OGRN mod 11/13, Luhn and the card schemes' prefixes): a number with
    a wrong check digit, or one that is part of a longer run of digits, is left alone. Where
    the optional compiled extension is built, the prefilter, the passport context check and
    the email and phone rules run as byte scanners over the Arrow buffers that reproduce the
    RE2 patterns' matches exactly.

    Unicode look-alikes — no-break, thin and other Unicode spaces, non-breaking hyphens and
    dashes, full-width and other scripts' digits — are folded to ASCII before matching, one
    character for one (:mod:`.textfold`), on the rows that hold any: the rules run on the
    folded copy and the original text changes on exactly the spans they found, the rest kept
    as written.

    Replacements are typed placeholders (``<EMAIL>``, ``<PHONE>``, ``<SNILS>``, ``<INN>``,
    ``<OGRN>``, ``<PASSPORT>``, ``<CARD>``) or, with ``replace="pseudonym"``, the same keyed
    tokens :class:`Pseudonymize` gives, so a person mentioned in a note still joins. Only the
    found text changes; nothing is kept that could restore it.

    ScrubPII protects free text only (``protects = "free_text"``): a column tagged as
    personal data (``pii=``, a source's tags) or derived from one needs an anonymizer that
    replaces the whole value (:class:`Pseudonymize`, ``Redact``, ``Mask``, ``Generalize``,
    ``Suppress``); a ScrubPII on it does not count as covering it.

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
        self._before = [r for r in RULES_BEFORE_CHECKSUMS if r.kind in self.kinds]
        self._after = [r for r in RULES_AFTER_CHECKSUMS if r.kind in self.kinds]
        self._checksum_kinds = {k for k in ("snils", "inn", "ogrn", "card") if k in self.kinds}
        self._marking = False  # True in the twin that marks spans (_marker_twin)

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
        arr = _as_text(arr, column)
        picked, context, special = gates(arr, special_bitmap())  # one pass for the three
        out = self._scan(arr, picked, context)
        if special is None:
            special = special_rows(arr)
        if any_true(special):  # Unicode look-alikes: matched on a folded copy
            out = pc.replace_with_mask(out, special, self._scrub_folded(pc.filter(arr, special)))
        if self._ner_kinds:  # optional, loaded only when asked for
            from .ner import scrub_ner

            out = scrub_ner(out, self._ner_kinds, self._replacement_list)
        return out

    def find(self, values: pa.Array | Sequence[str | None], column: str = "text") -> list[set[str]]:
        """The kinds found in each value (of this scrubber's ``kinds``, the NER ones aside);
        nothing is replaced. ``find(["тел. +44 20 7946 0958", "ok"]) == [{"phone"}, set()]``."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arr = values
        elif all(isinstance(v, str) for v in values):  # built from buffers: no pandas import
            arr = string_array(values)  # type: ignore[arg-type]
        else:  # nulls or other values: pyarrow's conversion (and _as_text's error for non-text)
            arr = pa.array(values)
        arr = _as_text(arr, column)
        twin = copy.copy(self)  # placeholders: the compiled scanners, and a kind per placeholder
        twin._hasher = None
        twin._ner_kinds = set()
        out = twin.scrub(arr, column).to_pylist()
        marks = [(kind, PLACEHOLDERS[kind]) for kind in self.kinds if kind in KINDS]
        return [
            set()
            if after is None or after == before
            else {kind for kind, mark in marks if after.count(mark) > before.count(mark)}
            for before, after in zip(arr.to_pylist(), out)
        ]

    def _marker_twin(self) -> ScrubPII:
        """This scrubber writing each match as a run of its kind's marker (textfold.MARKERS),
        as many characters as the match: the spans it found, in a text of the same length."""
        twin = copy.copy(self)
        twin._marking = True
        return twin

    def _scrub_folded(self, texts: pa.Array) -> pa.Array:
        """Rows holding Unicode look-alikes (no nulls): the rules run on the folded copy, in
        marker mode, and the original text is replaced on the spans they marked."""
        originals = texts.to_pylist()
        folded = [fold(t) for t in originals]
        masked = self._marker_twin()._scan(string_array(folded)).to_pylist()
        spans = [marker_spans(m) for m in masked]
        wanted: dict[str, list[str]] = {}
        for text, found in zip(folded, spans):
            for start, end, kind in found:
                wanted.setdefault(kind, []).append(text[start:end])
        replaced = {k: iter(self._replacement_list(v, k)) for k, v in wanted.items()}
        out = []
        for original, mask, found in zip(originals, masked, spans):
            base = (
                original if len(mask) == len(original) else mask
            )  # always equal; else fail closed
            pieces = [(s, e, next(replaced[kind])) for s, e, kind in found]
            out.append(splice(base, pieces).replace(MARK, "\ufffd"))
        return string_array(out)

    def _replacement_list(self, values: list[str], kind: str) -> list[str]:
        return self._replacements(string_array(values), kind).to_pylist()

    def _scan(
        self, arr: pa.Array, picked: pa.Array | None = None, context: pa.Array | None = None
    ) -> pa.Array:
        """The rules over a column, in order (see the class docstring); ``picked`` and
        ``context``: :func:`.gates` of ``arr``, when the caller has them."""
        if picked is None:
            picked, context, _ = gates(arr)
        if not any_true(picked):
            return arr
        texts = pc.filter(arr, picked)
        if has_nul(texts):
            texts = pc.replace_substring(texts, MARK, "\ufffd")
        # no row holding a passport context word: no passport rule can match anywhere
        no_context = context is not None and not any_true(context)
        if context is not None and not no_context:
            context = pc.filter(context, picked)  # the context rows are among the picked ones
        for rule in self._before:
            if rule.kind == "passport" and no_context:
                continue
            if rule.kind == "passport" and context is not None:
                # passport rules need a context word: run them on the (rare) rows that have one
                texts = on_rows(texts, context, lambda rows: self._apply(rows, rule))  # noqa: B023
                continue
            texts = self._apply(texts, rule)
        texts = self._international_phones(texts, PLUS_NUMBER, ("+",))
        if self._checksum_kinds:
            # a long grouped card first (17 digits at least), then every other candidate. The
            # rows with 10 digits in a run are found once, before the cards, and the rows with
            # 17 among them: a card is replaced only in a row with 17, which has 10 too, and
            # every other row is unchanged, so they are all the rows the second pass needs (a
            # row whose only run was the card gets a pass that finds nothing).
            runs = digit_runs(texts, 10)
            long_runs = runs
            if runs is not None and any_true(runs):
                long_runs = pc.replace_with_mask(runs, runs, digit_runs(pc.filter(texts, runs), 17))
            for candidate, flagged in ((GROUPED_LONG_CARD, long_runs), (CHECKSUM_CANDIDATE, runs)):
                texts = on_rows(
                    texts,
                    flagged,
                    lambda rows: replace_pieces(
                        rows,
                        candidate,  # noqa: B023
                        f"{MARK}\\0{MARK}",
                        self._checksummed,
                    ),
                )
        texts = self._international_phones(texts, PREFIXED_NUMBER, ("00", "10"))
        for rule in self._after:
            texts = self._apply_unless_introduced(texts, rule)
        return replace_rows(arr, picked, texts)

    def _international_phones(
        self, texts: pa.Array, candidate: str, literals: tuple[str, ...]
    ) -> pa.Array:
        """Phones written with a country code, found and validated by libphonenumber on the
        rows where ``candidate`` matches (few: it reads them one by one). ``literals``: one of
        them is in every match (a substring search is far cheaper than the pattern)."""
        if "phone" not in self.kinds:
            return texts
        maybe = contains_any(texts, literals)
        if not any_true(maybe):
            return texts

        def found(rows: pa.Array) -> pa.Array:
            hits = false_if_null(pc.match_substring_regex(rows, candidate))
            return on_rows(rows, hits, self._libphonenumber)

        return on_rows(texts, maybe, found)

    def _libphonenumber(self, rows: pa.Array) -> pa.Array:
        texts = rows.to_pylist()
        spans = [international_spans(t) for t in texts]
        numbers = [t[s:e] for t, found in zip(texts, spans) for s, e in found]
        if not numbers:
            return rows
        replaced = iter(self._replacement_list(numbers, "phone"))
        return string_array(
            [
                splice(t, [(s, e, next(replaced)) for s, e in found])
                for t, found in zip(texts, spans)
            ]
        )

    def _apply_unless_introduced(self, texts: pa.Array, rule: Rule) -> pa.Array:
        """``rule`` applied, except to values introduced as something else ("заказ
        89161234567"): the rows it changed that hold such a word are redone value by value."""
        out = self._apply(texts, rule)
        changed = false_if_null(pc.not_equal(out, texts))
        if not any_true(changed):
            return out
        # With placeholders every replaced value reads as its placeholder in ``out``: a value
        # introduced as something else has the word right before its placeholder there, so
        # only rows where that whole phrase occurs are redone (not every row with the word).
        introduced = (
            NOT_PII_BEFORE.removesuffix("$") + re.escape(PLACEHOLDERS[rule.kind])
            if self._fixed
            else NOT_PII_CONTEXT
        )
        subject = pc.filter(out if self._fixed else texts, changed)  # the changed rows only
        # the pattern only on the rows holding one of its words (before a placeholder, with
        # placeholders): most replaced rows hold none, and RE2 would scan all of each
        maybe = not_pii_words(subject, PLACEHOLDERS[rule.kind] if self._fixed else "")
        if maybe is not None and not any_true(maybe):
            return out
        if maybe is None:
            hits = false_if_null(pc.match_substring_regex(subject, introduced))
        else:
            matched = pc.match_substring_regex(pc.filter(subject, maybe), introduced)
            hits = pc.replace_with_mask(maybe, maybe, false_if_null(matched))
        redo = pc.replace_with_mask(changed, changed, hits)
        if not any_true(redo):
            return out

        def chosen(pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
            values = pieces.take(take_indices(value_at))
            keep = introduced_as_not_pii(pieces, value_at) | self._in_tokens(pieces, value_at)
            return ~keep, self._replacements(values, rule.kind)

        again = replace_pieces(
            pc.filter(texts, redo), rule.pattern, f"\\1{MARK}\\2{MARK}\\3", chosen
        )
        return pc.replace_with_mask(out, redo, again)

    @property
    def _fixed(self) -> bool:
        """Whether every match becomes its kind's placeholder (the fastest kernels)."""
        return self._hasher is None and not self._marking

    def _apply(self, texts: pa.Array, rule: Rule) -> pa.Array:
        if self._fixed and _speedups.native is not None:
            if rule.kind == "email":
                return replace_emails_native(texts, rule)
            if rule.native is not None:
                return replace_program_native(texts, rule.native, PLACEHOLDERS[rule.kind])
        if self._fixed:  # match first: replacing is the dearer kernel, run it on hits only
            found = false_if_null(
                pc.match_substring(texts, rule.literal)
                if rule.literal
                else pc.match_substring_regex(texts, rule.pattern)
            )
            return on_rows(texts, found, lambda rows: replace_re2(rows, rule))

        def tokens(pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
            values = pieces.take(take_indices(value_at))
            return ~self._in_tokens(pieces, value_at), self._replacements(values, rule.kind)

        return replace_pieces(texts, rule.pattern, f"\\1{MARK}\\2{MARK}\\3", tokens)

    def _checksummed(self, pieces: pa.Array, value_at: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """Which candidate numbers are identifiers (check digits verified in bulk), and their
        replacements."""
        values = pieces.take(take_indices(value_at))
        digits = digits_only(values)
        kinds = classify_many(digits)
        low = snils_low_range(digits) & bool_values(
            pc.match_substring_regex(values, FORMATTED_SNILS)
        )
        kinds[(kinds == 0) & low] = KIND_NAMES.index("snils")
        rest = np.flatnonzero(kinds == 0)
        if len(rest):  # numbers right after "карта" that no other rule took
            carded = rest[introduced_as(pieces, value_at[rest], CARD_BEFORE)]
            for i in carded:  # few
                number = digits[i].as_py()
                if 13 <= len(number) <= 19 and luhn_ok(number):
                    kinds[i] = KIND_NAMES.index("card")
        kinds[touches_digits(pieces, value_at)] = 0
        kinds[self._in_tokens(pieces, value_at)] = 0
        found = np.flatnonzero(kinds != 0)
        if len(found):
            kinds[found[introduced_as_not_pii(pieces, value_at[found])]] = 0
        out = pa.nulls(len(values), pa.string())
        for code, kind in enumerate(KIND_NAMES):
            if code == 0 or kind not in self._checksum_kinds:
                continue
            mask = kinds == code
            if mask.any():
                replaced = self._replacements(values.filter(bool_array(mask)), kind)
                out = pc.replace_with_mask(out, bool_array(mask), replaced)
        chosen = np.isin(kinds, [KIND_NAMES.index(k) for k in self._checksum_kinds])
        return chosen, out

    def _in_tokens(self, pieces: pa.Array, value_at: np.ndarray) -> np.ndarray:
        """Values inside a pseudonym written by an earlier rule (never with placeholders)."""
        if self._hasher is None or self._marking:
            return np.zeros(len(value_at), dtype=bool)
        return inside_token(pieces, value_at, 2 * self._hasher.digest_size)

    def _replacements(self, values: pa.Array, kind: str) -> pa.Array:
        """Placeholders, or keyed tokens of the normalized values (as :class:`Pseudonymize`
        gives them), for values found to be of ``kind``."""
        if self._marking:
            marker = string_array([MARKERS[kind]])[0]
            return pc.binary_repeat(marker, pc.utf8_length(values))
        placeholder = string_array([PLACEHOLDERS[kind]])[0]
        if self._hasher is None:
            return pa.repeat(placeholder, len(values))
        tokens = self._hasher.pseudonymize(values, kind)
        return pc.fill_null(tokens, placeholder)


def _as_text(arr: pa.Array | pa.ChunkedArray, column: str) -> pa.Array:
    """One plain string array (chunks combined, dictionaries decoded), or the error naming a
    column that is not text."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type):
        return arr.cast(pa.string())
    if not pa.types.is_string(arr.type):
        raise AnonymizationError(
            f"ScrubPII needs a text column, but column {column!r} is {arr.type}",
            hint="scrub text columns only; use Pseudonymize, Redact or Generalize for typed columns",
        )
    return arr


__all__ = ["KINDS", "NER_KINDS", "PLACEHOLDERS", "ScrubPII"]
