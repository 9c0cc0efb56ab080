"""The churn rate over time: :func:`churn_rate` (docs/churn_rate.md).

For every day ``t`` of a window, as of the end of ``t``: the customers who
had bought on or before ``t``, and those of them whose last purchase is at
least ``horizon_days`` old — exactly what :func:`churn_engine.score` with
``as_of=t`` counts and marks ``no_purchase_{h}d``. The occasions come from
the scoring pipeline (:func:`_occasions.collect_occasions`), then one
compiled sweep (``_churn_rate.sweep``) writes difference arrays over the
window; no query per date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl

from . import _churn_rate
from ._occasions import Occasions, collect_occasions
from ._prepare import Prepared
from .config import ScoreConfig
from .errors import ConfigError

__all__ = ["FREQS", "OPTIONS", "ChurnRateRun", "churn_rate", "run_churn_rate"]

Freq = Literal["D", "W", "M"]
#: "D" one row per day, "W" per week (Monday..Sunday), "M" per calendar month
FREQS: tuple[str, ...] = ("D", "W", "M")
#: ScoreConfig options that change the churn rate (the others only change scores)
OPTIONS: tuple[str, ...] = (
    "customer_col", "ts_col", "amount_col", "category_col", "category_horizon_days",
    "tz", "ts_unit", "on_error", "threads",
)  # fmt: skip
#: days x series cells of the five daily arrays (8 bytes each: at most ~670 MB)
MAX_CELLS = 1 << 24
_EPOCH = dt.date(1970, 1, 1)
_STOCKS = ("customers", "churned")
_FLOWS = ("new_customers", "newly_churned", "returned")


@dataclasses.dataclass
class ChurnRateRun:
    """A churn-rate table with what the run read (for the CLI's summary)."""

    table: pl.DataFrame
    prepared: Prepared
    start: dt.date | None
    end: dt.date | None
    #: the horizon of each series (one per category with ``category_col``)
    horizons: list[int]


def churn_rate(
    data: Any,
    *,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    horizon_days: int = 365,
    freq: Freq = "D",
    **options: Any,
) -> pl.DataFrame:
    """The share of customers churned on every day of a window.

    As of the end of each day ``t``, ``customers`` counts those with a
    purchase occasion on or before ``t`` and ``churned`` those of them whose
    last occasion on or before ``t`` is at least ``horizon_days`` before ``t``
    (``recency_days >= horizon_days``, reason ``no_purchase_{h}d`` of
    :func:`score` with ``as_of=t``). Customers whose rows up to ``t`` are all
    refunds are not counted. Computed in one pass over every customer's
    occasions, whatever the number of days.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The transaction log, validated as by :func:`score`.
    start : date or ISO date string, optional
        First day of the window. Default: the first day of the data plus
        ``horizon_days`` (before it every rate is 0 by construction); the
        first day of the data when the log covers less than one horizon.
    end : date or ISO date string, optional
        Last day of the window (rows after it are not read into the curve).
        Default: the last day of the data.
    horizon_days : int
        Days without a purchase after which a customer counts as churned.
    freq : {"D", "W", "M"}
        One row per day, per week (Monday to Sunday) or per calendar month.
        A week or month row is dated at its last day in the window and holds
        the stocks of that day (point in time, like a score ``as_of`` period
        end) and the flows summed over its days in the window.
    **options
        ``customer_col``, ``ts_col``, ``amount_col``, ``tz``, ``ts_unit``,
        ``on_error``, ``threads`` as for :class:`ScoreConfig`; with
        ``category_col`` one curve per category (a customer counts in each
        category they bought in), with ``category_horizon_days`` overriding
        the horizon per category.

    Returns
    -------
    polars.DataFrame
        Columns ``date`` (Date), ``customers``, ``churned`` (Int64),
        ``churn_rate`` (Float64, ``churned / customers``, null when there is
        no customer yet), ``active`` (``customers - churned``), and the flows
        ``new_customers`` (first purchase that day), ``newly_churned``
        (reached the horizon that day) and ``returned`` (churned the day
        before, bought that day); ``churned[t] = churned[t-1] +
        newly_churned[t] - returned[t]``. With ``category_col`` the category
        column comes first and rows are per category, then date. Empty when
        the log has no accepted rows up to ``end``, unless both ``start``
        and ``end`` are given (then every day has 0 customers).

    Raises
    ------
    ConfigError
        A bad option: ``start`` after ``end``, ``horizon_days < 1``, an
        unknown ``freq``, an option that does not affect the churn rate.
    SchemaError, DataError
        Bad input, as for :func:`score`.

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({"customer_id": [1, 2, 2],
    ...                     "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 4)],
    ...                     "amount": [10.0, 20.0, 5.0]})
    >>> rates = churn_engine.churn_rate(log, horizon_days=2, start="2024-01-01",
    ...                                 end="2024-01-05")
    >>> rates["churned"].to_list(), rates["churn_rate"].to_list()
    ([0, 0, 1, 1, 1], [0.0, 0.0, 0.5, 0.5, 0.5])
    """
    return run_churn_rate(
        data, start=start, end=end, horizon_days=horizon_days, freq=freq, **options
    ).table


def run_churn_rate(
    data: Any,
    *,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    horizon_days: int = 365,
    freq: str = "D",
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> ChurnRateRun:
    """:func:`churn_rate`, returning the run's :class:`ChurnRateRun`.

    ``progress`` is called with the name of each stage as it starts.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(
            f"churn_rate: {', '.join(map(repr, unknown))} does not affect the churn rate "
            f"(options: {', '.join(OPTIONS)})"
        )
    if not isinstance(freq, str) or freq not in FREQS:
        raise ConfigError(f"freq must be 'D' (day), 'W' (week) or 'M' (month), got {freq!r}")
    config = ScoreConfig(horizon_days=horizon_days, **options)
    start_day = _day_number("start", start)
    end_day = _day_number("end", end)
    if start_day is not None and end_day is not None and start_day > end_day:
        raise ConfigError(f"start ({start}) is after end ({end})")

    if progress is not None:
        progress("read")
    occasions = collect_occasions(data, config, None if end_day is None else _date(end_day))
    prepared = occasions.prepared
    categories = _categories(prepared, config)
    horizons = [min(config.horizon_for(c), _churn_rate.MAX_HORIZON) for c in categories]

    if end_day is None:
        end_day = prepared.as_of_day  # the last day with an accepted row
    if start_day is None and end_day is not None:
        first_day = _first_row_day(prepared)
        if first_day is not None:
            # before one horizon has passed nobody can be churned yet
            warmed = first_day + min(horizons)
            start_day = warmed if warmed <= end_day else first_day
    if start_day is None or end_day is None:  # no rows and no window given
        table = _empty_table(prepared, config)
        return ChurnRateRun(table, prepared, None, None, horizons)
    if start_day > end_day:
        raise ConfigError(
            f"start ({_date(start_day)}) is after end ({_date(end_day)}), the last day of the data"
        )

    n_days = end_day - start_day + 1
    if n_days * len(categories) > MAX_CELLS:
        raise ConfigError(
            f"the window {_date(start_day)}..{_date(end_day)} has {n_days:,} days x "
            f"{len(categories):,} series, more than {MAX_CELLS:,}; narrow start/end"
        )
    if progress is not None:
        progress("sweep")
    counts = _sweep(occasions, horizons, start_day, n_days, config.category_col is not None)
    table = _table(counts, start_day, n_days, freq, prepared, config, categories)
    return ChurnRateRun(table, prepared, _date(start_day), _date(end_day), horizons)


# -- helpers -----------------------------------------------------------------


def _day_number(name: str, value: Any) -> int | None:
    """Days since 1970-01-01 of a date or an ISO date string."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise ConfigError(
            f"{name} is a day, got the datetime {value!r}; pass its date "
            "(every day is taken as of its end)"
        )
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{name}: cannot parse {value!r}; use YYYY-MM-DD") from None
    if not isinstance(value, dt.date):
        raise ConfigError(f"{name} must be a date or a YYYY-MM-DD string, got {value!r}")
    return (value - _EPOCH).days


def _date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=day)


