"""The privacy plan, before anything is read: every transformer kind carries personal data to
the columns it makes, and a personal column that would reach the target uncovered is refused,
naming the column, its origin and the fix; every position kind over personal data is refused.
These tests read and write nothing (the sources have declared schemas)."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import etl_express as etl
from etl_express import Transformer
from etl_express.anonymizers import (
    Generalize,
    KAnonymity,
    Mask,
    Pseudonymize,
    Redact,
    ScrubPII,
    Suppress,
)
from etl_express.anonymizers.guard import plan_for
from etl_express.errors import AnonymizationError, ETLConfigError
from etl_express.sinks import JSONLSink
from etl_express.sources import RESTSource, SQLSource
from etl_express.sources.rest import Incremental
from etl_express.transformers import Cast, Derive, Filter, NormalizeEmpty, Rename, Select

from .canaries import PeopleSource

SCHEMA = pa.schema(
    [
        (c, pa.int64() if c == "id" else pa.string())
        for c in ("id", "full_name", "email", "phone", "city", "notes")
    ]
)


class Opaque(Transformer):
    """A third-party step that says nothing about its lineage."""

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch


class Declared(Opaque):
    def lineage(self, schema: pa.Schema) -> dict[str, tuple[str, ...]]:
        return {n: (n,) for n in schema.names}


def _pipeline(**kw: Any) -> etl.Pipeline:
    source = kw.pop("source", None) or PeopleSource([], schema=SCHEMA, pii=kw.pop("tags", ()))
    return etl.Pipeline("plan", source, sink=JSONLSink("unused"), **kw)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> etl.SecretRef:
    import secrets

    monkeypatch.setenv("ETL_EXPRESS_PLAN_KEY", secrets.token_urlsafe(48))
    return etl.secret("PLAN_KEY")


# each transformer kind: (steps, the column personal data reaches the target in)
FLOWS: dict[str, tuple[list[Any], str, str]] = {
    "Rename": ([Rename({"email": "contact"})], "contact", "Rename"),
    "Select": ([Select(["id", "email"])], "email", ""),
    "Cast": ([Cast({"email": "string"})], "email", ""),
    "Derive": (
        [Derive("domain", lambda b: pc.utf8_lower(b["email"]))],
        "domain",
        "Derive('domain')",
    ),
    "Derive-two": (
        [Derive("contact", lambda b: pc.binary_join_element_wise(b["full_name"], b["email"], " "))],
        "contact",
        "Derive('contact')",
    ),
    "Filter": ([Filter(pc.field("id") > 0)], "email", ""),
    "NormalizeEmpty": ([NormalizeEmpty("strip")], "email", ""),
    "Opaque": ([Opaque()], "city", "Opaque"),
    "Rename-Derive": (
        [Rename({"email": "mail"}), Derive("m", lambda b: pc.utf8_upper(b["mail"]))],
        "m",
        "Derive('m')",
    ),
}


@pytest.mark.parametrize("kind", list(FLOWS))
def test_every_transformer_kind_carries_personal_data(kind: str, key: etl.SecretRef) -> None:
    steps, reached, via = FLOWS[kind]
    named = [Pseudonymize(["full_name", "phone"], key=key)] if kind != "Select" else []
    pipeline = _pipeline(tags=["email"], transformers=steps, anonymizers=named)
    with pytest.raises(AnonymizationError) as err:
        pipeline.check_pii_coverage()
    text = str(err.value)
    assert f"{reached!r}" in text and "'email'" in text and via in text, text
    assert "not_pii=" in text and "Fix:" in text
    if kind == "Opaque":  # every output from every input: each column is personal
        assert "declare the lineage of Opaque" in text and "'id'" in text
        _pipeline(
            tags=["email"],
            transformers=[Declared()],
            anonymizers=[Pseudonymize(["email"], key=key)],
        ).check_pii_coverage()
        return  # covering the key too would make it personal: refused as a position
    # covering every column personal data reaches lets the same flow through
    exposed = sorted(plan_for(pipeline).sink_personal - {"full_name", "phone"})
    assert reached in exposed
    fixed = _pipeline(
        tags=["email"],
        transformers=steps,
        anonymizers=[*named, Pseudonymize(exposed, key=key)],
    )
    fixed.check_pii_coverage()


def test_not_pii_declares_a_derived_column_safe(key: etl.SecretRef) -> None:
    steps = [Derive("email_domain", lambda b: pc.replace_substring_regex(b["email"], "^.*@", ""))]
    common: dict[str, Any] = {
        "tags": ["email"],
        "transformers": steps,
        "anonymizers": [Pseudonymize(["email"], key=key)],
    }
    with pytest.raises(AnonymizationError, match="'email_domain'"):
        _pipeline(**common).check_pii_coverage()
    ok = _pipeline(**common, not_pii={"Email Domain": "the domain only"})
    ok.check_pii_coverage()
    assert ok.not_pii == {"email_domain": "the domain only"}
    from etl_express.anonymizers.guard import declarations_check

    (check,) = declarations_check(ok)
    assert check.name == "not_pii" and check.details["declared"] == ok.not_pii
    with pytest.raises(ETLConfigError, match="needs a reason"):
        _pipeline(**common, not_pii={"email_domain": " "})
    with pytest.raises(ETLConfigError, match="contradictory"):
        _pipeline(**common, not_pii={"email": "it is fine"}).check_pii_coverage()


def test_anonymizer_names_make_columns_personal_backwards(key: etl.SecretRef) -> None:
    """No tags: a column an anonymizer names is personal, and so is what it comes from and
    what else comes from that (the raw e-mail, renamed, kept beside its pseudonym)."""
    pipeline = _pipeline(
        transformers=[
            Rename({"email": "mail"}),
            Derive("login", lambda b: pc.utf8_lower(b["mail"])),
        ],
        anonymizers=[Pseudonymize(["login"], key=key)],
    )
    with pytest.raises(AnonymizationError) as err:
        pipeline.check_pii_coverage()
    assert "['mail']" in str(err.value) and "'login'" in str(err.value)


@pytest.mark.parametrize(
    "anonymizer",
    ["Pseudonymize", "Redact", "Mask", "Generalize", "Suppress", "KAnonymity", "ScrubPII"],
)
def test_what_covers_a_tagged_column(anonymizer: str, key: etl.SecretRef) -> None:
    made = {
        "Pseudonymize": lambda: Pseudonymize(["city"], key=key),
        "Redact": lambda: Redact(["city"]),
        "Mask": lambda: Mask(["city"]),
        "Generalize": lambda: Generalize(["city"], to="region"),
        "Suppress": lambda: Suppress(["city"]),
        "KAnonymity": lambda: KAnonymity(["city"], k=2),
        "ScrubPII": lambda: ScrubPII(["city"]),
    }[anonymizer]()
    pipeline = _pipeline(tags=["city"], anonymizers=[made])
    if anonymizer == "ScrubPII":  # free text only: never a tagged column
        with pytest.raises(AnonymizationError, match="covers free text only"):
            pipeline.check_pii_coverage()
        _pipeline(anonymizers=[ScrubPII(["city"])]).check_pii_coverage()  # untagged free text
    else:
        pipeline.check_pii_coverage()


def test_scrubpii_does_not_cover_what_derives_from_structured_data(key: etl.SecretRef) -> None:
    contact = Derive(
        "contact", lambda b: pc.binary_join_element_wise(b["full_name"], b["phone"], " ")
    )
    pipeline = _pipeline(
        tags=["full_name", "phone"],
        transformers=[contact],
        anonymizers=[Pseudonymize(["full_name", "phone"], key=key), ScrubPII(["contact"])],
    )
    with pytest.raises(AnonymizationError, match=r"'contact'.*free text only"):
        pipeline.check_pii_coverage()


def test_unknown_names_are_reported_first_with_the_nearest(key: etl.SecretRef) -> None:
    pipeline = _pipeline(
        tags=["email", "e-mail"],
        transformers=[Rename({"fone": "mobile"})],
        anonymizers=[Pseudonymize(["emial"], key=key)],
        not_pii={"citty": "a city"},
    )
    with pytest.raises(ETLConfigError) as err:
        pipeline.check_pii_coverage()
    text = str(err.value)
    assert not isinstance(err.value, AnonymizationError)  # not the coverage problem first
    for unknown, near in (
        ("emial", "email"),
        ("e_mail", "email"),
        ("fone", "phone"),
        ("citty", "city"),
    ):
        assert re.search(rf"'{unknown}' \(nearest: [^)]*'{near}'", text), (unknown, text)
    assert "nothing was written" in text


def test_quarantine_record_anonymized_under_its_name_at_each_step(key: etl.SecretRef) -> None:
    pipeline = _pipeline(
        tags=["email", "phone", "full_name"],
        transformers=[
            Rename({"email": "mail"}),
            Select(["id", "mail", "phone", "city", "notes"]),
            Cast({"id": "int64"}),
        ],
        anonymizers=[Pseudonymize(["mail"], key=key), Mask(["phone"], keep_last=2)],
    )
    pipeline.check_pii_coverage()
    plan = plan_for(pipeline)
    raw = {
        "id": 7,
        "full_name": "Канарейкин Иван",
        "email": "Kanareyka@Example.org",
        "phone": "+79161234567",
        "city": "Тверь",
        "notes": "пишите на kanareyka@example.org",
    }
    token = pipeline.anonymize_record(raw)["email"]
    assert token.startswith("email:")
    renamed = {("mail" if k == "email" else k): v for k, v in raw.items()}
    selected = {k: renamed[k] for k in ("id", "mail", "phone", "city", "notes")}
    for stage, record, name in ((0, raw, "email"), (1, renamed, "mail"), (2, selected, "mail")):
        stored = plan.protect_record(record, stage)
        assert stored[name] == token  # as the pipeline would have pseudonymized it
        assert stored["phone"] == "****67"
        assert "full_name" not in stored  # dropped by Select: nothing to anonymize it with
        assert stored["city"] == "Тверь" and "kanareyka" not in stored["notes"].lower()


def _sql(**kw: Any) -> SQLSource:
    return SQLSource("postgresql://nobody@127.0.0.1:1/none", table="people", **kw)


POSITIONS: dict[str, Any] = {
    "primary key tagged": lambda: PeopleSource(
        [], schema=SCHEMA, pii=["email"], primary_key=["email"]
    ),
    "primary key anonymized": lambda: PeopleSource([], schema=SCHEMA, primary_key=["phone"]),
    "sql cursor": lambda: _sql(primary_key="id", cursor="email", pii=["email"]),
    "rest incremental cursor": lambda: RESTSource(
        "http://127.0.0.1:9",
        primary_key="id",
        incremental=Incremental(cursor_field="email", param="since"),
        pii=["email"],
    ),
}


@pytest.mark.parametrize("kind", list(POSITIONS))
def test_personal_positions_are_refused_with_the_surrogate_hint(
    kind: str, key: etl.SecretRef
) -> None:
    pipeline = _pipeline(
        source=POSITIONS[kind](),
        anonymizers=[Pseudonymize(["email", "phone"], key=key)],
    )
    with pytest.raises(ETLConfigError, match="surrogate") as err:
        pipeline.check_pii_coverage()
    assert "personal data" in str(err.value)


def test_a_partition_over_a_personal_column_is_refused(key: etl.SecretRef) -> None:
    pipeline = _pipeline(tags=["email"], anonymizers=[Pseudonymize(["email"], key=key)])
    spec = {"column": "email", "lo": "a", "hi": "m"}
    with pytest.raises(ETLConfigError, match=r"partition column 'email'.*surrogate"):
        pipeline.run(partition=spec)
    with pytest.raises(ETLConfigError, match="partition column 'email'"):
        pipeline.run(partitions=[spec], workers=2)


def test_a_position_holding_a_personal_value_is_found(key: etl.SecretRef) -> None:
    """A paginator token the API made of a record's e-mail (a keyset on e-mail)."""
    pipeline = _pipeline(tags=["email"], anonymizers=[Pseudonymize(["email"], key=key)])
    plan = plan_for(pipeline)
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "id": 1,
                "full_name": "x",
                "email": "a.b@example.org",
                "phone": "1",
                "city": "c",
                "notes": "",
            }
        ],
        schema=SCHEMA,
    )
    assert plan.position_leak({"cursor": "a.b@example.org"}, batch) is not None
    assert plan.position_leak({"next": "opaque-token-9"}, batch) is None
    assert plan.position_leak({"key": [1]}, batch) is None


