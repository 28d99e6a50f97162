"""Sinks: where batches are written. ``PostgresSink`` is the primary store;
``JSONLSink`` and ``ParquetSink`` export snapshots for ML tooling."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "JSONLSink": ".jsonl",
    "ParquetSink": ".parquet",
    "PostgresSink": ".postgres",
    "Sink": ".base",
    "read_manifest": ".files",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .base import Sink
    from .files import read_manifest
    from .jsonl import JSONLSink
    from .parquet import ParquetSink
    from .postgres import PostgresSink

__all__ = ["JSONLSink", "ParquetSink", "PostgresSink", "Sink", "read_manifest"]
