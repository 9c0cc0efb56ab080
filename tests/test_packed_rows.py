"""Packed rows: a score groups its rows as 16-byte records (``group_rows(...,
packed=True)``) when the key's offset in its partition, the category and the
day offset fit one 64-bit word; otherwise as 24-byte rows. Either way the
statistics must be bit for bit those of the 24-byte path, which
tests/test_kernel.py checks against pandas.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churn_engine import _kernel as K

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
MIN_DAY = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
MAX_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days


def _segments(values: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    bounds = [0, *cuts, len(values)]
    return [values[a:b] for a, b in itertools.pairwise(bounds)]


def _grouped(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None,
    *,
    packed: bool,
    threads: int = 1,
    rank_of_code: np.ndarray | None = None,
    cuts: list[int] | None = None,
) -> Any:
    cuts = cuts or []
    return K.group_rows(
        _segments(ids, cuts), rank_of_code, _segments(days, cuts),
        _segments(amounts.view(np.int64), cuts),
        None if cats is None else _segments(cats, cuts),
        len(ids), amounts.dtype.kind == "i", threads, packed,
    )  # fmt: skip


def _both(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None = None,
    *,
    threads: int = 1,
    consume: bool = False,
    **kwargs: Any,
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(packed grouping, its statistics, the 24-byte path's statistics)."""
    integer = amounts.dtype.kind == "i"
    plain = _grouped(ids, days, amounts, cats, packed=False, threads=threads, **kwargs)
    assert plain.packing is None
    want = K.group_statistics(plain, integer, threads)
    grouped = _grouped(ids, days, amounts, cats, packed=True, threads=threads, **kwargs)
    packing, no_purchase = grouped.packing, grouped.no_purchase
    got = K.group_statistics(grouped, integer, threads, consume=consume)
    assert no_purchase == plain.no_purchase
    grouped.packing = packing
    return grouped, got, want


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        # bit for bit: the same summation order (NaN medians of one-order groups too)
        assert np.array_equal(got[name].view(np.uint8), want[name].view(np.uint8)), name


@st.composite
def logs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 120))
    id_kind = draw(st.sampled_from(["narrow", "wide", "extremes", "ranks", "codes"]))
    if id_kind == "narrow":
        base = draw(st.integers(INT64_MIN, INT64_MAX - 2**20))
        ids = base + np.array(draw(st.lists(st.integers(0, 2**20), min_size=n, max_size=n)))
    elif id_kind == "wide":
        ids = np.array(draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=n, max_size=n)))
    elif id_kind == "extremes":
        pool = [INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]
        ids = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
    else:
        ids = np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)))
    ids = ids.astype(np.int32 if id_kind in ("ranks", "codes") else np.int64)
    rank_of_code = (
        np.array(draw(st.permutations(range(10))), dtype=np.int32) if id_kind == "codes" else None
    )
    day_min = draw(st.integers(MIN_DAY, MAX_DAY))
    day_span = draw(st.sampled_from([0, 1, 3, 400, MAX_DAY - MIN_DAY]))
    days = np.clip(
        day_min + np.array(draw(st.lists(st.integers(0, day_span), min_size=n, max_size=n))),
        MIN_DAY, MAX_DAY,
    ).astype(np.int32)  # fmt: skip
    n_cats = draw(st.sampled_from([0, 1, 3, 2**20]))
    cats = (
        None if n_cats == 0
        else np.array(draw(st.lists(st.integers(0, n_cats - 1), min_size=n, max_size=n)),
                      dtype=np.int32)
    )  # fmt: skip
    if draw(st.booleans()):
        amounts = np.array(
            draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)), dtype=np.int64
        )
    else:
        finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
        amounts = np.array(draw(st.lists(finite, min_size=n, max_size=n)), dtype=np.float64)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return {
        "ids": ids, "days": days, "amounts": amounts, "cats": cats,
        "rank_of_code": rank_of_code, "cuts": cuts,
    }  # fmt: skip


@given(logs(), st.booleans())
def test_packed_statistics_are_the_24_byte_ones(log: dict[str, Any], consume: bool) -> None:
    grouped, got, want = _both(
        log["ids"], log["days"], log["amounts"], log["cats"], consume=consume,
        rank_of_code=log["rank_of_code"], cuts=log["cuts"],
    )  # fmt: skip
    _assert_same(got, want)
    if grouped.packing is not None:
        packing = grouped.packing
        assert packing["shift"] + packing["cat_bits"] + packing["day_bits"] <= 64


