"""The row hash of delete reconciliation (``_etl_row_hash``): its key and the columns it covers.

A row hash stored beside the anonymized row is a test a reader of the target can run: keyed by
a key that reader can get and computed over the raw row, it would let them guess the birth
date that ``Generalize(to="year")`` removed in at most 366 tries. So:

* **The hash covers only what the target receives in clear**: the source columns carried
  unchanged (renamed, cast, filtered) into a target column and not personal data
  (:meth:`~etl_express._privacy.PrivacyPlan.clear_source_columns`). A personal column reaches
  the target only anonymized, which the source database cannot compute; a column the pipeline
  drops or only derives from (a bucket of an amount) is not what the target holds. So the hash
  binds nothing a reader of the target does not already see; a change confined to the other
  columns is found by the cursor, not by the checksums.
* **The key lives only in the secret store.** It is derived (HKDF-SHA256, one subkey per
  pipeline) from the secret ``ROW_HASH_KEY`` when the secret store has it, else from the
  pipeline's pseudonymization key (the ``key=`` of its first keyed anonymizer). It is never
  written to any database: the ``etl_express.row_hash_keys`` table of earlier versions is
  emptied of the pipeline's key the first time (every row is then re-read once and stored
  with its new hash). A pipeline with neither secret keys its hashes by its name alone — they
  then cover only values the target shows anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr

from ..errors import ETLConfigError
from ..secrets import SecretRef, secret
from .base import Anonymizer
from .keys import hkdf_sha256, resolve_key

#: the secret a pipeline's row hashes are keyed by, when the secret store has it
ROW_HASH_SECRET = "ROW_HASH_KEY"  # pragma: allowlist secret  (the secret's name, not a value)


class HashedPipeline(Protocol):
    """What the row hash reads of a pipeline (``Pipeline`` and the engine's spec have it)."""

    @property
    def name(self) -> str: ...

    @property
    def anonymizers(self) -> Sequence[Anonymizer]: ...


def row_hash_key(pipeline: HashedPipeline) -> str:
    """The pipeline's row-hash key (hex), derived from a secret (see the module docstring)."""
    master = _master(pipeline)
    return hkdf_sha256(master, b"row hash:" + pipeline.name.encode("utf-8")).hex()


def _master(pipeline: HashedPipeline) -> bytes:
    try:
        return resolve_key(secret(ROW_HASH_SECRET), "the row-hash key")
    except ETLConfigError:
        pass  # not in the secret store: the pipeline's pseudonymization key
    for step in pipeline.anonymizers:
        # Pseudonymize keeps its key reference (an etl.secret or SecretStr) on its hasher
        key = getattr(step, "key", None) or getattr(getattr(step, "_hasher", None), "_key", None)
        if isinstance(key, (SecretRef, SecretStr)):
            return resolve_key(key, type(step).__name__)
    return b"etl-express row hash without a secret: only values the target holds in clear"


def row_hash_columns(pipeline: HashedPipeline, raw_names: list[str]) -> list[str]:
    """The source's columns (its own spelling, of ``raw_names``) that the row hash covers."""
    from ..format import normalize_name
    from .guard import plan_for

    # carried unchanged and not personal; no transformer is run (a step that does not declare
    # its lineage carries nothing anyway)
    clear = set(plan_for(pipeline, run_steps=False).clear_source_columns())
    return [n for n in raw_names if normalize_name(n) in clear]


__all__ = ["ROW_HASH_SECRET", "row_hash_columns", "row_hash_key"]
