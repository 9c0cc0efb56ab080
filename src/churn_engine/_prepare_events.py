"""Event logs for the behaviour funnel: validation, rejects, day numbers,
behaviour codes and user codes.

One Polars query reads the needed columns, computes each row's day number in
the time zone, its behaviour code (0 pv, 1 fav, 2 cart, 3 buy) and a reject
reason code. The timestamp and id handling is that of :mod:`._prepare` (the
same accepted types, time zones and messages): its helpers read the column
names and time options from a :class:`~churn_engine.config.ScoreConfig`, so
:meth:`FunnelOptions.carrier` builds one holding the event log's names.

The accepted rows go to the kernel as aligned Arrow record batches viewed as
NumPy arrays. Users become codes in ``[0, n_users)``: integer ids in a narrow
range are used as they are (code = id - smallest id), other ids are
dictionary-encoded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from typing import Any, Literal

import numpy as np
import polars as pl

from ._csv import MALFORMED, read_csv_leniently
from ._prepare import (
    _INTEGER_TYPES,
    _STRING_TYPES,
    MAX_DAY,
    MIN_DAY,
    _check_tz,
    _day_expr,
    _dictionary,
    _example_row,
    _first_line,
    _id_expr,
    _view,
    bad_row_error,
    rejects_table,
    tally_rejects,
)
from .config import TS_UNITS, ScoreConfig
from .errors import ConfigError, DataError, SchemaError

__all__ = [
    "BEHAVIOURS",
    "EVENT_REJECT_REASONS",
    "FunnelOptions",
    "PreparedEvents",
    "prepare_events",
]

#: behaviour values, in funnel order; their index is the behaviour code
BEHAVIOURS: tuple[str, ...] = ("pv", "fav", "cart", "buy")

#: reason code -> (machine-readable reason, which column it is about)
EVENT_REJECT_REASONS: dict[int, tuple[str, str]] = {
    1: ("null_user_id", "user"),
    2: ("null_ts", "ts"),
    3: ("unparseable_ts", "ts"),
    4: ("ts_out_of_range", "ts"),
    5: ("null_behaviour", "behaviour"),
    6: ("unknown_behaviour", "behaviour"),
    7: ("malformed_csv_line", "line"),
}

_EPOCH = dt.date(1970, 1, 1)
_USER, _DAY, _BEHAVIOUR = "__funnel_user", "__funnel_day", "__funnel_behaviour"
_REASON, _OUTSIDE = "__funnel_reason", "__funnel_outside"
_ITEM, _CATEGORY = "__funnel_item", "__funnel_category"
#: integer ids spanning at most this many values (or twice the rows) are used
#: as codes directly: one 8-byte state per possible id
_DIRECT_RANGE = 1 << 22
_MAX_USERS = 1 << 30


@dataclasses.dataclass(frozen=True)
class FunnelOptions:
    """Validated options of :func:`churn_engine.funnel` (see its docstring)."""

    user_col: str = "user_id"
    item_col: str | None = "item_id"
    category_col: str | None = "category_id"
    behaviour_col: str = "behavior"
    ts_col: str = "ts"
    tz: str = "UTC"
    ts_unit: Literal["s", "ms", "us", "ns"] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    on_error: Literal["raise", "quarantine"] = "raise"

    def __post_init__(self) -> None:
        named = {
            "user_col": self.user_col,
            "behaviour_col": self.behaviour_col,
            "ts_col": self.ts_col,
            "item_col": self.item_col,
            "category_col": self.category_col,
        }
        for option, name in named.items():
            if name is None and option in ("item_col", "category_col"):
                continue
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{option} must be a non-empty string, got {name!r}")
        names = [n for n in named.values() if n is not None]
        if len(set(names)) != len(names):
            raise ConfigError(f"column names must differ, got {named}")
        if not isinstance(self.tz, str) or not self.tz:
            raise ConfigError(f"tz must be a time zone name such as 'UTC', got {self.tz!r}")
        if self.ts_unit is not None and self.ts_unit not in TS_UNITS:
            raise ConfigError(f"ts_unit must be one of {TS_UNITS}, got {self.ts_unit!r}")
        if self.on_error not in ("raise", "quarantine"):
            raise ConfigError(f"on_error must be 'raise' or 'quarantine', got {self.on_error!r}")
        object.__setattr__(self, "start", parse_day("start", self.start))
        object.__setattr__(self, "end", parse_day("end", self.end))
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ConfigError(f"start ({self.start}) is after end ({self.end})")

    def carrier(self) -> ScoreConfig:
        """The names and time options in the form :mod:`._prepare`'s helpers read
        (``customer_col`` = the user column, ``amount_col`` = the behaviour column)."""
        return ScoreConfig(
            customer_col=self.user_col,
            ts_col=self.ts_col,
            amount_col=self.behaviour_col,
            tz=self.tz,
            ts_unit=self.ts_unit,
            on_error=self.on_error,
        )


def parse_day(name: str, value: Any) -> dt.date | None:
    """``None``, a date or an ISO date string (``2017-11-25``); not a datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise ConfigError(
            f"{name} is a day: pass a date such as '2017-11-25', not the datetime {value}"
        )
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{name}: cannot parse {value!r}; use YYYY-MM-DD") from None
    raise ConfigError(f"{name} must be a date or an ISO date string, got {type(value).__name__}")


