"""Resolves ``airflow_secret`` references in the Airflow subprocess (see test_tasks)."""

from __future__ import annotations

from etl_express.airflow import airflow_secret
from etl_express.errors import ETLConfigError


def reveal() -> list[str]:
    uri = airflow_secret("PROBE_DB").get().get_secret_value()
    key = airflow_secret("PROBE_KEY").get().get_secret_value()
    try:
        airflow_secret("PROBE_MISSING", conn_id="probe_other").get()
    except ETLConfigError as exc:
        missing = str(exc)
    return [uri, key, repr(airflow_secret("PROBE_DB")), missing]
