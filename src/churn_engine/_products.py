"""The item-level computations behind :func:`churn_engine.product_classes`.

The rows are checked and normalised once, and each gets two dense codes:
``ICODE`` (the item's rank among the listed items) and ``CUST`` (the row of
its customer in the score). With them every aggregation is a group-by on
one integer column (item x customer x day packed into one Int64 when it
fits), and the status x class mix is a few NumPy gathers and bincounts.
"""

from __future__ import annotations

import dataclasses
import fractions
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from ._prepare import _AMOUNT, _DAY, _ROW
from .errors import SchemaError

__all__ = [
    "CLASSES",
    "CLASS_INDEX",
    "ITEM_SCHEMA",
    "Checked",
    "Windows",
    "check_rows",
    "class_table",
    "classify",
    "encode",
    "item_table",
    "mix_table",
    "occasions",
    "quantile_lower",
]

#: The classes in display order (the issue's four, then the rest).
CLASSES: tuple[str, ...] = ("traffic", "profit", "potential", "edge", "core")
CLASS_INDEX: dict[str, int] = {name: index for index, name in enumerate(CLASSES)}

# normalised row columns (the ids, day and amount keep _prepare's names)
ITEM, UNITS, VALUE, COST_VALUE = "__p_item", "__p_units", "__p_value", "__p_cost_value"
SALE, STATUS, BUYER, CLASS = "__p_sale", "__p_status", "__p_buyer", "class"
ICODE, CUST, REPEAT = "__p_icode", "__p_cust", "__p_repeat"
_REASON = "__p_reason"

_INTEGERS = (
    pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
)  # fmt: skip
_FLOATS = (pl.Float32, pl.Float64, pl.Decimal)
_TEXT = (pl.String, pl.Categorical, pl.Enum)

#: Columns of ``ProductResult.items`` after the item column.
ITEM_SCHEMA: dict[str, pl.DataType] = {
    "class": pl.String(),
    "orders": pl.Int64(),
    "units": pl.Float64(),  # Int64 when the quantity column is integer or absent
    "revenue": pl.Float64(),
    "price": pl.Float64(),
    "unit_cost": pl.Float64(),
    "margin": pl.Float64(),
    "margin_rate": pl.Float64(),
    "buyers": pl.Int64(),
    "repeat_buyer_share": pl.Float64(),
    "first_sale": pl.Date(),
    "last_sale": pl.Date(),
    "sold_in_window": pl.Boolean(),
    "recent_volume": pl.Float64(),
    "previous_volume": pl.Float64(),
    "recent_orders": pl.Int64(),
    "trend": pl.Float64(),
    "rising": pl.Boolean(),
}


def quantile_lower(values: np.ndarray, q: float) -> float:
    """The element at index ``floor((n - 1) * q)`` of the sorted values.

    ``q`` is taken as the decimal it prints as (0.7 is exactly 7/10), so the
    index never slips by one through float rounding; otherwise this is
    ``numpy.quantile(values, q, method="lower")``.
    """
    exact = fractions.Fraction(repr(float(q)))
    index = (len(values) - 1) * exact.numerator // exact.denominator
    return float(np.partition(values, index)[index])


# -- rows ----------------------------------------------------------------------


@dataclasses.dataclass
class Checked:
    """Normalised rows and what the product checks set aside."""

    rows: pl.DataFrame
    rejected_by_reason: dict[str, int]
    rejects: pl.DataFrame | None  # row, reason
    first_bad: tuple[int, str] | None  # (row, reason) of the first bad row


