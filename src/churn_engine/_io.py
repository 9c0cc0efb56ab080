"""Sources -> a Polars LazyFrame of the needed columns.

Paths are scanned (only the needed columns are read); in-memory inputs are
wrapped without copying where Polars can (pyarrow tables, pandas frames and
Arrow C streams all come in through Arrow).
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import polars as pl

from .errors import ConfigError, DataError, SchemaError

__all__ = [
    "SUPPORTED_EXTENSIONS", "arrow_table", "csv_path_of", "from_arrow_table", "open_source",
    "source_label",
]  # fmt: skip

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv", ".txt")
_IPC = (".arrow", ".ipc", ".feather")
SUPPORTED_EXTENSIONS = _PARQUET + _CSV + _IPC


def source_label(data: Any) -> str:
    """A short description of a source for messages."""
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    return type(data).__name__


def open_source(data: Any) -> pl.LazyFrame:
    """Wrap any supported source as a LazyFrame (nothing is read yet for paths)."""
    if isinstance(data, (str, os.PathLike)):
        return _scan_path(pathlib.Path(data))
    if isinstance(data, pl.LazyFrame):
        return data
    if isinstance(data, pl.DataFrame):
        return data.lazy()
    if type(data).__module__.split(".")[0] == "pandas":
        return _from_pandas(data)
    table = arrow_table(data)
    if table is not None:
        return from_arrow_table(table)
    raise SchemaError(
        f"unsupported input of type {type(data).__name__}: pass a Parquet/CSV/Arrow IPC path, "
        "a polars DataFrame or LazyFrame, a pyarrow Table or RecordBatchReader, a pandas "
        "DataFrame, or an object with __arrow_c_stream__"
    )


def arrow_table(data: Any) -> Any:
    """The pyarrow Table of an in-memory Arrow source (a pyarrow Table,
    RecordBatch or RecordBatchReader, or another object with
    ``__arrow_c_stream__``), read in full, fixed-offset zones made UTC;
    ``None`` for paths, Polars and pandas frames and anything else."""
    if isinstance(data, (str, os.PathLike, pl.LazyFrame, pl.DataFrame)):
        return None
    module = type(data).__module__.split(".")[0]
    if module == "pyarrow":
        return _as_table(data)
    if module != "pandas" and hasattr(data, "__arrow_c_stream__"):
        import pyarrow as pa

        return _as_table(pa.RecordBatchReader.from_stream(data))
    return None


def csv_path_of(data: Any) -> pathlib.Path | None:
    """The path of a single CSV file source (for the lenient re-read), else None."""
    if isinstance(data, (str, os.PathLike)):
        path = pathlib.Path(data)
        if path.suffix.lower() in _CSV and path.is_file():
            return path
    return None


def _scan_path(path: pathlib.Path) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    is_glob = any(ch in str(path) for ch in "*?[")
    if not is_glob and not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    if not is_glob and path.is_file() and path.stat().st_size == 0:
        raise DataError(f"input file is empty: {path}", reason="empty_file")
    if suffix in _PARQUET or (path.is_dir() and not is_glob):
        if not is_glob and path.is_file() and _has_offset_zone(_arrow_schema(path, "parquet")):
            import pyarrow.parquet as pq

            return _from_pyarrow(pq.read_table(path))
        return pl.scan_parquet(path)
    if suffix in _CSV:
        # timestamps stay text here and are parsed (and rejected) by _prepare
        return pl.scan_csv(path, separator="\t" if suffix == ".tsv" else ",")
    if suffix in _IPC:
        if not is_glob and _has_offset_zone(_arrow_schema(path, "ipc")):
            import pyarrow.feather as feather

            return _from_pyarrow(feather.read_table(path))
        return pl.scan_ipc(path)
    raise ConfigError(
        f"cannot tell the format of {path}: use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


_OFFSET_ZONE = re.compile(r"[+-]\d\d:?\d\d")


def _arrow_schema(path: pathlib.Path, kind: str) -> Any:
    """The file's Arrow schema, or None when pyarrow cannot read it (Polars
    then reports the problem)."""
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        import pyarrow.ipc as ipc

        with ipc.open_file(path) as reader:
            return reader.schema
    except Exception:
        return None


def _has_offset_zone(schema: Any) -> bool:
    """Timestamps with a fixed-offset zone ("+05:30"), which Polars cannot read."""
    import pyarrow as pa

    return schema is not None and any(
        pa.types.is_timestamp(field.type)
        and field.type.tz is not None
        and _OFFSET_ZONE.fullmatch(field.type.tz) is not None
        for field in schema
    )


def _offset_zones_to_utc(table: Any) -> Any:
    """Same instants, zone "UTC": days are cut in the scoring zone anyway."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if _has_offset_zone(pa.schema([field])):
            utc = pa.timestamp(field.type.unit, "UTC")
            table = table.set_column(index, field.name, table.column(index).cast(utc))
    return table


def _from_pyarrow(data: Any) -> pl.LazyFrame:
    return from_arrow_table(_as_table(data))


def _as_table(data: Any) -> Any:
    import pyarrow as pa

    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    elif isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise SchemaError(f"unsupported pyarrow input of type {type(data).__name__}")
    return _offset_zones_to_utc(data)


def from_arrow_table(data: Any) -> pl.LazyFrame:
    """A pyarrow Table as a LazyFrame (no copy where Polars can avoid one)."""
    import pyarrow as pa

    try:
        frame = pl.from_arrow(data, rechunk=False)
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise SchemaError(f"cannot read the Arrow input: {exc}") from exc
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy()


def _check_pandas_time_zones(data: Any) -> None:
    """pandas object columns may mix naive and tz-aware timestamps; Polars would
    silently pick one zone for all, so refuse them."""
    for name in data.columns:
        column = data[name]
        if column.dtype != object:
            continue
        kinds = {
            getattr(value, "tzinfo", None) is None
            for value in column.dropna()
            if hasattr(value, "tzinfo")
        }
        if len(kinds) > 1:
            raise SchemaError(
                f"column {name!r} mixes naive and tz-aware timestamps; make them all "
                "tz-aware (e.g. pandas.to_datetime(..., utc=True)) or all naive"
            )


def _from_pandas(data: Any) -> pl.LazyFrame:
    _check_pandas_time_zones(data)
    try:
        return pl.from_pandas(data).lazy()
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        # e.g. an object column of datetimes in several time zones
        raise SchemaError(
            f"cannot convert the pandas input: {exc}; give every column one type "
            "(for timestamps one time zone, e.g. with pandas.to_datetime(..., utc=True))"
        ) from exc
