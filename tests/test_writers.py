"""Atomic, deterministic writes (Parquet, CSV, Arrow IPC)."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import sys

import polars as pl
import pytest

from churn_engine import _writers
from churn_engine._writers import format_for, write_atomic, write_json_atomic
from churn_engine.errors import ConfigError

EXTENSIONS = [".parquet", ".csv", ".arrow", ".ipc", ".feather"]


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [3, 1, 2, None],
            "name": ["a", "b, with comma", 'quote "q"', None],
            "ts": [
                dt.datetime(2026, 1, 1, 12, 30), None, dt.datetime(2025, 12, 31),
                dt.datetime(2024, 2, 29, 23, 59, 59),
            ],
            "day": [dt.date(2026, 1, 1), dt.date(2025, 1, 1), None, dt.date(2024, 2, 29)],
            "amount": [1.25, -3.5, None, 1e-3],
            "score": pl.Series([1, 5, 3, 2], dtype=pl.Int8),
        }
    )  # fmt: skip


def _read(path: pathlib.Path, schema: pl.Schema) -> pl.DataFrame:
    kind = format_for(path)
    if kind == "parquet":
        return pl.read_parquet(path)
    if kind == "ipc":
        return pl.read_ipc(path)
    return pl.read_csv(path, schema=schema)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_round_trip(tmp_path: pathlib.Path, frame: pl.DataFrame, ext: str) -> None:
    path = tmp_path / f"out{ext}"
    assert write_atomic(frame, path) == path
    assert _read(path, frame.schema).equals(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_round_trip_upper_case_extension_and_str_path(
    tmp_path: pathlib.Path, frame: pl.DataFrame
) -> None:
    path = tmp_path / "OUT.PARQUET"
    write_atomic(frame, str(path))
    assert pl.read_parquet(path).equals(frame)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_byte_identical_rewrite(tmp_path: pathlib.Path, frame: pl.DataFrame, ext: str) -> None:
    a, b = tmp_path / f"a{ext}", tmp_path / f"b{ext}"
    write_atomic(frame, a)
    write_atomic(frame, b)
    first = a.read_bytes()
    assert first == b.read_bytes()
    write_atomic(frame, a)  # replacing an existing file
    assert a.read_bytes() == first


def test_larger_frame_is_deterministic(tmp_path: pathlib.Path) -> None:
    big = pl.DataFrame({"i": range(300_000), "s": [str(i % 97) for i in range(300_000)]})
    write_atomic(big, tmp_path / "a.parquet")
    write_atomic(big, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


@pytest.mark.parametrize("name", ["out.txt", "out.json", "out", "out.parquet.bak"])
def test_unknown_extension(tmp_path: pathlib.Path, frame: pl.DataFrame, name: str) -> None:
    with pytest.raises(ConfigError, match=r"\.parquet, \.csv, \.arrow"):
        write_atomic(frame, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder(tmp_path: pathlib.Path, frame: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_atomic(frame, tmp_path / "missing" / "out.parquet")


def test_destination_is_a_folder(tmp_path: pathlib.Path, frame: pl.DataFrame) -> None:
    (tmp_path / "out.parquet").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        write_atomic(frame, tmp_path / "out.parquet")


def test_not_a_frame(tmp_path: pathlib.Path, frame: pl.DataFrame) -> None:
    with pytest.raises(TypeError):
        write_atomic(frame.lazy(), tmp_path / "out.parquet")  # type: ignore[arg-type]


def test_failure_mid_write_keeps_previous_file(
    tmp_path: pathlib.Path, frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.parquet"
    write_atomic(frame, path)
    before = path.read_bytes()
    seen: list[pathlib.Path] = []

    def broken(frame: pl.DataFrame, tmp: pathlib.Path) -> None:
        seen.append(tmp)
        assert tmp.parent == path.parent  # same folder, so same filesystem
        tmp.write_bytes(b"PAR1 half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(_writers._WRITERS, "parquet", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(frame.head(1), path)
    assert seen and not seen[0].exists()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_failure_at_rename_removes_temp(
    tmp_path: pathlib.Path, frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_replace(src: object, dst: object) -> None:
        raise OSError("read-only filesystem")

    monkeypatch.setattr(_writers.os, "replace", no_replace)
    with pytest.raises(OSError, match="read-only"):
        write_atomic(frame, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_new_file_gets_umask_permissions(tmp_path: pathlib.Path, frame: pl.DataFrame) -> None:
    old = os.umask(0o022)
    try:
        path = write_atomic(frame, tmp_path / "out.arrow")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_json_atomic(tmp_path: pathlib.Path) -> None:
    path = write_json_atomic({"b": [1.5, 2.0], "a": [3]}, tmp_path / "cuts.json")
    text = path.read_text()
    assert json.loads(text) == {"a": [3], "b": [1.5, 2.0]}
    assert text.endswith("\n")
    assert text.index('"a"') < text.index('"b"')
    with pytest.raises(ConfigError):
        write_json_atomic({}, tmp_path / "nope" / "cuts.json")


def test_format_for() -> None:
    assert format_for("x.parquet") == "parquet"
    assert format_for(pathlib.Path("dir.v1/x.Feather")) == "ipc"
    assert format_for("x.csv") == "csv"
