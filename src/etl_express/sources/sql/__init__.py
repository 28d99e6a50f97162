"""SQL databases through SQLAlchemy (binary COPY on PostgreSQL): one table or query
(``SQLSource``), or every table of a schema (``SQLDatabase``)."""

from .database import SQLDatabase
from .discovery import ColumnInfo, TableInfo
from .query import ReadPlan
from .source import SQLSource

__all__ = ["ColumnInfo", "ReadPlan", "SQLDatabase", "SQLSource", "TableInfo"]
