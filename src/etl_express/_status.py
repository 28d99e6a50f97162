"""Freshness and availability: how old each pipeline's newest successful load is, and how
much of the last 24 hours / 7 days it was within the pipeline's declared ``freshness``.

Three parts:

* :func:`parse_duration` turns ``Pipeline(freshness="26h")`` into seconds;
* :func:`declare` (when a pipeline opens its store) writes what the pipeline declared into
  ``etl_express.pipelines``, and :func:`observe_run` (with each run's checks) returns the
  ``freshness`` check and records the target's columns when they changed — so ``status``
  and the dashboard judge a pipeline from the store alone, without its code;
* :func:`status` (``etl.status()``, ``etl-express status``) reads the store and returns one
  JSON-like record a pipeline.

Which runs count: a pipeline's whole-source runs (partition ``""``) and parallel runs
(``"*"``); the partitions of a parallel run are its parts, not runs of their own. A pipeline
that only ever ran single partitions (one Airflow mapped task each) is judged on all of them.
The newest successful load is the ``finished_at`` of the newest succeeded run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import ETLConfigError, ETLError
from .store import declarations as declared_in_store
from .store.checkpoints import CheckpointStore
from .store.database import mask_url
from .store.declarations import declarations
from .store.ledger import recent_runs
from .store.schema import SCHEMA, has_store, now

if TYPE_CHECKING:
    from ._engine.spec import PipelineSpec as Pipeline
    from .quality import CheckResult
    from .result import RunResult

# format and quality (pyarrow) are imported where a run uses them: ``etl-express status``
# reads the store without loading pyarrow

#: the partition keys of runs that stand for the whole pipeline (a single run, a parallel run)
WHOLE_RUN_KEYS = ("", "*")
DAY = 86400.0
WEEK = 7 * DAY

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": WEEK}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


# -- durations -------------------------------------------------------------------------


def parse_duration(
    value: str | dt.timedelta | None,
    what: str = "freshness",
    where: dict[str, Any] | None = None,
) -> dt.timedelta | None:
    """The duration in ``value``: a string such as ``"90m"``, ``"26h"``, ``"7d"`` or ``"1h30m"``
    (units s, m, h, d, w) or a :class:`datetime.timedelta`; ``None`` stays ``None``.

    Anything else — a bare number, an unknown unit, zero or a negative duration — is an
    :class:`~etl_express.errors.ETLConfigError` (``where`` names the pipeline).
    """
    hint = f'write {what} as a duration such as "90m", "26h" or "7d", or a datetime.timedelta'
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise ETLConfigError(f"{what} {value!r} is not a duration", where=where, hint=hint)
        seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in parts)
    else:
        raise ETLConfigError(
            f"{what} must be a duration string or a timedelta, got {type(value).__name__} "
            f"{value!r}",
            where=where,
            hint=hint,
        )
    if seconds <= 0:
        raise ETLConfigError(f"{what} must be positive, got {value!r}", where=where, hint=hint)
    return dt.timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str | None:
    """Seconds in the largest unit that divides them: ``93600`` -> ``"26h"``,
    ``5400`` -> ``"90m"``, ``604800`` -> ``"7d"``, ``42.4`` -> ``"42s"``."""
    if seconds is None:
        return None
    whole = round(seconds)
    for unit, size in (("d", int(DAY)), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def format_age(seconds: float | None) -> str | None:
    """A readable age in its two largest units: ``10810`` -> ``"3h 0m"``, ``42`` -> ``"42s"``."""
    if seconds is None:
        return None
    left = max(round(seconds), 0)
    if left < 60:
        return f"{left}s"
    days, left = divmod(left, int(DAY))
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


# -- written by a running pipeline -----------------------------------------------------


def _seconds(pipeline: Pipeline) -> float | None:
    freshness = getattr(pipeline, "freshness", None)
    return None if freshness is None else freshness.total_seconds()


def position_columns(pipeline: Pipeline) -> set[str]:
    """The columns whose values a source position may hold: its key and cursor columns."""
    source = pipeline.source
    cursor = getattr(source, "cursor", None)
    names = [*source.primary_key, *([cursor] if isinstance(cursor, str) else [])]
    from .format import normalize_name

    return {normalize_name(c) for c in names}


def declare(store: CheckpointStore, pipeline: Pipeline) -> None:
    """Record what ``pipeline`` declares (freshness, personal-data columns, target)."""
    schema_name = getattr(pipeline.sink, "schema_name", None)
    table_name = getattr(pipeline.sink, "table_name", None)
    with store.transaction() as conn:
        declared_in_store.declare(
            conn,
            pipeline.name,
            freshness_s=_seconds(pipeline),
            pii=pipeline.pii,
            # fail closed: any tagged key column means positions may hold personal data
            position_pii=bool(position_columns(pipeline) & set(pipeline.pii)),
            target=f"{schema_name}.{table_name}" if schema_name and table_name else None,
        )


def observe_run(
    pipeline: Pipeline, store: CheckpointStore, pkey: str, result: RunResult
) -> list[CheckResult]:
    """The ``freshness`` check of a run that loaded everything, and the target's columns
    recorded in ``table_schemas`` when they changed since the last time.

    ``freshness`` compares the gap between the previous successful load and this run's start
    with the declared freshness: ``warned`` when the data had gone stale before this run
    (the run itself makes it fresh again), ``skipped`` without a declared freshness.
    """
    from .quality import judge, skipped

    _record_schema(pipeline, store, result.run_id)
    freshness_s = _seconds(pipeline)
    if freshness_s is None:
        return [skipped("freshness", "warn", "no freshness declared: Pipeline(freshness=...)")]
    previous = recent_runs(store, pipeline.name, pkey, limit=1)
    start = result.started_at or now()
    last = previous[0]["finished_at"] if previous else None
    gap = (start - last).total_seconds() if last is not None else None
    return [
        judge(
            "freshness",
            gap is None or gap <= freshness_s,
            "warn",
            freshness=format_duration(freshness_s),
            freshness_s=freshness_s,
            previous_success_at=last.isoformat() if last is not None else None,
            gap_s=None if gap is None else round(gap, 1),
        )
    ]


def _record_schema(pipeline: Pipeline, store: CheckpointStore, run_id: str) -> None:
    # every partition may record (a parallel run has no other hook); only a change is stored
    schema_name = getattr(pipeline.sink, "schema_name", None)
    table_name = getattr(pipeline.sink, "table_name", None)
    if not schema_name or not table_name:
        return
    target = f"{schema_name}.{table_name}"
    with store.transaction() as conn:
        columns: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
                ),
                {"s": schema_name, "t": table_name},
            ).all()
        )
        if columns:
            declared_in_store.record_columns(conn, pipeline.name, target, columns, run_id)


# -- read by status and the dashboard ----------------------------------------------------


def read_only(conn: Connection) -> Connection:
    """``conn`` in a read-only transaction: status and the dashboard never write."""
    conn.execute(sa.text("SET TRANSACTION READ ONLY"))
    return conn


#: runs that stand for a pipeline: whole-source and parallel runs, or every run of a
#: pipeline that has none of those (only single partitions were ever run)
SCOPED_RUNS = f"""
    SELECT r.* FROM {SCHEMA}.runs r
    WHERE r.partition IN ('', '*') OR NOT EXISTS (
        SELECT 1 FROM {SCHEMA}.runs w WHERE w.pipeline = r.pipeline AND w.partition IN ('', '*'))
