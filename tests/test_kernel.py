"""Unit tests of the compiled stages in ``churn_engine._kernel`` against NumPy/pandas.

Each stage is fed arrays directly (no Polars, no validation) and compared with
a straightforward NumPy or pandas formulation of the same thing:

- ``group_rows``: rows come back in ascending customer-key order, nothing lost;
- ``group_statistics``: per (customer, category) counts, days, money sums and
  interval statistics, as a pandas groupby computes them;
- ``category_priors``, ``cycle_status``: the DESIGN.md section 4 formulas;
- ``quantile_cuts``: ``numpy.quantile(method="lower")``;
- ``rfm_scores``: ``1 + searchsorted(cuts, value, side="left")``;
- integer money overflow is a ``DataError``, never a wrapped sum.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import churn_engine
from churn_engine import DataError, KernelError
from churn_engine import _kernel as K

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
ROW = np.dtype([("key", "<i8"), ("cat", "<i4"), ("day", "<i4"), ("amount", "<i8")])


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _split(n: int, n_segments: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """n_segments contiguous [a, b) ranges covering 0..n (some may be empty)."""
    inner = np.sort(rng.integers(0, n + 1, size=max(0, n_segments - 1)))
    bounds = [0, *inner.tolist(), n]
    return list(itertools.pairwise(bounds))


def group_rows(
    id_segments: list[np.ndarray],
    rank_of_code: np.ndarray | None,
    day_segments: list[np.ndarray],
    amount_segments: list[np.ndarray],
    cat_segments: list[np.ndarray] | None,
    n_rows: int,
    integer_amounts: bool,
    threads: int,
) -> Any:
    return K.group_rows(
        id_segments, rank_of_code, day_segments, amount_segments, cat_segments, n_rows,
        integer_amounts, threads,
    )  # fmt: skip


def rows_of(grouped: Any) -> tuple[np.ndarray, np.ndarray]:
    """(rows as int64 words, partition offsets) of a group_rows result."""
    return grouped.rows, grouped.part_offsets


def group_statistics(grouped: Any, integer_amounts: bool, threads: int) -> tuple[dict, int]:
    """``K.group_statistics`` on a group_rows result: (arrays, groups without a purchase)."""
    return K.group_statistics(grouped, integer_amounts, threads), int(grouped.no_purchase)


def group(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None = None,
    *,
    rank_of_code: np.ndarray | None = None,
    segments: int = 1,
    threads: int = 1,
    seed: int = 0,
) -> Any:
    """group_rows on the arrays cut into ``segments`` pieces."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    ids = np.ascontiguousarray(ids, dtype=np.int32 if rank_of_code is not None else np.int64)
    days = np.ascontiguousarray(days, dtype=np.int32)
    bits = np.ascontiguousarray(amounts).view(np.int64)
    parts = _split(n, segments, rng)
    grouped = group_rows(
        [ids[a:b] for a, b in parts],
        rank_of_code,
        [days[a:b] for a, b in parts],
        [bits[a:b] for a, b in parts],
        None if cats is None else [np.ascontiguousarray(cats, np.int32)[a:b] for a, b in parts],
        n,
        amounts.dtype.kind in "iu",
        threads,
    )
    rows, _ = rows_of(grouped)
    assert rows.dtype == np.int64 and rows.size == 3 * n
    return grouped


def statistics(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None = None,
    *,
    threads: int = 1,
    **kwargs: Any,
) -> tuple[dict[str, np.ndarray], int]:
    grouped = group(ids, days, amounts, cats, threads=threads, **kwargs)
    return group_statistics(grouped, amounts.dtype.kind in "iu", threads)


def _by_key(rows: np.ndarray) -> np.ndarray:
    """Rows in (key, cat, day, amount bits) order: the multiset of rows per key."""
    return rows[np.lexsort((rows["amount"], rows["day"], rows["cat"], rows["key"]))]


def expected_statistics(
    keys: np.ndarray, days: np.ndarray, amounts: np.ndarray, cats: np.ndarray | None = None
) -> tuple[pd.DataFrame, int]:
    """The per-group statistics as a plain pandas groupby computes them."""
    df = pd.DataFrame(
        {
            "key": keys.astype(np.int64),
            "cat": np.zeros(len(keys), np.int32) if cats is None else cats,
            "day": days.astype(np.int64),
            "amount": amounts,
        }
    )
    df["purchase"] = df["amount"] >= 0  # -0.0 and 0 are purchases
    by = ["key", "cat"]
    all_groups = df.groupby(by, sort=True)
    out = pd.DataFrame({"n_rows": all_groups.size()})
    out["monetary_total"] = all_groups["amount"].sum()
    refunds = df.loc[~df["purchase"]].groupby(by)["amount"].sum()
    out["refund_total"] = (-refunds).reindex(out.index, fill_value=0).astype(amounts.dtype)
    occasions = df.loc[df["purchase"], [*by, "day"]].drop_duplicates().sort_values([*by, "day"])
    occasions["gap"] = occasions.groupby(by)["day"].diff()
    per = occasions.groupby(by)
    out = out.join(
        pd.DataFrame(
            {
                "n_orders": per.size(),
                "first_day": per["day"].min(),
                "last_day": per["day"].max(),
                "interval_mean_days": per["gap"].mean(),
                "interval_std_days": per["gap"].std(ddof=1),
                "interval_median_days": per["gap"].median(),
            }
        ),
        how="left",
    )
    no_purchase = int(out["n_orders"].isna().sum())
    out = out.dropna(subset=["n_orders"]).reset_index()
    return out, no_purchase


