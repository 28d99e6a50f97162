"""etl-express: deliver data from corporate systems to ML teams.

Compose a :class:`Source`, :class:`Transformer` s, :class:`Anonymizer` s and a
:class:`Sink` into a :class:`Pipeline`; runs are exactly-once, resumable and checked.
The library logs nothing until :func:`configure_logging` is called.
"""

from loguru import logger as _logger

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
from .read import read, read_arrow, read_batches, read_pandas
from .result import RunResult
from .secrets import SecretRef, secret
from .sinks.base import Sink
from .sources.base import Source
from .transformers.base import Transformer

_logger.disable("etl_express")

__version__ = "0.1.0"

__all__ = [
    "AnonymizationError",
    "Anonymizer",
    "Batch",
    "CheckResult",
    "ETLConfigError",
    "ETLError",
    "Pipeline",
    "QualityError",
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
    "read",
    "read_arrow",
    "read_batches",
    "read_pandas",
    "secret",
    "status",
]
