"""Sources: the systems data is read from."""

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
from .sql import SQLSource

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
    "SQLSource",
    "SinglePagePaginator",
    "Source",
]
