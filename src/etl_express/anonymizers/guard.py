"""The checks a pipeline passes before it reads a row: every configured name exists, personal
data is covered wherever it flows, and no position holds personal data.

:func:`check_pipeline` runs when a run (single, parallel or replay) starts. It computes the
pipeline's :class:`~etl_express._privacy.PrivacyPlan` over the columns the source will give
(:meth:`Source.schema`, or :meth:`Source.discover_schema`: SQL reflection, file headers; when
the source cannot tell, over the columns the configuration names) and refuses, in this order:

1. every configured column name that the data does not have (tags, ``not_pii``, transformers,
   anonymizers, keys), all of them in one error with the nearest existing names;
2. a name declared both personal and not personal;
3. every personal column — tagged, named by an anonymizer, or derived from either through the
   transformers' lineage — that would reach the target, the quarantine or an export without
   an anonymizer covering it, naming the column, its origin and the fix;
4. a primary key, cursor, partition column or paginator field that is personal data.

The batch loop computes the plan again on the first batch and whenever the batch's columns
change (:func:`plan_for`, :func:`check_plan`), before anything of that batch is written.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from loguru import logger

from .._lineage import Unknown, build_flow, provisional_schema
from .._literals import register_identifiers
from .._positions import looks_like, personal_kinds, position_values
from .._privacy import Exposure, PrivacyPlan, covers_of, needs_of
from ..errors import AnonymizationError, ETLConfigError
from ..quality import CheckResult, judge
from .columns import canonical, missing_columns_error, nearest, required_columns

if TYPE_CHECKING:
    from .._engine.spec import PipelineSpec as Pipeline
    from .scrub import ScrubPII


def _scrub(batch: pa.RecordBatch, columns: list[str]) -> pa.RecordBatch:
    from .scrub import ScrubPII

    return ScrubPII(columns).anonymize(batch)


@functools.lru_cache(maxsize=1)
def _value_rules() -> ScrubPII:
    # imported when first needed (about a second of imports): most checks never judge a text
    from .detection import DETECTED_KINDS
    from .scrub import KINDS, ScrubPII

    return ScrubPII(["value"], kinds=[k for k in DETECTED_KINDS if k in KINDS])


def judge_values(values: Sequence[str]) -> list[set[str]]:
    """The personal-data kinds each text holds, by the rules the detector samples columns
    with (:mod:`.detection`), one value at a time: a position or a partition bound is
    personal when a single value is. A full name (two or three capitalized words, one of
    them a common given name or surname: :func:`.person_names.person_evident`) counts
    too: a REST API ordered by name hands out the last name it sent as its cursor."""
    from .person_names import person_evident

    found = _value_rules().find(list(values))
    return [
        kinds | {"name"} if person_evident(v) else kinds
        for v, kinds in zip(values, found, strict=True)
    ]


class ColumnNameWatch:
    """Column names are written in clear everywhere (the target's DDL, run records, logs,
    every message that names a column) and no anonymizer covers them, so a name that is
    itself personal data — the first record of a CSV file without a header row, records
    keyed by e-mail — is judged, as a source spells it, by the rules positions are judged
    by (:func:`judge_values`), once per name, before the batch that brings it is planned.
    Per the pipeline's ``detect_pii``: ``"refuse"`` stops the run, ``"warn"`` logs it,
    ``"off"`` does not look; neither message holds the name, only its place."""

    def __init__(self, pipeline: Any, log: Any):
        self.policy = getattr(pipeline, "detect_pii", "refuse")
        self.source = getattr(pipeline.source, "name", "source")
        self.log = log
        self.judged: set[str] = set()

    def check(
        self, names: Sequence[str], where: dict[str, Any], *, normalized: bool = False
    ) -> None:
        """Judge ``names`` not judged yet; ``normalized``: they are the common format's
        snake_case names (a discovered schema), judged in the spellings they may stand for
        (``смирнова_анна_петровна`` as ``Смирнова Анна Петровна``, ``c_7_916_...`` as
        ``7 916 ...``)."""
        if self.policy == "off":
            return
        pending = [n for n in dict.fromkeys(names) if n not in self.judged]
        if not pending:
            return
        self.judged.update(pending)
        places = {n: i + 1 for i, n in enumerate(names)}
        forms = {n: _spellings(n) if normalized else [n] for n in pending}
        flat = [f for n in pending for f in forms[n]]
        kinds_of = dict(zip(flat, judge_values(flat), strict=True))
        found = []
        for n in pending:
            kinds = set().union(*(kinds_of[f] for f in forms[n]))
            if kinds:
                found.append(f"column {places[n]}: {looks_like(sorted(kinds))}")
        if not found:
            return
        what = (
            f"{len(found)} column name(s) of {self.source} look like personal data "
            f"({'; '.join(found)}): a name is written in clear wherever the column is named"
        )
        if self.policy == "warn":
            self.log.warning("{} (detect_pii='warn': loaded as it is)", what)
            return
        raise AnonymizationError(
            f"{what}; nothing was written",
            where={k: v for k, v in where.items() if k != "after position"},
            hint="a file whose first line is a record needs a header row; records keyed by "
            "their values (an e-mail, a name) need those keys made values before they are "
            "loaded (detect_pii='warn' loads them and logs the finding)",
        )


def _spellings(name: str) -> list[str]:
    """What a snake_case column name may have been spelt as: its words capitalized (a full
    name) and as they are (digits of a phone, an identifier)."""
    words = [w for w in name.removeprefix("c_").split("_") if w]
    return list(dict.fromkeys([" ".join(w.capitalize() for w in words), " ".join(words)]))


def tags_of(pipeline: Any) -> dict[str, str]:
    """Tagged column -> who tagged it (``"pii="`` or ``"source.pii"``)."""
    tags = {canonical(c): "pii=" for c in getattr(pipeline, "pii", ())}
    for c in getattr(pipeline.source, "pii", ()):
        tags[canonical(c)] = "source.pii"
    return tags


def referenced_names(pipeline: Any) -> list[str]:
    """Every column the configuration names (the provisional columns of a source that
    cannot tell its own before reading)."""
    names: list[str] = [*tags_of(pipeline), *getattr(pipeline, "not_pii", {})]
    for step in pipeline.transformers:
        required = getattr(step, "required_columns", None)
        names += list(required()) if callable(required) else []
    for a in pipeline.anonymizers:
        names += [*needs_of(a), *covers_of(a)]
    names += [c for _, c in position_columns(pipeline.source)]
    return names


def known_schema(pipeline: Any) -> pa.Schema | None:
    """The columns the source will give, when it can tell before reading."""
    source = pipeline.source
    schema = source.schema()
    if schema is not None:
        return schema
    discover = getattr(source, "discover_schema", None)
    if not callable(discover):
        return None
    try:
        return discover()  # type: ignore[no-any-return]
    except Exception as exc:  # unreachable now: planned on the first batch instead
        logger.debug(
            "schema discovery failed ({}); the plan is made on the first batch", type(exc).__name__
        )
        return None


def plan_for(
    pipeline: Any,
    schema: pa.Schema | None = None,
    observed: Sequence[pa.Schema | None] | None = None,
    *,
    run_steps: bool = True,
) -> PrivacyPlan:
    """The privacy plan of ``pipeline`` over ``schema`` (the columns as read; ``None``: the
    source's declared or discovered schema, else a provisional one from the names the
    configuration uses). ``observed``: each transformer's actual output schema, when known."""
    if schema is None:
        schema = known_schema(pipeline) or provisional_schema(referenced_names(pipeline))
    flow = build_flow(
        schema, pipeline.transformers, pipeline.anonymizers, observed, run_steps=run_steps
    )
    sink = pipeline.sink
    register_identifiers(
        str(n)
        for n in (getattr(sink, a, None) for a in ("table", "schema_name", "table_name"))
        if n
    )
    return PrivacyPlan(
        flow,
        pipeline.anonymizers,
        tags=tags_of(pipeline),
        not_pii=getattr(pipeline, "not_pii", {}),
        scrub=_scrub,
        judge=judge_values,
    )


