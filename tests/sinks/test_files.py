"""JSONLSink and ParquetSink: deterministic names, atomic writes, manifests, replays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl_express import Batch, Pipeline, Source
from etl_express.errors import ETLConfigError, SinkError
from etl_express.format import LINEAGE_COLUMNS, records_to_batch
from etl_express.sinks import JSONLSink, ParquetSink, read_manifest
from etl_express.testing import assert_same_records, common_records, default_records


class ListSource(Source):
    def __init__(self, rows: list[dict[str, Any]], batch_size: int = 7):
        self.rows, self.batch_size = rows, batch_size
        self.name, self.primary_key = "list", ["id"]

    def read(self, position: Any = None, partition: Any = None) -> Iterator[Batch]:
        start = position or 0
        rows = [r for r in self.rows if not partition or r["id"] % 2 == partition["odd"]]
        for i in range(start, len(rows), self.batch_size):
            yield Batch(rows[i : i + self.batch_size], position=i + self.batch_size)


def exported(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for file in sorted(path.rglob("part-*")):
        if file.suffix == ".jsonl":
            rows += [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        else:
            rows += pq.read_table(file).to_pylist()
    return [{k: v for k, v in r.items() if k not in LINEAGE_COLUMNS} for r in rows]


SINKS = {"jsonl": JSONLSink, "parquet": ParquetSink}


@pytest.fixture(params=sorted(SINKS))
def sink_class(request: pytest.FixtureRequest) -> type:
    return SINKS[request.param]


def test_run_exports_every_record_once_with_a_manifest(
    sink_class: type, tmp_path: Path, pg_url: str, pipeline_name: str
) -> None:
    rows = default_records(25)
    sink = sink_class(tmp_path / "out", state_url=pg_url)
    result = Pipeline(pipeline_name, ListSource(rows), sink=sink, progress=False).run()
    got = exported(tmp_path / "out")
    if sink_class is ParquetSink:  # Parquet keeps the types: compare in the common format
        got = common_records(got)
    assert_same_records(got, common_records(rows), "export")
    manifest = read_manifest(tmp_path / "out", result.run_id)
    assert manifest["run_id"] == result.run_id and manifest["pipeline"] == pipeline_name
    assert manifest["rows"] == 25 and [f["rows"] for f in manifest["files"]] == [7, 7, 7, 4]
    assert {"id", "name", "updated_at", "_etl_run_id"} <= {c["name"] for c in manifest["schema"]}
    assert all((tmp_path / "out" / f["file"]).exists() for f in manifest["files"])
    assert not list((tmp_path / "out").rglob(".*tmp*"))  # no temporary file left


def test_replayed_batch_overwrites_instead_of_duplicating(
    sink_class: type, tmp_path: Path, pg_url: str, pipeline_name: str
) -> None:
    class CrashingSink(sink_class):  # type: ignore[misc, valid-type]
        """Writes its file, then fails before the commit (as a crash would)."""

        calls = 0

        def write(self, conn: Any, batch: pa.RecordBatch, primary_key: Any) -> int:
            written = super().write(conn, batch, primary_key)
            CrashingSink.calls += 1
            if CrashingSink.calls == 2:
                raise SinkError("simulated crash after the file was written")
            return written

    rows = default_records(25)
    with pytest.raises(SinkError):
        Pipeline(
            pipeline_name,
            ListSource(rows),
            sink=CrashingSink(tmp_path / "out", state_url=pg_url),
            progress=False,
        ).run()
    assert len(list((tmp_path / "out").rglob("part-*"))) == 2  # batch 2 is an orphan: not committed
    Pipeline(
        pipeline_name,
        ListSource(rows),
        sink=sink_class(tmp_path / "out", state_url=pg_url),
        progress=False,
    ).run()
    got = exported(tmp_path / "out")
    assert_same_records(common_records(got), common_records(rows), "after the replay")
    assert len(list((tmp_path / "out").rglob("part-*"))) == 4


def test_partitions_get_their_own_folders(tmp_path: Path, pg_url: str, pipeline_name: str) -> None:
    rows = default_records(20)
    pipeline = Pipeline(
        pipeline_name,
        ListSource(rows, batch_size=4),
        sink=JSONLSink(tmp_path, state_url=pg_url),
        progress=False,
    )
    for odd in (0, 1):
        pipeline.run(partition={"odd": odd})
    folders = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("p-"))
    assert len(folders) == 2
    assert_same_records(exported(tmp_path), common_records(rows), "two partitions")


def test_outside_a_pipeline_the_content_names_the_file(tmp_path: Path) -> None:
    batch, _ = records_to_batch(default_records(3))
    sink = JSONLSink(tmp_path)
    assert sink.write(None, batch, ["id"]) == 3  # type: ignore[arg-type]
    sink.write(None, batch, ["id"])  # type: ignore[arg-type]
    files = list(tmp_path.rglob("part-*"))
    assert len(files) == 2 and {f.name.rsplit("-", 1)[0] for f in files}.__len__() == 1


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    class Broken(JSONLSink):
        def write_file(self, path: Path, batch: pa.RecordBatch) -> None:
            path.write_text('{"id": 1}\n{"id"')
            raise OSError(28, "No space left on device")

    batch, _ = records_to_batch(default_records(2))
    with pytest.raises(SinkError, match="No space left on device") as info:
        Broken(tmp_path).write(None, batch, ["id"])  # type: ignore[arg-type]
    assert info.value.hint
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_jsonl_keeps_cyrillic_and_parquet_keeps_types(tmp_path: Path) -> None:
    batch, _ = records_to_batch([{"id": 1, "name": "Ёжик", "at": "x"}])
    JSONLSink(tmp_path / "j").write(None, batch, [])  # type: ignore[arg-type]
    assert "Ёжик" in next((tmp_path / "j").rglob("*.jsonl")).read_text(encoding="utf-8")
    import datetime as dt

    batch, _ = records_to_batch([{"id": 1, "at": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}])
    ParquetSink(tmp_path / "p").write(None, batch, [])  # type: ignore[arg-type]
    table = pq.read_table(next((tmp_path / "p").rglob("*.parquet")))
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")


def test_bad_configuration() -> None:
    with pytest.raises(ETLConfigError, match="compression"):
        ParquetSink("x", compression="rar")
    with pytest.raises(ETLConfigError, match="no manifest"):
        read_manifest("/nonexistent", "abc")