"""


def availability(
    successes: Sequence[dt.datetime],
    freshness_s: float,
    window_s: float,
    at: dt.datetime,
    since: dt.datetime | None = None,
) -> float | None:
    """The share of ``[at - window_s, at]`` (from ``since`` when later: the pipeline's first
    run) during which the newest successful load was at most ``freshness_s`` old.

    A load at ``s`` keeps the data fresh over ``[s, s + freshness_s]``; the share is the
    length of the union of those intervals within the window over the window's length.
    """
    start = at - dt.timedelta(seconds=window_s)
    if since is not None and since > start:
        start = since
    length = (at - start).total_seconds()
    if length <= 0:
        return None
    covered = 0.0
    reach = start
    for s in sorted(successes):
        lo = max(s, reach)
        hi = min(s + dt.timedelta(seconds=freshness_s), at)
        if hi > lo:
            covered += (hi - lo).total_seconds()
            reach = hi
    return min(covered / length, 1.0)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def pipeline_records(conn: Connection, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The status record of every pipeline in the store (see :func:`status`)."""
    from .secrets.masking import mask_secrets

    at = at or now()
    declared = declarations(conn)
    latest = {
        r["pipeline"]: r
        for r in conn.execute(
            sa.text(
                f"SELECT DISTINCT ON (pipeline) * FROM ({SCOPED_RUNS}) s "
                "ORDER BY pipeline, started_at DESC"
            )
        ).mappings()
    }
    finished = {
        r["pipeline"]: r
        for r in conn.execute(
            sa.text(
                f"SELECT DISTINCT ON (pipeline) * FROM ({SCOPED_RUNS}) s "
                "WHERE status <> 'running' ORDER BY pipeline, started_at DESC"
            )
        ).mappings()
    }
    firsts: dict[str, dt.datetime] = dict(
        conn.execute(
            sa.text(f"SELECT pipeline, min(started_at) FROM {SCHEMA}.runs GROUP BY pipeline")
        ).all()
    )
    records = []
    for name in sorted(set(latest) | set(declared)):
        decl = declared.get(name, {})
        freshness_s = decl.get("freshness_s")
        horizon = at - dt.timedelta(seconds=WEEK + (freshness_s or 0))
        successes = [
            row[0]
            for row in conn.execute(
                sa.text(
                    f"SELECT finished_at FROM ({SCOPED_RUNS}) s WHERE pipeline = :p "
                    "AND status = 'succeeded' AND finished_at >= :h ORDER BY finished_at"
                ),
                {"p": name, "h": horizon},
            )
        ]
        last_success = successes[-1] if successes else None
        if last_success is None:  # older than the horizon, or never
            last_success = conn.execute(
                sa.text(
                    f"SELECT max(finished_at) FROM ({SCOPED_RUNS}) s WHERE pipeline = :p "
                    "AND status = 'succeeded'"
                ),
                {"p": name},
            ).scalar()
        records.append(
            _record(
                name,
                latest.get(name),
                finished.get(name),
                last_success,
                successes,
                freshness_s,
                firsts.get(name),
                at,
                mask_secrets,
            )
        )
    return records