def assert_statistics(
    got: dict[str, np.ndarray], no_purchase: int, expected: pd.DataFrame, exp_no_purchase: int
) -> None:
    assert no_purchase == exp_no_purchase
    assert len(got["n_orders"]) == len(expected)
    np.testing.assert_array_equal(got["key"], expected["key"].to_numpy())
    np.testing.assert_array_equal(got["cat"], expected["cat"].to_numpy())
    for name in ("n_orders", "n_rows", "first_day", "last_day"):
        np.testing.assert_array_equal(got[name], expected[name].to_numpy(np.int64), err_msg=name)
    for name in ("monetary_total", "refund_total"):
        if got[name].dtype == np.int64:
            np.testing.assert_array_equal(got[name], expected[name].to_numpy(), err_msg=name)
        else:
            np.testing.assert_allclose(
                got[name], expected[name].to_numpy(), rtol=1e-12, atol=1e-9, err_msg=name
            )
    for name in ("interval_mean_days", "interval_std_days", "interval_median_days"):
        np.testing.assert_allclose(
            got[name], expected[name].to_numpy(np.float64), rtol=1e-12, atol=0, err_msg=name
        )  # NaN where pandas has NaN (no gap / one gap)


def random_log(
    rng: np.random.Generator,
    n_rows: int,
    n_customers: int,
    *,
    day_span: int = 30,
    integer: bool = False,
    n_cats: int = 0,
    sparse_ids: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    if sparse_ids:
        pool = rng.integers(INT64_MIN, INT64_MAX, size=n_customers, endpoint=True)
        pool[: min(2, n_customers)] = [INT64_MIN, INT64_MAX][: min(2, n_customers)]
    else:
        pool = np.arange(n_customers, dtype=np.int64) - n_customers // 2
    ids = pool[rng.integers(0, n_customers, size=n_rows)]
    days = rng.integers(-5, day_span, size=n_rows).astype(np.int32) + 19_000
    if integer:
        amounts = rng.integers(-500, 5_000, size=n_rows).astype(np.int64)
    else:
        amounts = np.round(rng.normal(30, 60, size=n_rows), 2)
        amounts[rng.random(n_rows) < 0.02] = 0.0
        amounts[rng.random(n_rows) < 0.01] = -0.0
    cats = rng.integers(0, n_cats, size=n_rows).astype(np.int32) if n_cats else None
    return ids, days, amounts, cats


# ---------------------------------------------------------------------------
# group_rows
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_rows", "n_customers", "sparse", "segments", "threads"),
    [
        (1, 1, True, 1, 1),
        (17, 3, False, 5, 1),
        (2_000, 300, True, 1, 2),
        (2_000, 300, False, 7, 1),
        (70_000, 20_000, True, 3, 2),  # several cache partitions
        (70_000, 50, False, 2, 2),  # few customers with many rows each
        (40_000, 1, True, 4, 2),  # all rows one customer
    ],
)
def test_group_rows_sorts_rows_by_key_and_keeps_them(
    n_rows: int, n_customers: int, sparse: bool, segments: int, threads: int
) -> None:
    rng = np.random.default_rng(n_rows + n_customers)
    ids, days, amounts, _ = random_log(rng, n_rows, n_customers, sparse_ids=sparse)
    cats = rng.integers(0, 3, size=n_rows).astype(np.int32)
    rows, part_offsets = rows_of(
        group(ids, days, amounts, cats, segments=segments, threads=threads)
    )
    got = rows.view(ROW)

    assert part_offsets[0] == 0 and part_offsets[-1] == n_rows
    assert np.all(np.diff(part_offsets) >= 0)
    assert np.all(np.diff(got["key"]) >= 0), "rows not in ascending key order"
    # keys of a customer never straddle two partitions
    for p in range(1, len(part_offsets) - 1):
        a = part_offsets[p]
        if 0 < a < n_rows:
            assert got["key"][a - 1] != got["key"][a]
    # nothing lost or changed (the order of a customer's own rows is free)
    expected = np.empty(n_rows, ROW)
    expected["key"], expected["cat"], expected["day"] = ids, cats, days
    expected["amount"] = amounts.view(np.int64)
    np.testing.assert_array_equal(_by_key(got), _by_key(expected))


def test_group_rows_with_dictionary_codes_sorts_by_rank() -> None:
    rng = np.random.default_rng(5)
    words = np.array(["b", "a", "ab", "é", "", "中"], dtype=object)
    order = np.argsort(np.array([w.encode() for w in words], dtype=object), kind="stable")
    rank_of_code = np.empty(len(words), np.int32)
    rank_of_code[order] = np.arange(len(words), dtype=np.int32)
    codes = rng.integers(0, len(words), size=500).astype(np.int32)
    days = rng.integers(0, 9, size=500).astype(np.int32)
    amounts = rng.normal(size=500)
    rows, _ = rows_of(group(codes, days, amounts, rank_of_code=rank_of_code, segments=3))
    got = rows.view(ROW)
    np.testing.assert_array_equal(got["key"], np.sort(rank_of_code[codes]))
    expected = np.empty(len(codes), ROW)
    expected["key"], expected["cat"], expected["day"] = rank_of_code[codes], 0, days
    expected["amount"] = amounts.view(np.int64)
    np.testing.assert_array_equal(_by_key(got), _by_key(expected))


