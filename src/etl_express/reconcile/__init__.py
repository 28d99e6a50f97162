"""Delete reconciliation: after the incremental pass, make the target's key set the source's.

``Pipeline(..., deletes="soft" | "hard")`` builds a :class:`Reconciliation` for each run. For a
:class:`~etl_express.sources.SQLSource` it compares range checksums computed inside each
database (:mod:`.ranges`), never writing to the source; for a
:class:`~etl_express.sources.OneCODataSource` 1C's own ``DeletionMark`` is the soft delete
(:mod:`.onec`). The counts land in ``RunResult.checks`` as the ``deletes`` check.
"""

from __future__ import annotations

from .options import (
    DELETE_MODES,
    MAX_DELETE_SHARE,
    check_options,
    combined_deletes,
    deletion_mark_steps,
    forget_reconciliation,
)
from .run import Reconciliation

__all__ = [
    "DELETE_MODES",
    "MAX_DELETE_SHARE",
    "Reconciliation",
    "check_options",
    "combined_deletes",
    "deletion_mark_steps",
    "forget_reconciliation",
]
