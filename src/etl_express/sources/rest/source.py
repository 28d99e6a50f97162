"""``RESTSource``: any HTTP JSON API, configured by composition."""

from __future__ import annotations

import copy
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pyarrow as pa
from loguru import logger
from pydantic import BaseModel, ConfigDict

from ..._masking import mask_url
from ..._validate import name_list
from ...errors import ETLConfigError, SourceError
from ...format import Batch, canonical_schema, normalize_name
from ..base import Partition, Source
from .client import RateLimit, RESTClient, RetryPolicy, safe_url
from .jsonpath import find_path, select_records
from .paginators import BasePaginator, PageRequest, SinglePagePaginator, response_json

_DONE = "done"


class Incremental(BaseModel):
    """Incremental loading by a cursor field.

    The largest ``cursor_field`` value seen is the checkpoint; the next run sends it as the
    query parameter ``param``, rendered through ``template`` (``"{value}"`` by default; 1C
    uses ``"Date gt datetime'{value}'"`` in ``$filter``). ``initial_value`` is sent on the
    very first run (``None``: no parameter, everything is read).
    """

    model_config = ConfigDict(frozen=True)

    cursor_field: str
    param: str
    initial_value: Any = None
    template: str = "{value}"

    def render(self, value: Any) -> str:
        return self.template.format(value=value)


