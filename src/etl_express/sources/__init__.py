"""Sources: the systems data is read from."""

from .base import Partition, Source
from .sql import SQLSource

__all__ = ["Partition", "SQLSource", "Source"]
