"""``etl-express forget PIPELINE``: remove a pipeline from the store."""

from __future__ import annotations

import sys
from typing import Any

import typer

from . import app
from ._output import say
from ._pipelines import REFERENCE_HELP, resolve, url_option

#: how each state table's rows are named in the report
WHAT = {
    "runs": "runs",
    "checkpoints": "checkpoints and partition plans",
    "quality_checks": "quality-check results",
    "quarantine": "quarantined records",
    "logs": "log lines",
    "declarations": "declarations and recorded target columns",
    "reconciliation": "reconciliation state rows",
}


def report(found: dict[str, Any], drop_table: bool, done: bool) -> str:
    """What :func:`etl_express.forget` removed (``done``) or would remove."""
    verb = "removed" if done else "would remove"
    lines = [f"pipeline {found['pipeline']!r}: {verb}"]
    for key, label in WHAT.items():
        lines.append(f"  {found['removed'].get(key, 0):>8,}  {label}")
    table = found["table"]
    if table is None:
        lines.append("  no target table recorded (a file sink, or never declared)")
    elif drop_table and found["table_dropped"]:
        lines.append(f"  table {table}: {'dropped' if done else 'would be dropped'}")
    elif drop_table:
        lines.append(f"  table {table}: does not exist (nothing to drop)")
    else:
        lines.append(f"  table {table}: kept (--drop-table drops it)")
    return "\n".join(lines)


def interactive() -> bool:
    """Whether a person can answer a question here (a terminal on both ends)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


@app.command("forget")
def forget_command(
    pipeline: str = typer.Argument(..., help=REFERENCE_HELP),
    url: str | None = url_option(),
    drop_table: bool = typer.Option(
        False, "--drop-table", help="Also drop the pipeline's target table (its loaded data)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be removed and remove nothing."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask for confirmation (needed outside a terminal)."
    ),
) -> None:
    """Remove a pipeline from the store: its declaration, checkpoints, runs, quality checks,
    quarantine and log lines (and its target table with --drop-table).

    For failed experiments and renamed pipelines, which otherwise stay in etl-express status
    forever. Everything goes in one transaction; a pipeline with a run still at work is
    refused. It says what it removes, asks for confirmation in a terminal unless --yes, and
    removes nothing with --dry-run. Log files on disk are left to their retention.
    """
    from .._forget import forget
    from ..errors import ETLConfigError

    name, store, _ = resolve(pipeline, url)
    planned = forget(name, url=store.url, drop_table=drop_table, dry_run=True)
    say(report(planned, drop_table, done=False))
    if dry_run:
        say("dry run: nothing removed")
        return
    if not yes:
        if not interactive():
            raise ETLConfigError(
                f"not forgetting {name!r} without confirmation: this is not a terminal",
                hint=f"check the list above, then run: etl-express forget {pipeline} --yes"
                + (" --drop-table" if drop_table else ""),
            )
        if not typer.confirm(f"Forget pipeline {name!r}?", default=False):
            say("nothing removed")
            raise typer.Exit(1)
    done = forget(name, url=store.url, drop_table=drop_table)
    say(report(done, drop_table, done=True))


__all__ = ["forget_command", "interactive", "report"]