@pytest.mark.parametrize(
    "position, words",
    [
        ({"token": "+7 916 555-01-32"}, "a phone number"),
        ({"token": "+44 20 7946 0958"}, "a phone number"),
        ({"after": "112-233-445 95"}, "a SNILS"),
        ({"next": "https://api.example/x?after=a.b%40example.org&n=2"}, "an e-mail address"),
        ({"cursor": "eyJhIjogImEuYkBleGFtcGxlLm9yZyJ9"}, "an e-mail address"),  # base64 JSON
        ({"key": [79161234567]}, None),  # a number is a key: judged by its column only
        ({"cursor": "2026-12-07T03:50:37.335317+00:00", "id": 12}, None),
        ({"next": "550e8400-e29b-41d4-a716-446655440000"}, None),
        ({"token": "eyJpZCI6MTIzfQ"}, None),  # base64 of {"id":123}
    ],
)
def test_a_position_is_judged_by_its_value(
    position: dict[str, Any], words: str | None, key: etl.SecretRef
) -> None:
    """Whatever column (if any) a token came from: the detector's rules, one value at a time,
    in the forms a token hides a value in; the message names the kind, never the value."""
    plan = plan_for(_pipeline(tags=["email"], anonymizers=[Pseudonymize(["email"], key=key)]))
    empty = pa.RecordBatch.from_pylist([], schema=SCHEMA)
    found = plan.position_leak(position, empty)
    if words is None:
        assert found is None, found
    else:
        assert found == f"a value that looks like {words}", found


def test_partition_bounds_are_judged_by_their_value() -> None:
    """Bounds over a column nobody tagged, REST partitions made of e-mails: refused before
    the plan is stored; bounds of a surrogate key pass."""
    from etl_express.anonymizers.guard import check_partitions

    pipeline = _pipeline()
    check_partitions(pipeline, [{"column": "id", "lo": 1, "hi": 500}, {"region": "Тверь"}])
    for spec in (
        {"column": "contact", "lo": "a.b@example.org", "hi": None},
        {"user": "c.d@example.org"},
    ):
        with pytest.raises(ETLConfigError, match="looks like an e-mail address") as err:
            check_partitions(pipeline, [spec])
        assert "example.org" not in str(err.value) and "surrogate" in str(err.value)