def test_group_rows_rejects_bad_input() -> None:
    days = np.zeros(3, np.int32)
    bits = np.zeros(3, np.int64)
    with pytest.raises(KernelError, match="out of range"):
        group_rows([np.array([0, 1, 5], np.int32)], np.array([1, 0], np.int32),
                   [days], [bits], None, 3, False, 1)  # fmt: skip
    with pytest.raises(ValueError):
        group_rows([np.zeros(3, np.int64)], None, [days[:2]], [bits], None, 3, False, 1)
    with pytest.raises(ValueError):
        group_rows([np.zeros(3, np.int64)], None, [days], [bits], None, 4, False, 1)


def test_group_rows_of_nothing() -> None:
    grouped = group_rows([], None, [], [], None, 0, False, 1)
    rows, part_offsets = rows_of(grouped)
    assert rows.size == 0
    assert part_offsets[0] == part_offsets[-1] == 0
    stats, no_purchase = group_statistics(grouped, False, 1)
    assert no_purchase == 0
    assert all(len(v) == 0 for v in stats.values())


# ---------------------------------------------------------------------------
# group_statistics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("integer", [False, True], ids=["float", "int"])
@pytest.mark.parametrize("n_cats", [0, 3])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("n_rows", "n_customers", "day_span"),
    [(1, 1, 1), (50, 7, 3), (5_000, 800, 40), (30_000, 9_000, 400), (8_000, 3, 60)],
)
def test_group_statistics_match_pandas(
    integer: bool, n_cats: int, threads: int, n_rows: int, n_customers: int, day_span: int
) -> None:
    rng = np.random.default_rng(n_rows * 7 + n_cats + integer)
    ids, days, amounts, cats = random_log(
        rng, n_rows, n_customers, day_span=day_span, integer=integer, n_cats=n_cats
    )
    # some customers (and customer x category groups) buy nothing: refunds only
    refund_only = np.isin(ids, ids[rng.integers(0, n_rows, size=max(1, n_customers // 10))])
    amounts = np.where(refund_only, -np.abs(amounts) - 1, amounts).astype(amounts.dtype)
    got, no_purchase = statistics(ids, days, amounts, cats, threads=threads, segments=3)
    expected, exp_no_purchase = expected_statistics(ids, days, amounts, cats)
    assert_statistics(got, no_purchase, expected, exp_no_purchase)
    assert got["monetary_total"].dtype == (np.int64 if integer else np.float64)


def test_group_statistics_do_not_depend_on_row_order_or_threads() -> None:
    rng = np.random.default_rng(11)
    ids, days, amounts, cats = random_log(rng, 20_000, 500, day_span=10, n_cats=2)
    amounts = rng.choice(np.array([0.1, 0.2, 0.3, -0.1, 1e-3, 1e3, 7.77]), size=len(ids))
    first, n1 = statistics(ids, days, amounts, cats, threads=1)
    perm = rng.permutation(len(ids))
    again, n2 = statistics(ids[perm], days[perm], amounts[perm], cats[perm], threads=2,
                           segments=9)  # fmt: skip
    assert n1 == n2
    for name in first:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)  # bit for bit


@pytest.mark.parametrize("threads", [1, 2])
def test_group_statistics_consuming_the_rows_gives_the_same_result(threads: int) -> None:
    # a score gives each partition's row pages back as it is summarised
    # (consume=True); the statistics must not change, and the rows are gone
    rng = np.random.default_rng(5)
    ids, days, amounts, cats = random_log(rng, 200_000, 30_000, day_span=300, n_cats=2)
    kept = group(ids, days, amounts, cats, threads=threads, segments=4)
    consumed = group(ids, days, amounts, cats, threads=threads, segments=4)
    expected = K.group_statistics(kept, False, threads)
    got = K.group_statistics(consumed, False, threads, consume=True)
    assert consumed.rows is None and kept.rows is not None
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_group_statistics_intervals_by_hand() -> None:
    # one customer, occasions on days 0, 1, 4, 10 (two rows on day 4, a refund on
    # day 6 that is no occasion): gaps 1, 3, 6 -> mean 10/3, median 3 and
    # std sqrt(((1 - 10/3)**2 + (3 - 10/3)**2 + (6 - 10/3)**2) / 2) = sqrt(19/3)
    ids = np.array([5, 5, 5, 5, 5, 5], np.int64)
    days = np.array([4, 0, 10, 1, 4, 6], np.int32)
    amounts = np.array([2.0, 1.0, 4.0, 0.0, 3.0, -1.5])
    got, no_purchase = statistics(ids, days, amounts)
    assert no_purchase == 0
    assert got["n_orders"].tolist() == [4]
    assert got["n_rows"].tolist() == [6]
    assert (got["first_day"][0], got["last_day"][0]) == (0, 10)
    assert got["monetary_total"][0] == pytest.approx(8.5)
    assert got["refund_total"][0] == pytest.approx(1.5)
    assert got["interval_mean_days"][0] == pytest.approx(10 / 3, rel=1e-15)
    assert got["interval_std_days"][0] == pytest.approx(np.sqrt(19 / 3), rel=1e-15)
    assert got["interval_median_days"][0] == 3.0
    # an even number of gaps: the median is the mean of the two middle ones
    got, _ = statistics(ids[:5], np.array([0, 1, 4, 10, 12], np.int32), np.ones(5))
    assert got["interval_median_days"][0] == 2.5  # gaps 1, 3, 6, 2 -> (2 + 3) / 2


@pytest.mark.parametrize("threads", [1, 2])
def test_group_statistics_edge_sizes(threads: int) -> None:
    one = np.array([42], np.int64)
    got, no_purchase = statistics(one, np.array([7], np.int32), np.array([1.5]), threads=threads)
    assert no_purchase == 0
    assert got["key"].tolist() == [42] and got["n_orders"].tolist() == [1]
    assert np.isnan(got["interval_mean_days"][0]) and np.isnan(got["interval_std_days"][0])
    # a single refund row: no group, one group without a purchase
    got, no_purchase = statistics(one, np.array([7], np.int32), np.array([-1.5]),
                                  threads=threads)  # fmt: skip
    assert no_purchase == 1 and len(got["n_orders"]) == 0
    # every row one customer, many same-day rows
    rng = np.random.default_rng(2)
    n = 60_000
    ids = np.full(n, INT64_MIN, np.int64)
    days = rng.integers(0, 100, size=n).astype(np.int32)
    amounts = rng.integers(-3, 100, size=n).astype(np.int64)
    got, no_purchase = statistics(ids, days, amounts, threads=threads, segments=5)
    expected, exp_no_purchase = expected_statistics(ids, days, amounts)
    assert_statistics(got, no_purchase, expected, exp_no_purchase)
    assert got["n_rows"].tolist() == [n]


# ---------------------------------------------------------------------------
# integer money: overflow is an error, never a wrapped sum
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amounts",
    [
        [2**62, 2**62],  # sum 2**63
        [INT64_MAX, 1],
        [-(2**62), -(2**62), -1],  # sum below INT64_MIN
        [-(2**62), -(2**62)],  # the sum fits (INT64_MIN) but refund_total is 2**63
        [INT64_MIN, 5],  # |INT64_MIN| does not fit in refund_total
    ],
)
def test_integer_money_overflow_raises(amounts: list[int]) -> None:
    n = len(amounts)
    values = np.array([*amounts, 1], np.int64)  # customer 2 buys: there is a group
    ids = np.array([1] * n + [2], np.int64)
    with pytest.raises(DataError) as info:
        statistics(ids, np.arange(n + 1, dtype=np.int32), values)
    assert info.value.column == "amount"
    # and through the public API
    df = pl.DataFrame(
        {
            "customer_id": [1] * n + [2],
            "ts": pl.Series([*range(n), 0], dtype=pl.Int32).cast(pl.Date),
            "amount": pl.Series([*amounts, 1], dtype=pl.Int64),
        }
    )
    with pytest.raises(DataError, match="overflow"):
        churn_engine.score(df)


def test_overflow_is_reported_whatever_the_other_customers_do() -> None:
    """An overflowing refund-only customer is an error whether or not another
    customer buys (the oracle and DESIGN.md: overflow is reported). A kernel
    version computed the sums only when some group had a purchase, so the
    customer alone gave an empty table instead (fixed in 93d6d57)."""
    amounts = [-(2**62), -(2**62), -1]  # a money sum below INT64_MIN
    alone = pl.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "ts": pl.Series([0, 1, 2], dtype=pl.Int32).cast(pl.Date),
            "amount": pl.Series(amounts, dtype=pl.Int64),
        }
    )
    with_buyer = pl.concat(
        [alone, pl.DataFrame({"customer_id": [2], "ts": [alone["ts"][0]], "amount": [1]})]
    )
    with pytest.raises(DataError):
        churn_engine.score(with_buyer)
    with pytest.raises(DataError):
        churn_engine.score(alone)