@dataclasses.dataclass
class PreparedEvents:
    """Accepted events in the period as kernel inputs, plus what to report."""

    n_rows: int
    user_segments: list[np.ndarray]  # int64 ids (code = id - user_base) or int32 codes
    user_base: int
    n_users: int  # size of the user code space (codes are < n_users)
    day_segments: list[np.ndarray]  # int32 days since 1970-01-01 in tz
    behaviour_segments: list[np.ndarray]  # uint8 behaviour codes
    min_day: int | None
    max_day: int | None
    items: pl.Series | None  # item values of the used rows (None: not counted)
    categories: pl.Series | None  # category values of the used rows (None: not counted)
    rows_read: int
    rows_outside_period: int
    rejected_by_reason: dict[str, int]
    rejects: pl.DataFrame | None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def prepare_events(
    lf: pl.LazyFrame, options: FunnelOptions, csv_path: pathlib.Path | None = None
) -> PreparedEvents:
    """Read, validate and encode an event log; raise or quarantine bad rows.

    ``csv_path``: the source is this CSV file; if Polars cannot parse it, it
    is read again line by line so that malformed lines can be named or rejected.
    """
    _check_tz(options.tz)
    try:
        return _prepare(lf, options, {})
    except _CsvParseError as failure:
        if csv_path is None:
            raise failure.error from failure.error.__cause__
    lenient = read_csv_leniently(csv_path, "\t" if csv_path.suffix.lower() == ".tsv" else ",")
    return _prepare(lenient.frame, options, lenient.malformed)


class _CsvParseError(Exception):
    def __init__(self, error: DataError) -> None:
        super().__init__(str(error))
        self.error = error


def _column_types(lf: pl.LazyFrame, options: FunnelOptions) -> dict[str, pl.DataType]:
    """Types of the required columns and of the optional ones that are present.

    An optional column is skipped when absent under its default name; a name
    the caller chose must exist.
    """
    try:
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the input: {exc}", reason="unreadable_input") from exc
    required = {
        "user_col": options.user_col,
        "behaviour_col": options.behaviour_col,
        "ts_col": options.ts_col,
    }
    missing = [f"{name!r} ({option})" for option, name in required.items() if name not in schema]
    defaults = {f.name: f.default for f in dataclasses.fields(FunnelOptions)}
    for option in ("item_col", "category_col"):
        name = getattr(options, option)
        if name is not None and name not in schema and name != defaults[option]:
            missing.append(f"{name!r} ({option})")
    if missing:
        raise SchemaError(
            f"missing column {', '.join(missing)}; the input has {list(schema.names())}"
        )
    return {name: schema[name] for name in schema.names()}


def _behaviour_expr(dtype: pl.DataType, options: FunnelOptions) -> pl.Expr:
    """Behaviour code 0..3, null for a null or unknown value (exact, case-sensitive)."""
    name = options.behaviour_col
    col = pl.col(name)
    if isinstance(dtype, pl.Null):
        return pl.lit(None, dtype=pl.UInt8)
    if not isinstance(dtype, _STRING_TYPES):
        hint = ""
        if isinstance(dtype, _INTEGER_TYPES):
            hint = (
                "; map integer codes to names first, e.g. "
                f"pl.col({name!r}).replace_strict({{1: 'pv', 2: 'fav', 3: 'cart', 4: 'buy'}})"
            )
        raise SchemaError(
            f"column {name!r} (behaviours) must hold text pv, fav, cart or buy, got {dtype}{hint}"
        )
    code: Any = pl
    for index, value in enumerate(BEHAVIOURS):
        code = code.when(col == value).then(pl.lit(index, dtype=pl.UInt8))
    result: pl.Expr = code.otherwise(pl.lit(None, dtype=pl.UInt8))
    return result


