"""``etl-express quarantine list`` and ``etl-express quarantine replay``."""

from __future__ import annotations

import json
from typing import Any

import typer

from ..store.database import SCHEMA
from . import app
from ._output import ErrorStyleGroup, fail, log_runs, say
from ._pipelines import REFERENCE_HELP, is_code_reference, resolve, url_option
from ._reading import StoreReader, reading

quarantine_app = typer.Typer(
    cls=ErrorStyleGroup,
    help="Inspect quarantined records and re-submit them once their cause is fixed.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")


#: a quarantined record's columns, in the table's order
RECORD = "id, run_id, pipeline, partition, position, reason, stage, record, created_at, replayed_at"


def records(
    store: StoreReader, pipeline: str, run_id: str | None, include_replayed: bool, limit: int
) -> list[dict[str, Any]]:
    """Quarantined records of ``pipeline``, oldest first (not yet replayed unless asked)."""
    where = ["pipeline = %(p)s"]
    if run_id is not None:
        where.append("run_id = %(run)s")
    if not include_replayed:
        where.append("replayed_at IS NULL")
    return store.rows(
        f"SELECT {RECORD} FROM {SCHEMA}.quarantine WHERE {' AND '.join(where)} "
        "ORDER BY id LIMIT %(limit)s",
        {"p": pipeline, "run": run_id, "limit": limit},
    )


@quarantine_app.command("list")
def list_(
    pipeline: str = typer.Argument(..., help=REFERENCE_HELP),
    run: str | None = typer.Option(None, "--run", help="Only records of this run id."),
    all_: bool = typer.Option(False, "--all", help="Include records already replayed."),
    limit: int = typer.Option(50, help="Show at most this many records."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object a line, with the (anonymized) record."
    ),
    url: str | None = url_option(),
) -> None:
    """List quarantined records: id, run, stage, source position, reason."""
    from ..errors import ETLError

    try:
        with reading(pipeline, url) as (name, store):
            assert name is not None
            items = records(store, name, run, all_, limit)
    except ETLError as exc:
        raise fail(exc) from None
    if as_json:
        for it in items:
            say(
                json.dumps(
                    {
                        **it,
                        "created_at": it["created_at"].isoformat(),
                        "replayed_at": it["replayed_at"].isoformat() if it["replayed_at"] else None,
                    },
                    ensure_ascii=False,
                    default=str,
                )
            )
        return
    if not items:
        say(f"no quarantined records for pipeline {name!r}")
        return
    say(f"{'id':>8}  {'run':8}  {'stage':7}  {'replayed':8}  {'position':20}  reason")
    for it in items:
        position = json.dumps(it["position"], default=str)
        say(
            f"{it['id']:>8}  {it['run_id'][:8]:8}  {it['stage']:7}  {'yes' if it['replayed_at'] else 'no':8}  "
            f"{position[:20]:20}  {it['reason']}"
        )


@quarantine_app.command("replay")
def replay(
    pipeline: str = typer.Argument(
        ...,
        help="The pipeline's code: path/to/file.py:NAME or package.module:NAME (replay needs "
        "its transformers and sink, which the store does not hold).",
    ),
    ids: list[int] = typer.Option(
        None, "--id", help="Replay only these quarantine ids (repeatable)."
    ),
    run: str | None = typer.Option(None, "--run", help="Replay only records of this run id."),
) -> None:
    """Re-submit quarantined records to the pipeline's sink after fixing their cause.

    Records the target refused are written as stored (already anonymized); records that
    could not be converted go through the pipeline's transformers first. Rows that land
    are marked replayed; rows still refused stay quarantined with the new reason.
    """
    from ..errors import ETLConfigError, ETLError

    try:
        if not is_code_reference(pipeline):
            raise ETLConfigError(
                f"replay needs the code of pipeline {pipeline!r}, not only its name: its "
                "transformers and sink write the records",
                hint=f"pass path/to/file.py:NAME or package.module:NAME (`quarantine list "
                f"{pipeline}` works with the name)",
            )
        log_runs()
        _, _, loaded = resolve(pipeline, None)
        assert loaded is not None
        result = loaded.replay_quarantine(ids=ids or None, run_id=run)
    except ETLError as exc:
        raise fail(exc) from None
    say(
        f"replayed {result.replayed} record(s), {result.still_failing} still refused (run {result.run_id})"
    )
    if result.still_failing:
        raise typer.Exit(2)