def check_pipeline(pipeline: Pipeline) -> PrivacyPlan:
    """Refuse a pipeline that could let personal data through (see the module docstring);
    return its plan."""
    plan = plan_for(pipeline)
    check_plan(pipeline, plan)
    return plan


def check_plan(pipeline: Any, plan: PrivacyPlan, where: dict[str, Any] | None = None) -> None:
    """Raise on the first kind of problem the plan shows (names, conflicts, exposures,
    positions), listing every problem of that kind."""
    where = where or {"pipeline": pipeline.name, "source": pipeline.source.name}
    where = {k: v for k, v in where.items() if k != "after position"}
    if not plan.flow.provisional and getattr(pipeline, "detect_pii", "refuse") == "refuse":
        # a discovered header that is a record, before a message lists the columns
        ColumnNameWatch(pipeline, logger).check(plan.source_columns, where, normalized=True)
    unknown = plan.unknown()
    if unknown:
        raise unknown_names_error(unknown, where)
    if plan.conflicts:
        raise ETLConfigError(
            "contradictory declarations: " + "; ".join(plan.conflicts),
            where=where,
            hint="a column is either personal data (tag it and anonymize it) or declared "
            "safe with not_pii={...}, not both",
        )
    exposures = plan.exposures()
    if exposures and not (plan.flow.provisional and _maybe_misspelt(pipeline)):
        raise exposure_error(exposures, where)
    check_positions(pipeline, plan, where)