def _prepare(
    lf: pl.LazyFrame, options: FunnelOptions, malformed: dict[int, tuple[int, int, int]]
) -> PreparedEvents:
    carrier = options.carrier()
    types = _column_types(lf, options)
    user_type = types[options.user_col]
    if not isinstance(user_type, (*_INTEGER_TYPES, *_STRING_TYPES)):
        raise SchemaError(
            f"column {options.user_col!r} (user ids) must be integer or string, got {user_type}"
        )
    user_expr, id_kind = _id_expr(user_type, carrier)
    ts_type = types[options.ts_col]
    times = _day_expr(pl.col(options.ts_col), ts_type, carrier)
    day = (times.local if isinstance(ts_type, pl.Date) else times.local.dt.date()).cast(pl.Int32)
    behaviour = _behaviour_expr(types[options.behaviour_col], options)

    reason = (
        pl.when(pl.col(MALFORMED) if malformed else pl.lit(False)).then(7)
        .when(pl.col(options.user_col).is_null()).then(1)
        .when(pl.col(options.ts_col).is_null()).then(2)
        .when(times.unparseable | day.is_null()).then(3)
        .when((day < MIN_DAY) | (day > MAX_DAY)).then(4)
        .when(pl.col(options.behaviour_col).is_null()).then(5)
        .when(behaviour.is_null()).then(6)
        .otherwise(0)
    )  # fmt: skip
    columns = [
        user_expr.alias(_USER),
        day.alias(_DAY),
        behaviour.alias(_BEHAVIOUR),
        reason.cast(pl.UInt8).alias(_REASON),
    ]
    outside: pl.Expr | None = None
    if options.start is not None:
        outside = day < (options.start - _EPOCH).days
    if options.end is not None:
        after = day > (options.end - _EPOCH).days
        outside = after if outside is None else outside | after
    if outside is not None:
        columns.append(outside.fill_null(False).alias(_OUTSIDE))
    counted = {}
    for key, name in ((_ITEM, options.item_col), (_CATEGORY, options.category_col)):
        if name is not None and name in types:
            counted[key] = name
            columns.append(pl.col(name).alias(key))

    try:
        frame = lf.select(columns).collect()
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"cannot cast the input columns: {exc}", reason="bad_value") from exc
    except pl.exceptions.SchemaError as exc:
        raise SchemaError(f"the input's parts disagree on column types: {exc}") from exc
    except pl.exceptions.ComputeError as exc:
        error = DataError(f"cannot read the input: {_first_line(exc)}", reason="unreadable_input")
        error.__cause__ = exc
        raise _CsvParseError(error) from exc
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        message = f"cannot read the input: {_first_line(exc)}"
        raise DataError(message, reason="unreadable_input") from exc
    return _split(frame, lf, options, carrier, id_kind, counted, malformed)


def _split(
    frame: pl.DataFrame,
    lf: pl.LazyFrame,
    options: FunnelOptions,
    carrier: ScoreConfig,
    id_kind: str,
    counted: dict[str, str],
    malformed: dict[int, tuple[int, int, int]],
) -> PreparedEvents:
    rows_read = frame.height
    reasons = frame.get_column(_REASON)
    bad, n_bad, rejected_by_reason = tally_rejects(reasons, EVENT_REJECT_REASONS)
    rejects = None
    if n_bad:
        first = int(bad.arg_true()[0])
        if options.on_error == "raise":
            raise _data_error(lf, options, carrier, first, int(reasons[first]), n_bad, malformed)
        rejects = _rejects_table(lf, options, reasons)
    keep = ~bad
    rows_outside = 0
    if _OUTSIDE in frame.columns:
        outside = frame.get_column(_OUTSIDE) & keep
        rows_outside = int(outside.sum())
        keep = keep & ~outside
    if n_bad or rows_outside:
        frame = frame.filter(keep)

    days = frame.get_column(_DAY)
    prepared = PreparedEvents(
        n_rows=frame.height,
        user_segments=[],
        user_base=0,
        n_users=0,
        day_segments=[],
        behaviour_segments=[],
        min_day=None if days.is_empty() else int(days.min()),  # type: ignore[arg-type]
        max_day=None if days.is_empty() else int(days.max()),  # type: ignore[arg-type]
        items=frame.get_column(_ITEM) if _ITEM in counted else None,
        categories=frame.get_column(_CATEGORY) if _CATEGORY in counted else None,
        rows_read=rows_read,
        rows_outside_period=rows_outside,
        rejected_by_reason=rejected_by_reason,
        rejects=rejects,
    )
    _to_segments(prepared, frame.select(_USER, _DAY, _BEHAVIOUR), id_kind)
    return prepared


