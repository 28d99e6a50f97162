"""The PostgreSQL store: database URLs, the embedded server and pipeline state.

The names below load from their modules when first used (``_lazy``), so a command that only
looks at the embedded server (``etl-express server status``) does not load SQLAlchemy.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "DATABASE_URL_ENV": ".database",
    "SCHEMA": ".state",
    "CheckpointStore": ".state",
    "engine_for": ".database",
    "libpq_url": ".database",
    "mask_url": ".database",
    "partition_key": ".state",
    "resolve_url": ".database",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .database import DATABASE_URL_ENV, engine_for, libpq_url, mask_url, resolve_url
    from .state import SCHEMA, CheckpointStore, partition_key

__all__ = [
    "DATABASE_URL_ENV",
    "SCHEMA",
    "CheckpointStore",
    "engine_for",
    "libpq_url",
    "mask_url",
    "partition_key",
    "resolve_url",
]
