"""Airflow, run in a process of its own for the tests.

Importing Airflow reconfigures logging (a root handler on stdout) and structlog, which
would leak into every other test; so each Airflow step runs here, in a subprocess, and
writes its findings as JSON to the file given last on the command line.

    python dagrun.py reset OUT            # fresh metadata database
    python dagrun.py test DAG_FILE::DAG_ID... OUT   # dag.test() of each, task states
    python dagrun.py dagbag FOLDER OUT    # import errors and schedules of a DAG folder
    python dagrun.py call JSON_CALLS OUT  # [[MODULE:FUNCTION, [args]], ...] -> {"results": [...]},
                                          # each {"result": ...} or {"error": ..., "message": ...}
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any


def reset() -> dict[str, Any]:
    from airflow.utils import db

    db.resetdb()
    return {"reset": True}


def test(*specs: str) -> dict[str, Any]:
    """``dag.test()`` of each ``DAG_FILE::DAG_ID``, one after the other in this process."""
    from airflow.sdk import DAG

    found = {}
    for spec in specs:
        dag_file, dag_id = spec.split("::")
        module_spec = importlib.util.spec_from_file_location(Path(dag_file).stem, dag_file)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        dags = [v for v in vars(module).values() if isinstance(v, DAG) and v.dag_id == dag_id]
        run = dags[0].test()
        found[dag_id] = {
            "state": str(run.state),
            "tasks": [
                {
                    "task_id": ti.task_id,
                    "map_index": ti.map_index,
                    "state": str(ti.state),
                    "try_number": ti.try_number,
                    "rendered_map_index": ti.rendered_map_index,
                }
                for ti in sorted(run.get_task_instances(), key=lambda t: (t.task_id, t.map_index))
            ],
        }
    return found


def dagbag(folder: str) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=folder)
    return {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": {
            dag_id: {
                "schedule": str(dag.schedule),
                "tasks": sorted(dag.task_ids),
                "retries": {t.task_id: t.retries for t in dag.tasks},
            }
            for dag_id, dag in bag.dags.items()
        },
    }


def call(calls: str) -> dict[str, Any]:
    results = []
    for target, arguments in json.loads(calls):
        module_name, _, name = target.partition(":")
        function = getattr(importlib.import_module(module_name), name)
        try:
            results.append({"result": function(*arguments)})
        except Exception as exc:
            results.append({"error": type(exc).__name__, "message": str(exc)})
    return {"results": results}


if __name__ == "__main__":
    command, *args, out = sys.argv[1:]
    found = {"reset": reset, "test": test, "dagbag": dagbag, "call": call}[command](*args)
    Path(out).write_text(json.dumps(found, default=str))
