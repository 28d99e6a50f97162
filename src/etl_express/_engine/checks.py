"""End-of-run quality checks: over what a run read and wrote, and over the target table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._durations import format_duration
from ..anonymizers.guard import declarations_check
from ..errors import ETLError, QualityError
from ..quality import (
    ROW_COUNT_HISTORY,
    CheckResult,
    QualityTracker,
    duplicate_keys_check,
    error_rate_check,
    judge,
    reconciliation,
    row_count_check,
    skipped,
    target_count_check,
)
from ..reconcile import combined_deletes
from ..result import RunResult
from ..retry import LineLogger, as_etl_error
from ..store import checks as recorded_checks
from ..store._run_history import recent_runs
from ..store.checkpoints import CheckpointStore
from ..store.ledger import LedgerRun, RunStart
from ..store.schema import now
from .declarations import record_target_columns, record_target_columns_on
from .spec import PipelineSpec


def checked(
    pipeline: PipelineSpec,
    run: LedgerRun,
    result: RunResult,
    compute: Callable[[], list[CheckResult]],
) -> list[CheckResult]:
    """Run the end-of-run checks and record them, retried like a batch on a transient error.

    Every batch is committed by now: an error here never discards that work; it fails the
    run with a message saying so (the next run resumes after the committed batches).
    """
    try:
        found = pipeline.retry.call(compute, what="running the quality checks", log=run.log)
        run.record_checks(found)
        return found
    except ETLError:
        raise
    except Exception as exc:
        raise as_etl_error(
            exc,
            what="the end-of-run quality checks could not be completed",
            where={
                "pipeline": pipeline.name,
                "partition": run.partition or "all",
                "run": run.run_id,
            },
            hint=f"the run's {result.rows_written} written rows are committed and stay; "
            "the next run resumes after them and runs the checks again",
        ) from None


def run_checks(
    pipeline: PipelineSpec,
    result: RunResult,
    tracker: QualityTracker,
    pkey: str,
    run: LedgerRun | None = None,
) -> list[CheckResult]:
    """Checks over what this run read and wrote. With the ledger's ``run``, the history
    they compare with is what the run's start read, and the target's columns are recorded
    when the run closes (no statements of their own)."""
    p = pipeline.check_policies
    store = pipeline.store
    started = run.started if run is not None else None
    checks = [
        reconciliation(
            result.rows_read,
            result.rows_written,
            result.rows_quarantined,
            result.rows_filtered,
            p["reconciliation"],
            tracker.unbalanced_batches,
        ),
        error_rate_check(
            result.rows_quarantined, result.rows_read, pipeline.max_error_rate, p["error_rate"]
        ),
        tracker.required_check(p["required_columns"]),
        tracker.empty_columns_check(
            p["empty_columns"],
            started.empty_columns
            if started is not None
            else recorded_checks.recent_details(store, pipeline.name, pkey, "empty_columns"),
        ),
    ]
    history = (
        started.rows_read[:ROW_COUNT_HISTORY]
        if started is not None
        else [
            r["rows_read"] for r in recent_runs(store, pipeline.name, pkey, limit=ROW_COUNT_HISTORY)
        ]
    )
    checks.append(row_count_check(result.rows_read, history, p["row_count_range"]))
    checks.append(freshness_check(pipeline, store, pkey, result, started))
    # for status: only a change is stored
    if run is not None:
        run.at_close(lambda conn: record_target_columns_on(conn, pipeline, result.run_id))
    else:
        record_target_columns(pipeline, store, result.run_id)
    for a in pipeline.anonymizers:  # e.g. KAnonymity's smallest equivalence class
        checks.extend(a.checks())
    checks.extend(declarations_check(pipeline))  # not_pii=: recorded with every run
    return checks


def freshness_check(
    pipeline: PipelineSpec,
    store: CheckpointStore,
    pkey: str,
    result: RunResult,
    started: RunStart | None = None,
) -> CheckResult:
    """``freshness``: the gap between the previous successful load and this run's start
    against the declared freshness — ``warned`` when the data had gone stale before this run
    (the run itself makes it fresh again), ``skipped`` without a declared freshness."""
    if pipeline.freshness is None:
        return skipped("freshness", "warn", "no freshness declared: Pipeline(freshness=...)")
    freshness_s = pipeline.freshness.total_seconds()
    if started is not None:
        last = started.last_success_at
    else:
        previous = recent_runs(store, pipeline.name, pkey, limit=1)
        last = previous[0]["finished_at"] if previous else None
    start = result.started_at or now()
    gap = (start - last).total_seconds() if last is not None else None
    return judge(
        "freshness",
        gap is None or gap <= freshness_s,
        "warn",
        freshness=format_duration(freshness_s),
        freshness_s=freshness_s,
        previous_success_at=last.isoformat() if last is not None else None,
        gap_s=None if gap is None else round(gap, 1),
    )


def combined_checks(pipeline: PipelineSpec, combined: RunResult) -> list[CheckResult]:
    """Checks over the sum of a parallel run's partitions."""
    p = pipeline.check_policies
    return [
        reconciliation(
            combined.rows_read,
            combined.rows_written,
            combined.rows_quarantined,
            combined.rows_filtered,
            p["reconciliation"],
        ),
        error_rate_check(
            combined.rows_quarantined,
            combined.rows_read,
            pipeline.max_error_rate,
            p["error_rate"],
        ),
        *combined_deletes(combined.partitions, p["deletes"]),
    ]