def test_integer_money_at_the_limits_is_exact() -> None:
    values = np.array([2**62, 2**62 - 1, 0, -(2**62), -(2**62) + 1, 0], np.int64)
    ids = np.array([1, 1, 1, 2, 2, 2], np.int64)
    got, _ = statistics(ids, np.arange(6, dtype=np.int32), values)
    assert got["key"].tolist() == [1, 2]
    assert got["monetary_total"].tolist() == [INT64_MAX, -(2**63) + 1]
    assert got["refund_total"].tolist() == [0, 2**63 - 1]


# ---------------------------------------------------------------------------
# category_priors and cycle_status
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 1_000])
def test_category_priors_are_medians_or_fixed(n: int) -> None:
    rng = np.random.default_rng(n)
    n_cats = 4
    cat = rng.integers(0, n_cats, size=n).astype(np.int32)
    n_orders = rng.integers(1, 4, size=n).astype(np.int64)
    mean = np.where(n_orders >= 2, rng.integers(1, 60, size=n) / rng.integers(1, 4, size=n), np.nan)
    fixed = np.array([np.nan, 12.5, np.nan, np.nan])
    got = K.category_priors(cat, n_orders, mean, fixed)
    for c in range(n_cats):
        values = mean[(cat == c) & (n_orders >= 2)]
        if not np.isnan(fixed[c]):
            assert got[c] == fixed[c]
        elif len(values):
            assert got[c] == np.median(values), (c, values)
        else:
            assert np.isnan(got[c])


