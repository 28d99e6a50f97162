"""1C:Enterprise through its standard OData interface (a thin :class:`RESTSource`)."""

from .source import EMPTY_DATE, EMPTY_REF, OneCNormalizer, OneCODataSource

__all__ = ["EMPTY_DATE", "EMPTY_REF", "OneCNormalizer", "OneCODataSource"]