def test_small_spans_are_packed_by_hand() -> None:
    """Keys 100..103, days 5..8 (2 bits), categories 0..2 (2 bits): one
    partition of 4 keys, so the word is key offset << 4 | cat << 2 | day - 5."""
    ids = np.array([103, 100, 101, 100, 102, 103], dtype=np.int64)
    days = np.array([8, 5, 6, 7, 5, 5], dtype=np.int32)
    cats = np.array([2, 0, 1, 0, 0, 2], dtype=np.int32)
    amounts = np.array([1.0, 2.0, -3.0, 4.0, 5.0, 6.0])
    grouped, got, want = _both(ids, days, amounts, cats)
    assert grouped.packing is not None
    assert (grouped.packing["day_bits"], grouped.packing["cat_bits"]) == (2, 2)
    assert grouped.packing["day_min"] == 5 and grouped.packing["cat_min"] == 0
    words = grouped.rows.reshape(-1, 2)
    shift = grouped.packing["shift"]
    assert shift == 2  # 4 keys in one partition
    assert words[:, 0].tolist() == [
        (0 << 4) | (0 << 2) | 0,  # 100, cat 0, day 5
        (0 << 4) | (0 << 2) | 2,  # 100, cat 0, day 7
        (1 << 4) | (1 << 2) | 1,  # 101, cat 1, day 6
        (2 << 4) | (0 << 2) | 0,  # 102, cat 0, day 5
        (3 << 4) | (2 << 2) | 0,  # 103, cat 2, day 5
        (3 << 4) | (2 << 2) | 3,  # 103, cat 2, day 8
    ]
    assert words[:, 1].view(np.float64).tolist() == [2.0, 4.0, -3.0, 5.0, 6.0, 1.0]
    _assert_same(got, want)
    assert got["key"].tolist() == [100, 102, 103]  # 101 only refunded
    assert grouped.no_purchase == 1


def test_ids_over_the_whole_int64_range_fall_back_to_24_byte_rows() -> None:
    """64 bits of key span leave no room for days 0..3: not packed, same numbers."""
    ids = np.array([INT64_MIN, INT64_MAX, 0, INT64_MIN, INT64_MAX], dtype=np.int64)
    days = np.array([0, 1, 2, 3, 3], dtype=np.int32)
    amounts = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    grouped, got, want = _both(ids, days, amounts)
    assert grouped.packing is None and grouped.rows.size == 3 * len(ids)
    _assert_same(got, want)
    assert got["key"].tolist() == [INT64_MIN, 0, INT64_MAX]


@pytest.mark.parametrize("kind", ["sparse", "consecutive", "ranks"])
def test_packed_on_two_threads_matches_one_thread_and_24_byte_rows(kind: str) -> None:
    """Enough rows (200k) for both threads to scatter and many partitions;
    sparse keys are hashed per partition, consecutive ids and ranks counted
    directly."""
    rng = np.random.default_rng(7)
    n = 200_000
    if kind == "sparse":
        ids = rng.integers(0, 2**40, 30_000)[rng.integers(0, 30_000, n)] * 977 - 2**50
    elif kind == "consecutive":
        ids = rng.integers(10**9, 10**9 + 30_000, n)
    else:
        ids = rng.integers(0, 30_000, n).astype(np.int32)
    days = rng.integers(18_000, 19_500, n).astype(np.int32)
    amounts = np.round(rng.normal(50, 30, n), 2)
    cats = rng.integers(0, 5, n).astype(np.int32)
    cuts = [50_000, 50_001, 130_000]
    results = []
    for threads in (1, 2):
        grouped, got, want = _both(ids, days, amounts, cats, threads=threads, cuts=cuts,
                                   consume=True)  # fmt: skip
        assert grouped.packing is not None
        _assert_same(got, want)
        results.append(got)
    _assert_same(results[1], results[0])


def test_occasions_refuse_packed_rows() -> None:
    ids = np.array([1, 2], dtype=np.int64)
    grouped = _grouped(ids, np.array([3, 4], np.int32), np.array([1.0, 2.0]), None,
                       packed=True)  # fmt: skip
    assert grouped.packing is not None
    with pytest.raises(ValueError, match="without packed"):
        K.occasions(grouped, np.array([0, 1, 2], np.int64), False, 1)
