"""``etl-express quarantine list`` and ``etl-express quarantine replay``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import typer

from . import app

quarantine_app = typer.Typer(
    help="Inspect quarantined records and re-submit them once their cause is fixed.",
    no_args_is_help=True,
)
app.add_typer(quarantine_app, name="quarantine")


def load_pipeline(spec: str) -> Any:
    """The Pipeline named by ``spec``: ``path/to/file.py:name`` or ``package.module:name``.

    ``name`` may also be a function without arguments that returns the pipeline. The file
    is imported as a module (not as ``__main__``), so runs guarded by
    ``if __name__ == "__main__":`` do not start.
    """
    from ..errors import ETLConfigError
    from ..pipeline import Pipeline

    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ETLConfigError(
            f"pipeline {spec!r} is not 'file.py:name' or 'module:name'",
            hint="e.g. etl-express quarantine replay pipelines/crm.py:pipeline",
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ETLConfigError(f"pipeline file {target!r} does not exist", hint="check the path")
        sys.path.insert(0, str(path.resolve().parent))
        module_spec = importlib.util.spec_from_file_location(f"etl_express_user_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    obj = getattr(module, attr, None)
    if obj is None:
        raise ETLConfigError(
            f"{target!r} has no attribute {attr!r}", hint="name the variable holding the Pipeline"
        )
    if not isinstance(obj, Pipeline) and callable(obj):
        obj = obj()
    if not isinstance(obj, Pipeline):
        raise ETLConfigError(f"{spec!r} is a {type(obj).__name__}, not an etl_express.Pipeline")
    return obj


def _store(url: str | None) -> Any:
    from ..store.database import resolve_url
    from ..store.state import CheckpointStore

    store = CheckpointStore(resolve_url(url))
    store.ensure_schema()
    return store


@quarantine_app.command("list")
def list_(
    pipeline: str = typer.Argument(..., help="Pipeline name (as given to Pipeline(name=...))."),
    run: str | None = typer.Option(None, "--run", help="Only records of this run id."),
    all_: bool = typer.Option(False, "--all", help="Include records already replayed."),
    limit: int = typer.Option(50, help="Show at most this many records."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object a line, with the (anonymized) record."
    ),
    url: str | None = typer.Option(
        None, help="State database URL (default: ETL_EXPRESS_DATABASE_URL or embedded)."
    ),
) -> None:
    """List quarantined records: id, run, stage, source position, reason."""
    items = _store(url).quarantined(pipeline, run_id=run, include_replayed=all_, limit=limit)
    if as_json:
        for it in items:
            typer.echo(
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
        typer.echo(f"no quarantined records for pipeline {pipeline!r}")
        return
    typer.echo(f"{'id':>8}  {'run':8}  {'stage':7}  {'replayed':8}  {'position':20}  reason")
    for it in items:
        position = json.dumps(it["position"], default=str)
        typer.echo(
            f"{it['id']:>8}  {it['run_id'][:8]:8}  {it['stage']:7}  {'yes' if it['replayed_at'] else 'no':8}  "
            f"{position[:20]:20}  {it['reason']}"
        )


@quarantine_app.command("replay")
def replay(
    pipeline: str = typer.Argument(
        ..., help="The pipeline: path/to/file.py:name or package.module:name."
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
    from ..errors import ETLError

    try:
        result = load_pipeline(pipeline).replay_quarantine(ids=ids or None, run_id=run)
    except ETLError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"replayed {result.replayed} record(s), {result.still_failing} still refused (run {result.run_id})"
    )
    if result.still_failing:
        raise typer.Exit(2)
