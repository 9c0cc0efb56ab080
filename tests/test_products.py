"""Product classes (docs/products.md): hand-computed examples, a plain-Python
reference checked with hypothesis, validation errors and the CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fractions
import math
import pathlib
from collections import defaultdict
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import (
    PRODUCT_CLASSES,
    ConfigError,
    DataError,
    ProductRules,
    ProductThresholds,
    SchemaError,
    cli,
    product_classes,
)
from churn_engine._generate import generate_log
from churn_engine._products import quantile_lower

AS_OF = dt.date(2024, 6, 30)
EPOCH = dt.date(1970, 1, 1)
AS_OF_DAY = (AS_OF - EPOCH).days


def day(offset: int) -> dt.date:
    return AS_OF + dt.timedelta(days=offset)


# -- the hand example -----------------------------------------------------------
#
# (customer, day offset from as_of, item, quantity, unit price, unit cost);
# amount = quantity * price, a negative quantity is a refund.
# Customers: 1 repeat, buys every few weeks up to as_of -> active;
# 2 repeat, last bought 700 days ago -> churned (no purchase in 365 days);
# 3 one-time, 3 days ago -> active (prior = median(12, 100) = 56 days);
# 4 one-time, 400 days ago -> churned.
HAND_ROWS = [
    (1, -60, "A", 5, 2.0, 1.8),
    (1, -40, "A", 5, 2.0, 1.8),
    (1, -39, "A", -1, 2.0, 1.8),  # refund of one unit: -2
    (1, -20, "B", 4, 10.0, 4.0),
    (1, -10, "E", 5, 8.0, 4.0),
    (1, -5, "F", 1, 4.0, 3.4),
    (1, -2, "H", -1, 3.0, 1.0),  # H is only ever refunded
    (1, 0, "F", 2, 4.0, 3.4),
    (2, -800, "B", 6, 10.0, 4.0),
    (2, -700, "C", 1, 50.0, 15.0),
    (3, -3, "A", 5, 2.0, 1.8),
    (4, -400, "A", 5, 2.0, 1.8),
    (4, -400, "D", 2, 5.0, 4.0),  # same day as the A row: one occasion
]
HAND_RULES = ProductRules(rising_min_orders=2)


def hand_log(rows: list[tuple[Any, ...]] = HAND_ROWS) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [day(r[1]) for r in rows],
            "amount": [r[3] * r[4] for r in rows],
            "item_id": [r[2] for r in rows],
            "quantity": [r[3] for r in rows],
            "price": [r[4] for r in rows],
            "cost": [r[5] for r in rows],
        }
    )


def run_hand(**kwargs: Any) -> churn_engine.ProductResult:
    options: dict[str, Any] = dict(
        as_of=AS_OF,
        quantity_col="quantity",
        cost_col="cost",
        catalog=["G"],
        rules=HAND_RULES,
        threads=1,
    )
    options.update(kwargs)
    return product_classes(hand_log(), **options)


def item_rows(result: churn_engine.ProductResult) -> dict[str, dict[str, Any]]:
    return {row["item_id"]: row for row in result.items.iter_rows(named=True)}


def test_hand_example_statuses() -> None:
    scores = churn_engine.score(hand_log(), as_of=AS_OF)
    assert scores.select("customer_id", "buyer_type", "status").rows() == [
        (1, "repeat", "active"),
        (2, "repeat", "churned"),
        (3, "one_time", "active"),
        (4, "one_time", "churned"),
    ]


def test_hand_example_sell_through() -> None:
    result = run_hand()
    # listed: A..F and H from the data, G from the catalog = 8 items; sold in
    # the last 30 days (offsets -29..0): A (-3), B (-20), E (-10), F (-5, 0).
    # H's row at -2 is a refund, not a sale.
    assert result.listed_items == 8
    assert result.sold_in_window == 4
    assert result.sell_through_rate == 0.5
    assert result.as_of == AS_OF
    assert result.rows_used == len(HAND_ROWS)


def test_hand_example_thresholds() -> None:
    t = run_hand().thresholds
    assert t is not None
    # sold items A..F (n = 6); index floor(5 q): q 0.8 -> 4, q 0.5 -> 2.
    # units 1 (C), 2 (D), 3 (F), 5 (E), 10 (B), 20 (A)
    assert (t.volume, t.volume_high, t.volume_low) == ("units", 10.0, 3.0)
    # margin rates .1 (A), .15 (F), .2 (D), .5 (E), .6 (B), .7 (C)
    assert t.margin == "margin_rate"
    assert t.margin_high == pytest.approx(0.6)
    assert t.margin_low == pytest.approx(0.2)
    # repeat-buyer shares 0 (D), 1/3 (A), 1, 1, 1, 1 -> index 2
    assert t.repeat_share == 1.0


def test_hand_example_items() -> None:
    items = item_rows(run_hand())
    assert list(items) == ["A", "B", "C", "D", "E", "F", "G", "H"]
    expected = {
        # orders, units, revenue, price, unit_cost, margin, margin_rate, buyers, repeat share
        "A": (4, 20, 38.0, 2.0, 1.8, 4.0, 0.1, 3, 1 / 3),
        "B": (2, 10, 100.0, 10.0, 4.0, 60.0, 0.6, 2, 1.0),
        "C": (1, 1, 50.0, 50.0, 15.0, 35.0, 0.7, 1, 1.0),
        "D": (1, 2, 10.0, 5.0, 4.0, 2.0, 0.2, 1, 0.0),
        "E": (1, 5, 40.0, 8.0, 4.0, 20.0, 0.5, 1, 1.0),
        "F": (2, 3, 12.0, 4.0, 3.4, 1.8, 0.15, 1, 1.0),
        "G": (0, 0, 0.0, None, None, None, None, 0, None),
        "H": (0, 0, -3.0, None, None, None, None, 0, None),
    }
    names = ["orders", "units", "revenue", "price", "unit_cost", "margin", "margin_rate",
             "buyers", "repeat_buyer_share"]  # fmt: skip
    for item, values in expected.items():
        got = tuple(items[item][n] for n in names)
        assert got == pytest.approx(values, nan_ok=False), item
    dates = {
        "A": (day(-400), day(-3), True),
        "B": (day(-800), day(-20), True),
        "C": (day(-700), day(-700), False),
        "D": (day(-400), day(-400), False),
        "E": (day(-10), day(-10), True),
        "F": (day(-5), day(0), True),
        "G": (None, None, False),
        "H": (None, None, False),
    }
    for item, values in dates.items():
        assert (items[item]["first_sale"], items[item]["last_sale"],
                items[item]["sold_in_window"]) == values, item  # fmt: skip
    # recent window: offsets -29..0; previous: -119..-30 (units, per day)
    trends = {
        "A": (5.0, 10.0, 1, 1.5, False),  # (5/30) / (10/90) = 1.5 < 2
        "B": (4.0, 0.0, 1, None, False),  # empty baseline but only 1 recent order
        "C": (0.0, 0.0, 0, None, False),
        "D": (0.0, 0.0, 0, None, False),
        "E": (5.0, 0.0, 1, None, False),
        "F": (3.0, 0.0, 2, None, True),  # 2 recent orders >= rising_min_orders, no baseline
        "G": (0.0, 0.0, 0, None, False),
        "H": (0.0, 0.0, 0, None, False),
    }
    for item, values in trends.items():
        got = tuple(
            items[item][n]
            for n in ("recent_volume", "previous_volume", "recent_orders", "trend", "rising")
        )
        assert got == pytest.approx(values), item  # fmt: skip


def test_item_table_schema() -> None:
    from churn_engine._products import ITEM_SCHEMA

    for kwargs, units in (({}, pl.Int64), ({"quantity_col": None}, pl.Int64)):
        items = run_hand(**kwargs).items
        assert items.schema == pl.Schema({"item_id": pl.String, **ITEM_SCHEMA, "units": units})
    float_units = product_classes(
        hand_log().with_columns(pl.col("quantity").cast(pl.Float64)), quantity_col="quantity"
    )
    assert float_units.items.schema["units"] == pl.Float64
    # every item unsold: the same types
    empty = product_classes(hand_log(), as_of=day(-1000), catalog=["X"], cost_col="cost")
    assert empty.items.schema == pl.Schema({"item_id": pl.String, **ITEM_SCHEMA, "units": pl.Int64})


def test_hand_example_classes() -> None:
    result = run_hand()
    classes = {item: row["class"] for item, row in item_rows(result).items()}
    assert classes == {
        "A": "traffic",  # units 20 >= 10, margin .1 <= .2
        "B": "profit",  # units 10 >= 10 (not low), margin .6 >= .6, repeat share 1 >= 1
        "C": "potential",  # units 1 <= 3, margin .7 >= .6
        "D": "edge",  # units 2 <= 3, margin .2 <= .2, not rising
        "E": "core",  # units 5 and margin .5: neither high nor low
        "F": "potential",  # units 3 <= 3, margin .15 low, but rising
        "G": "edge",  # listed, never sold
        "H": "edge",  # refunds only: no sale
    }
    assert result.classes.rows() == [
        ("traffic", 1, 1 / 8, 20.0, 38.0, 38 / 247),
        ("profit", 1, 1 / 8, 10.0, 100.0, 100 / 247),
        ("potential", 2, 2 / 8, 4.0, 62.0, 62 / 247),
        ("edge", 3, 3 / 8, 2.0, 7.0, 7 / 247),
        ("core", 1, 1 / 8, 5.0, 40.0, 40 / 247),
    ]
    assert result.classes.columns == [
        "class", "items", "item_share", "units", "revenue", "revenue_share"
    ]  # fmt: skip


def test_hand_example_churned_mix() -> None:
    mix = run_hand().churned_mix
    assert mix.columns == [
        "status", "class", "customers", "customer_share", "revenue", "revenue_share"
    ]  # fmt: skip
    table = {(r[0], r[1]): r[2:] for r in mix.rows()}
    assert len(table) == 4 * 5
    # active: customers 1 and 3 (2 buyers); spend 117
    assert table["active", "traffic"] == pytest.approx(
        (2, 1.0, 28.0, 28 / 117)
    )  # 1: 10+10-2, 3: 10
    assert table["active", "profit"] == pytest.approx((1, 0.5, 40.0, 40 / 117))
    assert table["active", "potential"] == pytest.approx((1, 0.5, 12.0, 12 / 117))  # F
    assert table["active", "edge"] == pytest.approx(
        (0, 0.0, -3.0, -3 / 117)
    )  # H: a refund, no buyer
    assert table["active", "core"] == pytest.approx((1, 0.5, 40.0, 40 / 117))
    # nobody is at risk
    for cls in PRODUCT_CLASSES:
        assert table["at_risk", cls] == pytest.approx((0, None, 0.0, None))
    # churned: customers 2 (B, C) and 4 (A, D); spend 130
    assert table["churned", "traffic"] == pytest.approx((1, 0.5, 10.0, 10 / 130))
    assert table["churned", "profit"] == pytest.approx((1, 0.5, 60.0, 60 / 130))
    assert table["churned", "potential"] == pytest.approx((1, 0.5, 50.0, 50 / 130))
    assert table["churned", "edge"] == pytest.approx((1, 0.5, 10.0, 10 / 130))
    assert table["churned", "core"] == pytest.approx((0, 0.0, 0.0, 0.0))
    # all: 4 buyers, spend 247
    assert table["all", "traffic"] == pytest.approx((3, 0.75, 38.0, 38 / 247))
    assert table["all", "profit"] == pytest.approx((2, 0.5, 100.0, 100 / 247))
    assert table["all", "potential"] == pytest.approx((2, 0.5, 62.0, 62 / 247))
    assert table["all", "edge"] == pytest.approx((1, 0.25, 7.0, 7 / 247))
    assert table["all", "core"] == pytest.approx((1, 0.25, 40.0, 40 / 247))


def test_hand_example_orders_volume() -> None:
    result = run_hand(rules=dataclasses.replace(HAND_RULES, volume="orders"))
    t = result.thresholds
    assert t is not None
    # orders: A 4, B 2, C 1, D 1, E 1, F 2 -> sorted 1 1 1 2 2 4
    assert (t.volume, t.volume_high, t.volume_low) == ("orders", 2.0, 1.0)
    classes = {item: row["class"] for item, row in item_rows(result).items()}
    assert classes == {
        "A": "traffic",
        "B": "profit",
        "C": "potential",
        "D": "edge",
        "E": "core",  # 1 order: low volume, but margin .5 is not low
        "F": "traffic",  # 2 orders: high volume (>= 2, > 1), margin .15 low
        "G": "edge",
        "H": "edge",
    }


def test_hand_example_price_as_margin_measure() -> None:
    result = run_hand(cost_col=None)
    t = result.thresholds
    assert t is not None
    # prices 2 (A), 4 (F), 5 (D), 8 (E), 10 (B), 50 (C)
    assert (t.margin, t.margin_high, t.margin_low) == ("price", 10.0, 5.0)
    items = item_rows(result)
    assert all(row["margin"] is None and row["unit_cost"] is None for row in items.values())
    assert [row["class"] for row in items.values()] == [
        "traffic", "profit", "potential", "edge", "core", "potential", "edge", "edge",
    ]  # fmt: skip


def test_hand_example_lookback() -> None:
    result = run_hand(rules=dataclasses.replace(HAND_RULES, lookback_days=30))
    items = item_rows(result)
    # in the last 30 days: A 5 units (customer 3, one-time), B 4, E 5, F 3;
    # C and D did not sell; H's refund (-3) is in the period, A's is not
    assert {k: (v["units"], v["revenue"]) for k, v in items.items()} == {
        "A": (5, 10.0), "B": (4, 40.0), "C": (0, 0.0), "D": (0, 0.0),
        "E": (5, 40.0), "F": (3, 12.0), "G": (0, 0.0), "H": (0, -3.0),
    }  # fmt: skip
    assert items["A"]["repeat_buyer_share"] == 0.0
    t = result.thresholds
    assert t is not None
    # units 3 4 5 5 (n = 4, index floor(3 q)): high q.8 -> 2 -> 5, low q.5 -> 1 -> 4
    assert (t.volume_high, t.volume_low) == (5.0, 4.0)
    # margins .1 .15 .5 .6 -> .5 and .15; shares 0 1 1 1 -> 1
    assert (t.margin_high, t.margin_low) == pytest.approx((0.5, 0.15))
    assert t.repeat_share == 1.0
    assert {k: v["class"] for k, v in items.items()} == {
        "A": "traffic",  # 5 >= 5 and > 4; .1 <= .15
        "B": "potential",  # 4 <= 4; .6 high
        "C": "edge", "D": "edge", "G": "edge", "H": "edge",  # no sale in the period
        "E": "profit",  # 5 high; .5 >= .5; share 1
        "F": "potential",  # 3 low, rising
    }  # fmt: skip
    # the mix still covers all history: churned customer 2 bought B and C
    mix = {(r[0], r[1]): r[2] for r in result.churned_mix.rows()}
    assert mix["churned", "potential"] == 1  # 2 (B)
    assert mix["churned", "edge"] == 2  # 2 (C), 4 (D)
    assert mix["churned", "traffic"] == 1  # 4 (A)


def test_hand_example_given_thresholds() -> None:
    given_cuts = ProductThresholds(
        volume="units", margin="margin_rate", volume_high=3, volume_low=2,
        margin_high=0.5, margin_low=0.2, repeat_share=0.5,
    )  # fmt: skip
    result = run_hand(rules=dataclasses.replace(HAND_RULES, thresholds=given_cuts))
    assert result.thresholds == given_cuts
    classes = {item: row["class"] for item, row in item_rows(result).items()}
    assert classes == {
        "A": "traffic",  # 20 >= 3; .1 <= .2
        "B": "profit",  # 10 high; .6 >= .5; share 1 >= .5
        "C": "potential",  # 1 <= 2; .7 high
        "D": "edge",  # 2 <= 2; .2 <= .2; not rising
        "E": "profit",  # 5 high; .5 high; share 1
        "F": "traffic",  # 3 >= 3 and > 2; .15 <= .2
        "G": "edge", "H": "edge",
    }  # fmt: skip
    # rerunning with the thresholds a run returned gives the same classes
    first = run_hand()
    again = run_hand(rules=dataclasses.replace(HAND_RULES, thresholds=first.thresholds))
    assert again.items.equals(first.items)


def test_hand_example_customers_given_and_str() -> None:
    scores = churn_engine.score(hand_log(), as_of=AS_OF)
    given_scores = run_hand(customers=scores)
    own = run_hand()
    assert given_scores.items.equals(own.items)
    assert given_scores.churned_mix.equals(own.churned_mix)
    text = str(own)
    assert "products as of 2024-06-30" in text
    assert "sell-through rate" in text and "50.0 %" in text
    assert "traffic" in text and "churned" in text


def test_price_column_and_string_source(tmp_path: pathlib.Path) -> None:
    # with a price column the value of a sale is price * quantity, not the amount
    log = hand_log().with_columns(pl.col("amount") * 0.5)
    result = product_classes(
        log, as_of=AS_OF, quantity_col="quantity", price_col="price", cost_col="cost"
    )
    items = item_rows(result)
    assert items["B"]["price"] == 10.0
    assert items["B"]["margin_rate"] == pytest.approx(0.6)
    assert items["B"]["revenue"] == 50.0  # amounts
    # without quantity or price a row is one unit at its amount
    plain = item_rows(product_classes(hand_log(), as_of=AS_OF))
    assert (plain["A"]["units"], plain["A"]["price"]) == (4, 10.0)  # four sale rows of 10
    assert plain["A"]["revenue"] == 38.0
    # a CSV path gives the same items
    path = tmp_path / "log.csv"
    hand_log().write_csv(path)
    from_csv = product_classes(str(path), as_of=AS_OF, quantity_col="quantity", cost_col="cost")
    assert from_csv.items.drop("item_id").equals(
        product_classes(hand_log(), as_of=AS_OF, quantity_col="quantity", cost_col="cost")
        .items.drop("item_id")
    )  # fmt: skip


def test_one_shot_stream_and_pandas() -> None:
    import pyarrow as pa

    table = hand_log().to_arrow()
    stream = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    # the stream is read once, for both the items and the score
    from_stream = product_classes(stream, as_of=AS_OF, quantity_col="quantity")
    from_pandas = product_classes(hand_log().to_pandas(), as_of=AS_OF, quantity_col="quantity")
    assert from_stream.items.equals(from_pandas.items)
    assert from_stream.listed_items == 7


def test_row_order_does_not_matter() -> None:
    log = hand_log()
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=4)
    a = product_classes(log, as_of=AS_OF, quantity_col="quantity", cost_col="cost")
    b = product_classes(shuffled, as_of=AS_OF, quantity_col="quantity", cost_col="cost")
    assert a.items.equals(b.items)
    assert a.churned_mix.equals(b.churned_mix)


def test_category_col_keys_statuses_per_category() -> None:
    log = hand_log().with_columns(
        category=pl.when(pl.col("item_id").is_in(["A", "F"])).then(pl.lit("food"))
        .otherwise(pl.lit("home"))
    )  # fmt: skip
    result = product_classes(
        log, as_of=AS_OF, quantity_col="quantity", cost_col="cost", category_col="category"
    )
    mix = {(r[0], r[1]): r[2] for r in result.churned_mix.rows()}
    # customer 1 in "home" bought B at -20, E at -10 (and refunded H): repeat,
    # cycle 10 days, 10 days ago -> active; all buyers are counted per
    # customer x category
    all_buyers = sum(mix["all", c] for c in PRODUCT_CLASSES)
    assert all_buyers >= 4
    assert result.items.height == 7


def test_rows_after_as_of_and_empty() -> None:
    result = run_hand(as_of=AS_OF - dt.timedelta(days=1))
    items = item_rows(result)
    assert items["F"]["units"] == 1  # the row at as_of is not used
    empty = product_classes(
        hand_log(), as_of=day(-1000), catalog=["X", "Y"], quantity_col="quantity"
    )
    assert empty.as_of == day(-1000) and empty.rows_used == 0
    assert empty.listed_items == 2 and empty.sell_through_rate == 0.0
    assert empty.thresholds is None
    assert empty.items["class"].to_list() == ["edge", "edge"]
    assert empty.classes["items"].to_list() == [0, 0, 0, 2, 0]


def test_id_types_and_dates_before_1970() -> None:
    base = run_hand().items
    for ids in (pl.String, pl.Categorical, pl.UInt64, pl.Int16):
        log = hand_log().with_columns(pl.col("customer_id").cast(pl.String).cast(ids))
        result = product_classes(
            log, as_of=AS_OF, quantity_col="quantity", cost_col="cost", catalog=["G"],
            rules=HAND_RULES, threads=1,
        )  # fmt: skip
        assert result.items.equals(base), ids
    # day numbers below zero pack and unpack like any others
    shift = dt.timedelta(days=366 * 60)
    old = product_classes(
        hand_log().with_columns(pl.col("ts") - shift), as_of=AS_OF - shift,
        quantity_col="quantity", cost_col="cost", catalog=["G"], rules=HAND_RULES, threads=1,
    )  # fmt: skip
    dates = ["first_sale", "last_sale"]
    assert old.items.drop(dates).equals(base.drop(dates))
    assert old.items["last_sale"][0] == day(-3) - shift


def test_occasions_without_packing() -> None:
    from churn_engine._products import occasions

    rows = pl.DataFrame(
        {
            "__p_icode": pl.Series([0, 1, 0, 0, 1], dtype=pl.UInt32),
            "__p_cust": pl.Series([3, 3, 3, 2, 0], dtype=pl.UInt32),
            "__churn_day": pl.Series([-5, -5, -5, 10, 7], dtype=pl.Int32),
            "__p_sale": [True, True, True, True, False],
            "__p_units": [1, 2, 3, 4, 5],
            "__p_value": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    packed = occasions(rows, 2, 4).sort(pl.all())
    plain = occasions(rows, 2, 2**60).sort(pl.all())  # too many bits: three-column group-by
    assert packed.equals(plain)
    assert packed.rows() == [(0, 2, 10, 4, 4.0), (0, 3, -5, 4, 4.0), (1, 3, -5, 2, 2.0)]


# -- quantiles ----------------------------------------------------------------------


def test_quantile_lower_by_hand() -> None:
    values = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 0.0, 10.0])  # 0..10
    assert quantile_lower(values, 0.7) == 7.0  # 10 * 7/10, not 6 through 0.7's binary value
    assert quantile_lower(values, 0.5) == 5.0
    assert quantile_lower(values, 0.0) == 0.0
    assert quantile_lower(values, 1.0) == 10.0
    assert quantile_lower(np.array([3.0, 1.0]), 0.99) == 1.0


@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=30),
    st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 1.0]),
)
def test_quantile_lower_matches_numpy(values: list[int], q: float) -> None:
    array = np.array(values, dtype=np.float64)
    exact = sorted(values)[(len(values) - 1) * fractions.Fraction(str(q)).numerator
                           // fractions.Fraction(str(q)).denominator]  # fmt: skip
    assert quantile_lower(array, q) == exact
    assert abs(np.searchsorted(np.sort(array), np.quantile(array, q, method="lower"))
               - np.searchsorted(np.sort(array), exact)) <= 1  # fmt: skip


# -- the plain-Python reference -------------------------------------------------------


def reference(
    rows: list[dict[str, Any]],
    status: dict[int, tuple[str, str]],
    rules: ProductRules,
    catalog: list[str] | None,
    has_cost: bool,
    use_price: bool,
) -> dict[str, Any]:
    """docs/products.md in plain Python: one loop over the rows per table."""
    rows = [r for r in rows if r["day"] <= AS_OF_DAY]
    since = None if rules.lookback_days is None else AS_OF_DAY - rules.lookback_days
    recent_start = AS_OF_DAY - rules.rising_recent_days
    previous_start = recent_start - rules.rising_baseline_days
    items: dict[str, dict[str, Any]] = {}
    listed = {r["item"] for r in rows} | set(catalog or [])
    for item in listed:
        items[item] = dict(
            occasions=set(), units=0, value=0.0, cost=0.0, revenue=0.0, buyers=set(),
            days=[], window=False, recent=defaultdict(int), previous=defaultdict(int),
            recent_occ=set(), previous_occ=set(),
        )  # fmt: skip
    for r in rows:
        it = items[r["item"]]
        in_period = since is None or r["day"] > since
        if in_period:
            it["revenue"] += r["amount"]
        if r["amount"] < 0:
            continue
        units = r["quantity"]
        it["days"].append(r["day"])
        it["window"] |= r["day"] > AS_OF_DAY - rules.sell_through_days
        occasion = (r["customer"], r["day"])
        if r["day"] > recent_start:
            it["recent_occ"].add(occasion)
            it["recent"][occasion] += units
        elif r["day"] > previous_start:
            it["previous_occ"].add(occasion)
            it["previous"][occasion] += units
        if in_period:
            it["occasions"].add(occasion)
            it["units"] += units
            it["value"] += (r["price"] * units) if use_price else r["amount"]
            it["cost"] += r["cost"] * units
            it["buyers"].add(r["customer"])
    table: dict[str, dict[str, Any]] = {}
    for item, it in items.items():
        orders = len(it["occasions"])
        sold = orders > 0
        margin = it["value"] - it["cost"] if sold and has_cost else None
        if rules.volume == "units":
            recent = float(sum(it["recent"].values()))
            previous = float(sum(it["previous"].values()))
        else:
            recent, previous = float(len(it["recent_occ"])), float(len(it["previous_occ"]))
        trend = (
            (recent / rules.rising_recent_days) / (previous / rules.rising_baseline_days)
            if previous > 0 else None
        )  # fmt: skip
        repeat = sum(status[c][0] == "repeat" for c in it["buyers"])
        table[item] = dict(
            orders=orders,
            units=it["units"],
            revenue=it["revenue"],
            price=it["value"] / it["units"] if sold else None,
            margin=margin,
            margin_rate=margin / it["value"] if margin is not None and it["value"] > 0 else None,
            buyers=len(it["buyers"]),
            repeat_buyer_share=repeat / len(it["buyers"]) if it["buyers"] else None,
            first_sale=min(it["days"]) if it["days"] else None,
            last_sale=max(it["days"]) if it["days"] else None,
            sold_in_window=it["window"],
            recent_volume=recent,
            previous_volume=previous,
            recent_orders=len(it["recent_occ"]),
            trend=trend,
            rising=len(it["recent_occ"]) >= rules.rising_min_orders
            and (previous == 0 or (trend is not None and trend >= rules.rising_ratio)),
        )
    measure = "margin_rate" if has_cost else "price"

    def cut(values: list[float], q: float) -> float:
        exact = fractions.Fraction(repr(q))
        return sorted(values)[(len(values) - 1) * exact.numerator // exact.denominator]

    sold_items = [v for v in table.values() if v["orders"] > 0]
    thresholds = None
    if sold_items:
        volume = [float(v[rules.volume]) for v in sold_items]
        margins = [v[measure] for v in sold_items if v[measure] is not None]
        shares = [v["repeat_buyer_share"] for v in sold_items]
        thresholds = dict(
            volume_high=cut(volume, rules.volume_high_quantile),
            volume_low=cut(volume, rules.volume_low_quantile),
            margin_high=cut(margins, rules.margin_high_quantile) if margins else None,
            margin_low=cut(margins, rules.margin_low_quantile) if margins else None,
            repeat_share=cut(shares, rules.repeat_share_quantile),
        )
    for v in table.values():
        if thresholds is None or v["orders"] == 0:
            v["class"] = "edge"
            continue
        vol, m = float(v[rules.volume]), v[measure]
        low_v = vol <= thresholds["volume_low"]
        high_v = vol >= thresholds["volume_high"] and vol > thresholds["volume_low"]
        m_low, m_high = thresholds["margin_low"], thresholds["margin_high"]
        if m_low is None:
            low_m, high_m = True, False
        else:
            low_m = m is None or m <= m_low
            high_m = m is not None and m >= m_high and m > m_low
        if high_v and low_m:
            v["class"] = "traffic"
        elif low_v and (high_m or v["rising"]):
            v["class"] = "potential"
        elif high_m and v["repeat_buyer_share"] >= thresholds["repeat_share"]:
            v["class"] = "profit"
        elif low_v and low_m:
            v["class"] = "edge"
        else:
            v["class"] = "core"
    # status x class over all rows up to as_of
    buyers: dict[tuple[str, str], set[int]] = defaultdict(set)
    spend: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        if r["customer"] not in status:
            continue
        key = (status[r["customer"]][1], table[r["item"]]["class"])
        spend[key] += r["amount"]
        if r["amount"] >= 0:
            buyers[key].add(r["customer"])
    return dict(items=table, thresholds=thresholds, buyers=buyers, spend=spend)


@st.composite
def product_logs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 40))
    rows = []
    for _ in range(n):
        refund = draw(st.integers(0, 9)) == 0
        price = draw(st.sampled_from([1.0, 2.5, 4.0, 10.0, 0.0]))
        quantity = draw(st.integers(1, 3))
        rows.append(
            dict(
                customer=draw(st.integers(1, 6)),
                day=AS_OF_DAY + draw(st.integers(-200, 3)),
                item=draw(st.sampled_from("abcdef")),
                quantity=-1 if refund else quantity,
                price=price,
                # amounts differ from price * quantity (discounts): exact binary values
                amount=-(price + 0.5) if refund else price * quantity - draw(st.sampled_from(
                    [0.0, 0.5])) * (price > 0),
                cost=price * draw(st.sampled_from([0.25, 0.5, 0.75, 1.25])),
            )
        )  # fmt: skip
    low_v, high_v = sorted(draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]),
                                         min_size=2, max_size=2)))  # fmt: skip
    low_m, high_m = sorted(draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
                                         min_size=2, max_size=2)))  # fmt: skip
    rules = ProductRules(
        volume=draw(st.sampled_from(["units", "orders"])),
        volume_high_quantile=high_v,
        volume_low_quantile=low_v,
        margin_high_quantile=high_m,
        margin_low_quantile=low_m,
        repeat_share_quantile=draw(st.sampled_from([0.0, 0.5, 0.9])),
        sell_through_days=draw(st.sampled_from([1, 30, 60])),
        rising_recent_days=draw(st.sampled_from([10, 30])),
        rising_baseline_days=draw(st.sampled_from([30, 90])),
        rising_ratio=draw(st.sampled_from([1.0, 2.0])),
        rising_min_orders=draw(st.integers(1, 2)),
        lookback_days=draw(st.sampled_from([None, 30, 120])),
    )
    return dict(
        rows=rows,
        rules=rules,
        has_cost=draw(st.booleans()),
        use_price=draw(st.booleans()),
        with_quantity=draw(st.booleans()),
        catalog=draw(st.sampled_from([None, ["z", "a"]])),
        pass_scores=draw(st.booleans()),
    )


@given(product_logs())
def test_matches_plain_reference(case: dict[str, Any]) -> None:
    rows, rules = case["rows"], case["rules"]
    if not case["with_quantity"]:
        rows = [dict(r, quantity=1 if r["amount"] >= 0 else -1) for r in rows]
        if not case["use_price"]:  # then a sale's amount is its value
            rows = [dict(r, amount=r["price"]) if r["amount"] >= 0 else r for r in rows]
    log = pl.DataFrame(
        {
            "customer_id": [r["customer"] for r in rows],
            "ts": pl.Series([r["day"] for r in rows], dtype=pl.Int32).cast(pl.Date),
            "amount": [float(r["amount"]) for r in rows],
            "item_id": [r["item"] for r in rows],
            "quantity": [r["quantity"] for r in rows],
            "price": [r["price"] for r in rows],
            "cost": [r["cost"] for r in rows],
        }
    )
    # one thread: a thread pool per tiny example only costs time
    scores = churn_engine.score(log, as_of=AS_OF, threads=1)
    status = {c: (b, s) for c, b, s in scores.select("customer_id", "buyer_type", "status").rows()}
    result = product_classes(
        log,
        as_of=AS_OF,
        quantity_col="quantity" if case["with_quantity"] else None,
        price_col="price" if case["use_price"] else None,
        cost_col="cost" if case["has_cost"] else None,
        catalog=case["catalog"],
        rules=rules,
        customers=scores if case["pass_scores"] else None,
        threads=1,
    )
    expected = reference(
        rows, status, rules, case["catalog"], case["has_cost"],
        case["use_price"] or not case["with_quantity"],
    )  # fmt: skip
    items = expected["items"]
    got = item_rows(result)
    assert list(got) == sorted(items)
    for item, want in items.items():
        row = got[item]
        for name, value in want.items():
            if name in ("first_sale", "last_sale"):
                value = None if value is None else EPOCH + dt.timedelta(days=value)
            assert row[name] == value or (
                isinstance(value, float) and row[name] == pytest.approx(value, rel=1e-12)
            ), (item, name, row[name], value)
    t = expected["thresholds"]
    if t is None:
        assert result.thresholds is None
    else:
        assert result.thresholds is not None
        assert {k: getattr(result.thresholds, k) for k in t} == t
    listed = len(items)
    sold = sum(v["sold_in_window"] for v in items.values())
    assert (result.listed_items, result.sold_in_window) == (listed, sold)
    assert result.sell_through_rate == (sold / listed if listed else None)
    for status_name, cls, customers, _, revenue, _ in result.churned_mix.rows():
        if status_name == "all":
            want_buyers = set().union(*(v for (s, c), v in expected["buyers"].items() if c == cls))
            want_spend = sum(v for (s, c), v in expected["spend"].items() if c == cls)
        else:
            want_buyers = expected["buyers"].get((status_name, cls), set())
            want_spend = expected["spend"].get((status_name, cls), 0.0)
        assert customers == len(want_buyers), (status_name, cls)
        assert revenue == pytest.approx(want_spend, abs=1e-9), (status_name, cls)
    counts = result.classes.select("class", "items").rows()
    assert counts == [(c, sum(v["class"] == c for v in items.values())) for c in PRODUCT_CLASSES]


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"volume": "revenue"},
        {"volume_high_quantile": 1.5},
        {"volume_low_quantile": -0.1},
        {"margin_high_quantile": float("nan")},
        {"margin_low_quantile": "0.5"},
        {"repeat_share_quantile": True},
        {"volume_low_quantile": 0.9, "volume_high_quantile": 0.8},
        {"margin_low_quantile": 0.9},
        {"sell_through_days": 0},
        {"sell_through_days": 30.0},
        {"rising_recent_days": -5},
        {"rising_baseline_days": True},
        {"rising_ratio": 0},
        {"rising_ratio": float("inf")},
        {"rising_min_orders": 0},
        {"rising_min_orders": 2.5},
        {"lookback_days": 0},
        {"thresholds": "0.5"},
        {"thresholds": {"volume": "units"}},
        {
            "thresholds": ProductThresholds("orders", "price", 1, 1, 1, 1, 0.5),
        },  # volume mismatch with the default "units"
    ],
)
def test_rules_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ProductRules(**kwargs)


@pytest.mark.parametrize(
    "args",
    [
        ("pieces", "price", 1, 1, 1, 1, 0.5),
        ("units", "markup", 1, 1, 1, 1, 0.5),
        ("units", "price", float("nan"), 1, 1, 1, 0.5),
        ("units", "price", 1, 1, None, 1, 0.5),
        ("units", "price", 1, 1, 1, 1, "x"),
    ],
)
def test_thresholds_validation(args: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigError):
        ProductThresholds(*args)


def test_thresholds_round_trip_and_measure_mismatch() -> None:
    t = ProductThresholds("units", "price", 10, 3, 10, 5, 1)
    assert ProductThresholds.from_dict(t.to_dict()) == t
    assert ProductRules(thresholds=t.to_dict()).thresholds == t  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="margin"):
        run_hand(rules=ProductRules(thresholds=t))  # run has a cost column: margin_rate


def test_product_options_validation() -> None:
    with pytest.raises(ConfigError, match="differ"):
        product_classes(hand_log(), item_col="amount")
    with pytest.raises(ConfigError, match="differ"):
        product_classes(hand_log(), price_col="price", cost_col="price")
    with pytest.raises(ConfigError):
        product_classes(hand_log(), item_col="")
    with pytest.raises(ConfigError):
        product_classes(hand_log(), rules={"volume": "units"})  # type: ignore[arg-type]


def test_missing_item_column_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"'sku' \(item_col\)"):
        product_classes(hand_log(), item_col="sku")
    with pytest.raises(SchemaError, match=r"'qty' \(quantity_col\)"):
        product_classes(hand_log(), quantity_col="qty")


def test_wrong_column_types_are_schema_errors() -> None:
    with pytest.raises(SchemaError, match="item ids"):
        product_classes(hand_log().with_columns(pl.col("quantity").cast(pl.Float64)),
                        item_col="quantity")  # fmt: skip
    with pytest.raises(SchemaError, match="cost"):
        product_classes(hand_log().with_columns(cost=pl.lit(True)), cost_col="cost")


@pytest.mark.parametrize(
    ("change", "options", "reason", "column", "row"),
    [
        (pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("item_id"))
         .alias("item_id"), {}, "null_item", "item_id", 3),
        (pl.when(pl.int_range(pl.len()) == 5).then(-1.0).otherwise(pl.col("price"))
         .alias("price"), {"price_col": "price"}, "negative_price", "price", 5),
        (pl.when(pl.int_range(pl.len()) == 2).then(-1.0).otherwise(pl.col("price"))
         .alias("price"), {"price_col": "price"}, "negative_price", "price", None),
        (pl.when(pl.int_range(pl.len()) == 4).then(float("nan")).otherwise(pl.col("cost"))
         .alias("cost"), {"cost_col": "cost"}, "nan_cost", "cost", 4),
        (pl.when(pl.int_range(pl.len()) == 7).then(0).otherwise(pl.col("quantity"))
         .alias("quantity"), {"quantity_col": "quantity"}, "nonpositive_quantity", "quantity", 7),
        (pl.when(pl.int_range(pl.len()) == 1).then(float("inf")).otherwise(pl.col("cost"))
         .alias("cost"), {"cost_col": "cost"}, "infinite_cost", "cost", 1),
        (pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("four"))
         .otherwise(pl.col("price").cast(pl.String)).alias("price"),
         {"price_col": "price"}, "unparseable_price", "price", 5),
    ],
)  # fmt: skip
def test_bad_item_values(
    change: pl.Expr, options: dict[str, str], reason: str, column: str, row: int | None
) -> None:
    log = hand_log().with_columns(change)
    if row is None:  # row 2 is a refund: a negative price there is not checked
        product_classes(log, as_of=AS_OF, **options)
        return
    with pytest.raises(DataError, match=rf"column {column!r}: .* at row {row}") as info:
        product_classes(log, as_of=AS_OF, **options)
    assert (info.value.column, info.value.reason, info.value.row) == (column, reason, row)
    quarantined = product_classes(log, as_of=AS_OF, on_error="quarantine", **options)
    assert quarantined.rejected_by_reason == {reason: 1}
    assert quarantined.rejects is not None
    assert quarantined.rejects.rows() == [(row, reason)]
    assert quarantined.rows_used == len(HAND_ROWS) - 1


def test_quarantine_merges_core_rejects() -> None:
    log = hand_log().with_columns(
        amount=pl.when(pl.int_range(pl.len()) == 0).then(float("nan")).otherwise("amount"),
        item_id=pl.when(pl.int_range(pl.len()) == 9).then(None).otherwise("item_id"),
    )
    result = product_classes(log, as_of=AS_OF, on_error="quarantine")
    assert result.rejected_by_reason == {"nan_amount": 1, "null_item": 1}
    assert result.rejects is not None
    assert result.rejects.rows() == [(0, "nan_amount"), (9, "null_item")]
    with pytest.raises(DataError, match="amount"):
        product_classes(log, as_of=AS_OF)


def test_catalog_forms_and_errors() -> None:
    for catalog in (["G"], ("G",), pl.Series(["G"]), pl.DataFrame({"item_id": ["G", "A"]}),
                    pl.Series(["G"], dtype=pl.Categorical)):  # fmt: skip
        assert run_hand(catalog=catalog).listed_items == 8
    with pytest.raises(SchemaError, match="catalog has no column"):
        run_hand(catalog=pl.DataFrame({"sku": ["G"]}))
    with pytest.raises(SchemaError, match="catalog"):
        run_hand(catalog=42)
    with pytest.raises(DataError, match="null"):
        run_hand(catalog=["G", None])
    integer_items = hand_log().with_columns(
        pl.col("item_id").replace_strict(
            {c: i for i, c in enumerate("ABCDEFH")}, return_dtype=pl.Int64
        )
    )
    with pytest.raises(SchemaError, match="catalog"):
        product_classes(integer_items, catalog=["G"])
    assert product_classes(integer_items, catalog=[99]).listed_items == 8


def test_customers_argument_errors() -> None:
    scores = churn_engine.score(hand_log(), as_of=AS_OF)
    with pytest.raises(DataError, match="no row for customer"):
        run_hand(customers=scores.filter(pl.col("customer_id") != 3))
    with pytest.raises(SchemaError, match="status"):
        run_hand(customers=scores.drop("status"))
    with pytest.raises(SchemaError, match="DataFrame"):
        run_hand(customers=scores.to_dicts())
    with pytest.raises(DataError, match="null values in 'status'"):
        run_hand(customers=scores.with_columns(status=pl.lit(None, dtype=pl.String)))
    with pytest.raises(DataError, match="several rows"):
        run_hand(customers=pl.concat([scores, scores.head(1)]))
    # ids of another type are cast to the data's
    same = run_hand(customers=scores.with_columns(pl.col("customer_id").cast(pl.Int32)))
    assert same.items.equals(run_hand().items)


# -- generated data and the command line --------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> pl.DataFrame:
    return generate_log(3_000, seed=2, items=True, n_items=300)


def test_generated_log_classes(generated: pl.DataFrame) -> None:
    result = product_classes(generated, quantity_col="quantity", cost_col="cost")
    counts = dict(result.classes.select("class", "items").rows())
    assert sum(counts.values()) == result.listed_items == generated["item_id"].n_unique()
    assert all(counts[c] > 0 for c in PRODUCT_CLASSES), counts
    assert result.sell_through_rate is not None and 0 < result.sell_through_rate < 1
    # traffic items sell more units than edge items, at a lower margin than profit items
    by_class = result.items.group_by("class").agg(
        pl.col("units").median(), pl.col("margin_rate").median()
    )
    stats = {r[0]: r[1:] for r in by_class.rows()}
    assert stats["traffic"][0] > stats["edge"][0]
    assert stats["traffic"][1] < stats["profit"][1]


def test_cli_products(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "log.parquet"
    hand_log().write_parquet(log_path)
    out, mix = tmp_path / "items.csv", tmp_path / "mix.parquet"
    code = cli.main([
        "products", str(log_path), "--as-of", "2024-06-30", "--quantity-col", "quantity",
        "--cost-col", "cost", "--rising-min-orders", "2", "-o", str(out),
        "--mix-out", str(mix), "-q",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "sell-through rate" in printed
    items = pl.read_csv(out)
    assert dict(items.select("item_id", "class").rows()) == {
        "A": "traffic", "B": "profit", "C": "potential", "D": "edge", "E": "core",
        "F": "potential", "H": "edge",
    }  # fmt: skip
    assert pl.read_parquet(mix).height == 20


def test_cli_products_errors(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "log.parquet"
    hand_log().write_parquet(log_path)
    assert cli.main(["products", str(log_path), "--volume-high-quantile", "2"]) == 2
    assert "--volume-high-quantile" in capsys.readouterr().err
    assert cli.main(["products", str(log_path), "--item-col", "sku"]) == 1
    assert "'sku' (item_col)" in capsys.readouterr().err
    assert cli.main(["products", str(tmp_path / "missing.parquet")]) == 2
    assert cli.main(["products", str(log_path), "-o", str(log_path)]) == 2
    help_code = cli.main(["products", "--help"])
    assert help_code == 0
    assert "--catalog" in capsys.readouterr().out


def test_cli_generate_items(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.parquet"
    assert cli.main(["generate", "--customers", "200", "--items", "--n-items", "50",
                     "-o", str(path), "-q"]) == 0  # fmt: skip
    log = pl.read_parquet(path)
    assert log.columns == ["customer_id", "ts", "amount", "item_id", "quantity", "price", "cost"]
    assert log["item_id"].n_unique() <= 50


def test_public_names() -> None:
    for name in ("product_classes", "ProductRules", "ProductThresholds", "ProductResult",
                 "PRODUCT_CLASSES"):  # fmt: skip
        assert name in churn_engine.__all__
    assert PRODUCT_CLASSES == ("traffic", "profit", "potential", "edge", "core")
    assert math.isclose(ProductRules().volume_high_quantile, 0.8)
