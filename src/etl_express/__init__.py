"""etl-express: deliver data from corporate systems to ML teams.

Compose a :class:`Source`, :class:`Transformer` s, :class:`Anonymizer` s and a
:class:`Sink` into a :class:`Pipeline`; runs are exactly-once, resumable and checked.
The library logs nothing until :func:`configure_logging` is called.

Importing the package is light: each name below is imported from its module when it is first
used (see ``_lazy.py``).
"""

from typing import TYPE_CHECKING

from loguru import logger as _logger

from ._lazy import lazy_exports

_logger.disable("etl_express")

__version__ = "0.1.0"

_EXPORTS = {
    "AnonymizationError": ".errors",
    "Anonymizer": ".anonymizers.base",
    "Batch": ".format",
    "CheckResult": ".quality",
    "ETLConfigError": ".errors",
    "ETLError": ".errors",
    "Pipeline": ".pipeline",
    "QualityError": ".errors",
    "Replication": ".replication",
    "ReplicationResult": ".replication",
    "RunLockedError": ".errors",
    "RunResult": ".result",
    "SecretRef": ".secrets",
    "Sink": ".sinks.base",
    "SinkError": ".errors",
    "Source": ".sources.base",
    "SourceError": ".errors",
    "Transformer": ".transformers.base",
    "configure_logging": ".logs",
    "forget": "._forget",
    "read": "._read",
    "read_arrow": "._read",
    "read_batches": "._read",
    "read_pandas": "._read",
    "secret": ".secrets",
    "status": "._status",
    # the public subpackages, so that ``etl.sources.SQLSource`` works after ``import etl_express``
    "airflow": ".airflow",
    "anonymizers": ".anonymizers",
    "sinks": ".sinks",
    "sources": ".sources",
    "testing": ".testing",
    "transformers": ".transformers",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._forget import forget
    from ._read import read, read_arrow, read_batches, read_pandas
    from ._status import status
    from .anonymizers.base import Anonymizer
    from .errors import (
        AnonymizationError,
        ETLConfigError,
        ETLError,
        QualityError,
        RunLockedError,
        SinkError,
        SourceError,
    )
    from .format import Batch
    from .logs import configure_logging
    from .pipeline import Pipeline
    from .quality import CheckResult
    from .replication import Replication, ReplicationResult
    from .result import RunResult
    from .secrets import SecretRef, secret
    from .sinks.base import Sink
    from .sources.base import Source
    from .transformers.base import Transformer

__all__ = [
    "AnonymizationError",
    "Anonymizer",
    "Batch",
    "CheckResult",
    "ETLConfigError",
    "ETLError",
    "Pipeline",
    "QualityError",
    "Replication",
    "ReplicationResult",
    "RunLockedError",
    "RunResult",
    "SecretRef",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "Transformer",
    "__version__",
    "configure_logging",
    "forget",
    "read",
    "read_arrow",
    "read_batches",
    "read_pandas",
    "secret",
    "status",
]
