"""Anonymizing one raw record before it is quarantined.

A record that could not be converted (or that the source rejected) has not been through the
pipeline's anonymizers yet, and it is alone: it cannot be judged against a population. So
:func:`anonymize_record` takes its values as text and applies **every** anonymizer of the
pipeline:

* a row-wise anonymizer (``Pseudonymize``, ``Redact``, ``Mask``, ``Generalize``, column
  ``Suppress``, ``ScrubPII``) runs on the one-row batch; where it cannot handle the raw value
  (or the record lacks one of its columns) its columns are removed entirely;
* a population anonymizer (``KAnonymity``, ``Suppress(quasi_identifiers=...)``) would drop a
  record of a class of one, so every column it needs (its quasi-identifiers, and the columns a
  ``Suppress`` drops) is removed from the record;
* columns tagged as personal data that are still present are removed;
* every remaining text value no anonymizer covered goes through a default ``ScrubPII``, so
  stray personal data in an unexpected field never lands in quarantine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from ..format import normalize_name, records_to_batch, to_json_text, to_records
from .base import Anonymizer
from .columns import canonical, required_columns


def _drop(batch: pa.RecordBatch, columns: Iterable[str]) -> pa.RecordBatch:
    for col in columns:
        i = batch.schema.get_field_index(canonical(col))
        if i >= 0:
            batch = batch.remove_column(i)
    return batch


def anonymize_record(
    record: dict[str, Any], anonymizers: Sequence[Anonymizer], pii: Iterable[str] = ()
) -> dict[str, Any]:
    """The quarantine-safe form of one raw record (see the module docstring)."""
    from .scrub import ScrubPII

    row = {
        normalize_name(k): (v if v is None or isinstance(v, str) else to_json_text(v))
        for k, v in record.items()
    }
    batch, _ = records_to_batch([row], pa.schema([pa.field(k, pa.string()) for k in row]))
    covered: set[str] = set()
    for a in anonymizers:
        needed = required_columns(a)
        if not a.row_wise:
            batch = _drop(batch, [*needed, *a.covers()])
            continue
        covered |= {canonical(c) for c in a.covers()}
        try:
            batch = a.anonymize(batch)
        except Exception:  # a raw value it cannot take, or a column the record lacks
            batch = _drop(batch, [*needed, *a.covers()])
    batch = _drop(batch, [c for c in pii if canonical(c) not in covered])
    rest = [f.name for f in batch.schema if f.name not in covered and pa.types.is_string(f.type)]
    if rest:
        batch = ScrubPII(rest).anonymize(batch)
    records = to_records(batch)
    return records[0] if records else {}


__all__ = ["anonymize_record"]