def _numeric(name: str, role: str, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """The column as numbers, and (for text) which values failed to parse."""
    col = pl.col(name)
    if isinstance(dtype, _INTEGERS):
        return col.cast(pl.Int64 if role == "quantity" else pl.Float64), None
    if isinstance(dtype, _FLOATS):
        return col.cast(pl.Float64), None
    if isinstance(dtype, pl.String):
        parsed = col.str.strip_chars().cast(pl.Float64, strict=False)
        return parsed, col.is_not_null() & parsed.is_null()
    raise SchemaError(
        f"column {name!r} ({role}) must be integer, float or numeric text, got {dtype}"
    )


def check_rows(
    rows: pl.DataFrame,
    keys: Sequence[str],
    columns: Mapping[str, str],
    quarantine: bool,
) -> Checked:
    """Check and normalise the item columns of the accepted rows.

    ``columns`` maps a role (``item``, ``price``, ``cost``, ``quantity``) to
    its input column. A null item, a null, unparseable, NaN or infinite
    price/cost/quantity, and on a sale row a negative price or cost or a
    quantity <= 0, make the row bad: the first one is returned (the caller
    raises), or with ``quarantine`` the bad rows are dropped and counted.
    """
    schema = rows.schema
    item = columns["item"]
    item_type = schema[item]
    if isinstance(item_type, _INTEGERS):
        item_expr = pl.col(item)
    elif isinstance(item_type, _TEXT):
        item_expr = pl.col(item).cast(pl.String)
    else:
        raise SchemaError(f"column {item!r} (item ids) must be integer or string, got {item_type}")
    sale = pl.col(_AMOUNT) >= 0
    checks: list[tuple[pl.Expr, str]] = [(pl.col(item).is_null(), "null_item")]
    values: dict[str, pl.Expr] = {}
    for role in ("price", "cost", "quantity"):
        if role not in columns:
            continue
        name = columns[role]
        value, unparseable = _numeric(name, role, schema[name])
        values[role] = value
        checks.append((pl.col(name).is_null(), f"null_{role}"))
        if unparseable is not None:
            checks.append((unparseable, f"unparseable_{role}"))
        if not isinstance(schema[name], _INTEGERS):
            checks.append((value.is_nan(), f"nan_{role}"))
            checks.append((value.is_infinite(), f"infinite_{role}"))
        if role == "quantity":
            checks.append((sale & (value <= 0), "nonpositive_quantity"))
        else:
            checks.append((sale & (value < 0), f"negative_{role}"))
    # the first check that fails names the row's reason
    reason = pl.coalesce([pl.when(condition).then(pl.lit(code)) for condition, code in checks])
    flagged = rows.with_columns(reason.alias(_REASON))
    bad = flagged.filter(pl.col(_REASON).is_not_null())

    rejected: dict[str, int] = {}
    rejects = None
    first_bad = None
    if bad.height:
        counts = bad.group_by(_REASON).len()
        rejected = dict(sorted(zip(counts[_REASON], counts["len"], strict=True)))
        first = bad.sort(_ROW).row(0, named=True)
        first_bad = (int(first[_ROW]), str(first[_REASON]))
        rejects = bad.select(pl.col(_ROW).alias("row"), pl.col(_REASON).alias("reason"))
        flagged = flagged.filter(pl.col(_REASON).is_null())
        if not quarantine:
            return Checked(flagged.clear(), rejected, rejects, first_bad)

    units = values.get("quantity", pl.lit(1, dtype=pl.Int64))
    value = values["price"] * units if "price" in values else pl.col(_AMOUNT).cast(pl.Float64)
    normal = [
        *(pl.col(k) for k in keys),
        pl.col(_DAY),
        pl.col(_AMOUNT).cast(pl.Float64),
        item_expr.alias(ITEM),
        sale.alias(SALE),
        units.alias(UNITS),
        value.alias(VALUE),
    ]
    if "cost" in values:
        normal.append((values["cost"] * units).alias(COST_VALUE))
    return Checked(flagged.select(normal), rejected, rejects, first_bad)


def encode(
    rows: pl.DataFrame, statuses: pl.DataFrame, listed: pl.Series, keys: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add ``ICODE`` and ``CUST`` to the rows (``CUST`` is null for customers
    without a score); returns them with the listed items (``ITEM``, ``ICODE``,
    ascending item)."""
    items = pl.DataFrame({ITEM: listed.sort()}).with_row_index(ICODE)
    customers = statuses.select(*keys).with_row_index(CUST)
    coded = rows.join(items, on=ITEM, how="left").join(customers, on=list(keys), how="left")
    return coded, items


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


def occasions(rows: pl.DataFrame, n_items: int, n_customers: int) -> pl.DataFrame:
    """Sale rows folded into purchase occasions: one row per item x customer x day
    (``ICODE``, ``CUST``, ``DAY`` and the sums of units, value and cost)."""
    sales = rows.filter(pl.col(SALE))
    sums = [pl.col(UNITS).sum(), pl.col(VALUE).sum()]
    if COST_VALUE in rows.columns:
        sums.append(pl.col(COST_VALUE).sum())
    if sales.height == 0:
        return sales.group_by([ICODE, CUST, _DAY]).agg(sums)
    first = int(sales[_DAY].min())  # type: ignore[arg-type]
    span = int(sales[_DAY].max()) - first + 1  # type: ignore[arg-type]
    day_bits, cust_bits = _bits(span), _bits(n_customers)
    if _bits(n_items) + cust_bits + day_bits > 62:
        return sales.group_by([ICODE, CUST, _DAY]).agg(sums)
    # one Int64 key: a single-column group-by is several times faster
    day_unit, item_unit = 1 << day_bits, 1 << (day_bits + cust_bits)
    key = (
        pl.col(ICODE).cast(pl.Int64) * item_unit
        + pl.col(CUST).cast(pl.Int64) * day_unit
        + (pl.col(_DAY) - first).cast(pl.Int64)
    )
    folded = sales.group_by(key.alias("__p_key")).agg(sums)
    packed = pl.col("__p_key")
    return folded.select(
        (packed // item_unit).cast(pl.UInt32).alias(ICODE),
        (packed // day_unit % (1 << cust_bits)).cast(pl.UInt32).alias(CUST),
        (packed % day_unit + first).cast(pl.Int32).alias(_DAY),
        *(pl.col(c) for c in folded.columns[1:]),
    )


# -- items ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Windows:
    """Day windows, each the days ``d`` with ``first < d <= last``."""

    as_of_day: int
    lookback_days: int | None
    sell_through_days: int
    recent_days: int
    baseline_days: int

    def period(self) -> pl.Expr:
        if self.lookback_days is None:  # a column, not a literal: it is summed per group
            return pl.col(_DAY).is_not_null()
        return pl.col(_DAY) > self.as_of_day - self.lookback_days

    def sell_through(self) -> pl.Expr:
        return pl.col(_DAY) > self.as_of_day - self.sell_through_days

    def recent(self) -> pl.Expr:
        return pl.col(_DAY) > self.as_of_day - self.recent_days

    def previous(self) -> pl.Expr:
        end = self.as_of_day - self.recent_days
        return (pl.col(_DAY) > end - self.baseline_days) & (pl.col(_DAY) <= end)


def item_table(
    rows: pl.DataFrame,
    sales: pl.DataFrame,
    items: pl.DataFrame,
    repeat: np.ndarray,
    windows: Windows,
    volume: str,
    rising_ratio: float,
    rising_min_orders: int,
) -> pl.DataFrame:
    """One row per listed item: volumes, money, buyers, sale dates, trend.

    ``items`` are the listed items with their ``ICODE``; ``repeat[c]`` says
    whether customer code ``c`` is a repeat buyer.
    """
    has_cost = COST_VALUE in sales.columns
    period = windows.period()

    def windowed(condition: pl.Expr) -> pl.Expr:
        if volume == "units":
            return pl.col(UNITS).filter(condition).sum().cast(pl.Float64)
        return condition.sum().cast(pl.Float64)

    flagged = sales.with_columns(
        pl.Series(REPEAT, repeat[sales.get_column(CUST).to_numpy()], dtype=pl.Boolean)
    )
    aggregates = [
        period.sum().cast(pl.Int64).alias("orders"),
        pl.col(UNITS).filter(period).sum().alias("units"),
        pl.col(VALUE).filter(period).sum().alias("value"),
        pl.col(CUST).filter(period).n_unique().cast(pl.Int64).alias("buyers"),
        pl.col(CUST).filter(period & pl.col(REPEAT)).n_unique().alias("repeat_buyers"),
        pl.col(_DAY).min().alias("first_day"),
        pl.col(_DAY).max().alias("last_day"),
        windows.sell_through().any().alias("sold_in_window"),
        windowed(windows.recent()).alias("recent_volume"),
        windowed(windows.previous()).alias("previous_volume"),
        windows.recent().sum().cast(pl.Int64).alias("recent_orders"),
    ]
    if has_cost:
        aggregates.append(pl.col(COST_VALUE).filter(period).sum().alias("cost_value"))
    per_item = flagged.group_by(ICODE).agg(aggregates)
    revenue = rows.filter(period).group_by(ICODE).agg(pl.col(_AMOUNT).sum().alias("revenue"))
    units_type = rows.schema[UNITS]
    table = items.join(revenue, on=ICODE, how="left").join(per_item, on=ICODE, how="left")
    units = pl.col("units")
    sold = pl.col("orders") > 0
    margin = pl.col("value") - pl.col("cost_value") if has_cost else pl.lit(None, pl.Float64)
    recent, previous = pl.col("recent_volume"), pl.col("previous_volume")
    baseline_rate = previous / windows.baseline_days
    trend = pl.when(previous > 0).then((recent / windows.recent_days) / baseline_rate)
    rising = (pl.col("recent_orders") >= rising_min_orders) & (
        (previous == 0) | (trend >= rising_ratio)
    )
    return (
        table.with_columns(
            pl.col("orders").fill_null(0),
            units.fill_null(0).cast(units_type),
            pl.col("revenue").fill_null(0.0),
            pl.col("buyers").fill_null(0),
            pl.col("repeat_buyers").fill_null(0),
            pl.col("sold_in_window").fill_null(False),
            recent.fill_null(0.0),
            previous.fill_null(0.0),
            pl.col("recent_orders").fill_null(0),
        )
        .with_columns(
            pl.when(sold).then(pl.col("value") / units).alias("price"),
            pl.when(sold)
            .then(pl.col("cost_value") / units if has_cost else None)
            .cast(pl.Float64)
            .alias("unit_cost"),
            pl.when(sold).then(margin).alias("margin"),
            pl.when(sold & (pl.col("value") > 0))
            .then(margin / pl.col("value"))
            .alias("margin_rate"),
            pl.when(pl.col("buyers") > 0)
            .then(pl.col("repeat_buyers") / pl.col("buyers"))
            .alias("repeat_buyer_share"),
            pl.col("first_day").cast(pl.Date).alias("first_sale"),
            pl.col("last_day").cast(pl.Date).alias("last_sale"),
            trend.alias("trend"),
            rising.alias("rising"),
        )
        .sort(ICODE)
    )


def classify(
    items: pl.DataFrame,
    *,
    volume: str,
    margin: str,
    volume_high: float,
    volume_low: float,
    margin_high: float | None,
    margin_low: float | None,
    repeat_share: float,
) -> pl.DataFrame:
    """Add the ``class`` column (precedence: unsold edge, traffic, potential,
    profit, edge, core; see docs/products.md)."""
    v, m = pl.col(volume), pl.col(margin)
    low_volume = v <= volume_low
    high_volume = (v >= volume_high) & (v > volume_low)
    if margin_low is None or margin_high is None:  # no item has a margin measure
        low_margin, high_margin = pl.lit(True), pl.lit(False)
    else:
        low_margin = m.is_null() | (m <= margin_low)
        high_margin = m.is_not_null() & (m >= margin_high) & (m > margin_low)
    loyal = pl.col("repeat_buyer_share").fill_null(0.0) >= repeat_share
    label = (
        pl.when(pl.col("orders") == 0).then(pl.lit("edge"))
        .when(high_volume & low_margin).then(pl.lit("traffic"))
        .when(low_volume & (high_margin | pl.col("rising"))).then(pl.lit("potential"))
        .when(high_margin & loyal).then(pl.lit("profit"))
        .when(low_volume & low_margin).then(pl.lit("edge"))
        .otherwise(pl.lit("core"))
    )  # fmt: skip
    return items.with_columns(label.alias(CLASS))


def class_table(items: pl.DataFrame) -> pl.DataFrame:
    """Items, units and revenue per class, with shares; every class listed."""
    counts = items.group_by(CLASS).agg(
        pl.len().cast(pl.Int64).alias("items"),
        pl.col("units").sum().cast(pl.Float64).alias("units"),
        pl.col("revenue").sum().alias("revenue"),
    )
    total_items = items.height
    total_revenue = float(items["revenue"].sum()) if items.height else 0.0
    return (
        pl.DataFrame({CLASS: list(CLASSES)})
        .join(counts, on=CLASS, how="left")
        .with_columns(
            pl.col("items").fill_null(0),
            pl.col("units").fill_null(0.0),
            pl.col("revenue").fill_null(0.0),
        )
        .with_columns(
            _share(pl.col("items"), total_items).alias("item_share"),
            _share(pl.col("revenue"), total_revenue).alias("revenue_share"),
        )
        .select(CLASS, "items", "item_share", "units", "revenue", "revenue_share")
    )


def _share(part: pl.Expr, total: float) -> pl.Expr:
    return part / total if total else pl.lit(None, dtype=pl.Float64)


def mix_table(
    rows: pl.DataFrame,
    sales: pl.DataFrame,
    item_class: np.ndarray,
    customer_status: np.ndarray,
    statuses: Sequence[str],
) -> pl.DataFrame:
    """Status x class: customers who bought the class and their spend on it.

    Over all rows up to ``as_of`` (not only the classification period).
    ``item_class[i]`` is the class index (in :data:`CLASSES`) of item code
    ``i``, ``customer_status[c]`` the index in ``statuses`` of customer code
    ``c``. Rows of customers without a score (refunds only) are left out.
    Ends with status ``all``.
    """
    n_classes, n_status = len(CLASSES), len(statuses)
    # bought[c, k]: customer c bought an item of class k
    bought = np.zeros((customer_status.size, n_classes), dtype=bool)
    customers = sales.get_column(CUST).to_numpy()
    bought[customers, item_class[sales.get_column(ICODE).to_numpy()]] = True
    buyer = bought.any(axis=1)
    counts = np.zeros((n_status + 1, n_classes), dtype=np.int64)
    buyers = np.zeros(n_status + 1, dtype=np.int64)
    for index in range(n_status):
        of_status = customer_status == index
        counts[index] = bought[of_status].sum(axis=0)
        buyers[index] = int((buyer & of_status).sum())
    counts[n_status], buyers[n_status] = counts[:n_status].sum(axis=0), buyers[:n_status].sum()

    scored = rows.filter(pl.col(CUST).is_not_null())
    cell = (
        customer_status[scored.get_column(CUST).to_numpy()] * n_classes
        + item_class[scored.get_column(ICODE).to_numpy()]
    )
    spend = np.bincount(
        cell, weights=scored.get_column(_AMOUNT).to_numpy(), minlength=n_status * n_classes
    ).reshape(n_status, n_classes)
    revenue = np.vstack([spend, spend.sum(axis=0)])
    totals = revenue.sum(axis=1)

    names = [*statuses, "all"]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 cells become null below
        customer_share = np.where(buyers[:, None] > 0, counts / buyers[:, None], np.nan)
        revenue_share = np.where(totals[:, None] != 0, revenue / totals[:, None], np.nan)
    return pl.DataFrame(
        {
            "status": [name for name in names for _ in CLASSES],
            CLASS: list(CLASSES) * len(names),
            "customers": counts.ravel(),
            "customer_share": customer_share.ravel(),
            "revenue": revenue.ravel(),
            "revenue_share": revenue_share.ravel(),
        }
    ).with_columns(pl.col("customer_share", "revenue_share").fill_nan(None))
