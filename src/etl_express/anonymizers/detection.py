"""Personal data nobody tagged: sample every column and say which look personal.

A pipeline anonymizes what its configuration names. A column nobody named — a ``contact``
field that holds e-mails, a REST field renamed on page 2, a JSON ``payload`` with a phone
inside, a ``bigint`` of phone numbers, a ``date`` of births — would be loaded raw. Before the
first write the pipeline samples every column that no anonymizer covers and that is not
declared safe (``not_pii=``), whatever its type (numbers and dates judged as they are
written), and judges the values two ways: by ``ScrubPII``'s rules, for values that prove
themselves (e-mails, phones with their country code, Russian identifiers with their check
digits, bank cards with the Luhn check, passports next to a context word), and by the
column's name weighed with the values' shape (:mod:`.detection_rules`: passports without
context, birth dates, postal addresses, person names, phones without a country code). With
the optional NER extra (``pip install "etl-express[ner]"``) the model finds Russian names
too. What it does with a finding is the pipeline's ``detect_pii=`` policy: ``"refuse"``
(the default) stops the run before anything is written, ``"warn"`` logs the finding and goes
on, ``"off"`` does not sample. A finding names the column, the kind and how many sampled
values matched; never a value.

When is a column personal? Values are sampled (:data:`SAMPLE_SIZE` of the non-empty ones,
evenly spread over the batch) and a kind that proves itself is found when at least
:data:`MIN_SHARE` of them hold it. A number with check digits is judged against chance: one
random 10-digit number in ten passes the INN check, so an order-number column is not an INN
column; a kind with check digits is found only when at least half the numbers of its length
pass (a real INN column: all of them). A kind found by name and shape needs most values.

Two ways in: :func:`detect_values` (one column's values in, findings out) and
:func:`detect_batch` (every column of a batch; what ``etl-express scan`` calls);
:class:`PIIWatch` applies a pipeline's policy batch after batch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .._arrays import string_array
from ..errors import AnonymizationError, ETLConfigError
from .columns import canonical
from .sampling import (
    SAMPLE_SIZE,
    TEMPORAL_KINDS,
    is_json,
    is_sampled_field,
    is_temporal,
    json_leaves,
    sample_texts,
    spread,
)
from .scrub_rules import KINDS
from .textfold import fold_all

#: what ``detect_pii=`` accepts; ``"refuse"`` is the default
POLICIES = ("refuse", "warn", "off")
DEFAULT_POLICY = "refuse"
#: kinds the detector knows (the last three by the column's name and the values' shape, see
#: :mod:`.detection_rules`; the optional NER model adds Russian names in any spelling)
DETECTED_KINDS = (*KINDS, "name", "birth_date", "address")
#: share of the sampled values that must hold a kind for the column to count as holding it
MIN_SHARE = 0.02
#: share of the sampled values the NER model must find a person's name in (a column of names)
NAME_SHARE = 0.5
#: kinds that random numbers can pass (check digits; a phone's length and first digits):
#: found only when this share of the numbers of their length hold them, and at least this
#: many values (one number in ten passes an INN check: one or two prove nothing)
CHECK_DIGIT_SHARE = 0.5
CHANCE_MIN_MATCHES = 3
_CHANCE_LENGTHS = {
    "inn": {10, 12},
    "snils": {11},
    "ogrn": {13, 15},
    "card": set(range(13, 20)),
    "phone": set(range(7, 16)),
}
_DIGIT_RUN = re.compile(r"[0-9](?:[ \-]?[0-9])*")
_PHONE_RUN = re.compile(r"[0-9](?:[\s().\-]{0,3}[0-9])*")


@dataclass(frozen=True)
class Finding:
    """A column (or a place inside a JSON column) whose sampled values look like personal
    data of ``kind``: ``matched`` of ``sampled`` values held it. Holds no value."""

    column: str
    kind: str
    matched: int
    sampled: int
    path: str | None = None

    @property
    def where(self) -> str:
        """The column, and the place inside it for JSON (``payload.contact.email``)."""
        return self.column if self.path is None else f"{self.column}.{self.path}"

    def __str__(self) -> str:
        return f"{self.where!r} looks like {self.kind} ({self.matched} of {self.sampled} sampled values)"


def check_policy(value: Any, where: Mapping[str, Any] | None = None) -> str:
    """``value`` when it is one of :data:`POLICIES`, else the configuration error."""
    if value not in POLICIES:
        raise ETLConfigError(
            f"detect_pii={value!r} is not one of {list(POLICIES)}",
            where=dict(where or {}),
            hint='detect_pii="refuse" (the default) stops a run whose untagged columns look '
            'personal, "warn" logs them, "off" does not sample',
        )
    return str(value)


@functools.lru_cache(maxsize=8)
def _scrubber(kinds: tuple[str, ...]) -> Any:
    from .scrub import ScrubPII

    return ScrubPII(["value"], kinds=kinds)


def detect_values(
    values: pa.Array | pa.ChunkedArray | Iterable[Any],
    column: str = "value",
    *,
    kinds: Collection[str] | None = None,
    path: str | None = None,
) -> list[Finding]:
    """The kinds of personal data one column's values hold (a sample of them is judged).

    ``values``: an Arrow array or any iterable (nulls and empty strings are skipped; other
    scalars are judged as text). ``kinds``: what to look for (default: all of
    :data:`DETECTED_KINDS`). ``column``: its name, evidence too (:mod:`.detection_rules`). Example::

        detect_values(["a@b.ru", "c@d.ru"], "contact")
        # [Finding(column='contact', kind='email', matched=2, sampled=2)]
    """
    return _judge({(column, path): sample_texts(values)}, _kinds(kinds))


def _kinds(kinds: Collection[str] | None) -> tuple[str, ...]:
    unknown = sorted(set(kinds or ()) - set(DETECTED_KINDS))
    if unknown:
        raise ETLConfigError(
            f"unknown personal-data kind(s) {unknown}", hint=f"choose from {list(DETECTED_KINDS)}"
        )
    return tuple(k for k in DETECTED_KINDS if kinds is None or k in kinds)


def _judge(
    samples: Mapping[tuple[str, str | None], list[str]], kinds: tuple[str, ...]
) -> list[Finding]:
    """Findings for several columns' samples, judged in one pass (the rules' fixed cost, RE2
    compiling its patterns, is paid once however many columns there are)."""
    samples = {key: sample for key, sample in samples.items() if sample}
    if not samples:
        return []
    from .detection_rules import SampleTraits, shape_counts  # see _strong_kinds

    pattern_kinds = tuple(k for k in kinds if k in KINDS)
    everything = [v for sample in samples.values() for v in sample]
    found = (  # an array built from buffers: a list handed over, pyarrow would import pandas
        _scrubber(pattern_kinds).find(string_array(everything))
        if pattern_kinds
        else [set()] * len(everything)
    )
    out, at = [], 0
    for (column, path), sample in samples.items():
        counts: dict[str, int] = {}
        chance_free: set[str] = set()  # found by name and shape: judged by their own rules
        for kinds_found in found[at : at + len(sample)]:
            for kind in kinds_found:
                counts[kind] = counts.get(kind, 0) + 1
        at += len(sample)
        if "name" in kinds:  # a statistical model errs on short capitalized phrases: most values
            # no capital anywhere: no value is shaped like a name, the model is not asked
            names = _names(sample) if SampleTraits.of(sample).upper else 0
            counts["name"] = names if names >= NAME_SHARE * len(sample) else 0
        unproven = [k for k in kinds if not counts.get(k)]
        for kind, matched in shape_counts(column, path, sample, unproven).items():
            counts[kind] = matched
            chance_free.add(kind)
        folded: list[str] | None = None  # folded once, for the kinds judged against chance
        for kind in kinds:
            matched = counts.get(kind, 0)
            if not matched or matched < MIN_SHARE * len(sample):
                continue
            if kind not in chance_free and kind in _CHANCE_LENGTHS:
                folded = fold_all(sample) if folded is None else folded
                if not _beats_chance(kind, matched, folded):
                    continue
            out.append(Finding(column, kind, matched, len(sample), path))
    return out


def _beats_chance(kind: str, matched: int, folded: list[str]) -> bool:
    """For a kind that random numbers can pass (check digits, or a phone's mere length and
    first digits): at least half the numbers of its length hold it. ``folded``: the sample,
    folded (:func:`.textfold.fold_all`)."""
    lengths = _CHANCE_LENGTHS.get(kind)
    if lengths is None:
        return True
    runs = _PHONE_RUN if kind == "phone" else _DIGIT_RUN
    candidates = sum(
        any(sum(c.isdigit() for c in run) in lengths for run in runs.findall(v)) for v in folded
    )
    return matched >= CHANCE_MIN_MATCHES and matched >= CHECK_DIGIT_SHARE * max(candidates, matched)


def _names(sample: list[str]) -> int:
    """How many values are a person's name, by the NER model; 0 without the extra, and
    without loading the model when most values are not shaped like names.

    The model reads at most :data:`~.ner.NER_PROBES` of the name-shaped values, spread evenly
    over them, and the count is its share among those times all of them: a count of the
    values it read alone could never reach :data:`NAME_SHARE` of a sample of more than twice
    as many, so a long column of names the shape rules do not know would pass unseen."""
    import importlib.util

    from .ner import NER_PROBES, count_names

    shaped = [v for v in sample if _name_shaped(v)]
    if len(shaped) < NAME_SHARE * len(sample) or importlib.util.find_spec("natasha") is None:
        return 0
    probes = [shaped[i] for i in spread(len(shaped), NER_PROBES)]
    return round(count_names(probes) * len(shaped) / len(probes))


def _name_shaped(value: str) -> bool:
    """Two or three capitalized words of letters (``Иванов Иван Иванович``)."""
    words = value.split()
    return 2 <= len(words) <= 3 and all(
        w[0].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words
    )


def _column_samples(
    values: pa.Array | pa.ChunkedArray | Iterable[Any],
    column: str,
    json_text: bool,
    kinds: tuple[str, ...] = DETECTED_KINDS,
) -> dict[tuple[str, str | None], list[str]]:
    """The sample of a column, or of every place inside a JSON column. Empty (not sampled)
    for a column no value could make a finding in (:func:`_reachable`)."""
    if not json_text:
        return {(column, None): sample_texts(values) if _reachable(column, kinds) else []}
    sample = sample_texts(values)
    return {
        (column, None if path == "$" else path): leaves
        for path, leaves in json_leaves(sample).items()
    }


def _reachable(column: str, kinds: tuple[str, ...]) -> bool:
    """Whether any values could make a finding of ``kinds`` in a column of this name. A
    count of ``_judge`` comes from ``ScrubPII`` (:data:`KINDS`), the NER model (``name``)
    or :func:`~.detection_rules.shape_counts`, which counts a kind of its ``RULES`` only
    when the column is named for it or when the kind has a strong shape (``name`` and
    ``address``, and ``phone`` from :data:`KINDS`). So a date column judged for
    ``birth_date`` alone (weak shape only) is sampled only when its name says birth date."""
    from .detection_rules import named_kinds  # see _strong_kinds

    named = named_kinds(column)
    strong = _strong_kinds()
    return any(k in KINDS or k == "name" or k in named or k in strong for k in kinds)


@functools.cache
def _strong_kinds() -> frozenset[str]:
    """The kinds of :data:`~.detection_rules.RULES` with a strong shape. The rules are
    imported on the first judgment, not with this module: compiling their patterns takes
    about 10 ms, which a run with ``detect_pii="off"`` (it imports this module for its
    policy) never needs."""
    from .detection_rules import RULES

    return frozenset(rule.kind for rule in RULES if rule.strong is not None)


def detect_column(
    values: pa.Array | pa.ChunkedArray | Iterable[Any],
    column: str,
    *,
    json_text: bool = False,
    kinds: Collection[str] | None = None,
) -> list[Finding]:
    """:func:`detect_values`, or for a JSON column, the same for every place inside it."""
    judged = _kinds(kinds)
    return _judge(_column_samples(values, column, json_text, judged), judged)


def detect_batch(
    batch: pa.RecordBatch,
    *,
    skip: Collection[str] = (),
    residual: Mapping[str, Collection[str]] | None = None,
) -> list[Finding]:
    """Findings for every sampled column of ``batch`` (:func:`is_sampled_field`) not in ``skip``.

    ``residual``: columns a free-text anonymizer (``ScrubPII``) already scrubs, with the kinds
    to look for there still (the ones it was not asked to find); such a column is judged for
    those kinds only, even when it is in ``skip``.
    """
    residual = residual or {}
    groups: dict[tuple[str, ...], dict[tuple[str, str | None], list[str]]] = {}
    for field in batch.schema:
        if not is_sampled_field(field):
            continue
        kinds = residual.get(field.name)
        if (kinds is None and field.name in skip) or (kinds is not None and not kinds):
            continue
        judged = _kinds(kinds)
        if is_temporal(field):  # a moment's text is no phone, number or name: only a birth date
            judged = tuple(k for k in judged if k in TEMPORAL_KINDS)
            if not judged:
                continue
        groups.setdefault(judged, {}).update(
            _column_samples(batch.column(field.name), field.name, is_json(field), judged)
        )
    return [f for kinds, samples in groups.items() for f in _judge(samples, kinds)]


def detection_scope(pipeline: Any) -> tuple[set[str], dict[str, set[str]]]:
    """``(skip, residual)`` for a pipeline: columns covered by an anonymizer that replaces
    whole values, tagged (``pii=``, their coverage is enforced elsewhere) or declared safe
    (``not_pii=``) are skipped; a column only a ``ScrubPII`` covers is judged for the kinds
    that scrubber does not look for."""
    structured: set[str] = set()
    free_text: dict[str, set[str]] = {}
    for a in pipeline.anonymizers:
        covered = {canonical(c) for c in a.covers()}
        if getattr(a, "protects", "any") == "free_text":
            for c in covered:
                free_text.setdefault(c, set(DETECTED_KINDS)).difference_update(
                    getattr(a, "kinds", DETECTED_KINDS)
                )
        else:
            structured |= covered
    skip = structured | {canonical(c) for c in getattr(pipeline, "pii", ())}
    skip |= {canonical(c) for c in getattr(pipeline, "not_pii", None) or {}}
    residual = {c: kinds for c, kinds in free_text.items() if c not in skip}
    return skip | set(residual), residual


class PIIWatch:
    """A pipeline's ``detect_pii`` policy over its batches: each sampled column is judged
    once, on the first batch that holds a value in it (so a column that appears mid-run, or
    that was empty so far, is judged before the batch that brings its values is written).
    The batch loop calls :meth:`check` before anything of the batch is written."""

    def __init__(self, pipeline: Any, log: Any):
        self.policy = getattr(pipeline, "detect_pii", DEFAULT_POLICY)
        self.pipeline = pipeline
        self.log = log
        self.judged: set[str] = set()

    def check(
        self, batch: pa.RecordBatch, where: Mapping[str, Any], skip: Collection[str] | None = None
    ) -> list[Finding]:
        """Judge the columns of ``batch`` not judged yet; refuse or warn per the policy.
        ``skip``: the columns not to sample (default: :func:`detection_scope`'s)."""
        if self.policy == "off":
            return []
        pending = [f for f in batch.schema if f.name not in self.judged]
        if not pending:
            return []
        own_skip, residual = detection_scope(self.pipeline)
        skip = own_skip if skip is None else set(skip) | own_skip
        judge: list[str] = []
        for field in pending:
            name = field.name
            if not is_sampled_field(field) or (name in skip and name not in residual):
                self.judged.add(name)
            elif batch.column(name).null_count < batch.num_rows:
                judge.append(name)  # an all-null column is judged on the batch bringing values
        if not judge:
            return []
        self.judged.update(judge)
        findings = detect_batch(
            batch.select(judge), residual={c: k for c, k in residual.items() if c in judge}
        )
        if findings:
            self._act(findings, where)
        return findings

    def _act(self, findings: list[Finding], where: Mapping[str, Any]) -> None:
        described = "; ".join(str(f) for f in findings)
        columns = sorted({f.column for f in findings})
        if self.policy == "warn":
            for f in findings:
                self.log.warning("untagged column {} (detect_pii='warn': loaded as it is)", f)
            return
        first = columns[0]
        kind = next(f.kind for f in findings if f.column == first)
        example = _ANONYMIZER_OF.get(kind, "Pseudonymize([{0!r}], key=etl.secret('ANON_KEY'))")
        raise AnonymizationError(
            f"untagged column(s) {columns} look like personal data: {described}; the batch "
            "was not written",
            where={k: v for k, v in where.items() if k != "after position"},
            hint=f"tag and anonymize it (pii=[{first!r}] and e.g. {example.format(first)}, "
            f"or ScrubPII([{first!r}]) for free text), or declare "
            f"it safe in code: not_pii={{{first!r}: 'why it is not personal data'}} "
            "(detect_pii='warn' loads it and logs the finding)",
        )


# the anonymizer a fix suggests for a kind (default: Pseudonymize, which keeps joins working)
_ANONYMIZER_OF = {
    "birth_date": "Generalize([{0!r}], to='year')",
    "address": "Redact([{0!r}])",
}


__all__ = [
    "CHANCE_MIN_MATCHES",
    "CHECK_DIGIT_SHARE",
    "DEFAULT_POLICY",
    "DETECTED_KINDS",
    "MIN_SHARE",
    "NAME_SHARE",
    "POLICIES",
    "SAMPLE_SIZE",
    "Finding",
    "PIIWatch",
    "check_policy",
    "detect_batch",
    "detect_column",
    "detect_values",
    "detection_scope",
    "is_sampled_field",
]
