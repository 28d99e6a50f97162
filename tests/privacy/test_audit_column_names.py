"""Column names are written in clear everywhere — the target's DDL, run records, log lines,
every message that names a column — and no anonymizer covers a name. A CSV export without a
header row makes its first record the header; an API may key its records by e-mail. Such a
name is judged as the source spells it and the run stops before anything names it (the
detector's own refusal would quote it), with a message that gives only its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loguru import logger

import etl_express as etl
from etl_express.errors import AnonymizationError
from etl_express.sinks import PostgresSink
from etl_express.sources import FileSource

from ..conftest import pg_exec
from .canaries import PeopleSource

EMAIL = "leak.canary.7f3a@example.org"
NAME = "Смирнова Анна Петровна"
PHONE = "+7 916 432-17-88"
# as written and as the common format spells a column name
CANARIES = (EMAIL, "leak_canary_7f3a", NAME, "смирнова_анна", "432-17-88", "432_17_88")


def _clean(text: str) -> bool:
    return not any(c in text for c in CANARIES)


def _headerless(folder: Path) -> FileSource:
    (folder / "export.csv").write_text(
        f"1,{NAME},{EMAIL},{PHONE}\n2,Иванов Пётр Сергеевич,p.ivanov@example.org,+7 916 111-22-33\n"
    )
    return FileSource(folder, "*.csv")


def _keyed(_: Path) -> PeopleSource:
    rows: list[dict[str, Any]] = [{"id": 1, EMAIL: "gold"}, {"id": 2, "p.x@example.org": "gold"}]
    return PeopleSource(rows)


@pytest.mark.parametrize("source", [_headerless, _keyed], ids=["csv-without-header", "keyed"])
def test_a_column_named_by_personal_data_stops_the_run_unnamed(
    pg_url: str, schema: str, pipeline_name: str, tmp_path: Path, source: Any
) -> None:
    pipeline = etl.Pipeline(
        pipeline_name,
        source(tmp_path),
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        progress=False,
    )
    lines: list[str] = []
    logger.enable("etl_express")
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    try:
        with pytest.raises(AnonymizationError) as err:
            pipeline.run()
    finally:
        logger.remove(sink)
        logger.disable("etl_express")
    text = str(err.value)
    # the file's header is discovered before the run (snake_case: the e-mail's '@' is gone,
    # the name and the phone are still seen); the keyed records' names at their first batch
    assert "column name(s)" in text and "look like personal data" in text, text
    assert ("a person's name" if source is _headerless else "an e-mail address") in text
    assert pg_exec(pg_url, f"SELECT to_regclass('{schema}.target')") == [(None,)]
    stored = pg_exec(
        pg_url,
        "SELECT error FROM etl_express.runs WHERE pipeline = %s "
        "UNION ALL SELECT message FROM etl_express.logs WHERE pipeline = %s",
        [pipeline_name, pipeline_name],
    )
    assert _clean(text + str(stored) + "\n".join(lines)), text


def test_warn_loads_and_logs_without_the_name(
    pg_url: str, schema: str, pipeline_name: str, tmp_path: Path
) -> None:
    pipeline = etl.Pipeline(
        pipeline_name,
        _keyed(tmp_path),
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        detect_pii="warn",
        progress=False,
    )
    lines: list[str] = []
    logger.enable("etl_express")
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        pipeline.run()
    finally:
        logger.remove(sink)
        logger.disable("etl_express")
    warned = [line for line in lines if "column name(s)" in line]
    assert warned and "detect_pii='warn'" in warned[0], lines
    assert _clean("\n".join(warned))


def test_a_discovered_header_that_is_a_record_is_refused_before_any_message_lists_it(
    pg_url: str, schema: str, pipeline_name: str, tmp_path: Path
) -> None:
    """Configured names the file does not have: the error listing the file's columns would
    quote its first record; the discovered names are judged first (in the spellings their
    snake_case stands for)."""
    from etl_express.transformers import Select

    pipeline = etl.Pipeline(
        pipeline_name,
        _headerless(tmp_path),
        transformers=[Select(["id", "email"])],
        sink=PostgresSink(f"{schema}.target", url=pg_url),
        progress=False,
    )
    with pytest.raises(AnonymizationError) as err:
        pipeline.check_pii_coverage()
    text = str(err.value)
    assert "a person's name" in text and "a phone number" in text, text
    assert _clean(text), text
