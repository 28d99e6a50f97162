"""REST building blocks and the generic :class:`RESTSource`.

Paginators, authentication, the retry policy and the rate limit live here, apart from
the ready connectors built on them (:class:`~etl_express.sources.onec.OneCODataSource`).
"""

from .auth import APIKeyAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from .client import RateLimit, RESTClient, RetryPolicy
from .paginators import (
    BasePaginator,
    HeaderCursorPaginator,
    HeaderLinkPaginator,
    JSONCursorPaginator,
    JSONLinkPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
    SinglePagePaginator,
)
from .source import Incremental, RESTSource

__all__ = [
    "APIKeyAuth",
    "BasePaginator",
    "BasicAuth",
    "BearerAuth",
    "HeaderCursorPaginator",
    "HeaderLinkPaginator",
    "Incremental",
    "JSONCursorPaginator",
    "JSONLinkPaginator",
    "OAuth2ClientCredentials",
    "OffsetPaginator",
    "PageNumberPaginator",
    "PageRequest",
    "RESTClient",
    "RESTSource",
    "RateLimit",
    "RetryPolicy",
    "SinglePagePaginator",
]
