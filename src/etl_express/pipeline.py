"""``Pipeline``: wires a source, transformers, anonymizers and a sink, and owns runs,
checkpoints, partitions, quarantine and quality checks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ._durations import DurationLike, parse_duration
from ._engine.declarations import declare
from ._engine.parallel import run_partitions
from ._engine.replay import ReplayResult, replay
from ._engine.run import run_partition
from ._validate import name_list
from .anonymizers.base import Anonymizer
from .anonymizers.detection import DEFAULT_POLICY, check_policy
from .anonymizers.guard import check_partitions, check_pipeline, plan_for
from .errors import ETLConfigError
from .format import normalize_name
from .quality import resolve_policies
from .reconcile import check_options, deletion_mark_steps, forget_reconciliation
from .result import RunResult
from .retry import RetryPolicy
from .sinks.base import Sink
from .sources.base import Partition, Source
from .store.checkpoints import CheckpointStore
from .store.database import resolve_url
from .store.schema import partition_key
from .transformers.base import Transformer

DEFAULT_MAX_ERROR_RATE = 0.0001


class Pipeline:
    """Moves data from a source through transformers and anonymizers into a sink.

    Each batch's rows and its checkpoint commit in one PostgreSQL transaction, so a run
    killed at any point and started again ends with exactly the rows of an uninterrupted
    run. Example::

        pipeline = etl.Pipeline(
            name="crm_customers",
            source=SQLSource(url=etl.secret("CRM_DB_URL"), table="customers",
                             primary_key="id", cursor="updated_at"),
            anonymizers=[Pseudonymize(["email"], key=etl.secret("ANON_KEY"))],
            sink=PostgresSink(table="crm.customers"),
        )
        result = pipeline.run()

    Args:
        name: unique pipeline name; checkpoints and runs are keyed by it.
        source: where rows come from.
        transformers: applied in order to each batch.
        anonymizers: applied in order after the transformers, before anything is written.
        sink: where rows go (default ``PostgresSink(table=name)``).
        pii: extra columns tagged as personal data (besides ``source.pii``); the run refuses
            to start unless an anonymizer covers each of them and every column derived from
            them (column lineage, see docs/anonymization.md).
        not_pii: columns declared not to be personal data, each with the reason, e.g.
            ``{"email_domain": "the domain only"}``: a column derived from personal data is
            personal unless declared here. The declarations are logged with each run and
            recorded in its quality checks (``not_pii``).
        max_error_rate: the largest share of quarantined rows a run may have and succeed
            (default 0.0001, one row in 10,000).
        required: columns that must never be null or empty (the ``required_columns`` check).
        checks: policy per quality check, ``"fail"``, ``"warn"`` or ``"ignore"``, e.g.
            ``{"row_count_range": "fail"}``; see :mod:`etl_express.quality` for the names.
        retry: how transient errors are retried (default: 5 times, 0.5 s doubling).
        lease_seconds: a run whose heartbeat is older than this is taken to be dead and is
            taken over by the next run (a dead owner on the same host is detected at once).
        progress: show a progress bar (``None``: only when output is a terminal).
        deletes: ``"soft"`` or ``"hard"``: after the incremental pass, reconcile the source's
            keys with the target's (read-only range checksums, see :mod:`etl_express.reconcile`)
            and mark (``_etl_deleted_at``) or delete rows gone from the source; ``None``: never.
        reconcile_every: space the reconciliations out (``"24h"``, ``"1h30m"``, a number of
            seconds or a timedelta; ``0`` or ``None``: every run). An interrupted
            reconciliation always resumes on the next run.
        freshness: how old the newest successful load may be, e.g. ``"26h"`` (or a
            ``timedelta``); the basis of ``etl-express status`` and availability figures.
        detect_pii: what to do when an untagged text or JSON column looks like personal data
            (sampled before its first write, see :mod:`etl_express.anonymizers.detection`):
            ``"refuse"`` (default) stops the run before anything is written, naming the
            column and the kind; ``"warn"`` logs the finding and loads the column; ``"off"``
            does not sample.
    """

    def __init__(
        self,
        name: str,
        source: Source,
        *,
        transformers: Sequence[Transformer] = (),
        anonymizers: Sequence[Anonymizer] = (),
        sink: Sink | None = None,
        pii: Sequence[str] = (),
        not_pii: Mapping[str, str] | None = None,
        max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
        required: Sequence[str] = (),
        checks: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        progress: bool | None = None,
        deletes: str | None = None,
        reconcile_every: DurationLike | None = None,
        freshness: str | dt.timedelta | None = None,
        detect_pii: str = DEFAULT_POLICY,
    ):
        if not name or not isinstance(name, str):
            raise ETLConfigError(
                "Pipeline needs a non-empty name", hint='Pipeline(name="crm_customers", ...)'
            )
        if not isinstance(source, Source):
            raise ETLConfigError(
                f"source must be a Source, got {type(source).__name__}", where={"pipeline": name}
            )
        if not 0 <= max_error_rate <= 1:
            raise ETLConfigError(
                f"max_error_rate must be between 0 and 1, got {max_error_rate}",
                where={"pipeline": name},
            )
        if lease_seconds <= 0:
            raise ETLConfigError(
                f"lease_seconds must be positive, got {lease_seconds}", where={"pipeline": name}
            )
        if sink is None:
            from .sinks.postgres import PostgresSink

            sink = PostgresSink(table=normalize_name(name))
        self.name = name
        self.source = source
        self.transformers = list(transformers)
        self.anonymizers = list(anonymizers)
        self.sink = sink
        self.pii = sorted(
            {normalize_name(c) for c in (*source.pii, *name_list(pii, "pii", "Pipeline"))}
        )
        self.not_pii = _declarations(not_pii, name)
        self.max_error_rate = max_error_rate
        self.required = [normalize_name(c) for c in name_list(required, "required", "Pipeline")]
        self.check_policies = resolve_policies(checks)
        self.retry = retry or RetryPolicy()
        self.lease_seconds = float(lease_seconds)
        self.progress = progress
        self.deletes = deletes
        self.reconcile_every = check_options(name, deletes, reconcile_every)
        if deletes is not None:
            self.transformers.extend(deletion_mark_steps(source))
        self.freshness = parse_duration(freshness, where={"pipeline": name})
        self.detect_pii = check_policy(detect_pii, where={"pipeline": name})
        self._store: CheckpointStore | None = None

    def __getstate__(self) -> dict[str, Any]:
        # the store holds an engine (connections); worker processes open their own
        state = dict(self.__dict__)
        state["_store"] = None
        return state

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between lease refreshes: a quarter of the lease, at most 30 s."""
        return min(self.lease_seconds / 4, 30.0)

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, source={self.source!r}, sink={self.sink!r})"

    # -- state -------------------------------------------------------------------------

    @property
    def store(self) -> CheckpointStore:
        """The checkpoint store in the sink's PostgreSQL database."""
        if self._store is None:
            self._store = CheckpointStore(resolve_url(self.sink.state_url))
            self._store.ensure_schema()
            declare(self._store, self)  # freshness and tagged columns, for status and the UI
        return self._store

    def reset(self, partition: Partition | None = None) -> None:
        """Forget the checkpoints: the next run starts from the beginning."""
        self.store.reset(self.name, None if partition is None else partition_key(partition))
        if self.deletes is not None:
            forget_reconciliation(
                self.store, self.name, None if partition is None else partition_key(partition)
            )

    def partitions(self, n: int | None = None) -> list[Partition]:
        """The source split into about ``n`` JSON-serializable partition specs.

        Each spec can be run with ``run(partition=spec)`` (in any process or machine, e.g.
        one Airflow mapped task each); each keeps its own checkpoint.
        """
        specs = list(self.source.partitions(n))
        check_partitions(self, specs)  # bounds over a personal column would be its values
        try:
            json.dumps(specs)
        except TypeError as exc:
            raise ETLConfigError(
                f"{type(self.source).__name__}.partitions returned specs that are not "
                f"JSON-serializable ({exc})",
                where={"pipeline": self.name},
                hint="encode values as str/int/float/bool/None, lists and dicts",
            ) from None
        return specs

    def replay_quarantine(
        self, *, ids: Sequence[int] | None = None, run_id: str | None = None
    ) -> ReplayResult:
        """Re-submit quarantined records to the sink once their cause is fixed: records
        refused by the sink are written as stored, records that could not be converted go
        through the transformers first; what lands is marked replayed, what is still
        refused keeps its new reason."""
        self.check_pii_coverage()
        return replay(self, ids=ids, run_id=run_id)

    def check_pii_coverage(self) -> None:
        """Refuse to run when personal data could get through — an unknown configured
        column, a personal column (tagged, anonymized, or derived from one) reaching the
        sink uncovered, personal data in a position: see
        :func:`etl_express.anonymizers.guard.check_pipeline`."""
        check_pipeline(self)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        partition: Partition | None = None,
        *,
        reset: bool = False,
        workers: int | None = None,
        partitions: Sequence[Partition] | None = None,
        repartition: bool = False,
    ) -> RunResult:
        """Run one partition (``None``: the whole source) from its last checkpoint.

        With ``workers=n`` (or explicit ``partitions``) the source's partitions run in ``n``
        parallel processes instead, each from its own checkpoint, and the combined result
        lists them in ``partitions``. The partition plan is stored, so a restarted parallel
        run resumes the same partitions; ``repartition=True`` computes a new plan (whose
        partitions start from the beginning).

        Raises an :class:`~etl_express.errors.ETLError` (with the :class:`RunResult` as
        ``.result``) when the run fails; everything committed before the failure stays
        committed and the next run resumes from there.
        """
        check_partitions(self, [partition, *(partitions or ())])
        if workers is not None or partitions is not None:
            if partition is not None:
                raise ETLConfigError(
                    "pass either partition= or workers=/partitions=, not both",
                    where={"pipeline": self.name},
                )
            return run_partitions(
                self,
                workers=workers or 1,
                partitions=partitions,
                reset=reset,
                repartition=repartition,
            )
        return run_partition(self, partition, reset=reset)

    def anonymize_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """One raw record (as read) in the form quarantine stores it: each personal column
        anonymized as this pipeline anonymizes the column it becomes, or dropped (see
        :meth:`etl_express._privacy.PrivacyPlan.protect_record`)."""
        plan = plan_for(self)
        if not plan.flow.complete or any(normalize_name(k) not in plan.flow.source for k in record):
            columns = [*plan.source_columns, *(normalize_name(k) for k in record)]
            schema = pa.schema([pa.field(c, pa.string()) for c in dict.fromkeys(columns)])
            plan = plan_for(self, schema)
        return plan.protect_record(record, 0)


def _declarations(not_pii: Mapping[str, str] | None, pipeline: str) -> dict[str, str]:
    """``not_pii`` by canonical name; each needs a reason (it is recorded with every run)."""
    if not_pii is None:
        return {}
    if not isinstance(not_pii, Mapping):
        raise ETLConfigError(
            f"not_pii must be a mapping of column to reason, got {type(not_pii).__name__}",
            where={"pipeline": pipeline},
            hint='not_pii={"email_domain": "the domain only"}',
        )
    out: dict[str, str] = {}
    for column, reason in not_pii.items():
        if not isinstance(column, str) or not column.strip():
            raise ETLConfigError(
                f"not_pii: a column name must be a non-empty string, got {column!r}",
                where={"pipeline": pipeline},
            )
        if not isinstance(reason, str) or not reason.strip():
            raise ETLConfigError(
                f"not_pii: column {column!r} needs a reason why it is not personal data",
                where={"pipeline": pipeline},
                hint=f'not_pii={{"{column}": "the domain only"}}',
            )
        out[normalize_name(column)] = reason.strip()
    return out


__all__ = ["DEFAULT_MAX_ERROR_RATE", "Pipeline"]
