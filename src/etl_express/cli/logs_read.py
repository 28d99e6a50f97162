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

from ._output import fail, say
from ._pipelines import REFERENCE_HELP, resolve, url_option
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


def _store_lines(
    store: Any, pipeline: str | None, run: str | None, after_id: int = 0, last: int | None = None
) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from ..store.schema import logs

    query = sa.select(logs).where(logs.c.id > after_id)
    if pipeline is not None:
        query = query.where(logs.c.pipeline == pipeline)
    if run is not None:
        query = query.where(logs.c.run_id.startswith(run, autoescape=True))
    if last is not None:
        query = query.order_by(logs.c.id.desc()).limit(last)
    else:
        query = query.order_by(logs.c.id)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return sorted(rows, key=lambda r: r["id"])


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


def _latest_run(store: Any, pipeline: str | None) -> str | None:
    import sqlalchemy as sa

    from ..store.schema import runs

    query = sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(1)
    if pipeline is not None:
        query = query.where(runs.c.pipeline == pipeline)
    with store.engine.connect() as conn:
        return conn.execute(query).scalar()


def _running(store: Any, run: str) -> bool:
    import sqlalchemy as sa

    from ..store.schema import runs

    query = sa.select(sa.func.count()).where(
        runs.c.run_id.startswith(run, autoescape=True), runs.c.status == "running"
    )
    with store.engine.connect() as conn:
        return bool(conn.execute(query).scalar())


def _target(pipeline: str | None, url: str | None) -> tuple[str | None, Any]:
    if pipeline is None:
        from ..store.checkpoints import open_store

        return None, open_store(url)
    name, store, _ = resolve(pipeline, url)
    return name, store


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
        name, store = _target(pipeline, url)
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
        name, store = _target(pipeline, url)
        if files:
            shown = list(_file_lines(log_dir, name, run))[-lines:]
        else:
            shown = _store_lines(store, name, run, last=lines)
    except ETLError as exc:
        raise fail(exc) from None
    if not shown and not follow:
        say(_nothing(name, run, files))
        return
    for line in shown:
        say(_format(line))
    if not follow or files:
        return
    last_id = shown[-1]["id"] if shown else 0
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
