"""Reading a :class:`~.query.ReadPlan` from PostgreSQL through ADBC (binary COPY decoded to
Arrow in C++): the path for the column types the compiled reader (:mod:`.pgbinary`) does not
take, and for re-reads by key."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ...format import Batch
from .datetimes import flag_adbc
from .quarantine import positioned, typed
from .query import ReadPlan, render

_ADBC_CHUNK_BYTES = 4 << 20  # ADBC hands over ~4 MB record batches; re-cut to batch_size


def read_adbc(url: str, plan: ReadPlan, batch_size: int) -> Iterator[Batch]:
    """Stream the plan's rows from the libpq ``url`` in batches of ``batch_size``.

    ``numeric`` columns are selected as text: PostgreSQL's text form is cheaper for ADBC
    to take in than its binary numeric (decoded into strings digit by digit), and
    :func:`.quarantine.typed` casts the text to ``decimal128`` in one vectorized step;
    ``uuid`` columns too, as their usual 8-4-4-4-12 text. Positions are taken from the typed
    batch, so they bind back with their SQL types.
    """
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET default_transaction_read_only = on")
        cur.execute("SET standard_conforming_strings = on")  # see query.render
        cur.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(_ADBC_CHUNK_BYTES)}
        )
        cur.execute(render(plan.for_drivers()))
        reader = cur.fetch_record_batch()
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for chunk in reader:
            pending.append(chunk)
            pending_rows += chunk.num_rows
            while pending_rows >= batch_size:
                table = pa.Table.from_batches(pending)
                rest = table.slice(batch_size)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
                yield _batch(plan, table.slice(0, batch_size))
        if pending_rows:
            yield _batch(plan, pa.Table.from_batches(pending))


def _batch(plan: ReadPlan, rows: pa.Table) -> Batch:
    """A typed batch from ADBC's rows, its dates and timestamps out of the common format
    quarantined as on the binary reader's path (see :mod:`.datetimes`)."""
    data, problems = typed(
        rows.combine_chunks().to_batches()[0], plan.types, plan.label, plan.declared
    )
    data, flagged, kinds = flag_adbc(data)  # before the position reads the last row
    return positioned(data, problems, plan.ordering, plan.label, flagged, kinds)


__all__ = ["read_adbc"]
