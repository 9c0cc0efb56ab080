"""The behaviour funnel of an e-commerce event log: :func:`funnel`.

An event log has one row per user action: a user id, a behaviour (``pv``
page view, ``fav`` favourite, ``cart`` add to cart, ``buy``) and a timestamp,
often with the item and its category (the shape of the public Taobao
UserBehavior log). :func:`funnel` counts, per day and over the period, the
events of each behaviour, the distinct users (UV), the buyers and the pay
rate, the repurchase rate, and the funnel pv -> fav/cart -> buy with the
conversion and drop-off at each step. Every definition is in docs/funnel.md.

Orchestration only: :mod:`._prepare_events` reads and validates the log, the
compiled :mod:`._funnel` pass counts users per behaviour set, and the tables
are derived here from those counts with NumPy (no per-row Python).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import polars as pl

from . import _funnel
from ._io import csv_path_of, open_source
from ._prepare_events import (
    BEHAVIOURS,
    FunnelOptions,
    PreparedEvents,
    input_columns,
    prepare_events,
)

__all__ = ["DAILY_SCHEMA", "FUNNEL_STEPS", "FunnelResult", "FunnelStats", "funnel"]

_EPOCH = dt.date(1970, 1, 1)
#: the funnel steps, in order (the middle step is "fav or cart")
FUNNEL_STEPS: tuple[str, ...] = ("pv", "fav/cart", "buy")

_COUNTS = {name: pl.Int64() for name in (
    "events", "pv", "fav", "cart", "buy", "uv", "pv_users", "fav_cart_users", "buyers",
)}  # fmt: skip
_STEPS = {"funnel_fav_cart_users": pl.Int64(), "funnel_buy_users": pl.Int64()}
_RATES = {name: pl.Float64() for name in (
    "conv_pv_to_fav_cart", "conv_fav_cart_to_buy", "conv_pv_to_buy",
    "drop_pv_to_fav_cart", "drop_fav_cart_to_buy",
)}  # fmt: skip

#: columns of :attr:`FunnelResult.daily`, one row per day with events
DAILY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(), **_COUNTS, "pay_rate": pl.Float64(), **_STEPS, **_RATES,
}  # fmt: skip
#: columns of :attr:`FunnelResult.overall`, one row for the whole period
OVERALL_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Date(), "end": pl.Date(), "days": pl.Int64(), **_COUNTS,
    "repeat_buyers": pl.Int64(), "pay_rate": pl.Float64(), "repurchase_rate": pl.Float64(),
    **_STEPS, **_RATES, "items": pl.Int64(), "categories": pl.Int64(),
}  # fmt: skip
#: columns of :attr:`FunnelResult.funnel`, one row per step
FUNNEL_SCHEMA: dict[str, pl.DataType] = {
    "step": pl.String(), "events": pl.Int64(), "users": pl.Int64(),
    "conversion_from_previous": pl.Float64(), "conversion_from_top": pl.Float64(),
    "drop_off": pl.Int64(), "drop_off_rate": pl.Float64(),
}  # fmt: skip

# Users per behaviour set -> the user counts: a 16 x 6 selector over the masks
# (bit 0 pv, 1 fav, 2 cart, 3 buy).
_MASKS = np.arange(_funnel.N_MASKS)
_PV, _FAV_CART, _BUY = (_MASKS & 1) != 0, (_MASKS & 6) != 0, (_MASKS & 8) != 0
_SELECT = np.stack(
    [_MASKS != 0, _PV, _FAV_CART, _BUY, _PV & _FAV_CART, _PV & _FAV_CART & _BUY], axis=1
).astype(np.int64)
_USER_COUNTS = ("uv", "pv_users", "fav_cart_users", "buyers",
                "funnel_fav_cart_users", "funnel_buy_users")  # fmt: skip

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class FunnelStats:
    """What a funnel run read, used, rejected and left out.

    ``rows_accepted + rows_rejected + rows_outside_period == rows_read``
    always holds; rejected rows are counted by reason in
    ``rejected_by_reason``. ``rows_accepted`` are the events counted.
    """

    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rows_outside_period: int
    rejected_by_reason: dict[str, int]
    users: int
    days: int
    start: dt.date | None
    end: dt.date | None
    timings: dict[str, float]

    def reconciles(self) -> bool:
        return (
            self.rows_accepted + self.rows_rejected + self.rows_outside_period == self.rows_read
            and sum(self.rejected_by_reason.values()) == self.rows_rejected
        )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FunnelResult:
    """The outcome of :func:`funnel`.

    Attributes
    ----------
    daily : polars.DataFrame
        One row per day with at least one counted event, ascending
        (:data:`DAILY_SCHEMA`): events per behaviour, UV, users per
        behaviour, buyers, pay rate, the funnel steps, conversion and
        drop-off rates.
    overall : polars.DataFrame
        One row: the same over the whole period (UV = distinct users of the
        period), plus ``repeat_buyers``, ``repurchase_rate`` and the distinct
        ``items`` and ``categories`` (null when not counted).
    funnel : polars.DataFrame
        One row per step of :data:`FUNNEL_STEPS` over the whole period:
        ``events``, ``users``, ``conversion_from_previous``,
        ``conversion_from_top``, ``drop_off`` (users) and ``drop_off_rate``.
    stats : FunnelStats
        Rows read, counted, rejected by reason and outside the period.
    rejects : polars.DataFrame or None
        The rejected rows with ``row`` and ``reason`` when ``on_error="quarantine"``.
    """

    daily: pl.DataFrame
    overall: pl.DataFrame
    funnel: pl.DataFrame
    stats: FunnelStats
    rejects: pl.DataFrame | None = None

    @property
    def pay_rate(self) -> float | None:
        """Buyers / active users over the period (None without events)."""
        value = self.overall.item(0, "pay_rate")
        return None if value is None else float(value)

    @property
    def repurchase_rate(self) -> float | None:
        """Users buying on 2 or more days / buyers (None without buyers)."""
        value = self.overall.item(0, "repurchase_rate")
        return None if value is None else float(value)

    def format(self, max_days: int | None = 31) -> str:
        """A readable report: the period, the daily table and the funnel.

        ``max_days``: show at most this many days (the first and the last
        ones); None shows every day.
        """
        return _format(self, max_days)

    def __str__(self) -> str:
        return self.format()


def funnel(
    events: Any,
    *,
    user_col: str = "user_id",
    item_col: str | None = "item_id",
    category_col: str | None = "category_id",
    behaviour_col: str = "behavior",
    ts_col: str = "ts",
    tz: str = "UTC",
    ts_unit: Literal["s", "ms", "us", "ns"] | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    on_error: Literal["raise", "quarantine"] = "raise",
    progress: Progress | None = None,
) -> FunnelResult:
    """Daily and overall PV/UV, pay rate, repurchase rate and the behaviour funnel.

    Parameters
    ----------
    events : path, polars/pyarrow/pandas frame, or Arrow C stream
        The event log, one row per user action (the sources of
        :func:`churn_engine.score`).
    user_col : str
        User ids: any integer type or strings. Required.
    item_col, category_col : str or None
        Optional: when the column is present its distinct non-null values
        among the counted events are reported (``overall["items"]``,
        ``overall["categories"]``); an absent column under its default name
        is skipped, under a name you give it is an error; None skips it.
    behaviour_col : str
        Behaviours, exactly ``pv``, ``fav``, ``cart`` or ``buy`` (text,
        case-sensitive). Required.
    ts_col : str
        Timestamps: dates, datetimes, ISO text, or integer epochs with
        ``ts_unit``. Required.
    tz : str
        Days are cut in this time zone; naive timestamps are taken to be in it.
        (The Taobao log is in China time: ``tz="Asia/Shanghai"``.)
    ts_unit : {"s", "ms", "us", "ns"}, optional
        Unit of integer epoch timestamps (the Taobao log: ``"s"``).
    start, end : date or ISO date string, optional
        First and last day (inclusive, in ``tz``) of the period; events
        outside it are not counted (``stats.rows_outside_period``).
    on_error : {"raise", "quarantine"}
        Raise on the first bad row (null user, null/unparseable ts, null or
        unknown behaviour), or set bad rows aside in ``FunnelResult.rejects``.
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    FunnelResult
        ``daily``, ``overall``, ``funnel``, ``stats``, ``rejects``, and the
        ``pay_rate`` and ``repurchase_rate`` of the period.

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({
    ...     "user_id": [1, 1, 1, 2, 2],
    ...     "behavior": ["pv", "cart", "buy", "pv", "pv"],
    ...     "ts": [dt.date(2017, 11, 25)] * 4 + [dt.date(2017, 11, 26)]})
    >>> result = churn_engine.funnel(log)
    >>> result.funnel.select("step", "users", "conversion_from_previous").rows()
    [('pv', 2, None), ('fav/cart', 1, 0.5), ('buy', 1, 1.0)]
    >>> result.pay_rate
    0.5
    """
    options = FunnelOptions(
        user_col=user_col,
        item_col=item_col,
        category_col=category_col,
        behaviour_col=behaviour_col,
        ts_col=ts_col,
        tz=tz,
        ts_unit=ts_unit,
        start=start,  # type: ignore[arg-type]  # parsed and checked by FunnelOptions
        end=end,  # type: ignore[arg-type]
        on_error=on_error,
    )
    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        if progress is not None:
            progress(name)
        began = time.perf_counter()
        yield
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - began

    with stage("read"):
        prepared = prepare_events(open_source(events), options, csv_path_of(events))
    with stage("count"):
        counts = _count(prepared)
        items, categories = (_distinct(v) for v in (prepared.items, prepared.categories))
        prepared.items = prepared.categories = None  # free them early
    with stage("assemble"):
        daily, overall, steps = _tables(counts, items, categories)
    stats = FunnelStats(
        rows_read=prepared.rows_read,
        rows_accepted=prepared.n_rows,
        rows_rejected=prepared.rows_rejected,
        rows_outside_period=prepared.rows_outside_period,
        rejected_by_reason=dict(prepared.rejected_by_reason),
        users=int(overall.item(0, "uv")),
        days=daily.height,
        start=overall.item(0, "start"),
        end=overall.item(0, "end"),
        timings=timings,
    )
    rejects = prepared.rejects
    if options.on_error == "quarantine" and rejects is None:
        rejects = pl.DataFrame(
            schema={"row": pl.Int64, **{c: pl.Null for c in input_columns(options)},
                    "reason": pl.String}
        )  # fmt: skip
    return FunnelResult(daily=daily, overall=overall, funnel=steps, stats=stats, rejects=rejects)


# -- counting ----------------------------------------------------------------


@dataclasses.dataclass
class _Counts:
    days: np.ndarray  # int32 days with events, ascending
    events: np.ndarray  # int64 [n_days, 4]
    day_masks: np.ndarray  # int64 [n_days, 16]
    user_masks: np.ndarray  # int64 [16]
    buy_days: np.ndarray  # int64 [3]


def _count(prepared: PreparedEvents) -> _Counts:
    """The kernel's counts: a histogram of days, then the funnel pass."""
    if prepared.n_rows == 0 or prepared.min_day is None or prepared.max_day is None:
        return _Counts(
            np.empty(0, np.int32), np.zeros((0, 4), np.int64), np.zeros((0, 16), np.int64),
            np.zeros(16, np.int64), np.zeros(3, np.int64),
        )  # fmt: skip
    min_day, max_day = prepared.min_day, prepared.max_day
    per_day = np.zeros(max_day - min_day + 1, dtype=np.int64)
    _funnel.day_histogram(per_day, prepared.day_segments, min_day)
    present = np.flatnonzero(per_day)
    day_index = np.full(per_day.size, -1, dtype=np.int32)
    day_index[present] = np.arange(present.size, dtype=np.int32)
    offsets = np.zeros(present.size + 1, dtype=np.int64)
    np.cumsum(per_day[present], out=offsets[1:])
    counts = _Counts(
        days=(present + min_day).astype(np.int32),
        events=np.zeros((present.size, 4), np.int64),
        day_masks=np.zeros((present.size, 16), np.int64),
        user_masks=np.zeros(16, np.int64),
        buy_days=np.zeros(3, np.int64),
    )
    _funnel.funnel_pass(
        counts.events, counts.day_masks, counts.user_masks, counts.buy_days,
        prepared.user_segments, prepared.user_base, prepared.day_segments,
        prepared.behaviour_segments, day_index, offsets, min_day, prepared.n_users,
    )  # fmt: skip
    return counts