class RESTSource(Source):
    """Reads an HTTP JSON API page by page.

    Logic: for each partition (one by default) the source builds a request from ``base_url``,
    ``path`` and ``params``, lets the ``paginator`` put the current page on it, sends it
    through one ``httpx.Client`` (with the ``auth`` object, timeouts, a client-side rate limit
    and retries with exponential backoff and jitter on connect errors, timeouts, 429 and 5xx,
    honouring ``Retry-After``), takes the records from the JSON body at ``records_path``,
    and asks the paginator where the next page is. Each page becomes one batch whose position
    holds the next page's state, so a killed run resumes at the page after the last committed
    one. With ``incremental`` the largest cursor value seen is kept; a finished run's position
    carries it, and the next run sends it as a query parameter so only newer records are
    fetched. Pagination ends on an empty page, a missing total or a repeated token; it never
    loops forever. With ``concurrency`` > 1 partitions (e.g. one per parent record) are
    fetched in parallel threads, and their pages are yielded as they arrive.

    Args:
        base_url: the API root, e.g. ``"https://api.example.com/v1"``.
        path: the endpoint below it; ``{name}`` placeholders are filled from the partition.
        params: query parameters sent with every request.
        paginator: a :class:`BasePaginator` (default: a single page).
        auth: any ``httpx.Auth`` — :class:`BearerAuth`, :class:`BasicAuth`,
            :class:`APIKeyAuth`, :class:`OAuth2ClientCredentials`.
        records_path: dotted path of the records list in the body (``"data.items"``);
            ``None``: the body itself, or its ``data``/``items``/``results``/``value`` list.
        primary_key: field(s) identifying a record (the sink upserts on them).
        incremental: an :class:`Incremental` cursor setting.
        retry: a :class:`RetryPolicy`; rate_limit: requests per second or a :class:`RateLimit`.
        timeout: seconds (or an ``httpx.Timeout``).
        partitions: a list of partition dicts, or a callable returning one, e.g.
            ``[{"region": "north"}, {"region": "south"}]``; keys that are placeholders in
            ``path`` fill it, the others become query parameters.
        concurrency: how many partitions are fetched at once.
        record_hook: a function applied to each record (after the cursor is read).
        schema: a declared Arrow schema (``None``: inferred).
        max_pages: a safety stop per partition and run (a warning is logged when hit).
        keys_path: for ``Pipeline(deletes=...)``: an endpoint listing every record's primary
            key (paged like ``path``); target rows whose key it does not list are deleted.
        deleted_path: for ``Pipeline(deletes=...)``: an endpoint listing the records deleted
            at the source (their primary keys), when the API offers one instead.
    """

    #: what an error names to check for an HTTP status (a subclass knows its API's pitfalls)
    status_hints: ClassVar[dict[int, str]] = {}

    def __init__(
        self,
        base_url: str,
        path: str = "",
        *,
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        paginator: BasePaginator | None = None,
        auth: httpx.Auth | None = None,
        records_path: str | None = None,
        primary_key: str | Sequence[str] = (),
        incremental: Incremental | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: float | RateLimit | None = None,
        timeout: float | httpx.Timeout = 30.0,
        partitions: Sequence[Partition] | Callable[[], Sequence[Partition]] | None = None,
        concurrency: int = 1,
        record_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        schema: pa.Schema | None = None,
        name: str | None = None,
        pii: Sequence[str] = (),
        max_pages: int | None = None,
        transport: httpx.BaseTransport | None = None,
        keys_path: str | None = None,
        deleted_path: str | None = None,
    ):
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ETLConfigError(
                f"base_url must be an http(s) URL, got {mask_url(base_url) if base_url else base_url!r}",
                hint='RESTSource("https://api.example.com/v1", "customers")',
            )
        if concurrency < 1:
            raise ETLConfigError(f"concurrency must be >= 1, got {concurrency}")
        if paginator is not None and not isinstance(paginator, BasePaginator):
            raise ETLConfigError(
                f"paginator must be a BasePaginator, got {type(paginator).__name__}",
                hint="e.g. paginator=OffsetPaginator(limit=100)",
            )
        if auth is not None and not isinstance(auth, httpx.Auth):
            raise ETLConfigError(
                f"auth must be an httpx.Auth, got {type(auth).__name__}",
                hint="e.g. auth=BearerAuth(etl.secret('API_TOKEN'))",
            )
        self.base_url, self.path, self.method = str(base_url), path, method.upper()
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.json_body = json_body
        self.paginator = paginator or SinglePagePaginator()
        self.auth = auth
        self.records_path = records_path
        pk = name_list(primary_key, "primary_key", type(self).__name__)
        self.primary_key = [normalize_name(c) for c in pk]
        self.incremental_config = incremental
        self.incremental = incremental is not None
        self.retry = retry or RetryPolicy()
        self.rate_limit = (
            RateLimit(rate_limit) if isinstance(rate_limit, (int, float)) else rate_limit
        )
        self.timeout = timeout
        self._partitions = partitions
        self.concurrency = concurrency
        self.record_hook = record_hook
        self._schema = schema
        self.name = name or (path.strip("/").split("/")[-1].split("{")[0] or "rest")
        self.pii = [normalize_name(c) for c in name_list(pii, "pii", type(self).__name__)]
        self.max_pages = max_pages
        self.transport = transport
        self.keys_path, self.deleted_path = keys_path, deleted_path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(url={safe_url(self._url({}))!r}, paginator={self.paginator!r})"
        )

    # -- configuration ----------------------------------------------------------------

    def partitions(self, n: int | None = None) -> list[Partition]:
        parts = self._partitions() if callable(self._partitions) else self._partitions
        return [dict(p) for p in parts] if parts else [{}]

    def schema(self) -> pa.Schema | None:
        return canonical_schema(self._schema) if self._schema is not None else None

    def _url(self, partition: Partition) -> str:
        path = self.path
        for key, value in partition.items():
            path = path.replace("{" + key + "}", quote(str(value), safe=""))
        if "{" in path:
            raise ETLConfigError(
                f"path {self.path!r} has a placeholder no partition fills",
                hint="give partitions=[{...}] with a value for each {name} in path",
            )
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _query(self, partition: Partition, since: Any) -> dict[str, Any]:
        params = dict(self.params)
        params.update({k: v for k, v in partition.items() if "{" + k + "}" not in self.path})
        if self.incremental_config is not None and since is not None:
            params[self.incremental_config.param] = self.incremental_config.render(since)
        return params

    def client(self) -> RESTClient:
        """A client with this source's auth, retries, rate limit and timeout."""
        return RESTClient(
            auth=self.auth,
            retry=self.retry,
            rate_limit=self.rate_limit,
            timeout=self.timeout,
            transport=self.transport,
            hints=self.status_hints,
        )

    # -- reading ------------------------------------------------------------------------

    def read(self, position: Any = None, partition: Partition | None = None) -> Iterator[Batch]:
        parts = [partition] if partition else self.partitions()
        state = _start_state(position, self.incremental_config)
        starts = {_key(p): state["pages"].get(_key(p)) for p in parts}
        todo = [p for p in parts if starts[_key(p)] != _DONE]
        with self.client() as client:
            if self.concurrency > 1 and len(todo) > 1:
                pages = self._parallel(client, todo, starts, state.get("since"))
            else:
                pages = (
                    item
                    for p in todo
                    for item in self._pages(client, p, starts[_key(p)], state.get("since"))
                )
            for key, records, next_state in pages:
                if self.incremental_config is not None:
                    state["cursor"] = self._max_cursor(state.get("cursor"), records)
                if next_state is None:
                    state["pages"].pop(key, None)  # not resumable: restart this partition
                else:
                    state["pages"][key] = next_state
                state["complete"] = all(state["pages"].get(_key(p)) == _DONE for p in parts)
                if self.record_hook is not None:
                    records = [self.record_hook(r) for r in records]
                yield Batch(records, position=copy.deepcopy(state))

    def _max_cursor(self, current: Any, records: list[dict[str, Any]]) -> Any:
        if self.incremental_config is None:  # not incremental: no cursor to follow
            return current
        field = self.incremental_config.cursor_field
        for record in records:
            value = find_path(record, field)
            if value is None:
                continue
            try:
                if current is None or value > current:
                    current = value
            except TypeError:
                raise SourceError(
                    f"cursor field {field!r} mixes {type(current).__name__} and "
                    f"{type(value).__name__} values",
                    where={"source": self.name},
                    hint="choose a cursor field with one type (a timestamp or a number)",
                ) from None
        return current

    def _pages(
        self, client: RESTClient, partition: Partition, start: Any, since: Any
    ) -> Iterator[tuple[str, list[dict[str, Any]], Any]]:
        """``(partition key, records, next state)`` per page; next state is ``"done"``
        after the last page and ``None`` when the paginator cannot resume."""
        key = _key(partition)
        paginator = self.paginator.fresh()
        if isinstance(start, dict):
            paginator.set_state(start)
        url = self._url(partition)
        request = PageRequest(
            self.method, url, self._query(partition, since), dict(self.headers), self.json_body
        )
        where = safe_url(url)
        pages, last_digest = 0, None
        while True:
            paginator.update_request(request)
            # named by the configured URL and the page: the URL sent may be one the server
            # handed out (a next link), made of a record's values
            response = client.send(request, f"{where} (page {pages + 1})")
            try:
                # 204 No Content: no records (an API's answer to a page past the end)
                body = [] if response.status_code == 204 else response_json(response)
            except ValueError:
                raise SourceError(
                    f"{where} answered HTTP {response.status_code} with a body that is not JSON "
                    f"({response.headers.get('content-type', 'no content type')})",
                    where={"source": self.name, "page": pages + 1},
                    hint="check the URL and the Accept/$format parameter",
                ) from None
            records = select_records(body, self.records_path, where)
            digest = hashlib.sha256(
                json.dumps(records, sort_keys=True, default=str).encode()
            ).digest()
            if records and digest == last_digest:
                raise SourceError(
                    f"{where} returned the same page twice in a row (page {pages + 1}); "
                    "stopping instead of looping forever",
                    where={"source": self.name},
                    hint="check that the paginator's parameters are the ones the API reads",
                )
            last_digest = digest
            paginator.update_state(response, records)
            pages += 1
            if paginator.has_next_page and self.max_pages is not None and pages >= self.max_pages:
                logger.warning("{}: stopping after max_pages={} pages", self.name, self.max_pages)
                paginator.has_next_page = False
            if not paginator.has_next_page:
                yield key, records, _DONE
                return
            if records:
                yield key, records, paginator.get_state()

    def _parallel(
        self, client: RESTClient, parts: list[Partition], starts: dict[str, Any], since: Any
    ) -> Iterator[tuple[str, list[dict[str, Any]], Any]]:
        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2 * self.concurrency)
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def work(part: Partition) -> None:
            try:
                for page in self._pages(client, part, starts[_key(part)], since):
                    if stop.is_set():
                        return
                    put(("page", page))
            except BaseException as exc:  # handed to the reading thread
                put(("error", exc))
            finally:
                put(("end", None))

        pool = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"etl-{self.name}"
        )
        try:
            for part in parts:
                pool.submit(work, part)
            running = len(parts)
            while running:
                kind, item = out.get()
                if kind == "end":
                    running -= 1
                elif kind == "error":
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


def _key(partition: Partition) -> str:
    return json.dumps(partition, sort_keys=True, default=str) if partition else ""


def _start_state(position: Any, incremental: Incremental | None) -> dict[str, Any]:
    """The run's state: resume an unfinished run, or start a new one after a finished one."""
    if isinstance(position, dict) and position.get("complete") is False:
        resumed: dict[str, Any] = copy.deepcopy(position)
        resumed.setdefault("pages", {})
        return resumed
    state: dict[str, Any] = {"pages": {}, "complete": False}
    if incremental is not None:
        since = position.get("cursor") if isinstance(position, dict) else None
        if since is None:
            since = incremental.initial_value
        state["since"] = since
        state["cursor"] = since
    return state


__all__ = ["Incremental", "RESTSource"]
