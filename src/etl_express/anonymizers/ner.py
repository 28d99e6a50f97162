"""Names and addresses in Russian free text: the optional NER mode of ``ScrubPII``.

``ScrubPII(columns, kinds=[..., "name", "address"])`` adds two optional kinds: person names,
found by Natasha's news NER model (slovnet, with navec embeddings; the model ships inside the
``natasha`` package, nothing is downloaded; install with ``pip install "etl-express[ner]"``),
and street addresses (``г. Москва, ул. Тверская, д. 5, кв. 12``, with a leading settlement and
a postal code) by a pattern, which needs no model. A place name alone (a city) is not
replaced. Nothing of this is imported, loaded or run unless one of the two kinds is asked
for, so the default ``ScrubPII`` costs exactly what it did.

It is slow (tens of milliseconds a note on one core, batched) and statistical: see
docs/anonymization.md for the measured recall, false positives and rows per second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ETLConfigError

NER_KINDS = ("name", "address")

# a street address: settlement, street type and name, house, building, flat, postal code
_SETTLEMENT = (
    r"(?:(?:г|гор|пос|п|с|ст|д|дер|пгт|рп|х|к|клх|свх|аул|ст-ца)\.?\s+\p{Lu}[\p{L}\-]+"
    r"(?:\s*\([^)]{1,20}\))?,?\s*)"
)
_STREET = (
    r"(?:ул|улица|пр-т|просп|проспект|пр|пер|переулок|бул|бульвар|ш|шоссе|наб|набережная"
    r"|пл|площадь|мкр|микрорайон|алл|аллея|туп|тупик|проезд|линия)\.?\s+"
    r"[\p{L}0-9][\p{L}0-9\-\. ]{1,40}?,?\s*(?:д\.|дом)\s*[0-9]+[\p{L}/0-9]*"
    r"(?:\s*,?\s*(?:к\.|корп\.?|корпус|стр\.?|строение)\s*[0-9]+[\p{L}/0-9]*)?"
    r"(?:\s*,?\s*(?:кв\.|квартира|оф\.|офис)\s*[0-9]+)?"
)
ADDRESS_PATTERN = (
    r"(?:[0-9]{6},?\s*)?" + _SETTLEMENT + r"?" + r"(?i:" + _STREET + r")(?:,?\s*[0-9]{6})?"
)
# rows without a capitalized word after another word, or a street word, have no name or address
_GATE = r"[\p{L}0-9,:;)\-]\s+\p{Lu}\p{Ll}|^\p{Lu}\p{Ll}+\s+\p{Lu}\p{Ll}|(?i:ул\.|улица|д\.\s*[0-9])"

_lock = threading.Lock()
_tagger: Any = None


def _ner() -> Any:
    """Natasha's news NER tagger, loaded once per process (about 3 s and 30 MB)."""
    global _tagger
    with _lock:
        if _tagger is None:
            try:
                from natasha import NewsEmbedding, NewsNERTagger
            except ImportError:
                raise ETLConfigError(
                    "ScrubPII kinds 'name' and 'address' need the optional NER model (natasha)",
                    hint='pip install "etl-express[ner]"',
                ) from None
            _tagger = NewsNERTagger(NewsEmbedding())
        return _tagger


def check_available() -> None:
    """Raise the install hint now (at configuration) when natasha is missing."""
    import importlib.util

    if importlib.util.find_spec("natasha") is None:
        raise ETLConfigError(
            "ScrubPII kinds 'name' and 'address' need the optional NER model (natasha)",
            hint='pip install "etl-express[ner]"',
        )


def scrub_ner(
    texts: pa.Array, kinds: set[str], replace: Callable[[list[str], str], list[str]]
) -> pa.Array:
    """``texts`` with names (``PER``) and, for ``address``, street addresses and places
    (``LOC``) replaced; ``replace(values, kind)`` gives the replacements."""
    if "address" in kinds:
        texts = _replace_addresses(texts, replace)
    if "name" not in kinds:
        return texts
    gate = pc.fill_null(pc.match_substring_regex(texts, _GATE), False)
    if not pc.any(gate).as_py():
        return texts
    rows = np.flatnonzero(gate.to_numpy(zero_copy_only=False))
    values = pc.take(texts, pa.array(rows)).to_pylist()
    wanted = {"PER"}  # places alone (a city) are not an address: Generalize keeps them as region
    out = []
    for text, markup in zip(values, _ner().map(values)):
        spans = [s for s in markup.spans if s.type in wanted]
        if not spans:
            out.append(text)
            continue
        found = [text[s.start : s.stop] for s in spans]
        pieces, last = [], 0
        for s, value in zip(spans, found):
            pieces += [text[last : s.start], replace([value], "name")[0]]
            last = s.stop
        out.append("".join(pieces) + text[last:])
    mask = np.zeros(len(texts), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(texts, pa.array(mask), pa.array(out, pa.string()))


#: values the detector's :func:`count_names` reads at most (the model's time: ~40 ms for 50)
NER_PROBES = 50


def count_names(values: list[str], limit: int = NER_PROBES) -> int:
    """How many of (at most ``limit`` of) ``values`` hold a person's name (the detector's
    ``"name"`` kind); loads the model. Never more than ``limit``: the detector relies on it."""
    return sum(any(s.type == "PER" for s in m.spans) for m in _ner().map(values[:limit]))


def _replace_addresses(texts: pa.Array, replace: Callable[[list[str], str], list[str]]) -> pa.Array:
    found = pc.fill_null(pc.match_substring_regex(texts, ADDRESS_PATTERN), False)
    if not pc.any(found).as_py():
        return texts
    placeholder = replace(["x"], "address")[0]
    if placeholder.startswith("<"):
        return pc.replace_substring_regex(texts, ADDRESS_PATTERN, placeholder)
    import re2

    rx = re2.compile(ADDRESS_PATTERN)
    rows = pc.filter(texts, found).to_pylist()
    done = [rx.sub(lambda m: replace([m.group(0)], "address")[0], t) for t in rows]
    return pc.replace_with_mask(texts, found, pa.array(done, pa.string()))


__all__ = [
    "ADDRESS_PATTERN",
    "NER_KINDS",
    "NER_PROBES",
    "check_available",
    "count_names",
    "scrub_ner",
]
