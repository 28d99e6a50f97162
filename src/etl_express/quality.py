"""Data-quality checks run on every pipeline run.

A check returns a :class:`CheckResult`; its ``policy`` decides what a failure does:
``fail`` stops the run (after committing what is valid), ``warn`` logs and records it,
``ignore`` only records it. The checks, by name:

* ``reconciliation`` — every row read was written, quarantined or filtered (per batch and
  per run);
* ``error_rate`` — quarantined / read stays within the pipeline's ``max_error_rate``;
* ``required_columns`` — the pipeline's ``required=[...]`` columns are never null or empty;
* ``empty_columns`` — a column that had values in every recent run is not suddenly all empty;
* ``row_count_range`` — rows read are within [min / 2, max * 2] of the last 10 succeeded
  runs (needs 3);
* ``duplicate_keys`` — the target holds no two rows with the same primary key;
* ``target_count`` — after a full load, the target holds as many of this source's rows as
  the run delivered;
* ``deletes`` — with ``Pipeline(deletes=...)``: the reconciliation's counts (segments compared,
  keys fetched, rows re-read, deletes applied); it fails, before deleting anything, when the
  source lacks more than half of the target's live rows.
* ``freshness`` — the previous successful load was no older than the pipeline's
  ``freshness`` when this run started (always ``warn``; ``skipped`` without a declared
  freshness; see :mod:`etl_express._status`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeGuard, get_args

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import ETLConfigError
from .format import LINEAGE_COLUMNS, normalize_name
from .store import tables
from .store.tables import TableName

Policy = Literal["fail", "warn", "ignore"]
Status = Literal["passed", "failed", "warned", "ignored", "skipped"]

DEFAULT_POLICIES: dict[str, Policy] = {
    "reconciliation": "fail",
    "error_rate": "fail",
    "required_columns": "fail",
    "duplicate_keys": "fail",
    "empty_columns": "warn",
    "row_count_range": "warn",
    "target_count": "warn",
    "deletes": "fail",
}

#: ``row_count_range``: how many earlier runs are compared, how many are needed, and the factor
ROW_COUNT_HISTORY = 10
ROW_COUNT_MIN_HISTORY = 3
ROW_COUNT_FACTOR = 2.0


@dataclass
class CheckResult:
    """The outcome of one quality check in one run."""

    name: str
    status: Status
    policy: Policy = "fail"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def why(self) -> str | None:
        """Why the check was skipped (every skip says why), else ``None``."""
        return self.details.get("skipped") if self.status == "skipped" else None

    def summary(self) -> str:
        """``status`` with the reason of a skip: ``"skipped (no required columns declared)"``."""
        return f"{self.status} ({self.why})" if self.why else self.status

    @property
    def triggered(self) -> bool:
        """The check found a problem (whatever its policy made of it)."""
        return self.status in ("failed", "warned", "ignored")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(name: str, passed: bool, policy: Policy, **details: Any) -> CheckResult:
    """A result named ``name`` that failed (or warned, per ``policy``) unless ``passed``."""
    if passed:
        status: Status = "passed"
    else:
        status = "failed" if policy == "fail" else "warned" if policy == "warn" else "ignored"
    return CheckResult(name, status, policy, details)


def skipped(name: str, policy: Policy, why: str) -> CheckResult:
    """A check that did not run, and why (shown wherever the check is)."""
    if not why.strip():
        raise ValueError(f"check {name!r} skipped without saying why")
    return CheckResult(name, "skipped", policy, {"skipped": why})


def _is_policy(value: str) -> TypeGuard[Policy]:
    return value in get_args(Policy)


def resolve_policies(checks: Mapping[str, str] | None) -> dict[str, Policy]:
    """The default policies overridden by ``checks``; unknown names or policies are refused."""
    policies = dict(DEFAULT_POLICIES)
    for name, policy in (checks or {}).items():
        if name not in DEFAULT_POLICIES:
            raise ETLConfigError(
                f"unknown quality check {name!r}",
                hint="choose from " + ", ".join(sorted(DEFAULT_POLICIES)),
            )
        if not _is_policy(policy):
            raise ETLConfigError(
                f"policy {policy!r} for check {name!r} is not fail, warn or ignore",
                hint=f'e.g. checks={{"{name}": "warn"}}',
            )
        policies[name] = policy
    return policies


def reconciliation(
    read: int,
    written: int,
    quarantined: int,
    filtered: int,
    policy: Policy = "fail",
    unbalanced_batches: int = 0,
) -> CheckResult:
    """Every row read was written, quarantined or deliberately filtered: nothing lost."""
    return judge(
        "reconciliation",
        read == written + quarantined + filtered and unbalanced_batches == 0,
        policy,
        rows_read=read,
        rows_written=written,
        rows_quarantined=quarantined,
        rows_filtered=filtered,
        unbalanced_batches=unbalanced_batches,
    )


def empty_counts(batch: pa.RecordBatch) -> dict[str, int]:
    """Per column (lineage columns aside): how many values are null or blank text."""
    return {
        name: _empty_count(column)
        for name, column in zip(batch.schema.names, batch.columns)
        if name not in LINEAGE_COLUMNS
    }


def _empty_count(column: pa.Array) -> int:
    """How many values are null, or empty or whitespace-only text -- as three disjoint counts
    (the null count; the valid empty strings; ``utf8_is_space``, false on an empty string and
    null on a null), not one mask combined from four per value: a batch's profile costs a
    third of what it did."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column.null_count
    # no Python literal in these calls: pyarrow imports pandas to convert one
    empty = pc.sum(pc.invert(pc.cast(pc.binary_length(column), pa.bool_()))).as_py() or 0
    blank = pc.sum(pc.utf8_is_space(column)).as_py() or 0
    return column.null_count + empty + blank


