"""How every command names a pipeline and opens the store, so ``runs``, ``logs`` and
``quarantine`` agree: a pipeline is referred to by its name (``Pipeline(name=...)``, as the store
knows it) or by its code, ``path/to/file.py:NAME`` or ``package.module:NAME`` (a variable holding
the Pipeline or a function returning it). A name the store has never seen is an error that lists
the names it knows, never an empty answer.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import ETLConfigError, ETLError

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..store.checkpoints import CheckpointStore

REFERENCE_HELP = "A pipeline name, or its code: path/to/file.py:NAME or package.module:NAME."


def is_code_reference(ref: str) -> bool:
    """``file.py:name`` or ``module.path:name`` (a pipeline name has no such form)."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        return False
    if target.endswith(".py") or "/" in target or "\\" in target:
        return True
    return all(part.isidentifier() for part in target.split("."))


def load_pipeline(spec: str) -> Pipeline:
    """The Pipeline named by ``spec``: ``path/to/file.py:name`` or ``package.module:name``.

    ``name`` may also be a function without arguments that returns the pipeline. The file
    is imported as a module (not as ``__main__``), so runs guarded by
    ``if __name__ == "__main__":`` do not start.
    """
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


def known_pipelines(store: CheckpointStore) -> list[str]:
    """Every pipeline the store has a trace of (runs, checkpoints, quarantine, declarations),
    the most recently run first."""
    import sqlalchemy as sa

    from ..store import schema as state

    tables = (state.runs, state.checkpoints, state.quarantine, state.pipelines)
    names = sa.union(*(sa.select(t.c.pipeline.label("pipeline")) for t in tables)).subquery()
    last = (
        sa.select(state.runs.c.pipeline, sa.func.max(state.runs.c.started_at).label("at"))
        .group_by(state.runs.c.pipeline)
        .subquery()
    )
    query = (
        sa.select(names.c.pipeline)
        .outerjoin(last, last.c.pipeline == names.c.pipeline)
        .order_by(last.c.at.desc().nulls_last(), names.c.pipeline)
    )
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def check_known(name: str, store: CheckpointStore) -> str:
    """``name`` when the store knows it, else an error naming the store and the known names."""
    from ..store.database import mask_url

    known = known_pipelines(store)
    if name in known:
        return name
    import difflib

    listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none yet"
    close = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise ETLConfigError(
        f"unknown pipeline {name!r} in the store at {mask_url(store.url)}",
        hint=f"{guess}known pipelines, most recently run first: {listed}. A pipeline appears "
        "there once it has run; check the name, or pass --url for another store",
    )


def resolve(ref: str, url: str | None) -> tuple[str, CheckpointStore, Pipeline | None]:
    """The pipeline's name, its store and (for a code reference) the Pipeline itself.

    A code reference uses the pipeline's own store unless ``url`` names another one."""
    pipeline = load_pipeline(ref) if is_code_reference(ref) else None
    if pipeline is not None and url is None:
        store = pipeline.store
        store.ensure_schema()
    else:
        from ..store.checkpoints import open_store

        store = open_store(url)
    name = pipeline.name if pipeline is not None else ref
    return check_known(name, store), store, pipeline


def fail(exc: ETLError) -> typer.Exit:
    """Print an etl-express error the way every command does; the exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def url_option() -> Any:
    return typer.Option(
        None,
        "--url",
        help="The store's PostgreSQL URL (default: ETL_EXPRESS_DATABASE_URL or the embedded one).",
    )


__all__ = [
    "REFERENCE_HELP",
    "check_known",
    "fail",
    "is_code_reference",
    "known_pipelines",
    "load_pipeline",
    "resolve",
    "url_option",
]
