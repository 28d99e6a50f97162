"""Freshness and availability: how old each pipeline's newest successful load is, and how
much of the last 24 hours / 7 days it was within the pipeline's declared ``freshness``.

:func:`status` (``etl.status()``, ``etl-express status``) reads the store — the runs and what
each pipeline declared (``_engine/declarations.py`` records it) — and returns one JSON-like
record a pipeline, so a pipeline is judged from the store alone, without its code.

Which runs count: a pipeline's whole-source runs (partition ``""``) and parallel runs
(``"*"``); the partitions of a parallel run are its parts, not runs of their own. A pipeline
that only ever ran single partitions (one Airflow mapped task each) is judged on all of them.
The newest successful load is the ``finished_at`` of the newest succeeded run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._durations import DAY, WEEK, format_duration
from .store.database import SCHEMA

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow
    from sqlalchemy.engine import Connection

    from .secrets import SecretLike

# ``etl-express status`` reads the store on one psycopg connection: neither SQLAlchemy nor
# pyarrow loads (tests/cli/test_light.py); the dashboard passes its SQLAlchemy connection

#: the partition keys of runs that stand for the whole pipeline (a single run, a parallel run)
WHOLE_RUN_KEYS = ("", "*")


# -- read by status and the dashboard ----------------------------------------------------


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


def pipeline_records(
    conn: psycopg.Connection[Any] | Connection, at: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The status record of every pipeline in the store (see :func:`status`), read with a
    handful of queries whatever the number of pipelines. ``conn`` is a psycopg connection,
    or a SQLAlchemy one whose transaction the queries join (the dashboard's)."""
    import psycopg
    from psycopg.rows import dict_row

    from ._masking import mask_secrets
    from .store.database import psycopg_connection

    driver = conn if isinstance(conn, psycopg.Connection) else psycopg_connection(conn)
    cur = driver.cursor(row_factory=dict_row)

    def rows(sql: str, params: Mapping[str, Any] | None = None) -> list[DictRow]:
        return cur.execute(sql, params).fetchall()

    at = at or dt.datetime.now(dt.timezone.utc)
    freshness: dict[str, float | None] = {}
    if rows(f"SELECT to_regclass('{SCHEMA}.pipelines') IS NOT NULL AS found")[0]["found"]:
        # what each pipeline declared (a store written before declarations has none)
        freshness = {
            r["pipeline"]: r["freshness_s"]
            for r in rows(f"SELECT pipeline, freshness_s FROM {SCHEMA}.pipelines")
        }
    latest = {
        r["pipeline"]: r
        for r in rows(
            f"SELECT DISTINCT ON (pipeline) * FROM ({SCOPED_RUNS}) s "
            "ORDER BY pipeline, started_at DESC"
        )
    }
    finished = {
        r["pipeline"]: r
        for r in rows(
            f"SELECT DISTINCT ON (pipeline) * FROM ({SCOPED_RUNS}) s "
            "WHERE status <> 'running' ORDER BY pipeline, started_at DESC"
        )
    }
    firsts: dict[str, dt.datetime] = {
        r["pipeline"]: r["first"]
        for r in rows(
            f"SELECT pipeline, min(started_at) AS first FROM {SCHEMA}.runs GROUP BY pipeline"
        )
    }
    last_success: dict[str, dt.datetime] = {
        r["pipeline"]: r["last"]
        for r in rows(
            f"SELECT pipeline, max(finished_at) AS last FROM ({SCOPED_RUNS}) s "
            "WHERE status = 'succeeded' GROUP BY pipeline"
        )
    }
    # the successes within the longest window availability looks at (a week and the
    # pipeline's freshness), each pipeline's own window cut below
    reach = WEEK + max((f for f in freshness.values() if f is not None), default=0.0)
    successes: dict[str, list[dt.datetime]] = {}
    for r in rows(
        f"SELECT pipeline, finished_at FROM ({SCOPED_RUNS}) s WHERE status = 'succeeded' "
        "AND finished_at >= %(h)s ORDER BY pipeline, finished_at",
        {"h": at - dt.timedelta(seconds=reach)},
    ):
        successes.setdefault(r["pipeline"], []).append(r["finished_at"])
    records = []
    for name in sorted(set(latest) | set(freshness)):
        freshness_s = freshness.get(name)
        horizon = at - dt.timedelta(seconds=WEEK + (freshness_s or 0))
        recent = [s for s in successes.get(name, []) if s >= horizon]
        records.append(
            _record(
                name,
                latest.get(name),
                finished.get(name),
                last_success.get(name),
                recent,
                freshness_s,
                firsts.get(name),
                at,
                mask_secrets,
            )
        )
    return records


def _record(
    name: str,
    last: Mapping[str, Any] | None,
    last_finished: Mapping[str, Any] | None,
    last_success: dt.datetime | None,
    successes: list[dt.datetime],
    freshness_s: float | None,
    first_run: dt.datetime | None,
    at: dt.datetime,
    mask: Callable[[str], str],
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


def status(url: SecretLike | None = None) -> list[dict[str, Any]]:
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
    from .store.database import connect, no_store, resolve_url, store_version, unreachable_as_error

    resolved = resolve_url(url)
    with unreachable_as_error(resolved), connect(resolved, read_only=True) as conn:
        if store_version(conn) is None:
            raise no_store(resolved)
        return pipeline_records(conn)


__all__ = ["SCOPED_RUNS", "WHOLE_RUN_KEYS", "availability", "pipeline_records", "status"]
