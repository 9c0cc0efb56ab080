"""Validation, casting, rejects, day numbers and id encoding.

One Polars query reads the needed columns, casts them, computes each row's
day number in the scoring time zone and a reject reason code. The accepted
rows are then handed to the kernel as aligned Arrow record batches viewed as
NumPy arrays (no copies of the id, day or amount buffers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from . import _kernel
from ._csv import MALFORMED, read_csv_leniently
from .config import ScoreConfig
from .errors import ConfigError, DataError, SchemaError

__all__ = ["REJECT_REASONS", "PreboundIds", "Prepared", "parse_as_of", "prepare"]

_EPOCH = dt.date(1970, 1, 1)
TimeUnit = Literal["ns", "us", "ms"]
_ID, _DAY, _AMOUNT, _CAT = "__churn_id", "__churn_day", "__churn_amount", "__churn_cat"
_REASON, _AFTER, _ROW = "__churn_reason", "__churn_after", "__churn_row"

#: reason code -> (machine-readable reason, which column it is about)
REJECT_REASONS: dict[int, tuple[str, str]] = {
    1: ("null_customer_id", "customer"),
    2: ("null_ts", "ts"),
    3: ("unparseable_ts", "ts"),
    4: ("null_amount", "amount"),
    5: ("nan_amount", "amount"),
    6: ("infinite_amount", "amount"),
    7: ("null_category", "category"),
    8: ("unparseable_amount", "amount"),
    9: ("malformed_csv_line", "line"),
    10: ("ts_out_of_range", "ts"),
}

#: days representable as dates everywhere (Python's date: years 1..9999)
MIN_DAY = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
MAX_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days

_INTEGER_TYPES = (
    pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
)  # fmt: skip
_STRING_TYPES = (pl.String, pl.Categorical, pl.Enum)


@dataclasses.dataclass(frozen=True)
class PreboundIds:
    """String customer ids already ranked (:mod:`._prebound`): the source's
    ``column`` holds each row's int32 rank into ``dictionary`` instead."""

    column: str
    dtype: pl.DataType  # the ids' own type, as Polars would have read them
    dictionary: pl.Series  # the distinct ids in ascending byte order: rank -> id


@dataclasses.dataclass
class Prepared:
    """Accepted rows as kernel inputs, plus what the run must report."""

    n_rows: int
    id_kind: str  # "int", "uint64" or "string"
    id_dtype: pl.DataType
    #: int64 ids ("int"/"uint64"); "string": int32 ranks, or int64 keys with id_key_plan
    id_segments: list[np.ndarray]
    id_dictionary: pl.Series | None  # string ids: distinct values in ascending byte order
    #: dictionary code -> rank when id_segments hold codes; None: they hold ranks
    id_rank_of_code: np.ndarray | None
    day_segments: list[np.ndarray]  # int32 days since 1970-01-01 in tz
    amount_bits: list[np.ndarray]  # int64 views of int64 or float64 amounts
    integer_amounts: bool
    cat_segments: list[np.ndarray] | None  # int32 rank of the category
    categories: pl.Series | None  # distinct categories, ascending
    cat_dtype: pl.DataType | None
    as_of: dt.date | dt.datetime | None
    as_of_day: int | None
    rows_read: int
    rows_after_as_of: int
    rejected_by_reason: dict[str, int]
    rejects: pl.DataFrame | None
    #: string ids as int64 keys (:func:`string_keys`): id_segments hold the
    #: keys, which order like the ids, and this plan decodes them
    id_key_plan: np.ndarray | None = None
    #: with ``prepare(..., keep=...)``: the accepted rows (input position, id,
    #: day, amount, category and the kept columns as read) instead of segments
    rows: pl.DataFrame | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def drop_row_arrays(self) -> None:
        """Forget the per-row kernel inputs once the kernel has copied them
        (a score needs only the dictionaries and counts afterwards), so their
        memory can go before the output is built."""
        self.id_segments = []
        self.day_segments = []
        self.amount_bits = []
        if self.cat_segments is not None:
            self.cat_segments = []


