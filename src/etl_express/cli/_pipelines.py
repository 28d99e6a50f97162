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

from ..errors import ETLConfigError

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
    """Every pipeline the store has a trace of, the most recently run first."""
    from .._forget import known_pipelines as known_in

    with store.engine.connect() as conn:
        return known_in(conn)


def check_known(name: str, store: CheckpointStore) -> str:
    """``name`` when the store knows it, else an error naming the store and the known names."""
    from .._forget import unknown_pipeline
    from ..store.database import mask_url

    known = known_pipelines(store)
    if name in known:
        return name
    raise unknown_pipeline(name, known, mask_url(store.url))


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


def url_option() -> Any:
    return typer.Option(
        None,
        "--url",
        help="The store's PostgreSQL URL (default: ETL_EXPRESS_DATABASE_URL or the embedded one).",
    )


__all__ = [
    "REFERENCE_HELP",
    "check_known",
    "is_code_reference",
    "known_pipelines",
    "load_pipeline",
    "resolve",
    "url_option",
]
