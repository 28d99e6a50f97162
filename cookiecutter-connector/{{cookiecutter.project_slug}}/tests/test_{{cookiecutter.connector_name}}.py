"""etl-express's standard connector suite, run against {{ cookiecutter.class_name }}.

``make_source`` puts a list of records where a new source reads them:
{% if cookiecutter.base == "rest" %}a real HTTP server on 127.0.0.1{% elif cookiecutter.base == "sql" %}a SQLite table{% else %}export files in a temporary folder{% endif %}.
The inherited tests check that every record arrives exactly once, resumed runs
add nothing twice, empty values are kept and a real pipeline run loads everything once.
"""

from __future__ import annotations
{% if cookiecutter.base == "rest" %}
import pytest

from etl_express.testing import HTTPRequest, HTTPResponse, LocalHTTPServer, SourceTestSuite
from {{ cookiecutter.package_name }} import {{ cookiecutter.class_name }}

TOKEN = "test-token"


class Test{{ cookiecutter.class_name }}(SourceTestSuite):
    @pytest.fixture
    def make_source(self):
        servers = []

        def make(records):
            def api(request: HTTPRequest) -> HTTPResponse:
                headers = {k.lower(): v for k, v in request.headers.items()}
                if headers.get("authorization") != f"Bearer {TOKEN}":
                    return HTTPResponse(401, {"error": "unauthorized"})
                if request.path.rstrip("/") != "/customers":
                    return HTTPResponse(404, {"error": "not found"})
                offset = int(request.query.get("offset", 0))
                limit = int(request.query.get("limit", 10))
                return HTTPResponse(200, {"data": records[offset : offset + limit]})

            servers.append(LocalHTTPServer(api).start())
            return {{ cookiecutter.class_name }}(base_url=servers[-1].url, token=TOKEN, page_size=7)

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture
    def bad_source(self):
        return {{ cookiecutter.class_name }}(base_url="http://127.0.0.1:9", token=TOKEN, max_attempts=1)  # nothing listens
{%- elif cookiecutter.base == "sql" %}
import json

import pytest
import sqlalchemy as sa

from etl_express.testing import SourceTestSuite
from {{ cookiecutter.package_name }} import {{ cookiecutter.class_name }}

TYPES = {bool: sa.Boolean, int: sa.Integer, float: sa.Float, str: sa.Text}
NO_CURSOR = "2024-01-01T00:00:00+00:00"


def create_table(url: str, records: list[dict]) -> None:
    """A ``customers`` table holding ``records`` (lists and dicts as JSON text)."""
    types: dict[str, type] = {"id": sa.Integer, "updated_at": sa.Text}
    for record in records:
        for key, value in record.items():
            if value is not None and key not in types:
                types[key] = TYPES.get(type(value), sa.Text)
    for record in records:
        types.update({key: sa.Text for key in record if key not in types})
    columns = [sa.Column(name, t, primary_key=name == "id") for name, t in types.items()]
    table = sa.Table("customers", sa.MetaData(), *columns)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table.create(conn)
        rows = [{"updated_at": NO_CURSOR, **{k: json.dumps(v) if isinstance(v, (list, dict)) else v
                                             for k, v in record.items()}} for record in records]
        if rows:
            conn.execute(table.insert(), rows)
    engine.dispose()


class Test{{ cookiecutter.class_name }}(SourceTestSuite):
    @pytest.fixture
    def make_source(self, tmp_path):
        count = iter(range(1_000_000))

        def make(records):
            url = f"sqlite:///{tmp_path}/system-{next(count)}.db"
            create_table(url, records)
            return {{ cookiecutter.class_name }}(url=url, batch_size=7)

        return make

    @pytest.fixture
    def bad_source(self, tmp_path):
        return {{ cookiecutter.class_name }}(url=f"sqlite:///{tmp_path}/empty.db")  # no customers table

    def expected_empty(self, column, value):
        # a SQL table stores lists as JSON text
        return json.dumps(value) if isinstance(value, (list, dict)) else value
{%- else %}
import json

import pytest

from etl_express.testing import SourceTestSuite
from {{ cookiecutter.package_name }} import {{ cookiecutter.class_name }}


class Test{{ cookiecutter.class_name }}(SourceTestSuite):
    @pytest.fixture
    def make_source(self, tmp_path):
        count = iter(range(1_000_000))

        def make(records):
            folder = tmp_path / f"export-{next(count)}"
            folder.mkdir()
            for start in range(0, max(len(records), 1), 7):  # several files: several batches
                lines = [json.dumps(r, ensure_ascii=False) for r in records[start : start + 7]]
                (folder / f"part-{start:05d}.jsonl").write_text("".join(line + "\n" for line in lines))
            return {{ cookiecutter.class_name }}(path=str(folder), glob="*.jsonl", format="jsonl")

        return make

    @pytest.fixture
    def bad_source(self, tmp_path):
        (tmp_path / "broken.jsonl").write_text('{"id": 1, "name": \n')
        return {{ cookiecutter.class_name }}(path=str(tmp_path), glob="broken.jsonl", format="jsonl")
{%- endif %}
