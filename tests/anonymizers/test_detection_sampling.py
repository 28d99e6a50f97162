"""The detector's sampling reads Arrow columns without pyarrow's conversions of Python values
(which import pandas, see tests/test_import_time.py): the same samples as ``pa.array`` and
``to_pylist`` give, value for value and as text."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl_express.anonymizers import sampling
from etl_express.anonymizers.buffers import take_indices
from etl_express.anonymizers.detectors import SNILS_LOW_RANGE_MAX, snils_low_range
from etl_express.anonymizers.sampling import python_values

MOMENTS = [
    dt.datetime(2026, 12, 7, 6, 25, 43, 123456, tzinfo=dt.timezone.utc),
    None,
    dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.timezone.utc),  # a summer-time change in Europe
    dt.datetime(1, 1, 1, 3, 0, tzinfo=dt.timezone.utc),
    dt.datetime(9999, 12, 31, 20, 59, 59, 999999, tzinfo=dt.timezone.utc),
]

OTHER_VALUES = {
    "date32[day]": [dt.date(1985, 3, 14), None, dt.date(1, 1, 1)],
    "decimal128(10, 2)": [Decimal("1.50"), None, Decimal("-0.01")],
    "double": [79161234567.0, None, 1.5],
    "string": ["a", None, ""],
}


@pytest.mark.parametrize(
    "type_",
    [
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ms", tz="Europe/Moscow"),
        pa.timestamp("us", tz="America/New_York"),
        pa.timestamp("s", tz="+03:00"),
        pa.timestamp("us", tz="-05:30"),
        pa.timestamp("us"),
        pa.date32(),
        pa.decimal128(10, 2),
        pa.float64(),
        pa.string(),
    ],
)
def test_python_values_are_to_pylist(type_: pa.DataType) -> None:
    if pa.types.is_timestamp(type_):
        moments = [m.replace(microsecond=0) if m and type_.unit == "s" else m for m in MOMENTS]
        values = pa.array(
            [m if m is None or type_.tz else m.replace(tzinfo=None) for m in moments], type_
        )
    else:
        values = pa.array(OTHER_VALUES[str(type_)], type_)
    for arr in (values, values.slice(1), pa.chunked_array([values, values.slice(2)])):
        try:
            want = arr.to_pylist()
        except OverflowError:  # year 1 west of Greenwich: pyarrow's error, the same
            with pytest.raises(OverflowError):
                python_values(arr)
            continue
        got = python_values(arr)
        assert got == want
        assert [str(v) for v in got] == [str(v) for v in want]  # the text the rules judge
        assert [getattr(v, "utcoffset", lambda: None)() for v in got] == [
            getattr(v, "utcoffset", lambda: None)() for v in want
        ]


@pytest.mark.parametrize("n", [0, 1, 7, 200, 1001])
def test_take_indices_are_pa_array(n: int) -> None:
    positions = sampling.evenly(n)
    built = take_indices(positions)
    built.validate(full=True)
    assert built.equals(pa.array(positions, pa.int64()))
    assert take_indices(positions[1:]).equals(pa.array(positions[1:], pa.int64()))


def _sample_by_pylist(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """The detector's sampling as it was written with pyarrow's conversions."""

    def non_empty(v: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        v = pc.drop_null(v)
        if pa.types.is_dictionary(v.type):
            v = v.cast(v.type.value_type)
        if pa.types.is_string(v.type) or pa.types.is_large_string(v.type):
            v = pc.filter(v, pc.greater(pc.utf8_length(v), 0))
        return v

    if len(values) > 800:
        picked = non_empty(values.take(pa.array(np.linspace(0, len(values) - 1, 800).astype(int))))
        if len(picked) >= 200:
            values = picked
    values = non_empty(values)
    taken = values.take(pa.array(sampling.evenly(len(values))))
    return [sampling.text_of(v) for v in taken.to_pylist()]


@pytest.mark.parametrize("n", [0, 3, 150, 799, 5000])
def test_the_sample_is_the_one_pyarrow_conversions_gave(n: int) -> None:
    rng = random.Random(n)
    texts = [rng.choice([None, "", " ", "a@b.ru", f"note {i}", "héllo"]) for i in range(n)]
    moments = [
        None
        if i % 7 == 0
        else dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)
        for i in range(n)
    ]
    columns = [
        pa.array(texts, pa.string()),
        pa.array(texts, pa.string()).dictionary_encode(),
        pa.array(texts, pa.large_string()),
        pa.array(moments, pa.timestamp("us", tz="UTC")),
        pa.array(moments, pa.timestamp("us", tz="UTC")).cast(
            pa.timestamp("us", tz="Europe/Moscow")
        ),
        pa.array([None if i % 3 == 0 else i * 10.0 for i in range(n)], pa.float64()),
        pa.array([rng.randrange(10**11) for _ in range(n)], pa.int64()),
    ]
    for column in columns:
        for values in (column, pa.chunked_array([column.slice(0, n // 2), column.slice(n // 2)])):
            assert sampling.sample_texts(values) == _sample_by_pylist(values)


def _snils_low_range_by_compute(digits: pa.Array) -> np.ndarray:
    """snils_low_range as it was written with pyarrow.compute."""
    eleven = pc.equal(pc.utf8_length(digits), 11)
    out = np.zeros(len(digits), dtype=bool)
    if pc.any(eleven).as_py():
        first = pc.cast(pc.utf8_slice_codeunits(pc.filter(digits, eleven), 0, 9), pa.int64())
        out[eleven.to_numpy(zero_copy_only=False)] = (
            first.to_numpy(zero_copy_only=False) <= SNILS_LOW_RANGE_MAX
        )
    return out


def test_snils_low_range_is_the_compute_one() -> None:
    rng = random.Random(24)
    values = ["", "00100199800", "00100199900", "12345678901", "0000000000", "001001998000"]
    values += [
        "".join(rng.choice("0012") for _ in range(rng.choice([10, 11, 11, 12])))
        for _ in range(3000)
    ]
    digits = pa.array(values, pa.string())
    for arr in (digits, digits.slice(5), digits.slice(0, 0), pa.array(["1" * 10], pa.string())):
        assert np.array_equal(snils_low_range(arr), _snils_low_range_by_compute(arr))
    assert snils_low_range(pa.array(["00100199800", "00100199900"])).tolist() == [True, False]
