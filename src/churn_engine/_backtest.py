"""Backtest of the churn status: score at ``as_of``, then see who came back.

:func:`backtest` scores a log with the rows up to ``as_of`` only and labels
every scored customer by whether they made a purchase occasion in the
following ``horizon_days`` whole days; it tabulates the return rate per
status, buyer type and ``cycles_since_last`` bucket, and measures
``status == "churned"`` as a prediction of "no return" (precision, recall,
F1). :func:`calibrate` sweeps the churn threshold in cycles and suggests
``churn_cycles`` / ``at_risk_cycles`` that reach a target precision.

How the labels are computed (fast and exact): the log is read twice through
the normal input pipeline. Once by :class:`~churn_engine.Scorer` with
``as_of`` (the scores), once with every accepted row; from the second read
the accepted rows' day numbers, amounts and customer keys (already arrays)
are filtered with NumPy to the non-refund rows whose day lies in
``(as_of_day, as_of_day + horizon_days]``, and Polars takes the first such
day per customer. The same read gives the last day of the data, so a
horizon that runs past it can be refused. Definitions: docs/backtest.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from ._io import csv_path_of, open_source
from ._prepare import Prepared, _local_naive, parse_as_of, prepare
from ._stats import ScoreStats
from .api import Scorer, _customer_ids
from .config import BUYER_TYPES, STATUSES, ScoreConfig
from .errors import ConfigError, DataError

__all__ = [
    "CYCLE_BUCKETS",
    "NO_CYCLE",
    "BacktestResult",
    "Calibration",
    "backtest",
    "calibrate",
]

#: ``cycles_since_last`` buckets, half-open ``[lo, hi)``: (label, lo, hi).
CYCLE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0–0.5", 0.0, 0.5),
    ("0.5–1", 0.5, 1.0),
    ("1–1.5", 1.0, 1.5),
    ("1.5–2", 1.5, 2.0),
    ("2–3", 2.0, 3.0),
    ("≥3", 3.0, math.inf),
)
#: Bucket label of customers whose ``cycles_since_last`` is null (no prior).
NO_CYCLE = "no cycle"

#: Default thresholds swept by :func:`calibrate`: 0.05, 0.10, ..., 10.0 cycles
#: (k / 20 is the double nearest to the decimal, as if typed in).
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(k / 20 for k in range(1, 201))

_EPOCH = dt.date(1970, 1, 1)
_DAY = "__day"
_KEY = "__key"
_CAT = "__cat"
_RATE_COLUMNS = ("customers", "returned", "return_rate", "no_return_rate")
Progress = Callable[[str], None]


# -- result ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BacktestResult:
    """The outcome of :func:`backtest`.

    Attributes
    ----------
    customers : polars.DataFrame
        The scores at ``as_of`` (DESIGN.md section 4 columns) plus
        ``returned`` (Boolean: a purchase occasion in the horizon) and
        ``first_return`` (Date of the first such occasion, else null).
    by_status, by_buyer_type, by_buyer_type_status : polars.DataFrame
        Per group: ``customers``, ``returned``, ``return_rate`` and
        ``no_return_rate`` (null for an empty group). Every status and
        buyer type has a row, in the order of ``STATUSES``/``BUYER_TYPES``.
    by_cycles, by_buyer_type_cycles : polars.DataFrame
        The same per ``cycles_since_last`` bucket (column
        ``cycles_since_last``: the labels of :data:`CYCLE_BUCKETS`, then
        :data:`NO_CYCLE`), for all customers and per buyer type.
    tp, fp, fn, tn : int
        ``status == "churned"`` as a prediction of "no return": true
        positives (churned, did not return), false positives (churned,
        returned), false negatives (not churned, did not return), true
        negatives (not churned, returned).
    precision, recall, f1 : float or None
        ``tp/(tp+fp)``, ``tp/(tp+fn)`` and their harmonic mean; None when
        the denominator is 0.
    as_of : date or datetime
        As given (parsed); ``as_of_day`` is its day in ``config.tz``.
    horizon_days : int
        Length of the label window in whole days.
    horizon_end : date
        Last day of the window: ``as_of_day + horizon_days``.
    data_end : date
        Last day with an accepted row (refunds included) in the whole log.
    partial_horizon : bool
        True when ``horizon_end`` is after ``data_end`` (only with
        ``allow_partial_horizon=True``): the labels miss later returns.
    new_customers : int
        Customers (customer x category rows) not scored at ``as_of`` whose
        first purchase occasion is in the window; not part of the tables.
    rows_later_on_as_of_day : int
        With a datetime ``as_of``: accepted rows of the ``as_of`` day after
        ``as_of``, which are neither scored nor in the window.
    config : ScoreConfig
        The scoring options used.
    stats : ScoreStats
        Row counts of the scoring run at ``as_of``.
    rejects : polars.DataFrame or None
        Rejected rows with ``on_error="quarantine"``.
    """

    customers: pl.DataFrame
    by_status: pl.DataFrame
    by_buyer_type: pl.DataFrame
    by_buyer_type_status: pl.DataFrame
    by_cycles: pl.DataFrame
    by_buyer_type_cycles: pl.DataFrame
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    as_of: dt.date | dt.datetime
    as_of_day: dt.date
    horizon_days: int
    horizon_end: dt.date
    data_end: dt.date
    partial_horizon: bool
    new_customers: int
    rows_later_on_as_of_day: int
    config: ScoreConfig
    stats: ScoreStats
    rejects: pl.DataFrame | None = None

    @property
    def n_customers(self) -> int:
        """Scored customers (customer x category rows)."""
        return self.customers.height

    @property
    def n_returned(self) -> int:
        """Scored customers who came back in the window."""
        return self.tn + self.fp

    @property
    def return_rate(self) -> float | None:
        return _rate(self.n_returned, self.n_customers)

    def summary(self) -> str:
        """The tables as readable text (what ``churn-engine backtest`` prints)."""
        return _format_backtest(self)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-customer frame, JSON-ready (dates as ISO text)."""
        return {
            "as_of": self.as_of.isoformat(),
            "as_of_day": self.as_of_day.isoformat(),
            "horizon_days": self.horizon_days,
            "horizon_end": self.horizon_end.isoformat(),
            "data_end": self.data_end.isoformat(),
            "partial_horizon": self.partial_horizon,
            "customers": self.n_customers,
            "returned": self.n_returned,
            "return_rate": self.return_rate,
            "new_customers": self.new_customers,
            "rows_later_on_as_of_day": self.rows_later_on_as_of_day,
            "churned_predicts_no_return": {
                "tp": self.tp,
                "fp": self.fp,
                "fn": self.fn,
                "tn": self.tn,
                "precision": self.precision,
                "recall": self.recall,
                "f1": self.f1,
            },
            "by_status": self.by_status.to_dicts(),
            "by_buyer_type": self.by_buyer_type.to_dicts(),
            "by_buyer_type_status": self.by_buyer_type_status.to_dicts(),
            "by_cycles": self.by_cycles.to_dicts(),
            "by_buyer_type_cycles": self.by_buyer_type_cycles.to_dicts(),
            "rules": {
                "at_risk_cycles": self.config.at_risk_cycles,
                "churn_cycles": self.config.churn_cycles,
                "horizon_days": self.config.horizon_days,
            },
        }


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    churn_cycles : float or None
        Smallest swept threshold ``c`` at which the repeat buyers with
        ``cycles_since_last >= c`` (at least ``min_customers`` of them)
        did not come back with precision ``>= target_precision``; None
        when no threshold reaches it.
    at_risk_cycles : float or None
        The same for ``at_risk_precision`` (so never above ``churn_cycles``).
    churn, at_risk : dict or None
        At the suggested threshold: ``customers`` flagged, ``no_return``
        among them, ``precision``, ``recall`` and ``coverage`` (share of
        the repeat buyers flagged); None when not reached.
    reached : bool
        Whether ``churn_cycles`` was found.
    message : str
        One sentence saying what was found, or why not.
    curve : polars.DataFrame
        Per swept ``threshold``: ``customers``, ``no_return``,
        ``precision``, ``recall``, ``coverage``.
    repeat_customers : int
        Repeat buyers in the sweep; ``no_return_rate`` is their base rate.
    """

    target_precision: float
    at_risk_precision: float
    min_customers: int
    churn_cycles: float | None
    at_risk_cycles: float | None
    churn: dict[str, Any] | None
    at_risk: dict[str, Any] | None
    reached: bool
    message: str
    curve: pl.DataFrame
    repeat_customers: int
    no_return_rate: float | None

    def options(self) -> dict[str, float]:
        """The suggested thresholds as :class:`ScoreConfig` keywords (the ones found)."""
        found = {"at_risk_cycles": self.at_risk_cycles, "churn_cycles": self.churn_cycles}
        return {k: v for k, v in found.items() if v is not None}

    def summary(self) -> str:
        return _format_calibration(self)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_precision": self.target_precision,
            "at_risk_precision": self.at_risk_precision,
            "min_customers": self.min_customers,
            "churn_cycles": self.churn_cycles,
            "at_risk_cycles": self.at_risk_cycles,
            "churn": self.churn,
            "at_risk": self.at_risk,
            "reached": self.reached,
            "message": self.message,
            "repeat_customers": self.repeat_customers,
            "no_return_rate": self.no_return_rate,
            "curve": self.curve.to_dicts(),
        }


# -- backtest ----------------------------------------------------------------


def backtest(
    data: Any,
    *,
    as_of: dt.date | dt.datetime | str,
    horizon_days: int = 365,
    allow_partial_horizon: bool = False,
    config: ScoreConfig | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> BacktestResult:
    """Score ``data`` as of ``as_of`` and check the status against who came back.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The whole transaction log, including the rows after ``as_of``.
    as_of : date, datetime or ISO string
        Score with the rows up to here (as :func:`churn_engine.score`).
    horizon_days : int
        The label window: a customer *returned* when they have a purchase
        occasion (a non-refund row) on a day in
        ``(as_of_day, as_of_day + horizon_days]`` (whole days in ``tz``).
        Not the 365-day churn rule: that one is ``rule_horizon_days``.
    allow_partial_horizon : bool
        Accept a window that runs past the last day of the data (the labels
        then miss returns after it); refused by default.
    config : ScoreConfig, optional
        Scoring options; alternatively pass them as keywords.
    progress : callable, optional
        Called with the name of each stage as it starts.
    **options
        :class:`ScoreConfig` fields, except that the churn rule's
        ``horizon_days`` is spelled ``rule_horizon_days`` here.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ConfigError
        ``as_of`` missing, on or after the last day of the data, or before
        any purchase; a window past the data's end without
        ``allow_partial_horizon``; bad options.
    DataError
        No accepted rows, or bad rows (as :func:`churn_engine.score`).

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({"customer_id": [1, 1, 1, 2, 2],
    ...     "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 11), dt.date(2024, 2, 20),
    ...            dt.date(2024, 1, 5), dt.date(2024, 1, 15)],
    ...     "amount": [10.0, 10.0, 10.0, 5.0, 5.0]})
    >>> result = churn_engine.backtest(log, as_of="2024-02-01", horizon_days=19)
    >>> result.customers.select("customer_id", "status", "returned").rows()
    [(1, 'churned', True), (2, 'at_risk', False)]
    """
    config = _config_of(config, options)
    horizon_days = _check_horizon(horizon_days)
    if not isinstance(allow_partial_horizon, bool):
        raise ConfigError(
            f"allow_partial_horizon must be True or False, got {allow_partial_horizon!r}"
        )
    if as_of is None:
        raise ConfigError("backtest needs as_of: the point to score at (a date or datetime)")
    as_of_value = parse_as_of(as_of)
    assert as_of_value is not None

    # paths are scanned by each read; anything else is wrapped (and one-shot
    # Arrow streams read) once here, then shared by both reads
    source = data if isinstance(data, (str, os.PathLike)) else open_source(data)

    if progress is not None:
        progress("read all rows")
    prepared = prepare(open_source(source), config, None, csv_path_of(source))
    if prepared.as_of_day is None:
        raise DataError("no rows to backtest: the input has no accepted rows", reason="empty")
    data_end = prepared.as_of_day
    as_of_day = _day_of(as_of_value, config.tz)
    horizon_end = as_of_day + horizon_days
    _check_window(as_of_day, data_end, horizon_days, allow_partial_horizon)

    if progress is not None:
        progress("labels")
    window = _window_occasions(prepared, config, as_of_day, horizon_end)
    after_as_of_day = _rows_after_day(prepared, as_of_day)
    first_day = min(int(days.min()) for days in prepared.day_segments if len(days))
    del prepared

    scored = Scorer(config).run(source, as_of=as_of_value, progress=progress)
    stats = scored.stats
    assert stats.as_of_day == _date(as_of_day), (stats.as_of_day, as_of_day)
    if scored.customers.height == 0:
        raise ConfigError(
            f"as_of {_show(as_of_value)}: no customer has a purchase on or before it "
            f"(the data starts {_date(first_day)}); choose a later as_of"
        )

    if progress is not None:
        progress("tables")
    keys = _keys(config)
    customers = scored.customers.join(
        window, on=keys, how="left", maintain_order="left"
    ).with_columns(pl.col("first_return").is_not_null().alias("returned"))
    customers = customers.select(*scored.customers.columns, "returned", "first_return")
    new_customers = window.join(scored.customers.select(keys), on=keys, how="anti").height
    # one pass over the customers; every table is a sum over these <= 42 cells
    cells = customers.group_by(
        "buyer_type", "status", cycle_bucket(pl.col("cycles_since_last")).alias("cycles_since_last")
    ).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("returned").sum().cast(pl.Int64).alias("returned"),
    )
    return BacktestResult(
        customers=customers,
        by_status=_rates(cells, ["status"]),
        by_buyer_type=_rates(cells, ["buyer_type"]),
        by_buyer_type_status=_rates(cells, ["buyer_type", "status"]),
        by_cycles=_rates(cells, ["cycles_since_last"]),
        by_buyer_type_cycles=_rates(cells, ["buyer_type", "cycles_since_last"]),
        **_confusion(cells),
        as_of=as_of_value,
        as_of_day=_date(as_of_day),
        horizon_days=horizon_days,
        horizon_end=_date(horizon_end),
        data_end=_date(data_end),
        partial_horizon=horizon_end > data_end,
        new_customers=new_customers,
        rows_later_on_as_of_day=stats.rows_after_as_of - after_as_of_day,
        config=config,
        stats=stats,
        rejects=scored.rejects,
    )


def _config_of(config: ScoreConfig | None, options: dict[str, Any]) -> ScoreConfig:
    if config is not None and options:
        raise TypeError("pass either a ScoreConfig or keyword options, not both")
    if config is not None:
        if not isinstance(config, ScoreConfig):
            raise TypeError(f"config must be a ScoreConfig, got {type(config).__name__}")
        return config
    if "rule_horizon_days" in options:
        options = dict(options)
        options["horizon_days"] = options.pop("rule_horizon_days")
    try:
        return ScoreConfig(**options)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("horizon_days", "rule_horizon_days")) from None


def _check_horizon(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"horizon_days must be a positive whole number of days, got {value!r}")
    if value > 3_000_000:  # beyond any date: as_of_day + horizon would leave year 9999
        raise ConfigError(f"horizon_days is too large: {value}")
    return int(value)


def _day_of(as_of: dt.date | dt.datetime, tz: str) -> int:
    """The day number of ``as_of`` in ``tz``, as the scoring run cuts it."""
    day = _local_naive(as_of, tz).date() if isinstance(as_of, dt.datetime) else as_of
    return (day - _EPOCH).days


def _date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


def _show(as_of: dt.date | dt.datetime) -> str:
    return as_of.isoformat(sep=" ") if isinstance(as_of, dt.datetime) else as_of.isoformat()


def _check_window(as_of_day: int, data_end: int, horizon: int, allow_partial: bool) -> None:
    if as_of_day >= data_end:
        raise ConfigError(
            f"as_of day {_date(as_of_day)} is not before the last day of the data "
            f"({_date(data_end)}): there is nothing after it to label; choose an earlier as_of"
        )
    end = as_of_day + horizon
    if end > data_end and not allow_partial:
        covered = data_end - as_of_day
        raise ConfigError(
            f"the horizon runs to {_date(end)} but the data ends {_date(data_end)} "
            f"({end - data_end} days short): customers who come back after the data ends "
            f"would be labelled as gone. Use horizon_days <= {covered}, an as_of on or before "
            f"{_date(data_end - horizon)}, or allow_partial_horizon=True to accept that"
        )


def _keys(config: ScoreConfig) -> list[str]:
    if config.category_col is None:
        return [config.customer_col]
    return [config.customer_col, config.category_col]


def _window_occasions(
    prepared: Prepared, config: ScoreConfig, as_of_day: int, horizon_end: int
) -> pl.DataFrame:
    """Customers with a purchase occasion in ``(as_of_day, horizon_end]`` and
    the first such day (``first_return``), keyed like the scores."""
    keys: list[np.ndarray] = []
    days: list[np.ndarray] = []
    cats: list[np.ndarray] = []
    with_cat = prepared.cat_segments is not None
    for index, (ids, day, bits) in enumerate(
        zip(prepared.id_segments, prepared.day_segments, prepared.amount_bits, strict=True)
    ):
        # a refund is an amount < 0 (-0.0 is a purchase of 0, so compare floats as floats)
        refund = bits < 0 if prepared.integer_amounts else bits.view(np.float64) < 0
        hit = (day > as_of_day) & (day <= horizon_end) & ~refund
        keys.append(ids[hit])
        days.append(day[hit])
        if with_cat:
            assert prepared.cat_segments is not None
            cats.append(prepared.cat_segments[index][hit])
    frame = pl.DataFrame(
        {
            _KEY: np.concatenate(keys) if keys else np.empty(0, np.int64),
            _DAY: np.concatenate(days) if days else np.empty(0, np.int32),
            **({_CAT: np.concatenate(cats) if cats else np.empty(0, np.int32)}
               if with_cat else {}),
        }
    )  # fmt: skip
    group = [_KEY, _CAT] if with_cat else [_KEY]
    first = frame.group_by(group).agg(pl.col(_DAY).min())
    key_values = first.get_column(_KEY).to_numpy()
    if prepared.id_rank_of_code is not None:
        key_values = prepared.id_rank_of_code[key_values]
    columns: dict[str, pl.Series] = {
        config.customer_col: _customer_ids(
            prepared, key_values, config.customer_col, config.threads or 0
        )
    }
    if with_cat:
        assert config.category_col is not None and prepared.categories is not None
        assert prepared.cat_dtype is not None
        columns[config.category_col] = prepared.categories.gather(first.get_column(_CAT)).cast(
            prepared.cat_dtype
        )
    columns["first_return"] = first.get_column(_DAY).cast(pl.Int32).cast(pl.Date)
    return pl.DataFrame(columns)


def _rows_after_day(prepared: Prepared, day: int) -> int:
    return sum(int(np.count_nonzero(days > day)) for days in prepared.day_segments)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _confusion(cells: pl.DataFrame) -> dict[str, Any]:
    """``status == churned`` predicting "no return" (the positive class)."""
    churned = cells.get_column("status") == "churned"
    customers = cells.get_column("customers")
    returned = cells.get_column("returned")
    tp = int((customers - returned).filter(churned).sum())
    fp = int(returned.filter(churned).sum())
    fn = int((customers - returned).filter(~churned).sum())
    tn = int(returned.filter(~churned).sum())
    precision = _rate(tp, tp + fp)
    recall = _rate(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": precision, "recall": recall, "f1": f1}  # fmt: skip


def cycle_bucket(cycles: pl.Expr) -> pl.Expr:
    """The :data:`CYCLE_BUCKETS` label of ``cycles`` (half-open), :data:`NO_CYCLE` for null."""
    index = pl.lit(0, dtype=pl.Int64)
    for _, low, _ in CYCLE_BUCKETS[1:]:
        index = index + (cycles >= low).cast(pl.Int64)
    labels = pl.Series([label for label, _, _ in CYCLE_BUCKETS], dtype=pl.String)
    return (
        pl.when(cycles.is_null())
        .then(pl.lit(NO_CYCLE))
        .otherwise(index.replace_strict(list(range(len(labels))), labels.to_list()))
    )


_LEVELS: dict[str, list[str]] = {
    "status": list(STATUSES),
    "buyer_type": list(BUYER_TYPES),
    "cycles_since_last": [label for label, _, _ in CYCLE_BUCKETS] + [NO_CYCLE],
}


def _rates(cells: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Customers and returns per group, one row for every level (zeros included)."""
    counts = cells.group_by(by).agg(pl.col("customers", "returned").sum())
    grid = pl.DataFrame({by[0]: _LEVELS[by[0]]})
    for column in by[1:]:
        grid = grid.join(pl.DataFrame({column: _LEVELS[column]}), how="cross")
    table = grid.join(counts, on=by, how="left", maintain_order="left").with_columns(
        pl.col("customers", "returned").fill_null(0)
    )
    rate = pl.when(pl.col("customers") > 0).then(pl.col("returned") / pl.col("customers"))
    return table.with_columns(
        rate.alias("return_rate"),
        (1.0 - rate).alias("no_return_rate"),
    ).select(*by, *_RATE_COLUMNS)


