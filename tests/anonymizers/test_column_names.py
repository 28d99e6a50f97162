"""Configured column names: any spelling resolves to the common format's name, a name the data
lacks is refused before anything is written (sink, quarantine, checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import etl_express as etl
from etl_express.anonymizers import (
    Generalize,
    KAnonymity,
    Mask,
    Pseudonymize,
    Redact,
    ScrubPII,
    Suppress,
)
from etl_express.anonymizers.base import Anonymizer
from etl_express.errors import ETLConfigError
from etl_express.format import normalize_name
from etl_express.sinks.postgres import PostgresSink
from etl_express.sources.files import FileSource
from etl_express.sources.sql import SQLSource
from etl_express.transformers import Rename

from ..conftest import pg_exec, state_rows
from .sources import ListSource

RAW = {
    "Email": "ivan.petrov@example.com",
    "Mobile Phone": "+7 916 123-45-67",
    "ClientEmail": "olga.sidorova@example.org",
    "Телефон Клиента": "+7 903 765-43-21",
}
CANONICAL = {
    "Email": "email",
    "Mobile Phone": "mobile_phone",
    "ClientEmail": "client_email",
    "Телефон Клиента": "телефон_клиента",
}
SPELLINGS = {  # other ways a user writes the same column
    "Email": ["Email", "EMAIL"],
    "Mobile Phone": ["Mobile Phone", "MobilePhone"],
    "ClientEmail": ["ClientEmail", "Client Email"],
    "Телефон Клиента": ["Телефон Клиента", "ТЕЛЕФОН КЛИЕНТА"],
}
TYPOS = {
    "Email": ("emial", "email"),
    "Mobile Phone": ("Mobile Phon", "mobile_phone"),
    "ClientEmail": ("ClientEmial", "client_email"),
    "Телефон Клиента": ("Телефон Клинта", "телефон_клиента"),
}


def _key(monkeypatch: pytest.MonkeyPatch) -> etl.SecretRef:
    import secrets

    monkeypatch.setenv("ETL_EXPRESS_COLNAMES_KEY", secrets.token_urlsafe(48))
    return etl.secret("COLNAMES_KEY")


ANONYMIZERS: dict[str, Callable[[str, etl.SecretRef], Anonymizer]] = {
    "Pseudonymize": lambda c, k: Pseudonymize([c], key=k),
    "Redact": lambda c, k: Redact([c]),
    "Mask": lambda c, k: Mask([c]),
    "Generalize": lambda c, k: Generalize([c], to="region"),
    "Suppress": lambda c, k: Suppress([c]),
    "ScrubPII": lambda c, k: ScrubPII([c]),
    "KAnonymity": lambda c, k: KAnonymity([c], k=2, on_violation="suppress"),
    "SuppressRows": lambda c, k: Suppress(quasi_identifiers=[c], k=2),
}


def _rows() -> list[dict[str, object]]:
    return [{"id": i, **{k: v.replace("1", str(i % 10)) for k, v in RAW.items()}} for i in range(6)]


def _source_table(pg_url: str, schema: str) -> str:
    cols = ", ".join(f'"{c}" text' for c in RAW)
    pg_exec(pg_url, f"CREATE TABLE {schema}.people (id int PRIMARY KEY, {cols})")
    for row in _rows():
        names = ", ".join(f'"{c}"' for c in row)
        pg_exec(
            pg_url,
            f"INSERT INTO {schema}.people ({names}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )
    return f"{schema}.people"


def _nothing_written(pg_url: str, schema: str, pipeline: str) -> None:
    assert pg_exec(pg_url, f"SELECT to_regclass('{schema}.target')")[0][0] is None
    for table in ("quarantine", "checkpoints"):
        assert state_rows(pg_url, table, pipeline) == 0, table


@pytest.mark.parametrize("kind", list(ANONYMIZERS))
@pytest.mark.parametrize("column", list(RAW))
def test_every_spelling_anonymizes(
    kind: str,
    column: str,
    pg_url: str,
    schema: str,
    pipeline_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = _source_table(pg_url, schema)
    key = _key(monkeypatch)
    values = [row[column] for row in _rows()]
    if kind in ("KAnonymity", "SuppressRows"):  # what is shared by k=2 rows may land
        raw_values = {v for v in values if values.count(v) < 2}
    else:
        raw_values = set(values)
    for n, spelling in enumerate(SPELLINGS[column]):
        name = f"{pipeline_name}_{n}"
        pipeline = etl.Pipeline(
            name,
            SQLSource(pg_url, table=table, primary_key="id"),
            anonymizers=[ANONYMIZERS[kind](spelling, key)],
            # ScrubPII covers free text only: named by it, a column is personal free text
            pii=[] if kind in ("KAnonymity", "SuppressRows", "ScrubPII") else [spelling],
            sink=PostgresSink(table=f"{schema}.target"),
            detect_pii="off",  # the table's other personal columns land raw on purpose here
        )
        result = pipeline.run()
        assert result.status == "succeeded"
        target = CANONICAL[column]
        cols = [
            r[0]
            for r in pg_exec(
                pg_url,
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'target'",
                [schema],
            )
        ]
        if target in cols:
            landed = {r[0] for r in pg_exec(pg_url, f'SELECT "{target}" FROM {schema}.target')}
            assert not (landed & raw_values), (kind, spelling)
        pg_exec(pg_url, f"DROP TABLE IF EXISTS {schema}.target")


@pytest.mark.parametrize("kind", list(ANONYMIZERS))
@pytest.mark.parametrize("column", list(RAW))
def test_typo_refused_before_anything_is_written(
    kind: str,
    column: str,
    pg_url: str,
    schema: str,
    pipeline_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = _key(monkeypatch)
    typo, nearest = TYPOS[column]
    table = _source_table(pg_url, schema)
    sources = {
        "sql": SQLSource(pg_url, table=table, primary_key="id"),  # checked up front
        "dicts": ListSource(_rows(), batch_size=2),  # checked on the first batch
    }
    for label, source in sources.items():
        name = f"{pipeline_name}_{label}"
        pipeline = etl.Pipeline(
            name,
            source,
            anonymizers=[ANONYMIZERS[kind](typo, key)],
            sink=PostgresSink(table=f"{schema}.target"),
        )
        with pytest.raises(ETLConfigError) as err:
            pipeline.run()
        text = str(err.value)
        assert repr(normalize_name(typo)) in text
        assert repr(nearest) in text, text
        assert "nothing was written" in text
        assert not any(v in text for v in RAW.values())
        _nothing_written(pg_url, schema, name)


def test_quarantine_stays_empty_when_refused(pg_url: str, schema: str, pipeline_name: str) -> None:
    """A batch with a record that fails conversion: the typo is still refused first, so the
    record never reaches quarantine."""
    rows = _rows()
    rows[1]["id"] = "not a number"
    import pyarrow as pa

    source = ListSource(rows, schema=pa.schema([("id", pa.int64())]), batch_size=10)
    pipeline = etl.Pipeline(
        pipeline_name,
        source,
        anonymizers=[ScrubPII(["Commentt"])],
        sink=PostgresSink(table=f"{schema}.target"),
    )
    with pytest.raises(ETLConfigError, match="'commentt'"):
        pipeline.run()
    _nothing_written(pg_url, schema, pipeline_name)


def test_pii_tag_and_anonymizer_in_different_spellings(
    pg_url: str, schema: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _source_table(pg_url, schema)
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=table, primary_key="id", pii=["Mobile Phone", "ClientEmail"]),
        anonymizers=[
            Pseudonymize(["mobile_phone", "Client Email"], key=_key(monkeypatch)),
            Redact(["EMAIL", "Телефон Клиента"]),
        ],
        pii=["Email"],
        sink=PostgresSink(table=f"{schema}.target"),
    )
    assert pipeline.run().status == "succeeded"
    dump = str(pg_exec(pg_url, f"SELECT * FROM {schema}.target"))
    for i, row in enumerate(_rows()):
        for value in RAW:
            assert row[value] not in dump, (i, value)


def test_columns_after_transformers(
    pg_url: str, schema: str, pipeline_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _source_table(pg_url, schema)
    key = _key(monkeypatch)

    def pipeline(name: str, column: str) -> etl.Pipeline:
        return etl.Pipeline(
            name,
            SQLSource(pg_url, table=table, primary_key="id"),
            transformers=[Rename({"Mobile Phone": "contact"})],
            anonymizers=[Pseudonymize([column], key=key)],
            sink=PostgresSink(table=f"{schema}.target"),
            detect_pii="off",  # the table's other personal columns land raw on purpose here
        )

    with pytest.raises(ETLConfigError, match="'mobile_phone'"):
        pipeline(pipeline_name + "_old", "Mobile Phone").run()
    _nothing_written(pg_url, schema, pipeline_name + "_old")
    assert pipeline(pipeline_name, "Contact").run().status == "succeeded"


def test_suppressed_column_named_again_is_refused(
    pg_url: str, schema: str, pipeline_name: str
) -> None:
    table = _source_table(pg_url, schema)
    pipeline = etl.Pipeline(
        pipeline_name,
        SQLSource(pg_url, table=table, primary_key="id"),
        anonymizers=[Suppress(["Email"]), Redact(["email"])],
        sink=PostgresSink(table=f"{schema}.target"),
    )
    with pytest.raises(ETLConfigError, match="Redact"):
        pipeline.run()
    _nothing_written(pg_url, schema, pipeline_name)


def test_file_headers_checked_up_front(
    tmp_path: Path, pg_url: str, schema: str, pipeline_name: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "id;Электронная Почта;Комментарий\n1;a@b.ru;позвонить +7 916 123-45-67\n", encoding="utf-8"
    )
    source = FileSource(folder, primary_key="id")
    assert source.discover_schema().names == ["id", "электронная_почта", "комментарий"]
    bad = etl.Pipeline(
        pipeline_name,
        source,
        anonymizers=[ScrubPII(["Коментарий"])],
        sink=PostgresSink(table=f"{schema}.target"),
    )
    with pytest.raises(ETLConfigError, match="'комментарий'"):
        bad.check_pii_coverage()  # before reading: from the header alone
    good = etl.Pipeline(
        pipeline_name,
        source,
        anonymizers=[ScrubPII(["Комментарий", "Электронная Почта"])],
        sink=PostgresSink(table=f"{schema}.target"),
    )
    assert good.run().status == "succeeded"
    dump = str(pg_exec(pg_url, f"SELECT * FROM {schema}.target"))
    assert "a@b.ru" not in dump and "123-45-67" not in dump


def test_unknown_entities_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ETLConfigError, match="entities"):
        Pseudonymize(["email"], key=_key(monkeypatch), entities={"emial": "email"})


def test_1c_select_checked_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """With select=, a 1C source knows its fields before any request: a typo fails at once."""
    from etl_express.sources.onec import OneCODataSource

    source = OneCODataSource(
        "http://127.0.0.1:9/trade",  # nothing listens: no request may be made
        "Catalog_Контрагенты",
        username="reader",
        password=etl.secret("ONEC_UNUSED_PASSWORD"),
        select=["Ref_Key", "Description", "ИНН", "ЭлектроннаяПочта"],
    )
    assert source.discover_schema().names == ["ref_key", "description", "инн", "электронная_почта"]

    def pipeline(column: str) -> etl.Pipeline:
        return etl.Pipeline(
            "onec_names", source, anonymizers=[Pseudonymize([column], key=_key(monkeypatch))]
        )

    with pytest.raises(ETLConfigError, match="'электронная_почта'"):
        pipeline("ЭлектроннаяПочтта").check_pii_coverage()
    pipeline("Электронная Почта").check_pii_coverage()
