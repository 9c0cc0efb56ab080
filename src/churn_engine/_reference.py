"""The test oracle: DESIGN.md section 4 written in plain Polars.

:func:`reference_score` computes the same table as the compiled engine, one
obvious Polars expression per definition of DESIGN.md section 4 (and the
input rules of section 3), with no Python loop over rows or customers. It is
slow-ish and simple on purpose: tests compare the engine against it, and the
docs use it to show what each column means. Input must already be clean (no
nulls, NaN or infinities); validation and rejects are the engine's job.

Decisions made here (and mirrored by the engine):

- Day numbers are whole days since 1970-01-01 in ``config.tz``: tz-aware
  timestamps are converted to ``tz`` before the date is taken, naive ones are
  taken to be in ``tz`` already, integer epochs (``ts_unit``) are UTC instants.
- ``as_of=None`` means the last day in the data (all rows used); a ``date``
  means the end of that day; a ``datetime`` keeps rows with ``ts <= as_of``
  (naive ``as_of`` is in ``tz``; a Date column keeps days ``<= as_of_day``).
- A row with ``amount < 0`` is a refund; ``amount >= 0`` (zero included) is a
  purchase row. Groups without a purchase occasion get no output row.
- ``cycle_days = (k * mean + w * prior) / (k + w)`` in that operation order
  (``(k / (k + w)) * mean + (w / (k + w)) * prior`` when that sum overflows);
  ``prior`` itself when ``k == 0``; the own mean when the prior is missing.
- RFM cut points are order statistics (``numpy.quantile(method="lower")``)
  and values are compared with them as float64.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import polars as pl

from ._schema import output_schema
from .actions import ActionTable
from .config import RfmCuts, ScoreConfig
from .errors import DataError, SchemaError

__all__ = ["ReferenceResult", "reference_actions", "reference_score"]

_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ONE_US = dt.timedelta(microseconds=1)
#: How many units of each time unit one microsecond is (as a fraction num/den).
_PER_US = {"s": (1, 1_000_000), "ms": (1, 1_000), "us": (1, 1), "ns": (1_000, 1)}

# Internal column names (prefixed so they never clash with user columns).
_DAY = "__day"
_RAW = "__raw_ts"


@dataclasses.dataclass(frozen=True)
class ReferenceResult:
    """What :func:`reference_score` returns.

    Attributes
    ----------
    customers : polars.DataFrame
        The DESIGN.md section 4 table, sorted by customer (then category).
    cuts : RfmCuts or None
        The RFM cut points used; None when there are no output rows.
    rows_after_as_of : int
        Input rows later than ``as_of`` (not used).
    customers_without_purchase : int
        Groups whose used rows are all refunds (no output row).
    as_of_day : datetime.date or None
        The day of ``as_of`` in ``config.tz``; None for empty input without ``as_of``.
    """

    customers: pl.DataFrame
    cuts: RfmCuts | None
    rows_after_as_of: int
    customers_without_purchase: int
    as_of_day: dt.date | None


# ---------------------------------------------------------------------------
# time: day numbers and the as_of filter
# ---------------------------------------------------------------------------


def _day_number(date: dt.date) -> int:
    return (date - _EPOCH_DATE).days


def _day_expr(ts: str, dtype: pl.DataType, config: ScoreConfig) -> pl.Expr:
    """Day number (days since 1970-01-01 in ``config.tz``) of each ``ts`` value."""
    col = pl.col(ts)
    if dtype == pl.Date:
        local_date = col
    elif isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:  # naive: already wall-clock time in tz
            local_date = col.dt.date()
        else:
            local_date = col.dt.convert_time_zone(config.tz).dt.date()
    elif dtype.is_integer():
        if config.ts_unit is None:
            raise SchemaError(f"column {ts!r} holds integers: give ts_unit to read them as epochs")
        utc = pl.from_epoch(col, time_unit=config.ts_unit).dt.replace_time_zone("UTC")
        local_date = utc.dt.convert_time_zone(config.tz).dt.date()
    else:
        raise SchemaError(f"column {ts!r} has type {dtype}, expected a date, datetime or epoch")
    return local_date.cast(pl.Int32).cast(pl.Int64)


def _raw_expr(ts: str) -> pl.Expr:
    """The stored integer of a datetime/epoch column (its unit; UTC when tz-aware)."""
    return pl.col(ts).to_physical().cast(pl.Int64)


def _to_unit(micros: int, unit: str) -> int:
    """Largest count of ``unit`` that is <= ``micros`` microseconds."""
    num, den = _PER_US[unit]
    return (micros * num) // den


def _as_of_filter(
    data: pl.DataFrame, as_of: dt.date | dt.datetime | None, ts: str, config: ScoreConfig
) -> tuple[pl.Expr, dt.date | None]:
    """The row filter of ``as_of`` and the day of ``as_of`` (DESIGN.md section 4)."""
    if as_of is None:
        max_day = data.get_column(_DAY).max()
        if max_day is None:
            return pl.lit(True), None
        as_of_day = _EPOCH_DATE + dt.timedelta(days=int(max_day))  # type: ignore[arg-type]
        return pl.lit(True), as_of_day

    if not isinstance(as_of, dt.datetime):  # a date: the end of that day
        return pl.col(_DAY) <= _day_number(as_of), as_of

    zone = zoneinfo.ZoneInfo(config.tz)
    if as_of.tzinfo is None:
        wall, instant = as_of, as_of.replace(tzinfo=zone)
    else:
        instant = as_of.astimezone(zone)
        wall = instant.replace(tzinfo=None)
    as_of_day = wall.date()

    dtype = data.schema[ts]
    if dtype == pl.Date:
        return pl.col(_DAY) <= _day_number(as_of_day), as_of_day
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        # naive timestamps are wall-clock times in tz: compare wall clocks
        micros, unit = (wall - _EPOCH_NAIVE) // _ONE_US, dtype.time_unit
    else:
        # tz-aware timestamps and integer epochs are instants: compare instants
        micros = (instant - _EPOCH_UTC) // _ONE_US
        unit = dtype.time_unit if isinstance(dtype, pl.Datetime) else config.ts_unit
    assert unit is not None
    return pl.col(_RAW) <= _to_unit(micros, unit), as_of_day


# ---------------------------------------------------------------------------
# per-category settings (horizon, fixed prior)
# ---------------------------------------------------------------------------


def _category_settings(categories: pl.Series, config: ScoreConfig) -> pl.DataFrame:
    """One row per distinct category: its horizon, horizon reason and fixed prior."""
    values = categories.unique().to_list()  # a loop over categories, not customers
    horizons = [config.horizon_for(v) for v in values]
    return pl.DataFrame(
        {
            categories.name: pl.Series(values, dtype=categories.dtype),
            "__horizon": pl.Series(horizons, dtype=pl.Int64),
            "__horizon_reason": [config.reason_codes(h)["horizon"] for h in horizons],
            "__fixed_prior": pl.Series(
                [config.fixed_prior_for(v) for v in values], dtype=pl.Float64
            ),
        }
    )


def _first_match(rules: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """``when(c1).then(v1).when(c2).then(v2)...``: the value of the first true rule."""
    (condition, value), *rest = rules
    chain: Any = pl.when(condition).then(value)
    for condition, value in rest:  # a loop over the rules
        chain = chain.when(condition).then(value)
    return chain


# ---------------------------------------------------------------------------
# RFM
# ---------------------------------------------------------------------------


def _lower_quantile_cuts(values: pl.Series, bins: int) -> tuple[float, ...]:
    """Cut points i/bins, i = 1..bins-1, as order statistics (numpy method="lower")."""
    ordered = values.cast(pl.Float64).sort()
    n = ordered.len()
    return tuple(float(ordered[((n - 1) * i) // bins]) for i in range(1, bins))


def _score_expr(value: pl.Expr, cuts: tuple[float, ...]) -> pl.Expr:
    """1 + number of cut points strictly below the value, as Int8."""
    below = pl.lit(0, dtype=pl.Int64)
    for cut in cuts:  # a loop over the bins - 1 cut points
        below = below + (value.cast(pl.Float64) > cut).cast(pl.Int64)
    return (1 + below).cast(pl.Int8)


# ---------------------------------------------------------------------------
# the score
# ---------------------------------------------------------------------------


def reference_score(
    data: pl.DataFrame,
    config: ScoreConfig,
    as_of: dt.date | dt.datetime | None = None,
) -> ReferenceResult:
    """Score clean transactions with the DESIGN.md section 4 definitions.

    Parameters
    ----------
    data : polars.DataFrame
        Clean rows with the columns named by ``config`` (no nulls, NaN or inf).
    config : ScoreConfig
        The options of the run.
    as_of : datetime.date or datetime.datetime, optional
        The scoring point; default: the last day in the data.

    Returns
    -------
    ReferenceResult
    """
    cust, ts, amount, cat = (
        config.customer_col,
        config.ts_col,
        config.amount_col,
        config.category_col,
    )
    keys = [cust] if cat is None else [cust, cat]
    missing = [c for c in [*keys, ts, amount] if c not in data.columns]
    if missing:
        raise SchemaError(f"missing columns: {missing}")

    amount_dtype = data.schema[amount]
    if amount_dtype.is_integer():
        money_dtype: pl.DataType = pl.Int64()
    elif amount_dtype.is_float():
        money_dtype = pl.Float64()
    else:
        raise SchemaError(f"column {amount!r} has type {amount_dtype}, expected int or float")
    schema = output_schema(
        cust,
        data.schema[cust],
        cat,
        data.schema[cat] if cat is not None else None,
        integer_amounts=amount_dtype.is_integer(),
    )

    ts_dtype = data.schema[ts]
    rows = data.select(
        *keys,
        pl.col(amount).cast(money_dtype).alias(amount),
        pl.col(ts),
        _day_expr(ts, ts_dtype, config).alias(_DAY),
    )
    if ts_dtype != pl.Date:
        rows = rows.with_columns(_raw_expr(ts).alias(_RAW))

    # -- as_of ----------------------------------------------------------------
    keep, as_of_day = _as_of_filter(rows, as_of, ts, config)
    used = rows.filter(keep)
    rows_after_as_of = rows.height - used.height

    # -- per-group row facts (all used rows, refunds included) ----------------
    groups = used.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("n_rows"),
        pl.col(amount).sum().alias("monetary_total"),
        (-pl.col(amount)).filter(pl.col(amount) < 0).sum().alias("refund_total"),
    )

    if money_dtype == pl.Int64:
        # polars wraps integer sums silently; the engine reports overflow, so do we
        exact = used.group_by(keys).agg(
            pl.col(amount).cast(pl.Float64).abs().sum().alias("__abs_sum")
        )
        if exact.height and exact.get_column("__abs_sum").max() >= 2.0**63:  # type: ignore[operator]
            raise DataError(f"sum of {amount!r} overflows Int64", column=amount, reason="overflow")

    # -- purchase occasions: distinct days with a non-refund row --------------
    occasions = (
        used.filter(pl.col(amount) >= 0)
        .select(*keys, _DAY)
        .unique()
        .sort([*keys, _DAY])
        .with_columns(pl.col(_DAY).diff().over(keys).alias("__gap"))  # null on the first
    )
    per_group = occasions.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("n_orders"),
        pl.col(_DAY).min().alias("__first_day"),
        pl.col(_DAY).max().alias("__last_day"),
        pl.col("__gap").sum().alias("__gap_sum"),
        pl.col("__gap").std(ddof=1).alias("interval_std_days"),
        pl.col("__gap").median().alias("interval_median_days"),
    )
    scored = groups.join(per_group, on=keys, how="inner")
    customers_without_purchase = groups.height - scored.height

    if scored.height == 0:
        return ReferenceResult(
            customers=pl.DataFrame(schema=schema),
            cuts=None,
            rows_after_as_of=rows_after_as_of,
            customers_without_purchase=customers_without_purchase,
            as_of_day=as_of_day,
        )
    assert as_of_day is not None
    as_of_num = _day_number(as_of_day)

    k = (pl.col("n_orders") - 1).cast(pl.Float64)  # number of gaps
    scored = scored.with_columns(
        (pl.lit(as_of_num, dtype=pl.Int64) - pl.col("__first_day")).alias("tenure_days"),
        (pl.lit(as_of_num, dtype=pl.Int64) - pl.col("__last_day")).alias("recency_days"),
        (pl.col("monetary_total").cast(pl.Float64) / pl.col("n_orders")).alias("monetary_mean"),
        pl.when(k >= 1).then(pl.col("__gap_sum").cast(pl.Float64) / k).alias("interval_mean_days"),
        pl.when(k >= 2).then(pl.col("interval_std_days")).alias("interval_std_days"),
        pl.when(k >= 1).then(pl.col("interval_median_days")).alias("interval_median_days"),
    )

    # -- horizon, prior: per category when category_col is set ----------------
    codes = config.reason_codes(config.horizon_days)
    if cat is None:
        fixed = config.fixed_prior_for(None)
        scored = scored.with_columns(
            pl.lit(config.horizon_for(None), dtype=pl.Int64).alias("__horizon"),
            pl.lit(codes["horizon"], dtype=pl.String).alias("__horizon_reason"),
            pl.lit(fixed, dtype=pl.Float64).alias("__fixed_prior"),
            pl.col("interval_mean_days")
            .filter(k >= 1)
            .median()
            .cast(pl.Float64)
            .alias("__median_prior"),
        )
    else:
        medians = (
            scored.filter(k >= 1)
            .group_by(cat)
            .agg(pl.col("interval_mean_days").median().cast(pl.Float64).alias("__median_prior"))
        )
        scored = scored.join(
            _category_settings(scored.get_column(cat), config), on=cat, how="left"
        ).join(medians, on=cat, how="left")
    scored = scored.with_columns(pl.coalesce("__fixed_prior", "__median_prior").alias("__prior"))

    # -- purchase cycle ---------------------------------------------------------
    w = float(config.prior_weight)
    mean, prior = pl.col("interval_mean_days"), pl.col("__prior")
    scored = scored.with_columns(
        pl.when(k == 0)
        .then(prior)
        .when(prior.is_null())
        .then(mean)
        .otherwise(
            pl.when(((k * mean + w * prior) / (k + w)).is_infinite())
            # the sum overflowed (a huge prior): the weighted mean is finite
            .then((k / (k + w)) * mean + (w / (k + w)) * prior)
            .otherwise((k * mean + w * prior) / (k + w))
        )
        .alias("cycle_days")
    )
    cycle, recency = pl.col("cycle_days"), pl.col("recency_days").cast(pl.Float64)
    scored = scored.with_columns(
        (recency / cycle).alias("cycles_since_last"),
        (pl.col("__last_day") + (cycle + 0.5).floor().cast(pl.Int64))
        .cast(pl.Int32)
        .cast(pl.Date)
        .alias("expected_next_purchase"),
        (recency - cycle).clip(lower_bound=0.0).alias("days_overdue"),
        pl.when(pl.col("n_orders") == 1)
        .then(pl.lit("one_time"))
        .otherwise(pl.lit("repeat"))
        .alias("buyer_type"),
    )

    # -- status and its reason (first rule that fires) -------------------------
    a, c = config.at_risk_cycles, config.churn_cycles
    horizon_hit = pl.col("recency_days") >= pl.col("__horizon")
    repeat = pl.col("n_orders") >= 2
    cycles = pl.col("cycles_since_last")
    status_rules: list[tuple[pl.Expr, str, pl.Expr]] = [
        (horizon_hit, "churned", pl.col("__horizon_reason")),
        (repeat & (cycles >= c), "churned", pl.lit(codes["churn_cycles"])),
        (repeat & (cycles >= a), "at_risk", pl.lit(codes["at_risk_cycles"])),
        (repeat, "active", pl.lit(codes["active_cycles"])),
        (prior.is_null(), "active", pl.lit(codes["one_time_no_prior"])),
        (recency >= a * prior, "at_risk", pl.lit(codes["one_time_at_risk"])),
        (pl.lit(True), "active", pl.lit(codes["one_time_active"])),
    ]
    status = _first_match([(cond, pl.lit(name)) for cond, name, _ in status_rules])
    reason = _first_match([(cond, code) for cond, _, code in status_rules])
    scored = scored.with_columns(status.alias("status"), reason.alias("status_reason"))

    # -- RFM over all output rows -----------------------------------------------
    bins = config.rfm_bins
    rfm_values = {
        "recency": (-pl.col("recency_days"), "r_score"),
        "frequency": (pl.col("n_orders"), "f_score"),
        "monetary": (pl.col("monetary_total"), "m_score"),
    }
    if config.cuts is not None:
        cuts = config.cuts
    else:
        computed = {
            name: _lower_quantile_cuts(scored.select(expr).to_series(), bins)
            for name, (expr, _) in rfm_values.items()
        }
        cuts = RfmCuts(**computed)
    scored = scored.with_columns(
        _score_expr(expr, getattr(cuts, name)).alias(score)
        for name, (expr, score) in rfm_values.items()
    )
    scored = scored.with_columns(
        pl.format("{}{}{}", "r_score", "f_score", "m_score").alias("rfm_code")
    )
    segment_map = config.effective_segment_map()
    if segment_map is None:
        segment = pl.lit(None, dtype=pl.String)
    else:
        code_to_segment = {
            str(code): name for name, codes_ in segment_map.items() for code in codes_
        }
        segment = pl.col("rfm_code").replace_strict(
            code_to_segment, default=None, return_dtype=pl.String
        )
    scored = scored.with_columns(segment.alias("segment"))

    # -- output: the section-4 columns, in order, sorted by key -----------------
    scored = scored.with_columns(
        pl.col("__first_day").cast(pl.Int32).cast(pl.Date).alias("first_purchase"),
        pl.col("__last_day").cast(pl.Int32).cast(pl.Date).alias("last_purchase"),
    )
    customers = scored.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).sort(keys)
    return ReferenceResult(
        customers=customers,
        cuts=cuts,
        rows_after_as_of=rows_after_as_of,
        customers_without_purchase=customers_without_purchase,
        as_of_day=as_of_day,
    )


def reference_actions(customers: pl.DataFrame, table: ActionTable) -> pl.DataFrame:
    """``customers`` (a score) with ``action`` and ``action_reason`` appended.

    Two joins: the status rule on (``buyer_type``, ``status``) and the
    segment rule on ``segment`` (no match for a null segment); the segment
    rule wins only with a strictly lower priority (docs/actions.md).
    """
    status_rules = pl.DataFrame(
        [(b, s, a.key, a.priority) for (b, s), a in table.status.items()],
        schema={"buyer_type": pl.String, "status": pl.String, "__status_key": pl.String,
                "__status_priority": pl.Int64},
        orient="row",
    )  # fmt: skip
    segment_rules = pl.DataFrame(
        [(name, a.key, a.priority) for name, a in table.segment.items()],
        schema={"segment": pl.String, "__segment_key": pl.String,
                "__segment_priority": pl.Int64},
        orient="row",
    )  # fmt: skip
    joined = customers.join(
        status_rules, on=["buyer_type", "status"], how="left", maintain_order="left"
    ).join(segment_rules, on="segment", how="left", maintain_order="left")
    segment_wins = pl.col("__segment_priority").is_not_null() & (
        pl.col("__segment_priority") < pl.col("__status_priority")
    )
    return joined.with_columns(
        action=pl.when(segment_wins)
        .then(pl.col("__segment_key"))
        .otherwise(pl.col("__status_key")),
        action_reason=pl.when(segment_wins)
        .then(pl.concat_str(pl.lit("segment/"), pl.col("segment")))
        .otherwise(pl.concat_str(pl.lit("status/"), "buyer_type", pl.lit("/"), "status")),
    ).select(*customers.columns, "action", "action_reason")