def parse_as_of(as_of: Any) -> dt.date | dt.datetime | None:
    """``None``, a date, a datetime or an ISO string (date when it has no time)."""
    if as_of is None or isinstance(as_of, dt.date):
        return as_of
    if isinstance(as_of, str):
        text = as_of.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"as_of: cannot parse {as_of!r}; use YYYY-MM-DD or an ISO datetime"
            ) from None
    raise ConfigError(f"as_of must be a date, datetime or ISO string, got {type(as_of).__name__}")


def _local_naive(value: dt.datetime, tz: str) -> dt.datetime:
    """A datetime as wall-clock time in ``tz`` (naive values are already in tz)."""
    if value.tzinfo is None:
        return value
    series = pl.Series([value]).dt.convert_time_zone(tz).dt.replace_time_zone(None)
    result = series[0]
    assert isinstance(result, dt.datetime)
    return result


def _instant_us(value: dt.datetime, tz: str) -> int:
    """Microseconds since the epoch of ``value``; a naive value is wall time in
    ``tz`` (at a DST fold its first occurrence)."""
    series = pl.Series([value])
    if value.tzinfo is None:
        series = series.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    instant = series.dt.epoch("us")[0]
    if instant is None:
        raise ConfigError(f"as_of: {value} does not exist in time zone {tz!r} (DST gap)")
    return int(instant)


def _check_tz(tz: str) -> None:
    try:
        pl.Series([dt.datetime(2000, 1, 1)]).dt.replace_time_zone(tz)
    except Exception:
        raise ConfigError(
            f"tz: unknown time zone {tz!r} (use an IANA name such as 'UTC')"
        ) from None


def _column_types(
    lf: pl.LazyFrame, config: ScoreConfig, keep: Mapping[str, str] | None = None
) -> dict[str, pl.DataType]:
    try:
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the input: {exc}", reason="unreadable_input") from exc
    wanted = {
        "customer_col": config.customer_col,
        "ts_col": config.ts_col,
        "amount_col": config.amount_col,
    }
    if config.category_col is not None:
        wanted["category_col"] = config.category_col
    wanted.update(keep or {})
    missing = [f"{name!r} ({option})" for option, name in wanted.items() if name not in schema]
    if missing:
        raise SchemaError(
            f"missing column {', '.join(missing)}; the input has {list(schema.names())}"
        )
    return {name: schema[name] for name in wanted.values()}


@dataclasses.dataclass
class _Times:
    """Expressions over the ts column."""

    local: pl.Expr  # wall-clock datetime (or date) in the scoring zone
    unparseable: pl.Expr  # text that is not a timestamp
    instant: pl.Expr | None  # epoch µs (ns for ns columns) where the value is an instant
    unit: TimeUnit = "us"  # time unit of `local`


def _day_expr(ts: pl.Expr, dtype: pl.DataType, config: ScoreConfig) -> _Times:
    name = config.ts_col
    if isinstance(dtype, pl.Date):
        return _Times(ts, pl.lit(False), None)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return _Times(ts, pl.lit(False), None, dtype.time_unit)
        local = ts.dt.convert_time_zone(config.tz).dt.replace_time_zone(None)
        epoch_unit: TimeUnit = "ns" if dtype.time_unit == "ns" else "us"
        return _Times(local, pl.lit(False), ts.dt.epoch(epoch_unit), dtype.time_unit)
    if isinstance(dtype, _INTEGER_TYPES):
        if config.ts_unit is None:
            raise SchemaError(
                f"column {name!r} holds integers ({dtype}); pass ts_unit='s', 'ms', 'us' "
                "or 'ns' to read them as epoch timestamps (UTC)"
            )
        instant = pl.from_epoch(ts.cast(pl.Int64), time_unit=config.ts_unit)
        local = (
            instant.dt.replace_time_zone("UTC")
            .dt.convert_time_zone(config.tz)
            .dt.replace_time_zone(None)
        )
        unit: TimeUnit = "ns" if config.ts_unit == "ns" else "us"
        return _Times(local, pl.lit(False), instant.dt.epoch(unit), unit)
    if isinstance(dtype, pl.String):
        return _parse_text_ts(ts, config.tz)
    raise SchemaError(
        f"column {name!r} (timestamps) must be a date, datetime, integer epoch or string, "
        f"got {dtype}"
    )


