"""Sinks: where batches are written. ``PostgresSink`` is the primary store."""

from .base import Sink
from .postgres import PostgresSink

__all__ = ["PostgresSink", "Sink"]
