"""FileSource: encodings, bad lines, formats and incremental loading by file."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from etl_express import Pipeline
from etl_express.errors import ETLConfigError, SourceError
from etl_express.sources import FileSource
from etl_express.sources.files import detect_delimiter, detect_encoding
from etl_express.testing import (
    MemorySink,
    assert_same_records,
    common_records,
    default_records,
    records_of,
)
from tests.conftest import pg_exec

from .conftest import write_csv, write_jsonl, write_parquet

RU = [
    {
        "id": i,
        "фио": f"Иванов Пётр {i}",
        "город": "Москва" if i % 2 else "Санкт-Петербург",
        "сумма": i * 1.5,
        "комментарий": None if i % 3 == 0 else "ёлка; «кавычки»",
    }
    for i in range(1, 16)
]


def test_cp1251_semicolon_csv_is_detected_and_read_row_for_row(tmp_path: Path) -> None:
    write_csv(tmp_path / "выгрузка.csv", RU, encoding="cp1251", delimiter=";")
    assert detect_encoding((tmp_path / "выгрузка.csv").read_bytes()) == "cp1251"
    got = records_of(list(FileSource(tmp_path, "*.csv", batch_size=4).read()))
    assert_same_records(got, common_records(RU), "cp1251")
    assert got[0]["фио"] == "Иванов Пётр 1" and got[0]["комментарий"] == "ёлка; «кавычки»"


def test_configured_encoding_and_delimiter(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.txt", RU, encoding="utf-16", delimiter="\t")
    got = records_of(
        list(FileSource(tmp_path, "*.txt", format="csv", encoding="utf-16", delimiter="\t").read())
    )
    assert_same_records(got, common_records(RU), "utf-16 tsv")


def test_detection_helpers() -> None:
    assert (
        detect_delimiter("a;b;c") == ";"
        and detect_delimiter("a\tb") == "\t"
        and detect_delimiter("abc") == ","
    )
    assert detect_encoding("привет".encode()) == "utf-8"
    assert detect_encoding("\ufeffid".encode()) == "utf-8"
    assert detect_encoding("привет".encode("cp1251")) == "cp1251"


def test_malformed_line_is_quarantined_with_file_and_line(
    tmp_path: Path, pg_url: str, pipeline_name: str
) -> None:
    rows = default_records(10)
    write_csv(tmp_path / "clients.csv", rows, extra_lines={4: '99,"Сидоров, с запятой",broken'})
    sink = MemorySink(pg_url)
    pipeline = Pipeline(
        pipeline_name,
        FileSource(tmp_path, "*.csv", batch_size=3, primary_key="id"),
        sink=sink,
        max_error_rate=0.5,
        progress=False,
    )
    result = pipeline.run()
    assert result.rows_read == 11 and result.rows_written == 10 and result.rows_quarantined == 1
    assert_same_records(sink.records(), common_records(rows), "the rest loads")
    ((record, reason),) = pg_exec(
        pg_url,
        "SELECT record, reason FROM etl_express.quarantine WHERE pipeline = %s",
        [pipeline_name],
    )
    assert (
        record["source_file"] == "clients.csv" and int(record["source_line"]) == 6
    )  # header is line 1
    assert reason == "clients.csv: line 6: expected 6 fields, found 3"
    assert "Сидоров" not in str(record) + reason  # the raw line is not kept
    assert pipeline.run().rows_read == 0  # the file is loaded: nothing again, the bad line neither


def test_resume_after_a_bad_line_does_not_quarantine_it_twice(tmp_path: Path) -> None:
    rows = default_records(10)
    write_csv(tmp_path / "a.csv", rows, extra_lines={2: "1,2"})
    source = FileSource(tmp_path, "*.csv", batch_size=3)
    batches = list(source.read())
    assert sum(len(b.rejected) for b in batches) == 1
    again = list(source.read(batches[0].position))
    assert sum(len(b.rejected) for b in batches[:1] + again) == 1
    assert_same_records(records_of(batches[:1] + again), common_records(rows), "resumed")


def test_jsonl_with_a_bad_line(tmp_path: Path) -> None:
    rows = default_records(8)
    write_jsonl(
        tmp_path / "a.jsonl", rows, extra_lines={3: '{"id": 100, "name": "Пётр"', 5: "[1, 2]"}
    )
    batches = list(FileSource(tmp_path, "*.jsonl", batch_size=3).read())
    assert_same_records(records_of(batches), common_records(rows), "jsonl")
    reasons = sorted(r.reason for b in batches for r in b.rejected)
    assert (
        reasons[0].startswith("a.jsonl: line 4: invalid JSON")
        and reasons[1] == "a.jsonl: line 7: a JSON list, not an object"
    )
    assert all("Пётр" not in str(r.record) for b in batches for r in b.rejected)


def test_parquet_row_for_row(tmp_path: Path) -> None:
    rows = default_records(20)
    write_parquet(tmp_path / "a.parquet", rows)
    batches = list(FileSource(tmp_path, "*.parquet", batch_size=6).read())
    assert [b.num_rows for b in batches if b.num_rows] == [6, 6, 6, 2]
    assert_same_records(records_of(batches), common_records(rows), "parquet")


def test_mixed_formats_by_suffix(tmp_path: Path) -> None:
    a, b, c = default_records(9)[:3], default_records(9)[3:6], default_records(9)[6:]
    write_csv(tmp_path / "a.csv", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    write_parquet(tmp_path / "c.parquet", c)
    assert_same_records(
        records_of(list(FileSource(tmp_path).read())), common_records(a + b + c), "mixed"
    )


def test_incremental_by_file(tmp_path: Path) -> None:
    rows = default_records(30)
    write_csv(tmp_path / "a.csv", rows[:10])
    write_csv(tmp_path / "b.csv", rows[10:20])
    source = FileSource(tmp_path, "*.csv", batch_size=4)
    first = list(source.read())
    assert_same_records(records_of(first), common_records(rows[:20]), "first run")
    position = first[-1].position
    assert records_of(list(source.read(position))) == []

    write_csv(tmp_path / "c.csv", rows[20:25])  # a new file
    run = list(source.read(position))
    assert_same_records(records_of(run), common_records(rows[20:25]), "new file")
    position = run[-1].position

    write_csv(tmp_path / "b.csv", rows[10:20] + rows[25:])  # a changed file is loaded again, whole
    os.utime(tmp_path / "a.csv", ns=(1, 1))  # touched but unchanged: skipped
    run = list(source.read(position))
    assert_same_records(records_of(run), common_records(rows[10:20] + rows[25:]), "changed file")
    position = run[-1].position
    assert position["files"]["a.csv"]["mtime_ns"] == 1
    assert records_of(list(source.read(position))) == []


def test_same_size_same_mtime_different_content_is_not_reread(tmp_path: Path) -> None:
    # size+mtime is the cheap check; a rewrite that keeps both is indistinguishable by design
    write_csv(tmp_path / "a.csv", [{"id": 1}])
    source = FileSource(tmp_path, "*.csv")
    position = list(source.read())[-1].position
    stat = (tmp_path / "a.csv").stat()
    write_csv(tmp_path / "a.csv", [{"id": 2}])
    os.utime(tmp_path / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert records_of(list(source.read(position))) == []


def test_partitions_split_files_without_overlap(tmp_path: Path) -> None:
    rows = default_records(24)
    for i in range(8):
        write_csv(tmp_path / f"f{i}.csv", rows[i * 3 : i * 3 + 3])
    source = FileSource(tmp_path, "*.csv")
    parts = source.partitions(3)
    assert len(parts) == 3
    got = [r for p in parts for r in records_of(list(source.read(partition=p)))]
    assert_same_records(got, common_records(rows), "3 partitions")


def test_column_types_keep_leading_zeros(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("inn,n\n0012345678,1\n", encoding="utf-8")
    got = records_of(list(FileSource(tmp_path, "*.csv", column_types={"inn": pa.string()}).read()))
    assert got == [{"inn": "0012345678", "n": 1}]


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list(FileSource(tmp_path / "nope").read())
    with pytest.raises(ETLConfigError, match="unknown encoding"):
        FileSource(tmp_path, encoding="klingon")
    with pytest.raises(ETLConfigError, match="format"):
        FileSource(tmp_path, format="xlsx")  # type: ignore[arg-type]
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(ETLConfigError, match="cannot tell the format"):
        list(FileSource(tmp_path, "*.xyz").read())
    (tmp_path / "b.csv").write_text("id,n\n1,2\nabc,3\n")
    with pytest.raises(SourceError, match=r"b.csv") as info:
        list(FileSource(tmp_path, "b.csv", column_types={"id": pa.int64()}).read())
    assert "abc" not in str(info.value) and info.value.hint
    (tmp_path / "c.csv").write_bytes(b"")
    assert list(FileSource(tmp_path, "c.csv").read())[-1].position["files"]["c.csv"]["done"]