#: accepted text timestamps (after "Z" -> "+00:00" and " " -> "T")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_OFFSET_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"


def _parse_text_ts(ts: pl.Expr, tz: str) -> _Times:
    """ISO-8601 text: values with an offset are instants (converted to tz, so
    mixed offsets are fine); values without one are wall-clock time in tz."""
    text = ts.str.strip_chars().str.replace(r"Z$", "+00:00").str.replace(" ", "T")
    instant = text.str.strptime(pl.Datetime("us", "UTC"), _OFFSET_FORMAT, strict=False)
    aware = instant.dt.convert_time_zone(tz).dt.replace_time_zone(None)
    naive = [text.str.strptime(pl.Datetime("us"), f, strict=False) for f in _NAIVE_FORMATS]
    local = pl.coalesce(aware, *naive)
    return _Times(local, ts.is_not_null() & local.is_null(), instant.dt.epoch("us"))


def _id_expr(dtype: pl.DataType, config: ScoreConfig) -> tuple[pl.Expr, str]:
    col = pl.col(config.customer_col)
    if isinstance(dtype, pl.UInt64):
        return col, "uint64"
    if isinstance(dtype, _INTEGER_TYPES):
        return col.cast(pl.Int64), "int"
    if isinstance(dtype, _STRING_TYPES):
        return col.cast(pl.String), "string"
    raise SchemaError(
        f"column {config.customer_col!r} (customer ids) must be integer or string, got {dtype}"
    )


def _amount_expr(dtype: pl.DataType, config: ScoreConfig) -> tuple[pl.Expr, bool]:
    col = pl.col(config.amount_col)
    if isinstance(dtype, _INTEGER_TYPES):
        return col.cast(pl.Int64, strict=True), True
    if isinstance(dtype, (pl.Float32, pl.Float64, pl.Decimal)):
        return col.cast(pl.Float64), False
    if isinstance(dtype, pl.String):
        # text (CSV): numbers are parsed, anything else is rejected as unparseable
        return col.str.strip_chars().cast(pl.Float64, strict=False), False
    raise SchemaError(
        f"column {config.amount_col!r} (amounts) must be integer, float or numeric text, "
        f"got {dtype}"
    )


def _category_expr(dtype: pl.DataType, config: ScoreConfig) -> pl.Expr:
    assert config.category_col is not None
    col = pl.col(config.category_col)
    if isinstance(dtype, _STRING_TYPES):
        return col.cast(pl.String)
    if isinstance(dtype, _INTEGER_TYPES):
        return col
    raise SchemaError(
        f"column {config.category_col!r} (categories) must be string or integer, got {dtype}"
    )


def prepare(
    lf: pl.LazyFrame,
    config: ScoreConfig,
    as_of: dt.date | dt.datetime | None,
    csv_path: pathlib.Path | None = None,
    *,
    keep: Mapping[str, str] | None = None,
    prebound: PreboundIds | None = None,
) -> Prepared:
    """Read, validate and encode the source; raise or quarantine bad rows.

    ``csv_path``: the source is this CSV file; if Polars cannot parse it, it
    is read again line by line so malformed lines can be named or rejected.
    ``keep``: more input columns to carry along (option name -> column name,
    the option naming the column in a missing-column error); the accepted
    rows are then returned as the frame ``Prepared.rows`` and no kernel
    segments are built.
    ``prebound``: the customer column of ``lf`` holds ranks into these ids
    (not with ``keep``); they are decoded wherever rows are shown.
    """
    _check_tz(config.tz)
    if prebound is not None and (keep is not None or csv_path is not None):
        raise AssertionError("prebound ids come from Arrow inputs, without keep")
    try:
        return _prepare(lf, config, as_of, {}, keep, prebound)
    except _CsvParseError as failure:
        if csv_path is None:
            raise failure.error from failure.error.__cause__
    lenient = read_csv_leniently(csv_path, "\t" if csv_path.suffix.lower() == ".tsv" else ",")
    return _prepare(lenient.frame, config, as_of, lenient.malformed, keep)


