"""``OneCODataSource``: 1C:Enterprise through its standard OData REST interface."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import pyarrow as pa

from ...errors import ETLConfigError
from ...format import canonical_schema
from ...secrets import SecretLike
from ..rest import BasicAuth, Incremental, OffsetPaginator, RateLimit, RESTSource, RetryPolicy

ODATA_PATH = "odata/standard.odata"
EMPTY_DATE = "0001-01-01T00:00:00"
EMPTY_REF = "00000000-0000-0000-0000-000000000000"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ENTITY = re.compile(
    r"^(Catalog|Document|InformationRegister|AccumulationRegister|AccountingRegister|"
    r"ChartOfAccounts|ChartOfCharacteristicTypes|ChartOfCalculationTypes|"
    r"ExchangePlan|BusinessProcess|Task|Constant|DocumentJournal|CalculationRegister)_\w+"
)


class OneCNormalizer:
    """Turns a 1C OData record into the common format.

    * ``0001-01-01T00:00:00`` (1C's empty date) becomes null, any other 1C date becomes a
      UTC timestamp (1C dates have no zone: they are read in ``timezone``);
    * the empty reference ``00000000-...`` becomes null, other GUIDs are lower-cased;
    * annotations (``Контрагент@navigationLinkUrl``, ``odata.*``) are dropped;
    * tabular sections (lists of rows) are normalized the same way and kept as lists.
    """

    def __init__(self, timezone: str = "UTC"):
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ETLConfigError(
                f"unknown time zone {timezone!r}", hint='e.g. timezone="Europe/Moscow"'
            ) from None

    def value(self, value: object) -> object:
        if isinstance(value, str):
            if _DATE.match(value):
                if value == EMPTY_DATE:
                    return None
                return (
                    dt.datetime.fromisoformat(value)
                    .replace(tzinfo=self.zone)
                    .astimezone(dt.timezone.utc)
                )
            if _GUID.match(value):
                return None if value == EMPTY_REF else value.lower()
            return value
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return self(value)
        return value

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            k: self.value(v)
            for k, v in record.items()
            if "@" not in k and not k.startswith("odata.")
        }


class OneCODataSource(RESTSource):
    """Reads a 1C:Enterprise catalog, document or register through OData.

    Logic: 1C publishes every configuration object at
    ``<base_url>/odata/standard.odata/<Entity>`` (``Catalog_Контрагенты``,
    ``Document_ЗаказКлиента``...). The source asks for JSON (``$format=json``), pages with
    ``$top``/``$skip`` in a stable ``$orderby`` (``Ref_Key`` by default), narrows columns with
    ``$select`` and authenticates with the given ``httpx.Auth`` (usually basic auth from
    secrets). The records are under ``value``; each is normalized: 1C's empty date
    ``0001-01-01T00:00:00`` and the empty reference become null, dates become UTC
    timestamps, GUIDs are lower-cased, navigation annotations are dropped. With ``date_field`` (``Date`` for documents) the load is
    incremental: the newest date seen is the checkpoint and the next run adds
    ``$filter=Date gt datetime'...'``, so only newer objects are fetched. Everything else —
    retries, rate limit, resuming at the next page — is :class:`RESTSource`'s.

    Args:
        base_url: the infobase publication, e.g. ``"http://1c.local/trade"``.
        entity: the OData entity set, e.g. ``"Catalog_Контрагенты"``.
        auth: any ``httpx.Auth`` — ``BasicAuth(etl.secret("ONEC_USER"),
            etl.secret("ONEC_PASSWORD"))`` from ``etl_express.sources.rest``, a bearer token or
            ``httpx.DigestAuth``; 1C's OData publication usually takes basic auth.
        username: with ``password``, a shortcut for ``auth=BasicAuth(username, password)``.
        password: basic-auth password (``etl.secret(...)``), with ``username``.
        page_size: ``$top`` per request.
        select: fields to read (``$select``); ``None``: all.
        filter: an extra OData ``$filter`` expression (``"DeletionMark eq false"``).
        date_field: the date field for incremental loads.
        initial_date: the first lower bound of an incremental load.
        timezone: the zone 1C dates are in (the server's, e.g. ``"Europe/Moscow"``).
        odata_version: 3 (1C's default) or 4 — only the date literal in ``$filter`` differs.
    """

    #: 1C answers 400 (or 404) for an entity set that is not published, and 400 for a field
    #: it does not know in $select, $filter or $orderby
    status_hints: ClassVar[dict[int, str]] = {
        400: "check entity= (the OData name, e.g. Catalog_Контрагенты), that the object is in "
        "the infobase's OData composition (1C: Administration > OData settings, "
        "\u00abУстановить состав стандартного интерфейса OData\u00bb), and the fields in "
        "select=, filter=, order_by= and date_field= (registers have no Ref_Key: give order_by=)",
        404: "check base_url (the infobase publication, e.g. http://1c.local/trade) and entity=, "
        "and that the object is in the infobase's OData composition",
    }

    def __init__(
        self,
        base_url: str,
        entity: str,
        *,
        auth: httpx.Auth | None = None,
        username: SecretLike | None = None,
        password: SecretLike | None = None,
        page_size: int = 1000,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str = "Ref_Key",
        date_field: str | None = None,
        initial_date: str | dt.datetime | None = None,
        timezone: str = "UTC",
        odata_version: Literal[3, 4] = 3,
        primary_key: str | Sequence[str] = "Ref_Key",
        name: str | None = None,
        pii: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        rate_limit: float | RateLimit | None = None,
        timeout: float | httpx.Timeout = 60.0,
    ):
        if not _ENTITY.match(entity):
            raise ETLConfigError(
                f"entity {entity!r} is not a 1C OData entity set",
                hint='use the OData name, e.g. "Catalog_Контрагенты" or "Document_Заказ"',
            )
        if auth is not None and (username is not None or password is not None):
            raise ETLConfigError(
                "OneCODataSource takes auth= or username= and password=, not both",
                hint="pass auth=BasicAuth(etl.secret(...), etl.secret(...)) alone",
            )
        if auth is None:
            if username is None or password is None:
                raise ETLConfigError(
                    "OneCODataSource needs credentials: auth= (an httpx.Auth) or username= "
                    "and password=",
                    hint='e.g. auth=BasicAuth(etl.secret("ONEC_USER"), etl.secret("ONEC_PASSWORD"))',
                )
            auth = BasicAuth(username, password)
        elif not isinstance(auth, httpx.Auth):
            raise TypeError(
                f"OneCODataSource(auth=...) takes an httpx.Auth, not {type(auth).__name__}"
            )
        if odata_version not in (3, 4):
            raise ETLConfigError(f"odata_version must be 3 or 4, got {odata_version!r}")
        params: dict[str, Any] = {"$format": "json", "$orderby": order_by}
        if select:
            fields = list(select)
            if date_field and date_field not in fields:
                fields.append(date_field)
            params["$select"] = ",".join(fields)
        if filter:
            params["$filter"] = filter
        incremental = None
        if date_field:
            literal = "datetime'{value}'" if odata_version == 3 else "{value}Z"
            condition = f"{date_field} gt {literal}"
            if filter:
                condition = (
                    "(" + filter.replace("{", "{{").replace("}", "}}") + ") and " + condition
                )
            if isinstance(initial_date, dt.datetime):
                initial_date = initial_date.strftime("%Y-%m-%dT%H:%M:%S")
            incremental = Incremental(
                cursor_field=date_field,
                param="$filter",
                template=condition,
                initial_value=initial_date,
            )
        root = base_url.rstrip("/")
        if not root.endswith(ODATA_PATH):
            root = f"{root}/{ODATA_PATH}"
        super().__init__(
            root,
            entity,
            params=params,
            headers={"Accept": "application/json"},
            paginator=OffsetPaginator(
                limit=page_size, offset_param="$skip", limit_param="$top", stop_on_short_page=True
            ),
            auth=auth,
            records_path="value",
            primary_key=primary_key,
            incremental=incremental,
            retry=retry,
            rate_limit=rate_limit,
            timeout=timeout,
            record_hook=OneCNormalizer(timezone),
            name=name or entity,
            pii=pii,
        )
        self.entity = entity
        self._selected = (
            [*select, *([date_field] if date_field and date_field not in select else [])]
            if select
            else None
        )

    def discover_schema(self) -> pa.Schema | None:
        """With ``select=`` the fields are known before reading (1C returns exactly those):
        the pipeline checks every configured column against them up front."""
        if not self._selected:
            return None
        return canonical_schema(pa.schema([pa.field(f, pa.string()) for f in self._selected]))


__all__ = ["EMPTY_DATE", "EMPTY_REF", "OneCNormalizer", "OneCODataSource"]
