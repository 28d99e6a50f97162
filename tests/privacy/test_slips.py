"""Every slip of issue 22 ("What was found"), replayed as a demanding user would configure it.

One source table of canaries in PostgreSQL (``source_system.people``, shared by every case)
feeds pipelines that each try one way around the privacy boundary: a transformer kind that
copies or derives personal data, a record rejected at each point (the source, ``Cast``,
``Derive``, the target), a position kind over personal data (primary key, cursor, partition
column, a REST keyset token, a column that appears on page 2), an error text quoting a value.
Each case must either anonymize or be refused before anything is written, with a message
naming the column, its origin and the fix. Then every boundary is searched for the canaries:
a pg_dump of the target and the state schema, the log files, the exception texts, the CLI
(``runs``, ``status --json``, ``quarantine list --json``, ``logs show``), the dashboard's
pages, the export files with their names and manifests, and Airflow XCom values.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from loguru import logger

import etl_express as etl
from etl_express import Transformer
from etl_express.anonymizers import Generalize, Mask, Pseudonymize, Redact, ScrubPII
from etl_express.anonymizers.detectors import snils_check
from etl_express.errors import ETLError
from etl_express.sinks import JSONLSink, PostgresSink
from etl_express.sources import SQLSource
from etl_express.sources.rest import (
    JSONCursorPaginator,
    JSONLinkPaginator,
    PageNumberPaginator,
    RESTSource,
)
from etl_express.testing.http import HTTPRequest, HTTPResponse, LocalHTTPServer
from etl_express.transformers import Cast, Derive, Filter, Rename, Select

from ..conftest import pg_exec
from .canaries import as_text, dump_database, files_text, leaked, person

SOURCE = "source_system"  # the source system's schema: not searched
N = 10
INFINITE = 2  # birth_date 'infinity': the source rejects it
BAD_BORN = 3  # born '….13-45': Cast(born: date) quarantines it after Rename and Select
ZERO = 4  # amount 0: Derive(100 / amount) quarantines it
HUGE = 5  # amount past a billion: the target's CHECK constraint refuses it
TAGS = ["full_name", "email", "phone", "passport", "snils", "birth_date", "born"]
PEOPLE_COLUMNS = ["id", *TAGS, "city"]


def _snils(i: int, tag: str) -> str:
    body = f"{int(tag[:6], 16) % 1_000_000:06d}{i % 900 + 100:03d}"
    body = str(max(int(body), 1_002_000)).zfill(9)
    return f"{body[:3]}-{body[3:6]}-{body[6:9]} {snils_check(body)}"


def _people() -> list[dict[str, Any]]:
    out = []
    for i in range(1, N + 1):
        p = person(i)
        tag = uuid.uuid4().hex
        p["snils"] = _snils(i, tag)
        p["born"] = p["birth_date"]
        p["amount"] = i * 10
        n = int(tag[:4], 16) % 9000 + 1000
        p["memo"] = (  # foreign phones, Unicode separators and dashes (ScrubPII's slips)
            f"звонить +1 (415) 555-{n:04d}, +44 20 7946 {n:04d} или +49 30 90{n:04d}; "
            f"СНИЛС {p['snils'].replace('-', chr(0x2011)).replace(' ', chr(0xA0))}; "
            f"тел.{chr(0x2009)}{p['phone'].replace(' ', chr(0x2009)).replace('-', chr(0x2013))}"
        )
        out.append(p)
    out[BAD_BORN - 1]["born"] = out[BAD_BORN - 1]["born"][:5] + "13-45"
    out[ZERO - 1]["amount"] = 0
    out[HUGE - 1]["amount"] = 9_000_000_000
    return out


def planted(people: list[dict[str, Any]]) -> set[str]:
    """Every raw personal value and the spellings a leak could take."""
    out: set[str] = set()
    for p in people:
        for column in TAGS:
            value = str(p[column])
            out |= {value, value.lower(), value.split("@")[0]}
            if column in ("phone", "passport", "snils"):
                out.add("".join(c for c in value if c.isdigit()))
        out.add(str(p["full_name"]).split()[0])
        for phone in re.findall(r"\+\d[\d ()\-]{8,}\d", p["memo"]):
            out |= {phone, "".join(c for c in phone if c.isdigit())}
    return {c for c in out if len(c) >= 6}


class Opaque(Transformer):
    """A third-party step that says nothing about its lineage (it copies the e-mail)."""

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.append_column("login", batch.column("email"))


# -- the cases ----------------------------------------------------------------------------


@dataclass
class Case:
    """A pipeline to try and what it must come to."""

    build: Callable[[World, str], etl.Pipeline]
    refused: tuple[str, ...] = ()  # texts the refusal must hold (column, origin, fix)
    run: Callable[[etl.Pipeline], Any] = lambda p: p.run()


@dataclass
class Outcome:
    name: str
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    url: str
    key: etl.SecretRef
    home: Path
    people: list[dict[str, Any]]
    server: str = ""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    xcoms: list[Any] = field(default_factory=list)

    def sql(self, **kw: Any) -> SQLSource:
        kw.setdefault("primary_key", "id")
        kw.setdefault("table", f"{SOURCE}.people")
        kw.setdefault("batch_size", 4)
        if kw["table"] == f"{SOURCE}.people":  # the free-text memo only where a case wants it
            kw.setdefault("columns", [*PEOPLE_COLUMNS, "amount", "notes"])
        return SQLSource(self.url, **kw)

    def rest(self, path: str, **kw: Any) -> RESTSource:
        """A source on this world's HTTP server: the records under ``items``, keyed by ``id``."""
        return RESTSource(self.server, path, records_path="items", primary_key="id", **kw)

    def pipeline(self, name: str, source: Any = None, **kw: Any) -> etl.Pipeline:
        kw.setdefault("sink", PostgresSink(f"public.{name}", url=self.url))
        kw.setdefault("pii", TAGS if source is None else ())
        return etl.Pipeline(
            name,
            source or self.sql(),
            max_error_rate=1.0,
            progress=False,
            **kw,
        )

    def anonymizers(self, *, name: str = "full_name", mail: str = "email") -> list[Any]:
        return [
            Pseudonymize([name, mail, "phone"], key=self.key),
            Mask(["passport", "snils"], keep_last=2),
            Generalize(["birth_date"], to="year"),
            Redact(["born"]),
        ]


