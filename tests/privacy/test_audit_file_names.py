"""A file source keys its position by file name, and files get named after people
(``exports/Смирнова Анна Петровна.csv``, ``leak.canary@example.org.csv``): the name is judged
with the position — keys of its state included, each folder and the name without its suffix —
and such a file stops the run before anything (rows, checkpoint, quarantine) is written."""

from __future__ import annotations

from pathlib import Path

import pytest

import etl_express as etl
from etl_express.errors import ETLConfigError
from etl_express.sinks import PostgresSink
from etl_express.sources import FileSource

from ..conftest import pg_exec


@pytest.mark.parametrize(
    "name, kind",
    [
        ("leak.canary.7f3a@example.org.csv", "an e-mail address"),
        ("clients/Смирнова Анна Петровна.csv", "a person's name"),
        ("Smith John/contracts.csv", "a person's name"),
    ],
)
def test_a_file_named_after_a_person_is_refused_before_any_write(
    pg_url: str, schema: str, pipeline_name: str, tmp_path: Path, name: str, kind: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "plain.csv").write_text("id,city\n1,Тверь\n")
    path.write_text("id,city\n2,Tver\n3,Tver,extra\n")  # line 3 is rejected: quarantine
    pipeline = etl.Pipeline(
        pipeline_name,
        FileSource(tmp_path, "**/*.csv", primary_key="id"),
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        max_error_rate=1.0,
        progress=False,
    )
    with pytest.raises(ETLConfigError) as err:
        pipeline.run()
    text = str(err.value)
    assert kind in text and "file's name" in text, text
    stem = Path(name).stem if "@" in name else name.split(" ")[0].split("/")[-1]
    for table in ("checkpoints", "quarantine", "runs", "logs"):
        stored = pg_exec(
            pg_url,
            f"SELECT t::text FROM etl_express.{table} t WHERE pipeline = %s",
            [pipeline_name],
        )
        assert not any(stem in str(row) or "Смирнова" in str(row) for row in stored), table
    assert stem not in text
