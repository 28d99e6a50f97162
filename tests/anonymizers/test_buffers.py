"""The arrays ``ScrubPII``'s kernels build from buffers (anonymizers/buffers.py) and the flags
``_speedups.row_flags`` packs equal what pyarrow's conversions give (which import pandas, see
tests/test_import_time.py), at every length and slice offset a bitmap can have."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl_express import _speedups
from etl_express.anonymizers.buffers import (
    bool_array,
    bool_values,
    false_if_null,
    int32_array,
    null_string,
)

LENGTHS = [0, 1, 7, 8, 9, 63, 64, 65, 1000]


def _mask(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < 0.4


@pytest.mark.parametrize("n", LENGTHS)
def test_bool_array_is_pa_array(n: int) -> None:
    mask = _mask(n, n)
    built = bool_array(mask)
    built.validate(full=True)
    assert built.equals(pa.array(mask, pa.bool_()))
    assert bool_array(mask[3:]).equals(pa.array(mask[3:], pa.bool_()))


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("start", [0, 1, 5, 8, 13])
def test_bool_values_are_fill_null_to_numpy(n: int, start: int) -> None:
    mask, valid = _mask(n + start, n), _mask(n + start, n + 1)
    with_nulls = pa.array([bool(m) if v else None for m, v in zip(mask, valid)], pa.bool_())
    for arr in (with_nulls, pa.array(mask, pa.bool_())):
        part = arr.slice(start)
        want = pc.fill_null(part, False).to_numpy(zero_copy_only=False)
        got = bool_values(part)
        assert got.dtype == np.bool_ and np.array_equal(got, want)
        assert false_if_null(part).equals(pc.fill_null(part, False))
    assert bool_values(pa.nulls(n, pa.bool_())).tolist() == [False] * n


@pytest.mark.parametrize("n", LENGTHS)
def test_row_flags_are_the_bytes_as_booleans(n: int) -> None:
    flags = _mask(n, n + 2).astype(np.uint8).tobytes()
    texts = pa.array([None if i % 3 == 0 else "x" for i in range(n)], pa.string())
    for like in (pa.array(["x"] * n, pa.string()), texts):
        got = _speedups.row_flags(like, flags)
        got.validate(full=True)
        want = pa.array(np.frombuffer(flags, dtype=np.bool_))
        if like.null_count:
            want = pc.and_(want, pc.is_valid(like))
        assert got.equals(want)


def test_int32_array_and_null_string_are_pa_conversions() -> None:
    offsets = np.array([0, 2, 2, 5], dtype=np.int64)
    assert int32_array(offsets).equals(pa.array(offsets, pa.int32()))
    assert null_string().equals(pa.scalar(None, pa.string()))
