"""The PostgreSQL store: database URLs, the embedded server and pipeline state."""

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
