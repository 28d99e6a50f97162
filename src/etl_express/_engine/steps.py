"""The steps of a batch: its transformers, then its anonymizers.

A run's anonymizers are its largest CPU cost after the databases' own work. When every step
may run on two batches at once (:func:`steps_pool`), the batch loop runs the steps of two
consecutive batches in two threads (the anonymizers' kernels release the GIL), and keeps
everything else in batch order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..anonymizers.base import Anonymizer
from ..anonymizers.guard import check_step_columns
from ..errors import AnonymizationError, ETLError
from ..format import keep_declared_types, to_records
from ..transformers.base import Transformer
from .spec import PipelineSpec


@dataclass
class Stepped:
    """A batch after its transformers and anonymizers."""

    batch: pa.RecordBatch
    refused: list[tuple[dict[str, Any], str, int]]
    observed: list[pa.Schema]


def steps_pool(pipeline: PipelineSpec) -> ThreadPoolExecutor | None:
    """A thread for the steps of the next batch, when every step may run on two batches at
    once: no transformers (a user's step may keep state from batch to batch) and only the
    built-in anonymizers that keep none (``ScrubPII`` without the optional NER kinds)."""
    from ..anonymizers import Generalize, Mask, Pseudonymize, Redact, ScrubPII
    from ..anonymizers.scrub_rules import KINDS

    steps = pipeline.anonymizers
    if pipeline.transformers or not steps:
        return None
    for step in steps:
        if type(step) is ScrubPII and set(step.kinds) <= set(KINDS):
            continue
        if type(step) not in (Pseudonymize, Generalize, Mask, Redact):
            return None
    return ThreadPoolExecutor(2, thread_name_prefix="etl-express-steps")


def run_steps(pipeline: PipelineSpec, batch: pa.RecordBatch, where: dict[str, Any]) -> Stepped:
    """Transformers then anonymizers; also the records a transformer refused (raw, as they
    entered that step, with the reason and the step's index: the plan's stage of their
    columns), for quarantine, and each transformer's output schema."""
    steps: list[Transformer | Anonymizer] = [*pipeline.transformers, *pipeline.anonymizers]
    observed: list[pa.Schema] = []
    refused: list[tuple[dict[str, Any], str, int]] = []
    for index, step in enumerate(steps):
        if not isinstance(step, Transformer):
            check_step_columns(step, batch.schema.names, where)
        try:
            before = batch
            if isinstance(step, Transformer):
                batch, bad = step.transform_rows(batch)
                observed.append(batch.schema)
                if bad:
                    rows = before.take(pa.array([i for i, _ in bad], type=pa.int64()))
                    refused += [
                        (record, why, index)
                        for record, (_, why) in zip(to_records(rows), bad, strict=True)
                    ]
                batch = keep_declared_types(before.schema, batch)
            else:
                batch = step.anonymize(batch)
                # an anonymized column takes the type its anonymizer produces
                batch = keep_declared_types(before.schema, batch, step.covers())
        except ETLError:
            raise
        except Exception as exc:
            kind = ETLError if isinstance(step, Transformer) else AnonymizationError
            raise kind(
                f"{type(step).__name__} failed: {type(exc).__name__}",
                where=where,
                hint="check the step's configuration against the batch's columns and types",
            ) from None
    return Stepped(batch, refused, observed)


__all__ = ["Stepped", "run_steps", "steps_pool"]