class _CsvParseError(Exception):
    def __init__(self, error: DataError) -> None:
        super().__init__(str(error))
        self.error = error


def _prepare(
    lf: pl.LazyFrame,
    config: ScoreConfig,
    as_of: dt.date | dt.datetime | None,
    malformed: dict[int, tuple[int, int, int]],
    keep: Mapping[str, str] | None = None,
    prebound: PreboundIds | None = None,
) -> Prepared:
    types = _column_types(lf, config, keep)
    if prebound is None:
        id_expr, id_kind = _id_expr(types[config.customer_col], config)
    else:
        types[config.customer_col] = prebound.dtype
        id_expr, id_kind = pl.col(config.customer_col), "string"
    amount, integer_amounts = _amount_expr(types[config.amount_col], config)
    ts_type = types[config.ts_col]
    times = _day_expr(pl.col(config.ts_col), ts_type, config)
    local, unparseable = times.local, times.unparseable
    day = (local if isinstance(ts_type, pl.Date) else local.dt.date()).cast(pl.Int32)

    reason = (
        pl.when(pl.col(MALFORMED) if malformed else pl.lit(False)).then(9)
        .when(pl.col(config.customer_col).is_null()).then(1)
        .when(pl.col(config.ts_col).is_null()).then(2)
        .when(unparseable | day.is_null()).then(3)
        .when((day < MIN_DAY) | (day > MAX_DAY)).then(10)
        .when(pl.col(config.amount_col).is_null()).then(4)
    )  # fmt: skip
    if isinstance(types[config.amount_col], pl.String):
        reason = reason.when(amount.is_null()).then(8)
    if not integer_amounts:
        reason = reason.when(amount.is_nan()).then(5).when(amount.is_infinite()).then(6)
    columns = [id_expr.alias(_ID), day.alias(_DAY), amount.alias(_AMOUNT)]
    if config.category_col is not None:
        columns.append(_category_expr(types[config.category_col], config).alias(_CAT))
        reason = reason.when(pl.col(config.category_col).is_null()).then(7)
    columns.append(reason.otherwise(0).cast(pl.UInt8).alias(_REASON))
    if keep is not None:
        columns.append(pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW))
        columns.extend(pl.col(name) for name in dict.fromkeys(keep.values()))

    as_of_local: dt.date | dt.datetime | None = None
    if isinstance(as_of, dt.datetime):
        as_of_local = _local_naive(as_of, config.tz)
        if isinstance(ts_type, pl.Date):
            after = day > as_of_local.date()
        else:
            # compare in the column's own unit: a µs literal would truncate ns values
            after = local > pl.lit(as_of_local, dtype=pl.Datetime(times.unit))
            if times.instant is not None:
                # instants compare as instants: wall times repeat at a DST fold
                cutoff = _instant_us(as_of, config.tz) * (1000 if times.unit == "ns" else 1)
                after = (
                    pl.when(times.instant.is_not_null())
                    .then(times.instant > cutoff)
                    .otherwise(after)
                )  # fmt: skip
        columns.append(after.fill_null(False).alias(_AFTER))
    elif isinstance(as_of, dt.date):
        as_of_local = as_of
        columns.append((day > (as_of - _EPOCH).days).fill_null(False).alias(_AFTER))

    try:
        frame = lf.select(columns).collect()
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"cannot cast the input columns: {exc}", reason="bad_value") from exc
    except pl.exceptions.SchemaError as exc:
        # e.g. several files whose columns have different types
        raise SchemaError(f"the input's parts disagree on column types: {exc}") from exc
    except pl.exceptions.ComputeError as exc:
        error = DataError(f"cannot read the input: {_first_line(exc)}", reason="unreadable_input")
        error.__cause__ = exc
        raise _CsvParseError(error) from exc
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        message = f"cannot read the input: {_first_line(exc)}"
        raise DataError(message, reason="unreadable_input") from exc
    return _split(
        frame, lf, config, as_of, as_of_local, id_kind, integer_amounts, types, malformed,
        keep is not None, prebound,
    )  # fmt: skip


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _split(
    frame: pl.DataFrame,
    lf: pl.LazyFrame,
    config: ScoreConfig,
    as_of: dt.date | dt.datetime | None,
    as_of_local: dt.date | dt.datetime | None,
    id_kind: str,
    integer_amounts: bool,
    types: dict[str, pl.DataType],
    malformed: dict[int, tuple[int, int, int]],
    rows_only: bool = False,
    prebound: PreboundIds | None = None,
) -> Prepared:
    rows_read = frame.height
    reasons = frame.get_column(_REASON)
    bad, n_bad, rejected_by_reason = tally_rejects(reasons, REJECT_REASONS)
    rejects = None
    if n_bad:
        first = int(bad.arg_true()[0])
        if config.on_error == "raise":
            raise _data_error(lf, config, first, int(reasons[first]), n_bad, malformed, prebound)
        rejects = _rejects_table(lf, config, reasons, prebound)
    keep = ~bad
    rows_after = 0
    if _AFTER in frame.columns:
        after = frame.get_column(_AFTER) & keep
        rows_after = int(after.sum())
        keep = keep & ~after
    if n_bad or rows_after:
        frame = frame.filter(keep)

    days = frame.get_column(_DAY)
    if as_of_local is None:
        as_of_day = None if days.is_empty() else int(days.max())  # type: ignore[arg-type]
        as_of_report: dt.date | dt.datetime | None = (
            None if as_of_day is None else _EPOCH + dt.timedelta(days=as_of_day)
        )
    else:
        day_of = as_of_local.date() if isinstance(as_of_local, dt.datetime) else as_of_local
        as_of_day = (day_of - _EPOCH).days
        as_of_report = as_of

    prepared = Prepared(
        n_rows=frame.height,
        id_kind=id_kind,
        id_dtype=types[config.customer_col],  # Categorical/Enum ids stay so
        id_segments=[],
        id_dictionary=None,
        id_rank_of_code=None,
        day_segments=[],
        amount_bits=[],
        integer_amounts=integer_amounts,
        cat_segments=None,
        categories=None,
        cat_dtype=None,
        as_of=as_of_report,
        as_of_day=as_of_day,
        rows_read=rows_read,
        rows_after_as_of=rows_after,
        rejected_by_reason=rejected_by_reason,
        rejects=rejects,
    )
    if rows_only:
        prepared.rows = frame.drop(_REASON, _AFTER, strict=False)
        return prepared
    _to_segments(prepared, frame, config, types, prebound)
    return prepared