class QualityTracker:
    """Accumulates per-batch facts for the run's checks, in memory bounded by the column count."""

    def __init__(self, required: Sequence[str] = ()):
        self.required = [normalize_name(c) for c in required]
        self.rows = 0
        self.required_violations: dict[str, int] = dict.fromkeys(self.required, 0)
        self.non_empty: dict[str, int] = {}
        self.unbalanced_batches = 0

    def observe(
        self,
        batch: pa.RecordBatch,
        *,
        rows_in: int,
        written: int,
        quarantined: int,
        filtered: int,
        empties: Mapping[str, int] | None = None,
    ) -> None:
        """Take in one batch as it went to the sink (after transformers and anonymizers).

        ``empties``: the batch's :func:`empty_counts`, when they were counted beforehand
        (the runner counts them before the load, off the critical path)."""
        if rows_in != written + quarantined + filtered:
            self.unbalanced_batches += 1
        n = batch.num_rows
        self.rows += n
        if not n:
            return
        names = batch.schema.names
        counts = empty_counts(batch) if empties is None else empties
        for name in names:
            if name in LINEAGE_COLUMNS:
                continue
            empty = counts[name]
            self.non_empty[name] = self.non_empty.get(name, 0) + (n - empty)
            if name in self.required_violations:
                self.required_violations[name] += empty
        for name in self.required:
            if name not in names:
                self.required_violations[name] += n

    def required_check(self, policy: Policy) -> CheckResult:
        if not self.required:
            return skipped("required_columns", policy, "no required columns declared")
        bad = {c: n for c, n in self.required_violations.items() if n}
        return judge("required_columns", not bad, policy, required=self.required, empty_rows=bad)

    def empty_columns_check(
        self, policy: Policy, history: Sequence[Mapping[str, Any]]
    ) -> CheckResult:
        """``history``: the details this check stored in earlier succeeded runs, newest first."""
        profile = {"rows": self.rows, "non_empty": dict(self.non_empty)}
        earlier = [h for h in history if h.get("rows")]
        if not self.rows or not earlier:
            return CheckResult(
                "empty_columns",
                "passed",
                policy,
                {**profile, "judged": False, "why": "no rows" if not self.rows else "no history"},
            )
        always_filled = [
            c
            for c in self.non_empty
            if all((h.get("non_empty") or {}).get(c, 0) > 0 for h in earlier)
        ]
        now_empty = sorted(c for c in always_filled if self.non_empty[c] == 0)
        return judge(
            "empty_columns",
            not now_empty,
            policy,
            **profile,
            judged=True,
            suddenly_empty=now_empty,
            compared_runs=len(earlier),
        )


