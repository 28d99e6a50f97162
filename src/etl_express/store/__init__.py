"""The PostgreSQL store: database URLs, the embedded server and pipeline state.

Every state table is declared in :mod:`.schema`; each has one owner module here that writes
it (reads are free; ``tests/store/test_owners.py`` fails on a write elsewhere):

- :mod:`.ledger` — ``runs`` (start, batch counters, heartbeat, lease and takeover, finish,
  abandon); beside it, writing nothing, :mod:`._leases` (a run's owner, whether it is gone,
  the heartbeat thread) and :mod:`._run_history` (reads of the recorded runs)
- :mod:`.checkpoints` — ``checkpoints`` and ``partition_plans`` (and :class:`CheckpointStore`,
  the handle on one state database)
- :mod:`.quarantine` — ``quarantine``
- :mod:`.checks` — ``quality_checks``
- :mod:`.runlog` — ``logs`` (the run log and its one purger)
- :mod:`.declarations` — ``pipelines`` and ``table_schemas``
- :mod:`.reconciliation` — ``reconcile_state`` and ``row_hash_keys``
- :mod:`.schema` — ``meta`` (the schema version) and the migrations

Forgetting a pipeline (``etl-express forget``): each owner has ``forget(conn, pipeline) ->
int``, deleting that pipeline's rows of its tables and returning how many —
``ledger.forget``, ``checkpoints.forget``, ``quarantine.forget``, ``checks.forget``,
``runlog.forget``, ``declarations.forget`` and ``reconciliation.forget``; call them all on one
connection (``with store.transaction() as conn``) to forget it in one transaction.

The names below load from their modules when first used (``_lazy``), so a command that only
looks at the embedded server (``etl-express server status``) does not load SQLAlchemy.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "DATABASE_URL_ENV": ".database",
    "SCHEMA": ".schema",
    "CheckpointStore": ".checkpoints",
    "engine_for": ".database",
    "libpq_url": ".database",
    "mask_url": ".database",
    "partition_key": ".schema",
    "resolve_url": ".database",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .checkpoints import CheckpointStore
    from .database import DATABASE_URL_ENV, engine_for, libpq_url, mask_url, resolve_url
    from .schema import SCHEMA, partition_key

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