def _dictionary(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.Array, np.ndarray]:
    """Dictionary-encode; returns (indices, dictionary, rank of each dictionary entry)."""
    encoded = pc.dictionary_encode(column)
    if encoded.num_chunks:
        # pyarrow encodes a chunked array with one memo table, so every chunk
        # usually shares one dictionary; unify only when they do not (unifying
        # 50 chunks of a million-entry dictionary costs seconds)
        dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
        if not all(_same_array(c.dictionary, dictionary) for c in encoded.chunks):
            encoded = encoded.unify_dictionaries()
            dictionary = encoded.chunk(0).dictionary
    else:
        dictionary = pa.array([], type=column.type)
    indices = pa.chunked_array([c.indices for c in encoded.chunks], type=pa.int32())
    # Polars sorts strings (by their UTF-8 bytes) several times faster than pyarrow
    order = pl.Series(dictionary).arg_sort().to_numpy()
    rank = np.empty(len(dictionary), dtype=np.int32)
    rank[order] = np.arange(len(dictionary), dtype=np.int32)
    return indices, dictionary.take(pa.array(order)), rank


def encode_strings(
    column: pa.ChunkedArray, threads: int, *, nulls: bool = False
) -> tuple[np.ndarray, pa.LargeStringArray]:
    """Rank null-free strings in ascending UTF-8 byte order, in the kernel.

    Returns (int32 rank of every row, the distinct strings in rank order).
    Much faster than pyarrow's ``dictionary_encode`` plus a sort of the
    dictionary: the kernel reads the Arrow buffers in place, hashes into
    cache-sized partitions and sorts only the distinct strings.
    ``nulls``: the column may hold nulls; each is ranked as "" (which then
    is in the dictionary), the caller masks their ranks.
    """
    ranks = np.empty(len(column), dtype=np.int32)
    offsets, data = _kernel.encode_strings(ranks, _string_chunks(column, nulls), threads)
    dictionary = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    return ranks, dictionary


