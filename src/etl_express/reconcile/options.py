"""The options of delete reconciliation and what a pipeline does with them outside a run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .._durations import DurationLike, parse_duration
from ..errors import ETLConfigError
from ..quality import CheckResult, Policy, judge, skipped
from ..result import RunResult
from ..sources.base import Source
from ..store import reconciliation as saved_state
from ..store.checkpoints import CheckpointStore
from ..transformers.base import Transformer

DELETE_MODES = ("soft", "hard")
#: a reconciliation that would remove more than this share of the target's live rows stops
#: (the ``deletes`` check, policy ``fail``) before deleting anything: an empty or unreadable
#: source must not empty the target
MAX_DELETE_SHARE = 0.5


def check_options(
    name: str, deletes: str | None, every: DurationLike | None
) -> dt.timedelta | None:
    """Validate ``deletes=`` and ``reconcile_every=``; the spacing as a timedelta."""
    if deletes is not None and deletes not in DELETE_MODES:
        raise ETLConfigError(
            f"deletes={deletes!r} is not None, 'soft' or 'hard'",
            where={"pipeline": name},
            hint='deletes="soft" marks rows gone from the source with _etl_deleted_at',
        )
    if every is None:
        return None
    if deletes is None:
        raise ETLConfigError(
            "reconcile_every= without deletes= has nothing to space out",
            where={"pipeline": name},
            hint='add deletes="soft" or "hard"',
        )
    return parse_duration(every, "reconcile_every", {"pipeline": name}, seconds=True, zero=True)


def combined_deletes(partitions: Sequence[RunResult], policy: Policy) -> list[CheckResult]:
    """The partitions' ``deletes`` checks summed, for a parallel run's result (none if the
    partitions reconciled nothing)."""
    found = [c for r in partitions for c in r.checks if c.name == "deletes"]
    if not found:
        return []
    counts = ("segments_compared", "keys_fetched", "rows_reread", "deletes_applied")
    details: dict[str, Any] = {k: sum(c.details.get(k, 0) for c in found) for k in counts}
    details["partitions"] = len(found)
    triggered = [c for c in found if c.triggered]
    if triggered:
        details["guard"] = triggered[0].details.get("guard", triggered[0].status)
    if all(c.status == "skipped" for c in found):
        return [skipped("deletes", policy, found[0].details.get("skipped", "skipped"))]
    return [judge("deletes", not triggered, policy, **details)]


def forget_reconciliation(store: CheckpointStore, pipeline: str, partition: str | None) -> None:
    """Drop the reconciliation state (``pipeline.reset()``): the next one starts over."""
    with store.transaction() as conn:
        saved_state.reset(conn, pipeline, partition)


def deletion_mark_steps(source: Source) -> list[Transformer]:
    """The transformer mapping 1C's ``DeletionMark`` to ``_etl_deleted_at`` (for a 1C source)."""
    from ..sources.onec import OneCODataSource

    if isinstance(source, OneCODataSource):
        from .onec import DeletionMarkToDeletedAt

        return [DeletionMarkToDeletedAt()]
    return []


__all__ = [
    "DELETE_MODES",
    "MAX_DELETE_SHARE",
    "check_options",
    "combined_deletes",
    "deletion_mark_steps",
    "forget_reconciliation",
]
