"""Vectorized normalization of personal identifiers before they are hashed.

The same person must get the same token however a system spelled the value: phones become
E.164 (``8 (916) 123-45-67`` and ``+7 916 1234567`` are both ``+79161234567``, ``+49 (0)30
901820`` and ``0049 30 901820`` both ``+4930901820``), emails are
NFKC-normalized and case-folded, SNILS/INN/OGRN/cards/passports keep their digits only. All
of it runs as Arrow compute kernels (RE2), without a Python loop per row, except phones with
another country code than Russia's, which libphonenumber reads one by one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _speedups
from .._arrays import string_array
from .buffers import bool_array, bool_values, false_if_null, null_string, take_indices
from .phones import e164
from .textfold import fold, special_rows

#: entity types with a dedicated normalization; any other name is normalized as text
ENTITY_TYPES = ("email", "phone", "snils", "inn", "ogrn", "passport", "card", "name", "text")

# column-name words -> entity type (checked on the snake_case words of the name)
_NAME_HINTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("email", frozenset({"email", "mail", "e_mail", "emails", "почта"})),
    (
        "phone",
        frozenset({"phone", "phones", "tel", "telephone", "mobile", "msisdn", "cell", "телефон"}),
    ),
    ("snils", frozenset({"snils", "снилс"})),
    ("inn", frozenset({"inn", "инн"})),
    ("ogrn", frozenset({"ogrn", "ogrnip", "огрн", "огрнип"})),
    ("passport", frozenset({"passport", "паспорт"})),
    ("card", frozenset({"card", "pan", "карта"})),
    (
        "name",
        frozenset({"name", "fio", "surname", "patronymic", "фио", "фамилия", "имя", "отчество"}),
    ),
)


def infer_entity(column: str) -> str:
    """The entity type suggested by a column name (``"client_email"`` -> ``"email"``).

    A name with no known word keeps its own name as entity type: tokens then join across
    tables with the same column name and never collide with another kind of value.
    """
    lowered = column.lower()
    words = set(re.split(r"[^\w]+|_", lowered)) | {lowered}
    for entity, hints in _NAME_HINTS:
        if words & hints:
            return entity
    if lowered.endswith("email"):
        return "email"
    return column


def _as_string(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_dictionary(arr.type):
        return _as_string(arr.dictionary_decode())
    return pc.cast(arr, pa.string())


@functools.lru_cache(maxsize=1)
def _casefold_special() -> str:
    """An RE2 class of the characters that Arrow's lowercasing does not fold as Python's
    ``str.casefold`` does (``ß`` -> ``ss``, final ``ς`` -> ``σ``, ``İ`` -> ``i̇``, Cherokee...),
    found once by running both over every code point."""
    points = [c for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF]
    lowered = pc.utf8_lower(string_array([chr(c) for c in points])).to_pylist()
    special = [c for c, low in zip(points, lowered) if low != chr(c).casefold()]
    return "[" + "".join(f"\\x{{{c:x}}}" for c in special) + "]"


# a character outside printable ASCII, tab/newlines and the basic Cyrillic alphabet (А-я, Ё, ё),
# all of which NFKC leaves alone and case folding treats as lowercasing does
_NFKC_STABLE_OUTSIDE = r"[^\t\n\r\x20-\x7e\x{410}-\x{44f}\x{401}\x{451}]"


def casefold(arr: pa.Array) -> pa.Array:
    """NFKC + Unicode case folding, vectorized: Arrow lowercases everything, and Python's
    ``str.casefold`` runs only on the rare values holding a character that folds differently.
    An all-ASCII column (most emails) only needs lowercasing: NFKC leaves ASCII alone."""
    # (a null counts as ASCII; no literal: pyarrow would import pandas to convert one)
    if pc.all(pc.or_kleene(pc.string_is_ascii(arr), pc.is_null(arr))).as_py():
        return pc.ascii_lower(arr)
    # NFKC (0.5 us a value) and the folding check change nothing in values made only of
    # printable ASCII and the basic Cyrillic letters: they run on the other values only
    other = false_if_null(pc.match_substring_regex(arr, _NFKC_STABLE_OUTSIDE))
    if not pc.any(other).as_py():
        return pc.utf8_lower(arr)
    if not pc.all(other).as_py():
        return pc.replace_with_mask(pc.utf8_lower(arr), other, casefold(pc.filter(arr, other)))
    arr = pc.utf8_normalize(arr, "NFKC")
    special = false_if_null(pc.match_substring_regex(arr, _casefold_special()))
    lowered = pc.utf8_lower(arr)
    if pc.any(special).as_py():
        folded = string_array([v.casefold() for v in pc.filter(arr, special).to_pylist()])
        lowered = pc.replace_with_mask(lowered, special, folded)
    return lowered


def _squash_spaces(arr: pa.Array) -> pa.Array:
    spaced = false_if_null(pc.match_substring_regex(arr, r"\s\s|[^ \S]"))
    if pc.any(spaced).as_py():
        squashed = pc.replace_substring_regex(pc.filter(arr, spaced), r"\s+", " ")
        arr = pc.replace_with_mask(arr, spaced, squashed)
    return pc.utf8_trim_whitespace(arr)


def _trimmed(arr: pa.Array) -> pa.Array:
    """``pc.utf8_trim_whitespace(arr)``, without copying a column none of whose values starts
    or ends with anything but a printable ASCII character other than the space (every
    whitespace character, ASCII or not, starts and ends outside that range)."""
    offsets, data = _speedups.string_buffers(arr)
    start, end = offsets[:-1], offsets[1:]
    filled = end > start
    if not filled.any():
        return pc.utf8_trim_whitespace(arr)
    raw = np.frombuffer(data, dtype=np.uint8)
    first, last = raw[start[filled]], raw[end[filled] - 1]
    graphic = (first > 0x20) & (first < 0x7F) & (last > 0x20) & (last < 0x7F)
    return arr if graphic.all() else pc.utf8_trim_whitespace(arr)


def normalize_email(arr: pa.Array) -> pa.Array:
    return casefold(_trimmed(arr))


def digits_only(arr: pa.Array) -> pa.Array:
    """Keep the ASCII digits of each value: one numpy pass over the UTF-8 bytes (bytes of
    multi-byte characters are never digits, so dropping all other bytes is safe)."""
    arr = _as_string(arr)
    n = len(arr)
    _validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buf, dtype=np.uint8, count=end - start, offset=start)
        if data_buf is not None and end > start
        else np.zeros(0, dtype=np.uint8)
    )
    keep = (data >= 48) & (data <= 57)
    kept = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum(keep, dtype=np.int32, out=kept[1:])
    new_offsets = kept[offsets - start]
    out = pa.StringArray.from_buffers(
        n, pa.py_buffer(new_offsets), pa.py_buffer(np.ascontiguousarray(data[keep]))
    )
    if arr.null_count:
        out = pc.if_else(pc.is_valid(arr), out, null_string())
    return out


def normalize_phone(arr: pa.Array) -> pa.Array:
    """E.164. Russian numbers (``8...``, ``7...``, ten digits, ``+7`` and ten digits) become
    ``+7`` and ten digits by one compiled pass (vectorized kernels without the extension); a
    number with another country code or an international prefix (``+44 ...``, ``0049 ...``,
    ``8 10 1 ...``) is read by libphonenumber (:func:`.phones.e164`)."""
    arr = _as_string(arr)
    if _speedups.native is not None:  # the same rules in one compiled pass
        offsets, data = _speedups.string_buffers(arr)
        new_offsets, new_data, unsure = _speedups.native.phone_e164(
            offsets, len(arr), data, _speedups.output_buffer
        )
        out = _speedups.string_result(arr, new_offsets, new_data)
        foreign = _speedups.row_flags(arr, unsure)
    else:
        out, foreign = _russian_e164(arr)
    if not pc.any(foreign).as_py():
        return out
    redone = e164(pc.filter(arr, foreign).to_pylist())
    return pc.replace_with_mask(out, foreign, string_array(redone))


def _russian_e164(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """:func:`normalize_phone`'s compiled rules as Arrow kernels: the E.164 column, and which
    values they leave to libphonenumber."""
    d = digits_only(arr)
    length = pc.utf8_length(d)
    first = pc.utf8_slice_codeunits(d, 0, 1)
    plus = pc.fill_null(pc.match_substring_regex(arr, r"^[^0-9]*\+"), False)
    plus7 = pc.and_(pc.equal(length, 11), pc.equal(first, "7"))
    prefix = pc.or_(
        pc.and_(pc.starts_with(d, "00"), pc.greater_equal(length, 3)),
        pc.and_(pc.starts_with(d, "810"), pc.greater(length, 11)),
    )
    foreign = pc.fill_null(pc.if_else(plus, pc.invert(plus7), prefix), False)
    trunk = pc.and_(pc.equal(length, 11), pc.is_in(first, pa.array(["7", "8"])))
    national = pc.if_else(trunk, pc.utf8_slice_codeunits(d, 1, 11), d)
    russian = pc.or_(trunk, pc.equal(length, 10))
    prefix_text = pc.if_else(russian, pa.scalar("+7"), pa.scalar("+"))
    e164_text = pc.binary_join_element_wise(prefix_text, national, "")
    return pc.if_else(pc.equal(length, 0), d, e164_text), foreign


def _zero_pad(d: pa.Array, widths: tuple[int, ...]) -> pa.Array:
    """Restore leading zeros lost by numeric storage: pad to the smallest fitting width."""
    # digits are ASCII: a value's length is its byte length (nulls never short); compared in
    # numpy, as a literal handed to Arrow would make pyarrow import pandas
    offsets, _ = _speedups.string_buffers(d)
    length = np.diff(offsets) * bool_values(pc.is_valid(d))
    out = d
    for width in sorted(widths, reverse=True):
        short = bool_array((length > 0) & (length <= width))
        out = pc.if_else(short, pc.utf8_lpad(d, width, "0"), out)
    return out


def normalize_text(arr: pa.Array) -> pa.Array:
    return _squash_spaces(casefold(arr))


def normalize_name(arr: pa.Array) -> pa.Array:
    """Names: case-folded, ``ё`` as ``е``, whitespace squashed."""
    return pc.replace_substring(normalize_text(arr), "ё", "е")


def _digits_padded(widths: tuple[int, ...]) -> Callable[[pa.Array], pa.Array]:
    def normalize(arr: pa.Array) -> pa.Array:
        return _zero_pad(digits_only(arr), widths)

    return normalize


_NORMALIZERS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "email": normalize_email,
    "phone": normalize_phone,
    "snils": _digits_padded((11,)),
    "inn": _digits_padded((10, 12)),
    "ogrn": _digits_padded((13, 15)),
    "passport": _digits_padded((10,)),
    "card": digits_only,
    "name": normalize_name,
    "text": normalize_text,
}


_SAMPLE = 16384  # values sampled to estimate how many are distinct


def _mostly_repeated(arr: pa.Array) -> bool:
    """Whether at most half the values are distinct, so that computing on the distinct ones
    only pays for the dictionary encoding. Estimated from the repeats in a random sample: with D
    distinct values, a sample of s values holds about s*s/(2D) repeats."""
    n = len(arr)
    if n <= _SAMPLE:
        return pc.count_distinct(arr).as_py() <= n // 2
    picks = np.random.default_rng(n).integers(0, n, _SAMPLE)
    repeats = _SAMPLE - pc.count_distinct(arr.take(take_indices(picks))).as_py()
    return repeats * n > _SAMPLE * _SAMPLE  # estimated D = s*s/(2*repeats) < n/2


#: a column's shape is estimated on its first batch of more than ``_SAMPLE`` rows and then on
#: every ``RESAMPLE_EVERY``-th such batch (:class:`ColumnShapes`)
RESAMPLE_EVERY = 8


class ColumnShapes:
    """Whether each column of a run holds mostly repeated values, for :func:`on_distinct`,
    without estimating it on every batch.

    The estimate (``count_distinct`` of 16,384 values picked at random) cost a quarter of
    ``Pseudonymize``'s CPU on 50,000-row batches. A batch of up to ``_SAMPLE`` rows is still
    counted exactly, every time (cheap, and the ramped first batches of a read are that
    small); the first bigger batch of a column is sampled, and then every
    :data:`RESAMPLE_EVERY`-th one; the batches in between reuse its answer. The answer only
    chooses between two computations that give the same values (each distinct value computed
    once, or every value), so a stale answer can cost time, never change a token.
    """

    def __init__(self) -> None:
        self._big: dict[str, tuple[bool, int]] = {}  # column -> (answer, big batches since)

    def mostly_repeated(self, column: str, arr: pa.Array) -> bool:
        if len(arr) <= _SAMPLE:
            return _mostly_repeated(arr)
        answer, since = self._big.get(column, (False, RESAMPLE_EVERY))
        if since >= RESAMPLE_EVERY:
            answer, since = _mostly_repeated(arr), 0
        self._big[column] = (answer, since + 1)
        return answer


def on_distinct(
    arr: pa.Array, fn: Callable[[pa.Array], pa.Array], repeated: bool | None = None
) -> pa.Array:
    """``fn(arr)``, computed once per distinct value when at most half the values are
    distinct (cities, statuses, repeated names): the dictionary encoding then pays for itself.
    ``repeated``: whether they are, when the caller knows (:class:`ColumnShapes`); estimated
    here otherwise. Either way gives the same values."""
    if _mostly_repeated(arr) if repeated is None else repeated:
        encoded = pc.dictionary_encode(arr)
        return pc.take(fn(encoded.dictionary), encoded.indices)
    return fn(arr)


_DIGIT_ENTITIES = frozenset({"phone", "snils", "inn", "ogrn", "passport", "card"})


def _folded(arr: pa.Array) -> pa.Array:
    """Values holding other scripts' or full-width digits (``８ ９１６ …``) with ASCII digits
    (:mod:`.textfold`), so they normalize like the same number written in ASCII."""
    special = special_rows(arr)
    if not pc.any(special).as_py():
        return arr
    folded = [fold(v) for v in pc.filter(arr, special).to_pylist()]
    return pc.replace_with_mask(arr, special, string_array(folded))


def normalize(arr: pa.Array, entity: str) -> pa.Array:
    """The normalized string form of ``arr`` for hashing as ``entity``."""
    arr = _as_string(arr)
    if entity in _DIGIT_ENTITIES:
        arr = _folded(arr)
    return _NORMALIZERS.get(entity, normalize_text)(arr)


__all__ = [
    "ENTITY_TYPES",
    "RESAMPLE_EVERY",
    "ColumnShapes",
    "casefold",
    "digits_only",
    "infer_entity",
    "normalize",
    "normalize_email",
    "normalize_phone",
    "on_distinct",
]
