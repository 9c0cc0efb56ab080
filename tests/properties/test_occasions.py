"""The kernel's occasion walk (``_occasions.collect_occasions``) against plain Polars.

An occasion is a day with a non-refund row (DESIGN.md section 4); its amount
is the sum of that day's purchase amounts, refunds excluded. Groups come in
the score's order, so their ids line up with ``score`` of the same data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine._occasions import collect_occasions
from churn_engine.config import ScoreConfig

from .strategies import logs

_EPOCH = dt.date(1970, 1, 1)


def _flatten(data: object, config: ScoreConfig, as_of: object = None) -> pl.DataFrame:
    occ = collect_occasions(data, config, as_of)
    counts = np.diff(occ.offsets)
    columns = {
        "customer_id": occ.customer_ids("customer_id").gather(
            np.repeat(np.arange(occ.n_groups), counts)
        )
    }
    cats = occ.categories("category")
    if cats is not None:
        columns["category"] = cats.gather(np.repeat(np.arange(occ.n_groups), counts))
    columns["day"] = pl.Series(occ.day, dtype=pl.Int32).cast(pl.Date)
    columns["amount"] = pl.Series(occ.amount)
    return pl.DataFrame(columns)


def test_hand_example() -> None:
    # customer 7: two rows on Jan 1 (10 + 5), a refund on Jan 3 (no occasion),
    # a purchase of 0 on Jan 9 (an occasion: only negative amounts are refunds)
    # customer 2: refunds only -> no group; customer 3: one purchase on Jan 2
    log = pl.DataFrame({
        "customer_id": [7, 7, 7, 7, 2, 3],
        "ts": [dt.date(2024, 1, d) for d in (1, 1, 3, 9, 4, 2)],
        "amount": [10.0, 5.0, -4.0, 0.0, -1.0, 2.5],
    })  # fmt: skip
    occ = collect_occasions(log, ScoreConfig())
    assert occ.customer_ids("customer_id").to_list() == [3, 7]
    assert occ.offsets.tolist() == [0, 1, 3]
    assert [_EPOCH + dt.timedelta(days=int(d)) for d in occ.day] == [
        dt.date(2024, 1, 2), dt.date(2024, 1, 1), dt.date(2024, 1, 9),
    ]  # fmt: skip
    assert occ.amount.tolist() == [2.5, 15.0, 0.0]
    assert occ.no_purchase == 1


def test_empty_input() -> None:
    log = pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64})
    occ = collect_occasions(log, ScoreConfig())
    assert occ.n_groups == 0 and occ.day.size == 0


@given(
    log=logs(max_customers=60, ts_kinds=("date", "datetime_naive")), threads=st.sampled_from([1, 2])
)
def test_matches_polars(log, threads) -> None:
    category = "category" if log.category else None
    config = ScoreConfig(category_col=category, threads=threads)
    got = _flatten(log.frame, config)
    keys = ["customer_id", *([category] if category else [])]
    expected = (
        log.frame.filter(pl.col("amount") >= 0)
        .with_columns(day=pl.col("ts").cast(pl.Date))
        .group_by([*keys, "day"])
        .agg(pl.col("amount").cast(pl.Float64).sum())
        .sort([*keys, "day"])
    )
    joined = got.join(expected, on=[*keys, "day"], how="full", coalesce=True, nulls_equal=True)
    assert joined.height == got.height == expected.height
    assert np.allclose(joined["amount"], joined["amount_right"], rtol=1e-12, atol=1e-9)
    # groups in the score's order, days ascending within a group
    scored = churn_engine.score(log.frame, category_col=category)
    assert got.select(keys).unique(maintain_order=True).equals(scored.select(keys))
    assert (
        got.group_by(keys, maintain_order=True)
        .agg(
            pl.col("day").is_sorted().alias("sorted"),
            pl.col("day").n_unique().alias("n"),
            pl.len().alias("len"),
        )
        .select((pl.col("sorted") & (pl.col("n") == pl.col("len"))).all())
        .item()
    )
