"""Connector audit: FileSource against real files as corporate systems export them."""

from __future__ import annotations

from pathlib import Path

from etl_express.sources import FileSource
from etl_express.sources.files import detect_encoding
from etl_express.testing import records_of


def _read(folder: Path, glob: str = "*", **options: object) -> tuple[list[dict], list[str]]:
    batches = list(FileSource(folder, glob, **options).read())  # type: ignore[arg-type]
    return records_of(batches), [r.reason for b in batches for r in b.rejected]


def test_utf16_without_bom_is_read_as_utf16_not_as_text_with_nul_bytes(tmp_path: Path) -> None:
    # "Unicode text" exports written without a BOM are valid UTF-8 (a NUL between letters)
    text = "id;имя\n1;Пётр\n2;Анна\n"
    (tmp_path / "le.csv").write_bytes(text.encode("utf-16-le"))
    rows, rejected = _read(tmp_path)
    assert rows == [{"id": 1, "имя": "Пётр"}, {"id": 2, "имя": "Анна"}] and rejected == []
    (tmp_path / "le.csv").unlink()
    (tmp_path / "be.csv").write_bytes(text.encode("utf-16-be"))
    rows, _ = _read(tmp_path)
    assert rows == [{"id": 1, "имя": "Пётр"}, {"id": 2, "имя": "Анна"}]
    assert detect_encoding(text.encode("utf-16-le")) == "utf-16-le"


def test_utf16_json_lines_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes('{"id": 1, "n": "Пётр"}\n{"id": 2}\n'.encode("utf-16"))
    rows, rejected = _read(tmp_path)
    assert rows == [{"id": 1, "n": "Пётр"}, {"id": 2, "n": None}] and rejected == []


def test_utf16_bad_line_after_a_quoted_newline_names_its_physical_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes('id;имя\n1;"Пё\nтр"\n2\n3;Анна\n'.encode("utf-16"))
    rows, rejected = _read(tmp_path)
    assert rows == [{"id": 1, "имя": "Пё\nтр"}, {"id": 3, "имя": "Анна"}]
    assert rejected == ["a.csv: line 4: expected 2 fields, found 1"]


def test_cp1251_file_with_a_line_that_happens_to_be_valid_utf8(tmp_path: Path) -> None:
    # "Пё" in cp1251 is CF B8: a valid two-byte UTF-8 sequence
    data = 'id;имя\n1;"Пё\nтр"\n2;Анна\n3;Пё\n'.encode("cp1251")
    (tmp_path / "a.csv").write_bytes(data)
    rows, rejected = _read(tmp_path)
    assert rows == [
        {"id": 1, "имя": "Пё\nтр"},
        {"id": 2, "имя": "Анна"},
        {"id": 3, "имя": "Пё"},
    ]
    assert rejected == [] and detect_encoding(data) == "cp1251"


def test_utf8_file_with_one_pasted_cp1251_line_stays_utf8(tmp_path: Path) -> None:
    lines = ["id;имя"] + [f"{i};Пётр {i}" for i in range(1, 5)]
    data = ("\n".join(lines) + "\n").encode() + "5;Анна\n".encode("cp1251")
    (tmp_path / "a.csv").write_bytes(data)
    rows, rejected = _read(tmp_path)
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert rejected == ["a.csv: line 6: does not decode as utf-8"]


