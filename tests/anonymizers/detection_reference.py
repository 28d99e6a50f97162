"""The untagged-column detector's decision path as it was before its per-column shortcuts
(issue 23, main at c0eb148): every column sampled whatever its type and name, every value
converted to Python and folded, every shape test run value by value. Kept verbatim (only
renamed where it was private; the rule for lower-cased full names, a decision added later,
is in it too, without the fast path's shortcut) so that ``test_detection_equivalence.py`` can check the fast
path's findings against it on generated columns; the value tests themselves (ScrubPII, the
shape predicates, the NER model) are the library's own, so what is compared is the skipping.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from etl_express._arrays import string_array
from etl_express.anonymizers import detection_rules as rules
from etl_express.anonymizers.buffers import take_indices
from etl_express.anonymizers.detection import (
    _CHANCE_LENGTHS,
    _DIGIT_RUN,
    _PHONE_RUN,
    CHANCE_MIN_MATCHES,
    CHECK_DIGIT_SHARE,
    MIN_SHARE,
    NAME_SHARE,
    Finding,
    _kinds,
    _scrubber,
)
from etl_express.anonymizers.detection_rules import (
    _DIGIT,
    _RU_ADDRESS,
    _WORLD_ADDRESS,
    FULL_NAME_SHARE,
    SHAPE_SHARE,
    _bare_name,
    _full_name,
    named_kinds,
)
from etl_express.anonymizers.person_names import (
    login_name_evident,
    lower_name_evident,
    person_evident,
)
from etl_express.anonymizers.sampling import PRESAMPLE as _PRESAMPLE
from etl_express.anonymizers.sampling import (
    SAMPLE_SIZE,
    TEMPORAL_KINDS,
    is_sampled_field,
    python_values,
    spread,
)
from etl_express.anonymizers.sampling import evenly as _evenly
from etl_express.anonymizers.sampling import is_json as _is_json
from etl_express.anonymizers.sampling import is_temporal as _is_temporal
from etl_express.anonymizers.sampling import json_leaves as _json_leaves
from etl_express.anonymizers.sampling import non_empty as _non_empty
from etl_express.anonymizers.sampling import text_of as _text
from etl_express.anonymizers.scrub_rules import KINDS
from etl_express.anonymizers.textfold import fold


def is_street_address(value: str) -> bool:
    if not _DIGIT.search(value):  # every address written here has a number
        return False
    return bool(_WORLD_ADDRESS.search(value)) or bool(_RU_ADDRESS.search(value))


RULES = tuple(
    replace(rule, strong=is_street_address) if rule.kind == "address" else rule
    for rule in rules.RULES
)


def sample(values: pa.Array | pa.ChunkedArray | Iterable[Any]) -> list[str]:
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        kept = [_text(v) for v in values if v is not None and v != ""]
        return [kept[i] for i in _evenly(len(kept))]
    if len(values) > _PRESAMPLE * SAMPLE_SIZE:
        import numpy as np

        spread = np.linspace(0, len(values) - 1, _PRESAMPLE * SAMPLE_SIZE).astype(int)
        picked = _non_empty(values.take(take_indices(spread)))
        if len(picked) >= SAMPLE_SIZE:
            values = picked
    values = _non_empty(values)
    return [_text(v) for v in python_values(values.take(take_indices(_evenly(len(values)))))]


def shape_counts(
    column: str, path: str | None, sample: Sequence[str], kinds: Collection[str]
) -> dict[str, int]:
    named = named_kinds(column, path)
    sample = [fold(v) for v in sample]
    out: dict[str, int] = {}
    for rule in RULES:
        if rule.kind not in kinds:
            continue
        if rule.kind == "name" and "name" in named and _bare_name(column, path):
            evident = sum(person_evident(v, alone=False) for v in sample)
            if evident >= SHAPE_SHARE * len(sample):
                out["name"] = evident
                continue
            named = named - {"name"}
        if rule.kind in named:
            share = SHAPE_SHARE
            shaped = rules._shaped(sample, rule.weak, share * len(sample))
        elif rule.kind == "name" and not any(c.isupper() for v in sample for c in v):
            # no capital in the whole sample: lower-cased full names (two listed words each) and
            # logins made of a name
            share = FULL_NAME_SHARE
            shaped = [v for v in sample if lower_name_evident(v) or login_name_evident(v)]
        elif rule.strong is not None:
            if rule.kind == "name" and not rules._enough(sample, _full_name, FULL_NAME_SHARE):
                continue
            share = rule.strong_share
            shaped = rules._shaped(sample, rule.strong, share * len(sample))
        else:
            continue
        if len(shaped) < share * len(sample):
            continue
        matched = rule.confirm(shaped) if rule.confirm and shaped else len(shaped)
        if matched and matched >= share * len(sample):
            out[rule.kind] = matched
    return out


def judge(
    samples: Mapping[tuple[str, str | None], list[str]], kinds: tuple[str, ...]
) -> list[Finding]:
    samples = {key: sample for key, sample in samples.items() if sample}
    if not samples:
        return []
    pattern_kinds = tuple(k for k in kinds if k in KINDS)
    everything = [v for sample in samples.values() for v in sample]
    found = (
        _scrubber(pattern_kinds).find(string_array(everything))
        if pattern_kinds
        else [set()] * len(everything)
    )
    out, at = [], 0
    for (column, path), sample in samples.items():
        counts: dict[str, int] = {}
        chance_free: set[str] = set()
        for kinds_found in found[at : at + len(sample)]:
            for kind in kinds_found:
                counts[kind] = counts.get(kind, 0) + 1
        at += len(sample)
        if "name" in kinds:
            names = names_of(sample)
            counts["name"] = names if names >= NAME_SHARE * len(sample) else 0
        unproven = [k for k in kinds if not counts.get(k)]
        for kind, matched in shape_counts(column, path, sample, unproven).items():
            counts[kind] = matched
            chance_free.add(kind)
        for kind in kinds:
            matched = counts.get(kind, 0)
            if (
                matched
                and matched >= MIN_SHARE * len(sample)
                and (kind in chance_free or beats_chance(kind, matched, sample))
            ):
                out.append(Finding(column, kind, matched, len(sample), path))
    return out


def beats_chance(kind: str, matched: int, sample: list[str]) -> bool:
    lengths = _CHANCE_LENGTHS.get(kind)
    if lengths is None:
        return True
    runs = _PHONE_RUN if kind == "phone" else _DIGIT_RUN
    candidates = sum(
        any(sum(c.isdigit() for c in run) in lengths for run in runs.findall(fold(v)))
        for v in sample
    )
    return matched >= CHANCE_MIN_MATCHES and matched >= CHECK_DIGIT_SHARE * max(candidates, matched)


def names_of(sample: list[str]) -> int:
    """``_names`` as it was: the model's own pre-filter (capitalized words), then
    the model (loaded once; the equivalence test runs with it when the extra is installed)."""
    import importlib.util

    shaped = [v for v in sample if _name_shaped(v)]
    if len(shaped) < NAME_SHARE * len(sample) or importlib.util.find_spec("natasha") is None:
        return 0
    from etl_express.anonymizers.ner import NER_PROBES, count_names

    # the count estimated from the model's share among the values it reads (since the fix
    # of the 50-value cap; what the shortcuts are compared against)
    probes = [shaped[i] for i in spread(len(shaped), NER_PROBES)]
    return round(count_names(probes) * len(shaped) / len(probes))


def _name_shaped(value: str) -> bool:
    words = value.split()
    return 2 <= len(words) <= 3 and all(
        w[0].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words
    )


def column_samples(
    values: pa.Array | pa.ChunkedArray | Iterable[Any], column: str, json_text: bool
) -> dict[tuple[str, str | None], list[str]]:
    taken = sample(values)
    if not json_text:
        return {(column, None): taken}
    return {
        (column, None if path == "$" else path): leaves
        for path, leaves in _json_leaves(taken).items()
    }


def detect_values(
    values: Any, column: str = "value", *, kinds: Collection[str] | None = None
) -> list[Finding]:
    return judge({(column, None): sample(values)}, _kinds(kinds))


def detect_column(
    values: Any, column: str, *, json_text: bool = False, kinds: Collection[str] | None = None
) -> list[Finding]:
    return judge(column_samples(values, column, json_text), _kinds(kinds))


def detect_batch(
    batch: pa.RecordBatch,
    *,
    skip: Collection[str] = (),
    residual: Mapping[str, Collection[str]] | None = None,
) -> list[Finding]:
    residual = residual or {}
    groups: dict[tuple[str, ...], dict[tuple[str, str | None], list[str]]] = {}
    for field in batch.schema:
        if not is_sampled_field(field):
            continue
        kinds = residual.get(field.name)
        if (kinds is None and field.name in skip) or (kinds is not None and not kinds):
            continue
        judged = _kinds(kinds)
        if _is_temporal(field):
            judged = tuple(k for k in judged if k in TEMPORAL_KINDS)
            if not judged:
                continue
        groups.setdefault(judged, {}).update(
            column_samples(batch.column(field.name), field.name, _is_json(field))
        )
    return [f for kinds, samples in groups.items() for f in judge(samples, kinds)]
