"""Configs are validated strictly: a dict (or a set, bytes, a number) where a list of column
names is expected is a TypeError naming the constructor and the parameter, raised when the
object is built — never silently read as its keys or characters."""

from __future__ import annotations

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
from etl_express.sources import FileSource, OneCODataSource, RESTSource, SQLSource
from etl_express.transformers import Cast, NormalizeEmpty, Rename, Select

KEY = etl.secret("ANON_KEY")  # a reference: resolved only when a run starts
SQL = "postgresql://u@h/db"


class Rows(etl.Source):
    name, primary_key = "rows", ["id"]

    def read(self, position=None, partition=None):
        yield etl.Batch([{"id": 1}], position=1)


BUILDERS = {
    "Pseudonymize(columns=)": (lambda v: Pseudonymize(v, key=KEY), "Pseudonymize(columns="),
    "Redact(columns=)": (lambda v: Redact(v), "Redact(columns="),
    "Mask(columns=)": (lambda v: Mask(v), "Mask(columns="),
    "Suppress(columns=)": (lambda v: Suppress(v), "Suppress(columns="),
    "ScrubPII(columns=)": (lambda v: ScrubPII(v), "ScrubPII(columns="),
    "Generalize(columns=)": (lambda v: Generalize(v, to="year"), "Generalize(columns="),
    "KAnonymity(quasi_identifiers=)": (
        lambda v: KAnonymity(v, k=5),
        "KAnonymity(quasi_identifiers=",
    ),
    "SQLSource(primary_key=)": (
        lambda v: SQLSource(SQL, table="t", primary_key=v),
        "SQLSource(primary_key=",
    ),
    "SQLSource(pii=)": (
        lambda v: SQLSource(SQL, table="t", primary_key="id", pii=v),
        "SQLSource(pii=",
    ),
    "RESTSource(primary_key=)": (
        lambda v: RESTSource("http://127.0.0.1:9", "x", primary_key=v),
        "RESTSource(primary_key=",
    ),
    "RESTSource(pii=)": (
        lambda v: RESTSource("http://127.0.0.1:9", "x", primary_key="id", pii=v),
        "RESTSource(pii=",
    ),
    "OneCODataSource(pii=)": (
        lambda v: OneCODataSource(
            "http://127.0.0.1:9/base", "Catalog_X", username="u", password="p", pii=v
        ),
        "OneCODataSource(pii=",
    ),
    "FileSource(primary_key=)": (
        lambda v: FileSource(".", "*.csv", primary_key=v),
        "FileSource(primary_key=",
    ),
    "Pipeline(pii=)": (lambda v: etl.Pipeline("p", Rows(), pii=v), "Pipeline(pii="),
    "Pipeline(required=)": (lambda v: etl.Pipeline("p", Rows(), required=v), "Pipeline(required="),
    "Select(columns=)": (lambda v: Select(v), "Select(columns="),
    "NormalizeEmpty(columns=)": (lambda v: NormalizeEmpty(columns=v), "NormalizeEmpty(columns="),
}


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"email": "phone"}, "not a dict: pass ['email']"),
        ({"email", "phone"}, "not a set"),
        (b"email", "not bytes"),
        (42, "not int"),
        (["email", 7], "got int 7"),
    ],
    ids=["dict", "set", "bytes", "int", "non-string item"],
)
def test_a_wrong_shape_is_a_type_error_naming_the_parameter(builder, value, says):
    build, names = BUILDERS[builder]
    with pytest.raises(TypeError) as info:
        build(value)
    assert names in str(info.value) and says in str(info.value)


@pytest.mark.parametrize("builder", list(BUILDERS), ids=list(BUILDERS))
def test_lists_tuples_and_one_name_are_accepted(builder):
    build, _ = BUILDERS[builder]
    build(["email", "phone"])
    build(("email",))
    if not builder.startswith("Select"):
        build("email")  # one name where a list is expected: a list of one


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: Rename(["a", "b"]), "Rename(mapping="),
        (lambda: Cast([("a", "int64")]), "Cast(types="),
    ],
)
def test_a_list_where_a_mapping_is_expected_is_a_type_error(build, names):
    with pytest.raises(TypeError, match=names.replace("(", r"\(")):
        build()
