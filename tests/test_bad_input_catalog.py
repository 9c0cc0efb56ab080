"""The catalog of bad and odd inputs (issue: reliability), each with its exact
outcome. Cases already pinned elsewhere: null ids, NaN/inf/null amounts,
integer overflow, tz handling, epochs, empty input, missing/wrong columns,
corrupt Parquet (test_bad_input.py); id kinds, pre-1970/far-future dates
(test_inputs.py); all-refund customers (test_definitions.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import churn_engine as ce


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- CSV ------------------------------------------------------------------------


def test_header_only_csv_gives_an_empty_result(tmp_path):
    path = write(tmp_path, "log.csv", "customer_id,ts,amount\n")
    result = ce.Scorer().run(path)
    assert result.customers.height == 0
    assert len(result.customers.columns) == 25
    assert result.stats.rows_read == 0
    assert result.stats.reconciles()


MALFORMED = "customer_id,ts,amount\n1,2024-01-01,10\n2,2024-01-02,5,EXTRA\n3,2024-01-03,7\n"


def test_malformed_csv_line_error_names_the_line(tmp_path):
    path = write(tmp_path, "log.csv", MALFORMED)
    with pytest.raises(ce.DataError, match=r"malformed CSV line 3 \(row 1\): 4 fields") as info:
        ce.score(path)
    assert info.value.reason == "malformed_csv_line"
    assert info.value.row == 1


def test_malformed_csv_line_is_quarantined_and_the_rest_scored(tmp_path):
    path = write(tmp_path, "log.csv", MALFORMED)
    result = ce.Scorer(on_error="quarantine").run(path)
    assert result.customers.get_column("customer_id").to_list() == [1, 3]
    assert result.rejects is not None
    assert result.rejects.rows() == [(1, 2, "2024-01-02", 5, "malformed_csv_line")]
    assert result.stats.rejected_by_reason == {"malformed_csv_line": 1}
    assert result.stats.rows_read == 3
    assert result.stats.reconciles()


def test_unterminated_quote_is_a_malformed_line(tmp_path):
    path = write(tmp_path, "log.csv", 'customer_id,ts,amount\n1,2024-01-01,10\n"2,2024-01-02,5\n')
    with pytest.raises(ce.DataError, match=r"malformed CSV line"):
        ce.score(path)


def test_unparseable_amount_text(tmp_path):
    path = write(tmp_path, "log.csv", "customer_id,ts,amount\n1,2024-01-01,10\n2,2024-01-02,abc\n")
    with pytest.raises(ce.DataError, match=r"column 'amount': unparseable amount at row 1"):
        ce.score(path)
    result = ce.Scorer(on_error="quarantine").run(path)
    assert result.stats.rejected_by_reason == {"unparseable_amount": 1}
    assert result.customers.get_column("monetary_total").to_list() == [10.0]


def test_unparseable_timestamp_text(tmp_path):
    path = write(tmp_path, "log.csv", "customer_id,ts,amount\n1,2024-01-01,10\n2,someday,3\n")
    with pytest.raises(ce.DataError, match=r"column 'ts': unparseable ts at row 1"):
        ce.score(path)


# -- several files ---------------------------------------------------------------


def test_files_with_string_and_integer_ids_are_refused(tmp_path):
    base = {"ts": [dt.date(2024, 1, 1)], "amount": [1.0]}
    pl.DataFrame({"customer_id": [1], **base}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"customer_id": ["x"], **base}).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(ce.SchemaError, match=r"parts disagree on column types.*customer_id"):
        ce.score(str(tmp_path / "*.parquet"))


def test_several_files_of_one_schema_are_read_together(tmp_path):
    for i in range(3):
        pl.DataFrame(
            {"customer_id": [i, 9], "ts": [dt.date(2024, 1, 1 + i)] * 2, "amount": [1.0, 2.0]}
        ).write_parquet(tmp_path / f"part{i}.parquet")
    result = ce.score(str(tmp_path / "*.parquet"))
    assert result.get_column("customer_id").to_list() == [0, 1, 2, 9]
    assert result.filter(pl.col("customer_id") == 9).item(0, "n_orders") == 3


# -- rows ------------------------------------------------------------------------


def test_duplicate_rows_are_kept_and_counted():
    row = {"customer_id": 1, "ts": dt.datetime(2024, 1, 1, 10), "amount": 5.0}
    frame = pl.DataFrame([row, row, row])
    result = ce.Scorer().run(frame)
    assert result.stats.rows_accepted == 3
    out = result.customers.row(0, named=True)
    assert (out["n_rows"], out["n_orders"], out["monetary_total"]) == (3, 1, 15.0)


def test_identical_and_unsorted_timestamps():
    days = [5, 1, 5, 3, 1, 5]
    frame = pl.DataFrame(
        {"customer_id": [1] * 6, "ts": [dt.date(2024, 1, d) for d in days], "amount": [1.0] * 6}
    )
    out = ce.score(frame).row(0, named=True)
    # occasions on days 1, 3, 5: gaps 2 and 2
    assert (out["n_orders"], out["n_rows"]) == (3, 6)
    assert (out["interval_mean_days"], out["interval_median_days"]) == (2.0, 2.0)
    assert out["interval_std_days"] == 0.0


def test_sliced_arrays_with_offsets_and_null_bitmaps():
    ids = pa.array([None, 7, 8, 7, None, 9])
    ts = pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 4, 5, 6)])
    amounts = pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0])
    table = pa.table({"customer_id": ids, "ts": ts, "amount": amounts}).slice(1, 4)
    # rows: (7, Jan 2, 2.0), (8, Jan 3, null), (7, Jan 4, 4.0), (null, Jan 5, 5.0)
    result = ce.Scorer(on_error="quarantine").run(table)
    assert result.customers.get_column("customer_id").to_list() == [7]
    assert result.customers.item(0, "monetary_total") == 6.0
    assert result.rejects is not None
    assert result.rejects.select("row", "reason").rows() == [
        (1, "null_amount"),
        (3, "null_customer_id"),
    ]
    assert result.stats.reconciles()


def test_chunked_table_with_sliced_chunks():
    base = pa.table(
        {
            "customer_id": pa.array(np.arange(100) % 7),
            "ts": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in range(100)]),
            "amount": pa.array(np.arange(100, dtype=np.float64)),
        }
    )
    chunked = pa.concat_tables([base.slice(0, 33), base.slice(33, 1), base.slice(34)])
    assert ce.score(chunked).equals(ce.score(base))


def test_one_customer_with_ten_million_rows():
    n = 10_000_000
    days = np.arange(n, dtype=np.int32) % 3650  # ten years, many rows a day
    frame = pl.DataFrame(
        {
            "customer_id": np.zeros(n, dtype=np.int64),
            "ts": pl.Series(days).cast(pl.Date),
            "amount": np.ones(n),
        }
    )
    result = ce.Scorer().run(frame)
    out = result.customers.row(0, named=True)
    assert (out["n_rows"], out["n_orders"]) == (n, 3650)
    assert out["monetary_total"] == float(n)
    assert out["interval_mean_days"] == 1.0
    assert out["interval_median_days"] == 1.0
    assert result.stats.customers == 1
