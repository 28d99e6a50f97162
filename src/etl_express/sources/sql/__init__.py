"""SQL databases through SQLAlchemy (fast ADBC path on PostgreSQL)."""

from .source import SQLSource

__all__ = ["SQLSource"]