def string_keys(column: pa.ChunkedArray, threads: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Null-free strings of at most 16 bytes as int64 keys in their byte order.

    Returns (the key of every row, the plan that decodes keys back into
    strings: :func:`decode_string_keys`), or None when the strings do not fit
    (one longer than 16 bytes, or more than 63 bits that vary among them:
    :func:`encode_strings` ranks those). Two passes over the column, no hash
    table and no sort: the kernel then groups the keys as integer ids.
    """
    chunks = _string_chunks(column)
    plan = _kernel.string_key_plan(chunks, threads)
    if plan is None:
        return None
    keys = np.empty(len(column), dtype=np.int64)
    _kernel.string_keys(keys, plan, chunks, threads)
    return keys, plan


def decode_string_keys(keys: np.ndarray, plan: np.ndarray, threads: int = 1) -> pa.Array:
    """The strings whose :func:`string_keys` are ``keys``, as a string_view
    array (what Polars takes without a copy)."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    views, data = _kernel.string_keys_decode(keys, plan, threads)
    buffers = [None, pa.py_buffer(views), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string_view(), len(keys), buffers, null_count=0)


_EMPTY_BYTES = np.empty(0, dtype=np.uint8)


def _bytes(buffer: pa.Buffer | None) -> np.ndarray:
    return _EMPTY_BYTES if buffer is None else np.frombuffer(buffer, dtype=np.uint8)


StringChunk = tuple[int, int, np.ndarray, list[np.ndarray]]


def _string_chunks(column: pa.ChunkedArray, nulls: bool = False) -> list[StringChunk]:
    """The kernel's view of each chunk: (kind, length, offsets or views, data buffers).

    ``nulls``: null slots are allowed and read as "" (the Arrow format leaves
    their bytes undefined).
    """
    chunks: list[StringChunk] = []
    for array in column.chunks:
        if array.null_count:
            if not nulls:
                raise AssertionError("accepted rows have no nulls")
            array = _empty_null_slots(array)
        n = len(array)
        if n == 0:
            continue
        kind = array.type
        if pa.types.is_dictionary(kind):
            array = array.dictionary_decode()
            kind = array.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_string_view(kind)):  # fmt: skip
            array = array.cast(pa.large_string())
            kind = array.type
        buffers = array.buffers()
        if pa.types.is_string_view(kind):
            views = np.frombuffer(
                buffers[1], dtype=np.uint8, count=16 * n, offset=16 * array.offset
            )
            chunks.append((_kernel.STRING_VIEW, n, views, [_bytes(b) for b in buffers[2:]]))
            continue
        width, code = (
            (4, _kernel.STRING_UTF8) if pa.types.is_string(kind) else (8, _kernel.STRING_LARGE_UTF8)
        )
        offsets = np.frombuffer(
            buffers[1], dtype=np.int32 if width == 4 else np.int64, count=n + 1,
            offset=width * array.offset,
        )  # fmt: skip
        chunks.append((code, n, offsets, [_bytes(buffers[2])]))
    return chunks


def _empty_null_slots(array: pa.Array) -> pa.Array:
    """``array`` (with nulls) whose null slots span no bytes: zeroed views (a
    copy of the views only), or offsets as they are when they already do."""
    n = len(array)
    valid = pc.is_valid(array)
    bits = np.frombuffer(valid.buffers()[1], dtype=np.uint8)
    null = ~np.unpackbits(bits, count=valid.offset + n, bitorder="little")[valid.offset :].view(
        np.bool_
    )
    buffers = array.buffers()
    if pa.types.is_string_view(array.type):
        views = np.frombuffer(buffers[1], dtype=np.uint8, count=16 * n, offset=16 * array.offset)
        views = views.reshape(n, 16).copy()
        views[null] = 0  # length 0, inline: ""
        return pa.Array.from_buffers(array.type, n, [None, pa.py_buffer(views), *buffers[2:]])
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        width = 4 if pa.types.is_string(array.type) else 8
        offsets = np.frombuffer(
            buffers[1], dtype=np.int32 if width == 4 else np.int64, count=n + 1,
            offset=width * array.offset,
        )  # fmt: skip
        if not np.diff(offsets)[null].any():
            return array
    return pc.fill_null(array, "")


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and x.address == y.address)
        for x, y in zip(a.buffers(), b.buffers(), strict=True)
    )