RENAMED = [Rename({"email": "mail", "full_name": "name"})]
MINIMIZED = [*RENAMED, Select(["id", "name", "mail", "phone", "birth_date", "born", "amount"])]


def _full(w: World, name: str, sink: Any = None, extra: list[Any] | None = None) -> etl.Pipeline:
    """Rename, Select (data minimisation), Cast and Derive: a record rejected at each."""
    steps = [
        *MINIMIZED,
        Cast({"born": "date"}, on_error="quarantine"),
        Derive(
            "per_unit",
            lambda b: pc.divide_checked(pa.scalar(100, pa.int64()), b["amount"]),
            on_error="quarantine",
        ),
        *(extra or []),
    ]
    anonymizers = [
        Pseudonymize(["name", "mail", "phone"], key=w.key),
        Generalize(["birth_date", "born"], to="year"),
    ]
    kw: dict[str, Any] = {"transformers": steps, "anonymizers": anonymizers}
    if sink is not None:
        kw["sink"] = sink
    return w.pipeline(name, **kw)


def _lower(b: Any) -> Any:
    return pc.utf8_lower(b["email"])


def _domain(b: Any) -> Any:
    return pc.list_element(pc.split_pattern(b["email"], "@"), 1)


def _contact(b: Any) -> Any:
    return pc.binary_join_element_wise(b["full_name"], b["phone"], " ")


