"""A local HTTP server speaking 1C:Enterprise's standard OData JSON (v3)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from etl_express.sources.onec import EMPTY_DATE, EMPTY_REF
from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer

PREFIX = "/trade/odata/standard.odata/"
USER, PASSWORD = "Администратор", "pa55"
_GT = re.compile(r"(\w+) gt datetime'([^']+)'")
_EQ = re.compile(r"(\w+) eq (true|false)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


class FakeOneC:
    """Entity sets in memory, served like 1C's /odata/standard.odata publication."""

    def __init__(self) -> None:
        self.entities: dict[str, list[dict[str, Any]]] = {}
        self.url = ""
        self.server: LocalHTTPServer | None = None

    def __call__(self, req: HTTPRequest) -> HTTPResponse:
        auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if req.headers.get("authorization") != auth:
            return HTTPResponse(401, b"", {"WWW-Authenticate": 'Basic realm="1C"'})
        if not req.path.startswith(PREFIX):
            return HTTPResponse(404, b"not found", {"Content-Type": "text/plain"})
        entity = req.path[len(PREFIX) :]
        if entity not in self.entities:
            return HTTPResponse(
                400,
                {"odata.error": {"code": "14", "message": {"lang": "ru", "value": "Not found"}}},
            )
        if req.query.get("$format") != "json":  # 1C answers Atom XML by default
            return HTTPResponse(200, b"<feed/>", {"Content-Type": "application/atom+xml"})
        rows = list(self.entities[entity])
        expression = req.query.get("$filter", "")
        for field, value in _GT.findall(expression):
            rows = [r for r in rows if r[field] > value]
        for field, value in _EQ.findall(expression):
            rows = [r for r in rows if r[field] is (value == "true")]
        rest = (
            _EQ.sub("", _GT.sub("", expression))
            .replace("(", "")
            .replace(")", "")
            .replace("and", "")
            .strip()
        )
        if rest:
            return HTTPResponse(
                400, {"odata.error": {"code": "-1", "message": {"value": "bad $filter"}}}
            )
        order = req.query.get("$orderby", "")
        if order:
            rows.sort(key=lambda r: str(r.get(order, "")))
        skip, top = int(req.query.get("$skip", 0)), int(req.query.get("$top", 10**9))
        rows = rows[skip : skip + top]
        if "$select" in req.query:
            fields = req.query["$select"].split(",")
            rows = [{k: v for k, v in r.items() if k in fields} for r in rows]
        value = [
            {**r, "Контрагент@navigationLinkUrl": f"{entity}(guid'{r.get('Ref_Key')}')/Контрагент"}
            for r in rows
        ]
        return HTTPResponse(
            200, {"odata.metadata": f"{self.url}{PREFIX}$metadata#{entity}", "value": value}
        )


@pytest.fixture
def onec() -> Iterator[FakeOneC]:
    fake = FakeOneC()
    with LocalHTTPServer(fake) as server:
        fake.url, fake.server = server.url, server
        yield fake


def guid(i: int) -> str:
    return str(uuid.UUID(int=0x1C0000000000000000000000000000 + i))


def catalog(n: int) -> list[dict[str, Any]]:
    return [
        {
            "Ref_Key": guid(i),
            "DataVersion": "AAAAAQAAAAA=",
            "DeletionMark": i % 7 == 0,
            "Code": f"{i:09d}",
            "Description": f"ООО Ромашка {i}",
            "ИНН": f"77010{i:05d}",
            "Parent_Key": EMPTY_REF if i % 2 else guid(1),
            "IsFolder": False,
            "ДатаРегистрации": EMPTY_DATE
            if i % 3 == 0
            else f"2020-0{1 + i % 9}-1{i % 10}T00:00:00",
        }
        for i in range(1, n + 1)
    ]


def documents(
    n: int, start: dt.datetime = dt.datetime(2024, 1, 1, 9), first: int = 1
) -> list[dict[str, Any]]:
    return [
        {
            "Ref_Key": guid(1000 + i),
            "DeletionMark": False,
            "Number": f"ЗК-{i:06d}",
            "Date": (start + dt.timedelta(hours=7 * (i - first))).strftime("%Y-%m-%dT%H:%M:%S"),
            "Posted": i % 4 != 0,
            "Контрагент_Key": guid(i % 5 + 1),
            "СуммаДокумента": i * 100.5,
            "Комментарий": "" if i % 2 else f"срочно {i}",
            "ДатаОплаты": EMPTY_DATE,
            "Товары": [
                {
                    "LineNumber": "1",
                    "Номенклатура_Key": guid(500 + i),
                    "Количество": 2,
                    "Сумма": i * 50.25,
                }
            ],
        }
        for i in range(first, first + n)
    ]


def as_common(record: dict[str, Any], hours: int = 0) -> dict[str, Any]:
    """What the source should make of a 1C record (the test's own oracle)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if "@" in key:
            continue
        if value in (EMPTY_DATE, EMPTY_REF):
            value = None
        elif isinstance(value, str) and _DATE.match(value):
            value = (
                dt.datetime.fromisoformat(value) - dt.timedelta(hours=hours)
            ).isoformat() + "+00:00"
        elif isinstance(value, list):
            value = [as_common(v, hours) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out
