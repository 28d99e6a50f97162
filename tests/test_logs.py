"""Logging: silent until configured, JSON-lines files, readable console, run logs in
PostgreSQL, 30-day retention (controlled dates, no sleeping) and masking."""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from loguru import logger
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import etl_express as etl
from etl_express.logs import (
    AIRFLOW_TASK_LOGGER,
    DatabaseLogSink,
    configure_logging,
    flush_logs,
    in_airflow_task,
    log_file_date,
    purge_log_files,
    purge_log_rows,
    shutdown_logging,
    start_run_log,
    stdlib_level,
)
from etl_express.secrets.masking import forget_secrets
from etl_express.sinks.postgres import PostgresSink
from etl_express.store.checkpoints import CheckpointStore
from etl_express.store.database import engine_for

from .conftest import pg_exec


class ListSource(etl.Source):
    def __init__(self, rows: list[dict[str, Any]], fail: bool = False):
        self.rows, self.fail = rows, fail
        self.name, self.primary_key = "list", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[etl.Batch]:
        if self.fail:
            raise RuntimeError("source exploded")
        start = position or 0
        yield etl.Batch(self.rows[start:], position=len(self.rows))


@pytest.fixture(scope="module")
def own_db(pg_url: str) -> Iterator[str]:
    """A throw-away database, so purging etl_express.logs touches nobody else's rows."""
    name = "etl_logs_" + uuid.uuid4().hex[:8]
    pg_exec(pg_url, f"CREATE DATABASE {name}")
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    yield url
    engine_for(url).dispose()
    pg_exec(pg_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def logging_off() -> Iterator[None]:
    shutdown_logging()
    yield
    shutdown_logging()
    forget_secrets()


def _pipeline(name: str, url: str, fail: bool = False) -> etl.Pipeline:
    rows = [{"id": i, "city": f"city-{i}"} for i in range(5)]
    return etl.Pipeline(
        name,
        ListSource(rows, fail),
        sink=PostgresSink(table=f"public.{name}", url=url),
        progress=False,
    )


def _log_rows(url: str, run_id: str) -> list[tuple[Any, ...]]:
    return pg_exec(
        url,
        "SELECT level, pipeline, run_id, partition, message, extra FROM etl_express.logs "
        "WHERE run_id = %s ORDER BY id",
        (run_id,),
    )


def test_library_is_silent_until_configured(
    own_db: str, pipeline_name: str, tmp_path: Path
) -> None:
    seen: list[Any] = []
    handler = logger.add(lambda m: seen.append(m.record), level="DEBUG")
    try:
        _pipeline(pipeline_name, own_db).run()
        assert [r for r in seen if r["name"].startswith("etl_express")] == []
        configure_logging(tmp_path, console=False, database=False)
        result = _pipeline(pipeline_name, own_db).run(reset=True)
    finally:
        logger.remove(handler)
    ours = [r for r in seen if r["name"].startswith("etl_express")]
    assert next(r["message"] for r in ours) == "run started"
    assert {
        (r["extra"]["pipeline"], r["extra"]["run_id"], r["extra"]["partition"]) for r in ours
    } == {(pipeline_name, result.run_id, "all")}


def test_json_lines_file_per_day(own_db: str, pipeline_name: str, tmp_path: Path) -> None:
    folder = configure_logging(tmp_path / "logs", console=False, database=False)
    result = _pipeline(pipeline_name, own_db).run()
    shutdown_logging()  # closes the file
    files = list(folder.glob("etl-express_*.jsonl"))
    assert [log_file_date(f) for f in files] == [dt.date.today()]
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    started = [entry["record"] for entry in lines if entry["record"]["message"] == "run started"]
    assert started and started[0]["extra"] == {
        "pipeline": pipeline_name,
        "run_id": result.run_id,
        "partition": "all",
    }
    assert any(e["record"]["message"].startswith("run succeeded: 5 read, 5 written") for e in lines)


def test_console_is_readable(
    own_db: str, pipeline_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(tmp_path, console=True, database=False)
    result = _pipeline(pipeline_name, own_db).run()
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "run started" in x)
    assert f"| INFO     | {pipeline_name} run {result.run_id[:8]} | run started" in line
    assert not line.startswith("{")


def test_each_run_logs_to_its_state_database(
    own_db: str, pipeline_name: str, tmp_path: Path
) -> None:
    configure_logging(tmp_path, console=False)
    ok = _pipeline(pipeline_name, own_db).run()
    with pytest.raises(etl.SourceError) as info:
        _pipeline(pipeline_name, own_db, fail=True).run()
    failed_id = info.value.result.run_id  # type: ignore[attr-defined]
    assert flush_logs()
    rows = _log_rows(own_db, ok.run_id)
    assert next(r[4] for r in rows) == "run started"
    assert rows[-1][4].startswith("run succeeded: 5 read, 5 written")
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == {("INFO", pipeline_name, ok.run_id, "all")}
    assert rows[0][5]["module"] == "etl_express._engine.run"
    # the failed run's batch transaction rolled back; its log lines are stored anyway
    failed = _log_rows(own_db, failed_id)
    assert failed[-1][0] == "ERROR" and failed[-1][4].startswith("run failed: reading list failed")


def test_database_sink_never_raises_on_an_unreachable_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = DatabaseLogSink(interval=0.05)
    handler = logger.add(sink, level="INFO", format="{message}")
    try:
        sink.attach("run-1", "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2")
        logger.bind(pipeline="p", run_id="run-1", partition="all").info("hello")
        logger.bind(pipeline="p", run_id="unknown-run", partition="all").info("ignored")
        assert sink.flush()
    finally:
        logger.remove(handler)
        sink.stop()
    assert (
        "could not store 1 log line(s) in the database: OperationalError" in capsys.readouterr().err
    )


def test_secrets_and_url_passwords_are_masked_in_every_sink(
    own_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "tok-" + uuid.uuid4().hex
    password = uuid.uuid4().hex[:12]
    os.environ["TEST_LOG_TOKEN"] = value
    try:
        etl.secret("TEST_LOG_TOKEN").get()  # resolved once: now known to the masking filter
    finally:
        del os.environ["TEST_LOG_TOKEN"]
    folder = configure_logging(tmp_path, level="DEBUG")
    run_id = str(uuid.uuid4())
    start_run_log(SimpleNamespace(url=own_db), run_id)  # what Pipeline.run does at run start
    log = logger.bind(pipeline="masking", run_id=run_id, partition="all", token=value)
    log.info("token {} and url postgresql://etl:{}@db:5432/x", value, password)
    try:
        raise ValueError(f"bad token {value}")
    except ValueError:
        log.exception("it failed")
    assert flush_logs()
    shutdown_logging()
    texts = [capsys.readouterr().err, *(p.read_text() for p in folder.glob("*.jsonl"))]
    texts.append(json.dumps(_log_rows(own_db, run_id), default=str))
    for text in texts:
        assert "token *** and url postgresql://etl:***@db:5432/x" in text
        assert value not in text and password not in text
    assert "ValueError: bad token ***" in texts[0]


def _child_logs(run_id: str) -> None:
    logger.bind(pipeline="fork", run_id=run_id, partition="p1").info("child line")


def test_forked_worker_lines_reach_the_database(own_db: str, tmp_path: Path) -> None:
    CheckpointStore(own_db).ensure_schema()
    configure_logging(tmp_path, console=False)
    run_id = str(uuid.uuid4())
    start_run_log(SimpleNamespace(url=own_db), run_id)
    logger.bind(pipeline="fork", run_id=run_id, partition="all").info("parent line")
    worker = multiprocessing.get_context("fork").Process(target=_child_logs, args=(run_id,))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    assert flush_logs()
    assert sorted((r[3], r[4]) for r in _log_rows(own_db, run_id)) == [
        ("all", "parent line"),
        ("p1", "child line"),
    ]


def _touch(path: Path, days_ago: int, now: dt.datetime) -> Path:
    path.write_text("{}\n")
    t = (now - dt.timedelta(days=days_ago)).timestamp()
    os.utime(path, (t, t))
    return path


def test_log_files_older_than_30_days_are_purged_by_date(tmp_path: Path) -> None:
    now = dt.datetime(2025, 3, 31, 12, 0)

    def day(n):
        return (now - dt.timedelta(days=n)).date().isoformat()

    old = [tmp_path / f"etl-express_{day(n)}.jsonl" for n in (45, 31)]
    rotated = tmp_path / f"etl-express_{day(40)}.jsonl.{day(39)}_00-00-00_000000"
    kept = [tmp_path / f"etl-express_{day(n)}.jsonl" for n in (30, 29, 0)]
    for p in (*old, rotated, *kept):
        _touch(p, 0, now)  # modification times say "new": the name decides
    undated_old = _touch(tmp_path / "etl-express_manual.jsonl", 60, now)
    undated_new = _touch(tmp_path / "etl-express_manual2.jsonl", 3, now)
    foreign = _touch(tmp_path / f"other_{day(90)}.log", 90, now)
    removed = purge_log_files(tmp_path, 30, now=now)
    assert sorted(removed) == sorted([*old, rotated, undated_old])
    assert all(p.exists() for p in (*kept, undated_new, foreign))


def test_configure_logging_purges_old_files_at_start(tmp_path: Path) -> None:
    today = dt.date.today()
    old = tmp_path / f"etl-express_{today - dt.timedelta(days=31)}.jsonl"
    recent = tmp_path / f"etl-express_{today - dt.timedelta(days=29)}.jsonl"
    old.write_text("{}\n")
    recent.write_text("{}\n")
    configure_logging(tmp_path, console=False, database=False, retention_days=30)
    assert not old.exists() and recent.exists()


def _insert_log(url: str, pipeline: str, ts: dt.datetime, message: str) -> None:
    pg_exec(
        url,
        "INSERT INTO etl_express.logs (ts, level, pipeline, run_id, partition, message) "
        "VALUES (%s, 'INFO', %s, 'r', 'all', %s)",
        (ts, pipeline, message),
    )


def _messages(url: str, pipeline: str) -> set[str]:
    return {
        r[0]
        for r in pg_exec(
            url, "SELECT message FROM etl_express.logs WHERE pipeline = %s", (pipeline,)
        )
    }


def test_log_rows_older_than_30_days_are_purged(own_db: str, pipeline_name: str) -> None:
    _pipeline(pipeline_name, own_db).store.ensure_schema()
    now = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.timezone.utc)
    for days, label in ((45, "old"), (30.01, "just-old"), (29.99, "just-new"), (1, "new")):
        _insert_log(own_db, pipeline_name, now - dt.timedelta(days=days), label)
    assert purge_log_rows(own_db, 30, now=now) >= 2
    assert _messages(own_db, pipeline_name) == {"just-new", "new"}


def test_run_start_purges_old_log_rows(own_db: str, pipeline_name: str) -> None:
    pipeline = _pipeline(pipeline_name, own_db)
    pipeline.store.ensure_schema()
    now = dt.datetime.now(dt.timezone.utc)
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=31), "old")
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=29), "recent")
    pipeline.run()
    assert _messages(own_db, pipeline_name) == {"recent"}


