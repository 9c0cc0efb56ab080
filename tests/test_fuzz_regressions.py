"""Regression tests for the findings of the fuzz harnesses (tests/fuzz/).

Each test inlines the minimal input of one finding. The rule the fuzzers
check, and these tests keep: whatever the input, ``churn_engine.score``
returns a correct result or raises ``ChurnEngineError`` (a clear error
naming the problem); nothing else escapes (no raw OverflowError, no polars
panic), and no value silently wraps around.

Findings (see docs/reliability.md):

- F1 (fuzz_reader, fuzz_kernel): a timestamp outside Python's date range
  (before 0001-01-01 or after 9999-12-31; polars and Arrow dates go much
  further) with no ``as_of`` -> raw OverflowError from the stats' as_of
  date; the CLI dies with a traceback.
- F2 (fuzz_kernel): ``recency_days = as_of_day - last_day`` is computed in
  int32 in ``cycle_status``; days more than 2^31 apart wrap around (signed
  overflow, undefined behaviour in C) -> negative recency, wrong status.
- F3 (fuzz_kernel): ``expected_next_purchase = last_day + (int32)round(cycle)``
  with a cycle beyond the int32 range (e.g. ``prior_days=1e10``, which the
  config accepts) is an out-of-range float->int conversion (undefined
  behaviour) -> garbage dates that make polars panic when printed.
- F4 (fuzz_kernel): ``horizon_days`` >= 2^31 passes ScoreConfig but raises
  a raw OverflowError when api.py packs the horizons into int32.
- F5 (fuzz_reader): a Parquet or Arrow IPC file whose timestamp column has
  a fixed-offset time zone (``timestamp[us, tz=+05:30]``, valid Arrow,
  written by pandas/pyarrow) -> a polars PanicException (a BaseException)
  escapes from score(); the CLI dies with a traceback.
- F6 (fuzz_kernel): ``cycle_days = (k * mean + w * prior) / (k + w)`` with a
  huge ``prior_days`` and ``prior_weight`` (both accepted: finite, positive)
  overflows the sum to infinity, although the weighted mean lies between
  ``mean`` and ``prior`` -> cycle_days inf for repeat buyers.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.feather
import pyarrow.parquet as pq
import pytest

import churn_engine
from churn_engine import ChurnEngineError, ConfigError, _kernel, cli

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_EPOCH = dt.date(1970, 1, 1)


def _frame(ids: list[int], days: list[int], amounts: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": pl.Series(ids, dtype=pl.Int64),
            "ts": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
            "amount": pl.Series(amounts, dtype=pl.Float64),
        }
    )


def _score_or_clear_error(data: object, **options: object) -> pl.DataFrame | None:
    """score(); None when it raised a ChurnEngineError, a test failure on
    anything else (BaseException too: polars panics derive from it)."""
    try:
        return churn_engine.score(data, **options)
    except ChurnEngineError:
        return None
    except BaseException as exc:
        pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped from score(): {exc}")


# -- F1: dates outside Python's date range -----------------------------------


@pytest.mark.parametrize(
    "text",
    [b"customer_id,ts,amount\n1,-0001-01-01,1\n", b"customer_id,ts,amount\n1,0000-06-01,1\n"],
)
def test_csv_timestamp_before_year_1(tmp_path, text: bytes) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(text)
    _score_or_clear_error(str(path))


@pytest.mark.parametrize(
    "day",
    [
        (dt.date(9999, 12, 31) - _EPOCH).days + 1,  # 10000-01-01
        3_000_000,
        INT32_MAX,
        INT32_MIN,
        -719_163,  # 0000-12-31
    ],
)
def test_date_column_outside_python_range(day: int) -> None:
    _score_or_clear_error(_frame([1, 1, 2], [day, day, 19_000], [1.0, 2.0, 3.0]))


def test_cli_reports_out_of_range_dates_without_a_traceback(tmp_path, capsys) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"customer_id,ts,amount\n1,-0001-01-01,1\n")
    try:
        code = cli.main(["score", str(path), "-o", str(tmp_path / "out.parquet"), "-q"])
    except BaseException as exc:
        pytest.fail(f"churn-engine score raised {type(exc).__name__}: {exc}")
    assert code in (0, 1)
    if code == 1:
        assert "error" in capsys.readouterr().err


# -- F2: recency in int32 -------------------------------------------------------


def test_recency_does_not_wrap_when_days_are_far_apart() -> None:
    as_of = dt.date(2024, 1, 1)
    as_of_day = (as_of - _EPOCH).days
    old_day = INT32_MIN + 10
    result = _score_or_clear_error(_frame([1, 2], [old_day, 0], [1.0, 1.0]), as_of=as_of)
    if result is None:
        return
    row = (
        result.filter(pl.col("customer_id") == 1)
        .select("recency_days", "status", "status_reason")  # no dates: outside Python's range
        .row(0, named=True)
    )
    assert row["recency_days"] == as_of_day - old_day  # 2,147,503,361 days, not negative
    assert row["status"] == "churned"
    assert row["status_reason"] == "no_purchase_365d"


def test_kernel_cycle_status_recency_is_exact_for_extreme_days() -> None:
    cycles = _kernel.cycle_status(
        np.array([0], np.int32),  # cat
        np.array([1], np.int64),  # n_orders
        np.array([math.nan]),  # interval_mean
        np.array([INT32_MIN], np.int32),  # last_day
        np.array([30.0]),  # priors
        np.array([365], np.int32),  # horizon_days
        INT32_MAX,  # as_of_day
        1.0, 1.5, 2.0, 1,
    )  # fmt: skip
    assert cycles["recency_days"][0] == INT32_MAX - INT32_MIN  # 2^32 - 1
    assert cycles["status"][0] == 2  # churned by the horizon rule


# -- F3: expected next purchase beyond int32 ------------------------------------


def test_huge_cycle_gives_no_garbage_expected_next_purchase() -> None:
    # prior_days=1e10 is accepted by ScoreConfig (finite, positive)
    frame = _frame([1, 1, 2], [19_000, 19_030, 19_010], [1.0, 1.0, 1.0])
    result = _score_or_clear_error(frame, prior_days=1e10)
    if result is None:
        return
    days = result.select(
        pl.col("last_purchase").cast(pl.Int32).alias("last"),
        pl.col("expected_next_purchase").cast(pl.Int32).alias("next"),
    )
    for last, next_day in days.iter_rows():
        assert next_day is None or next_day >= last, (
            f"expected_next_purchase {next_day} before last_purchase {last}"
        )


def test_kernel_expected_next_day_of_a_cycle_beyond_int32() -> None:
    cycles = _kernel.cycle_status(
        np.array([0], np.int32), np.array([1], np.int64), np.array([math.nan]),
        np.array([19_030], np.int32), np.array([1e10]), np.array([365], np.int32),
        19_040, 1.0, 1.5, 2.0, 1,
    )  # fmt: skip
    next_day = int(cycles["expected_next_day"][0])
    # today: (int32)floor(1e10 + 0.5) is undefined behaviour and gives INT32_MIN + 19030
    assert next_day == _kernel.NULL_DAY or next_day >= 19_030, next_day


# -- F6: the weighted cycle's sum overflows ----------------------------------------


def test_huge_prior_and_weight_give_a_finite_weighted_cycle() -> None:
    # customer 1: one gap of 30 days (k = 1); prior 1e308 days, weight 10:
    # 1 * 30 + 10 * 1e308 overflows, the weighted mean is 30/11 + 10/11 * 1e308
    frame = _frame([1, 1, 2], [19_000, 19_030, 19_010], [1.0, 1.0, 1.0])
    result = churn_engine.score(frame, prior_days=1e308, prior_weight=10.0)
    cycle = result.filter(pl.col("customer_id") == 1)["cycle_days"][0]
    assert math.isfinite(cycle)
    assert cycle == pytest.approx((1 / 11) * 30.0 + (10 / 11) * 1e308, rel=1e-15)
    repeat = result.filter(pl.col("customer_id") == 1).row(0, named=True)
    assert repeat["expected_next_purchase"] is None  # far beyond 9999-12-31
    assert repeat["days_overdue"] == 0.0 and repeat["status"] == "active"
    # the usual formula where it does not overflow: the result is unchanged
    small = churn_engine.score(frame, prior_days=100.0, prior_weight=10.0)
    assert small.filter(pl.col("customer_id") == 1)["cycle_days"][0] == (30.0 + 10 * 100.0) / 11


# -- F4: horizon_days beyond int32 --------------------------------------------------


@pytest.mark.parametrize("horizon", [2**31, 2**40])
def test_horizon_days_beyond_int32(horizon: int) -> None:
    frame = _frame([1, 1, 2], [19_000, 19_030, 19_010], [1.0, 1.0, 1.0])
    try:
        result = churn_engine.score(frame, horizon_days=horizon)
    except ConfigError:
        return
    except BaseException as exc:
        pytest.fail(f"{type(exc).__name__} escaped from score(): {exc}")
    assert "no_purchase" not in " ".join(result["status_reason"].to_list())


# -- F5: fixed-offset time zones in Parquet / Arrow IPC files ----------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_fixed_offset_time_zone_in_a_file(tmp_path, suffix: str) -> None:
    table = pa.table(
        {
            "customer_id": pa.array([1, 1, 2], pa.int64()),
            "ts": pa.array(
                [0, 10 * 86_400_000_000, 5 * 86_400_000_000], pa.timestamp("us", "+05:30")
            ),
            "amount": pa.array([1.0, 2.0, 3.0]),
        }
    )
    path = tmp_path / f"log{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pyarrow.feather.write_feather(table, path, compression="uncompressed")
    result = _score_or_clear_error(str(path))
    if result is not None:
        assert result["n_orders"].to_list() == [2, 1]