CASES: dict[str, Case] = {
    # transformer kinds
    "rename-select-cast-derive": Case(_full),
    "cast-tagged": Case(
        lambda w, n: w.pipeline(
            n, transformers=[Cast({"phone": "string"})], anonymizers=w.anonymizers()
        )
    ),
    "filter": Case(
        lambda w, n: w.pipeline(
            n, transformers=[Filter(pc.field("id") != 6)], anonymizers=w.anonymizers()
        )
    ),
    "filter-failing-on-a-value": Case(
        lambda w, n: w.pipeline(
            n,
            transformers=[Filter(pc.field("phone").cast(pa.int64()) > 0)],
            anonymizers=w.anonymizers(),
        ),
        refused=("Filter failed", "ArrowInvalid"),
    ),
    "derive-lower": Case(
        lambda w, n: w.pipeline(
            n, transformers=[Derive("email_lc", _lower)], anonymizers=w.anonymizers()
        ),
        refused=("'email_lc'", "'email'", "Derive('email_lc')", "not_pii="),
    ),
    "derive-split-part": Case(
        lambda w, n: w.pipeline(
            n, transformers=[Derive("domain", _domain)], anonymizers=w.anonymizers()
        ),
        refused=("'domain'", "'email'", "Pseudonymize(", "not_pii="),
    ),
    "derive-split-part-declared": Case(
        lambda w, n: w.pipeline(
            n,
            transformers=[Derive("domain", _domain)],
            anonymizers=w.anonymizers(),
            not_pii={"domain": "the e-mail's domain only"},
        )
    ),
    "derive-concat": Case(
        lambda w, n: w.pipeline(
            n,
            transformers=[*RENAMED, Derive("contact", _contact_renamed)],
            anonymizers=w.anonymizers(name="name", mail="mail"),
        ),
        refused=("'contact'", "'name'", "(with 'phone' (tagged pii=))", "Pseudonymize("),
    ),
    "third-party-without-lineage": Case(
        lambda w, n: w.pipeline(n, transformers=[Opaque()], anonymizers=w.anonymizers()),
        refused=("'login'", "Opaque", "declare the lineage", "Transformer.lineage"),
    ),
    "scrubpii-for-tagged-columns": Case(
        lambda w, n: w.pipeline(
            n,
            transformers=[Select(["id", "full_name", "passport", "city"])],
            anonymizers=[ScrubPII(["full_name", "passport"])],
        ),
        refused=("'full_name'", "'passport'", "free text only", "Pseudonymize("),
    ),
    "scrubpii-free-text-unicode-and-foreign-phones": Case(
        lambda w, n: w.pipeline(n, w.sql(columns=["id", "memo"]), anonymizers=[ScrubPII(["memo"])])
    ),
    # positions
    "primary-key-email": Case(
        lambda w, n: w.pipeline(n, w.sql(primary_key="email"), anonymizers=w.anonymizers()),
        refused=("primary key column 'email'", "surrogate"),
    ),
    "cursor-email": Case(
        lambda w, n: w.pipeline(n, w.sql(cursor="email", pii=TAGS), anonymizers=w.anonymizers()),
        refused=("cursor column 'email'", "surrogate"),
    ),
    "partition-column-tagged": Case(
        lambda w, n: w.pipeline(n, anonymizers=w.anonymizers()),
        refused=("partition column 'email'", "surrogate"),
        run=lambda p: p.run(partition={"column": "email", "lo": "a", "hi": "z"}),
    ),
    "partition-column-untagged": Case(
        lambda w, n: w.pipeline(
            n,
            w.sql(table=f"{SOURCE}.logins"),
        ),
        refused=("partition", "'login'", "e-mail", "surrogate"),
        run=lambda p: p.run(partitions=p.source.partitions(2, column="login"), workers=1),
    ),
    "rest-keyset-token-phone": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("keyset", paginator=JSONCursorPaginator()),
        ),
        refused=("position", "phone", "surrogate"),
    ),
    "rest-base64-token-email": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("encoded", paginator=JSONCursorPaginator()),
        ),
        refused=("position", "e-mail address", "surrogate"),
    ),
    "rest-next-url-email": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("linked", paginator=JSONLinkPaginator()),
        ),
        refused=("position", "e-mail address", "surrogate"),
    ),
    "rest-new-column-page-2": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("renamed", paginator=PageNumberPaginator(), pii=["email", "phone"]),
            anonymizers=[Pseudonymize(["email", "phone"], key=w.key)],
        ),
        refused=("'mobile'", "phone", "not_pii="),
    ),
    "rest-new-column-page-2-one-record": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("renamed-one", paginator=PageNumberPaginator(), pii=["email", "phone"]),
            anonymizers=[Pseudonymize(["email", "phone"], key=w.key)],
        ),
        refused=("'mobile'", "phone", "not_pii="),
    ),
    "rest-json-key-page-2": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("payload", paginator=PageNumberPaginator()),
        ),
        refused=("'payload.contact.phone'", "a phone number", "not_pii="),
    ),
    "untagged-column-of-two-rows": Case(
        lambda w, n: w.pipeline(
            n,
            w.sql(
                table=None,
                query=f"SELECT id, phone AS contact FROM {SOURCE}.people WHERE id IN (1, 6)",
            ),
        ),
        refused=("'contact'", "a phone number", "not_pii="),
    ),
    "rest-partition-by-email": Case(
        lambda w, n: w.pipeline(
            n,
            w.rest("users/{user}", partitions=[{"user": p["email"]} for p in w.people[:2]]),
        ),
        refused=("partition spec", "e-mail address", "surrogate"),
        run=lambda p: p.run(workers=2),
    ),
    "derive-reading-the-whole-batch": Case(
        lambda w, n: w.pipeline(
            n,
            transformers=[Derive("row_text", _whole)],
            anonymizers=w.anonymizers(),
        ),
        refused=("['row_text']", "Derive('row_text') (with", "Pseudonymize("),
    ),
    # error texts quoting a value in the middle
    "pg-error-out-of-range": Case(
        lambda w, n: w.pipeline(
            n,
            w.sql(
                table=None,
                query=f"SELECT id, regexp_replace(phone, '\\D', '', 'g')::integer AS "
                f"phone FROM {SOURCE}.people",
            ),
            anonymizers=[Mask(["phone"], keep_last=2)],
        ),
        refused=("out of range for type integer", "<value>"),
    ),
    "pg-error-invalid-value": Case(
        lambda w, n: w.pipeline(
            n,
            w.sql(
                table=None,
                query=f"SELECT id, to_date('x' || snils, 'DD') AS snils FROM {SOURCE}.people",
            ),
            anonymizers=[Mask(["snils"], keep_last=2)],
        ),
        refused=("invalid value", "<value>"),
    ),
}