def test_run_start_purges_once_per_interval(
    own_db: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process purges a store when its first run opens, then not again before
    PURGE_INTERVAL_S: a replication's many runs share one purge."""
    from etl_express.store import runlog

    pipeline = _pipeline(pipeline_name, own_db)
    pipeline.store.ensure_schema()
    url = pipeline.store.url
    now = dt.datetime.now(dt.timezone.utc)
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=31), "first")
    runlog.open_run(url, "r1")
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=31), "second")
    runlog.open_run(url, "r2")  # within the interval: no purge
    assert _messages(own_db, pipeline_name) == {"second"}
    monkeypatch.setattr(runlog, "PURGE_INTERVAL_S", 0.0)
    runlog.open_run(url, "r3")
    assert _messages(own_db, pipeline_name) == set()


def test_cli_logs_purge(
    own_db: str, pipeline_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_express.cli import _register, app

    _register()
    _pipeline(pipeline_name, own_db).store.ensure_schema()
    now = dt.datetime.now(dt.timezone.utc)
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=8), "week-old")
    _insert_log(own_db, pipeline_name, now - dt.timedelta(days=2), "recent")
    old_file = tmp_path / f"etl-express_{(now - dt.timedelta(days=10)).date()}.jsonl"
    new_file = tmp_path / f"etl-express_{now.date()}.jsonl"
    old_file.write_text("{}\n")
    new_file.write_text("{}\n")
    monkeypatch.setenv("ETL_EXPRESS_DATABASE_URL", own_db)
    result = CliRunner().invoke(
        app, ["logs", "purge", "--older-than-days", "7", "--log-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"removed 1 log file(s) older than 7 days from {tmp_path}" in result.output
    assert "log row(s) older than 7 days from postgresql://" in result.output
    assert not old_file.exists() and new_file.exists()
    assert _messages(own_db, pipeline_name) == {"recent"}
    default = CliRunner().invoke(
        app, ["logs", "purge", "--no-database", "--log-dir", str(tmp_path)]
    )
    assert default.exit_code == 0 and "older than 30 days" in default.output


def test_configure_logging_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(etl.ETLConfigError, match="unknown log level 'LOUD'"):
        configure_logging(tmp_path, level="loud")
    with pytest.raises(etl.ETLConfigError, match="retention_days must be at least 1"):
        configure_logging(tmp_path, retention_days=0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(etl.ETLConfigError, match=r"cannot be created.*Fix: pass log_dir="):
        configure_logging(blocker / "logs")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def airflow_task_logger() -> Iterator[_Collect]:
    """What reaches ``logging.getLogger("airflow.task")``, the logger of Airflow's task log."""
    handler = _Collect()
    target = logging.getLogger(AIRFLOW_TASK_LOGGER)
    level, propagate = target.level, target.propagate
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    target.propagate = False
    yield handler
    target.removeHandler(handler)
    target.setLevel(level)
    target.propagate = propagate


def test_inside_airflow_lines_reach_the_task_logger_at_their_level(
    own_db: str,
    pipeline_name: str,
    tmp_path: Path,
    airflow_task_logger: _Collect,
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(tmp_path, level="DEBUG", database=False, airflow=True)
    result = _pipeline(pipeline_name, own_db).run()
    tagged = logger.bind(pipeline=pipeline_name, run_id=result.run_id, partition="day=2")
    tagged.success("loaded")
    tagged.trace("not enabled at DEBUG")
    tagged.warning("slow source")
    try:
        raise ValueError("bad batch")
    except ValueError:
        tagged.exception("batch failed")
    shutdown_logging()
    got = {r.getMessage().split("\n")[0]: r for r in airflow_task_logger.records}
    started = got[f"{pipeline_name} run {result.run_id[:8]} | run started"]
    assert (started.levelno, started.name) == (logging.INFO, AIRFLOW_TASK_LOGGER)
    assert got[f"{pipeline_name} [day=2] run {result.run_id[:8]} | loaded"].levelno == logging.INFO
    assert not any("not enabled" in m for m in got)
    assert got[f"{pipeline_name} [day=2] run {result.run_id[:8]} | slow source"].levelno == (
        logging.WARNING
    )
    failed = got[f"{pipeline_name} [day=2] run {result.run_id[:8]} | batch failed"]
    assert failed.levelno == logging.ERROR
    assert "ValueError: bad batch" in failed.getMessage()
    assert (Path(failed.pathname).name, failed.funcName) == (
        "test_logs.py",
        "test_inside_airflow_lines_reach_the_task_logger_at_their_level",
    )
    assert any(r.levelno == logging.DEBUG for r in airflow_task_logger.records)
    # nothing on stderr (Airflow records a task's stderr as errors); the file is still kept
    assert capfd.readouterr().err == ""
    files = list(tmp_path.glob("etl-express_*.jsonl"))
    assert len(files) == 1 and "run started" in files[0].read_text()


def test_stdlib_levels() -> None:
    expected = {
        "TRACE": logging.DEBUG,
        "DEBUG": logging.DEBUG,
        "INFO": logging.INFO,
        "SUCCESS": logging.INFO,
        "WARNING": logging.WARNING,
        "ERROR": logging.ERROR,
        "CRITICAL": logging.CRITICAL,
    }
    assert {name: stdlib_level(logger.level(name).no) for name in expected} == expected
    assert stdlib_level(0) == logging.DEBUG and stdlib_level(45) == logging.ERROR


def test_inside_airflow_no_file_unless_a_folder_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_task_logger: _Collect
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(home))
    monkeypatch.delenv("ETL_EXPRESS_LOG_DIR", raising=False)
    monkeypatch.delenv("ETL_EXPRESS_HOME", raising=False)
    assert configure_logging(database=False, airflow=True) is None
    logger.bind(pipeline="p").info("kept by Airflow only")
    shutdown_logging()
    assert [r.getMessage() for r in airflow_task_logger.records] == ["p | kept by Airflow only"]
    assert list(home.rglob("*")) == []
    # a configured folder gets the files, as outside Airflow
    monkeypatch.setenv("ETL_EXPRESS_LOG_DIR", str(tmp_path / "etl-logs"))
    assert configure_logging(database=False, airflow=True) == tmp_path / "etl-logs"
    logger.info("into the configured folder")
    shutdown_logging()
    assert "into the configured folder" in "".join(
        f.read_text() for f in (tmp_path / "etl-logs").glob("etl-express_*.jsonl")
    )
    # outside Airflow nothing changes: the platform's user log folder is the default
    monkeypatch.delenv("ETL_EXPRESS_LOG_DIR")
    folder = configure_logging(console=False, database=False, airflow=False)
    assert folder is not None and folder.is_relative_to(home)


def test_a_process_without_airflow_is_not_in_a_task() -> None:
    assert not in_airflow_task()


USER_SCRIPT = """
import sys

import etl_express as etl
from etl_express.sinks import PostgresSink


class Rows(etl.Source):
    name, primary_key = "rows", ["id"]

    def read(self, position=None, partition=None):
        yield etl.Batch([{"id": i} for i in range(3)], position=3)


name, url = sys.argv[1], sys.argv[2]
print(etl.Pipeline(name, Rows(), sink=PostgresSink(table="public." + name, url=url)).run().run_id)
"""


def test_a_script_that_never_configures_logging_has_its_run_log_in_the_store(
    own_db: str, pipeline_name: str, tmp_path: Path
) -> None:
    """Issue 25 item 3: users' own scripts never call configure_logging(); their runs' lines
    are in the store all the same, and their console stays quiet."""
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_EXPRESS_LOG")}
    proc = subprocess.run(
        [sys.executable, str(script), pipeline_name, own_db],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""  # not one log line on the console
    run_id = proc.stdout.strip()
    from etl_express.cli import _register, app

    _register()
    shown = CliRunner().invoke(app, ["logs", "show", pipeline_name, "--url", own_db])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert next(line.split(" | ", 1)[1] for line in lines) == "run started"
    assert "| run succeeded: 3 read, 3 written, 0 quarantined in " in lines[-1]
    assert all(f"{pipeline_name} run {run_id[:8]} | " in line for line in lines)
    assert len(lines) == len(set(lines))  # each line once
    rows = _log_rows(own_db, run_id)
    assert {r[0] for r in rows} == {"INFO"}  # INFO and above, as configure_logging's default
    assert rows[0][5]["module"] == "etl_express._engine.run"  # where the line was logged


def test_configured_logging_stores_each_run_line_once(
    own_db: str, pipeline_name: str, tmp_path: Path
) -> None:
    configure_logging(tmp_path, console=False)
    ok = _pipeline(pipeline_name, own_db).run()
    assert flush_logs()
    messages = [r[4] for r in _log_rows(own_db, ok.run_id)]
    assert messages[0] == "run started" and len(messages) == len(set(messages))
    shutdown_logging()
    again = _pipeline(pipeline_name, own_db).run(reset=True)  # unconfigured: stored all the same
    assert flush_logs()
    assert next(r[4] for r in _log_rows(own_db, again.run_id)) == "run started"
    configure_logging(tmp_path, console=False, database=False)  # the one way to turn it off
    off = _pipeline(pipeline_name, own_db).run(reset=True)
    assert flush_logs()
    assert _log_rows(own_db, off.run_id) == []
