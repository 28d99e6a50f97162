"""``pipeline_dag``: a pipeline as a daily Airflow DAG with one mapped task per partition;
``replication_dag``: a whole replication, one mapped task per table (and per partition of the
big ones)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from ..errors import ETLConfigError
from ..pipeline import Pipeline
from ..replication import Replication
from ..sources.base import Partition
from ..store.schema import partition_key
from .replication import (
    ReplicationRef,
    plan_tables,
    purge_replication_logs,
    replication_gate,
    run_table,
    unit_label,
)
from .tasks import (
    LOG_RETENTION,
    PipelineRef,
    describe_ref,
    plan_partitions,
    purge_logs,
    quality_gate,
    run_partition,
)

DEFAULT_START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def pipeline_dag(
    pipeline: PipelineRef,
    *,
    dag_id: str | None = None,
    schedule: Any = "@daily",
    partitions: int | None = None,
    retries: int = 3,
    retry_delay: dt.timedelta = dt.timedelta(minutes=1),
    max_active_partitions: int | None = None,
    log_retention: dt.timedelta = LOG_RETENTION,
    start_date: dt.datetime = DEFAULT_START,
    catchup: bool = False,
    tags: Sequence[str] = ("etl-express",),
    default_args: dict[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build an Airflow DAG that runs ``pipeline`` on a schedule, one mapped task a partition.

    The DAG has four tasks:

    * ``plan_partitions`` — ``pipeline.partitions(partitions)``: JSON partition specs (XCom);
    * ``run_partition`` — mapped with ``.expand()`` over the specs, one task instance per
      partition, each ``pipeline.run(partition=spec)`` from its own checkpoint. A failed
      instance is retried after ``retry_delay`` and resumes from the last committed batch;
    * ``quality_gate`` — fails the DAG run if any partition run failed or any check
      recorded for this DAG run's runs in ``etl_express.quality_checks`` failed;
    * ``purge_logs`` — deletes the pipeline's run-log lines older than ``log_retention``.

    ``pipeline`` is rebuilt inside every task, never pickled: pass ``"module:factory"``, a
    factory function, or a ``Pipeline`` built by the DAG file (cheap: it connects to nothing
    until it runs). Credentials come from ``etl.secret`` references or Airflow connections
    (:func:`~etl_express.airflow.airflow_secret`), resolved only inside the tasks. Example::

        from etl_express.airflow import pipeline_dag

        dag = pipeline_dag("my_project.pipelines:crm_customers", dag_id="crm_customers",
                           partitions=8)

    ``max_active_runs`` defaults to 1 (two runs of one pipeline would wait on each other's
    partition leases); any other ``DAG`` argument can be passed as a keyword.
    """
    if dag_id is None:
        if not isinstance(pipeline, Pipeline):
            raise ETLConfigError(
                f"pipeline_dag needs dag_id= for the factory {describe_ref(pipeline)}",
                hint='pipeline_dag("pkg.module:factory", dag_id="crm_customers_daily")',
            )
        dag_id = pipeline.name
    if partitions is not None and partitions < 1:
        raise ETLConfigError(f"partitions must be >= 1, got {partitions}", where={"dag": dag_id})
    doc = (
        f"Runs etl-express {describe_ref(pipeline)}: plan partitions, run each "
        "(mapped, retried from its checkpoint), quality gate, log purge."
    )
    with _dag(
        dag_id,
        schedule,
        start_date,
        catchup,
        tags,
        retries,
        retry_delay,
        default_args,
        doc,
        dag_kwargs,
    ) as dag:

        @task(task_id="plan_partitions")
        def plan() -> list[Partition]:
            return plan_partitions(pipeline, partitions)

        @task(
            task_id="run_partition",
            max_active_tis_per_dagrun=max_active_partitions,
            map_index_template="{{ etl_partition }}",
        )
        def run(partition: Partition) -> dict[str, Any]:
            get_current_context()["etl_partition"] = partition_key(partition) or "all"  # type: ignore[typeddict-unknown-key]
            return run_partition(pipeline, partition)

        @task(task_id="quality_gate")
        def gate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
            # one slice request: iterating Airflow's lazy XCom sequence probes one item past
            # its end, which Airflow logs as an ERROR line in every successful DAG run
            return quality_gate(pipeline, results[:])

        @task(task_id="purge_logs")
        def purge() -> int:
            # independent of the partitions: a leaf of its own, so it never masks a failure
            return purge_logs(pipeline, log_retention)

        gate(run.expand(partition=plan()))  # type: ignore[arg-type]  # XComArg resolves at run time
        purge()
    return dag