def _whole(b: Any) -> Any:
    """Reads the batch as a whole: its lineage cannot be traced (every input column)."""
    return pa.array([str(r) for r in b.to_pylist()], pa.string())


def _contact_renamed(b: Any) -> Any:
    return pc.binary_join_element_wise(b["name"], b["phone"], " ")


def _api(people: list[dict[str, Any]]) -> Callable[[HTTPRequest], HTTPResponse]:
    def handle(request: HTTPRequest) -> HTTPResponse:
        if request.path.endswith("/keyset"):  # pages ordered by phone; the token is the phone
            after = request.query.get("cursor")
            ordered = sorted(people, key=lambda p: p["phone"])
            rest = [p for p in ordered if after is None or p["phone"] > after]
            page = [{"id": p["id"], "city": p["city"]} for p in rest[:3]]
            token = rest[2]["phone"] if len(rest) > 3 else None
            return HTTPResponse(200, {"items": page, "next_cursor": token})
        if request.path.endswith(("/encoded", "/linked")):  # keyset on e-mail, the token hides it
            after = request.query.get("cursor") or request.query.get("after")
            if after and request.path.endswith("/encoded"):
                after = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))["a"]
            ordered = sorted(people, key=lambda p: p["email"])
            rest = [p for p in ordered if after is None or p["email"] > after]
            page = [{"id": p["id"], "city": p["city"]} for p in rest[:3]]
            last = rest[2]["email"] if len(rest) > 3 else None
            if last is None:
                return HTTPResponse(200, {"items": page})
            if request.path.endswith("/encoded"):
                token = base64.urlsafe_b64encode(json.dumps({"a": last}).encode()).decode()
                return HTTPResponse(200, {"items": page, "next_cursor": token.rstrip("=")})
            return HTTPResponse(200, {"items": page, "next": f"linked?after={quote(last)}"})
        page_no = int(request.query.get("page", 1))  # page 2 renames 'phone' to 'mobile'
        if request.path.endswith("/payload"):  # page 2's payload brings a phone inside
            if page_no > 2:
                return HTTPResponse(200, {"items": []})
            contact = {"city": "Тверь", **({"phone": people[6]["phone"]} if page_no == 2 else {})}
            items = [{"id": page_no * 10 + i, "payload": {"contact": contact}} for i in range(3)]
            return HTTPResponse(200, {"items": items[: 3 if page_no == 1 else 1]})
        if page_no > 2:
            return HTTPResponse(200, {"items": []})
        size = 1 if request.path.endswith("/renamed-one") and page_no == 2 else 3
        chunk = people[(page_no - 1) * 3 : (page_no - 1) * 3 + size]
        phone = "phone" if page_no == 1 else "mobile"
        items = [{"id": p["id"], "email": p["email"], phone: p["phone"]} for p in chunk]
        return HTTPResponse(200, {"items": items})

    return handle


