"""Bad input (DESIGN.md section 3): a clear error naming the column, the reason
and an example row, or the row in ``rejects`` with ``on_error="quarantine"``;
in every run accepted + rejected + after as_of = rows read."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import polars as pl
import pytest

import churn_engine as ce


def log(**columns: list) -> pl.DataFrame:
    base = {
        "customer_id": [1, 2, 3],
        "ts": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)],
        "amount": [10.0, 20.0, 30.0],
    }
    base.update(columns)
    return pl.DataFrame(base)


BAD_CASES = [
    # (columns, column named, reason, bad row)
    ({"customer_id": [1, None, 3]}, "customer_id", "null_customer_id", 1),
    ({"customer_id": ["a", "b", None]}, "customer_id", "null_customer_id", 2),
    ({"ts": [dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 3)]}, "ts", "null_ts", 1),
    ({"ts": ["2024-01-01", "2024-13-45", "2024-01-03"]}, "ts", "unparseable_ts", 1),
    ({"ts": ["2024-01-01", "yesterday", "2024-01-03"]}, "ts", "unparseable_ts", 1),
    ({"amount": [1.0, 2.0, None]}, "amount", "null_amount", 2),
    ({"amount": [float("nan"), 2.0, 3.0]}, "amount", "nan_amount", 0),
    ({"amount": [1.0, math.inf, 3.0]}, "amount", "infinite_amount", 1),
    ({"amount": [1.0, 2.0, -math.inf]}, "amount", "infinite_amount", 2),
]


@pytest.mark.parametrize(("columns", "column", "reason", "row"), BAD_CASES)
def test_bad_value_raises_naming_column_reason_and_row(columns, column, reason, row):
    frame = log(**columns)
    with pytest.raises(ce.DataError) as info:
        ce.score(frame)
    error = info.value
    assert (error.column, error.reason, error.row) == (column, reason, row)
    message = str(error)
    assert repr(column) in message
    assert reason.replace("_", " ") in message
    assert f"row {row}" in message
    # the example row's values are shown
    example = frame.row(row, named=True)
    assert str(example["customer_id"]) in message


@pytest.mark.parametrize(("columns", "column", "reason", "row"), BAD_CASES)
def test_bad_value_quarantined_with_reason(columns, column, reason, row):
    frame = log(**columns)
    result = ce.Scorer(on_error="quarantine").run(frame)
    rejects = result.rejects
    assert rejects is not None
    assert rejects.get_column("row").to_list() == [row]
    assert rejects.get_column("reason").to_list() == [reason]
    assert rejects.row(0, named=True)["customer_id"] == frame.row(row, named=True)["customer_id"]
    stats = result.stats
    assert stats.rows_read == 3
    assert stats.rows_rejected == 1
    assert stats.rows_accepted == 2
    assert stats.rejected_by_reason == {reason: 1}
    assert stats.reconciles()
    assert result.customers.height == 2


def test_quarantine_without_bad_rows_gives_empty_rejects():
    result = ce.Scorer(on_error="quarantine").run(log())
    assert result.rejects is not None
    assert result.rejects.height == 0
    assert "reason" in result.rejects.columns


def test_default_raise_mode_has_no_rejects_table():
    assert ce.Scorer().run(log()).rejects is None


def test_several_reasons_counted_separately():
    frame = log(
        customer_id=[None, 2, 3, 4, 5],
        ts=[dt.date(2024, 1, 1), None, dt.date(2024, 1, 2), dt.date(2024, 1, 3), None],
        amount=[1.0, 2.0, float("nan"), 4.0, 5.0],
    )
    result = ce.Scorer(on_error="quarantine").run(frame)
    assert result.stats.rejected_by_reason == {
        "nan_amount": 1,
        "null_customer_id": 1,
        "null_ts": 2,
    }
    assert result.stats.rows_accepted == 1
    assert result.stats.reconciles()
    with pytest.raises(ce.DataError, match=r"4 bad rows in all"):
        ce.score(frame)


def test_missing_column_names_it_and_lists_the_columns():
    frame = log().rename({"amount": "value"})
    with pytest.raises(ce.SchemaError, match=r"missing column 'amount'.*value"):
        ce.score(frame)
    # the option points to the fix
    assert ce.score(frame, amount_col="value").height == 3


@pytest.mark.parametrize(
    ("columns", "pattern"),
    [
        ({"customer_id": [1.5, 2.5, 3.5]}, r"'customer_id' \(customer ids\).*Float64"),
        ({"customer_id": [True, False, True]}, r"'customer_id'.*Boolean"),
        ({"amount": [True, False, True]}, r"'amount' \(amounts\).*Boolean"),
        ({"ts": [1.0, 2.0, 3.0]}, r"'ts' \(timestamps\).*Float64"),
        ({"ts": [True, False, True]}, r"'ts' \(timestamps\).*Boolean"),
    ],
)
def test_wrong_type_is_a_schema_error(columns, pattern):
    with pytest.raises(ce.SchemaError, match=pattern):
        ce.score(log(**columns))


def test_integer_ts_needs_ts_unit():
    frame = log(ts=[1_704_067_200, 1_704_153_600, 1_704_240_000])
    with pytest.raises(ce.SchemaError, match=r"'ts' holds integers.*ts_unit"):
        ce.score(frame)
    result = ce.score(frame, ts_unit="s")
    assert result.get_column("first_purchase").to_list() == [
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 3),
    ]


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_integer_epochs_in_every_unit(unit, scale):
    # 2024-01-01T23:30:00Z: still Jan 1 in UTC, Jan 2 in Berlin
    epoch = 1_704_151_800 * scale
    frame = pl.DataFrame({"customer_id": [1], "ts": [epoch], "amount": [1.0]})
    utc = ce.score(frame, ts_unit=unit)
    berlin = ce.score(frame, ts_unit=unit, tz="Europe/Berlin")
    assert utc.item(0, "first_purchase") == dt.date(2024, 1, 1)
    assert berlin.item(0, "first_purchase") == dt.date(2024, 1, 2)


def test_mixed_offsets_in_text_are_converted_to_the_scoring_zone():
    frame = pl.DataFrame(
        {
            "customer_id": [1, 2, 3],
            # 2024-01-02T01:00Z, 2024-01-01T22:00Z, naive -> taken in tz (UTC)
            "ts": ["2024-01-01T23:00:00-02:00", "2024-01-02T00:00:00+02:00", "2024-01-01 12:00"],
            "amount": [1.0, 1.0, 1.0],
        }
    )
    days = ce.score(frame).get_column("first_purchase").to_list()
    assert days == [dt.date(2024, 1, 2), dt.date(2024, 1, 1), dt.date(2024, 1, 1)]


def test_pandas_mixed_time_zones_are_instants():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [
                pd.Timestamp("2024-01-01 00:30", tz="Europe/Berlin"),  # 2023-12-31T23:30Z
                pd.Timestamp("2024-01-01 00:30", tz="America/New_York"),  # 05:30Z
            ],
            "amount": [1.0, 1.0],
        }
    )
    days = ce.score(frame).get_column("first_purchase").to_list()
    assert days == [dt.date(2023, 12, 31), dt.date(2024, 1, 1)]


def test_pandas_naive_mixed_with_aware_is_refused():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [pd.Timestamp("2024-01-01", tz="Europe/Berlin"), pd.Timestamp("2024-01-01")],
            "amount": [1.0, 1.0],
        }
    )
    with pytest.raises(ce.SchemaError, match=r"'ts' mixes naive and tz-aware"):
        ce.score(frame)


def test_unknown_time_zone_is_a_config_error():
    with pytest.raises(ce.ConfigError, match=r"unknown time zone 'Mars/Olympus'"):
        ce.score(log(), tz="Mars/Olympus")


@pytest.mark.parametrize("amount_dtype", [pl.Float64, pl.Int64])
def test_empty_input_gives_full_schema(amount_dtype):
    frame = log().head(0).with_columns(pl.col("amount").cast(amount_dtype))
    result = ce.Scorer().run(frame)
    assert result.customers.height == 0
    assert result.customers.columns[0] == "customer_id"
    assert len(result.customers.columns) == 25
    money = pl.Int64 if amount_dtype == pl.Int64 else pl.Float64
    assert result.customers.schema["monetary_total"] == money
    assert result.cuts is None
    assert result.stats.rows_read == 0
    assert result.stats.reconciles()


def test_all_rows_rejected_gives_empty_result():
    frame = log(amount=[float("nan")] * 3)
    result = ce.Scorer(on_error="quarantine").run(frame)
    assert result.customers.height == 0
    assert result.stats.rows_rejected == 3
    assert result.stats.reconciles()


def test_rows_after_as_of_are_counted_not_used():
    frame = log()
    result = ce.Scorer().run(frame, as_of=dt.date(2024, 1, 2))
    assert result.stats.rows_after_as_of == 1
    assert result.stats.rows_accepted == 2
    assert result.stats.reconciles()
    assert result.customers.get_column("customer_id").to_list() == [1, 2]
    # a datetime as_of is taken as is: 2024-01-02 00:00 keeps the row at that instant
    at_midnight = ce.Scorer().run(frame, as_of=dt.datetime(2024, 1, 2))
    assert at_midnight.stats.rows_after_as_of == 1
    before = ce.Scorer().run(frame, as_of=dt.datetime(2024, 1, 1, 23, 59))
    assert before.stats.rows_after_as_of == 2


def test_rejected_rows_after_as_of_count_once_as_rejected():
    frame = log(amount=[1.0, 2.0, float("nan")])
    result = ce.Scorer(on_error="quarantine").run(frame, as_of=dt.date(2024, 1, 1))
    assert (result.stats.rows_rejected, result.stats.rows_after_as_of) == (1, 1)
    assert result.stats.rows_accepted == 1
    assert result.stats.reconciles()


def test_bad_as_of_string():
    with pytest.raises(ce.ConfigError, match=r"as_of: cannot parse 'soon'"):
        ce.score(log(), as_of="soon")


def test_integer_money_overflow_is_an_error_not_a_wrapped_number():
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1],
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
            "amount": [2**62, 2**62],
        }
    )
    with pytest.raises(ce.DataError, match=r"money sum overflows \(int64") as info:
        ce.score(frame)
    assert info.value.column == "amount"
    # exactly at the limit is fine
    ok = frame.with_columns(pl.Series("amount", [2**62, 2**62 - 1]))
    assert ce.score(ok).item(0, "monetary_total") == 2**63 - 1


def test_unsupported_source_type():
    with pytest.raises(ce.SchemaError, match=r"unsupported input of type list"):
        ce.score([1, 2, 3])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"input file not found"):
        ce.score(str(tmp_path / "nope.parquet"))


def test_unknown_extension(tmp_path):
    path = tmp_path / "log.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(ce.ConfigError, match=r"cannot tell the format"):
        ce.score(str(path))


def test_empty_file_is_a_data_error(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"")
    with pytest.raises(ce.DataError, match=r"input file is empty"):
        ce.score(str(path))


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "log.parquet"
    log().write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ce.ChurnEngineError):
        ce.score(str(path))


@pytest.mark.parametrize("buyer", [True, False])
def test_float_money_overflow_is_an_error_not_inf(buyer):
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
            "amount": [-1.5e308, -1.5e308, 1.0 if buyer else -1.0],
        }
    )
    with pytest.raises(ce.DataError, match=r"money sum overflows") as info:
        ce.score(frame)
    assert info.value.reason == "amount_overflow"
