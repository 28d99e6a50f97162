"""Anonymizing a single raw record before it is quarantined."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..format import normalize_name, records_to_batch, to_json_text, to_records
from .base import Anonymizer
from .scrub import ScrubPII


def anonymize_record(
    record: dict[str, Any], anonymizers: Sequence[Anonymizer], pii: Sequence[str] = ()
) -> dict[str, Any]:
    """Anonymize one raw record (a quarantined one) before it is stored.

    The record's values are taken as text; each anonymizer is applied (except those that
    judge a population of rows, such as ``KAnonymity``), and where one cannot handle the
    raw value its columns are removed entirely. Columns tagged as personal data (``pii``)
    that are still present are removed as well. Finally every remaining text value that no
    anonymizer covered goes through a default ``ScrubPII``, so stray personal data in an
    unexpected field never lands in quarantine.
    """
    row = {
        normalize_name(k): (v if v is None or isinstance(v, str) else to_json_text(v))
        for k, v in record.items()
    }
    batch, _ = records_to_batch([row], pa.schema([pa.field(k, pa.string()) for k in row]))
    for a in anonymizers:
        if not a.row_wise:
            continue
        try:
            batch = a.anonymize(batch)
        except Exception:
            for col in a.covers():
                i = batch.schema.get_field_index(normalize_name(col))
                if i >= 0:
                    batch = batch.remove_column(i)
    covered = {normalize_name(c) for a in anonymizers if a.row_wise for c in a.covers()}
    for col in pii:
        i = batch.schema.get_field_index(col)
        if i >= 0 and col not in covered:
            batch = batch.remove_column(i)
    rest = [f.name for f in batch.schema if f.name not in covered and pa.types.is_string(f.type)]
    if rest:
        batch = ScrubPII(rest).anonymize(batch)
    records = to_records(batch)
    return records[0] if records else {}


__all__ = ["anonymize_record"]