def row_count_check(rows: int, history: Sequence[int], policy: Policy) -> CheckResult:
    """``history``: rows read by the latest succeeded runs of the same pipeline and partition."""
    if len(history) < ROW_COUNT_MIN_HISTORY:
        return CheckResult(
            "row_count_range",
            "passed",
            policy,
            {
                "rows": rows,
                "judged": False,
                "why": f"fewer than {ROW_COUNT_MIN_HISTORY} earlier runs",
            },
        )
    low = min(history) / ROW_COUNT_FACTOR
    high = max(history) * ROW_COUNT_FACTOR
    return judge(
        "row_count_range",
        low <= rows <= high,
        policy,
        rows=rows,
        expected_min=low,
        expected_max=high,
        compared_runs=len(history),
        judged=True,
    )


def error_rate_check(
    quarantined: int, read: int, max_error_rate: float, policy: Policy
) -> CheckResult:
    rate = quarantined / read if read else 0.0
    return judge(
        "error_rate",
        rate <= max_error_rate,
        policy,
        rows_quarantined=quarantined,
        rows_read=read,
        error_rate=rate,
        max_error_rate=max_error_rate,
    )


# -- checks on the target table (PostgreSQL) ----------------------------------------------


def _table(target: TableName, *columns: str) -> sa.TableClause:
    return sa.table(target.name, *(sa.column(c) for c in columns), schema=target.schema)


def duplicate_keys_check(
    conn: Connection, target: TableName, primary_key: Sequence[str], policy: Policy
) -> CheckResult:
    """No two rows of the target share a primary key (free when a unique index enforces it)."""
    if not primary_key:
        return skipped("duplicate_keys", policy, "the source declares no primary key")
    if sorted(primary_key) in tables.unique_keys(conn, target):  # one catalog read, usually
        return judge("duplicate_keys", True, policy, duplicate_keys=0, enforced_by="unique index")
    have_columns = tables.columns(conn, target)
    if not have_columns:
        return skipped("duplicate_keys", policy, "the target table does not exist yet")
    table = _table(target, *primary_key, "_etl_valid_to")
    current = "_etl_valid_to" in have_columns  # history: the current versions
    groups = (
        sa.select(sa.literal(1))
        .select_from(table)
        .where(table.c["_etl_valid_to"].is_(None) if current else sa.true())
        .group_by(*(table.c[c] for c in primary_key))
        .having(sa.func.count() > 1)
        .subquery("d")
    )
    dup = conn.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one()
    return judge(
        "duplicate_keys", dup == 0, policy, duplicate_keys=int(dup), primary_key=list(primary_key)
    )


def target_count_check(
    conn: Connection,
    target: TableName,
    source_name: str,
    expected: int,
    policy: Policy,
    copied: int | None = None,
    columns: Collection[str] | None = None,
) -> CheckResult:
    """After a full load: the target's rows from this source equal the rows delivered.

    ``columns``: the target's columns when the caller knows them (the sink that prepared
    the table in this run): no catalog read before the count.

    ``copied``: the rows of a table the run created and alone loaded, as PostgreSQL counted
    them in its ``COPY`` command tags (:meth:`etl_express.sinks.PostgresSink.copied_rows`):
    no row can linger there from before the run, so the server's own count of what it
    inserted is the table's count, without reading the whole table again."""
    if copied is not None:
        return judge(
            "target_count",
            copied == expected,
            policy,
            source_rows=expected,
            target_rows=copied,
            counted_by="COPY row counts (a table this run created)",
        )
    have_columns = columns if columns is not None else tables.columns(conn, target)
    if not have_columns:  # no such table
        return judge(
            "target_count",
            expected == 0,
            policy,
            source_rows=expected,
            target_rows=0,
            counted_by="no such table",
        )
    have = tables.count_rows(
        conn,
        target,
        source=source_name if "_etl_source" in have_columns else None,
        current="_etl_valid_to" in have_columns,  # history: the current versions
    )
    return judge(
        "target_count",
        have == expected,
        policy,
        source_rows=expected,
        target_rows=have,
        counted_by="table scan",
    )


__all__ = [
    "DEFAULT_POLICIES",
    "CheckResult",
    "Policy",
    "QualityTracker",
    "duplicate_keys_check",
    "empty_counts",
    "error_rate_check",
    "judge",
    "reconciliation",
    "resolve_policies",
    "row_count_check",
    "skipped",
    "target_count_check",
]