@pytest.fixture(scope="module")
def world(own_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every case run once against the shared source table (module-scoped: ~seconds)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("ETL_EXPRESS_HOME", str(home))
    mp.setenv("ETL_EXPRESS_DATABASE_URL", own_db)
    mp.setenv("ETL_EXPRESS_SLIPS_KEY", secrets.token_urlsafe(48))
    etl.configure_logging()
    logger.enable("etl_express")
    people = _people()
    w = World(own_db, etl.secret("SLIPS_KEY"), home, people)
    pg_exec(own_db, f"CREATE SCHEMA {SOURCE}")
    pg_exec(
        own_db,
        f"CREATE TABLE {SOURCE}.people (id int PRIMARY KEY, full_name text, email text, "
        "phone text, passport text, snils text, birth_date date, born text, city text, "
        "amount bigint, notes text, memo text)",
    )
    columns = ("id", "full_name", "email", "phone", "passport", "snils", "birth_date", "born")
    for p in people:
        row = {**p, "birth_date": "infinity" if p["id"] == INFINITE else p["birth_date"]}
        pg_exec(
            own_db,
            f"INSERT INTO {SOURCE}.people VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [*(row[c] for c in columns), p["city"], p["amount"], p["notes"], p["memo"]],
        )
    pg_exec(
        own_db, f"CREATE VIEW {SOURCE}.logins AS SELECT id, email AS login FROM {SOURCE}.people"
    )
    try:
        with LocalHTTPServer(_api(people)) as server:
            w.server = server.url
            for case, spec in CASES.items():
                name = "slip_" + case.replace("-", "_")
                if case == "rename-select-cast-derive":  # the target refuses one amount
                    pg_exec(
                        own_db,
                        f"CREATE TABLE public.{name} (id bigint PRIMARY KEY, "
                        "amount bigint CHECK (amount < 1000000000))",
                    )
                out = w.outcomes[case] = Outcome(name)
                try:
                    out.result = spec.run(spec.build(w, name)).to_dict()
                except ETLError as exc:
                    out.error = "".join(traceback.format_exception(exc))
            # an export: files, their names and manifests
            export = _full(w, "slip_export", sink=JSONLSink(home / "export", state_url=own_db))
            w.outcomes["export"] = Outcome("slip_export", result=export.run().to_dict())
            # the values an Airflow task pushes as XComs (plan, result, the quarantined form)
            from etl_express.airflow.tasks import plan_partitions, run_partition

            xcom = _full(w, "slip_xcom")
            w.xcoms.append(plan_partitions(xcom, 2))
            w.xcoms += [run_partition(xcom, spec) for spec in w.xcoms[0]]
            w.outcomes["xcom"] = Outcome("slip_xcom", result=w.xcoms[-1])
        yield w
    finally:
        logger.disable("etl_express")
        mp.undo()


def _written(w: World, name: str) -> str:
    """Everything the case's pipeline left in the target and the state schema."""
    parts = []
    if pg_exec(w.url, f"SELECT to_regclass('public.{name}')")[0][0] is not None:
        parts.append(as_text(pg_exec(w.url, f"SELECT t::text FROM public.{name} t")))
    tables = [
        r[0]
        for r in pg_exec(
            w.url,
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'etl_express' AND column_name = 'pipeline'",
        )
    ]
    assert {"runs", "checkpoints", "quarantine", "logs", "partition_plans"} <= set(tables)
    for table in tables:  # every state table that holds anything of a pipeline
        parts.append(
            as_text(
                pg_exec(
                    w.url, f"SELECT t::text FROM etl_express.{table} t WHERE pipeline = %s", [name]
                )
            )
        )
    return "\n".join(parts)


@pytest.mark.parametrize("case", list(CASES))
def test_each_slip_anonymizes_or_is_refused_before_any_write(world: World, case: str) -> None:
    spec, out = CASES[case], world.outcomes[case]
    written = _written(world, out.name)
    assert not leaked(written + out.error, planted(world.people)), case
    if not spec.refused:
        assert not out.error, out.error
        assert out.result["status"] == "succeeded" and out.result["rows_written"] > 0
        return
    assert out.error, f"{case} was not refused: {out.result}"
    for text in spec.refused:
        assert text in out.error, (text, out.error)
    if case.startswith("pg-error"):
        return  # the source refused the query: a failed run is recorded, nothing is loaded
    target = pg_exec(
        world.url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
        [out.name],
    )
    if case.startswith(("rest-new-column", "rest-json-key")):  # page 1 may be written
        assert ("mobile",) not in target, target
        assert not leaked(written, planted(world.people)), case
    else:
        assert target == [], case


REJECTIONS = {
    "source": (INFINITE, "source", "birth_date"),
    "cast": (BAD_BORN, "convert", "born"),
    "derive": (ZERO, "convert", "per_unit"),
    "sink": (HUGE, "sink", "amount_check"),
}


@pytest.mark.parametrize("point", list(REJECTIONS))
def test_a_record_rejected_at_each_point_is_stored_anonymized(world: World, point: str) -> None:
    """After Rename and Select (data minimisation), a rejected record is stored under the
    names it had where it was rejected, each personal column anonymized as the pipeline
    anonymizes it, or dropped."""
    record_id, stage, why = REJECTIONS[point]
    name = world.outcomes["rename-select-cast-derive"].name
    rows = pg_exec(
        world.url,
        "SELECT record, stage, reason FROM etl_express.quarantine WHERE pipeline = %s",
        [name],
    )
    by_id = {int(r[0]["id"]): r for r in rows}
    assert record_id in by_id, (point, sorted(by_id))
    record, got_stage, reason = by_id[record_id]
    assert got_stage == stage and why in reason, (got_stage, reason)
    person_ = world.people[record_id - 1]
    token_field = "email" if point == "source" else "mail"
    assert str(record[token_field]).startswith("email:"), record
    assert "passport" not in record or (point == "source" and record["passport"] is None)
    assert not leaked(as_text(record) + reason, planted([person_])), record


def test_declared_safe_column_is_logged_with_the_run(world: World) -> None:
    name = world.outcomes["derive-split-part-declared"].name
    checks = pg_exec(
        world.url,
        "SELECT details FROM etl_express.quality_checks WHERE pipeline = %s AND name = 'not_pii'",
        [name],
    )
    assert checks and checks[0][0]["declared"] == {"domain": "the e-mail's domain only"}
    target = pg_exec(world.url, f"SELECT domain FROM public.{name} WHERE domain IS NOT NULL")
    assert {r[0] for r in target} == {"example.org"}


# -- every boundary ---------------------------------------------------------------------------


def test_pg_dump_of_target_and_state_holds_no_canary(world: World) -> None:
    dump = dump_database(world.url, exclude=SOURCE)
    assert "email:" in dump and "slip_export" in dump
    assert not leaked(dump, planted(world.people))


def test_log_files_hold_no_canary(world: World) -> None:
    from etl_express.logs import flush_logs

    flush_logs()
    text = files_text(world.home / "logs")
    assert "slip_filter" in text
    assert not leaked(text, planted(world.people))


def test_cli_output_holds_no_canary(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from etl_express.cli import _register, app

    _register()
    monkeypatch.setenv("ETL_EXPRESS_DATABASE_URL", world.url)
    names = [o.name for o in world.outcomes.values()]
    calls = [["runs", "--json"], ["status", "--json"], ["runs"]]
    for name in names:
        calls += [["quarantine", "list", name, "--json"], ["logs", "show", name]]
    text = "\n".join(CliRunner().invoke(app, args).output for args in calls)
    assert "slip_export" in text and "email:" in text
    assert not leaked(text, planted(world.people))


def test_dashboard_pages_hold_no_canary(world: World) -> None:
    import asyncio

    import httpx

    from etl_express.store.database import engine_for
    from etl_express.ui.app import create_app

    async def pages() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(engine_for(world.url)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            runs = pg_exec(world.url, "SELECT pipeline, run_id FROM etl_express.runs")
            names = sorted({r[0] for r in runs})
            paths = ["/", "/quarantine", *(f"/pipelines/{n}" for n in names)]
            paths += [f"/runs/{r[1]}" for r in runs]
            return [await client.get(path) for path in paths]

    got = asyncio.run(pages())
    assert all(p.status_code == 200 for p in got), [p.status_code for p in got]
    text = "\n".join(p.text for p in got)
    assert "slip_export" in text and "out of range" in text
    assert not leaked(text, planted(world.people))


def test_export_files_names_and_manifests_hold_no_canary(world: World) -> None:
    text = files_text(world.home / "export")
    assert "email:" in text and "_runs" in text
    assert not leaked(text, planted(world.people))


def test_airflow_xcom_values_hold_no_canary(world: World) -> None:
    assert len(world.xcoms[0]) == 2 and world.outcomes["xcom"].result["status"] == "succeeded"
    assert not leaked(as_text(world.xcoms), planted(world.people))
