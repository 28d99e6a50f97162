"""Logging: JSON-lines files kept 30 days, a readable console, and each run's lines in
PostgreSQL (``etl_express.logs``), with secrets masked everywhere.

The library is silent until :func:`configure_logging` is called (``etl_express/__init__``
disables the ``etl_express`` loguru namespace). Every record the pipeline emits is bound to
``pipeline``, ``run_id`` and ``partition``. Inside a running Airflow task the console is
Airflow's task logger instead of stderr (:class:`StdlibLogSink`), and files are written only
to a folder configured for them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

    from .store.checkpoints import CheckpointStore

from .errors import ETLConfigError
from .secrets.masking import mask_secrets
from .store import runlog
from .store.database import engine_for
from .store.runlog import DatabaseLogSink

LOG_DIR_ENV = "ETL_EXPRESS_LOG_DIR"
RETENTION_DAYS = 30
LOG_FILE_PREFIX = "etl-express_"
LOG_FILE_PATTERN = LOG_FILE_PREFIX + "{time:YYYY-MM-DD}.jsonl"
_FILE_DATE = re.compile(re.escape(LOG_FILE_PREFIX) + r"(\d{4}-\d{2}-\d{2})")
#: the standard-library logger whose records Airflow 3 writes into the task log
AIRFLOW_TASK_LOGGER = "airflow.task"


def configured_log_dir() -> Path | None:
    """The log folder the environment names: ``ETL_EXPRESS_LOG_DIR``, else
    ``$ETL_EXPRESS_HOME/logs``; ``None`` when neither is set."""
    explicit = os.environ.get(LOG_DIR_ENV)
    if explicit:
        return Path(explicit)
    home = os.environ.get("ETL_EXPRESS_HOME")
    if home:
        return Path(home) / "logs"
    return None


def default_log_dir() -> Path:
    """``ETL_EXPRESS_LOG_DIR``, else ``$ETL_EXPRESS_HOME/logs``, else the platform's user
    log folder."""
    configured = configured_log_dir()
    if configured is not None:
        return configured
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_log_dir("etl-express"))


# -- masking ---------------------------------------------------------------------------


def mask_record(record: Record) -> None:
    """loguru patcher: mask URL passwords and known secret values in the message, the
    bound string values and the exception text."""
    record["message"] = mask_secrets(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = mask_secrets(value)
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        text = str(exception.value)
        masked = mask_secrets(text)
        if masked != text:
            try:
                replacement = type(exception.value)(masked)
            except Exception:
                replacement = RuntimeError(f"{type(exception.value).__name__}: {masked}")
            record["exception"] = type(exception)(
                type(replacement), replacement, exception.traceback
            )


# -- retention ---------------------------------------------------------------------------


def _today(now: dt.datetime | None) -> dt.date:
    return (now or dt.datetime.now()).date()


def log_file_date(path: Path) -> dt.date | None:
    """The day a log file covers, from its name (``etl-express_2025-01-31.jsonl``)."""
    match = _FILE_DATE.search(path.name)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def purge_log_files(
    log_dir: str | Path, older_than_days: int = RETENTION_DAYS, now: dt.datetime | None = None
) -> list[Path]:
    """Delete this library's log files whose day is more than ``older_than_days`` ago.

    The day comes from the file name (loguru's own ``retention`` goes by modification
    time, which a copy or a backup restore resets); a file of ours without a date in its
    name goes by its modification time. Other files in the folder are never touched.
    Returns the removed paths.
    """
    if older_than_days < 1:
        raise ETLConfigError(f"older_than_days must be at least 1, got {older_than_days}")
    folder = Path(log_dir)
    if not folder.is_dir():
        return []
    cutoff = _today(now) - dt.timedelta(days=older_than_days)
    removed = []
    for path in sorted(folder.glob(LOG_FILE_PREFIX + "*")):
        if not path.is_file():
            continue
        day = log_file_date(path)
        if day is None:
            day = dt.datetime.fromtimestamp(path.stat().st_mtime).date()
        if day < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def purge_log_rows(
    url: str, older_than_days: int = RETENTION_DAYS, now: dt.datetime | None = None
) -> int:
    """Delete rows of ``etl_express.logs`` older than ``older_than_days``; the count removed."""
    if older_than_days < 1:
        raise ETLConfigError(f"older_than_days must be at least 1, got {older_than_days}")
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=older_than_days)
    if cutoff.tzinfo is None:
        cutoff = cutoff.astimezone()
    with engine_for(url).begin() as conn:
        return runlog.purge(conn, cutoff)


# -- the standard-library sink (Airflow's task log) ------------------------------------


def stdlib_level(levelno: int) -> int:
    """The standard ``logging`` level for a loguru level number: the highest standard level
    not above it (SUCCESS 25 is INFO, TRACE 5 is DEBUG; the others are the same numbers)."""
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return level
    return logging.DEBUG


class StdlibLogSink:
    """A loguru sink that hands each record to a standard-library logger at its own level.

    Inside an Airflow 3 task, :func:`configure_logging` uses it in place of the stderr
    console: Airflow's task supervisor records a task's stderr as errors, while records of
    ``logging.getLogger("airflow.task")`` reach the task log with their level. The text
    carries the run's tags and, for an error, the traceback (without variable values);
    the time and level are the receiving logger's to add. Example::

        from loguru import logger
        logger.add(StdlibLogSink("my_app.etl"), level="INFO", format="{message}")
    """

    def __init__(self, name: str = AIRFLOW_TASK_LOGGER):
        self.name = name

    def __call__(self, message: Message) -> None:
        record = message.record
        level = stdlib_level(record["level"].no)
        target = logging.getLogger(self.name)
        if target.isEnabledFor(level):
            # the caller's file and line, not this sink's
            target.handle(
                target.makeRecord(
                    self.name,
                    level,
                    record["file"].path,
                    record["line"],
                    "%s",
                    (str(message).rstrip("\n"),),
                    None,
                    func=record["function"],
                )
            )


def in_airflow_task() -> bool:
    """``True`` while an Airflow task executes in this process (its Task SDK context is
    set). Never imports Airflow: a process that has not loaded it is not running a task."""
    if "airflow.sdk" not in sys.modules:
        return False
    try:
        from airflow.sdk import get_current_context

        get_current_context()
    except (ImportError, RuntimeError):  # RuntimeError: no task context in this process
        return False
    return True


# -- configuration -----------------------------------------------------------------------

_handler_ids: list[int] = []


def _run_tags(record: Record) -> str:
    context = ""
    if "pipeline" in record["extra"]:
        context = " | {extra[pipeline]}"
        if record["extra"].get("partition") not in (None, "", "all"):
            context += " [{extra[partition]}]"
        if "run_id" in record["extra"]:
            context += " run {extra[run_id]:.8}"
    return context


def _console_format(record: Record) -> str:
    return (
        "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level>"
        + _run_tags(record)
        + " | <level>{message}</level>\n{exception}"
    )


def _forward_format(record: Record) -> str:
    # "crm [day=2025-01-31] run 1f0c2a9b | run started": the receiver adds time and level
    tags = _run_tags(record).removeprefix(" | ")
    return (tags + " | " if tags else "") + "{message}\n{exception}"


def configure_logging(
    log_dir: str | Path | None = None,
    level: str = "INFO",
    console: bool = True,
    retention_days: int = RETENTION_DAYS,
    database: bool = True,
    *,
    airflow: bool | None = None,
) -> Path | None:
    """Turn on etl-express logging; returns the log folder (``None`` when no file is kept).

    - a JSON-lines file per day, ``<log_dir>/etl-express_YYYY-MM-DD.jsonl`` (loguru
      ``serialize=True``), rotated at midnight; files older than ``retention_days`` are
      removed by loguru and, by their date, right now (:func:`purge_log_files`);
    - a readable console on stderr (replacing loguru's default handler) when ``console``;
    - with ``database``, every record of a pipeline run also goes to ``etl_express.logs``
      in the run's state database, whose rows older than ``retention_days`` are removed
      when a run starts.

    ``log_dir`` defaults to :func:`default_log_dir`. Every message passes a patcher that
    masks URL passwords and any secret value resolved through ``etl.secret``. Calling it
    again replaces the handlers it added before.

    Inside a running Airflow task (``airflow=None`` detects it, :func:`in_airflow_task`)
    the console is Airflow's task logger (:class:`StdlibLogSink`, each record at its own
    level; nothing goes to stderr, which Airflow records as errors), and the files are
    written only when a folder is configured — ``log_dir``, ``ETL_EXPRESS_LOG_DIR`` or
    ``ETL_EXPRESS_HOME`` — never into the worker user's home: Airflow keeps the task log.
    """
    level = str(level).upper()
    try:
        logger.level(level)
    except ValueError:
        raise ETLConfigError(
            f"unknown log level {level!r}",
            hint="use DEBUG, INFO, SUCCESS, WARNING, ERROR or CRITICAL",
        ) from None
    if retention_days < 1:
        raise ETLConfigError(f"retention_days must be at least 1, got {retention_days}")
    shutdown_logging()
    if airflow is None:
        airflow = in_airflow_task()
    folder: Path | None
    if log_dir is not None:
        folder = Path(log_dir)
    else:
        folder = configured_log_dir() if airflow else default_log_dir()
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ETLConfigError(
                f"log folder {folder} cannot be created: {type(exc).__name__}",
                hint=f"pass log_dir= or set {LOG_DIR_ENV} to a writable folder",
            ) from None
        purge_log_files(folder, retention_days)
    logger.configure(patcher=mask_record)
    common: dict[str, Any] = {"level": level, "backtrace": False, "diagnose": False}
    if folder is not None:
        _handler_ids.append(
            logger.add(
                str(folder / LOG_FILE_PATTERN),
                serialize=True,
                rotation="00:00",
                retention=f"{retention_days} days",
                encoding="utf-8",
                **common,
            )
        )
    if console or airflow:
        try:
            # loguru's default stderr handler would print every line twice (under Airflow,
            # as errors)
            logger.remove(0)
        except ValueError:
            pass
    if console and airflow:
        _handler_ids.append(logger.add(StdlibLogSink(), format=_forward_format, **common))
    elif console:
        _handler_ids.append(logger.add(sys.stderr, format=_console_format, **common))
    if database:  # the runs' lines reach their store through loguru, at this level
        _handler_ids.append(logger.add(runlog.writer, format="{message}", **common))
    runlog.settings = runlog.RunLogSettings(
        store=database,
        level=logger.level(level).no,
        via_loguru=database,
        retention_days=retention_days,
    )
    logger.enable("etl_express")
    return folder


def flush_logs(timeout: float = 10.0) -> bool:
    """Wait until the run log lines sent to the database so far are written."""
    return runlog.flush_all(timeout)


def shutdown_logging() -> None:
    """Remove the handlers :func:`configure_logging` added and silence the library again."""
    for handler_id in _handler_ids:
        with contextlib.suppress(ValueError):
            logger.remove(handler_id)
    _handler_ids.clear()
    runlog.writer.stop()  # writes what is pending
    runlog.settings = runlog.RunLogSettings()  # runs' lines to the store, as unconfigured
    runlog.forget_purges()  # the next run purges its store again
    logger.disable("etl_express")


def start_run_log(store: CheckpointStore, run_id: str) -> None:
    """What the run ledger does when it opens a run: ``run_id``'s log lines go to
    ``store``'s run log, whose lines older than the retention period are purged there."""
    runlog.open_run(store.url, run_id)


__all__ = [
    "AIRFLOW_TASK_LOGGER",
    "LOG_DIR_ENV",
    "RETENTION_DAYS",
    "DatabaseLogSink",
    "StdlibLogSink",
    "configure_logging",
    "configured_log_dir",
    "default_log_dir",
    "flush_logs",
    "in_airflow_task",
    "log_file_date",
    "mask_record",
    "purge_log_files",
    "purge_log_rows",
    "shutdown_logging",
    "start_run_log",
]
