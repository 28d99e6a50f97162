"""What the file export sinks share: deterministic names, atomic writes, run manifests.

Layout of an export folder::

    <path>/
        all/part-<key>-00000.jsonl         one file a batch (a partition's folder: p-<hash>)
        _runs/<run id>.json                the run's manifest: files, row counts, schema

A batch's file name is its sequence number among the batches committed for (pipeline,
partition), read in the batch's own transaction: a batch replayed after a crash comes after
the same committed batches, so it gets the same name and overwrites the orphan instead of
duplicating it. Names and manifests never derive from positions (which are source values:
a hash of a key would be reversible by dictionary). Files appear only
complete: they are written to a hidden temporary file and renamed with ``os.replace``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import Connection

from ..errors import ETLConfigError, SinkError
from ..format import LINEAGE_COLUMNS, RUN_ID
from ..secrets import SecretLike
from .base import Sink

RUNS_FOLDER = "_runs"


def write_atomically(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, then move the finished file to ``target`` in one step."""
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FileExportSink(Sink):
    """Base of the export sinks: subclasses set ``suffix`` and implement :meth:`write_file`."""

    suffix = ""
    format = ""

    def __init__(self, path: str | Path, *, state_url: SecretLike | None = None):
        if not str(path):
            raise ETLConfigError(
                f"{type(self).__name__} needs a folder path",
                hint=f'{type(self).__name__}("exports/customers")',
            )
        self.path = Path(path)
        self.state_url = state_url
        self._runs: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"

    @abstractmethod
    def write_file(self, path: Path, batch: pa.RecordBatch) -> None:
        """Write ``batch`` as one complete file at ``path`` (a temporary name)."""

    def write(self, conn: Connection, batch: pa.RecordBatch, primary_key: Sequence[str]) -> int:
        run_id, pipeline, partition, key = self._context(conn, batch)
        run = self._runs.setdefault(
            run_id,
            {
                "run_id": run_id,
                "pipeline": pipeline,
                "partition": partition,
                "format": self.format,
                "files": [],
                "rows": 0,
                "schema": [],
                "keys": {},
            },
        )
        seq = run["keys"].get(key, 0)  # several writes in one batch: next sequence number
        run["keys"][key] = seq + 1
        folder = self.path / ("all" if not partition else f"p-{_digest(partition)[:8]}")
        target = folder / f"part-{key}-{seq:05d}{self.suffix}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(target, lambda tmp: self.write_file(tmp, batch))
        except OSError as exc:
            raise SinkError(
                f"cannot write {target}: {exc.strerror or type(exc).__name__}",
                hint="check that the folder exists, is writable and has free space",
            ) from None
        run["files"].append(
            {
                "file": target.relative_to(self.path).as_posix(),
                "rows": batch.num_rows,
                "batch": key,
            }
        )
        run["rows"] += batch.num_rows
        known = {f["name"] for f in run["schema"]}
        run["schema"] += [
            {"name": f.name, "type": str(f.type)} for f in batch.schema if f.name not in known
        ]
        self._write_manifest(run)
        return batch.num_rows

    def _write_manifest(self, run: dict[str, Any]) -> None:
        manifest = {k: v for k, v in run.items() if k != "keys"}
        manifest["updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        folder = self.path / RUNS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(manifest, ensure_ascii=False, indent=2, default=str)
        write_atomically(
            folder / f"{run['run_id']}.json", lambda tmp: tmp.write_text(text, encoding="utf-8")
        )

    def _context(self, conn: Connection | None, batch: pa.RecordBatch) -> tuple[str, str, str, str]:
        """(run id, pipeline, partition, the batch's name key) from the state tables: the
        number of batches committed before it for the pipeline and partition."""
        run_id = None
        if RUN_ID in batch.schema.names and batch.num_rows:
            run_id = batch.column(RUN_ID)[0].as_py()
        if conn is not None and run_id:
            from ..store._run_history import committed_batches

            found = committed_batches(conn, run_id)
            if found is not None:
                pipeline, partition, committed = found
                return run_id, pipeline, partition, f"{committed:08d}"
        # outside a pipeline: the content names the file
        data = batch.select([n for n in batch.schema.names if n not in LINEAGE_COLUMNS])
        return run_id or "no-run", "", "", _digest(data.to_pylist())


def read_manifest(path: str | Path, run_id: str) -> dict[str, Any]:
    """The manifest a run wrote into the export folder ``path``."""
    file = Path(path) / RUNS_FOLDER / f"{run_id}.json"
    if not file.exists():
        raise ETLConfigError(
            f"no manifest for run {run_id} in {path}", hint="check the run id and the folder"
        )
    return json.loads(file.read_text(encoding="utf-8"))


__all__ = ["FileExportSink", "read_manifest", "write_atomically"]
