"""The privacy boundary: everything written or printed that derives from a record passes here.

Personal data is tracked by where it flows (:mod:`etl_express._lineage`), not by which names
were configured. A column is **personal** when it is tagged (``pii=``, ``source.pii``), when an
anonymizer names it, or when it comes from (or flows into) a personal column; a declaration
``Pipeline(..., not_pii={"email_domain": "the domain only"})`` says a column is not, with a
reason. :class:`PrivacyPlan` computes this for every column at every step before a row is read
and answers, for each place data leaves the process:

* the target and exports: every personal column that reaches them is covered by an anonymizer
  (:meth:`PrivacyPlan.exposures` lists those that are not; ``ScrubPII`` covers free text only,
  never a tagged column or one derived from it);
* quarantine: :meth:`PrivacyPlan.protect_record` stores a record rejected at any step only after
  each of its personal columns, under the name it had at that step, is anonymized the way the
  pipeline anonymizes the column it becomes, or dropped;
* positions (checkpoints, partition bounds, paginator tokens): :meth:`PrivacyPlan.position_leak`
  finds a personal value in a position before it is committed (:mod:`._positions`);
* texts: :func:`safe_text` and :func:`safe_db_message` reduce database, driver and expression
  messages to what names the problem, every quoted literal removed.

It sits low in the layering (beside ``errors`` and ``format``) so that the engine, sinks, the
store, logs, the CLI and the dashboard can all import it; it imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._lineage import Flow, Node, Unknown, step_label
from ._literals import VALUE, register_identifiers, without_literals
from ._positions import (
    ValueJudge,
    looks_like,
    personal_kinds,
    position_values,
    value_of_columns,
)
from .errors import safe_pg_message
from .format import normalize_name, to_json_text, to_records

STRUCTURED = "structured"
FREE_TEXT = "free_text"

#: replaces free-text personal data in the named text columns of a batch (``ScrubPII``)
Scrubber = Callable[[pa.RecordBatch, list[str]], pa.RecordBatch]


@dataclass(frozen=True)
class Personal:
    """Why a column at a step is personal data, and whether structured or free text."""

    kind: str
    why: str


@dataclass(frozen=True)
class Exposure:
    """A personal column that would reach the target, quarantine or an export unprotected."""

    column: str
    chain: str
    problem: str
    opaque_steps: tuple[str, ...] = ()


def _merge(old: Personal | None, new: Personal) -> Personal:
    if old is None:
        return new
    if old.kind == FREE_TEXT and new.kind == STRUCTURED:
        return Personal(STRUCTURED, old.why)
    return old


def _canonical(names: Iterable[str]) -> list[str]:
    return [normalize_name(n) for n in names if isinstance(n, str) and n.strip()]


def covers_of(anonymizer: Any) -> list[str]:
    """The canonical columns an anonymizer protects."""
    covers = getattr(anonymizer, "covers", None)
    return _canonical(covers() if callable(covers) else ())


def needs_of(anonymizer: Any) -> list[str]:
    """The canonical columns an anonymizer reads (its ``required_columns()`` or columns)."""
    required = getattr(anonymizer, "required_columns", None)
    names = required() if callable(required) else getattr(anonymizer, "columns", ())
    return _canonical(names or ())


class PrivacyPlan:
    """Which column is personal at every step, what covers it, and how a record leaves.

    Built by :func:`etl_express.anonymizers.guard.plan_for` from a :class:`~._lineage.Flow`,
    the pipeline's anonymizers, its tags (name -> ``"pii="`` or ``"source.pii"``) and its
    ``not_pii`` declarations (name -> reason).
    """

    def __init__(
        self,
        flow: Flow,
        anonymizers: Sequence[Any],
        *,
        tags: Mapping[str, str],
        not_pii: Mapping[str, str],
        scrub: Scrubber | None = None,
        judge: ValueJudge | None = None,
    ):
        self.flow = flow
        self.anonymizers = list(anonymizers)
        self.tags = dict(tags)
        self.declared_safe = dict(not_pii)
        self.scrub = scrub
        self.judge = judge
        self.conflicts: list[str] = []
        self.personal: dict[tuple[int, str], Personal] = {}
        self.safe: set[tuple[int, str]] = set()
        self.covered: dict[str, str] = {}
        self._scrub_only: dict[str, str] = {}
        self._mark()
        self._cover()
        register_identifiers(flow.names_anywhere())  # kept when a database quotes them

    # -- what the plan knows ----------------------------------------------------------

    @property
    def source_columns(self) -> list[str]:
        """The columns as read, that the plan was computed for."""
        return list(self.flow.source)

    @property
    def sink_columns(self) -> list[str]:
        """The columns as they reach the target (after the anonymizers)."""
        return list(self.flow.final) if self.flow.complete else []

    @property
    def sink_personal(self) -> set[str]:
        """Sink-side names of the columns that carry personal data."""
        last = len(self.flow.stages) - 1
        return {n for n in self.flow.final if (last, n) in self.personal}

    @property
    def source_personal(self) -> dict[str, Personal]:
        """The personal columns as read (what positions must never hold)."""
        return {n: p for (s, n), p in self.personal.items() if s == 0}

    def clear_source_columns(self) -> list[str]:
        """The columns as read whose values the target receives unchanged (carried through
        every transformer to a target column) and that are not personal data: what a row
        hash may cover without binding anything a reader of the target does not see."""
        flow = self.flow
        if not flow.complete:
            return []
        last = len(flow.stages) - 1
        out = []
        for name in flow.stages[0]:
            s = 0
            current: str | None = name
            while s < last and current is not None:
                carried = [n for n, node in flow.stages[s + 1].items() if node.carried == current]
                current = carried[0] if carried else None
                s += 1
            personal = (0, name) in self.personal or (last, current) in self.personal
            if current is not None and not personal:
                out.append(name)
        return out

    def personal_at(self, stage: int, name: str) -> Personal | None:
        return self.personal.get((stage, normalize_name(name)))

    def unknown(self) -> list[Unknown]:
        """Every configured name the data does not have (tags and ``not_pii`` included)."""
        if self.flow.provisional or not self.flow.complete:
            return list(self.flow.unknown)
        anywhere = sorted(self.flow.names_anywhere())
        out = list(self.flow.unknown)
        for name, who in self.tags.items():
            if name not in anywhere:
                out.append(Unknown(who, name, tuple(anywhere)))
        for name in self.declared_safe:
            if name not in anywhere:
                out.append(Unknown("not_pii=", name, tuple(anywhere)))
        return out

    def skip_detection(self) -> set[str]:
        """Names (any step) a detector need not sample: personal ones (their coverage is
        enforced), covered ones and those declared safe."""
        names = {n for _, n in self.personal} | set(self.covered) | set(self.declared_safe)
        return names

    # -- marking ------------------------------------------------------------------------

    def _roots(self) -> dict[tuple[int, str], Personal]:
        flow, roots = self.flow, {}
        for s in range(flow.transformed + 1 if flow.complete else len(flow.stages)):
            for name in flow.stages[s]:
                if name in self.tags:
                    roots[(s, name)] = Personal(STRUCTURED, f"tagged {self.tags[name]}")
        if not flow.complete:
            return roots
        for j, step in enumerate(self.anonymizers):
            s = flow.transformed + j
            kind = FREE_TEXT if getattr(step, "protects", "any") == FREE_TEXT else STRUCTURED
            label = type(step).__name__
            for name in dict.fromkeys([*needs_of(step), *covers_of(step)]):
                if name in flow.stages[s]:
                    roots[(s, name)] = _merge(
                        roots.get((s, name)), Personal(kind, f"named by {label}")
                    )
        return roots

    def _mark(self) -> None:
        flow = self.flow
        roots = self._roots()
        for (_, name), why in roots.items():
            if name in self.declared_safe:
                self.conflicts.append(
                    f"{name!r} is declared not personal (not_pii=) but is {why.why}"
                )
        marks = dict(roots)
        # backwards: a column whose values flow into a personal one is personal too
        for s in range(len(flow.stages) - 1, 0, -1):
            for name, node in flow.stages[s].items():
                mark = marks.get((s, name))
                if mark is None or name in self.declared_safe:
                    continue
                for parent in node.parents:
                    if parent in self.declared_safe:
                        continue
                    key = (s - 1, parent)
                    if key not in marks:
                        reason = mark.why
                        if parent != name and not reason.startswith("flows into"):
                            reason = f"flows into {name!r} ({reason})"
                        marks[key] = Personal(mark.kind, reason)
                    else:
                        marks[key] = _merge(marks[key], Personal(mark.kind, ""))
        # forwards: a column that comes from a personal one is personal
        for s, stage in enumerate(flow.stages):
            for name, node in stage.items():
                if name in self.declared_safe:
                    self.safe.add((s, name))
                    marks.pop((s, name), None)
                    continue
                mark = marks.get((s, name))
                for parent in node.parents:
                    up = marks.get((s - 1, parent))
                    if up is not None:
                        inherited = Personal(up.kind, f"comes from {parent!r}")
                        mark = _merge(mark, inherited)
                if mark is not None:
                    marks[(s, name)] = mark
        self.personal = marks

    def _cover(self) -> None:
        flow = self.flow
        if not flow.complete:
            return
        for j, step in enumerate(self.anonymizers):
            s = flow.transformed + j
            label = type(step).__name__
            free_text_only = getattr(step, "protects", "any") == FREE_TEXT
            for name in covers_of(step):
                if name not in flow.stages[s] or name in self.covered:
                    continue
                mark = self.personal.get((s, name))
                if free_text_only and mark is not None and mark.kind == STRUCTURED:
                    self._scrub_only.setdefault(name, label)
                    continue
                self.covered[name] = label

    # -- the target, exports and quarantine ----------------------------------------------

    def exposures(self) -> list[Exposure]:
        """Personal columns that would reach the target (or an export) without an
        anonymizer that covers them."""
        if not self.flow.complete:
            return []
        last = len(self.flow.stages) - 1
        out = []
        for name in self.flow.final:
            if (last, name) not in self.personal or name in self.covered:
                continue
            if name in self._scrub_only:
                problem = (
                    f"only {self._scrub_only[name]} names it, which covers free text only, not "
                    "a tagged column or one derived from structured personal data"
                )
            else:
                problem = "no anonymizer covers it"
            chain, opaque = self.chain(last, name)
            out.append(Exposure(name, chain, problem, opaque))
        return out

    def chain(self, stage: int, name: str) -> tuple[str, tuple[str, ...]]:
        """How the personal column ``name`` at ``stage`` got its personal data, as text
        (``'phone' (tagged pii=) -> Rename(...) -> 'mobile' -> ...``), and the steps on the
        way that did not declare their lineage."""
        flow, path = self.flow, [(stage, name)]
        also: dict[int, list[str]] = {}  # stage -> the other personal parents at that step
        s, current = stage, name
        while s > 0:
            node = flow.stages[s][current]
            mark = self.personal.get((s, current))
            if mark is not None and not mark.why.startswith(("comes from", "flows into")):
                break
            parents = [p for p in node.parents if (s - 1, p) in self.personal]
            if not parents:
                break
            also[s] = [self._origin(s - 1, p) for p in parents[1:]]
            s, current = s - 1, parents[0]
            path.append((s, current))
        path.reverse()
        first_stage, first = path[0]
        mark = self.personal.get(path[0])
        parts = [f"{first!r}" + (f" ({mark.why})" if mark else "")]
        opaque: list[str] = []
        previous = first
        for s, col in path[1:]:
            step = flow.steps[s - 1]
            if step.role == "transformer":
                others = also.get(s, [])
                parts.append(step.label + (f" (with {', '.join(others)})" if others else ""))
                if not step.declared:
                    opaque.append(f"{step.label}: {step.note}")
            if col != previous:
                parts.append(repr(col))
            previous = col
        if len(parts) == 1 and first_stage == 0 and path[-1][0] == 0:
            parts[0] += " as read"
        return " -> ".join(parts), tuple(dict.fromkeys(opaque))

    def _origin(self, stage: int, name: str) -> str:
        """``'phone' (tagged pii=)``: a personal column and where its personal data started."""
        chain, _ = self.chain(stage, name)
        return chain.split(" -> ")[0].removesuffix(" as read")

    def protect_record(self, record: Mapping[str, Any], stage: int = 0) -> dict[str, Any]:
        """The form of a record rejected at ``stage`` (0: by the source or the conversion;
        ``i``: by transformer ``i - 1``... i.e. the record as it entered ``flow.steps[stage]``)
        that may be stored: each personal column anonymized as the pipeline anonymizes the
        column it is carried to, or dropped; declared-safe columns as they are; every other
        text value through the free-text scrubber."""
        row = {normalize_name(str(k)): v for k, v in record.items()}
        nodes = self.flow.stages[stage] if stage < len(self.flow.stages) else {}
        personal_names = {n for _, n in self.personal} | set(self.tags)
        out: dict[str, Any] = {}
        plain: dict[str, str | None] = {}
        placed: dict[str, tuple[str, Any]] = {}
        for name, value in row.items():
            if value is None:
                out[name] = None
            elif (stage, name) in self.safe or (name not in nodes and name in self.declared_safe):
                out[name] = value if isinstance(value, (str, int, float, bool)) else _text(value)
            elif (stage, name) in self.personal or (name not in nodes and name in personal_names):
                target = self._carried_to_covered(stage, name) if name in nodes else None
                if target is not None and target not in placed:
                    placed[target] = (name, value)
            else:
                plain[name] = _text(value)
        out.update(self._anonymized(placed))
        out.update(self._scrubbed(plain))
        return {k: out[k] for k in row if k in out}

    def _carried_to_covered(self, stage: int, name: str) -> str | None:
        flow, s, current = self.flow, stage, name
        while s < flow.transformed:
            nxt = [n for n, node in flow.stages[s + 1].items() if node.carried == current]
            if not nxt:
                return None
            s, current = s + 1, nxt[0]
        return current if current in self.covered else None

    def _anonymized(self, placed: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
        if not placed or not self.flow.complete:
            return {}
        stage = self.flow.stages[self.flow.transformed]
        fields, arrays = [], []
        for name, node in stage.items():
            value = placed[name][1] if name in placed else None
            array = _one(value, node.type)
            fields.append(pa.field(name, array.type))
            arrays.append(array)
        batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
        alive = dict(placed)
        for step in self.anonymizers:
            touched = [n for n in (*needs_of(step), *covers_of(step)) if n in alive]
            if not getattr(step, "row_wise", True):
                for n in touched:  # a population gate cannot judge one record: dropped
                    alive.pop(n, None)
                continue
            try:
                batch = step.anonymize(batch)
            except Exception:  # a raw value it cannot take: the columns it needed are dropped
                for n in touched:
                    alive.pop(n, None)
        row = to_records(batch)[0] if batch.num_rows else {}
        return {col: row[name] for name, (col, _) in alive.items() if name in row}

    def _scrubbed(self, plain: Mapping[str, str | None]) -> dict[str, Any]:
        texts = {k: v for k, v in plain.items() if v is not None}
        if not texts:
            return dict(plain)
        if self.scrub is None:  # nothing to scrub with: not stored
            return dict.fromkeys(plain)
        batch = pa.RecordBatch.from_pylist([texts])
        row = to_records(self.scrub(batch, list(texts)))[0]
        return {k: row.get(k) for k in plain}

    # -- positions ------------------------------------------------------------------------

    def position_leak(self, position: Any, batch: pa.RecordBatch) -> str | None:
        """What personal data a position (a checkpoint, a paginator token) holds, as words
        for a message (never the value): ``"a value of the personal column 'email'"`` when
        it holds one of ``batch``'s values of a personal column, ``"a value that looks like
        a phone number"`` when a text in it holds a kind the detector knows (whatever
        column, if any, it came from); ``None`` when it holds neither."""
        column = value_of_columns(position, batch, list(self.source_personal))
        if column is not None:
            return f"a value of the personal column {column!r}"
        kinds = personal_kinds(position_values(position), self.judge)
        return looks_like(kinds) if kinds else None


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else to_json_text(value)


def _one(value: Any, kind: pa.DataType) -> pa.Array:
    """A one-value array of ``kind`` (the column's type at the anonymizers), else text."""
    if value is None:
        return pa.nulls(1, kind)
    try:
        return pa.array([value], kind)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    text = pa.array([_text(value)], pa.string())
    try:
        return pc.cast(text, kind)
    except (pa.ArrowException, TypeError, ValueError):
        return text


# -- texts ---------------------------------------------------------------------------------


def safe_text(text: str, identifiers: Iterable[str] = ()) -> str:
    """A database, driver or expression message with every quoted literal (and unquoted
    e-mail address, digit run or ``Key (...)=(...)`` value) removed; quoted ``identifiers``
    (the pipeline's column and table names) are kept."""
    return without_literals(text, identifiers)


def safe_db_message(exc: BaseException, identifiers: Iterable[str] = ()) -> str:
    """A driver error as a message naming the problem (primary message and SQLSTATE, the
    column, table and constraint PostgreSQL reports), never a value."""
    return safe_pg_message(exc, identifiers)


def safe_exception(exc: BaseException, identifiers: Iterable[str] = ()) -> str:
    """Any exception as text fit for a log line or a stored error: an etl-express error's
    own message (it names columns and positions, never values) with any quoted literal of
    a driver in it removed; anything else as its type and reduced first line."""
    from .errors import ETLError

    if isinstance(exc, ETLError):
        return str(exc)
    return safe_db_message(exc, identifiers)


_PLAIN_KEY = re.compile(r"^[^\W\d][\w\-]{0,63}$")


def shown_key(key: Any) -> str:
    """A JSON object's key as a message may show it: a plain name (``items``, ``next_page``)
    as it is, anything else (an e-mail, a phone, a person's name keying a map) as ``*``."""
    text = str(key)
    return text if _PLAIN_KEY.match(text) else "*"


def withhold_causes(exc: BaseException) -> BaseException:
    """``exc`` with every exception it was raised from or while handling (``__cause__``,
    ``__context__``, and theirs) detached unless it is an etl-express error, whose message
    names columns and positions, never values. A driver's or a user's exception behind an
    :class:`~etl_express.errors.ETLError` keeps its raw message (a ``DETAIL`` line, a value
    in a user's text) and is printed with the traceback wherever the chain is walked
    (``traceback``, Airflow's task log, ``logging``'s ``exc_info``, error trackers); the
    error itself already says what it meant, reduced. Returns ``exc``."""
    from .errors import ETLError

    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if e.__cause__ is not None and not isinstance(e.__cause__, ETLError):
            e.__cause__ = None
            e.__suppress_context__ = True
        if e.__context__ is not None and not isinstance(e.__context__, ETLError):
            e.__context__ = None
        todo += [n for n in (e.__cause__, e.__context__) if n is not None]
    return exc


__all__ = [
    "FREE_TEXT",
    "STRUCTURED",
    "VALUE",
    "Exposure",
    "Node",
    "Personal",
    "PrivacyPlan",
    "Scrubber",
    "ValueJudge",
    "covers_of",
    "needs_of",
    "safe_db_message",
    "safe_exception",
    "safe_text",
    "shown_key",
    "step_label",
    "withhold_causes",
]
