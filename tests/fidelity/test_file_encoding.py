"""Finding 2 of issue 14: files decode strictly, with a declared or whole-file-verified
encoding; a line that does not decode is quarantined with its file and physical line, the
other rows land exactly, nothing becomes mojibake or base64."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_express import Pipeline, SourceError
from etl_express.sinks import PostgresSink
from etl_express.sources import FileSource
from tests.conftest import pg_exec

NAMES = ["Привет", "Ёлка", "Щука", "Zoë"]


def csv_lines(n: int) -> list[bytes]:
    return [f"{i},{NAMES[i % 4]} {i}\n".encode() for i in range(1, n + 1)]


def load(tmp_path: Path, pipeline_name: str, schema: str, glob: str, **options) -> object:
    source = FileSource(tmp_path, glob, primary_key="id", batch_size=5000, **options)
    pipeline = Pipeline(
        pipeline_name,
        source,
        sink=PostgresSink(f"{schema}.t"),
        max_error_rate=0.5,
        progress=False,
    )
    return pipeline.run()


def quarantined(pg_url: str, pipeline_name: str) -> list[tuple]:
    return pg_exec(
        pg_url,
        "SELECT record->>'source_file', (record->>'source_line')::int, reason "
        "FROM etl_express.quarantine WHERE pipeline = %s ORDER BY 2",
        [pipeline_name],
    )


@pytest.mark.parametrize("bad_at", [3, 55_000], ids=["in-the-first-64KB", "far-in"])
@pytest.mark.parametrize("declared", [None, "utf-8"])
def test_one_cp1251_line_in_a_utf8_csv_is_quarantined_the_rest_lands_exactly(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str, bad_at: int, declared
) -> None:
    lines = [b"id,name\n", *csv_lines(60_000)]
    lines.insert(bad_at, "777777,Иванов Пётр\n".encode("cp1251"))  # physical line bad_at + 1
    (tmp_path / "export.csv").write_bytes(b"".join(lines))
    result = load(tmp_path, pipeline_name, schema, "*.csv", encoding=declared)
    assert (result.rows_written, result.rows_quarantined) == (60_000, 1)
    ((file, line, reason),) = quarantined(pg_url, pipeline_name)
    assert (file, line) == ("export.csv", bad_at + 1)
    assert reason == f"export.csv: line {bad_at + 1}: does not decode as utf-8"
    expected = {i: f"{NAMES[i % 4]} {i}" for i in range(1, 60_001)}
    got = dict(pg_exec(pg_url, f"SELECT id, name FROM {schema}.t"))
    assert got == expected  # no mojibake, no base64


def test_a_cp1251_file_is_read_as_cp1251_after_checking_every_byte(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str
) -> None:
    text = "id;name\n" + "".join(f"{i};{NAMES[i % 3]} {i}\n" for i in range(1, 30_001))
    (tmp_path / "1c.csv").write_bytes(text.encode("cp1251"))
    result = load(tmp_path, pipeline_name, schema, "*.csv")
    assert (result.rows_written, result.rows_quarantined) == (30_000, 0)
    assert pg_exec(pg_url, f"SELECT name FROM {schema}.t WHERE id = 2") == [("Щука 2",)]


def test_physical_line_numbers_count_the_lines_of_multi_line_fields(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str
) -> None:
    text = (
        'id,name\n1,"три\nстроки\nтут"\n2,ok\n3,too,many\n4,"и\nещё"\n'.encode()
        + "5,Сидоров\n".encode("cp1251")
        + b"6,last\n"
    )
    (tmp_path / "m.csv").write_bytes(text)
    result = load(tmp_path, pipeline_name, schema, "*.csv")
    assert (result.rows_written, result.rows_quarantined) == (4, 2)
    assert [(f, n) for f, n, _ in quarantined(pg_url, pipeline_name)] == [
        ("m.csv", 6),
        ("m.csv", 9),
    ]
    got = dict(pg_exec(pg_url, f"SELECT id, name FROM {schema}.t"))
    assert got == {1: "три\nстроки\nтут", 2: "ok", 4: "и\nещё", 6: "last"}


def test_a_multi_line_record_with_an_undecodable_line_is_quarantined_whole(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str
) -> None:
    text = b'id,name\n1,"a\n' + "б\n".encode("cp1251") + 'в"\n2,Ёж\n'.encode()
    (tmp_path / "m.csv").write_bytes(text)
    result = load(tmp_path, pipeline_name, schema, "*.csv")
    assert (result.rows_written, result.rows_quarantined) == (1, 1)
    assert [(f, n) for f, n, _ in quarantined(pg_url, pipeline_name)] == [("m.csv", 3)]
    assert pg_exec(pg_url, f"SELECT id, name FROM {schema}.t") == [(2, "Ёж")]


def test_one_cp1251_line_in_utf8_jsonl(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str
) -> None:
    good = [f'{{"id": {i}, "name": "{NAMES[i % 4]}"}}\n'.encode() for i in range(1, 2001)]
    good.insert(1500, '{"id": 9999, "name": "Пётр"}\n'.encode("cp1251"))
    (tmp_path / "a.jsonl").write_bytes(b"".join(good))
    result = load(tmp_path, pipeline_name, schema, "*.jsonl")
    assert (result.rows_written, result.rows_quarantined) == (2000, 1)
    ((file, line, reason),) = quarantined(pg_url, pipeline_name)
    assert (file, line, reason) == ("a.jsonl", 1501, "a.jsonl: line 1501: does not decode as utf-8")
    got = dict(pg_exec(pg_url, f"SELECT id, name FROM {schema}.t"))
    assert got == {i: NAMES[i % 4] for i in range(1, 2001)}


def test_resume_mid_file_does_not_quarantine_an_undecodable_line_twice(tmp_path: Path) -> None:
    lines = [b"id,name\n", *csv_lines(20)]
    lines.insert(15, "99,Пётр\n".encode("cp1251"))
    (tmp_path / "a.csv").write_bytes(b"".join(lines))
    source = FileSource(tmp_path, "*.csv", batch_size=5)
    batches = list(source.read())
    assert [r.index for b in batches for r in b.rejected] == [16]
    for i in range(len(batches)):
        again = list(source.read(batches[i].position))
        seen = [r.index for b in batches[: i + 1] + again for r in b.rejected]
        assert seen == [16], i
        rows = sum(b.num_rows for b in batches[: i + 1] + again)
        assert rows == 20


def test_an_undecodable_header_stops_the_run_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_bytes("id,имя\n".encode("cp1251") + "1,Ёж\n2,Щука\n".encode())
    with pytest.raises(SourceError, match=r"h\.csv: the header"):
        list(FileSource(tmp_path, "*.csv").read())
