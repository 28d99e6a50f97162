"""The engine under :class:`~etl_express.Pipeline` (internal: import from ``etl_express``).

Imports flow one way::

    pipeline.py (Pipeline: the user-facing configuration)
        └─ _engine.run        one run of one partition: ledger + batch loop + checks
           _engine.parallel   run(workers=n): one process per partition
           _engine.quarantine write_isolating (bisection) and replay
              └─ _engine.batches  the batch loop (read ahead, prepare, commit)
                 _engine.unit     one unit of work per batch: rows + quarantine
                                  + checkpoint + counters, in one transaction
                 _engine.checks   end-of-run quality checks
                    └─ store (ledger.py: runs; state.py: tables), sinks, sources,
                       transformers, anonymizers, quality, retry, errors

Engine modules take the pipeline as a :class:`~etl_express._engine.spec.PipelineSpec`
(a protocol) and never import ``etl_express.pipeline``.
"""