def replication_dag(
    replication: ReplicationRef,
    *,
    dag_id: str | None = None,
    schedule: Any = "@daily",
    retries: int = 3,
    retry_delay: dt.timedelta = dt.timedelta(minutes=1),
    max_active_tables: int | None = None,
    log_retention: dt.timedelta = LOG_RETENTION,
    start_date: dt.datetime = DEFAULT_START,
    catchup: bool = False,
    tags: Sequence[str] = ("etl-express",),
    default_args: dict[str, Any] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build an Airflow DAG that runs a :class:`~etl_express.Replication`, its tables mapped
    across the workers.

    * ``plan_tables`` — one catalog read: every configured name and every table's
      personal-data coverage checked, new tables logged, and the units (XCom): one per
      table, one per partition of the tables given ``partitions=`` (their stored plan);
    * ``run_table`` — mapped with ``.expand()`` over the units (labelled by table and
      range), each the table's ordinary pipeline run from its own checkpoint; a failed
      instance is retried after ``retry_delay`` and resumes from the last committed batch;
    * ``quality_gate`` — fails the DAG run if any unit failed or any recorded check did;
    * ``purge_logs`` — deletes the tables' run-log lines older than ``log_retention``.

    A table added at the source (matching ``include``) is picked up by the next DAG run.
    ``replication`` is rebuilt inside every task: pass ``"module:factory"``, a factory, or a
    ``Replication`` built by the DAG file (it connects to nothing until a task runs).
    Example::

        from etl_express.airflow import replication_dag

        dag = replication_dag("my_project.replications:crm", dag_id="crm_daily",
                              max_active_tables=8)
    """
    if dag_id is None:
        if not isinstance(replication, Replication):
            raise ETLConfigError(
                f"replication_dag needs dag_id= for the factory {replication!r}",
                hint='replication_dag("pkg.module:factory", dag_id="crm_daily")',
            )
        dag_id = replication.name
    doc = (
        "Runs an etl-express replication: plan the tables, run each (mapped, retried from "
        "its checkpoint), quality gate, log purge."
    )
    with _dag(
        dag_id,
        schedule,
        start_date,
        catchup,
        tags,
        retries,
        retry_delay,
        default_args,
        doc,
        dag_kwargs,
    ) as dag:

        @task(task_id="plan_tables")
        def plan() -> list[dict[str, Any]]:
            return plan_tables(replication)

        @task(
            task_id="run_table",
            max_active_tis_per_dagrun=max_active_tables,
            map_index_template="{{ etl_unit }}",
        )
        def run(unit: dict[str, Any]) -> dict[str, Any]:
            get_current_context()["etl_unit"] = unit_label(unit)  # type: ignore[typeddict-unknown-key]
            return run_table(replication, unit)

        @task(task_id="quality_gate")
        def gate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
            return replication_gate(replication, results[:])  # one slice: see pipeline_dag

        @task(task_id="purge_logs")
        def purge() -> int:
            return purge_replication_logs(replication, log_retention)

        gate(run.expand(unit=plan()))  # type: ignore[arg-type]
        purge()
    return dag


__all__ = ["pipeline_dag", "replication_dag"]


def _dag(
    dag_id: str,
    schedule: Any,
    start_date: dt.datetime,
    catchup: bool,
    tags: Sequence[str],
    retries: int,
    retry_delay: dt.timedelta,
    default_args: Mapping[str, Any] | None,
    doc: str,
    dag_kwargs: dict[str, Any],
) -> DAG:
    """The DAG both helpers build: one active run at a time unless told otherwise (two runs
    would wait on each other's leases), tasks retried from their checkpoint."""
    args = {"retries": retries, "retry_delay": retry_delay, **(default_args or {})}
    dag_kwargs.setdefault("max_active_runs", 1)
    dag_kwargs.setdefault("doc_md", doc)
    return DAG(
        dag_id,
        schedule=schedule,
        start_date=start_date,
        catchup=catchup,
        tags=list(tags),
        default_args=args,
        **dag_kwargs,
    )
