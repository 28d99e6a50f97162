{%- set config = cookiecutter.class_name | replace("Source", "") ~ "Config" -%}
"""``{{ cookiecutter.class_name }}``: reads {{ cookiecutter.system_name }} for etl-express."""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from etl_express import SecretRef
{%- if cookiecutter.base == "rest" %}
from etl_express.sources.rest import BearerAuth, OffsetPaginator, RESTSource, RetryPolicy
{%- elif cookiecutter.base == "sql" %}
from etl_express.sources import SQLSource
{%- else %}
from etl_express.sources.files import FileSource
{%- endif %}

Secret = Union[str, SecretStr, SecretRef]


class {{ config }}(BaseModel):
    """Settings of :class:`{{ cookiecutter.class_name }}` (validated before anything connects)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)
{% if cookiecutter.base == "rest" %}
    base_url: str = Field(description="API root, e.g. https://api.example.com/v1")
    token: Secret | None = Field(None, description="bearer token: etl.secret('{{ cookiecutter.connector_name | upper }}_TOKEN')")
    path: str = Field("customers", description="endpoint that lists the records")
    page_size: int = Field(100, ge=1, le=10_000)
    max_attempts: int = Field(5, ge=1, description="HTTP attempts per request, the first one included")
    primary_key: list[str] = Field(default_factory=lambda: ["id"])
    pii: list[str] = Field(default_factory=list, description="fields holding personal data")
{%- elif cookiecutter.base == "sql" %}
    url: Secret = Field(description="SQLAlchemy URL: etl.secret('{{ cookiecutter.connector_name | upper }}_DB_URL')")
    table: str = Field("customers", description="table to read (schema.table allowed)")
    primary_key: list[str] = Field(default_factory=lambda: ["id"])
    cursor: str | None = Field("updated_at", description="growing column for incremental loads")
    batch_size: int = Field(10_000, ge=1)
    pii: list[str] = Field(default_factory=list, description="columns holding personal data")
{%- else %}
    path: str = Field(description="folder holding the export files")
    glob: str = Field("*.jsonl", description="which files of the folder to read")
    format: str = Field("jsonl", description="csv, jsonl or parquet")
    primary_key: list[str] = Field(default_factory=lambda: ["id"])
    pii: list[str] = Field(default_factory=list, description="columns holding personal data")
{%- endif %}


{% if cookiecutter.base == "rest" -%}
class {{ cookiecutter.class_name }}(RESTSource):
{%- elif cookiecutter.base == "sql" -%}
class {{ cookiecutter.class_name }}(SQLSource):
{%- else -%}
class {{ cookiecutter.class_name }}(FileSource):
{%- endif %}
    """Reads {{ cookiecutter.system_name }} into etl-express batches.
{% if cookiecutter.base == "rest" %}
    Logic: the connector asks the {{ cookiecutter.system_name }} API for the records at
    ``path`` page by page, ``page_size`` records at a time, sending the offset of the next
    page as a query parameter and the token as a bearer header. Each page becomes one batch
    whose checkpoint position is the offset of the next page, so a stopped run resumes at the
    first page that was not committed and never loads a record twice. Connection errors,
    429 and 5xx answers are retried with backoff up to ``max_attempts`` times. Records are
    identified by ``primary_key``; fields listed in ``pii`` must be covered by an anonymizer.
{%- elif cookiecutter.base == "sql" %}
    Logic: the connector reads ``table`` of the {{ cookiecutter.system_name }} database in
    keyset order by ``(cursor, primary key)``, ``batch_size`` rows at a time, through a
    read-only connection, and never writes to it. After each batch the checkpoint position is
    the last row's key, so a resumed run continues strictly after it: nothing is lost or read
    twice. With a ``cursor`` column loads are incremental: the next run reads only rows whose
    cursor moved past the checkpoint. Columns listed in ``pii`` must be covered by an
    anonymizer before anything is written.
{%- else %}
    Logic: the connector reads the {{ cookiecutter.system_name }} export files matched by
    ``glob`` in the folder ``path`` in a stable order, parses them as ``format`` (CSV, JSON lines or Parquet) and
    turns each chunk of rows into one batch. The checkpoint position names the file and the
    row reached, so a resumed run continues right after it and files already loaded
    completely are not read again. Records are identified by ``primary_key``; columns listed
    in ``pii`` must be covered by an anonymizer before anything is written.
{%- endif %}

    Example::

        import etl_express as etl
        from {{ cookiecutter.package_name }} import {{ cookiecutter.class_name }}
{% if cookiecutter.base == "rest" %}
        source = {{ cookiecutter.class_name }}(base_url="https://api.example.com/v1",
                 {{ " " * cookiecutter.class_name|length }}token=etl.secret("{{ cookiecutter.connector_name | upper }}_TOKEN"))
{%- elif cookiecutter.base == "sql" %}
        source = {{ cookiecutter.class_name }}(url=etl.secret("{{ cookiecutter.connector_name | upper }}_DB_URL"))
{%- else %}
        source = {{ cookiecutter.class_name }}(path="/data/exports", glob="*.jsonl")
{%- endif %}
        etl.Pipeline("{{ cookiecutter.connector_name }}", source).run()
    """

    def __init__(self, config: {{ config }} | None = None, /, **settings: Any):
        self.config = config if config is not None else {{ config }}(**settings)
        c = self.config
{%- if cookiecutter.base == "rest" %}
        super().__init__(
            c.base_url,
            c.path,
            paginator=OffsetPaginator(limit=c.page_size),
            auth=BearerAuth(c.token) if c.token is not None else None,
            retry=RetryPolicy(max_attempts=c.max_attempts),
            primary_key=c.primary_key,
            name="{{ cookiecutter.connector_name }}",
            pii=c.pii,
        )
{%- elif cookiecutter.base == "sql" %}
        super().__init__(
            c.url,
            c.table,
            primary_key=c.primary_key,
            cursor=c.cursor,
            batch_size=c.batch_size,
            name="{{ cookiecutter.connector_name }}",
            pii=c.pii,
        )
{%- else %}
        super().__init__(
            c.path,
            c.glob,
            format=c.format,
            primary_key=c.primary_key,
            name="{{ cookiecutter.connector_name }}",
            pii=c.pii,
        )
{%- endif %}


__all__ = ["{{ config }}", "{{ cookiecutter.class_name }}"]
