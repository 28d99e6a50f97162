"""Sources: the systems data is read from."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "APIKeyAuth": ".rest",
    "BasePaginator": ".rest",
    "BasicAuth": ".rest",
    "BearerAuth": ".rest",
    "FileSource": ".files",
    "HeaderCursorPaginator": ".rest",
    "HeaderLinkPaginator": ".rest",
    "Incremental": ".rest",
    "JSONCursorPaginator": ".rest",
    "JSONLinkPaginator": ".rest",
    "OAuth2ClientCredentials": ".rest",
    "OffsetPaginator": ".rest",
    "OneCODataSource": ".onec",
    "PageNumberPaginator": ".rest",
    "Partition": ".base",
    "RESTSource": ".rest",
    "RateLimit": ".rest",
    "RetryPolicy": ".rest",
    "SQLDatabase": ".sql",
    "SQLSource": ".sql",
    "SinglePagePaginator": ".rest",
    "Source": ".base",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .base import Partition, Source
    from .files import FileSource
    from .onec import OneCODataSource
    from .rest import (
        APIKeyAuth,
        BasePaginator,
        BasicAuth,
        BearerAuth,
        HeaderCursorPaginator,
        HeaderLinkPaginator,
        Incremental,
        JSONCursorPaginator,
        JSONLinkPaginator,
        OAuth2ClientCredentials,
        OffsetPaginator,
        PageNumberPaginator,
        RateLimit,
        RESTSource,
        RetryPolicy,
        SinglePagePaginator,
    )
    from .sql import SQLDatabase, SQLSource

__all__ = [
    "APIKeyAuth",
    "BasePaginator",
    "BasicAuth",
    "BearerAuth",
    "FileSource",
    "HeaderCursorPaginator",
    "HeaderLinkPaginator",
    "Incremental",
    "JSONCursorPaginator",
    "JSONLinkPaginator",
    "OAuth2ClientCredentials",
    "OffsetPaginator",
    "OneCODataSource",
    "PageNumberPaginator",
    "Partition",
    "RESTSource",
    "RateLimit",
    "RetryPolicy",
    "SQLDatabase",
    "SQLSource",
    "SinglePagePaginator",
    "Source",
]
