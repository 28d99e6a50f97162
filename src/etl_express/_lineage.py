"""Column lineage: which column of which step comes from which columns, before a row is read.

:func:`build_flow` walks a pipeline's steps over the columns the source will give (its declared
or discovered schema, or the first batch's): each transformer states its lineage
(:meth:`~etl_express.transformers.Transformer.lineage`: output column -> input columns) and the
columns it carries unchanged (:meth:`~etl_express.transformers.Transformer.carried`); each
anonymizer keeps its columns where they are (or drops some, ``output_columns``). The result is a
:class:`Flow`: one stage of columns per step, each column knowing its parents in the stage
before. The privacy boundary (:mod:`etl_express._privacy`) reasons over it.

A transformer that does not state its lineage is taken as computing every output column from
every input column. When the source cannot tell its columns before reading, the flow is built
over the columns the configuration names (a *provisional* flow) and built again on the first
batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .format import normalize_name

PROVISIONAL = b"etl_express.provisional"


@dataclass(frozen=True)
class Node:
    """One column at one stage: its parents (names at the stage before) and the parent whose
    values it carries unchanged, if any."""

    name: str
    parents: tuple[str, ...] = ()
    carried: str | None = None
    type: pa.DataType = field(default_factory=pa.string)


@dataclass
class Step:
    """A transformer or anonymizer as the flow sees it."""

    label: str
    role: str  # "transformer" or "anonymizer"
    obj: Any
    declared: bool = True  # False: every output from every input
    note: str = ""


@dataclass(frozen=True)
class Unknown:
    """A configured column name that the columns at its place do not have."""

    owner: str
    name: str
    available: tuple[str, ...]
    written: str = ""  # the spelling the user wrote, when it differs


@dataclass
class Flow:
    """Stages of columns: ``stages[0]`` as read, ``stages[i + 1]`` after ``steps[i]``."""

    stages: list[dict[str, Node]]
    steps: list[Step]
    transformers: int
    provisional: bool = False
    complete: bool = True
    unknown: list[Unknown] = field(default_factory=list)

    @property
    def source(self) -> dict[str, Node]:
        return self.stages[0]

    @property
    def final(self) -> dict[str, Node]:
        return self.stages[-1]

    @property
    def transformed(self) -> int:
        """The stage after the last transformer (the anonymizers' input)."""
        return self.transformers

    def names_anywhere(self) -> set[str]:
        return {n for stage in self.stages for n in stage}


def provisional_schema(names: Iterable[str]) -> pa.Schema:
    """Text columns of the given names, marked as a guess (the source cannot tell yet)."""
    unique = list(dict.fromkeys(normalize_name(n) for n in names if n))
    return pa.schema([pa.field(n, pa.string()) for n in unique], metadata={PROVISIONAL: b"1"})


def _schema(stage: Mapping[str, Node], provisional: bool) -> pa.Schema:
    meta = {PROVISIONAL: b"1"} if provisional else None
    return pa.schema([pa.field(n.name, n.type) for n in stage.values()], metadata=meta)


def step_label(step: Any) -> str:
    """How a step is named in messages: built-ins by their repr (names only), others by class."""
    if type(step).__module__.startswith("etl_express."):
        return repr(step)
    return type(step).__name__


def declares_lineage(step: Any) -> bool:
    """Whether a transformer overrides the base class's "every output from every input"."""
    method = getattr(type(step), "lineage", None)
    return method is not None and getattr(method, "__qualname__", "") != "Transformer.lineage"


def _canonical(names: Iterable[str]) -> list[str]:
    return [normalize_name(n) for n in names if isinstance(n, str) and n.strip()]


def build_flow(
    schema: pa.Schema,
    transformers: Sequence[Any],
    anonymizers: Sequence[Any],
    observed: Sequence[pa.Schema | None] | None = None,
    *,
    run_steps: bool = True,
) -> Flow:
    """The flow of ``schema``'s columns through the steps (see the module docstring).

    ``observed`` (the batch loop's) gives each transformer's actual output schema, for a
    step that does not declare its lineage; without it such a step runs on an empty batch
    for its output columns (``run_steps``; when ``False`` the flow stops there, incomplete).
    """
    provisional = bool(schema.metadata and schema.metadata.get(PROVISIONAL))
    flow = Flow(
        stages=[{f.name: Node(f.name, (), None, f.type) for f in schema}],
        steps=[],
        transformers=len(transformers),
        provisional=provisional,
    )
    for i, step in enumerate(transformers):
        seen = observed[i] if observed is not None and i < len(observed) else None
        stage = _transformer_stage(flow, step, seen, run_steps)
        if stage is None:
            flow.complete = False
            return flow
        flow.stages.append(stage)
    for step in anonymizers:
        flow.stages.append(_anonymizer_stage(flow, step))
    return flow


def _transformer_stage(
    flow: Flow, step: Any, observed: pa.Schema | None, run_steps: bool
) -> dict[str, Node] | None:
    before = flow.stages[-1]
    schema = _schema(before, flow.provisional)
    label = step_label(step)
    info = Step(label, "transformer", step)
    flow.steps.append(info)
    required = getattr(step, "required_columns", None)
    if not flow.provisional and callable(required):
        for name in _canonical(required()):
            if name not in before:
                flow.unknown.append(Unknown(label, name, tuple(before)))
    out_schema = observed
    if out_schema is None and (run_steps or type(step).__module__.startswith("etl_express.")):
        try:  # built-ins have no side effects; others only before reading, as always
            out_schema = step.transform(pa.RecordBatch.from_pylist([], schema=schema)).schema
        except Exception:  # a step that cannot run on no rows (or on guessed types)
            out_schema = None
    mapping: dict[str, tuple[str, ...]] | None = None
    carried: dict[str, str] = {}
    if declares_lineage(step):
        try:
            mapping = {k: tuple(v) for k, v in step.lineage(schema).items()}
            carried = dict(step.carried(schema))
        except Exception as exc:
            if flow.provisional:  # the real columns may trace fine: planned on the first batch
                return None
            info.declared = False
            info.note = f"its lineage could not be traced ({type(exc).__name__})"
    else:
        info.declared = False
        info.note = "it does not declare its lineage"
    if mapping is None:
        if out_schema is None:
            return None
        mapping = {n: tuple(before) for n in out_schema.names}
        carried = {}
    elif observed is not None:  # what the step really output wins over what it declared
        mapping = {n: mapping.get(n, tuple(before)) for n in observed.names}
    if not flow.provisional and info.declared:
        for parents in mapping.values():
            for name in parents:
                if name not in before:
                    flow.unknown.append(Unknown(label, name, tuple(before)))
    types = {f.name: f.type for f in out_schema} if out_schema is not None else {}
    stage: dict[str, Node] = {}
    for out, parents in mapping.items():
        parents = tuple(p for p in dict.fromkeys(parents) if p in before)
        source = carried.get(out)
        source = source if source in before else None
        kind = types.get(out) or (before[source].type if source else pa.string())
        stage[out] = Node(out, parents, source, kind)
    return stage


def _anonymizer_stage(flow: Flow, step: Any) -> dict[str, Node]:
    before = flow.stages[-1]
    label = type(step).__name__
    flow.steps.append(Step(label, "anonymizer", step))
    required = getattr(step, "required_columns", None)
    names = _canonical(required() if callable(required) else getattr(step, "columns", ()))
    if not flow.provisional:
        for name in names:
            if name not in before:
                flow.unknown.append(Unknown(label, name, tuple(before)))
    output = getattr(step, "output_columns", None)
    try:
        kept = list(output(list(before))) if callable(output) else list(before)
    except Exception:
        kept = list(before)
    stage: dict[str, Node] = {}
    for name in kept:
        if name in before:
            stage[name] = Node(name, (name,), name, before[name].type)
        else:  # a column the anonymizer adds: from every column it received
            stage[name] = Node(name, tuple(before), None, pa.string())
    return stage


__all__ = [
    "PROVISIONAL",
    "Flow",
    "Node",
    "Step",
    "Unknown",
    "build_flow",
    "declares_lineage",
    "provisional_schema",
    "step_label",
]
