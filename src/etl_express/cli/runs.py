"""``etl-express runs [PIPELINE]``: the recent runs in the store, newest first."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer

from ..store.database import SCHEMA
from . import app
from ._output import fail, say
from ._pipelines import REFERENCE_HELP, url_option
from ._reading import StoreReader, reading


def run_rows(store: StoreReader, pipeline: str | None, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` runs (of ``pipeline``, or of every pipeline): one dict a run and
    partition with its counts, duration and rate, JSON-ready."""
    where = "WHERE pipeline = %(p)s" if pipeline is not None else ""
    rows = store.rows(
        f"SELECT * FROM {SCHEMA}.runs {where} ORDER BY started_at DESC, run_id LIMIT %(n)s",
        {"p": pipeline, "n": limit},
    )
    out = []
    for r in rows:
        end = r["finished_at"] or (r["heartbeat_at"] if r["status"] == "running" else None)
        duration = (end - r["started_at"]).total_seconds() if end is not None else None
        out.append(
            {
                "run_id": r["run_id"],
                "pipeline": r["pipeline"],
                "partition": r["partition"] or "all",
                "status": r["status"],
                "started_at": r["started_at"].isoformat(),
                "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
                "rows_read": r["rows_read"],
                "rows_written": r["rows_written"],
                "rows_quarantined": r["rows_quarantined"],
                "duration_s": round(duration, 3) if duration is not None else None,
                "rows_per_s": round(r["rows_read"] / duration, 1) if duration else None,
                "error": r["error"],
            }
        )
    return out


def _line(r: dict[str, Any]) -> str:
    started = dt.datetime.fromisoformat(r["started_at"]).astimezone(dt.timezone.utc)
    started_s = started.strftime("%Y-%m-%d %H:%M:%S")
    duration = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
    rate = "-" if r["rows_per_s"] is None else f"{r['rows_per_s']:,.0f}"
    line = (
        f"{r['run_id'][:8]}  {started_s}  {r['pipeline'][:24]:<24} {r['partition'][:12]:<12} "
        f"{r['status']:<9} {r['rows_read']:>10,} {r['rows_written']:>10,} "
        f"{r['rows_quarantined']:>7,} {duration:>9} {rate:>9}"
    )
    if r["error"]:
        line += f"\n          error: {r['error']}"
    return line


@app.command("runs")
def runs_command(
    pipeline: str | None = typer.Argument(None, help=REFERENCE_HELP + " Default: every one."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show at most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object a run, a line each."),
    url: str | None = url_option(),
) -> None:
    """Recent runs, newest first: status, rows read / written / quarantined, duration, rows/s
    and the error of a failed run (one line a run and partition)."""
    from ..errors import ETLError

    try:
        with reading(pipeline, url) as (name, store):
            rows = run_rows(store, name, limit)
    except ETLError as exc:
        raise fail(exc) from None
    if as_json:
        for r in rows:
            say(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        say("no runs yet")
        return
    say(
        f"{'run':8}  {'started (UTC)':19}  {'pipeline':<24} {'partition':<12} {'status':<9} "
        f"{'read':>10} {'written':>10} {'quar.':>7} {'duration':>9} {'rows/s':>9}"
    )
    for r in rows:
        say(_line(r))