def _to_segments(prepared: PreparedEvents, frame: pl.DataFrame, id_kind: str) -> None:
    if frame.height == 0:
        return
    direct = False
    if id_kind == "int":
        users = frame.get_column(_USER)
        low, high = int(users.min()), int(users.max())  # type: ignore[arg-type]
        span = high - low + 1
        direct = span <= max(_DIRECT_RANGE, 2 * frame.height) and span <= _MAX_USERS
    table = frame.to_arrow()
    if direct:
        prepared.user_base = low
        prepared.n_users = span
    else:
        indices, dictionary, _ = _dictionary(table.column(0))
        if len(dictionary) > _MAX_USERS:
            raise DataError(
                f"more than {_MAX_USERS:,} distinct users: count the funnel in parts",
                reason="too_many_users",
            )
        table = table.set_column(0, _USER, indices)
        prepared.n_users = len(dictionary)
    # record batches share chunk boundaries across columns: aligned, zero-copy views
    for batch in table.to_batches():
        if batch.num_rows == 0:
            continue
        prepared.user_segments.append(_view(batch.column(0)))
        prepared.day_segments.append(_view(batch.column(1)))
        prepared.behaviour_segments.append(_view(batch.column(2)))


def _data_error(
    lf: pl.LazyFrame,
    options: FunnelOptions,
    carrier: ScoreConfig,
    row: int,
    code: int,
    n_bad: int,
    malformed: dict[int, tuple[int, int, int]],
) -> DataError:
    reason, role = EVENT_REJECT_REASONS[code]
    column = {"user": options.user_col, "ts": options.ts_col,
              "behaviour": options.behaviour_col}.get(role)  # fmt: skip
    detail = ""
    if reason == "unknown_behaviour":
        detail = (
            f"; the values must be one of {', '.join(BEHAVIOURS)} (exactly, in lower case); "
            f"unknown values include {_unknown_values(lf, options)}"
        )
    return bad_row_error(
        reason=reason, column=column, row=row, n_bad=n_bad,
        advice="fix the input or pass on_error='quarantine' to count the rest and get the bad "
        "rows in FunnelResult.rejects",
        example=lambda: _example_row(lf, carrier, row),
        malformed=malformed.get(row) if role == "line" else None, detail=detail,
    )  # fmt: skip


def _unknown_values(lf: pl.LazyFrame, options: FunnelOptions, limit: int = 5) -> str:
    """Up to ``limit`` distinct unknown behaviour values, for the message."""
    value = pl.col("value")
    try:
        values = (
            lf.select(pl.col(options.behaviour_col).cast(pl.String).alias("value"))
            .filter(value.is_not_null() & ~value.is_in(list(BEHAVIOURS)))
            .unique(maintain_order=True)
            .head(limit)
            .collect()
            .to_series()
            .to_list()
        )
    except (Exception, pl.exceptions.PanicException):  # the message matters more
        return "(could not list them)"
    return ", ".join(repr(v) for v in values)


def _rejects_table(lf: pl.LazyFrame, options: FunnelOptions, reasons: pl.Series) -> pl.DataFrame:
    return rejects_table(lf, input_columns(options), EVENT_REJECT_REASONS, reasons)


def input_columns(options: FunnelOptions) -> list[str]:
    """The input columns a reject shows: user, ts and behaviour."""
    return [options.user_col, options.ts_col, options.behaviour_col]