def _categories(prepared: Prepared, config: ScoreConfig) -> list[Any]:
    if config.category_col is None:
        return [None]
    if prepared.categories is None:
        return []
    return prepared.categories.to_list()


def _first_row_day(prepared: Prepared) -> int | None:
    days = [int(segment.min()) for segment in prepared.day_segments if segment.size]
    return min(days) if days else None


def _sweep(
    occasions: Occasions, horizons: list[int], start_day: int, n_days: int, by_category: bool
) -> dict[str, np.ndarray]:
    if not horizons:  # category_col with no rows: no series
        return {name: np.zeros((0, n_days), np.int64) for name in (*_STOCKS, *_FLOWS)}
    series = None
    if by_category:
        series = np.ascontiguousarray(occasions.groups["cat"], dtype=np.int32)
    return _churn_rate.sweep(
        np.ascontiguousarray(occasions.offsets, dtype=np.int64),
        np.ascontiguousarray(occasions.day, dtype=np.int32),
        series,
        np.array(horizons, dtype=np.int64),
        start_day,
        n_days,
    )


def _period_bounds(start_day: int, n_days: int, freq: str) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) index of every period of the window, ascending."""
    days = np.arange(start_day, start_day + n_days, dtype=np.int64)
    if freq == "D":
        return np.arange(n_days), np.arange(n_days)
    if freq == "W":
        # 1970-01-01 was a Thursday: day + 3 counts from a Monday
        key = np.floor_divide(days + 3, 7)
    else:
        key = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.diff(key) != 0)
    first = np.concatenate(([0], last + 1))
    return first, np.concatenate((last, [n_days - 1]))


def _table(
    counts: dict[str, np.ndarray],
    start_day: int,
    n_days: int,
    freq: str,
    prepared: Prepared,
    config: ScoreConfig,
    categories: list[Any],
) -> pl.DataFrame:
    first, last = _period_bounds(start_day, n_days, freq)
    n_series = len(categories)
    n_periods = len(last)
    columns: dict[str, pl.Series] = {}
    if config.category_col is not None:
        columns[config.category_col] = _category_series(prepared, config).gather(
            np.repeat(np.arange(n_series), n_periods)
        )
    columns["date"] = pl.Series(
        "date", np.tile(start_day + last, n_series).astype(np.int32), dtype=pl.Int32
    ).cast(pl.Date)
    customers = counts["customers"][:, last].ravel()
    churned = counts["churned"][:, last].ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(customers > 0, churned / np.maximum(customers, 1), np.nan)
    columns["customers"] = pl.Series("customers", customers, dtype=pl.Int64)
    columns["churned"] = pl.Series("churned", churned, dtype=pl.Int64)
    columns["churn_rate"] = pl.Series("churn_rate", rate, dtype=pl.Float64, nan_to_null=True)
    columns["active"] = pl.Series("active", customers - churned, dtype=pl.Int64)
    for name in _FLOWS:
        daily = counts[name]
        summed = np.add.reduceat(daily, first, axis=1) if n_days else daily
        columns[name] = pl.Series(name, summed.ravel(), dtype=pl.Int64)
    return pl.DataFrame(columns)


def _category_series(prepared: Prepared, config: ScoreConfig) -> pl.Series:
    assert config.category_col is not None
    if prepared.categories is None:
        return pl.Series(config.category_col, [], dtype=prepared.cat_dtype or pl.String())
    dtype = prepared.cat_dtype or prepared.categories.dtype
    return prepared.categories.cast(dtype).alias(config.category_col)


def _empty_table(prepared: Prepared, config: ScoreConfig) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {}
    if config.category_col is not None:
        schema[config.category_col] = _category_series(prepared, config).dtype
    schema["date"] = pl.Date()
    for name in ("customers", "churned"):
        schema[name] = pl.Int64()
    schema["churn_rate"] = pl.Float64()
    for name in ("active", *_FLOWS):
        schema[name] = pl.Int64()
    return pl.DataFrame(schema=schema)
