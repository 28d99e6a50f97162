"""TPC-H: the official schema, a data generator following the specification's rules (run
inside PostgreSQL, deterministic), and the 22 queries with their validation parameters."""

from .generate import TABLES, generate
from .queries import NAMED_OUTPUT, QUERIES

__all__ = ["NAMED_OUTPUT", "QUERIES", "TABLES", "generate"]