def test_cycle_status_formulas() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    cat = rng.integers(0, 3, size=n).astype(np.int32)
    n_orders = rng.choice(np.array([1, 1, 2, 3, 10]), size=n).astype(np.int64)
    mean = np.where(n_orders >= 2, rng.integers(1, 90, size=n) / 2.0, np.nan)
    last_day = rng.integers(18_000, 19_000, size=n).astype(np.int32)
    priors = np.array([20.0, np.nan, 7.5])
    horizons = np.array([365, 400, 30], np.int32)
    as_of, w, a, c = 19_000, 1.5, 1.5, 2.0
    got = K.cycle_status(cat, n_orders, mean, last_day, priors, horizons, as_of, w, a, c, 2)

    k = (n_orders - 1).astype(np.float64)
    prior = priors[cat]
    recency = (as_of - last_day).astype(np.int64)
    with np.errstate(invalid="ignore"):
        blended = (k * mean + w * prior) / (k + w)
        cycle = np.where(k == 0, prior, np.where(np.isnan(prior), mean, blended))
        since = recency / cycle
    np.testing.assert_array_equal(got["recency_days"], recency)
    np.testing.assert_array_equal(got["cycle_days"], cycle)
    np.testing.assert_array_equal(got["cycles_since_last"], since)
    np.testing.assert_array_equal(
        got["days_overdue"], np.where(np.isnan(cycle), np.nan, np.maximum(0.0, recency - cycle))
    )
    with np.errstate(invalid="ignore"):
        rounded = np.floor(np.nan_to_num(cycle) + 0.5).astype(np.int64)
        expected_next = np.where(np.isnan(cycle), K.NULL_DAY, last_day + rounded)
    np.testing.assert_array_equal(got["expected_next_day"], expected_next)

    names = np.array(K.STATUS_NAMES)[got["status"]]
    horizon_hit = recency >= horizons[cat]
    repeat = n_orders >= 2
    with np.errstate(invalid="ignore"):
        expected = np.select(
            [horizon_hit, repeat & (since >= c), repeat & (since >= a), repeat,
             np.isnan(prior), recency >= a * prior],
            ["churned", "churned", "at_risk", "active", "active", "at_risk"],
            default="active",
        )  # fmt: skip
    np.testing.assert_array_equal(names, expected)
    reason = got["reason"]
    np.testing.assert_array_equal(
        reason[horizon_hit], K.REASON_HORIZON_BASE + cat[horizon_hit].astype(np.int32)
    )
    keys = np.array(K.REASON_KEYS)
    rest = ~horizon_hit
    assert set(keys[reason[rest & repeat & (since >= c)]]) <= {"churn_cycles"}
    assert set(keys[reason[rest & ~repeat & np.isnan(prior)]]) <= {"one_time_no_prior"}


# ---------------------------------------------------------------------------
# quantile_cuts
# ---------------------------------------------------------------------------