def _maybe_misspelt(pipeline: Any) -> bool:
    """Whether two configured names are near each other (``email``/``emial``): before the
    source's columns are known, an uncovered column may just be a misspelling, which the
    first batch tells apart — so the coverage verdict waits for it (still before any write)."""
    names = sorted(set(referenced_names(pipeline)))
    return any(nearest(n, [m for m in names if m != n], n=1) for n in names)


def unknown_names_error(unknown: Sequence[Unknown], where: dict[str, Any]) -> ETLConfigError:
    """One error for every configured name the data does not have, nearest names given."""
    by_owner: dict[str, list[str]] = {}
    available: list[str] = []
    for u in unknown:
        close = nearest(u.name, list(u.available))
        shown = f"{u.name!r}" + (f" (nearest: {', '.join(map(repr, close))})" if close else "")
        by_owner.setdefault(u.owner, []).append(shown)
        available = list(dict.fromkeys([*available, *u.available]))
    parts = [f"{owner}: {', '.join(names)}" for owner, names in by_owner.items()]
    listed = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
    return ETLConfigError(
        f"unknown column name(s): {'; '.join(parts)}; nothing was written",
        where={**where, "columns": listed or "(none)"},
        hint="name existing columns (any spelling resolves to its snake_case name, as the "
        "batches carry it at that step); a configured column is never skipped",
    )


def exposure_error(exposures: Sequence[Exposure], where: dict[str, Any]) -> AnonymizationError:
    """Personal columns that would leave unprotected: each with its origin and the fix."""
    names = [e.column for e in exposures]
    details = "; ".join(f"{e.column!r}: {e.chain}: {e.problem}" for e in exposures)
    opaque = list(dict.fromkeys(o for e in exposures for o in e.opaque_steps))
    hint = (
        "add an anonymizer covering each, e.g. Pseudonymize("
        + repr(names)
        + ", key=etl.secret('ANON_KEY')) (or Redact, Mask, Generalize, Suppress), drop it "
        "(Select, Suppress), or, when a column holds no personal data, declare it with a "
        "reason: Pipeline(..., not_pii={" + repr(names[0]) + ": 'why it is not personal'})"
    )
    if opaque:
        hint += "; declare the lineage of " + "; ".join(opaque) + " (Transformer.lineage)"
    return AnonymizationError(
        f"personal-data column(s) {names} would reach the sink without an anonymizer that "
        f"covers them ({details})",
        where=where,
        hint=hint,
    )


