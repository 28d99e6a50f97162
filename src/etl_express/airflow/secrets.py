"""Secrets from Airflow: connections (as URIs) and variables.

Inside an Airflow task, ``airflow_secret("CRM_DB")`` resolves the Airflow connection
``crm_db`` to its URI (``postgres://user:***@host:5432/db``), then the Airflow variable
``CRM_DB``, then the usual etl-express chain (environment variables first). Airflow masks
connection passwords in task logs; etl-express never prints them either.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..secrets import SecretProvider, SecretRef, default_providers


class AirflowConnectionProvider(SecretProvider):
    """Reads a secret as the URI of an Airflow connection.

    The connection id is ``conn_ids[name]`` when given, else ``name`` in lower case.
    Outside a running task, Airflow still finds connections from its secrets backends and
    ``AIRFLOW_CONN_<ID>`` environment variables.
    """

    def __init__(self, conn_ids: Mapping[str, str] | None = None):
        self.conn_ids = dict(conn_ids or {})

    def conn_id(self, name: str) -> str:
        return self.conn_ids.get(name, name.lower())

    def get(self, name: str) -> str | None:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = Connection.get(self.conn_id(name))
        except AirflowNotFoundException:
            return None
        return connection.get_uri() if connection is not None else None

    def describe(self, name: str) -> str:
        return f"Airflow connection {self.conn_id(name)}"


class AirflowVariableProvider(SecretProvider):
    """Reads a secret from the Airflow variable of the same name (e.g. ``ANON_KEY``)."""

    def get(self, name: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
        return None if value is None else str(value)

    def describe(self, name: str) -> str:
        return f"Airflow variable {name}"


def airflow_secret(name: str, *, conn_id: str | None = None) -> SecretRef:
    """``etl.secret(name)`` that looks in Airflow first: the connection ``conn_id`` (default
    ``name`` in lower case) as a URI, the variable ``name``, then the default providers."""
    connections = AirflowConnectionProvider({name: conn_id} if conn_id else None)
    return SecretRef(name, [connections, AirflowVariableProvider(), *default_providers()])


__all__ = ["AirflowConnectionProvider", "AirflowVariableProvider", "airflow_secret"]