def table_checks(pipeline: PipelineSpec, full_load: bool, rows_written: int) -> list[CheckResult]:
    """Checks over the whole target table (once per run, also for a parallel run)."""
    p = pipeline.check_policies
    target = pipeline.sink.target_table()
    if target is None:
        why = f"{type(pipeline.sink).__name__} is not a PostgreSQL table"
        return [
            skipped("duplicate_keys", p["duplicate_keys"], why),
            skipped("target_count", p["target_count"], why),
        ]
    # what the sink established about the target in this run (the key it created or built,
    # the columns it prepared) is not asked of the catalog again
    known = getattr(pipeline.sink, "known_target", None)
    columns, enforced = known() if known is not None else (None, None)
    key = list(pipeline.source.primary_key)
    with pipeline.store.reading() as conn:  # reads only: no transaction
        if key and enforced == sorted(key):
            duplicates = judge(
                "duplicate_keys",
                True,
                p["duplicate_keys"],
                duplicate_keys=0,
                enforced_by="unique index",
            )
        else:
            duplicates = duplicate_keys_check(conn, target, key, p["duplicate_keys"])
        checks = [duplicates]
        if full_load:
            # a delete reconciliation may have removed rows the sink's own count still holds
            copied = getattr(pipeline.sink, "copied_rows", None)
            checks.append(
                target_count_check(
                    conn,
                    target,
                    pipeline.source.name,
                    rows_written,
                    p["target_count"],
                    copied() if copied is not None and not pipeline.deletes else None,
                    columns=columns,
                )
            )
        else:
            checks.append(skipped("target_count", p["target_count"], "not a full load"))
    return checks


def raise_failed(checks: list[CheckResult], where: dict[str, Any], log: LineLogger) -> None:
    """Warn about warned checks; raise :class:`QualityError` when a ``fail`` check failed."""
    for c in checks:
        if c.status == "warned":
            log.warning("quality check {} warned: {}", c.name, c.details)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise QualityError(
            "quality check(s) failed: " + "; ".join(describe(c) for c in failed),
            where=where,
            hint="what is valid is committed; inspect etl_express.quality_checks and "
            "`etl-express quarantine list` for this run",
        )


def describe(check: CheckResult) -> str:
    if check.name == "error_rate":
        d = check.details
        return (
            f"error rate {d['error_rate']:.4%} ({d['rows_quarantined']} of {d['rows_read']} rows quarantined) "
            f"is above max_error_rate {d['max_error_rate']:.4%}"
        )
    shown = {k: v for k, v in check.details.items() if k not in ("non_empty",)}
    return f"{check.name} {shown}"


__all__ = [
    "checked",
    "combined_checks",
    "describe",
    "freshness_check",
    "raise_failed",
    "run_checks",
    "table_checks",
]
