"""``etl-express logs show`` and ``etl-express logs tail``: read the run log back.

Lines come from the store's ``etl_express.logs`` table (where every run's lines land, whether
or not the script called ``configure_logging()``), or with ``--files`` from the JSON-lines
files in the log folder. Both hold what the library logged after anonymization
and secret masking, nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from ..store.database import SCHEMA
from ._output import fail, say
from ._pipelines import REFERENCE_HELP, url_option
from ._reading import StoreReader, like_prefix, reading
from .logs import logs_app

RUN_HELP = "Only this run (its id or the first 8 characters of it)."


def _format(line: dict[str, Any]) -> str:
    ts = line["ts"].astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    where = line["pipeline"] or "-"
    if line["partition"] and line["partition"] != "all":
        where += f" [{line['partition']}]"
    if line["run_id"]:
        where += f" run {line['run_id'][:8]}"
    return f"{ts} {line['level']:<8} {where} | {line['message']}"


#: the columns of a log line, in the table's order
LINE = "id, ts, level, pipeline, run_id, partition, message, extra"


def _store_lines(
    store: StoreReader,
    pipeline: str | None,
    run: str | None,
    after_id: int = 0,
    last: int | None = None,
) -> list[dict[str, Any]]:
    # no "id > 0" when there is no line to start after: a range on id makes the planner read
    # the end of its index, which costs tens of milliseconds after a burst of log lines
    where = ["id > %(after)s"] if after_id else ["TRUE"]
    if pipeline is not None:
        where.append("pipeline = %(p)s")
    if run is not None:
        where.append(_run_is(run))
    order = "id DESC LIMIT %(last)s" if last is not None else "id"
    rows = store.rows(
        f"SELECT {LINE} FROM {SCHEMA}.logs WHERE {' AND '.join(where)} ORDER BY {order}",
        {
            "after": after_id,
            "p": pipeline,
            "run": run,
            "like": like_prefix(run or ""),
            "last": last,
        },
    )
    return sorted(rows, key=lambda r: r["id"])


def _run_is(run: str) -> str:
    """The condition on ``run_id`` for ``--run`` (a whole id, or its first characters)."""
    return "run_id = %(run)s" if len(run) == 36 else "run_id LIKE %(like)s ESCAPE '/'"


def _file_lines(
    folder: Path | None, pipeline: str | None, run: str | None
) -> Iterator[dict[str, Any]]:
    """The JSON-lines files' records of ``pipeline`` / ``run`` (``folder``: the log folder,
    default as configure_logging); the logging machinery loads only here, for --files."""
    from ..logs import LOG_FILE_PREFIX, default_log_dir

    folder = folder or default_log_dir()

    for path in sorted(folder.glob(LOG_FILE_PREFIX + "*")):
        with path.open(encoding="utf-8") as f:
            for text in f:
                try:
                    record = json.loads(text)["record"]
                except (ValueError, KeyError, TypeError):
                    continue  # not a line this library wrote
                extra = record.get("extra", {})
                if pipeline is not None and extra.get("pipeline") != pipeline:
                    continue
                if run is not None and not str(extra.get("run_id", "")).startswith(run):
                    continue
                yield {
                    "ts": dt.datetime.fromtimestamp(record["time"]["timestamp"], dt.timezone.utc),
                    "level": record["level"]["name"],
                    "pipeline": extra.get("pipeline"),
                    "partition": extra.get("partition"),
                    "run_id": extra.get("run_id"),
                    "message": record["message"],
                }


def _latest_run(store: StoreReader, pipeline: str | None) -> str | None:
    where = "WHERE pipeline = %(p)s" if pipeline is not None else ""
    return store.value(
        f"SELECT run_id FROM {SCHEMA}.runs {where} ORDER BY started_at DESC LIMIT 1",
        {"p": pipeline},
    )


def _running(store: StoreReader, run: str) -> bool:
    return bool(
        store.value(
            f"SELECT count(*) FROM {SCHEMA}.runs WHERE {_run_is(run)} AND status = 'running'",
            {"run": run, "like": like_prefix(run)},
        )
    )


def _nothing(pipeline: str | None, run: str | None, files: bool) -> str:
    what = f"run {run}" if run else f"pipeline {pipeline!r}" if pipeline else "any run"
    where = "in the log files" if files else "in the store"
    hint = "" if files else " (the log files: --files)"
    return f"no log lines for {what} {where}{hint}"


FILES_OPTION = typer.Option(
    False, "--files", help="Read the JSON-lines log files instead of the store."
)
LOG_DIR_OPTION = typer.Option(
    None, "--log-dir", help="Log folder for --files (default: as configure_logging)."
)


@logs_app.command("show")
def show(
    pipeline: str | None = typer.Argument(None, help=REFERENCE_HELP),
    run: str | None = typer.Option(None, "--run", help=RUN_HELP + " Default: the latest run."),
    files: bool = FILES_OPTION,
    log_dir: Path | None = LOG_DIR_OPTION,
    url: str | None = url_option(),
) -> None:
    """Print the log lines of one run: --run, else the latest run of PIPELINE (or of any
    pipeline)."""
    from ..errors import ETLError

    try:
        with reading(pipeline, url) as (name, store):
            run = run or _latest_run(store, name)
            if run is None:
                say(_nothing(name, None, files))
                return
            if files:
                lines = list(_file_lines(log_dir, name, run))
            else:
                lines = _store_lines(store, name, run)
    except ETLError as exc:
        raise fail(exc) from None
    if not lines:
        say(_nothing(name, run, files))
        return
    for line in lines:
        say(_format(line))


@logs_app.command("tail")
def tail(
    pipeline: str | None = typer.Argument(None, help=REFERENCE_HELP),
    run: str | None = typer.Option(None, "--run", help=RUN_HELP),
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many of the last lines."),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Keep printing new lines (Ctrl-C stops; with --run, stops when the run ends).",
    ),
    files: bool = FILES_OPTION,
    log_dir: Path | None = LOG_DIR_OPTION,
    url: str | None = url_option(),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between polls."),
) -> None:
    """Print the last log lines (of PIPELINE, of --run, or of every pipeline)."""
    from ..errors import ETLError

    try:
        with reading(pipeline, url) as (name, store):
            if files:
                shown = list(_file_lines(log_dir, name, run))[-lines:]
            else:
                shown = _store_lines(store, name, run, last=lines)
            if not shown and not follow:
                say(_nothing(name, run, files))
                return
            for line in shown:
                say(_format(line))
            if follow and not files:
                _follow(store, name, run, shown[-1]["id"] if shown else 0, interval)
    except ETLError as exc:
        raise fail(exc) from None


def _follow(
    store: StoreReader, name: str | None, run: str | None, last_id: int, interval: float
) -> None:
    """Print the lines logged after ``last_id`` as they come (until Ctrl-C, or the end of
    ``run``)."""
    try:
        while True:
            still_running = run is not None and _running(store, run)
            for line in _store_lines(store, name, run, after_id=last_id):
                say(_format(line))
                last_id = line["id"]
            if run is not None and not still_running:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
