"""Fields the detector's statistics cannot judge, judged value by value before they are written.

The detector (:mod:`.detection`) samples each column once, on the first batch that holds
values in it, and judges the sample statistically: a kind that random numbers can pass (a
phone's length, an INN's check digit) must hold in several values. A field that appears
after that — a column a REST API renamed on page 2, a column of a declared schema that was
empty until now, a key that appears inside a JSON column (``{"city": ...}`` becoming
``{"city": ..., "phone": ...}``) — may bring one value, which no statistics can judge, and
so may a field on the first batch (a table of two rows, a first page of two records). So
:class:`NewFields` judges each value of such a field alone, by the same rules (e-mails,
phones of any country, Russian identifiers and cards with their check digits): a field of a
column that is not personal by the plan, not covered and not declared safe, holding one
personal value, stops the run before its batch is written (``detect_pii="refuse"``, the
default), is logged (``"warn"``) or is not looked at (``"off"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._positions import kind_words, personal_kinds
from ..errors import AnonymizationError
from ..format import is_json_field
from .buffers import take_indices
from .detection import CHANCE_MIN_MATCHES
from .guard import judge_values
from .sampling import SAMPLE_SIZE, key_path, python_values

WHOLE = "$"  # the field that is a text column's values themselves
_PLAIN_KEY = re.compile(r"^[^\W\d][\w\-]{0,63}$")  # a JSON key shown in a message


def _sample(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Up to :data:`SAMPLE_SIZE` non-null values, evenly spread (nested ones as Python)."""
    values = pc.drop_null(column)
    step = max(len(values) // SAMPLE_SIZE, 1)
    picked = values.take(take_indices(np.arange(0, len(values), step)[:SAMPLE_SIZE]))
    return python_values(picked)


def _fields(field: pa.Field, values: list[Any]) -> dict[str, list[str]]:
    """The texts of a column by field: the values themselves for a text column, the scalars
    at each place inside a JSON column (``contact.phone``, ``phones[]``)."""
    if not (is_json_field(field) or pa.types.is_nested(field.type)):
        texts = [v if isinstance(v, str) else str(v) for v in values if v not in (None, "")]
        return {WHOLE: texts} if texts else {}
    out: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():  # a key that is not a plain name shows as *
                name = str(key) if _PLAIN_KEY.match(str(key)) else "*"
                if name == "*" and str(key):  # and is judged itself (a map keyed by e-mail)
                    out.setdefault(key_path(path), []).append(str(key))
                walk(child, f"{path}.{name}" if path else name)
        elif isinstance(node, list):
            for child in node:
                walk(child, f"{path}[]")
        elif node not in (None, "") and not isinstance(node, bool):
            out.setdefault(path or WHOLE, []).append(str(node))

    for value in values:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:  # not JSON after all: judged as text
                pass
        walk(value, "")
    return out


class NewFields:
    """The fields seen so far in a run's batches; :meth:`check` judges the new ones."""

    def __init__(self, pipeline: Any, log: Any):
        self.policy = getattr(pipeline, "detect_pii", "refuse")
        self.log = log
        self.seen: dict[str, set[str]] | None = None  # column -> fields with values so far

    def check(
        self, batch: pa.RecordBatch, where: Mapping[str, Any], skip: Collection[str]
    ) -> list[tuple[str, list[str]]]:
        """Judge the fields of ``batch`` (what would be written) that earlier batches did not
        have, and on the first batch those with fewer values than the detector's statistics
        need (:data:`~.detection.CHANCE_MIN_MATCHES`), value by value; ``skip``: the columns not to judge (personal by the plan,
        covered, declared safe). Returns the findings (``column.path``, kinds)."""
        if self.policy == "off":
            return []
        fields: dict[str, dict[str, list[str]]] = {}
        for f in batch.schema:
            if _judged_by_value(f) and f.name not in skip:
                fields[f.name] = _fields(f, _sample(batch.column(f.name)))
        first = self.seen is None
        seen = self.seen if self.seen is not None else {}
        findings = []
        for column, by_path in fields.items():
            known = seen.setdefault(column, set())
            for path, texts in by_path.items():
                # new mid-run, or on the first batch too few values for the statistics
                if path not in known and (not first or len(texts) < CHANCE_MIN_MATCHES):
                    kinds = personal_kinds(texts, judge_values)
                    if kinds:
                        findings.append((column if path == WHOLE else f"{column}.{path}", kinds))
                known.add(path)
        self.seen = seen
        if findings:
            self._act(findings, where)
        return findings

    def _act(self, findings: list[tuple[str, list[str]]], where: Mapping[str, Any]) -> None:
        described = "; ".join(
            f"{c!r} holds " + " and ".join(kind_words(k) for k in kinds) for c, kinds in findings
        )
        if self.policy == "warn":
            self.log.warning("field(s) judged value by value (detect_pii='warn'): {}", described)
            return
        first = findings[0][0].split(".")[0]
        raise AnonymizationError(
            f"untagged field(s) {[c for c, _ in findings]} look like personal data, judged value "
            f"by value ({described}): each appeared mid-run or has too few values for the "
            "detector's sampling statistics; the batch was not written",
            where={k: v for k, v in where.items() if k != "after position"},
            hint=f"tag and anonymize it (pii=[{first!r}] and e.g. Pseudonymize([{first!r}], "
            f"key=etl.secret('ANON_KEY'))) or declare it safe in code: not_pii={{{first!r}: "
            "'why it is not personal data'}; a renamed or optional field of a source that "
            "cannot tell its columns: declare them (e.g. RESTSource(schema=...)) so that it is "
            "known before the first batch",
        )


__all__ = ["WHOLE", "NewFields"]


def _judged_by_value(field: pa.Field) -> bool:
    """The fields judged value by value: text (JSON text included), dictionary-encoded text
    and nested values (judged as JSON). Numbers and dates are left to the detector's column
    statistics: one bare number alone says nothing (a key or an amount looks like a phone)."""
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_nested(t)
        or is_json_field(field)
    )
