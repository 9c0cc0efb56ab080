"""Tests of ``churn_engine._columns``: output columns written as Arrow buffers.

- ``string_columns`` against Polars' own ``Series(table).gather(index)``:
  hand-computed examples (views checked byte by byte: inline strings of up to
  12 bytes, longer ones as length, prefix, buffer 0 and offset), mixed-radix
  indexes, the clamped digit of buyer_type, several columns in one call, and
  hypothesis over random tables (empty, 12- and 13-byte, non-ASCII strings,
  None) and codes; a code out of range is a KernelError naming the row.
- ``date_column`` against a NumPy/Polars formulation: nulls where the day is
  the marker, 0 written under them.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churn_engine import KernelError
from churn_engine import _columns as C

NULL_DAY = -(2**31)
BLOCK_ROWS = 1024  # _columns.pxd: rows per parallel task


def _column(table: list[str | None], digits: list[C.Digit], threads: int = 1) -> pl.Series:
    (series,) = C.string_columns([("s", table, digits)], threads)
    return series


def _reference(table: list[str | None], index: np.ndarray) -> pl.Series:
    return pl.Series("s", table, dtype=pl.String).gather(index.astype(np.int64))


def _views(series: pl.Series) -> list[bytes]:
    """The 16-byte views behind a String Series, as Polars exports them."""
    array = series.to_arrow(compat_level=pl.CompatLevel.newest())
    raw = array.buffers()[1].to_pybytes()[16 * array.offset :]
    return [raw[16 * i : 16 * i + 16] for i in range(len(array))]


# ---------------------------------------------------------------------------
# string_columns: hand-computed examples
# ---------------------------------------------------------------------------


def test_views_inline_and_long_by_hand() -> None:
    # "" and "exactly12byt" (12 bytes) are inline; "thirteen byte" (13) and
    # "héllo wörld" (13 bytes in UTF-8) are long: offsets 0 and 13 in buffer 0
    table = ["", "exactly12byt", "thirteen byte", None, "héllo wörld"]
    codes = np.array([1, 2, 4, 0, 3, 2], dtype=np.int8)
    series = _column(table, [(codes, 0, 5, False)])
    assert series.dtype == pl.String and series.name == "s"
    assert series.to_list() == [
        "exactly12byt", "thirteen byte", "héllo wörld", "", None, "thirteen byte",
    ]  # fmt: skip
    assert series.null_count() == 1
    views = _views(series)
    assert views[0] == struct.pack("<i", 12) + b"exactly12byt"
    assert views[1] == struct.pack("<i4sii", 13, b"thir", 0, 0)
    assert views[2] == struct.pack("<i4sii", 13, "hé".encode() + b"l", 0, 13)
    assert views[3] == bytes(16)  # the empty string: length 0, zero padding
    assert views[5] == views[1]


def test_mixed_radix_index_by_hand() -> None:
    # index = 3 * (a - 1) + b over the table "1a".."2c": a in 1..2, b in 0..2
    table = ["1a", "1b", "1c", "2a", "2b", "2c"]
    a = np.array([1, 2, 2, 1], dtype=np.int32)
    b = np.array([0, 2, 0, 1], dtype=np.int64)
    series = _column(table, [(a, 1, 3, False), (b, 0, 3, False)])
    assert series.to_list() == ["1a", "2c", "2a", "1b"]


def test_clamped_digit_is_buyer_type() -> None:
    # one order: one_time; two or more (any number): repeat
    n_orders = np.array([1, 2, 7, 1, 2**40], dtype=np.int64)
    series = _column(["one_time", "repeat"], [(n_orders, 1, 3, True)])
    assert series.to_list() == ["one_time", "repeat", "repeat", "one_time", "repeat"]


def test_several_columns_in_one_call() -> None:
    status = np.array([0, 2, 1], dtype=np.int8)
    reason = np.array([5, 0, 1], dtype=np.int32)
    reasons = [f"reason number {k}" for k in range(6)]
    first, second = C.string_columns(
        [("status", ["active", "at_risk", "churned"], [(status, 0, 3, False)]),
         ("reason", reasons, [(reason, 0, 6, False)])],
        2,
    )  # fmt: skip
    assert (first.name, first.to_list()) == ("status", ["active", "churned", "at_risk"])
    assert (second.name, second.to_list()) == (
        "reason", ["reason number 5", "reason number 0", "reason number 1"],
    )  # fmt: skip


def test_no_rows_and_no_columns() -> None:
    series = _column(["a"], [(np.empty(0, dtype=np.int8), 0, 1, False)])
    assert series.dtype == pl.String and series.len() == 0
    assert C.string_columns([], 1) == []


def test_nulls_across_blocks() -> None:
    # validity bytes of consecutive blocks, and a last block of 3 rows
    n = 2 * BLOCK_ROWS + 3
    codes = (np.arange(n) % 3).astype(np.int8)
    series = _column(["x", None, "a string of 20 bytes"], [(codes, 0, 3, False)], threads=2)
    assert series.equals(_reference(["x", None, "a string of 20 bytes"], codes))
    assert series.null_count() == len(range(1, n, 3))


# ---------------------------------------------------------------------------
# string_columns: bad codes and bad arguments
# ---------------------------------------------------------------------------


def test_code_out_of_range_names_column_row_and_value() -> None:
    codes = np.zeros(3000, dtype=np.int8)
    codes[2100] = 3
    with pytest.raises(KernelError, match=r"column status\): row 2100 has code 3 \(allowed 0..2\)"):
        C.string_columns([("status", ["a", "b", "c"], [(codes, 0, 3, False)])], 2)


def test_code_out_of_range_in_a_later_column() -> None:
    fine = np.array([0, 1, 0], dtype=np.int8)
    bad = np.array([0, 0, 9], dtype=np.int32)
    with pytest.raises(KernelError, match=r"column second\): row 2 has code 9"):
        C.string_columns(
            [("first", ["a", "b"], [(fine, 0, 2, False)]),
             ("second", ["a", "b"], [(bad, 0, 2, False)])],
            1,
        )  # fmt: skip


def test_negative_code_and_below_a_clamped_digit() -> None:
    with pytest.raises(KernelError, match="row 1 has code -1"):
        _column(["a", "b"], [(np.array([0, -1], dtype=np.int32), 0, 2, False)])
    with pytest.raises(KernelError, match=r"row 0 has code 0 \(allowed 1\.\.\)"):
        _column(["one_time", "repeat"], [(np.array([0, 5], dtype=np.int64), 1, 3, True)])


def test_huge_codes_do_not_wrap_into_range() -> None:
    # the digit is an unsigned difference: far-off values must not wrap into range
    big = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max], dtype=np.int64)
    with pytest.raises(KernelError, match="row 0"):
        _column(["a", "b"], [(big, 1, 3, False)])


def test_empty_table_with_rows() -> None:
    with pytest.raises(KernelError, match="row 0"):
        _column([], [(np.zeros(2, dtype=np.int8), 0, 0, False)])


def test_bad_arguments() -> None:
    codes = np.zeros(2, dtype=np.int8)
    with pytest.raises(TypeError, match="int8, int32 or int64"):
        _column(["a"], [(codes.astype(np.uint8), 0, 1, False)])
    with pytest.raises(TypeError, match="one-dimensional"):
        _column(["a"], [(codes.reshape(1, 2), 0, 1, False)])
    with pytest.raises(ValueError, match="the table has 2"):
        _column(["a", "b"], [(codes, 0, 3, False)])
    with pytest.raises(ValueError, match="different lengths"):
        _column(["a"], [(codes, 0, 1, False), (codes[:1], 0, 1, False)])
    with pytest.raises(TypeError, match="str or None"):
        _column([b"a"], [(codes, 0, 1, False)])  # type: ignore[list-item]


# ---------------------------------------------------------------------------
# string_columns: against Polars' gather
# ---------------------------------------------------------------------------

# lengths around the inline limit (12 bytes) and multi-byte characters
_text = st.one_of(
    st.none(),
    st.sampled_from(["", "a" * 12, "b" * 13, "é" * 6, "é" * 7, "ü" * 20, "€"]),
    st.text(max_size=20),
)


@given(
    table=st.lists(_text, min_size=1, max_size=40),
    n=st.integers(0, 3 * BLOCK_ROWS),
    dtype=st.sampled_from([np.int8, np.int32, np.int64]),
    seed=st.integers(0, 2**32 - 1),
    threads=st.sampled_from([1, 2]),
)
def test_one_digit_matches_polars_gather(
    table: list[str | None], n: int, dtype: type, seed: int, threads: int
) -> None:
    codes = np.random.default_rng(seed).integers(0, len(table), n).astype(dtype)
    series = _column(table, [(codes, 0, len(table), False)], threads)
    expected = _reference(table, codes)
    assert series.equals(expected, check_names=True)
    assert series.null_count() == expected.null_count()


@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    lows=st.lists(st.integers(-3, 3), min_size=4, max_size=4),
    n=st.integers(0, 2 * BLOCK_ROWS),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_mixed_radix_matches_numpy_index(
    sizes: list[int], lows: list[int], n: int, seed: int, data: st.DataObject
) -> None:
    rng = np.random.default_rng(seed)
    entries = int(np.prod(sizes))
    table = data.draw(st.lists(_text, min_size=entries, max_size=entries))
    digits: list[C.Digit] = []
    index = np.zeros(n, dtype=np.int64)
    for size, low in zip(sizes, lows, strict=False):
        values = rng.integers(low, low + size, n).astype(np.int32)
        digits.append((values, low, low + size, False))
        index = index * size + (values - low)
    series = _column(table, digits, 2)
    assert series.equals(_reference(table, index))


# ---------------------------------------------------------------------------
# date_column
# ---------------------------------------------------------------------------


def test_date_column_by_hand() -> None:
    days = np.array([0, NULL_DAY, 19_723, NULL_DAY], dtype=np.int32)
    series = C.date_column("d", days, NULL_DAY, 1)
    assert series.dtype == pl.Date and series.name == "d"
    assert series.to_list()[0].isoformat() == "1970-01-01"
    assert series.to_list()[2].isoformat() == "2024-01-01"
    assert series.is_null().to_list() == [False, True, False, True]
    assert days.tolist() == [0, 0, 19_723, 0]  # taken over: 0 under the nulls


def test_date_column_without_nulls_and_empty() -> None:
    series = C.date_column("d", np.array([5, 6], dtype=np.int32), NULL_DAY, 1)
    assert series.null_count() == 0 and series.to_physical().to_list() == [5, 6]
    assert C.date_column("d", np.empty(0, dtype=np.int32), NULL_DAY, 1).len() == 0


@given(
    n=st.integers(0, 3 * BLOCK_ROWS),
    seed=st.integers(0, 2**32 - 1),
    null_share=st.sampled_from([0.0, 0.1, 0.9, 1.0]),
    threads=st.sampled_from([1, 2]),
)
def test_date_column_matches_where_and_scatter(
    n: int, seed: int, null_share: float, threads: int
) -> None:
    rng = np.random.default_rng(seed)
    days = rng.integers(-10_000, 30_000, n).astype(np.int32)
    days[rng.random(n) < null_share] = NULL_DAY
    null = days == NULL_DAY
    expected = (
        pl.Series("d", np.where(null, 0, days), dtype=pl.Int32)
        .cast(pl.Date)
        .scatter(np.flatnonzero(null), None)
    )
    series = C.date_column("d", days, NULL_DAY, threads)
    assert series.equals(expected)
    assert series.null_count() == int(null.sum())
    assert not (days == NULL_DAY).any()
