"""Clean in-memory Arrow logs prepared without Polars (the fast path of a read).

``prepare`` runs one Polars query for every input: casts, a day number per
row (a Datetime -> Date cast), a reject reason per row, the as_of filter.
For the common case of a clean pyarrow table none of that changes anything
but the day, so :func:`fast_prepare` builds the same :class:`Prepared` from
the Arrow buffers: one parallel pass (``_days.scan_days``) writes the days
into one int32 array and finds the first and last day and whether every
float amount is finite; ids and amounts are zero-copy views of the Arrow
buffers. Whenever anything is unusual (a type other than the plain ones, a
null, a non-finite amount, a day out of range, a row after as_of, a datetime
as_of, categories) it returns ``None`` and the caller runs ``prepare`` as
before, so errors, rejects and results are exactly those of the plain path.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa

from . import _days, _kernel
from ._prepare import MAX_DAY, MIN_DAY, PreboundIds, Prepared, _check_tz, _string_chunks, _view
from ._threads import kernel_threads
from .config import ScoreConfig
from .errors import ConfigError, KernelError

__all__ = ["ENABLED", "fast_prepare"]

#: tests switch the fast path off to compare it with the plain path
ENABLED = True

_EPOCH = dt.date(1970, 1, 1)


def fast_prepare(
    table: pa.Table,
    config: ScoreConfig,
    as_of: dt.date | dt.datetime | None,
    prebound: PreboundIds | None = None,
) -> Prepared | None:
    """``prepare(from_arrow_table(table), config, as_of, prebound=prebound)``
    for a clean table, without Polars; ``None`` when the table is not one
    (the caller then runs ``prepare``, which reports or rejects what it must).

    ``prebound``: the customer column holds the int32 ranks of
    :func:`._prebound.prebind_ids`.
    """
    if not ENABLED or not _plain_shape(table, config, as_of):
        return None
    id_type = table.schema.field(config.customer_col).type
    keyed = prebound is None and _is_string(id_type)  # string ids as int64 keys, if they fit
    if prebound is not None:
        ids_ok = pa.types.is_int32(id_type)
    else:
        ids_ok = keyed or pa.types.is_int64(id_type)
    amount_type = table.schema.field(config.amount_col).type
    unit = _ts_unit(table.schema.field(config.ts_col).type, config)
    if (
        not ids_ok
        or unit is None
        or not (pa.types.is_float64(amount_type) or pa.types.is_int64(amount_type))
    ):
        return None
    names = [config.customer_col, config.ts_col, config.amount_col]
    if any(table.column(name).null_count for name in names):
        return None
    integer_amounts = pa.types.is_int64(amount_type)
    n_rows = table.num_rows
    threads = kernel_threads(config, n_rows)
    key_plan = None
    if keyed:
        try:
            chunks = _string_chunks(table.column(config.customer_col))
            key_plan = _kernel.string_key_plan(chunks, threads)
        except (KernelError, ValueError):  # offsets outside their buffers: Polars judges them
            return None
        if key_plan is None:  # too long or too varied: ranked instead
            return None

    # record batches share chunk boundaries across columns: aligned, zero-copy
    batches = [b for b in table.select(names).to_batches() if b.num_rows]
    if keyed:
        ids = []
    else:
        ids = [_view(b.column(0), np.int32 if prebound is not None else np.int64) for b in batches]
    ts = [_view(b.column(1), np.int32 if unit == "days" else np.int64) for b in batches]
    amount_bits = [_view(b.column(2), np.int64) for b in batches]
    days = None if unit == "days" else np.empty(n_rows, dtype=np.int32)
    first, last, finite = _days.scan_days(
        ts, None if integer_amounts else amount_bits, days, unit, threads
    )
    if first < MIN_DAY or last > MAX_DAY or not finite:
        return None
    if isinstance(as_of, dt.date):
        as_of_day = (as_of - _EPOCH).days
        if last > as_of_day:  # the plain path counts and drops those rows
            return None
        as_of_report = as_of
    else:
        as_of_day = last
        as_of_report = _EPOCH + dt.timedelta(days=last)
    day_segments = ts if days is None else _slices(days, ts)
    if key_plan is not None:
        keys = np.empty(n_rows, dtype=np.int64)
        _kernel.string_keys(keys, key_plan, chunks, threads)
        ids = _slices(keys, ts)
    return Prepared(
        n_rows=n_rows,
        id_kind="int" if prebound is None and not keyed else "string",
        id_dtype=pl.Int64() if prebound is None and not keyed else pl.String(),
        id_segments=ids,
        id_dictionary=None if prebound is None else prebound.dictionary,
        id_rank_of_code=None,
        day_segments=day_segments,
        amount_bits=amount_bits,
        integer_amounts=integer_amounts,
        cat_segments=None,
        categories=None,
        cat_dtype=None,
        as_of=as_of_report,
        as_of_day=as_of_day,
        rows_read=n_rows,
        rows_after_as_of=0,
        rejected_by_reason={},
        rejects=None,
        id_key_plan=key_plan,
    )


def _slices(values: np.ndarray, segments: list[np.ndarray]) -> list[np.ndarray]:
    """``values`` cut into views as long as the segments, in order."""
    views, start = [], 0
    for segment in segments:
        views.append(values[start : start + len(segment)])
        start += len(segment)
    return views


def _is_string(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
    )  # fmt: skip


def _plain_shape(table: pa.Table, config: ScoreConfig, as_of: object) -> bool:
    """No categories, a date or no as_of, rows to score, a valid zone, and
    columns Polars reads as they are (so the plain path would not fail on
    the table as a whole): each name once, the needed ones among them."""
    if config.category_col is not None or isinstance(as_of, dt.datetime):
        return False
    if as_of is not None and not isinstance(as_of, dt.date):
        return False
    if table.num_rows == 0:
        return False
    names = table.column_names
    needed = {config.customer_col, config.ts_col, config.amount_col}
    if len(set(names)) != len(names) or len(needed) != 3 or not needed <= set(names):
        return False
    if not all(_polars_reads(field.type) for field in table.schema):
        return False
    try:
        _check_tz(config.tz)
    except ConfigError:  # the plain path reports it
        return False
    return True


def _polars_reads(kind: pa.DataType) -> bool:
    """Types Polars takes from Arrow without question (others: plain path)."""
    if pa.types.is_timestamp(kind):
        return kind.tz is None or kind.tz == "UTC"
    if pa.types.is_dictionary(kind):
        value = kind.value_type
        return pa.types.is_string(value) or pa.types.is_large_string(value)
    return bool(
        pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind) or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind) or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind) or pa.types.is_date32(kind)
    )  # fmt: skip


def _ts_unit(kind: pa.DataType, config: ScoreConfig) -> str | None:
    """How the day of a ts value is its value floor-divided: "days" for
    date32, the unit for a naive timestamp (wall-clock time in ``config.tz``)
    or a UTC one scored in UTC; ``None`` otherwise."""
    if pa.types.is_date32(kind):
        return "days"
    if not pa.types.is_timestamp(kind):
        return None
    if kind.tz is not None and not (kind.tz == "UTC" and config.tz == "UTC"):
        return None
    return str(kind.unit)
