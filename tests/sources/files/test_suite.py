"""FileSource (CSV in cp1251 with ';', JSON Lines, Parquet) runs the standard suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_express.sources import FileSource, Source
from etl_express.testing import MakeSource, SourceTestSuite, common_records, nested_as_json_text

from .conftest import split, write_csv, write_jsonl, write_parquet


class _FileSuite(SourceTestSuite):
    suffix = ""

    def write(self, path: Path, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    @pytest.fixture
    def state_url(self, pg_url: str) -> str:
        return pg_url

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeSource:
        counter = iter(range(1000))

        def make(records: list[dict[str, Any]]) -> Source:
            folder = tmp_path / f"in{next(counter)}"
            folder.mkdir()
            for i, part in enumerate(split(records)):
                self.write(folder / f"part{i}{self.suffix}", part)
            return FileSource(folder, f"*{self.suffix}", batch_size=4, primary_key="id")

        return make


class TestCSVSuite(_FileSuite):
    suffix = ".csv"

    def write(self, path: Path, records: list[dict[str, Any]]) -> None:
        write_csv(path, records, encoding="cp1251", delimiter=";")

    def expected(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # CSV has no lists: write_csv stores their JSON text, which is what comes back
        return common_records(nested_as_json_text(records))

    @pytest.fixture
    def bad_source(self, tmp_path: Path) -> Source:
        write_csv(
            tmp_path / "bad.csv",
            [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            extra_lines={1: "7;x;y;z"},
        )
        return FileSource(tmp_path, "*.csv")


class TestJSONLSuite(_FileSuite):
    suffix = ".jsonl"

    def write(self, path: Path, records: list[dict[str, Any]]) -> None:
        write_jsonl(path, records)

    @pytest.fixture
    def bad_source(self, tmp_path: Path) -> Source:
        write_jsonl(tmp_path / "bad.jsonl", [{"id": 1}], extra_lines={0: '{"id": 2,'})
        return FileSource(tmp_path, "*.jsonl")


class TestParquetSuite(_FileSuite):
    suffix = ".parquet"

    def write(self, path: Path, records: list[dict[str, Any]]) -> None:
        write_parquet(path, records)

    @pytest.fixture
    def bad_source(self, tmp_path: Path) -> Source:
        (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
        return FileSource(tmp_path, "*.parquet")
