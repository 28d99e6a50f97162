"""Sinks: where batches are written. ``PostgresSink`` is the primary store;
``JSONLSink`` and ``ParquetSink`` export snapshots for ML tooling."""

from .base import Sink
from .files import read_manifest
from .jsonl import JSONLSink
from .parquet import ParquetSink
from .postgres import PostgresSink

__all__ = ["JSONLSink", "ParquetSink", "PostgresSink", "Sink", "read_manifest"]