def position_columns(source: Any, partition: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The columns whose values a source puts into its positions, as (role, canonical name):
    the primary key, the cursor (``SQLSource(cursor=)``, ``Incremental.cursor_field``), the
    partition column (``{"column": ...}`` specs) and fields a paginator reads from records."""
    out = [("primary key column", canonical(c)) for c in getattr(source, "primary_key", ())]
    incremental = getattr(source, "incremental_config", None)
    for role, name in (
        ("cursor column", getattr(source, "cursor", None)),
        ("cursor field", getattr(incremental, "cursor_field", None)),
        ("paginator field", getattr(getattr(source, "paginator", None), "field", None)),
        ("partition column", (partition or {}).get("column")),
    ):
        if isinstance(name, str) and name:
            out.append((role, canonical(name)))
    return out


_OPTION = {
    "primary key column": "primary_key=",
    "cursor column": "cursor=",
    "cursor field": "Incremental(cursor_field=)",
    "partition column": "partitions on",
    "paginator field": "the paginator's field",
}


def check_positions(
    pipeline: Any, plan: PrivacyPlan, where: dict[str, Any], partition: Any = None
) -> None:
    """Refuse a key, cursor, partition column or paginator field that holds personal data.

    A position is written in clear to ``etl_express.checkpoints``, run records, partition
    specs, quarantine, logs, export manifests and Airflow XComs; it must never be personal
    data. Such a pipeline is refused up front (fail closed) with a hint to read by a
    surrogate key.
    """
    personal = plan.source_personal
    tags = plan.tags
    for role, column in position_columns(pipeline.source, partition):
        mark = personal.get(column)
        if mark is None and column in tags:
            mark = plan.personal_at(0, column)
        if mark is None:
            continue
        raise ETLConfigError(
            f"the {role} {column!r} is personal data ({mark.why}): its raw values would "
            "be written to positions (checkpoints, partition bounds, quarantine, run records, "
            "logs, export manifests, XComs)",
            where=where,
            hint=f"read by a non-personal surrogate column instead ({_OPTION[role]} a sequence, "
            f"UUID or row-version column of the source) and keep {column!r} as an "
            "ordinary, anonymized column",
        )


def check_partitions(pipeline: Any, specs: Iterable[Any]) -> None:
    """Refuse partition specs whose bounds are personal data, before any is stored (run
    records, checkpoints, XComs, export manifests): a spec over a personal column (by the
    plan), and a spec holding a text that is personal by its value (bounds computed over a
    column nobody tagged). Keys and cursors are checked when each run starts; the plan here
    runs no transformer (a step may have side effects, and the specs are made in a process
    that reads nothing)."""
    specs = [s for s in specs if isinstance(s, dict)]
    where = {"pipeline": pipeline.name, "source": pipeline.source.name}
    for spec in specs:
        bounds = {k: v for k, v in spec.items() if k != "column"}  # "column" names a column
        kinds = personal_kinds(position_values(bounds), judge_values)
        if kinds:
            column = spec.get("column") if isinstance(spec.get("column"), str) else None
            named = f"over {canonical(column)!r} " if column else ""
            raise ETLConfigError(
                f"a partition spec {named}holds {looks_like(kinds)} in its bounds: the "
                "partition plan would store personal data in run records, checkpoints, logs, "
                "export manifests and XComs; nothing was stored",
                where=where,
                hint="partition on a non-personal surrogate column (a sequence, UUID or "
                "row-version column: the primary key by default)"
                + (f"; tag {canonical(column)!r} (pii=) and anonymize it" if column else ""),
            )
    keys = {c for role, c in position_columns(pipeline.source) if role != "partition column"}
    specs = [
        s for s in specs if isinstance(s.get("column"), str) and canonical(s["column"]) not in keys
    ]
    if not specs:
        return
    plan = plan_for(pipeline, run_steps=False)
    for spec in specs:
        check_positions(pipeline, plan, where, partition=spec)


def check_step_columns(step: Any, names: Sequence[str], where: dict[str, Any]) -> None:
    """One anonymizer's configured columns against a batch's columns (the batch loop calls
    it before each anonymizer, so a source without schema discovery fails on its first
    batch, before anything is written)."""
    present = set(names)
    missing = [c for c in required_columns(step) if c not in present]
    if missing:
        raise missing_columns_error(
            type(step).__name__,
            missing,
            list(names),
            where={k: v for k, v in where.items() if k != "after position"},
        )


def declarations_check(pipeline: Any) -> list[CheckResult]:
    """The run's record of its ``not_pii`` declarations (column -> reason), stored with the
    run's quality checks (``etl_express.quality_checks``, name ``not_pii``); none without."""
    declared = dict(getattr(pipeline, "not_pii", {}) or {})
    if not declared:
        return []
    return [judge("not_pii", True, "ignore", declared=declared)]


def covered_columns(anonymizers: Sequence[Any]) -> dict[str, str]:
    """Canonical column -> name of the first anonymizer naming it as covered."""
    out: dict[str, str] = {}
    for a in anonymizers:
        for c in covers_of(a):
            out.setdefault(c, type(a).__name__)
    return out


__all__ = [
    "ColumnNameWatch",
    "check_partitions",
    "check_pipeline",
    "check_plan",
    "check_positions",
    "check_step_columns",
    "covered_columns",
    "declarations_check",
    "exposure_error",
    "judge_values",
    "known_schema",
    "plan_for",
    "position_columns",
    "referenced_names",
    "tags_of",
    "unknown_names_error",
]
