"""The behaviour-funnel definitions (docs/funnel.md) in plain Polars: the test
oracle of :func:`churn_engine.funnel` and the baseline of its benchmark.

It takes clean events (no nulls, known behaviours) with a ``date`` column
already cut in the time zone, and computes every number with group-bys, in
the most direct way, independently of the kernel's behaviour-set counting.
"""

from __future__ import annotations

import polars as pl

__all__ = ["reference_funnel"]


def _rate(numerator: str | pl.Expr, denominator: str | pl.Expr) -> pl.Expr:
    num = pl.col(numerator) if isinstance(numerator, str) else numerator
    den = pl.col(denominator) if isinstance(denominator, str) else denominator
    return pl.when(den > 0).then(num / den).otherwise(None).cast(pl.Float64)


def _flags() -> list[pl.Expr]:
    """Per window and user: which behaviours they did."""
    return [
        (pl.col("behaviour") == name).any().alias(name) for name in ("pv", "fav", "cart", "buy")
    ]


def _user_counts() -> list[pl.Expr]:
    """Over (window, user) rows with behaviour flags: the user counts."""
    fav_cart = pl.col("fav") | pl.col("cart")
    return [
        pl.len().cast(pl.Int64).alias("uv"),
        pl.col("pv").sum().cast(pl.Int64).alias("pv_users"),
        fav_cart.sum().cast(pl.Int64).alias("fav_cart_users"),
        pl.col("buy").sum().cast(pl.Int64).alias("buyers"),
        (pl.col("pv") & fav_cart).sum().cast(pl.Int64).alias("funnel_fav_cart_users"),
        (pl.col("pv") & fav_cart & pl.col("buy")).sum().cast(pl.Int64).alias("funnel_buy_users"),
    ]


def _event_counts() -> list[pl.Expr]:
    return [
        pl.len().cast(pl.Int64).alias("events"),
        *[
            (pl.col("behaviour") == name).sum().cast(pl.Int64).alias(name)
            for name in ("pv", "fav", "cart", "buy")
        ],
    ]


def _rates() -> list[pl.Expr]:
    step1, step2, step3 = (
        pl.col("pv_users"),
        pl.col("funnel_fav_cart_users"),
        pl.col("funnel_buy_users"),
    )
    return [
        _rate("buyers", "uv").alias("pay_rate"),
        _rate(step2, step1).alias("conv_pv_to_fav_cart"),
        _rate(step3, step2).alias("conv_fav_cart_to_buy"),
        _rate(step3, step1).alias("conv_pv_to_buy"),
        _rate(step1 - step2, step1).alias("drop_pv_to_fav_cart"),
        _rate(step2 - step3, step2).alias("drop_fav_cart_to_buy"),
    ]


def reference_funnel(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    user: str = "user_id",
    date: str = "date",
    behaviour: str = "behavior",
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(daily, overall, funnel)`` with the columns of :func:`churn_engine.funnel`
    (``overall`` without ``items`` and ``categories``).

    ``events``: clean rows with a user column, a ``date`` (Date) column and a
    behaviour column holding pv, fav, cart or buy.
    """
    lf = events.lazy().select(
        pl.col(user).alias("user"), pl.col(date).alias("date"), pl.col(behaviour).alias("behaviour")
    )
    per_user_day = lf.group_by("date", "user").agg(_flags())
    daily = (
        lf.group_by("date").agg(_event_counts())
        .join(per_user_day.group_by("date").agg(_user_counts()), on="date")
        .with_columns(*_rates())
        .sort("date")
    )  # fmt: skip

    per_user = per_user_day.group_by("user").agg(
        *[pl.col(name).any() for name in ("pv", "fav", "cart", "buy")],
        pl.col("buy").sum().alias("buy_days"),
    )
    users = per_user.select(
        *_user_counts(), (pl.col("buy_days") >= 2).sum().cast(pl.Int64).alias("repeat_buyers")
    )
    totals = lf.select(
        pl.col("date").min().alias("start"),
        pl.col("date").max().alias("end"),
        pl.col("date").n_unique().cast(pl.Int64).alias("days"),
        *_event_counts(),
    )
    overall = (
        pl.concat([totals, users], how="horizontal")
        .with_columns(*_rates(), _rate("repeat_buyers", "buyers").alias("repurchase_rate"))
    )  # fmt: skip
    daily_frame, overall_frame = pl.collect_all([daily, overall])
    daily_frame = daily_frame.select(
        "date", "events", "pv", "fav", "cart", "buy", "uv", "pv_users", "fav_cart_users",
        "buyers", "pay_rate", "funnel_fav_cart_users", "funnel_buy_users",
        "conv_pv_to_fav_cart", "conv_fav_cart_to_buy", "conv_pv_to_buy",
        "drop_pv_to_fav_cart", "drop_fav_cart_to_buy",
    )  # fmt: skip

    row = overall_frame.row(0, named=True)
    users_at = [row["pv_users"], row["funnel_fav_cart_users"], row["funnel_buy_users"]]
    pairs = list(zip(users_at, [None, users_at[0], users_at[1]], strict=True))

    def ratio(a: int, b: int | None) -> float | None:
        return None if not b else a / b

    funnel = pl.DataFrame(
        {
            "step": ["pv", "fav/cart", "buy"],
            "events": [row["pv"], row["fav"] + row["cart"], row["buy"]],
            "users": users_at,
            "conversion_from_previous": [ratio(u, p) for u, p in pairs],
            "conversion_from_top": [ratio(u, users_at[0]) for u in users_at],
            "drop_off": [None if p is None else p - u for u, p in pairs],
            "drop_off_rate": [
                None if p is None else ratio(p - u, p) for u, p in pairs
            ],
        },
        schema={"step": pl.String, "events": pl.Int64, "users": pl.Int64,
                "conversion_from_previous": pl.Float64, "conversion_from_top": pl.Float64,
                "drop_off": pl.Int64, "drop_off_rate": pl.Float64},
    )  # fmt: skip
    return daily_frame, overall_frame, funnel