def _to_segments(
    prepared: Prepared,
    frame: pl.DataFrame,
    config: ScoreConfig,
    types: dict[str, pl.DataType],
    prebound: PreboundIds | None = None,
) -> None:
    encoded = None  # string ids: int32 ranks or int64 keys, one per row
    if prebound is not None:
        # the id column holds the ranks already: read below like integer ids
        prepared.id_dictionary = prebound.dictionary
    elif prepared.id_kind == "string":
        # string views straight from Polars: no copy into large_string first
        ids = frame.select(_ID).to_arrow(compat_level=pl.CompatLevel.newest()).column(0)
        threads = 0 if config.threads is None else config.threads
        keyed = string_keys(ids, threads)
        if keyed is not None:
            encoded, prepared.id_key_plan = keyed
        else:
            encoded, dictionary = encode_strings(ids, threads)
            prepared.id_dictionary = pl.Series(config.customer_col, dictionary, dtype=pl.String)
        del ids
    names = [c for c in (_ID, _DAY, _AMOUNT, _CAT) if c in frame.columns]
    if encoded is not None:
        names.remove(_ID)
    table = frame.select(names).to_arrow()
    cat_rank = None
    if config.category_col is not None:
        index = table.column_names.index(_CAT)
        indices, dictionary, cat_rank = _dictionary(table.column(_CAT))
        table = table.set_column(index, _CAT, indices)
        prepared.categories = pl.Series(config.category_col, dictionary)
        prepared.cat_dtype = types[config.category_col]
        prepared.cat_segments = []
    # record batches share chunk boundaries across columns: aligned, zero-copy views
    start = 0
    for batch in table.to_batches():
        if batch.num_rows == 0:
            continue
        columns = dict(zip(batch.schema.names, batch.columns, strict=True))
        if encoded is not None:
            prepared.id_segments.append(encoded[start : start + batch.num_rows])
            start += batch.num_rows
        else:
            ids = _view(columns[_ID])
            if prepared.id_kind == "uint64":
                # flipping the top bit maps unsigned order onto signed order
                ids = ids.view(np.int64) ^ np.int64(-(2**63))
            prepared.id_segments.append(ids)
        prepared.day_segments.append(_view(columns[_DAY]))
        prepared.amount_bits.append(_view(columns[_AMOUNT]).view(np.int64))
        if cat_rank is not None:
            assert prepared.cat_segments is not None
            prepared.cat_segments.append(cat_rank[_view(columns[_CAT])])


def _view(array: pa.Array, as_type: type[np.generic] | None = None) -> np.ndarray:
    """The values buffer of a null-free primitive array, offset honoured, no copy;
    read as ``as_type`` (of the same width: e.g. timestamps as int64) if given.

    (pyarrow's own to_numpy would import pandas on first use: ~0.2 s per run.)
    """
    if array.null_count:
        raise AssertionError("accepted rows have no nulls")
    dtype = np.dtype(as_type or array.type.to_pandas_dtype())
    buffer = array.buffers()[1]
    offset = array.offset * dtype.itemsize
    return np.frombuffer(buffer, dtype=dtype, count=len(array), offset=offset)


def _data_error(
    lf: pl.LazyFrame,
    config: ScoreConfig,
    row: int,
    code: int,
    n_bad: int,
    malformed: dict[int, tuple[int, int, int]],
    prebound: PreboundIds | None = None,
) -> DataError:
    reason, role = REJECT_REASONS[code]
    column = {
        "customer": config.customer_col,
        "ts": config.ts_col,
        "amount": config.amount_col,
        "category": config.category_col,
    }.get(role)
    return bad_row_error(
        reason=reason, column=column, row=row, n_bad=n_bad,
        advice="fix the input or pass on_error='quarantine' to score the rest and get the bad "
        "rows in ScoreResult.rejects",
        example=lambda: _example_row(lf, config, row, prebound),
        malformed=malformed.get(row) if role == "line" else None,
    )  # fmt: skip


