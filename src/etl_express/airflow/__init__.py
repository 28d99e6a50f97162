"""Run pipelines on Apache Airflow 3 (``pip install "etl-express[airflow]"``).

:func:`pipeline_dag` turns a pipeline into a daily DAG whose mapped tasks run one partition
each, retried from their checkpoints, followed by a quality gate; :func:`replication_dag`
does the same for a whole :class:`~etl_express.Replication`, one mapped task per table; :class:`PipelineOperator`
puts a pipeline run into a DAG you write yourself; :func:`airflow_secret` reads credentials
from Airflow connections and variables. Pipelines are rebuilt inside each task from a
``"module:factory"`` path or a factory, never pickled across processes.
"""

from __future__ import annotations

try:
    import airflow.sdk  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "etl_express.airflow needs Apache Airflow 3 with its Task SDK: pip install 'etl-express[airflow]'"
    ) from exc

from .dag import pipeline_dag, replication_dag
from .operator import PipelineOperator
from .replication import ReplicationRef, load_replication
from .secrets import AirflowConnectionProvider, AirflowVariableProvider, airflow_secret
from .tasks import (
    LOG_RETENTION,
    PipelineRef,
    load_pipeline,
    plan_partitions,
    purge_logs,
    quality_gate,
    run_partition,
)

__all__ = [
    "LOG_RETENTION",
    "AirflowConnectionProvider",
    "AirflowVariableProvider",
    "PipelineOperator",
    "PipelineRef",
    "ReplicationRef",
    "airflow_secret",
    "load_pipeline",
    "load_replication",
    "pipeline_dag",
    "plan_partitions",
    "purge_logs",
    "quality_gate",
    "replication_dag",
    "run_partition",
]
