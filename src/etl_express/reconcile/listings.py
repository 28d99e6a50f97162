"""The key listings of the sources a key-set reconciliation serves (see :mod:`.keysets`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ETLConfigError
from ..format import normalize_name
from ..sources.base import Source
from .keysets import KeyListing

if TYPE_CHECKING:
    from ..sources.rest import RESTSource


def listing_for(source: Source, row_hash_key: str | None) -> KeyListing:
    from ..sources.rest import RESTSource
    from ..sources.sql import SQLSource

    if isinstance(source, SQLSource):
        from ..sources.sql.checksums import SQLKeyListing

        sql = SQLKeyListing(source, row_hash_key)
        return KeyListing(sql.keys, hashed=sql.hashed, read_keys=sql.read_keys)
    if isinstance(source, RESTSource):
        path = str(source.keys_path or source.deleted_path)
        kind = "all" if source.keys_path else "deleted"
        return KeyListing(lambda: rest_keys(source, path), kind=kind)
    raise ETLConfigError(f"no key listing for {type(source).__name__}")


def rest_keys(source: RESTSource, path: str) -> Iterator[list[tuple[Any, ...]]]:
    """The primary keys of the records ``path`` returns, page by page (the source's own
    paginator, auth, retries and records path; not incremental)."""
    lister = copy.copy(source)
    lister.path = path
    lister.incremental_config = None
    lister.incremental = False
    lister.record_hook = None
    for batch in lister.read():
        keys = []
        for record in batch.data:
            fields = {normalize_name(k): v for k, v in record.items()}
            missing = [k for k in source.primary_key if fields.get(k) is None]
            if missing:
                raise ETLConfigError(
                    f"a record from {path!r} has no primary key field {missing}",
                    where={"source": source.name, "fields": ", ".join(sorted(fields)[:20])},
                    hint="the key listing must return the primary key of each record",
                )
            keys.append(tuple(fields[k] for k in source.primary_key))
        yield keys


__all__ = ["listing_for", "rest_keys"]
