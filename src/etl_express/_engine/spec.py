"""What the engine needs to know about a pipeline (``Pipeline`` satisfies it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..anonymizers.base import Anonymizer
from ..quality import Policy
from ..retry import RetryPolicy
from ..sinks.base import Sink
from ..sources.base import Source
from ..store.checkpoints import CheckpointStore
from ..store.ledger import RunLedger
from ..transformers.base import Transformer


class PipelineSpec(Protocol):
    """The configuration of a pipeline as the engine reads it."""

    # read-only members: Pipeline's own attributes satisfy them
    @property
    def name(self) -> str: ...

    @property
    def source(self) -> Source: ...

    @property
    def transformers(self) -> Sequence[Transformer]: ...

    @property
    def anonymizers(self) -> Sequence[Anonymizer]: ...

    @property
    def sink(self) -> Sink: ...

    @property
    def pii(self) -> Sequence[str]: ...

    @property
    def max_error_rate(self) -> float: ...

    @property
    def required(self) -> Sequence[str]: ...

    @property
    def check_policies(self) -> Mapping[str, Policy]: ...

    @property
    def retry(self) -> RetryPolicy: ...

    @property
    def lease_seconds(self) -> float: ...

    @property
    def progress(self) -> bool | None: ...

    @property
    def deletes(self) -> str | None: ...

    @property
    def reconcile_every(self) -> dt.timedelta | None: ...

    @property
    def freshness(self) -> dt.timedelta | None: ...

    @property
    def store(self) -> CheckpointStore: ...

    @property
    def heartbeat_interval(self) -> float: ...

    def check_pii_coverage(self) -> None: ...

    def partitions(self, n: int | None = None) -> list[dict[str, Any]]: ...


def ledger_for(spec: PipelineSpec) -> RunLedger:
    """The run ledger of the pipeline's store."""
    return RunLedger(
        spec.store, lease_seconds=spec.lease_seconds, heartbeat_interval=spec.heartbeat_interval
    )


__all__ = ["PipelineSpec", "ledger_for"]