# -- calibrate ---------------------------------------------------------------


def calibrate(
    source: Any,
    *,
    target_precision: float = 0.9,
    at_risk_precision: float = 0.75,
    min_customers: int = 100,
    thresholds: Sequence[float] | None = None,
    **backtest_options: Any,
) -> Calibration:
    """Suggest ``churn_cycles`` and ``at_risk_cycles`` from a backtest.

    Among the repeat buyers (the cycle rules apply to them only), a threshold
    ``c`` flags those with ``cycles_since_last >= c``; its precision is the
    share of them that did not come back in the horizon. All thresholds are
    evaluated at once on the sorted values.

    Parameters
    ----------
    source : BacktestResult, or a log
        A backtest, or a log to backtest (then pass ``as_of`` and the other
        :func:`backtest` keywords in ``backtest_options``).
    target_precision : float
        ``churn_cycles`` is the smallest threshold whose flagged customers
        did not return with at least this precision (so the largest recall).
    at_risk_precision : float
        The same for ``at_risk_cycles`` (at most ``target_precision``).
    min_customers : int
        A threshold must flag at least this many customers to count (a
        handful of customers with a high precision prove nothing).
    thresholds : sequence of float, optional
        Thresholds to sweep (default 0.05, 0.10, ..., 10.0).

    Returns
    -------
    Calibration
        The suggestions (None when a target is not reached), what they
        reach, and the whole precision/recall curve.
    """
    if isinstance(source, BacktestResult):
        if backtest_options:
            raise TypeError(
                "calibrate got a BacktestResult and backtest options "
                f"({', '.join(sorted(backtest_options))}); pass one or the other"
            )
        result = source
    else:
        result = backtest(source, **backtest_options)
    target = _check_precision("target_precision", target_precision)
    at_risk_target = _check_precision("at_risk_precision", at_risk_precision)
    if at_risk_target > target:
        raise ConfigError(
            f"at_risk_precision ({at_risk_target}) must not exceed target_precision ({target})"
        )
    if isinstance(min_customers, bool) or not isinstance(min_customers, int) or min_customers < 1:
        raise ConfigError(f"min_customers must be a positive int, got {min_customers!r}")
    grid = _thresholds(thresholds)

    repeat = result.customers.filter(
        (pl.col("buyer_type") == "repeat") & pl.col("cycles_since_last").is_not_null()
    )
    cycles = repeat.get_column("cycles_since_last").to_numpy()
    gone = ~repeat.get_column("returned").to_numpy()
    curve = _sweep(cycles, gone, grid)
    n_repeat = len(cycles)
    n_gone = int(gone.sum())

    flagged = curve.get_column("customers").to_numpy()
    precision = curve.get_column("precision").fill_null(-1.0).to_numpy()

    def pick(goal: float) -> tuple[float | None, dict[str, Any] | None]:
        ok = np.flatnonzero((precision >= goal) & (flagged >= min_customers))
        if len(ok) == 0:
            return None, None
        row = curve.row(int(ok[0]), named=True)
        return float(row.pop("threshold")), row

    churn_cycles, churn = pick(target)
    at_risk_cycles, at_risk = pick(at_risk_target)
    if churn_cycles is not None:
        assert churn is not None
        message = (
            f"churn_cycles={churn_cycles:g}: {churn['precision']:.1%} of the "
            f"{churn['customers']:,} repeat buyers at or above it did not come back "
            f"(target {target:.0%}); they are {churn['recall']:.1%} of those who did not"
        )
    elif n_repeat == 0:
        message = "no repeat buyer in the backtest: nothing to calibrate"
    else:
        best = curve.filter(pl.col("customers") >= min_customers)
        reach = best.get_column("precision").max()
        message = (
            f"target precision {target:.0%} not reached by any threshold from {grid[0]:g} "
            f"to {grid[-1]:g} cycles with at least {min_customers:,} customers"
            + (f" (best {reach:.1%})" if isinstance(reach, float) else "")
            + "; no churn_cycles suggested"
        )
    return Calibration(
        target_precision=target,
        at_risk_precision=at_risk_target,
        min_customers=min_customers,
        churn_cycles=churn_cycles,
        at_risk_cycles=at_risk_cycles,
        churn=churn,
        at_risk=at_risk,
        reached=churn_cycles is not None,
        message=message,
        curve=curve,
        repeat_customers=n_repeat,
        no_return_rate=_rate(n_gone, n_repeat),
    )