def test_header_only_file_without_a_newline_has_no_rows(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes("id;имя".encode("cp1251"))
    (tmp_path / "b.csv").write_bytes(b"id,name\n1,x")
    rows, rejected = _read(tmp_path)
    assert rows == [{"id": 1, "name": "x"}] and rejected == []


def test_a_value_past_the_first_block_that_does_not_fit_the_inferred_type(
    tmp_path: Path,
) -> None:
    # Arrow infers types from the first 4 MiB: a later "77A1" in a numeric column, or text in
    # a column empty so far, failed the run after part of the file was loaded (every resume too)
    lines = ["id,code,note,amount"] + [f"{i},{i},,{i}" for i in range(400_000)]
    lines.append("400000,77A1,текст,1.5")
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = FileSource(tmp_path, "*.csv", batch_size=100_000)
    batches = list(source.read())
    assert {str(b.data.schema) for b in batches if b.data.num_rows} == {
        "id: int64\ncode: string\nnote: string\namount: double"
    }
    rows = [b for b in batches if b.data.num_rows]
    assert sum(b.data.num_rows for b in rows) == 400_001
    assert rows[0].data.slice(0, 1).to_pylist() == [
        {"id": 0, "code": "0", "note": None, "amount": 0.0}
    ]
    assert rows[-1].data.slice(rows[-1].data.num_rows - 1).to_pylist() == [
        {"id": 400_000, "code": "77A1", "note": "текст", "amount": 1.5}
    ]
    # resumed after the first batch: the same types, the rest of the rows
    again = [b for b in source.read(batches[0].position) if b.data.num_rows]
    assert sum(b.data.num_rows for b in again) == 300_001
    assert {str(b.data.schema) for b in again} == {str(rows[0].data.schema)}


def test_a_header_naming_one_column_twice_is_refused_naming_file_and_column(
    tmp_path: Path,
) -> None:
    # two "сумма" columns in an export: one value per row was silently dropped
    import pytest

    from etl_express.errors import SourceError

    (tmp_path / "a.csv").write_bytes("id;сумма;сумма\n1;10;20\n".encode("cp1251"))
    with pytest.raises(SourceError, match=r"a\.csv: the header names the column 'сумма' twice"):
        _read(tmp_path)


def test_one_name_twice_in_an_arrow_batch_is_a_collision_not_a_merge() -> None:
    import pyarrow as pa
    import pytest

    from etl_express.format import ColumnCollisionError, canonicalize

    batch = pa.RecordBatch.from_arrays([pa.array([1]), pa.array([2])], names=["id", "id"])
    with pytest.raises(ColumnCollisionError, match="source column 'id' appears twice"):
        canonicalize(batch, source="orders")


def test_twenty_digit_account_numbers_stay_exact(tmp_path: Path) -> None:
    # beyond int64 Arrow infers a double: 40702810900000012345 loaded as 4.0702810900000014e+19
    (tmp_path / "a.csv").write_bytes(
        "id;счёт;сумма\n1;40702810900000012345;1.5\n2;40702810900000012346;2\n".encode("cp1251")
    )
    rows, _ = _read(tmp_path)
    assert rows == [
        {"id": 1, "счёт": "40702810900000012345", "сумма": 1.5},
        {"id": 2, "счёт": "40702810900000012346", "сумма": 2.0},
    ]


def test_a_twenty_digit_number_past_the_first_block_is_text_not_a_double(
    tmp_path: Path,
) -> None:
    lines = ["id,account"] + [f"{i},{i}" for i in range(500_000)]
    lines.append("500000,40702810900000012345")
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    batches = [b for b in FileSource(tmp_path, "*.csv").read() if b.data.num_rows]
    last = batches[-1].data
    assert last.schema.field("account").type == "string"
    assert last.slice(last.num_rows - 1).to_pylist() == [
        {"id": 500_000, "account": "40702810900000012345"}
    ]


def test_a_json_file_holding_one_array_is_read_element_by_element(tmp_path: Path) -> None:
    # most systems export ".json" as one (pretty-printed) array: every line was rejected
    import json

    rows = [{"id": i, "имя": f"Пётр {i}"} for i in range(1, 6)]
    (tmp_path / "a.json").write_text(json.dumps([*rows, 7], ensure_ascii=False, indent=2))
    source = FileSource(tmp_path, "*.json", batch_size=2)
    batches = list(source.read())
    assert records_of(batches) == rows
    assert [r.reason for b in batches for r in b.rejected] == [
        "a.json: element 6: a JSON int, not an object"
    ]
    again = list(source.read(batches[0].position))  # resumed after the first two
    assert records_of(again) == rows[2:]


def test_gzip_files_are_read_by_their_inner_format(tmp_path: Path) -> None:
    # format="csv" on a .csv.gz read the compressed bytes: no rows, no error
    import gzip

    (tmp_path / "a.csv.gz").write_bytes(gzip.compress("id;имя\n1;Пётр\n2\n".encode("cp1251")))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress('{"id": 3, "имя": "Анна"}\n'.encode()))
    rows, rejected = _read(tmp_path, "*.gz")
    assert rows == [{"id": 1, "имя": "Пётр"}, {"id": 3, "имя": "Анна"}]
    assert rejected == ["a.csv.gz: line 3: expected 2 fields, found 1"]
    (tmp_path / "b.jsonl.gz").unlink()
    rows, _ = _read(tmp_path, "*.gz", format="csv")
    assert rows == [{"id": 1, "имя": "Пётр"}]


def test_a_truncated_gzip_file_is_a_clear_error(tmp_path: Path) -> None:
    import gzip

    import pytest

    from etl_express.errors import SourceError

    data = gzip.compress(b"id\n" + b"1\n" * 10_000)
    (tmp_path / "a.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"a\.csv\.gz is not a readable gzip file"):
        _read(tmp_path)


def test_a_comma_inside_a_quoted_column_name_does_not_decide_the_delimiter(
    tmp_path: Path,
) -> None:
    # "Фамилия, имя";Сумма: one comma, one semicolon, and a tie went to the comma — the
    # file loaded as one column 'фамилия_имя_сумма' holding "Иванов, Пётр;100", no error
    (tmp_path / "a.csv").write_bytes(
        '"Фамилия, имя";Сумма\n"Иванов, Пётр";100\n"Сидоров, Иван";200\n'.encode("cp1251")
    )
    rows, rejected = _read(tmp_path)
    assert rows == [
        {"фамилия_имя": "Иванов, Пётр", "сумма": 100},
        {"фамилия_имя": "Сидоров, Иван", "сумма": 200},
    ]
    assert rejected == []
    schema = FileSource(tmp_path, "*.csv").discover_schema()
    assert schema is not None and schema.names == ["фамилия_имя", "сумма"]