def bad_row_error(
    *,
    reason: str,
    column: str | None,
    row: int,
    n_bad: int,
    advice: str,
    example: Callable[[], dict[str, Any]],
    malformed: tuple[int, int, int] | None = None,
    detail: str = "",
) -> DataError:
    """The error of the first bad row: the column, the reason, the row as an
    example (or the malformed CSV line), how many rows are bad, what to do."""
    more = f" ({n_bad:,} bad rows in all)" if n_bad > 1 else ""
    if malformed is not None:
        line, found, expected = malformed
        return DataError(
            f"malformed CSV line {line} (row {row}): {found} fields where the header has "
            f"{expected}{more}; {advice}",
            reason=reason,
            row=row,
        )
    return DataError(
        f"column {column!r}: {reason.replace('_', ' ')} at row {row}: {example()}{more}{detail}; "
        f"{advice}",
        column=column,
        reason=reason,
        row=row,
    )


def _needed(config: ScoreConfig) -> list[str]:
    names = [config.customer_col, config.ts_col, config.amount_col]
    if config.category_col is not None:
        names.append(config.category_col)
    return names


def _example_row(
    lf: pl.LazyFrame, config: ScoreConfig, row: int, prebound: PreboundIds | None = None
) -> dict[str, Any]:
    example = lf.select(_needed(config)).slice(row, 1)
    try:
        return _decoded(example.collect(), prebound).row(0, named=True)
    except (Exception, pl.exceptions.PanicException):
        pass
    try:  # dates Python cannot represent: show their physical values
        physical = example.select(pl.all().to_physical()).collect()
        return _decoded(physical, prebound).row(0, named=True)
    except (Exception, pl.exceptions.PanicException):  # the message matters more
        return {}


def tally_rejects(
    reasons: pl.Series, reason_names: dict[int, tuple[str, str]]
) -> tuple[pl.Series, int, dict[str, int]]:
    """The rows with a reject code (``reasons != 0``), how many, and how many per reason."""
    bad = reasons != 0
    n_bad = int(bad.sum()) if len(reasons) else 0
    by_reason: dict[str, int] = {}
    if n_bad:
        for code, count in sorted(reasons.filter(bad).value_counts().iter_rows()):
            by_reason[reason_names[code][0]] = int(count)
    return bad, n_bad, by_reason


def _rejects_table(
    lf: pl.LazyFrame, config: ScoreConfig, reasons: pl.Series, prebound: PreboundIds | None
) -> pl.DataFrame:
    return _decoded(rejects_table(lf, _needed(config), REJECT_REASONS, reasons), prebound)


def _decoded(rows: pl.DataFrame, prebound: PreboundIds | None) -> pl.DataFrame:
    """``rows`` with prebound ids shown as the ids themselves (null ranks stay null)."""
    if prebound is None:
        return rows
    name = prebound.column
    ids = prebound.dictionary.gather(rows.get_column(name)).cast(prebound.dtype)
    return rows.with_columns(ids.alias(name))


def rejects_table(
    lf: pl.LazyFrame,
    columns: list[str],
    reason_names: dict[int, tuple[str, str]],
    reasons: pl.Series,
) -> pl.DataFrame:
    """The rejected rows (``reasons != 0``): their index, input ``columns`` and reason."""
    names = pl.Series([reason_names.get(i, ("", ""))[0] for i in range(max(reason_names) + 1)])
    bad = pl.DataFrame(
        {"row": pl.int_range(len(reasons), eager=True, dtype=pl.Int64), "code": reasons}
    ).filter(pl.col("code") != 0)
    original = (
        lf.select(columns)
        .with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .join(bad.lazy(), on="row", how="inner")
        .collect()
    )
    return (
        original.with_columns(reason=names.gather(original.get_column("code").cast(pl.Int64)))
        .drop("code")
        .sort("row")
    )
