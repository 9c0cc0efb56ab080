"""Atomic, deterministic writes of result frames (Parquet, CSV, Arrow IPC).

A write goes to a temporary file in the destination folder (so the final
rename stays on one filesystem), is flushed to disk with ``fsync`` and then
``os.replace``-d onto the destination: a reader sees either the old file or
the complete new one, never a half-written file. On any failure the
temporary file is removed and an existing destination is left untouched.

Writes are deterministic: the same frame gives a byte-identical file
(explicit compression, statistics and row-group size; no timestamps in the
metadata).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from .errors import ConfigError

__all__ = ["FORMATS", "format_for", "write_atomic", "write_json_atomic", "write_text_atomic"]

#: File extension (lower case) -> format name.
FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "ipc",
    ".ipc": "ipc",
    ".feather": "ipc",
}

_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "statistics": True,
    "row_group_size": 1_000_000,
    "use_pyarrow": False,
}
# Uncompressed IPC can be memory-mapped and is read by every Arrow reader.
_IPC_OPTIONS: dict[str, Any] = {"compression": "uncompressed"}
_CSV_OPTIONS: dict[str, Any] = {"include_header": True, "separator": ","}


def format_for(path: str | os.PathLike[str]) -> str:
    """The output format of ``path`` from its extension (``parquet``, ``csv`` or ``ipc``).

    Raises :class:`~churn_engine.errors.ConfigError` for any other extension.
    """
    suffix = pathlib.Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        supported = ", ".join(FORMATS)
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise ConfigError(
            f"cannot tell the output format of {os.fspath(path)!r} ({shown}); "
            f"use one of {supported}"
        ) from None


def check_destination(path: str | os.PathLike[str]) -> pathlib.Path:
    """Check that ``path`` can be written to: an existing folder, not a folder itself."""
    dest = pathlib.Path(path)
    parent = dest.parent
    if not parent.is_dir():
        raise ConfigError(
            f"cannot write {os.fspath(path)!r}: folder {str(parent)!r} does not exist"
        )
    if dest.is_dir():
        raise ConfigError(f"cannot write {os.fspath(path)!r}: it is a folder")
    return dest


def write_atomic(frame: pl.DataFrame, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``frame`` to ``path`` atomically, in the format given by the extension.

    Parameters
    ----------
    frame : polars.DataFrame
        The frame to write.
    path : str or os.PathLike
        Destination; ``.parquet``, ``.csv`` or ``.arrow``/``.ipc``/``.feather``.
        Its folder must exist. An existing file is replaced.

    Returns
    -------
    pathlib.Path
        The destination path.

    Raises
    ------
    ConfigError
        Unknown extension, missing folder, or the destination is a folder.
    """
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"write_atomic needs a polars.DataFrame, got {type(frame).__name__}")
    kind = format_for(path)
    dest = check_destination(path)
    writer = _WRITERS[kind]
    with _atomic_path(dest) as tmp:
        writer(frame, tmp)
    return dest


def write_json_atomic(data: Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``data`` as indented JSON (sorted keys, trailing newline), atomically."""
    dest = check_destination(path)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with _atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (e.g. an HTML report)."""
    dest = check_destination(path)
    with _atomic_path(dest) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return dest


def _write_parquet(frame: pl.DataFrame, tmp: pathlib.Path) -> None:
    frame.write_parquet(tmp, **_PARQUET_OPTIONS)


def _write_csv(frame: pl.DataFrame, tmp: pathlib.Path) -> None:
    frame.write_csv(tmp, **_CSV_OPTIONS)


def _write_ipc(frame: pl.DataFrame, tmp: pathlib.Path) -> None:
    frame.write_ipc(tmp, **_IPC_OPTIONS)


_WRITERS: dict[str, Callable[[pl.DataFrame, pathlib.Path], None]] = {
    "parquet": _write_parquet,
    "csv": _write_csv,
    "ipc": _write_ipc,
}


@contextlib.contextmanager
def _atomic_path(dest: pathlib.Path) -> Iterator[pathlib.Path]:
    """Yield a fresh temporary path beside ``dest``; on success fsync it and rename it.

    The temporary file is created with ``O_EXCL`` and mode 0o666 so that the
    usual umask applies (``mkstemp`` would give 0o600 to the final file).
    """
    tmp = _create_temp(dest)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)


def _create_temp(dest: pathlib.Path) -> pathlib.Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise OSError(f"could not create a temporary file beside {str(dest)!r}")  # pragma: no cover


def _fsync_file(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))  # Windows needs write access
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: pathlib.Path) -> None:
    """Persist the rename (POSIX); not possible on every platform, so best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
