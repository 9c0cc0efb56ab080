"""Every supported source gives the same scores (DESIGN.md section 3)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import churn_engine as ce


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    n = 2_000
    return pl.DataFrame(
        {
            "customer_id": rng.integers(1, 300, n) * 1_000_003,
            "ts": pl.Series(
                rng.integers(0, 700 * 86_400, n) * 1_000_000 + 1_600_000_000_000_000,
                dtype=pl.Datetime("us"),
            ),
            "amount": np.round(rng.lognormal(3, 1, n) * rng.choice([1, 1, 1, 1, -1], n), 2),
        }
    )


@pytest.fixture(scope="module")
def expected(frame: pl.DataFrame) -> pl.DataFrame:
    return ce.score(frame)


class ArrowStream:
    """A foreign object that only speaks the Arrow C stream protocol."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda f, tmp: f, id="polars-dataframe"),
        pytest.param(lambda f, tmp: f.lazy(), id="polars-lazyframe"),
        pytest.param(lambda f, tmp: f.to_arrow(), id="pyarrow-table"),
        pytest.param(
            lambda f, tmp: pa.RecordBatchReader.from_batches(
                f.to_arrow().schema, f.to_arrow().to_batches(max_chunksize=97)
            ),
            id="pyarrow-recordbatchreader",
        ),
        pytest.param(lambda f, tmp: f.to_pandas(), id="pandas"),
        pytest.param(lambda f, tmp: ArrowStream(f.to_arrow()), id="arrow-c-stream"),
    ],
)
def test_in_memory_sources(frame, expected, make, tmp_path):
    assert ce.score(make(frame, tmp_path)).equals(expected)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".arrow", ".ipc", ".feather"])
def test_path_sources(frame, expected, suffix, tmp_path):
    path = tmp_path / f"log{suffix}"
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_ipc(path)
    result = ce.score(str(path))
    assert result.equals(expected)
    assert ce.score(path).equals(expected)  # pathlib.Path too


def test_parquet_reads_only_needed_columns(frame, expected, tmp_path):
    path = tmp_path / "wide.parquet"
    frame.with_columns(note=pl.lit("x" * 50), other=pl.lit(1)).write_parquet(path)
    assert ce.score(str(path)).equals(expected)


def test_string_ids_keep_type_and_sort_by_bytes():
    frame = pl.DataFrame(
        {
            "customer_id": ["b", "a", "ab", "Z", "é", "a"],
            "ts": [dt.date(2024, 1, d) for d in (1, 2, 3, 4, 5, 6)],
            "amount": [1.0] * 6,
        }
    )
    result = ce.score(frame)
    assert result.schema["customer_id"] == pl.String
    # UTF-8 byte order: uppercase before lowercase, "é" (0xC3 0xA9) last
    assert result.get_column("customer_id").to_list() == ["Z", "a", "ab", "b", "é"]


@pytest.mark.parametrize(
    "arrow_type", [pa.string(), pa.large_string(), pa.string_view(), "dictionary"]
)
def test_arrow_string_kinds(arrow_type):
    ids = pa.array(["c", "a", "b", "a"])
    ids = ids.dictionary_encode() if arrow_type == "dictionary" else ids.cast(arrow_type)
    table = pa.table(
        {
            "customer_id": ids,
            "ts": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 4)]),
            "amount": pa.array([1.0, 2.0, 3.0, 4.0]),
        }
    )
    result = ce.score(table)
    assert result.get_column("customer_id").to_list() == ["a", "b", "c"]
    assert result.get_column("n_orders").to_list() == [2, 1, 1]


@pytest.mark.parametrize(
    "dtype", [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64]
)
def test_integer_id_types_are_kept(dtype):
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series([3, 1, 2, 1], dtype=dtype),
            "ts": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    result = ce.score(frame)
    assert result.schema["customer_id"] == dtype
    assert result.get_column("customer_id").to_list() == [1, 2, 3]


def test_uint64_ids_above_int64_range_sort_unsigned():
    big = [2**64 - 1, 2**63, 5, 2**63 - 1]
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(big, dtype=pl.UInt64),
            "ts": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    result = ce.score(frame)
    assert result.get_column("customer_id").to_list() == sorted(big)
    assert result.get_column("monetary_total").to_list() == [3.0, 4.0, 2.0, 1.0]


def test_negative_and_extreme_int64_ids():
    ids = [-(2**63), 2**63 - 1, 0, -1]
    frame = pl.DataFrame(
        {
            "customer_id": ids,
            "ts": [dt.date(2024, 1, d) for d in (1, 2, 3, 4)],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert ce.score(frame).get_column("customer_id").to_list() == sorted(ids)


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_datetime_units_and_dates_agree(frame, expected, unit):
    cast = frame.with_columns(pl.col("ts").cast(pl.Datetime(unit)))
    assert ce.score(cast).equals(expected)


def test_pre_1970_and_far_future_dates():
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [dt.date(1950, 1, 1), dt.date(1950, 1, 11), dt.date(2999, 12, 31)],
            "amount": [1.0, 1.0, 1.0],
        }
    )
    result = ce.score(frame)
    assert result.get_column("first_purchase").to_list() == [
        dt.date(1950, 1, 1),
        dt.date(2999, 12, 31),
    ]
    assert result.item(0, "interval_mean_days") == 10.0
    assert result.item(0, "status") == "churned"
    assert result.item(0, "status_reason") == "no_purchase_365d"


def test_tz_aware_input_is_cut_in_the_scoring_zone():
    # 2024-03-01T23:30Z is already March 2 in Tokyo
    frame = pl.DataFrame(
        {
            "customer_id": [1],
            "ts": pl.Series([dt.datetime(2024, 3, 1, 23, 30)]).dt.replace_time_zone("UTC"),
            "amount": [1.0],
        }
    )
    assert ce.score(frame).item(0, "first_purchase") == dt.date(2024, 3, 1)
    assert ce.score(frame, tz="Asia/Tokyo").item(0, "first_purchase") == dt.date(2024, 3, 2)
