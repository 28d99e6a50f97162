"""Files from a folder: CSV, JSON Lines and Parquet, incremental by file."""

from .readers import detect_delimiter, detect_encoding
from .source import FileSource

__all__ = ["FileSource", "detect_delimiter", "detect_encoding"]