def _check_precision(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}") from None
    if isinstance(value, bool) or not 0.0 < number <= 1.0:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    return number


def _thresholds(thresholds: Sequence[float] | None) -> np.ndarray:
    if thresholds is None:
        return np.array(DEFAULT_THRESHOLDS)
    try:
        grid = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("thresholds must be a sequence of numbers") from None
    if grid.ndim != 1 or len(grid) == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ConfigError(f"thresholds must be finite numbers > 0, got {list(thresholds)!r}")
    return np.unique(grid)


def _sweep(cycles: np.ndarray, gone: np.ndarray, grid: np.ndarray) -> pl.DataFrame:
    """Per threshold t: flagged = #{cycles >= t}, no_return among them, and rates."""
    order = np.argsort(cycles, kind="stable")
    ordered = cycles[order]
    # gone_before[i]: customers that did not return among the i smallest values
    gone_before = np.concatenate(([0], np.cumsum(gone[order], dtype=np.int64)))
    first = np.searchsorted(ordered, grid, side="left")
    flagged = len(ordered) - first
    no_return = gone_before[-1] - gone_before[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(flagged > 0, no_return / np.maximum(flagged, 1), np.nan)
        recall = no_return / gone_before[-1] if gone_before[-1] else np.full(len(grid), np.nan)
        coverage = flagged / len(ordered) if len(ordered) else np.full(len(grid), np.nan)
    return pl.DataFrame(
        {
            "threshold": grid,
            "customers": flagged.astype(np.int64),
            "no_return": no_return.astype(np.int64),
            "precision": pl.Series(precision, nan_to_null=True),
            "recall": pl.Series(np.asarray(recall, dtype=np.float64), nan_to_null=True),
            "coverage": pl.Series(np.asarray(coverage, dtype=np.float64), nan_to_null=True),
        }
    )


# -- text --------------------------------------------------------------------


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column == "threshold":
            return f"{value:g}"
        return f"{100.0 * value:.1f} %"
    return str(value)


def format_table(frame: pl.DataFrame, indent: str = "  ") -> list[str]:
    """Plain fixed-width lines: text left-aligned, numbers right-aligned,
    rates as percentages, thousands separated."""
    headers = [c.replace("_", " ") for c in frame.columns]
    cells = [[_cell(v, c) for v, c in zip(row, frame.columns, strict=True)]
             for row in frame.iter_rows()]  # fmt: skip
    text = [frame.schema[c] == pl.String for c in frame.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = [v.ljust(w) if t else v.rjust(w)
                 for v, w, t in zip(values, widths, text, strict=True)]  # fmt: skip
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), *(line(r) for r in cells)]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def _format_backtest(r: BacktestResult) -> str:
    window = f"{_date((r.as_of_day - _EPOCH).days + 1)} .. {r.horizon_end}"
    as_of = _show(r.as_of) + ("" if isinstance(r.as_of, dt.datetime) else " (end of day)")
    lines = [
        f"backtest as of {as_of}",
        f"  horizon                 {r.horizon_days:,} days: {window}",
        f"  data ends               {r.data_end}"
        + ("  (PARTIAL horizon: later returns are missed)" if r.partial_horizon else ""),
        f"  rules                   at_risk_cycles={r.config.at_risk_cycles:g}, "
        f"churn_cycles={r.config.churn_cycles:g}, "
        f"no purchase for {r.config.horizon_days} days",
        f"  customers scored        {r.n_customers:,}",
        f"  came back               {r.n_returned:,}  ({_pct(r.return_rate)})",
        f"  new in the horizon      {r.new_customers:,}  (first purchase after as_of; "
        "not in the tables)",
    ]
    if r.rows_later_on_as_of_day:
        lines.append(
            f"  rows later on as_of day {r.rows_later_on_as_of_day:,}"
            "  (neither scored nor labelled)"
        )
    lines += ["", "by status", *format_table(r.by_status)]
    lines += ["", "by buyer type and status", *format_table(r.by_buyer_type_status)]
    # the "no cycle" row only ever holds one-time buyers of a log without a prior
    shown = (pl.col("cycles_since_last") != NO_CYCLE) | (pl.col("customers") > 0)
    by_cycles = r.by_cycles.filter(shown)
    lines += ["", "by cycles since last purchase (all customers)", *format_table(by_cycles)]
    repeat = r.by_buyer_type_cycles.filter(pl.col("buyer_type") == "repeat", shown)
    repeat = repeat.drop("buyer_type")
    lines += ["", "by cycles since last purchase (repeat buyers)", *format_table(repeat)]
    f1 = "-" if r.f1 is None else f"{r.f1:.3f}"
    lines += [
        "",
        'status "churned" as a prediction of "did not come back"',
        f"  precision {_pct(r.precision)}   recall {_pct(r.recall)}   F1 {f1}",
        f"  churned and gone {r.tp:,}, churned but came back {r.fp:,}, "
        f"not churned and gone {r.fn:,}, not churned and came back {r.tn:,}",
    ]
    return "\n".join(lines)


def _format_calibration(c: Calibration) -> str:
    lines = [
        f"calibration (repeat buyers: {c.repeat_customers:,}, "
        f"did not come back: {_pct(c.no_return_rate)})",
        f"  {c.message}",
    ]
    for name, value, point, goal in (
        ("churn_cycles", c.churn_cycles, c.churn, c.target_precision),
        ("at_risk_cycles", c.at_risk_cycles, c.at_risk, c.at_risk_precision),
    ):
        if value is None or point is None:
            lines.append(f"  {name:<15} not found (precision target {goal:.0%})")
        else:
            lines.append(
                f"  {name:<15} {value:<6g} precision {_pct(point['precision'])}, recall "
                f"{_pct(point['recall'])}, coverage {_pct(point['coverage'])}, "
                f"{point['customers']:,} customers (target {goal:.0%})"
            )
    marks = [v for v in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, c.churn_cycles, c.at_risk_cycles)
             if v is not None]  # fmt: skip
    shown = c.curve.filter(pl.col("threshold").is_in(sorted(set(marks))))
    if shown.height:
        lines += ["", "  customers with cycles_since_last >= threshold", *format_table(shown, "  ")]
    return "\n".join(lines)
