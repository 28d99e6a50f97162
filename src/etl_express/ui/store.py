"""What the dashboard reads from the store, in read-only transactions.

Everything here is already anonymized in the store (records, errors, log lines); what the
store may still hold in clear is a *source position* — a checkpoint, the position of a
quarantined record, an error's ``after position=...`` — when the source is keyed or ordered
by a column tagged as personal data. Such positions are masked here: for every pipeline whose
declaration says so (``etl_express.pipelines.position_pii``), and for every pipeline that
declared nothing (written by an older version: fail closed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .._status import SCOPED_RUNS, WHOLE_RUN_KEYS, pipeline_records
from ..secrets.masking import MASK, mask_secrets
from ..store.checkpoints import read_only
from ..store.declarations import declarations
from ..store.schema import SCHEMA, logs, quality_checks, quarantine, runs, table_schemas

#: how many runs the pipeline page charts and lists, and how many checks columns it shows
HISTORY = 100
CHECK_HISTORY = 30


def mask_position(value: Any) -> Any:
    """``value`` with every leaf replaced by ``***`` (its shape kept: ``{"key": ["***"]}``)."""
    if isinstance(value, dict):
        return {k: mask_position(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_position(v) for v in value]
    return None if value is None else MASK


_OPEN = {"{": "}", "[": "]", "(": ")"}


def mask_positions_in_text(text: str) -> str:
    """``text`` with the value after each ``position=`` / ``position': `` replaced by ``***``.

    Error messages name where they happened as ``[..., after position={'key': [...]}]``; the
    value runs to the matching bracket, or (unbracketed) to the next ``,`` or ``]``.
    """
    out: list[str] = []
    i = 0
    markers = ("position=", "position': ", 'position": ')
    while True:
        hits = [(text.find(m, i), m) for m in markers]
        hits = [(at, m) for at, m in hits if at >= 0]
        if not hits:
            out.append(text[i:])
            return "".join(out)
        at, marker = min(hits)
        start = at + len(marker)
        out.append(text[i:start])
        end = _value_end(text, start)
        out.append(MASK)
        i = end


def _value_end(text: str, start: int) -> int:
    if start < len(text) and text[start] in _OPEN:
        stack = [_OPEN[text[start]]]
        quote = None
        j = start + 1
        while j < len(text) and stack:
            c = text[j]
            if quote:
                if c == "\\":
                    j += 1
                elif c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c in _OPEN:
                stack.append(_OPEN[c])
            elif c == stack[-1]:
                stack.pop()
            j += 1
        return j
    j = start
    while j < len(text) and text[j] not in ",]\n":
        j += 1
    return j


class StoreView:
    """Read-only queries over one store for the dashboard's pages."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with read_only(self.engine) as conn:
            yield conn

    def masks_positions(self, conn: Connection, pipeline: str) -> bool:
        declared = declarations(conn).get(pipeline)
        return declared is None or bool(declared["position_pii"])

    def _text(self, text: str | None, masked: bool) -> str | None:
        if not text:
            return text
        text = mask_secrets(text)
        return mask_positions_in_text(text) if masked else text

    # -- pages ---------------------------------------------------------------------------

    def overview(self, conn: Connection) -> list[dict[str, Any]]:
        records = pipeline_records(conn)
        quarantined: dict[str, int] = dict(
            conn.execute(
                sa.select(quarantine.c.pipeline, sa.func.count())
                .where(quarantine.c.replayed_at.is_(None))
                .group_by(quarantine.c.pipeline)
            ).all()
        )
        for r in records:
            r["error"] = self._text(r["error"], self.masks_positions(conn, r["pipeline"]))
            r["quarantined"] = quarantined.get(r["pipeline"], 0)
        return records

    def pipeline(self, conn: Connection, name: str) -> dict[str, Any] | None:
        record = next((r for r in self.overview(conn) if r["pipeline"] == name), None)
        if record is None:
            return None
        masked = self.masks_positions(conn, name)
        rows = conn.execute(
            sa.text(
                f"SELECT * FROM ({SCOPED_RUNS}) s WHERE pipeline = :p "
                "ORDER BY started_at DESC LIMIT :n"
            ),
            {"p": name, "n": HISTORY},
        ).mappings()
        history = [self._run(dict(r), masked) for r in rows]
        return {
            "record": record,
            "runs": history,
            "chart": _chart(list(reversed(history))),
            "checks": self._check_grid(conn, name, history[:CHECK_HISTORY]),
            "schemas": self._schema_changes(conn, name),
            "declared": declarations(conn).get(name),
        }

    def run(self, conn: Connection, run_id: str) -> dict[str, Any] | None:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        masked = self.masks_positions(conn, row["pipeline"])
        run = self._run(dict(row), masked)
        parts: list[dict[str, Any]] = []
        if row["partition"] == "*":  # a parallel run: its partitions ran in its time span
            parts = [
                self._run(dict(r), masked)
                for r in conn.execute(
                    sa.select(runs)
                    .where(
                        runs.c.pipeline == row["pipeline"],
                        runs.c.partition.not_in(WHOLE_RUN_KEYS),
                        runs.c.started_at >= row["started_at"],
                        runs.c.started_at <= (row["finished_at"] or sa.func.now()),
                    )
                    .order_by(runs.c.started_at)
                ).mappings()
            ]
        ids = [run_id, *(p["run_id"] for p in parts)]
        checks = [
            dict(c)
            for c in conn.execute(
                sa.select(quality_checks)
                .where(quality_checks.c.run_id == run_id)
                .order_by(quality_checks.c.id)
            ).mappings()
        ]
        lines = [
            {**dict(line), "message": self._text(line["message"], masked)}
            for line in conn.execute(
                sa.select(logs.c.ts, logs.c.level, logs.c.partition, logs.c.message)
                .where(logs.c.run_id.in_(ids))
                .order_by(logs.c.ts, logs.c.id)
                .limit(1000)
            ).mappings()
        ]
        quarantined = conn.execute(
            sa.select(sa.func.count()).where(quarantine.c.run_id.in_(ids))
        ).scalar_one()
        return {
            "run": run,
            "partitions": parts,
            "checks": checks,
            "logs": lines,
            "quarantined": quarantined,
        }

    def quarantine(
        self, conn: Connection, pipeline: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        q = (
            sa.select(quarantine)
            .where(quarantine.c.replayed_at.is_(None))
            .order_by(quarantine.c.id.desc())
            .limit(limit)
        )
        if pipeline:
            q = q.where(quarantine.c.pipeline == pipeline)
        items = []
        masks: dict[str, bool] = {}
        for row in conn.execute(q).mappings():
            item = dict(row)
            name = item["pipeline"]
            if name not in masks:
                masks[name] = self.masks_positions(conn, name)
            if masks[name]:
                item["position"] = mask_position(item["position"])
            item["position_text"] = json.dumps(item["position"], ensure_ascii=False)
            item["record_text"] = mask_secrets(
                json.dumps(item["record"], ensure_ascii=False, indent=1, default=str)
            )
            item["reason"] = self._text(item["reason"], masks[name])
            items.append(item)
        return items

    def quarantine_pipelines(self, conn: Connection) -> list[str]:
        return list(
            conn.execute(
                sa.select(quarantine.c.pipeline)
                .where(quarantine.c.replayed_at.is_(None))
                .distinct()
                .order_by(quarantine.c.pipeline)
            ).scalars()
        )

    # -- parts -----------------------------------------------------------------------------

    def _run(self, row: dict[str, Any], masked: bool) -> dict[str, Any]:
        finished = row.get("finished_at")
        duration = (finished - row["started_at"]).total_seconds() if finished else None
        row["duration_s"] = duration
        row["rows_per_s"] = row["rows_read"] / duration if duration else None
        row["error"] = self._text(row.get("error"), masked)
        return row

    def _check_grid(
        self, conn: Connection, pipeline: str, history: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Checks (rows) over the latest runs (columns, oldest first): status and details."""
        columns = list(reversed(history))
        ids = [r["run_id"] for r in columns]
        cells: dict[str, dict[str, dict[str, Any]]] = {}
        if ids:
            for c in conn.execute(
                sa.select(
                    quality_checks.c.run_id,
                    quality_checks.c.name,
                    quality_checks.c.status,
                    quality_checks.c.details,
                ).where(quality_checks.c.run_id.in_(ids))
            ).mappings():
                cells.setdefault(c["name"], {})[c["run_id"]] = {
                    "status": c["status"],
                    "details": json.dumps(c["details"], default=str, ensure_ascii=False),
                }
        return {"runs": columns, "rows": sorted(cells.items())}

    def _schema_changes(self, conn: Connection, pipeline: str) -> list[dict[str, Any]]:
        """Each recorded version of the target's columns, with what changed from the last."""
        if not sa.inspect(conn).has_table("table_schemas", schema=SCHEMA):
            return []  # a store written before schemas were recorded (read-only: not created)
        versions = conn.execute(
            sa.select(table_schemas)
            .where(table_schemas.c.pipeline == pipeline)
            .order_by(table_schemas.c.id)
        ).mappings()
        changes = []
        before: dict[str, dict[str, str]] = {}
        for v in versions:
            old = before.get(v["target"], {})
            new = v["columns"]
            before[v["target"]] = new
            if old == new:  # two partitions of a parallel run recorded the same change
                continue
            changes.append(
                {
                    "target": v["target"],
                    "recorded_at": v["recorded_at"],
                    "run_id": v["run_id"],
                    "created": not old,
                    "added": [(c, t) for c, t in new.items() if c not in old],
                    "removed": [c for c in old if c not in new],
                    "changed": [(c, old[c], t) for c, t in new.items() if c in old and old[c] != t],
                }
            )
        return list(reversed(changes))


def _chart(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The pipeline page's chart series, oldest run first."""

    def label(when: dt.datetime) -> str:
        return when.strftime("%m-%d %H:%M:%S")

    return {
        "labels": [label(r["started_at"]) for r in history],
        "status": [r["status"] for r in history],
        "rows_written": [r["rows_written"] for r in history],
        "rows_quarantined": [r["rows_quarantined"] for r in history],
        "rows_per_s": [round(r["rows_per_s"], 1) if r["rows_per_s"] else 0 for r in history],
        "duration_s": [round(r["duration_s"], 3) if r["duration_s"] else 0 for r in history],
    }


__all__ = ["StoreView", "mask_position", "mask_positions_in_text"]
