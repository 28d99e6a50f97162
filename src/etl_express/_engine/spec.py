"""What the engine needs to know about a pipeline (``Pipeline`` satisfies it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..anonymizers.base import Anonymizer
from ..retry import RetryPolicy
from ..sinks.base import Sink
from ..sources.base import Source
from ..store.ledger import RunLedger
from ..store.state import CheckpointStore
from ..transformers.base import Transformer


class PipelineSpec(Protocol):
    """The configuration of a pipeline as the engine reads it."""

    name: str
    source: Source
    transformers: Sequence[Transformer]
    anonymizers: Sequence[Anonymizer]
    sink: Sink
    pii: Sequence[str]
    max_error_rate: float
    required: Sequence[str]
    check_policies: dict[str, str]
    retry: RetryPolicy
    lease_seconds: float
    progress: bool | None

    @property
    def store(self) -> CheckpointStore: ...

    @property
    def heartbeat_interval(self) -> float: ...

    def check_pii_coverage(self) -> None: ...

    def partitions(self, n: int | None = None) -> list[dict[str, Any]]: ...


def ledger_for(spec: PipelineSpec) -> RunLedger:
    """The run ledger of the pipeline's store."""
    return RunLedger(spec.store, heartbeat_interval=spec.heartbeat_interval)


__all__ = ["PipelineSpec", "ledger_for"]
