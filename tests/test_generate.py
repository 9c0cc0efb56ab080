"""The synthetic transaction log: shape, determinism and argument checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from churn_engine._generate import CATEGORIES, ITEM_COLUMNS, generate_log
from churn_engine.errors import ConfigError

END = dt.date(2026, 6, 30)
N = 20_000


@pytest.fixture(scope="module")
def log() -> pl.DataFrame:
    return generate_log(N, seed=11)


@pytest.fixture(scope="module")
def per_customer(log: pl.DataFrame) -> pl.DataFrame:
    purchases = log.filter(pl.col("amount") > 0)
    return purchases.group_by("customer_id").agg(
        days=pl.col("ts").dt.date().n_unique(),
        rows=pl.len(),
        last=pl.col("ts").max().dt.date(),
    )


def test_schema(log: pl.DataFrame) -> None:
    assert log.schema == pl.Schema(
        {"customer_id": pl.Int64, "ts": pl.Datetime("us"), "amount": pl.Float64}
    )
    assert log.null_count().row(0) == (0, 0, 0)


def test_string_ids_and_categories() -> None:
    plain = generate_log(2_000, seed=5)
    rich = generate_log(2_000, seed=5, string_ids=True, categories=True)
    assert rich.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "ts": pl.Datetime("us"),
            "amount": pl.Float64,
            "category": pl.String,
        }
    )
    assert rich["customer_id"].str.contains(r"^C\d{10}$").all()
    assert set(rich["category"].unique()) <= set(CATEGORIES)
    assert rich["category"].n_unique() >= 4
    # Ids and categories come from their own random streams: the rest is unchanged.
    assert rich.select("ts", "amount").equals(plain.select("ts", "amount"))
    assert rich["customer_id"].n_unique() == plain["customer_id"].n_unique() == 2_000


def test_deterministic_per_seed() -> None:
    assert generate_log(3_000, seed=7).equals(generate_log(3_000, seed=7))
    assert not generate_log(3_000, seed=7).equals(generate_log(3_000, seed=8))
    a = generate_log(500, seed=1, string_ids=True, categories=True)
    assert a.equals(generate_log(500, seed=1, string_ids=True, categories=True))


def test_every_customer_has_a_purchase_and_sparse_unique_ids(log: pl.DataFrame) -> None:
    ids = log["customer_id"]
    assert ids.n_unique() == N
    assert log.filter(pl.col("amount") > 0)["customer_id"].n_unique() == N
    assert ids.min() >= 1 and ids.max() < 2**62
    # Sparse: far from 1..N.
    assert ids.max() > 1_000 * N


def test_sorted_by_ts_and_within_window(log: pl.DataFrame) -> None:
    assert log["ts"].is_sorted()
    assert log["ts"].max() < dt.datetime.combine(END + dt.timedelta(days=1), dt.time())
    earliest = dt.datetime.combine(END - dt.timedelta(days=round(3 * 365.25)), dt.time())
    assert log["ts"].min() >= earliest
    # First purchases are spread over the years: every year has new customers.
    firsts = log.group_by("customer_id").agg(pl.col("ts").min())["ts"].dt.year()
    assert set(firsts.unique()) >= {2023, 2024, 2025, 2026}


def test_end_and_years_are_respected() -> None:
    end = dt.date(2020, 2, 29)
    log = generate_log(1_000, seed=2, end=end, years=0.5)
    assert log["ts"].max().date() <= end
    assert log["ts"].min().date() >= end - dt.timedelta(days=183)


def test_about_half_one_time_buyers(per_customer: pl.DataFrame) -> None:
    share = (per_customer["days"] == 1).mean()
    assert 0.35 <= share <= 0.65


def test_rows_per_customer(log: pl.DataFrame) -> None:
    assert 4 <= log.height / N <= 7


def test_amounts(log: pl.DataFrame) -> None:
    amount = log["amount"].to_numpy()
    assert np.isfinite(amount).all()
    assert (amount != 0).all()
    assert np.allclose(np.round(amount * 100), amount * 100, rtol=0, atol=1e-6)
    assert (amount > 0).mean() > 0.95
    assert 10 < np.median(amount[amount > 0]) < 500


def test_refunds(log: pl.DataFrame) -> None:
    refunds = log.filter(pl.col("amount") < 0)
    assert 0.003 <= refunds.height / log.height <= 0.03
    first_purchase = (
        log.filter(pl.col("amount") > 0).group_by("customer_id").agg(first=pl.col("ts").min())
    )
    joined = refunds.join(first_purchase, on="customer_id", how="left")
    assert joined["first"].null_count() == 0
    assert (joined["ts"] >= joined["first"]).all()


def test_same_day_repeats_and_churned_customers(
    log: pl.DataFrame, per_customer: pl.DataFrame
) -> None:
    same_day = per_customer.filter(pl.col("rows") > pl.col("days"))
    assert 0 < same_day.height < 0.2 * N
    recency = (pl.lit(END) - pl.col("last")).dt.total_days()
    repeat = per_customer.filter(pl.col("days") >= 2).with_columns(recency=recency)
    # Some repeat buyers stopped long ago, some still buy.
    assert (repeat["recency"] > 365).mean() > 0.05
    assert (repeat["recency"] < 30).mean() > 0.1
    assert per_customer["days"].max() >= 20


def test_single_customer() -> None:
    log = generate_log(1, seed=0)
    assert log.height >= 1
    assert log["customer_id"].n_unique() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_customers": 0},
        {"n_customers": -5},
        {"n_customers": 1.5},
        {"n_customers": True},
        {"n_customers": "10"},
        {"n_customers": 10, "seed": -1},
        {"n_customers": 10, "seed": 1.0},
        {"n_customers": 10, "years": 0},
        {"n_customers": 10, "years": float("nan")},
        {"n_customers": 10, "years": -1},
        {"n_customers": 10, "years": "3"},
        {"n_customers": 10, "end": "2026-06-30"},
        {"n_customers": 10, "end": dt.datetime(2026, 6, 30)},
        {"n_customers": 10, "string_ids": "yes"},
        {"n_customers": 10, "categories": 1},
        {"n_customers": 10, "items": "yes"},
        {"n_customers": 10, "items": True, "n_items": 5},
        {"n_customers": 10, "items": True, "n_items": 2.5},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    n = kwargs.pop("n_customers")
    with pytest.raises(ConfigError):
        generate_log(n, **kwargs)  # type: ignore[arg-type]


# -- items ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def item_log() -> pl.DataFrame:
    return generate_log(N, seed=11, items=True, n_items=500)


def test_items_schema_and_other_columns_unchanged(
    log: pl.DataFrame, item_log: pl.DataFrame
) -> None:
    assert item_log.schema == pl.Schema(
        {
            "customer_id": pl.Int64,
            "ts": pl.Datetime("us"),
            "amount": pl.Float64,
            "item_id": pl.Int64,
            "quantity": pl.Int64,
            "price": pl.Float64,
            "cost": pl.Float64,
        }
    )
    assert ITEM_COLUMNS == ("item_id", "quantity", "price", "cost")
    assert item_log.null_count().sum_horizontal().item() == 0
    # items come from their own random stream: the log itself is the same
    assert item_log.select(log.columns).equals(log)
    # and the items do not depend on the category column being written
    both = generate_log(2_000, seed=5, items=True, categories=True, n_items=100)
    assert both.drop("category").equals(generate_log(2_000, seed=5, items=True, n_items=100))
    assert both.select("customer_id", "ts", "amount", "category").equals(
        generate_log(2_000, seed=5, categories=True)
    )


def test_items_deterministic() -> None:
    a = generate_log(1_000, seed=3, items=True, n_items=50)
    assert a.equals(generate_log(1_000, seed=3, items=True, n_items=50))
    assert not a.equals(generate_log(1_000, seed=4, items=True, n_items=50))


def test_items_prices_quantities_costs(item_log: pl.DataFrame) -> None:
    sales = item_log.filter(pl.col("amount") > 0)
    refunds = item_log.filter(pl.col("amount") < 0)
    assert (sales["quantity"] >= 1).all() and (refunds["quantity"] <= -1).all()
    # unit price in cents, price * quantity = amount within half a cent per unit
    error = (sales["price"] * sales["quantity"] - sales["amount"]).abs()
    assert (error <= 0.005 * sales["quantity"] + 1e-9).all()
    assert (item_log["price"] > 0).all() and (item_log["cost"] > 0).all()
    # one unit cost per item; selling below cost is rare (discounted rows)
    assert item_log.group_by("item_id").agg(pl.col("cost").n_unique())["cost"].max() == 1
    assert (sales["price"] < sales["cost"]).mean() < 0.15
    assert item_log["item_id"].min() >= 1 and item_log["item_id"].max() <= 500


def test_items_long_tail(item_log: pl.DataFrame) -> None:
    units = (
        item_log.filter(pl.col("amount") > 0)
        .group_by("item_id")
        .agg(pl.col("quantity").sum(), pl.col("price").median())
        .sort("quantity", descending=True)
    )
    assert units.height >= 400
    top = units.head(units.height // 10)["quantity"].sum()
    assert top > 0.4 * units["quantity"].sum()  # Zipf-like: a few items sell most
    assert units["quantity"].median() < units["quantity"].mean() / 2
    # cheap items sell in volume, premium items rarely
    cheap = units.filter(pl.col("price") < pl.col("price").quantile(0.25))["quantity"].median()
    premium = units.filter(pl.col("price") > pl.col("price").quantile(0.9))["quantity"].median()
    assert cheap > 3 * premium


def test_items_new_items_start_late(item_log: pl.DataFrame) -> None:
    first_sale = item_log.group_by("item_id").agg(pl.col("ts").min())["ts"]
    late = (first_sale > dt.datetime.combine(END - dt.timedelta(days=160), dt.time())).sum()
    assert 5 <= late <= 60  # about 5 % of 500 launched in the last 150 days