#: integer values spanning at most this many (or 64 per value) are counted in
#: a bit set by the kernel; others by Polars (hashing)
_BITSET_SPAN = 1 << 27


def _distinct(values: pl.Series | None) -> int | None:
    """Distinct non-null values (None when the column is not counted)."""
    if values is None:
        return None
    if values.null_count():
        values = values.drop_nulls()
    if values.is_empty():
        return 0
    if values.dtype.is_integer():
        low, high = values.min(), values.max()
        assert isinstance(low, int) and isinstance(high, int)
        span = high - low + 1
        if span <= max(_BITSET_SPAN, 64 * values.len()) and high < 2**63:
            bits = np.zeros((span + 7) // 8, dtype=np.uint8)
            chunks = [chunk.to_numpy() for chunk in values.cast(pl.Int64).get_chunks()]
            return _funnel.count_distinct(bits, chunks, low)
    return int(values.n_unique())


# -- tables ------------------------------------------------------------------


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN (-> null) where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _measures(events: np.ndarray, masks: np.ndarray) -> dict[str, Any]:
    """Counts and rates of one or more windows from their events per behaviour
    ([n, 4]) and users per behaviour set ([n, 16])."""
    users = dict(zip(_USER_COUNTS, (masks @ _SELECT).T, strict=True))
    step1, step2, step3 = (
        users["pv_users"],
        users["funnel_fav_cart_users"],
        users["funnel_buy_users"],
    )
    columns: dict[str, Any] = {"events": events.sum(axis=1)}
    columns.update(zip(BEHAVIOURS, events.T, strict=True))
    columns.update(users)
    columns["pay_rate"] = _ratio(users["buyers"], users["uv"])
    columns["conv_pv_to_fav_cart"] = _ratio(step2, step1)
    columns["conv_fav_cart_to_buy"] = _ratio(step3, step2)
    columns["conv_pv_to_buy"] = _ratio(step3, step1)
    columns["drop_pv_to_fav_cart"] = _ratio(step1 - step2, step1)
    columns["drop_fav_cart_to_buy"] = _ratio(step2 - step3, step2)
    return columns


def _frame(columns: dict[str, Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    series = [
        pl.Series(name, columns[name], dtype=dtype, nan_to_null=dtype == pl.Float64())
        for name, dtype in schema.items()
    ]
    return pl.DataFrame(series)


def _tables(
    counts: _Counts, items: int | None, categories: int | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    daily = _measures(counts.events, counts.day_masks)
    daily["date"] = pl.Series(counts.days, dtype=pl.Int32).cast(pl.Date)

    user_masks = counts.user_masks.copy()
    user_masks[0] = 0  # codes without events (gaps in the id range)
    overall = _measures(counts.events.sum(axis=0, keepdims=True), user_masks[None, :])
    repeat = np.array([counts.buy_days[2]])
    has_days = counts.days.size > 0
    overall.update(
        start=[_date(counts.days[0]) if has_days else None],
        end=[_date(counts.days[-1]) if has_days else None],
        days=[counts.days.size],
        repeat_buyers=repeat,
        repurchase_rate=_ratio(repeat, overall["buyers"]),
        items=[items],
        categories=[categories],
    )

    step_users = np.array([overall[k][0] for k in
                           ("pv_users", "funnel_fav_cart_users", "funnel_buy_users")])  # fmt: skip
    step_events = np.array([overall["pv"][0], overall["fav"][0] + overall["cart"][0],
                            overall["buy"][0]])  # fmt: skip
    previous = np.concatenate([[0], step_users[:-1]])  # 0: no previous step -> null
    drop = previous - step_users
    steps = {
        "step": list(FUNNEL_STEPS),
        "events": step_events,
        "users": step_users,
        "conversion_from_previous": _ratio(step_users, previous),
        "conversion_from_top": _ratio(step_users, np.full(3, step_users[0])),
        "drop_off": [None, *drop[1:].tolist()],
        "drop_off_rate": _ratio(drop, previous),
    }
    return (
        _frame(daily, DAILY_SCHEMA),
        _frame(overall, OVERALL_SCHEMA),
        _frame(steps, FUNNEL_SCHEMA),
    )


def _date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


# -- report ------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def _format(result: FunnelResult, max_days: int | None) -> str:
    stats = result.stats
    row = result.overall.row(0, named=True)
    lines: list[str] = []
    period = "no events" if stats.start is None else (
        f"{stats.start} .. {stats.end} ({stats.days:,} days with events)"
    )  # fmt: skip
    lines.append(f"behaviour funnel: {period}")
    lines.append(
        f"events {row['events']:,}: pv {row['pv']:,}, fav {row['fav']:,}, "
        f"cart {row['cart']:,}, buy {row['buy']:,}"
    )
    line = f"users (UV) {row['uv']:,}, buyers {row['buyers']:,}"
    for name in ("items", "categories"):
        if row[name] is not None:
            line += f", {name} {row[name]:,}"
    lines.append(line)
    lines.append(
        f"pay rate {_percent(row['pay_rate'])} (buyers / users); repurchase rate "
        f"{_percent(row['repurchase_rate'])} ({row['repeat_buyers']:,} buyers on 2+ days / "
        "buyers)"
    )

    lines.append("")
    lines.append("daily")
    header = (
        f"{'date':<10} {'events':>12} {'pv':>12} {'fav':>10} {'cart':>10} {'buy':>10} "
        f"{'uv':>10} {'buyers':>9} {'pay rate':>9} {'pv>f/c':>7} {'f/c>buy':>7}"
    )
    lines.append(header)
    days = result.daily.rows(named=True)
    shown: list[dict[str, Any] | None] = list(days)
    if max_days is not None and len(days) > max_days:
        head = max(1, max_days // 2)
        tail = max(0, max_days - head)
        shown = [*days[:head], None, *(days[len(days) - tail :] if tail else [])]
    for day in shown:
        if day is None:
            hidden = len(days) - len(shown) + 1
            lines.append(f"... {hidden:,} more days (see FunnelResult.daily) ...")
            continue
        lines.append(
            f"{day['date']!s:<10} {day['events']:>12,} {day['pv']:>12,} {day['fav']:>10,} "
            f"{day['cart']:>10,} {day['buy']:>10,} {day['uv']:>10,} {day['buyers']:>9,} "
            f"{_percent(day['pay_rate']):>9} {_percent(day['conv_pv_to_fav_cart']):>7} "
            f"{_percent(day['conv_fav_cart_to_buy']):>7}"
        )
    lines.append(
        "(pv>f/c, f/c>buy: the day's funnel conversion, users with pv -> also fav/cart -> also buy)"
    )

    lines.append("")
    lines.append("funnel (users over the whole period; each step requires the previous ones)")
    lines.append(
        f"{'step':<9} {'users':>12} {'from previous':>14} {'from top':>9} "
        f"{'drop-off':>12} {'drop rate':>9} {'events':>13}"
    )
    for step in result.funnel.rows(named=True):
        drop = "" if step["drop_off"] is None else f"{step['drop_off']:,}"
        lines.append(
            f"{step['step']:<9} {step['users']:>12,} "
            f"{_percent(step['conversion_from_previous']):>14} "
            f"{_percent(step['conversion_from_top']):>9} {drop:>12} "
            f"{_percent(step['drop_off_rate']):>9} {step['events']:>13,}"
        )

    lines.append("")
    rows = (
        f"rows read {stats.rows_read:,}, counted {stats.rows_accepted:,}, "
        f"rejected {stats.rows_rejected:,}"
    )
    if stats.rejected_by_reason:
        reasons = sorted(stats.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        rows += " (" + ", ".join(f"{reason}: {count:,}" for reason, count in reasons) + ")"
    rows += f", outside the period {stats.rows_outside_period:,}"
    lines.append(rows)
    return "\n".join(lines)
