"""The engine under :class:`~etl_express.Pipeline` (internal: import from ``etl_express``).

Imports flow one way (``tests/test_import_cycles.py`` fails on a cycle)::

    replication.py (Replication: a database's tables, one Pipeline each)
    pipeline.py (Pipeline: the user-facing configuration)
        └─ _engine.run            one run of one partition: a ledger run around the batch
           │                      loop, the delete reconciliation and the checks
           _engine.parallel       run(workers=n): one process per partition (each an
           │                      _engine.run), a dead worker fails alone
           _engine.replay         replay of quarantined records: a run of its own
           │                      (partition "replay") through the batch unit of work
           _engine.declarations   what a pipeline declares (freshness, tagged columns,
           │                      target), kept in the store for status and the dashboard
           ├─ reconcile/          delete reconciliation; its re-read rows go through
           │                      PartitionRunner.load_batch, the batch loop's unit of work
           ├─ _engine.batches     the batch loop (read ahead ▶ prepare ▶ commit), retried
           │                      from the last checkpoint by RetryPolicy.call
           ├─ _engine.checks      end-of-run quality checks (freshness among them), retried
           ├─ _engine.unit        one unit of work per batch: rows + quarantine
           │                      + checkpoint + counters, in one transaction
           └─ _engine.quarantine  write_isolating: refused rows found by bisection
              │
              └─ sources, sinks, transformers, anonymizers (guard: the privacy plan),
                 │ quality (sinks and quality read target metadata through
                 │ store/tables.py; SQL sources and sinks connect through store/database.py)
                 └─ store/        ledger.py (runs), checkpoints.py, quarantine.py, checks.py,
                    │             runlog.py, declarations.py, reconciliation.py: one owner
                    │             module a state table (schema.py declares them);
                    │             tables.py: the one reader of target-table metadata; the
                    │             engine calls it directly too
                    └─ format (format_types, _arrays), retry, secrets, _privacy
                       (the privacy boundary), errors: imported by every layer above

Beside the engine: ``logs.py`` (``configure_logging``: console and files; a run's lines
reach the store through ``store/runlog.py`` whatever it says), ``_status.py`` (``status()``
reads the store), ``_durations.py`` (the one duration parser), ``_forget.py`` (every owner's
``forget`` in one transaction). Above ``pipeline.py``: the CLI, the dashboard and the Airflow
tasks.

Engine modules take the pipeline as a :class:`~etl_express._engine.spec.PipelineSpec`
(a protocol) and never import ``etl_express.pipeline``.
"""
