"""A daily load run by ``.github/workflows/daily-pipeline.yml``.

No credential is written here: GitHub Actions hands the repository's secrets to the job
as environment variables (``env: CRM_DB_URL: ${{ secrets.CRM_DB_URL }}``) and
``etl.secret`` reads them at run time. Run it locally the same way::

    CRM_DB_URL=postgresql://... WAREHOUSE_DB_URL=postgresql://... python examples/github_actions_daily.py
"""

from __future__ import annotations

import json

import etl_express as etl
from etl_express.sinks import PostgresSink
from etl_express.sources import SQLSource


def build_pipeline(
    name: str = "orders_daily",
    source_table: str = "public.orders",
    target_table: str = "warehouse.orders",
) -> etl.Pipeline:
    """Orders from the operational database into the warehouse, incrementally by ``id``."""
    return etl.Pipeline(
        name=name,
        source=SQLSource(url=etl.secret("CRM_DB_URL"), table=source_table, primary_key="id"),
        sink=PostgresSink(table=target_table, url=etl.secret("WAREHOUSE_DB_URL")),
        progress=False,
    )


def main() -> None:
    etl.configure_logging()
    result = build_pipeline().run()
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