def _value_sets(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "random": rng.normal(size=n) * 1e3,
        "ties": rng.integers(0, 3, size=n).astype(np.float64),
        "one value": np.full(n, 7.25),
        "ascending": np.arange(n, dtype=np.float64),
        "descending": np.arange(n, 0, -1).astype(np.float64),
        "mostly one": np.where(rng.random(n) < 0.9, 1.0, rng.normal(size=n)),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_quantile_cuts_match_numpy_lower(dtype: type) -> None:
    rng = np.random.default_rng(4)
    sizes = [*range(1, 70), 97, 100, 101, 997, 1_000, 4_096, 10_007]
    for n in sizes:
        for kind, values in _value_sets(rng, n).items():
            values = values.astype(dtype)
            before = values.copy()
            for bins in range(2, 10):
                qs = np.arange(1, bins) / bins
                expected = np.quantile(values, qs, method="lower").astype(np.float64)
                got = K.quantile_cuts(values, bins)
                assert got.dtype == np.float64
                np.testing.assert_array_equal(got, expected, err_msg=f"{kind} n={n} bins={bins}")
            np.testing.assert_array_equal(values, before)  # the input is not reordered


def test_quantile_cuts_exact_order_statistics_for_big_int64() -> None:
    """Index floor((n - 1) * i / bins) of the sorted values, as float64."""
    rng = np.random.default_rng(8)
    values = rng.integers(INT64_MIN, INT64_MAX, size=1_001, endpoint=True)
    values[:3] = [INT64_MIN, INT64_MAX, 0]
    ordered = np.sort(values)
    for bins in range(2, 10):
        expected = [float(ordered[(1_000 * i) // bins]) for i in range(1, bins)]
        assert K.quantile_cuts(values, bins).tolist() == expected


@pytest.mark.parametrize("span", [0, 1, 4 * 500 + 1024, 4 * 500 + 1025, 2**24 - 1, 2**24])
def test_quantile_cuts_counting_and_selection_agree(span: int) -> None:
    """Integers of a small span are counted (R days are negative, F counts
    small), wider ones selected: the same order statistics either way."""
    rng = np.random.default_rng(span % 1000)
    values = rng.integers(-span // 2, -span // 2 + span, size=500, endpoint=True)
    values[:2] = [-span // 2, -span // 2 + span]  # the span is exact
    for bins in range(2, 10):
        expected = np.quantile(values, np.arange(1, bins) / bins, method="lower")
        np.testing.assert_array_equal(K.quantile_cuts(values, bins), expected.astype(np.float64))


def test_quantile_cuts_need_values() -> None:
    with pytest.raises(ValueError):
        K.quantile_cuts(np.array([], dtype=np.float64), 5)


# ---------------------------------------------------------------------------
# rfm_scores
# ---------------------------------------------------------------------------


def _expected_scores(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    # 1 + number of cut points strictly below the value
    return (1 + np.searchsorted(cuts, values, side="left")).astype(np.int8)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("integer_money", [False, True])
def test_rfm_scores_match_searchsorted(threads: int, integer_money: bool) -> None:
    rng = np.random.default_rng(6)
    n = 3_000
    recency = rng.integers(0, 400, size=n).astype(np.int64)
    n_orders = rng.integers(1, 12, size=n).astype(np.int64)
    money = (
        rng.integers(-50, 5_000, size=n).astype(np.int64)
        if integer_money
        else np.round(rng.normal(100, 80, size=n), 2)
    )
    for bins in range(2, 10):
        r_cuts = K.quantile_cuts(-recency, bins)
        f_cuts = K.quantile_cuts(n_orders, bins)
        m_cuts = K.quantile_cuts(money, bins)
        r, f, m = K.rfm_scores(recency, n_orders, money, r_cuts, f_cuts, m_cuts, threads)
        assert r.dtype == f.dtype == m.dtype == np.int8
        np.testing.assert_array_equal(r, _expected_scores(-recency.astype(np.float64), r_cuts))
        np.testing.assert_array_equal(f, _expected_scores(n_orders.astype(np.float64), f_cuts))
        np.testing.assert_array_equal(m, _expected_scores(money.astype(np.float64), m_cuts))
        for scores in (r, f, m):
            assert scores.min() >= 1 and scores.max() <= bins


def test_rfm_scores_with_given_cuts_and_ties() -> None:
    recency = np.array([0, 5, 10, 10, 20, 30], np.int64)
    n_orders = np.array([1, 1, 2, 3, 3, 9], np.int64)
    money = np.array([-5.0, 0.0, 10.0, 10.0, 10.0000001, 1e9])
    r_cuts = np.array([-20.0, -10.0, -10.0, -5.0])  # duplicate cut points
    f_cuts = np.array([1.0, 2.0, 3.0, 3.0])
    m_cuts = np.array([0.0, 10.0, 10.0, 100.0])
    r, f, m = K.rfm_scores(recency, n_orders, money, r_cuts, f_cuts, m_cuts, 1)
    # R on -recency: 0 -> above all 4 cuts -> 5; -10 -> above -20 only -> 2; -30 -> 1
    assert r.tolist() == [5, 4, 2, 2, 1, 1]
    assert f.tolist() == [1, 1, 2, 3, 3, 5]
    assert m.tolist() == [1, 1, 2, 2, 4, 5]
    empty = K.rfm_scores(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0),
                         r_cuts, f_cuts, m_cuts, 1)  # fmt: skip
    assert all(len(s) == 0 for s in empty)


# ---------------------------------------------------------------------------
# encode_strings (string ids -> ranks in UTF-8 byte order)
# ---------------------------------------------------------------------------

STRING_TYPES = [pa.string(), pa.large_string(), pa.string_view()]


def _reference_ranks(values: list[bytes]) -> tuple[list[int], list[bytes]]:
    """Ranks among the distinct values in byte order (Python compares bytes
    like memcmp, then by length)."""
    distinct = sorted(set(values))
    rank = {v: i for i, v in enumerate(distinct)}
    return [rank[v] for v in values], distinct


def _encode(
    arrays: list[pa.Array] | pa.ChunkedArray,
    threads: int = 1,
    part_bits: int = -1,
    hash_mask: int = 2**64 - 1,
) -> tuple[np.ndarray, list[bytes]]:
    from churn_engine._prepare import _string_chunks

    column = arrays if isinstance(arrays, pa.ChunkedArray) else _Chunks(arrays)
    n = sum(len(a) for a in column.chunks)
    ranks = np.full(n, -1, dtype=np.int32)
    offsets, data = K.encode_strings(ranks, _string_chunks(column), threads, part_bits, hash_mask)
    raw = data.tobytes()
    dictionary = [raw[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    return ranks, dictionary


class _Chunks:
    """Chunks of different Arrow string types (a ChunkedArray needs one type)."""

    def __init__(self, arrays: list[pa.Array]) -> None:
        self.chunks = arrays

    def __len__(self) -> int:
        return sum(len(a) for a in self.chunks)


def _check_encoding(strings: list[str], ranks: np.ndarray, dictionary: list[bytes]) -> None:
    expected_ranks, expected_dictionary = _reference_ranks([s.encode() for s in strings])
    assert dictionary == expected_dictionary
    np.testing.assert_array_equal(ranks, np.array(expected_ranks, dtype=np.int32))


def test_encode_strings_by_hand() -> None:
    strings = ["b", "a", "", "a\0", "ab", "a", "é", "z", "a\0"]
    # byte order: "" < "a" < "a\0" < "ab" < "b" < "z" < "é" (0xC3 0xA9 > "z")
    for kind in STRING_TYPES:
        ranks, dictionary = _encode([pa.array(strings, type=kind)])
        assert dictionary == [b"", b"a", b"a\0", b"ab", b"b", b"z", "é".encode()]
        assert ranks.tolist() == [4, 1, 0, 2, 3, 1, 6, 5, 2]


def test_encode_strings_of_nothing() -> None:
    ranks, dictionary = _encode([])
    assert ranks.size == 0 and dictionary == []
    ranks, dictionary = _encode([pa.array([], type=k) for k in STRING_TYPES])
    assert ranks.size == 0 and dictionary == []


def _adversarial(rng: np.random.Generator, n: int) -> list[str]:
    """Empty strings, NUL bytes, shared prefixes of every length around the
    8/12/16-byte boundaries, non-ASCII, long strings (records of 255+ bytes),
    many duplicates."""
    alphabet = ["a", "b", "\0", "é", "中", "\U0001f600", "z", "0", "9"]
    base = ["", "\0", "\0\0", "a", "a\0", "a\0\0"]
    for length in (7, 8, 9, 11, 12, 13, 15, 16, 17, 24, 100, 127, 128, 129, 254, 255, 300, 1000):
        prefix = "p" * length
        base += [prefix, prefix + "\0", prefix + "a", prefix + "b", prefix[:-1] + "q"]
    picks = []
    for _ in range(n):
        if rng.random() < 0.5:
            picks.append(base[rng.integers(len(base))])
        else:
            k = int(rng.integers(0, 20))
            head = base[rng.integers(len(base))] if rng.random() < 0.3 else ""
            picks.append(head + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), k)))
    return picks


@pytest.mark.parametrize("kinds", [[t] for t in STRING_TYPES] + [STRING_TYPES])
@pytest.mark.parametrize("threads", [1, 2])
def test_encode_strings_adversarial(kinds: list[pa.DataType], threads: int) -> None:
    rng = np.random.default_rng(len(kinds) * 10 + threads)
    strings = _adversarial(rng, 3_000)
    cuts = sorted(rng.integers(0, len(strings), 4).tolist())
    arrays = [
        pa.array(["x"] * 3 + strings[a:b], type=kinds[k % len(kinds)]).slice(3)
        for k, (a, b) in enumerate(itertools.pairwise([0, *cuts, len(strings)]))
    ]
    ranks, dictionary = _encode(arrays, threads=threads)
    _check_encoding(strings, ranks, dictionary)


@pytest.mark.parametrize("hash_mask", [0, 1, 0xFF, 2**63], ids=lambda m: f"mask{m:x}")
@pytest.mark.parametrize("part_bits", [0, 3])
def test_encode_strings_survives_hash_collisions(hash_mask: int, part_bits: int) -> None:
    """With a hash of few bits, distinct strings share hashes (and probe
    chains, and partitions): equality is by bytes, so nothing merges. All
    rows in one partition also overflows its share of the scatter region."""
    rng = np.random.default_rng(hash_mask % 97 + part_bits)
    strings = _adversarial(rng, 2_000)
    kind = STRING_TYPES[part_bits % 3]
    ranks, dictionary = _encode(
        [pa.array(strings, type=kind)], part_bits=part_bits, hash_mask=hash_mask
    )
    _check_encoding(strings, ranks, dictionary)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda i: f"C{i:010d}", id="packed-ids"),  # 11 bytes, 40 varying bits
        pytest.param(lambda i: f"customer-{i:07d}-of-the-shop-{i % 13}", id="shared-16-prefix"),
        pytest.param(lambda i: "%016x" % (i * 0x9E3779B97F4A7C15 % 2**64), id="hex-16"),
        pytest.param(lambda i: bytes(range(i % 7, i % 7 + 20)).decode() + str(i), id="binary"),
    ],
)
def test_encode_strings_many_rows_and_threads(make: Any) -> None:
    """Enough rows for several blocks and partitions, enough distinct values
    for the parallel MSD pass of the sort, both key forms (packed 16-byte
    window, 8-byte chunks)."""
    rng = np.random.default_rng(11)
    values = [make(int(i)) for i in rng.choice(10**9, 12_000, replace=False)]
    strings = [values[i] for i in rng.integers(0, len(values), 80_000)]
    chunks = [pa.array(strings[:30_000], type=pa.string_view()),
              pa.array(strings[30_000:], type=pa.large_string())]  # fmt: skip
    for threads in (1, 2):
        ranks, dictionary = _encode(chunks, threads=threads)
        _check_encoding(strings, ranks, dictionary)


@pytest.mark.parametrize("threads", [1, 2])
def test_encode_strings_mostly_distinct_short_strings(threads: int) -> None:
    """Step 1's records (length + 1 bytes per row) make the workspace that
    then holds, when they fit, the sort's arrays (52 bytes per distinct
    string, the dictionary's 16 among them) and step 4's ranks (4 per row).
    Short, mostly distinct strings leave most of them out: those get their
    own memory (the dictionary too) and the encoding is the same."""
    rng = np.random.default_rng(13)
    values = rng.choice(10**6, 100_000, replace=False)
    picks = np.concatenate([values, rng.choice(values, 20_000)])
    rng.shuffle(picks)
    strings = pa.array(picks).cast(pa.string())  # "0" .. "999999": 1 to 6 bytes
    chunks = [strings.slice(0, 50_000), strings.slice(50_000).cast(pa.string_view())]
    ranks, dictionary = _encode(chunks, threads=threads)
    expected, inverse = np.unique(np.array(strings.to_pylist(), dtype="S"), return_inverse=True)
    assert dictionary == expected.tolist()
    np.testing.assert_array_equal(ranks, inverse)


@settings(max_examples=100 if os.environ.get("CI") else 50)
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab\0é中z"), max_size=20), max_size=60),
    st.lists(st.sampled_from(STRING_TYPES), min_size=1, max_size=3),
    st.integers(0, 5),
    st.sampled_from([2**64 - 1, 0, 3]),
)
def test_encode_strings_matches_sorted_set(
    strings: list[str], kinds: list[pa.DataType], n_cuts: int, hash_mask: int
) -> None:
    cuts = sorted({(len(strings) * (k + 1)) // (n_cuts + 1) for k in range(n_cuts)})
    arrays = [
        pa.array(strings[a:b], type=kinds[k % len(kinds)])
        for k, (a, b) in enumerate(itertools.pairwise([0, *cuts, len(strings)]))
    ]
    ranks, dictionary = _encode(arrays, part_bits=2, hash_mask=hash_mask)
    _check_encoding(strings, ranks, dictionary)


def test_encode_strings_hash_is_the_kernels() -> None:
    """The inline-view fast path hashes like the generic path: a string gets
    one rank whatever the chunk's type (checked above); here the exposed hash
    is a function of the bytes and the length only."""
    assert K.string_hash(np.frombuffer(b"ab", np.uint8)) != K.string_hash(
        np.frombuffer(b"ab\0", np.uint8)
    )
    assert K.string_hash(np.frombuffer(b"", np.uint8)) == K.string_hash(np.empty(0, np.uint8))


def test_encode_strings_rejects_malformed_buffers() -> None:
    data = np.frombuffer(b"abcdef", np.uint8)
    ranks = np.empty(2, np.int32)
    bad_offsets = [
        np.array([0, 4, 9], np.int32),  # past the data
        np.array([0, 4, 2], np.int32),  # decreasing
        np.array([-1, 2, 3], np.int32),  # negative
    ]
    for offsets in bad_offsets:
        with pytest.raises(KernelError, match="outside their buffers"):
            K.encode_strings(ranks, [(K.STRING_UTF8, 2, offsets, [data])], 1)
    view = np.zeros(16, np.uint8)
    view[:4] = np.frombuffer(np.int32(20).tobytes(), np.uint8)  # 20 bytes out of line
    view[8:12] = np.frombuffer(np.int32(1).tobytes(), np.uint8)  # buffer 1 of 1
    with pytest.raises(KernelError, match="outside their buffers"):
        K.encode_strings(np.empty(1, np.int32), [(K.STRING_VIEW, 1, view, [data])], 1)
    view[:4] = np.frombuffer(np.int32(-3).tobytes(), np.uint8)  # negative length
    with pytest.raises(KernelError, match="outside their buffers"):
        K.encode_strings(np.empty(1, np.int32), [(K.STRING_VIEW, 1, view, [data])], 1)
    with pytest.raises(ValueError, match="one entry per row"):
        K.encode_strings(np.empty(3, np.int32), [(K.STRING_UTF8, 2, bad_offsets[0], [data])], 1)
    with pytest.raises(ValueError, match="n \\+ 1 offsets"):
        K.encode_strings(ranks, [(K.STRING_LARGE_UTF8, 2, np.zeros(2, np.int64), [data])], 1)


def test_group_rows_takes_ranks_as_keys() -> None:
    """int32 segments without rank_of_code: the codes are the keys (ranks
    from encode_strings)."""
    rng = np.random.default_rng(12)
    codes = rng.integers(0, 50, size=400).astype(np.int32)
    days = rng.integers(0, 9, size=400).astype(np.int32)
    amounts = rng.normal(size=400)
    rows, _ = rows_of(group_rows([codes[:150], codes[150:]], None, [days[:150], days[150:]],
                                 [amounts[:150].view(np.int64), amounts[150:].view(np.int64)],
                                 None, 400, False, 2))  # fmt: skip
    np.testing.assert_array_equal(rows.view(ROW)["key"], np.sort(codes))
