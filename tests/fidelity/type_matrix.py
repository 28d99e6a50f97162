"""The type-fidelity matrices: every PostgreSQL built-in type family and the MariaDB/MySQL
types, with values that probe their edges, what each arrives as in the common format and the
target column it lands in. ``test_type_matrix.py`` proves every row on every reader path;
the type tables in docs/connectors/sql.md are rendered from these lists (run
``python -m tests.fidelity.type_matrix`` to print them).

``same`` is how the target is compared with the source: ``"text"`` means the target column's
``::text`` equals the source column's ``::text`` (MySQL: ``CAST(col AS CHAR)``); ``"float"``
that both texts are the same floating-point number; anything else is a stated lossless
mapping, the SQL expression over the source column (``{c}``) whose value (as the driver
returns it) the target column holds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypeCase:
    family: str
    sql: str  #: the column type; ``{schema}`` is the test's schema (enums, domains, composites)
    values: tuple[str, ...]  #: SQL expressions, one row each
    arrives: str  #: the common format's type
    target: str  #: the target column's type (PostgreSQL's format_type)
    same: str = "text"  #: see the module docstring
    note: str = ""
    #: what is compared on the target (MariaDB/MySQL cases): the column's ``::text`` unless a
    #: type's text differs while its value is the same (``{c}``: the target column)
    target_sql: str = "{c}::text"


PG_SETUP = (
    "CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN {schema}.positive AS integer CHECK (VALUE > 0)",
    "CREATE DOMAIN {schema}.email AS text CHECK (VALUE LIKE '%@%')",
    "CREATE TYPE {schema}.pair AS (n integer, label text)",
)

PG_TYPES: tuple[TypeCase, ...] = (
    TypeCase("integers", "smallint", ("-32768", "32767", "0"), "int64", "smallint"),
    TypeCase("integers", "integer", ("-2147483648", "2147483647"), "int64", "integer"),
    TypeCase(
        "integers", "bigint", ("-9223372036854775808", "9223372036854775807"), "int64", "bigint"
    ),
    TypeCase(
        "floating point",
        "real",
        ("1.1", "3.4028235e38", "'NaN'", "'-Infinity'", "1e-45"),
        "float64",
        "real",
        note="its shortest text read as double precision: `1.1` stays `1.1`",
    ),
    TypeCase(
        "floating point",
        "double precision",
        ("0.1", "1e308", "'NaN'", "'Infinity'", "'-0'", "5e-324"),
        "float64",
        "double precision",
    ),
    TypeCase(
        "numeric",
        "numeric(10,2)",
        ("1.50", "-99999999.99", "0"),
        "decimal128(10, 2)",
        "numeric(10,2)",
        note="`NaN` quarantines its row, naming the column",
    ),
    TypeCase(
        "numeric",
        "numeric(60,20)",
        ("1234567890123456789012345678901234567890.12345678901234567890",),
        "string (exact text)",
        "numeric(60,20)",
    ),
    TypeCase(
        "numeric",
        "numeric",
        ("1.5", "1.5000000000", "0.12345678901", "1e40", "'NaN'", "'Infinity'", "'-Infinity'"),
        "string (exact text)",
        "numeric",
        note="one representation whatever order values arrive in",
    ),
    TypeCase("money", "money", ("12.34", "-1234.56", "0"), "string (its text)", "text"),
    TypeCase("boolean", "boolean", ("true", "false"), "bool", "boolean"),
    TypeCase("text", "text", ("'Ёлка «ель»'", "''", "E'a\\nb\\tc'"), "string", "text"),
    TypeCase("text", "varchar(10)", ("'abc'",), "string", "character varying(10)"),
    TypeCase(
        "text",
        "char(5)",
        ("'ab'",),
        "string (with its padding)",
        "character(5)",
        same="{c}",
        note="the stored value with its padding (`'ab   '`); `::text` would trim it",
    ),
    TypeCase("text", "name", ("'pg_class'",), "string", "name"),
    TypeCase("binary", "bytea", ("'\\x00ff10'::bytea", "''::bytea"), "string (`\\x` hex)", "bytea"),
    TypeCase(
        "date and time", "date", ("'2024-02-29'", "'0001-01-01'", "'9999-12-31'"), "date32", "date"
    ),
    TypeCase(
        "date and time",
        "timestamp",
        ("'2024-02-29 12:34:56.123456'", "'1900-01-01 00:00'"),
        "timestamp[us, UTC]",
        "timestamp without time zone",
        note="its wall time as at the source",
    ),
    TypeCase(
        "date and time",
        "timestamptz",
        ("'2024-02-29 12:34:56.123456+03'",),
        "timestamp[us, UTC]",
        "timestamp with time zone",
    ),
    TypeCase(
        "date and time",
        "time",
        ("'12:34:56.789'", "'24:00:00'"),
        "string (its text)",
        "time without time zone",
    ),
    TypeCase(
        "date and time", "timetz", ("'12:34:56+03'",), "string (its text)", "time with time zone"
    ),
    TypeCase(
        "date and time",
        "interval",
        ("'1 year 2 mons -3 days 04:05:06.789'", "'-1 microsecond'"),
        "string (its text)",
        "interval",
    ),
    TypeCase(
        "arrays",
        "integer[]",
        ("'{1,2,3}'", "'{{1,2},{3,4}}'", "'{{{1}},{{2}}}'", "'{1,NULL}'", "'{}'", "'[0:1]={5,6}'"),
        "string (its text)",
        "integer[]",
        note="any dimension, bounds and NULL elements as PostgreSQL writes them",
    ),
    TypeCase(
        "arrays",
        "text[]",
        ("ARRAY['a b', NULL, 'c\"d', '{x}', 'NULL']",),
        "string (its text)",
        "text[]",
    ),
    TypeCase(
        "ranges",
        "int4range",
        ("'[1,5)'", "'empty'", "'(,3]'"),
        "string (its text)",
        "int4range",
    ),
    TypeCase("ranges", "numrange", ("'[1.5,2.25]'",), "string (its text)", "numrange"),
    TypeCase(
        "ranges",
        "tstzrange",
        ("'[2024-01-01 00:00+00,infinity)'",),
        "string (its text)",
        "tstzrange",
    ),
    TypeCase(
        "ranges", "daterange", ("'[2024-01-01,2024-02-01)'",), "string (its text)", "daterange"
    ),
    TypeCase(
        "ranges", "int4multirange", ("'{[1,3),[5,7)}'",), "string (its text)", "int4multirange"
    ),
    TypeCase("geometric", "point", ("'(1.5,-2)'",), "string (its text)", "point"),
    TypeCase("geometric", "line", ("'{1,-1,0}'",), "string (its text)", "line"),
    TypeCase("geometric", "lseg", ("'[(0,0),(1,1)]'",), "string (its text)", "lseg"),
    TypeCase("geometric", "box", ("'(1,1),(0,0)'",), "string (its text)", "box"),
    TypeCase("geometric", "path", ("'[(0,0),(1,1),(2,0)]'",), "string (its text)", "path"),
    TypeCase("geometric", "polygon", ("'((0,0),(1,1),(1,0))'",), "string (its text)", "polygon"),
    TypeCase("geometric", "circle", ("'<(0,0),2.5>'",), "string (its text)", "circle"),
    TypeCase("bit strings", "bit(8)", ("B'10101010'",), "string (its text)", "bit(8)"),
    TypeCase("bit strings", "varbit", ("B'101'", "B''"), "string (its text)", "bit varying"),
    TypeCase("xml", "xml", ("'<a x=\"1\">т</a>'",), "string (its text)", "xml"),
    TypeCase("text search", "tsvector", ("'a fat cat:3'",), "string (its text)", "tsvector"),
    TypeCase("text search", "tsquery", ("'fat & (rat | cat)'",), "string (its text)", "tsquery"),
    TypeCase("network", "inet", ("'192.168.0.1/24'", "'::1'"), "string (its text)", "inet"),
    TypeCase("network", "cidr", ("'10.0.0.0/8'",), "string (its text)", "cidr"),
    TypeCase("network", "macaddr", ("'08:00:2b:01:02:03'",), "string (its text)", "macaddr"),
    TypeCase(
        "network", "macaddr8", ("'08:00:2b:01:02:03:04:05'",), "string (its text)", "macaddr8"
    ),
    TypeCase(
        "uuid", "uuid", ("'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",), "string (lowercase)", "uuid"
    ),
    TypeCase(
        "json",
        "json",
        ('\'{"b": 1,  "a": [1, 2], "b": 2}\'',),
        "string (its text)",
        "json",
        note="the text as stored: key order, spacing and duplicate keys kept",
    ),
    TypeCase("json", "jsonb", ('\'{"b": 1, "a": [1, 2.50]}\'',), "string (its text)", "jsonb"),
    TypeCase("enums", "{schema}.mood", ("'happy'", "'sad'"), "string (its label)", "text"),
    TypeCase(
        "domains",
        "{schema}.positive",
        ("7",),
        "int64",
        "integer",
        note="a domain arrives as its base type",
    ),
    TypeCase("domains", "{schema}.email", ("'a@b'",), "string (its text)", "text"),
    TypeCase(
        "composite",
        "{schema}.pair",
        ("ROW(1, 'a b')", "ROW(NULL, '\"')"),
        "string (its text)",
        "text",
    ),
    TypeCase("system", "oid", ("12345",), "string (its text)", "oid"),
    TypeCase("system", "pg_lsn", ("'16/B374D848'",), "string (its text)", "pg_lsn"),
)

#: MariaDB/MySQL: ``same`` compares ``CAST(col AS CHAR)`` at the source with ``::text`` in
#: the target, or is a stated mapping (a MySQL expression whose text the target holds).
MYSQL_TYPES: tuple[TypeCase, ...] = (
    TypeCase("integers", "TINYINT", ("-128", "127"), "int64", "smallint"),
    TypeCase("integers", "SMALLINT", ("-32768",), "int64", "smallint"),
    TypeCase("integers", "MEDIUMINT", ("8388607",), "int64", "integer"),
    TypeCase("integers", "INT", ("-2147483648",), "int64", "integer"),
    TypeCase(
        "integers", "BIGINT", ("-9223372036854775808", "9223372036854775807"), "int64", "bigint"
    ),
    TypeCase(
        "integers",
        "BIGINT UNSIGNED",
        ("18446744073709551615", "0"),
        "decimal128(20, 0)",
        "numeric(20,0)",
    ),
    TypeCase("integers", "INT UNSIGNED", ("4294967295",), "int64", "bigint"),
    TypeCase(
        "floating point",
        "DOUBLE",
        ("0.1", "1e308", "-5e-324"),
        "float64",
        "double precision",
        same="float",
    ),
    TypeCase(
        "floating point",
        "FLOAT",
        ("1.1",),
        "float64",
        "real",
        same="float",
        note="a FLOAT's value as double precision",
    ),
    TypeCase(
        "decimal", "DECIMAL(10,2)", ("1.50", "-99999999.99"), "decimal128(10, 2)", "numeric(10,2)"
    ),
    TypeCase(
        "decimal",
        "DECIMAL(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567890",),
        "string (exact text)",
        "numeric(65,30)",
    ),
    TypeCase(
        "boolean",
        "BOOLEAN",
        ("1", "0", "NULL"),
        "bool",
        "boolean",
        same="CASE {c} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
        note="MariaDB's TINYINT(1); another value than 0 or 1 quarantines its row",
    ),
    TypeCase(
        "bit",
        "BIT(8)",
        ("b'10101010'",),
        "int64",
        "bigint",
        same="{c} + 0",
        note="its integer value",
    ),
    TypeCase("text", "VARCHAR(20)", ("'Ёлка «ель»'", "''"), "string", "character varying(20)"),
    TypeCase(
        "text", "CHAR(5)", ("'ab'",), "string", "character(5)", note="MariaDB trims CHAR padding"
    ),
    TypeCase("text", "TEXT", ("'a\\nb'",), "string", "text"),
    TypeCase("enums", "ENUM('sad','ok','happy')", ("'ok'",), "string", "text"),
    TypeCase("enums", "SET('a','b','c')", ("'a,c'",), "string", "text"),
    TypeCase(
        "binary",
        "VARBINARY(8)",
        ("x'00ff10'", "x''", "NULL"),
        "string (`\\x` hex)",
        "bytea",
        same="CONCAT('\\\\x', LOWER(HEX({c})))",
        note="the same bytes: compared and measured (`length`) as bytes",
    ),
    TypeCase(
        "binary",
        "BLOB",
        ("x'00ff'",),
        "string (`\\x` hex)",
        "bytea",
        same="CONCAT('\\\\x', LOWER(HEX({c})))",
        note="the same bytes",
    ),
    TypeCase(
        "date and time", "DATE", ("'2024-02-29'", "'1000-01-01'", "'9999-12-31'"), "date32", "date"
    ),
    TypeCase(
        "date and time",
        "DATETIME(6)",
        ("'2024-02-29 12:34:56.123456'",),
        "timestamp[us, UTC]",
        "timestamp(6) without time zone",
        note="its wall time as at the source",
    ),
    TypeCase(
        "date and time",
        "TIME(6)",
        ("'838:59:59.000000'", "'-01:02:03.5'", "'00:00:00.000001'"),
        "string (its text)",
        "interval",
        same="TIME_TO_SEC({c})",
        target_sql="extract(epoch FROM {c})::text",
        note="the same duration (MariaDB's TIME runs from -838:59:59 to 838:59:59): ordered "
        "and compared as one; `::text` as PostgreSQL writes intervals (`-01:02:03.5`)",
    ),
    TypeCase("date and time", "YEAR", ("2024",), "int64", "smallint"),
    TypeCase("json", "JSON", ('\'{"b": 1, "a": [1, 2]}\'',), "string (its text)", "text"),
)


def markdown(cases: tuple[TypeCase, ...], source: str) -> str:
    """The docs table for ``cases``."""
    lines = [
        f"| {source} | arrives as | target column | delivered |",
        "|---|---|---|---|",
    ]
    for c in cases:
        delivered = {"text": "same `::text`", "float": "same number"}.get(c.same, "stated mapping")
        if c.note:
            delivered += f": {c.note}"
        sql = c.sql.replace("{schema}.", "")
        lines.append(f"| `{sql}` | {c.arrives} | `{c.target}` | {delivered} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(PG_TYPES, "PostgreSQL"))
    print()
    print(markdown(MYSQL_TYPES, "MariaDB/MySQL"))
