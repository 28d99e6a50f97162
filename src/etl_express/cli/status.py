"""``etl-express status``: one line a pipeline, and an exit code monitors act on."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer

from . import app
from ._output import error_line, fail, say
from ._pipelines import url_option

#: exit codes: all fresh and succeeded / something stale or failed / the store is unreadable
OK, UNHEALTHY, NO_STORE = 0, 1, 2


def _when(iso: str | None, at: dt.datetime) -> str:
    if not iso:
        return "-"
    from .._durations import format_age

    return f"{format_age((at - dt.datetime.fromisoformat(iso)).total_seconds())} ago"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _freshness(record: dict[str, Any]) -> str:
    if record["fresh"] is None:
        return "no freshness declared"
    from .._durations import format_age

    age = format_age(record["age_s"]) if record["age_s"] is not None else "never loaded"
    word = "fresh" if record["fresh"] else "STALE"
    return f"{word} (age {age}, limit {record['freshness']})"


def _line(record: dict[str, Any], at: dt.datetime) -> str:
    rows = "-" if record["rows"] is None else f"{record['rows']:,}"
    duration = "-" if record["duration_s"] is None else f"{record['duration_s']:.1f} s"
    rate = "-" if record["rows_per_s"] is None else f"{record['rows_per_s']:,.0f}/s"
    mark = "OK  " if record["ok"] else "FAIL"
    line = (
        f"{mark} {record['pipeline']:<24} {record['status']:<10} {_when(record['started_at'], at):>10}"
        f"  rows {rows:>10}  {duration:>8}  {rate:>9}  {_freshness(record)}"
        f"  avail 24h {_share(record['availability_24h'])}"
    )
    if record["status"] == "failed" and record["error"]:
        line += f"\n     error: {record['error']}"
    return line


@app.command("status")
def status_command(
    url: str | None = url_option(),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print a JSON list of objects, one a pipeline (a JSON error object when the "
        "store cannot be read).",
    ),
) -> None:
    """Every pipeline in the store: last run, rows, duration, rows/s, freshness, availability.

    Exits 0 when every pipeline is fresh and its last completed run succeeded, 1 when any is
    stale or failed (a pipeline without a declared freshness is judged on its last run only),
    2 when the store cannot be read. With --json the answer on stdout is always JSON: the
    list, or on exit 2 an object {"error": ..., "fix": ..., "exit_code": 2}.
    """
    from .._status import status

    try:
        records = status(url)
    except Exception as exc:
        if as_json:
            say(json.dumps(error_object(exc, NO_STORE), indent=2))
        raise fail(exc, NO_STORE) from None
    if as_json:
        say(json.dumps(records, indent=2))
    elif not records:
        say("no pipeline has run against this store yet")
    else:
        at = dt.datetime.now(dt.timezone.utc)
        for record in records:
            say(_line(record, at))
    raise typer.Exit(OK if all(r["ok"] for r in records) else UNHEALTHY)


def error_object(exc: BaseException, code: int) -> dict[str, Any]:
    """What ``status --json`` prints when it cannot answer: the error line's two halves."""
    text = error_line(exc).removeprefix("error: ")
    what, _, fix = text.partition(". Fix: ")
    return {"error": what, "fix": fix or None, "exit_code": code}
