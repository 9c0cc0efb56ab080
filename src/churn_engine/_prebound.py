"""String customer ids of Arrow inputs, ranked before Polars sees them.

Polars would turn an Arrow utf8 id column into its own string views (16
bytes a row, which its allocator keeps after the read), only for the kernel
to take them back out and rank them. For in-memory Arrow sources (pyarrow
tables, record batches and readers, Arrow C streams) the kernel ranks the
original column in place instead, and Polars gets the table with that column
replaced by the int32 ranks: zero-copy, with the column's own validity, so a
null id is still null and rejected as before. ``prepare`` then takes the
ranks as the customer keys and decodes ids wherever it shows rows (a bad
row's example, the rejects table). Paths, Polars and pandas frames keep the
plain path (Polars reads those ids as views already).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ._fastprep import fast_prepare
from ._io import arrow_table, csv_path_of, from_arrow_table, open_source
from ._prepare import PreboundIds, Prepared, encode_strings, prepare
from .config import ScoreConfig
from .errors import KernelError

__all__ = ["prebind_ids", "prepare_source"]


def prepare_source(data: Any, config: ScoreConfig, as_of: dt.date | dt.datetime | None) -> Prepared:
    """``prepare(open_source(data), config, as_of, csv_path_of(data))``, with the
    string ids of an Arrow source ranked before Polars reads it, and a clean
    Arrow source prepared without Polars (:mod:`._fastprep`)."""
    table = arrow_table(data)
    if table is None:
        return prepare(open_source(data), config, as_of, csv_path_of(data))
    # int64 ids, or string ids that fit int64 keys: no ranking, no Polars
    prepared = fast_prepare(table, config, as_of)
    if prepared is not None:
        return prepared
    prebound = prebind_ids(table, config)
    if prebound is None:
        return prepare(from_arrow_table(table), config, as_of)
    table, ids = prebound
    return fast_prepare(table, config, as_of, ids) or prepare(
        from_arrow_table(table), config, as_of, prebound=ids
    )


def prebind_ids(table: pa.Table, config: ScoreConfig) -> tuple[pa.Table, PreboundIds] | None:
    """``table`` with its string customer column replaced by int32 ranks, and
    the ids those ranks stand for; ``None`` when the column is missing,
    ambiguous or not utf8, large_utf8 or string_view (the plain path then
    reports or reads it)."""
    index = table.schema.get_field_index(config.customer_col)
    if index < 0:  # missing, or several columns of that name
        return None
    column = table.column(index)
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)):  # fmt: skip
        return None
    threads = 0 if config.threads is None else config.threads
    try:
        ranks, dictionary = encode_strings(column, threads, nulls=True)
    except (KernelError, ValueError):  # offsets outside their buffers: Polars judges them
        return None
    ids = PreboundIds(
        column=config.customer_col,
        dtype=pl.String(),
        dictionary=pl.Series(config.customer_col, dictionary, dtype=pl.String),
    )
    return table.set_column(index, table.field(index).name, _rank_column(column, ranks)), ids


def _rank_column(column: pa.ChunkedArray, ranks: np.ndarray) -> pa.ChunkedArray:
    """The ranks as int32 chunks shaped like ``column``, each over its slice of
    ``ranks`` (no copy) with the chunk's validity."""
    chunks = []
    start = 0
    for chunk in column.chunks:
        n = len(chunk)
        validity = pc.is_valid(chunk).buffers()[1] if chunk.null_count else None
        values = pa.py_buffer(ranks[start : start + n])
        chunks.append(
            pa.Array.from_buffers(pa.int32(), n, [validity, values], null_count=chunk.null_count)
        )
        start += n
    return pa.chunked_array(chunks, type=pa.int32())
