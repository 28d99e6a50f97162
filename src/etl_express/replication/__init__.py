"""``Replication``: every table of a database into PostgreSQL, one ordinary ``Pipeline`` each.

``core`` holds the public class and its run, ``plan`` resolves the configuration against one
catalog read into per-table pipelines, ``result`` is what a run returns.
"""

from .core import Replication
from .result import ReplicationResult

__all__ = ["Replication", "ReplicationResult"]
