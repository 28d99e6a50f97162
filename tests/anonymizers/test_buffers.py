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
    any_true,
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


@pytest.mark.parametrize("n", LENGTHS)
def test_any_true_is_pc_any(n: int) -> None:
    """Nulls skipped, an empty or all-null array false, at every slice offset."""
    rng = np.random.default_rng(n)
    for trues in (0.0, 0.01, 0.5):
        values = [None if v < 0.2 else bool(v < 0.2 + trues) for v in rng.random(n)]
        arr = pa.array(values, pa.bool_())
        for part in (arr, arr.slice(min(3, n)), arr.slice(0, n // 2)):
            assert any_true(part) is bool(pc.any(part).as_py())


@pytest.mark.parametrize("n", LENGTHS)
def test_replace_rows_is_replace_with_mask(n: int) -> None:
    """The compiled merge of ScrubPII's changed rows gives pyarrow's result: nulls kept where
    no row replaces them, any slice offset of either column, no row or every row replaced."""
    from etl_express.anonymizers.scrub_kernels import replace_rows

    rng = np.random.default_rng(n + 1)
    words = ["", "a", "тест", "x" * 40, "<PHONE>", "8 916"]
    texts = pa.array([None if v < 0.1 else words[int(v * 60) % 6] for v in rng.random(n + 5)])
    for part in (texts.slice(0, n), texts.slice(min(5, n), n)):
        for share in (0.0, 0.5, 1.0):
            rows = pc.and_(bool_array(rng.random(len(part)) < share), pc.is_valid(part))
            count = int(pc.sum(rows).as_py() or 0)
            new = pa.array([f"new {i} ё" for i in range(count + 3)]).slice(3 if n % 2 else 0, count)
            want = pc.replace_with_mask(part, rows, new)
            got = replace_rows(part, rows, new)
            assert got.equals(want)


def test_compiled_outputs_as_bytes_objects_give_the_same_columns(
    monkeypatch: pytest.MonkeyPatch, anon_key: object
) -> None:
    """Without pyarrow's allocator (``alloc=None``) the native functions return bytes objects,
    which the wrappers turn into the same columns."""
    from etl_express.anonymizers import Pseudonymize, ScrubPII
    from etl_express.anonymizers.scrub_kernels import replace_rows

    notes = pa.array(["тел. 8 (916) 123-45-67, a@b.ru", None, "просто текст", "+7 916 1234567"])
    phones = pa.array(["8 916 123 45 67", "+7 (916) 000-11-22", None])
    key = anon_key
    batch = pa.RecordBatch.from_arrays([phones], ["phone"])
    rows, new = pa.array([True, False, True, False]), pa.array(["x", "y"])
    pooled = (
        ScrubPII(["notes"]).scrub(notes),
        Pseudonymize(["phone"], key=key).anonymize(batch),  # type: ignore[arg-type]
        replace_rows(notes, rows, new),
    )
    monkeypatch.setattr(_speedups, "output_buffer", None)
    assert ScrubPII(["notes"]).scrub(notes).equals(pooled[0])
    assert Pseudonymize(["phone"], key=key).anonymize(batch).equals(pooled[1])  # type: ignore[arg-type]
    assert replace_rows(notes, rows, new).equals(pooled[2])
