"""Product classes: sell-through and traffic / profit / potential / edge items.

:func:`product_classes` reads a transaction log whose rows name the item
bought (and optionally its unit price, unit cost and quantity), scores the
customers with :func:`churn_engine.score` (for the buyer type and status),
and classifies every listed item by quantile rules (:class:`ProductRules`).
Definitions and decisions: docs/products.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np
import polars as pl

from . import _products as P
from ._io import csv_path_of, open_source
from ._prepare import _CAT, _ID, parse_as_of, prepare
from .api import Scorer
from .config import STATUSES, ScoreConfig
from .errors import ConfigError, DataError, SchemaError

__all__ = [
    "PRODUCT_CLASSES",
    "ProductResult",
    "ProductRules",
    "ProductThresholds",
    "product_classes",
]

#: The item classes, in display order.
PRODUCT_CLASSES: tuple[str, ...] = P.CLASSES

_EPOCH = dt.date(1970, 1, 1)
_VOLUMES = ("units", "orders")
_MARGINS = ("margin_rate", "price")


def _quantile(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number between 0 and 1, got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ConfigError(f"{name} must be between 0 and 1, got {value!r}")
    return value


def _days(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number of days, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be finite and > 0, got {value!r}")
    return value


def _finite(name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class ProductThresholds:
    """The cut values the classes were decided with (reusable via ``ProductRules``).

    Parameters
    ----------
    volume : {"units", "orders"}
        The volume measure the volume cuts are on.
    margin : {"margin_rate", "price"}
        The margin measure: ``margin_rate`` with a cost column, else ``price``.
    volume_high, volume_low : float
        High volume is ``>= volume_high`` (and ``> volume_low``); low volume
        is ``<= volume_low``.
    margin_high, margin_low : float or None
        The same for the margin measure; None when no sold item had one.
    repeat_share : float
        Profit items need ``repeat_buyer_share >= repeat_share``.
    """

    volume: str
    margin: str
    volume_high: float
    volume_low: float
    margin_high: float | None
    margin_low: float | None
    repeat_share: float

    def __post_init__(self) -> None:
        if self.volume not in _VOLUMES:
            raise ConfigError(f"thresholds.volume must be one of {_VOLUMES}, got {self.volume!r}")
        if self.margin not in _MARGINS:
            raise ConfigError(f"thresholds.margin must be one of {_MARGINS}, got {self.margin!r}")
        for name in ("volume_high", "volume_low", "repeat_share"):
            object.__setattr__(self, name, _finite(f"thresholds.{name}", getattr(self, name)))
        for name in ("margin_high", "margin_low"):
            value = _finite(f"thresholds.{name}", getattr(self, name), optional=True)
            object.__setattr__(self, name, value)
        if (self.margin_high is None) != (self.margin_low is None):
            raise ConfigError("thresholds.margin_high and margin_low are both set or both None")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProductThresholds:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if unknown or missing:
            raise ConfigError(f"ProductThresholds: missing {missing}, unknown {unknown}")
        return cls(**{n: data[n] for n in names})


@dataclasses.dataclass(frozen=True)
class ProductRules:
    """The rules of :func:`product_classes` (docs/products.md), validated once.

    Parameters
    ----------
    volume : {"units", "orders"}
        Volume of an item: units sold (the quantity column, else one per
        row) or orders (occasions: distinct customer x day with a sale).
    volume_high_quantile, volume_low_quantile : float
        High volume: ``volume >= quantile(volume_high_quantile)``; low
        volume: ``volume <= quantile(volume_low_quantile)``; ``0 <= low <= high <= 1``.
    margin_high_quantile, margin_low_quantile : float
        The same for the margin measure (``margin_rate`` with a cost column,
        else ``price``).
    repeat_share_quantile : float
        Profit items need a repeat-buyer share at least this quantile of the
        sold items' shares.
    sell_through_days : int
        An item is sold-through when it sold in the last this many days.
    rising_recent_days, rising_baseline_days : int
        Rising compares the volume of the last ``rising_recent_days`` with
        the ``rising_baseline_days`` before them, per day.
    rising_ratio : float
        Rising: the recent daily volume is at least this times the baseline's
        (or the baseline is empty) ...
    rising_min_orders : int
        ... and the recent window has at least this many orders (one bulk
        purchase is not a trend).
    lookback_days : int, optional
        Volumes, money, buyers and the quantiles use the last this many
        days only (default: all rows up to ``as_of``).
    thresholds : ProductThresholds, optional
        Reuse the cut values of an earlier run instead of computing them.
    """

    volume: Literal["units", "orders"] = "units"
    volume_high_quantile: float = 0.8
    volume_low_quantile: float = 0.5
    margin_high_quantile: float = 0.8
    margin_low_quantile: float = 0.5
    repeat_share_quantile: float = 0.5
    sell_through_days: int = 30
    rising_recent_days: int = 30
    rising_baseline_days: int = 90
    rising_ratio: float = 2.0
    rising_min_orders: int = 5
    lookback_days: int | None = None
    thresholds: ProductThresholds | None = None

    def __post_init__(self) -> None:
        if self.volume not in _VOLUMES:
            raise ConfigError(f"volume must be one of {_VOLUMES}, got {self.volume!r}")
        for name in (
            "volume_high_quantile", "volume_low_quantile", "margin_high_quantile",
            "margin_low_quantile", "repeat_share_quantile",
        ):  # fmt: skip
            object.__setattr__(self, name, _quantile(name, getattr(self, name)))
        for kind in ("volume", "margin"):
            low = getattr(self, f"{kind}_low_quantile")
            high = getattr(self, f"{kind}_high_quantile")
            if low > high:
                raise ConfigError(
                    f"{kind}_low_quantile ({low}) must not exceed {kind}_high_quantile ({high})"
                )
        for name in ("sell_through_days", "rising_recent_days", "rising_baseline_days"):
            object.__setattr__(self, name, _days(name, getattr(self, name)))
        if self.lookback_days is not None:
            object.__setattr__(self, "lookback_days", _days("lookback_days", self.lookback_days))
        object.__setattr__(self, "rising_ratio", _positive("rising_ratio", self.rising_ratio))
        if (
            isinstance(self.rising_min_orders, bool)
            or not isinstance(self.rising_min_orders, int)
            or self.rising_min_orders < 1
        ):
            raise ConfigError(
                f"rising_min_orders must be a positive int, got {self.rising_min_orders!r}"
            )
        if self.thresholds is not None:
            thresholds = self.thresholds
            if isinstance(thresholds, Mapping):
                thresholds = ProductThresholds.from_dict(thresholds)
            if not isinstance(thresholds, ProductThresholds):
                raise ConfigError(
                    f"thresholds must be ProductThresholds, got {type(thresholds).__name__}"
                )
            if thresholds.volume != self.volume:
                raise ConfigError(
                    f"thresholds are on volume={thresholds.volume!r} but the rules use "
                    f"volume={self.volume!r}"
                )
            object.__setattr__(self, "thresholds", thresholds)


@dataclasses.dataclass(frozen=True)
class ProductResult:
    """The outcome of :func:`product_classes`.

    Attributes
    ----------
    items : polars.DataFrame
        One row per listed item, ascending item id: the item column, then
        ``class``, ``orders``, ``units``, ``revenue``, ``price``,
        ``unit_cost``, ``margin``, ``margin_rate``, ``buyers``,
        ``repeat_buyer_share``, ``first_sale``, ``last_sale``,
        ``sold_in_window``, ``recent_volume``, ``previous_volume``,
        ``recent_orders``, ``trend``, ``rising`` (docs/products.md).
    classes : polars.DataFrame
        Per class (all five, in :data:`PRODUCT_CLASSES` order): ``items``,
        ``item_share``, ``units``, ``revenue``, ``revenue_share``.
    churned_mix : polars.DataFrame
        Status x class (``active``, ``at_risk``, ``churned``, then ``all``):
        ``customers`` who bought items of the class, ``customer_share`` (of
        the status's buyers), ``revenue`` they spent on it and
        ``revenue_share`` (of the status's spend).
    sell_through_rate : float or None
        ``sold_in_window / listed_items`` (None without listed items).
    listed_items, sold_in_window : int
        The two counts of the rate.
    thresholds : ProductThresholds or None
        The cut values used (None when no item sold in the period).
    rules : ProductRules
        The rules used.
    as_of : datetime.date or None
        The day the windows end on (None without accepted rows).
    rows_used : int
        Accepted rows the items were computed from.
    rejected_by_reason : dict
        Rows set aside (``on_error="quarantine"``), by reason.
    rejects : polars.DataFrame or None
        Their ``row`` and ``reason`` (quarantine only).
    """

    items: pl.DataFrame
    classes: pl.DataFrame
    churned_mix: pl.DataFrame
    sell_through_rate: float | None
    listed_items: int
    sold_in_window: int
    thresholds: ProductThresholds | None
    rules: ProductRules
    as_of: dt.date | None
    rows_used: int
    rejected_by_reason: dict[str, int]
    rejects: pl.DataFrame | None = None

    def __str__(self) -> str:
        return _format(self)


Progress = Callable[[str], None]


def product_classes(
    data: Any,
    *,
    as_of: dt.date | dt.datetime | str | None = None,
    item_col: str = "item_id",
    price_col: str | None = None,
    cost_col: str | None = None,
    quantity_col: str | None = None,
    catalog: Any = None,
    rules: ProductRules | None = None,
    customers: pl.DataFrame | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> ProductResult:
    """Sell-through rate and product classes of the items of a transaction log.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The transaction log (DESIGN.md section 3) with an item column.
    as_of : date, datetime or ISO string, optional
        As in :func:`churn_engine.score`; default: the last day in the data.
    item_col : str
        The item id column (integer or string).
    price_col : str, optional
        Unit price of the row; default: ``amount / quantity`` (``amount``
        without a quantity column).
    cost_col : str, optional
        Unit cost of the row; with it the margin measure is ``margin_rate``,
        without it ``price``.
    quantity_col : str, optional
        Units of the row (> 0 on sales); default: one unit per row.
    catalog : sequence, polars Series or DataFrame, optional
        Listed items (a DataFrame needs ``item_col``); they are added to the
        items of the data, and those without a sale count as unsold.
    rules : ProductRules, optional
        Quantile rules, windows and thresholds (default: ``ProductRules()``).
    customers : polars.DataFrame, optional
        The score of the same data and ``as_of`` (``churn_engine.score``),
        to skip scoring again; needs the id (and category) columns,
        ``buyer_type`` and ``status``.
    progress : callable, optional
        Called with the name of each stage as it starts.
    **options
        :class:`churn_engine.ScoreConfig` options (columns, ``tz``,
        ``ts_unit``, status rules, ``on_error`` ...).

    Returns
    -------
    ProductResult

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({
    ...     "customer_id": [1, 1, 2, 3],
    ...     "ts": [dt.date(2024, 5, 1), dt.date(2024, 6, 20), dt.date(2024, 6, 25),
    ...            dt.date(2024, 3, 1)],
    ...     "amount": [10.0, 12.0, 9.0, 80.0],
    ...     "item_id": ["soap", "soap", "soap", "lamp"],
    ... })
    >>> result = churn_engine.product_classes(log, as_of="2024-06-30")
    >>> result.sell_through_rate
    0.5
    >>> result.items.select("item_id", "units", "price", "class").rows()
    [('lamp', 1, 80.0, 'potential'), ('soap', 3, 10.333333333333334, 'traffic')]
    """
    rules = ProductRules() if rules is None else rules
    if not isinstance(rules, ProductRules):
        raise ConfigError(f"rules must be ProductRules, got {type(rules).__name__}")
    config = ScoreConfig(**options)
    columns = _columns(config, item_col, price_col, cost_col, quantity_col)
    margin = "margin_rate" if cost_col is not None else "price"
    if rules.thresholds is not None and rules.thresholds.margin != margin:
        raise ConfigError(
            f"thresholds are on margin={rules.thresholds.margin!r} but this run's margin "
            f"measure is {margin!r} ({'a' if cost_col else 'no'} cost column)"
        )
    if progress is not None:
        progress("read items")
    lf = open_source(data)
    as_of_value = parse_as_of(as_of)
    prepared = prepare(lf, config, as_of_value, csv_path_of(data), keep=columns)
    assert prepared.rows is not None
    keys = [_ID] if config.category_col is None else [_ID, _CAT]
    checked = P.check_rows(
        prepared.rows, keys, {role: columns[f"{role}_col"] for role in _roles(columns)},
        config.on_error == "quarantine",
    )  # fmt: skip
    if checked.first_bad is not None and config.on_error == "raise":
        raise _row_error(lf, config, columns, *checked.first_bad, checked.rejected_by_reason)
    rows = checked.rows
    listed = _listed(rows, catalog, item_col)

    if customers is None:
        source = data if isinstance(data, (str, os.PathLike)) else lf
        customers = Scorer(config).run(source, as_of=as_of_value, progress=progress).customers
    if progress is not None:
        progress("items")
    statuses = _statuses(customers, config, keys, rows.schema)
    rows, listed_items = P.encode(rows, statuses, listed, keys)
    unscored = rows.filter(pl.col(P.SALE) & pl.col(P.CUST).is_null())
    if unscored.height:
        example = unscored.row(0, named=True)[_ID]
        raise DataError(
            f"customers= has no row for customer {example!r}, who bought items "
            f"({unscored.select(keys).n_unique():,} such customers); pass the score of the "
            "same data and as_of"
        )
    rows = rows.drop(*keys)
    sales = P.occasions(rows, listed_items.height, statuses.height)

    as_of_day = prepared.as_of_day if prepared.as_of_day is not None else 0
    windows = P.Windows(
        as_of_day, rules.lookback_days, rules.sell_through_days,
        rules.rising_recent_days, rules.rising_baseline_days,
    )  # fmt: skip
    repeat = (statuses.get_column(P.BUYER) == "repeat").fill_null(False).to_numpy()
    items = P.item_table(
        rows, sales, listed_items, repeat, windows, rules.volume,
        rules.rising_ratio, rules.rising_min_orders,
    )  # fmt: skip
    thresholds = rules.thresholds or _thresholds(items, rules, margin)
    if thresholds is None:  # nothing sold in the period: every item is unsold
        items = items.with_columns(pl.lit("edge").alias(P.CLASS))
    else:
        items = P.classify(
            items,
            volume=rules.volume,
            margin=margin,
            volume_high=thresholds.volume_high,
            volume_low=thresholds.volume_low,
            margin_high=thresholds.margin_high,
            margin_low=thresholds.margin_low,
            repeat_share=thresholds.repeat_share,
        )
    status_names = statuses.get_column(P.STATUS)
    present = set(status_names.drop_nulls().to_list())
    names = [*STATUSES, *sorted(present - set(STATUSES), key=str)]
    code_of = {name: index for index, name in enumerate(names)}
    mix = P.mix_table(
        rows,
        sales,
        items.get_column(P.CLASS).replace_strict(P.CLASS_INDEX, return_dtype=pl.Int64).to_numpy(),
        status_names.replace_strict(code_of, return_dtype=pl.Int64).to_numpy(),
        names,
    )
    output = items.select(
        pl.col(P.ITEM).alias(item_col),
        *(
            pl.col(name) if name == "units" else pl.col(name).cast(dtype)
            for name, dtype in P.ITEM_SCHEMA.items()
        ),
    )
    sold = int(output["sold_in_window"].sum())

    rejects = _rejects(prepared.rejects, checked.rejects, config.on_error)
    rejected = dict(prepared.rejected_by_reason)
    for reason, count in checked.rejected_by_reason.items():
        rejected[reason] = rejected.get(reason, 0) + count
    return ProductResult(
        items=output,
        classes=P.class_table(output),
        churned_mix=mix,
        sell_through_rate=sold / output.height if output.height else None,
        listed_items=output.height,
        sold_in_window=sold,
        thresholds=thresholds,
        rules=rules,
        as_of=(
            None if prepared.as_of_day is None
            else _EPOCH + dt.timedelta(days=prepared.as_of_day)
        ),
        rows_used=rows.height,
        rejected_by_reason=rejected,
        rejects=rejects,
    )  # fmt: skip


# -- helpers -------------------------------------------------------------------


def _columns(
    config: ScoreConfig,
    item_col: str,
    price_col: str | None,
    cost_col: str | None,
    quantity_col: str | None,
) -> dict[str, str]:
    """Option name -> column name of the product columns, checked."""
    columns = {"item_col": item_col}
    for option, name in (
        ("price_col", price_col), ("cost_col", cost_col), ("quantity_col", quantity_col),
    ):  # fmt: skip
        if name is not None:
            columns[option] = name
    taken = [config.customer_col, config.ts_col, config.amount_col]
    if config.category_col is not None:
        taken.append(config.category_col)
    for option, name in columns.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{option} must be a non-empty string, got {name!r}")
    names = taken + list(columns.values())
    if len(set(names)) != len(names):
        raise ConfigError(f"column names must differ, got {names}")
    return columns


def _roles(columns: Mapping[str, str]) -> list[str]:
    return [option.removesuffix("_col") for option in columns]


def _row_error(
    lf: pl.LazyFrame,
    config: ScoreConfig,
    columns: Mapping[str, str],
    row: int,
    reason: str,
    rejected: Mapping[str, int],
) -> DataError:
    column = columns[reason.rsplit("_", 1)[1] + "_col"]
    n_bad = sum(rejected.values())
    more = f" ({n_bad:,} bad rows in all)" if n_bad > 1 else ""
    names = [config.customer_col, config.ts_col, config.amount_col, *columns.values()]
    try:
        example: dict[str, Any] = lf.select(names).slice(row, 1).collect().row(0, named=True)
    except (Exception, pl.exceptions.PanicException):  # the message matters more
        example = {}
    return DataError(
        f"column {column!r}: {reason.replace('_', ' ')} at row {row}: {example}{more}; "
        "fix the input or pass on_error='quarantine' to set such rows aside "
        "(ProductResult.rejects)",
        column=column,
        reason=reason,
        row=row,
    )


def _listed(rows: pl.DataFrame, catalog: Any, item_col: str) -> pl.Series:
    """The items of the data and of the catalog, distinct."""
    items = rows.get_column(P.ITEM)
    if catalog is None:
        return items.unique()
    if isinstance(catalog, pl.DataFrame):
        if item_col not in catalog.columns:
            raise SchemaError(
                f"catalog has no column {item_col!r} (item_col); it has {catalog.columns}"
            )
        values = catalog.get_column(item_col)
    elif isinstance(catalog, pl.Series):
        values = catalog
    elif isinstance(catalog, Iterable) and not isinstance(catalog, (str, bytes)):
        values = pl.Series(item_col, list(catalog))
    else:
        raise SchemaError(
            f"catalog must be a sequence of item ids, a polars Series or a DataFrame with "
            f"{item_col!r}, got {type(catalog).__name__}"
        )
    if values.null_count():
        raise DataError(f"catalog: {values.null_count():,} null item ids", column=item_col)
    if isinstance(values.dtype, (pl.Categorical, pl.Enum)):
        values = values.cast(pl.String)
    try:
        values = values.cast(items.dtype, strict=True)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        raise SchemaError(
            f"catalog: cannot read its item ids ({values.dtype}) as the data's {item_col!r} "
            f"ids ({items.dtype})"
        ) from None
    return pl.concat([items, values.alias(P.ITEM)]).unique()


def _statuses(
    customers: Any, config: ScoreConfig, keys: list[str], schema: pl.Schema
) -> pl.DataFrame:
    """Score keys (cast to the rows' key types) -> status and buyer type."""
    if not isinstance(customers, pl.DataFrame):
        raise SchemaError(
            f"customers must be a polars DataFrame (a score), got {type(customers).__name__}"
        )
    names = [config.customer_col]
    if config.category_col is not None:
        names.append(config.category_col)
    wanted = [*names, "buyer_type", "status"]
    missing = [n for n in wanted if n not in customers.columns]
    if missing:
        raise SchemaError(
            f"customers has no column {missing}; it needs {wanted} (a churn_engine.score frame)"
        )
    try:
        frame = customers.select(
            *(pl.col(n).cast(schema[k]).alias(k) for n, k in zip(names, keys, strict=True)),
            pl.col("status").cast(pl.String).alias(P.STATUS),
            pl.col("buyer_type").cast(pl.String).alias(P.BUYER),
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise SchemaError(f"customers: its id columns do not match the data's: {exc}") from None
    for column, name in ((P.STATUS, "status"), (P.BUYER, "buyer_type")):
        if frame.get_column(column).null_count():
            raise DataError(f"customers has null values in {name!r}", column=name)
    duplicated = frame.select(keys).is_duplicated()
    if duplicated.any():
        example = frame.filter(duplicated).row(0, named=True)[_ID]
        raise DataError(f"customers has several rows for customer {example!r}")
    return frame


def _thresholds(items: pl.DataFrame, rules: ProductRules, margin: str) -> ProductThresholds | None:
    """Quantile cuts over the items with a sale in the period."""
    sold = items.filter(pl.col("orders") > 0)
    if sold.height == 0:
        return None
    volume = sold.get_column(rules.volume).cast(pl.Float64).to_numpy()
    margins = sold.get_column(margin).drop_nulls().to_numpy()
    shares = sold.get_column("repeat_buyer_share").to_numpy()
    has_margin = margins.size > 0
    return ProductThresholds(
        volume=rules.volume,
        margin=margin,
        volume_high=P.quantile_lower(volume, rules.volume_high_quantile),
        volume_low=P.quantile_lower(volume, rules.volume_low_quantile),
        margin_high=P.quantile_lower(margins, rules.margin_high_quantile) if has_margin else None,
        margin_low=P.quantile_lower(margins, rules.margin_low_quantile) if has_margin else None,
        repeat_share=P.quantile_lower(shares, rules.repeat_share_quantile),
    )


def _rejects(
    core: pl.DataFrame | None, product: pl.DataFrame | None, on_error: str
) -> pl.DataFrame | None:
    if on_error != "quarantine":
        return None
    parts = [pl.DataFrame(schema={"row": pl.Int64, "reason": pl.String})]
    if core is not None:
        parts.append(core.select(pl.col("row").cast(pl.Int64), "reason"))
    if product is not None:
        parts.append(product)
    return pl.concat(parts).sort("row")


# -- summary -------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"


def _percent(value: float | None) -> str:
    return "    -  " if value is None or np.isnan(value) else f"{100 * value:5.1f} %"


def _format(result: ProductResult) -> str:
    rules, t = result.rules, result.thresholds
    lines = [f"products as of {result.as_of.isoformat() if result.as_of else '-'}"]
    lines.append(f"{'items listed':<34}{result.listed_items:>10,}")
    lines.append(
        f"{f'  sold in the last {rules.sell_through_days} days':<34}"
        f"{result.sold_in_window:>10,}  {_percent(result.sell_through_rate)} (sell-through rate)"
    )
    if t is not None:
        lines.append("thresholds (quantiles over the items sold in the period)")
        lines.append(
            f"  {t.volume:<18} high >= {_number(t.volume_high)} (q{rules.volume_high_quantile:g})"
            f", low <= {_number(t.volume_low)} (q{rules.volume_low_quantile:g})"
        )
        lines.append(
            f"  {t.margin:<18} high >= {_number(t.margin_high)} "
            f"(q{rules.margin_high_quantile:g}), low <= {_number(t.margin_low)} "
            f"(q{rules.margin_low_quantile:g})"
        )
        lines.append(
            f"  {'repeat share':<18} profit needs >= {_number(t.repeat_share)} "
            f"(q{rules.repeat_share_quantile:g})"
        )
    lines.append(f"{'class':<12}{'items':>10}{'share':>9}{'revenue':>18}{'share':>9}")
    for row in result.classes.iter_rows(named=True):
        lines.append(
            f"  {row['class']:<10}{row['items']:>10,}{_percent(row['item_share']):>9}"
            f"{row['revenue']:>18,.2f}{_percent(row['revenue_share']):>9}"
        )
    lines.append("what each status bought (customers who bought the class; their spend)")
    lines.append(f"{'status':<10}{'class':<11}{'customers':>11}{'share':>9}{'revenue':>18}"
                 f"{'share':>9}")  # fmt: skip
    for row in result.churned_mix.iter_rows(named=True):
        lines.append(
            f"  {row['status']:<8}{row['class']:<11}{row['customers']:>11,}"
            f"{_percent(row['customer_share']):>9}{row['revenue']:>18,.2f}"
            f"{_percent(row['revenue_share']):>9}"
        )
    if result.rejected_by_reason:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in result.rejected_by_reason.items())
        lines.append(f"rows rejected: {reasons}")
    return "\n".join(lines)