def _record(
    name: str,
    last: Any,
    last_finished: Any,
    last_success: dt.datetime | None,
    successes: list[dt.datetime],
    freshness_s: float | None,
    first_run: dt.datetime | None,
    at: dt.datetime,
    mask: Any,
) -> dict[str, Any]:
    age = (at - last_success).total_seconds() if last_success is not None else None
    # nothing declared: fresh is None and only the last run's status judges the pipeline
    fresh = None if freshness_s is None else age is not None and age <= freshness_s
    duration = None
    if last is not None and last["finished_at"] is not None:
        duration = (last["finished_at"] - last["started_at"]).total_seconds()
    rows_read = last["rows_read"] if last is not None else None
    judged = last_finished["status"] if last_finished is not None else None
    error = last["error"] if last is not None else None

    def share(window: float) -> float | None:
        if freshness_s is None:
            return None
        value = availability(successes, freshness_s, window, at, first_run)
        return None if value is None else round(value, 6)

    return {
        "pipeline": name,
        "status": last["status"] if last is not None else "never run",
        "run_id": last["run_id"] if last is not None else None,
        "started_at": _iso(last["started_at"]) if last is not None else None,
        "finished_at": _iso(last["finished_at"]) if last is not None else None,
        "rows": last["rows_written"] if last is not None else None,
        "rows_read": rows_read,
        "rows_quarantined": last["rows_quarantined"] if last is not None else None,
        "duration_s": None if duration is None else round(duration, 3),
        "rows_per_s": (round(rows_read / duration, 1) if duration and rows_read else None),
        "error": mask(error) if error else None,
        "last_completed_status": judged,
        "last_success_at": _iso(last_success),
        "age_s": None if age is None else round(age, 1),
        "freshness": format_duration(freshness_s),
        "freshness_s": freshness_s,
        "fresh": fresh,
        "availability_24h": share(DAY),
        "availability_7d": share(WEEK),
        "ok": fresh is not False and judged == "succeeded",
    }


def status(url: Any = None) -> list[dict[str, Any]]:
    """Freshness, availability and the last run of every pipeline in the store.

    ``url`` is the store's PostgreSQL (default: ``ETL_EXPRESS_DATABASE_URL`` or the embedded
    server). One JSON-like dict a pipeline, sorted by name::

        {"pipeline": "crm_customers", "status": "succeeded", "fresh": True, "ok": True,
         "last_success_at": "2026-11-30T06:00:00+00:00", "age_s": 3600.0,
         "freshness": "26h", "freshness_s": 93600.0, "rows": 1000, "rows_read": 1000,
         "rows_quarantined": 0, "duration_s": 3.2, "rows_per_s": 312.5,
         "availability_24h": 1.0, "availability_7d": 0.97, ...}

    ``status`` is the newest run's (``running`` while one runs; ``last_completed_status``
    is then the one before). ``fresh`` is ``None`` for a pipeline that declares no freshness.
    ``ok`` is what ``etl-express status`` exits on: not stale, and the last completed run
    succeeded. Reading never writes to the store.
    """
    engine = open_store(url)
    with unreachable_as_error(engine), engine.connect() as conn:
        return pipeline_records(read_only(conn))


@contextmanager
def unreachable_as_error(engine: Engine) -> Iterator[None]:
    """A connection failure as an :class:`ETLError` naming the store (password masked)."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        from .sinks.postgres import safe_pg_message

        raise ETLError(
            f"cannot read the store at {mask_url(engine.url)}: {safe_pg_message(exc.orig or exc)}",
            hint="check that the server is up and the URL (--url / ETL_EXPRESS_DATABASE_URL)",
        ) from None


def open_store(url: Any = None) -> Engine:
    """The engine of the store at ``url`` (default: ``ETL_EXPRESS_DATABASE_URL`` or the
    embedded server), after checking it holds an etl-express store; creates nothing."""
    from .secrets import reveal
    from .store.database import engine_for, resolve_url

    engine = engine_for(resolve_url(reveal(url) if url is not None else None))
    with unreachable_as_error(engine):
        found = has_store(engine)
    if not found:
        raise ETLConfigError(
            f"no etl-express store in {mask_url(engine.url)} (schema {SCHEMA} has no runs table)",
            hint="point --url / ETL_EXPRESS_DATABASE_URL at the database your pipelines' "
            "PostgresSink writes to",
        )
    return engine


__all__ = [
    "WHOLE_RUN_KEYS",
    "availability",
    "declare",
    "format_age",
    "format_duration",
    "observe_run",
    "open_store",
    "parse_duration",
    "pipeline_records",
    "status",
]
