"""``PipelineOperator``: a pipeline run as a task in a DAG you write yourself."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context

from ..sources.base import Partition
from .tasks import PipelineRef, run_partition


class PipelineOperator(BaseOperator):
    """Runs one partition (or, with ``partition=None``, the whole source) of a pipeline.

    The pipeline is rebuilt in the task from ``pipeline`` — ``"module:factory"``, a factory
    function or a ``Pipeline`` made by the DAG file — and runs from its last checkpoint, so
    Airflow's retries resume where a failed try stopped. ``partition`` is templated (e.g.
    ``{"day": "{{ ds }}"}``) and can be mapped. The ``RunResult`` dict is the task's XCom.
    Example — a hand-written DAG with one mapped task per partition::

        from airflow.sdk import DAG, task
        from etl_express.airflow import PipelineOperator, plan_partitions

        with DAG("crm_custom", schedule="@daily"):
            @task
            def plan():
                return plan_partitions("my_project.pipelines:crm", 8)

            PipelineOperator.partial(task_id="load", pipeline="my_project.pipelines:crm",
                                     retries=3).expand(partition=plan())
    """

    template_fields = ("partition",)
    ui_color = "#d8f0e4"

    def __init__(self, *, pipeline: PipelineRef, partition: Partition | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.partition = partition

    def execute(self, context: Context) -> dict[str, Any]:
        return run_partition(self.pipeline, self.partition)


__all__ = ["PipelineOperator"]
