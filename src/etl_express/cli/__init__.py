"""The ``etl-express`` command line.

Each command group lives in its own module of this package and is registered below. Every
command prints through :func:`._output.say` and fails the same way: one ``error: ... Fix: ...``
line (:class:`._output.ErrorStyleGroup`, the class of this app and of every command group).
"""

from __future__ import annotations

import typer

from ._output import ErrorStyleGroup

app = typer.Typer(
    name="etl-express",
    cls=ErrorStyleGroup,
    help="Deliver data from corporate systems to ML teams: exactly-once loads into "
    "PostgreSQL with irreversible anonymization and built-in quality checks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich alone costs more than the whole budget
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__, _speedups

        typer.echo(f"etl-express {__version__} (compiled speedups: {_speedups.describe()})")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and whether the compiled speedups are in use.",
    ),
) -> None:
    """Deliver data from corporate systems to ML teams: exactly-once loads into PostgreSQL
    with irreversible anonymization and built-in quality checks.

    Configure the store with ETL_EXPRESS_DATABASE_URL (default: an embedded PostgreSQL).
    """
    # logging is turned on by the commands that run pipelines (_output.log_runs), not here:
    # the commands that only read the store answer without loading the logging machinery


def _register() -> None:
    from . import (
        demo,  # noqa: F401  (each module adds its commands to ``app``)
        forget,  # noqa: F401
        keygen,  # noqa: F401
        logs,  # noqa: F401
        logs_read,  # noqa: F401
        plugins,  # noqa: F401
        quarantine,  # noqa: F401
        runs,  # noqa: F401
        scan,  # noqa: F401
        server,  # noqa: F401
        status,  # noqa: F401
        ui,  # noqa: F401
    )


def main() -> None:
    """Console-script entry point."""
    _register()
    app()


__all__ = ["app", "main"]
