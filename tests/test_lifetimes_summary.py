"""``churn_engine.lifetimes_summary`` against lifetimes and hand-computed examples.

lifetimes (a test-only dependency) is the oracle: on the CDNOW master log it
ships with and on random logs, ``frequency``, ``recency`` and ``T`` must be
equal and ``monetary_value`` equal up to the last bits of the sum (pandas'
groupby sums in its own order; see docs/lifetimes.md). lifetimes 0.11.3
cannot compute ``T`` for ``freq="M"``, ``"Q"`` or ``"Y"`` with pandas >= 2
(it divides by ``np.timedelta64(1, "M")``); for those the oracle is lifetimes'
own period grouping (``_find_first_transactions``) with ``T`` and ``recency``
taken as differences of pandas Period ordinals.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ConfigError, SchemaError, lifetimes_summary
from churn_engine._prepare import MAX_DAY, MIN_DAY
from churn_engine.summary import _Period
from properties.strategies import logs

with warnings.catch_warnings():
    # lifetimes 0.11.3 warns on import (pkg_resources, a pandas option pandas 3 dropped)
    warnings.simplefilter("ignore")
    import lifetimes.utils as lifetimes_utils
    from lifetimes.datasets import load_dataset

D = dt.date
_EPOCH = dt.date(1970, 1, 1)
COLUMNS = ["frequency", "recency", "T"]


# -- oracles -------------------------------------------------------------------


def lifetimes_reference(
    pdf: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    as_of: Any = None,
    freq: str = "D",
    freq_multiplier: float = 1,
    include_first: bool = False,
) -> pl.DataFrame:
    """lifetimes' summary (by Period ordinals for M/Q/Y), as polars sorted by id."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tz dropped by to_period; pkg_resources
        if freq in ("D", "W"):
            out = lifetimes_utils.summary_data_from_transaction_data(
                pdf, customer_col, ts_col, monetary_value_col=amount_col,
                observation_period_end=as_of, freq=freq, freq_multiplier=freq_multiplier,
                include_first_transaction=include_first,
            )  # fmt: skip
        else:
            out = _by_period_ordinals(
                pdf, customer_col, ts_col, amount_col, as_of, freq, freq_multiplier, include_first
            )
    frame = pl.from_pandas(out.reset_index())
    return frame.sort(customer_col)


def _by_period_ordinals(
    pdf: pd.DataFrame,
    customer_col: str,
    ts_col: str,
    amount_col: str | None,
    as_of: Any,
    freq: str,
    freq_multiplier: float,
    include_first: bool,
) -> pd.DataFrame:
    """summary_data_from_transaction_data with ``T`` and ``recency`` as Period differences."""
    end = pd.Timestamp(pdf[ts_col].max() if as_of is None else as_of)
    end_period = (end.tz_localize(None) if end.tzinfo else end).to_period(freq)
    periods = lifetimes_utils._find_first_transactions(
        pdf, customer_col, ts_col, amount_col, None, end_period.to_timestamp(), freq
    )
    ordinal = pd.PeriodIndex(periods[ts_col]).asi8
    grouped = pd.Series(ordinal, index=periods[customer_col].to_numpy()).groupby(level=0)
    first, last, count = grouped.min(), grouped.max(), grouped.count()
    out = pd.DataFrame(index=first.index.rename(customer_col))
    out["frequency"] = (count if include_first else count - 1).astype(float)
    out["recency"] = (last - first) / freq_multiplier
    out["T"] = (end_period.ordinal - first) / freq_multiplier
    if amount_col:
        money = periods[amount_col].astype(float)
        if not include_first:
            money[periods["first"]] = np.nan
        out["monetary_value"] = money.groupby(periods[customer_col]).mean().fillna(0)
    return out.astype(float)


def assert_same_summary(got: pl.DataFrame, expected: pl.DataFrame, key: str) -> None:
    """Same customers and columns; f/r/T exactly, money to the last bits of a sum."""
    assert got.columns == expected.columns
    assert got.get_column(key).to_list() == expected.get_column(key).to_list()
    for name in COLUMNS:
        assert got.get_column(name).to_list() == expected.get_column(name).to_list(), name
    if "monetary_value" in got.columns:
        np.testing.assert_allclose(
            got.get_column("monetary_value").to_numpy(),
            expected.get_column("monetary_value").to_numpy(),
            rtol=1e-12,
            atol=1e-9,
        )


# -- CDNOW: the data that ships with lifetimes -----------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = load_dataset("CDNOW_master.txt", sep=r"\s+")
    assert list(frame.columns) == ["customer_id", "date", "number_of_cds", "dollar_value"]
    frame["date"] = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d")
    return frame


CDNOW = {"customer_col": "customer_id", "ts_col": "date", "amount_col": "dollar_value"}


@pytest.mark.parametrize("as_of", ["1998-06-30", "1997-09-30", None])
@pytest.mark.parametrize("freq", ["D", "W"])
@pytest.mark.parametrize("include_first", [False, True])
def test_cdnow_equals_lifetimes(cdnow, as_of, freq, include_first) -> None:
    expected = lifetimes_reference(cdnow, **CDNOW, as_of=as_of, freq=freq,
                                   include_first=include_first)  # fmt: skip
    got = lifetimes_summary(cdnow, as_of=as_of, freq=freq,
                            include_first_transaction=include_first, **CDNOW)  # fmt: skip
    assert got.height == 23_570  # every CDNOW customer bought in Q1 1997
    assert_same_summary(got, expected, "customer_id")


@pytest.mark.parametrize("freq_multiplier", [7, 2.5])
def test_cdnow_freq_multiplier(cdnow, freq_multiplier) -> None:
    expected = lifetimes_reference(cdnow, **CDNOW, as_of="1998-06-30",
                                   freq_multiplier=freq_multiplier)  # fmt: skip
    got = lifetimes_summary(cdnow, as_of="1998-06-30", freq_multiplier=freq_multiplier, **CDNOW)
    assert_same_summary(got, expected, "customer_id")


def test_cdnow_without_money(cdnow) -> None:
    expected = lifetimes_reference(cdnow, **{**CDNOW, "amount_col": None}, as_of="1997-09-30",
                                   freq="W")  # fmt: skip
    got = lifetimes_summary(cdnow, as_of="1997-09-30", freq="W", **{**CDNOW, "amount_col": None})
    assert got.columns == ["customer_id", *COLUMNS]
    assert_same_summary(got, expected, "customer_id")


@pytest.mark.parametrize("freq", ["M", "Q", "Y"])
@pytest.mark.parametrize("as_of", ["1998-06-30", "1997-09-30"])
def test_cdnow_calendar_periods(cdnow, freq, as_of) -> None:
    with pytest.raises((ValueError, TypeError)):  # why the oracle is not lifetimes itself
        lifetimes_utils.summary_data_from_transaction_data(
            cdnow, "customer_id", "date", observation_period_end=as_of, freq=freq
        )
    expected = lifetimes_reference(cdnow, **CDNOW, as_of=as_of, freq=freq)
    got = lifetimes_summary(cdnow, as_of=as_of, freq=freq, **CDNOW)
    assert_same_summary(got, expected, "customer_id")


def test_period_ordinal_oracle_is_lifetimes_on_days_and_weeks(cdnow) -> None:
    for freq in ("D", "W"):
        direct = lifetimes_reference(cdnow, **CDNOW, as_of="1997-09-30", freq=freq)
        by_ordinals = pl.from_pandas(
            _by_period_ordinals(
                cdnow, "customer_id", "date", "dollar_value", "1997-09-30", freq, 1, False
            ).reset_index()
        ).sort("customer_id")
        assert_same_summary(by_ordinals, direct, "customer_id")


# -- random logs -----------------------------------------------------------------


@st.composite
def lifetimes_cases(draw: st.DrawFn) -> dict[str, Any]:
    log = draw(
        logs(
            max_customers=40,
            id_kinds=("int64_sparse", "string"),
            refunds=False,
            category=False,
            big_customer=False,
        )
    )
    case: dict[str, Any] = {
        "log": log,
        "freq": draw(st.sampled_from(["D", "W", "M", "Q", "Y"])),
        "include_first": draw(st.booleans()),
        "money": draw(st.booleans()),
        "freq_multiplier": draw(st.sampled_from([1, 1, 7, 0.5])),
        "tz": log.data_tz or "UTC",
    }
    kind = draw(st.sampled_from(["none", "date", "datetime"]))
    if kind != "none":
        # on or after the first day: earlier, lifetimes has no customer to report
        day = log.first_day + dt.timedelta(
            days=draw(st.integers(0, (log.last_day - log.first_day).days + 40))
        )
        case["as_of"] = day
        if kind == "datetime":
            case["as_of"] = dt.datetime.combine(day, dt.time(draw(st.integers(0, 23)), 30))
    else:
        case["as_of"] = None
    return case


@given(case=lifetimes_cases())
def test_matches_lifetimes(case) -> None:
    log = case["log"]
    amount_col = "amount" if case["money"] else None
    frame = log.frame.with_columns(pl.col("amount").cast(pl.Float64))
    expected = lifetimes_reference(
        frame.to_pandas(), amount_col=amount_col, as_of=case["as_of"], freq=case["freq"],
        freq_multiplier=case["freq_multiplier"], include_first=case["include_first"],
    )  # fmt: skip
    got = lifetimes_summary(
        log.frame, as_of=case["as_of"], freq=case["freq"], amount_col=amount_col,
        freq_multiplier=case["freq_multiplier"], tz=case["tz"],
        include_first_transaction=case["include_first"],
    )  # fmt: skip
    # ascending ids (strings by their UTF-8 bytes), as in score
    ids = got.get_column("customer_id").to_list()
    if log.id_kind == "string":
        assert ids == sorted(ids, key=lambda s: s.encode())
    else:
        assert ids == sorted(ids)
    assert_same_summary(got.sort("customer_id"), expected, "customer_id")


@given(days=st.lists(st.integers(MIN_DAY, MAX_DAY), min_size=1, max_size=20),
       freq=st.sampled_from(["D", "W", "M", "Q", "Y"]))  # fmt: skip
def test_period_numbers_are_pandas_periods(days, freq) -> None:
    # same periods as pandas, numbered consecutively; last_day is the period's end
    period = _Period(freq)
    ours = period.of(np.array(days, dtype=np.int32))
    dates = [_EPOCH + dt.timedelta(days=d) for d in days]
    theirs = [pd.Period(d, freq) for d in dates]
    offset = ours[0] - theirs[0].ordinal
    assert all(int(o) - p.ordinal == offset for o, p in zip(ours, theirs, strict=True))
    for o, p in zip(ours, theirs, strict=True):
        assert period.last_day(int(o)) == p.asfreq("D", "end").ordinal  # days since 1970


# -- hand-computed examples --------------------------------------------------------


def hand_log() -> pl.DataFrame:
    """Customer 1: Mon 2024-01-01 10 + 5 (two rows, one day), Thu 01-11 20, Fri 01-12 30
    and a refund of -4 on 01-12; customer 2: Fri 01-05 7; customer 3: refunds only."""
    rows = [
        (1, D(2024, 1, 1), 10.0), (1, D(2024, 1, 1), 5.0), (1, D(2024, 1, 11), 20.0),
        (1, D(2024, 1, 12), 30.0), (1, D(2024, 1, 12), -4.0), (2, D(2024, 1, 5), 7.0),
        (3, D(2024, 1, 3), -9.0),
    ]  # fmt: skip
    ids, ts, amount = zip(*rows, strict=True)
    return pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amount})


def test_hand_example_days() -> None:
    got = lifetimes_summary(hand_log(), as_of="2024-01-31")
    # customer 1: purchase days 01-01, 01-11, 01-12 -> 2 repeat days; recency 12 - 1 = 11;
    # T = 31 - 1 = 30; money = mean(20, 30) = 25 (the refund is not a purchase)
    # customer 2: one day -> 0, 0, T = 31 - 5 = 26, money 0; customer 3: no purchase, no row
    assert got.rows() == [(1, 2.0, 11.0, 30.0, 25.0), (2, 0.0, 0.0, 26.0, 0.0)]
    assert got.schema == pl.Schema(
        {
            "customer_id": pl.Int64,
            "frequency": pl.Float64,
            "recency": pl.Float64,
            "T": pl.Float64,
            "monetary_value": pl.Float64,
        }
    )


def test_hand_example_include_first() -> None:
    got = lifetimes_summary(hand_log(), as_of="2024-01-31", include_first_transaction=True)
    # customer 1: 3 purchase days, money mean(15, 20, 30) = 65 / 3; customer 2: 1 day, 7
    assert got.rows() == [(1, 3.0, 11.0, 30.0, 65 / 3), (2, 1.0, 0.0, 26.0, 7.0)]


def test_hand_example_weeks() -> None:
    got = lifetimes_summary(hand_log(), as_of="2024-01-31", freq="W")
    # weeks Mon..Sun: 01-01..07 (0), 01-08..14 (1), ..., 01-29..02-04 (4) holds as_of
    # customer 1: weeks 0 and 1 -> frequency 1, recency 1, T 4, money 20 + 30 = 50
    # customer 2: week 0 -> 0, 0, 4, 0
    assert got.rows() == [(1, 1.0, 1.0, 4.0, 50.0), (2, 0.0, 0.0, 4.0, 0.0)]


def test_hand_example_freq_multiplier() -> None:
    got = lifetimes_summary(hand_log(), as_of="2024-01-31", freq_multiplier=7)
    # recency and T in weeks with fractions; frequency and money unchanged
    assert got.rows() == [(1, 2.0, 11 / 7, 30 / 7, 25.0), (2, 0.0, 0.0, 26 / 7, 0.0)]


def test_hand_example_calendar_periods() -> None:
    log = pl.DataFrame({
        "customer_id": [5] * 5,
        "ts": [D(2024, 1, 31), D(2024, 2, 1), D(2024, 3, 15), D(2024, 4, 1), D(2025, 1, 1)],
        "amount": [1.0, 2.0, 4.0, 8.0, 16.0],
    })  # fmt: skip
    summary = {f: lifetimes_summary(log, as_of="2025-02-10", freq=f).row(0) for f in "MQY"}
    # M: Jan Feb Mar Apr 2024, Jan 2025 -> 4 repeats; recency Jan 24 -> Jan 25 = 12;
    #    T to Feb 2025 = 13; money mean(2, 4, 8, 16) = 7.5
    assert summary["M"] == (5, 4.0, 12.0, 13.0, 7.5)
    # Q: 2024Q1 (1 + 2 + 4), 2024Q2 (8), 2025Q1 (16) -> 2 repeats; recency 4; T 4;
    #    money mean(8, 16) = 12
    assert summary["Q"] == (5, 2.0, 4.0, 4.0, 12.0)
    # Y: 2024 (15), 2025 (16) -> 1 repeat, recency 1, T 1, money 16
    assert summary["Y"] == (5, 1.0, 1.0, 1.0, 16.0)
    # "A" is lifetimes' old name of "Y"
    assert lifetimes_summary(log, as_of="2025-02-10", freq="A").row(0) == summary["Y"]


def test_week_boundary_and_epoch() -> None:
    log = pl.DataFrame({
        "customer_id": [1, 1, 2, 2],
        # Sun 2024-01-07 | Mon 01-08: two weeks; Sun 1969-12-28 | Mon 12-29: two weeks
        "ts": [D(2024, 1, 7), D(2024, 1, 8), D(1969, 12, 28), D(1969, 12, 29)],
        "amount": [1.0, 2.0, 3.0, 4.0],
    })  # fmt: skip
    got = lifetimes_summary(log, as_of="2024-01-08", freq="W")
    assert got.row(0) == (1, 1.0, 1.0, 1.0, 2.0)
    # customer 2's first week starts Mon 1969-12-22 (day -10), the week of as_of starts
    # Mon 2024-01-08 (day 19,730): 19,740 days = 2,820 weeks
    assert got.row(1) == (2, 1.0, 1.0, 2820.0, 4.0)


def test_as_of_period_is_observed_in_full() -> None:
    # lifetimes compares period starts: rows later in the period of as_of count
    log = pl.DataFrame({
        "customer_id": [1, 1, 1, 1],
        "ts": [dt.datetime(2024, 1, 3, 9), dt.datetime(2024, 1, 10, 20),
               dt.datetime(2024, 1, 14, 23), dt.datetime(2024, 1, 15, 0)],
        "amount": [1.0, 2.0, 4.0, 8.0],
    })  # fmt: skip
    # W, as_of Wed 01-10 08:00: weeks 01-01..07 and 01-08..14 (both rows) count; 01-15 not
    weeks = lifetimes_summary(log, as_of=dt.datetime(2024, 1, 10, 8), freq="W")
    assert weeks.row(0) == (1, 1.0, 1.0, 1.0, 6.0)
    # D, as_of 01-10 08:00: the whole day 01-10 counts (its 20:00 row too)
    days = lifetimes_summary(log, as_of="2024-01-10T08:00", freq="D")
    assert days.row(0) == (1, 1.0, 7.0, 7.0, 2.0)
    pdf = log.to_pandas()
    for freq, got in (("W", weeks), ("D", days)):
        expected = lifetimes_reference(pdf, as_of="2024-01-10 08:00", freq=freq)
        assert_same_summary(got, expected, "customer_id")


def test_periods_are_cut_in_tz() -> None:
    # 2024-01-07 23:30 UTC is Monday 2024-01-08 00:30 in Berlin: a week later there
    log = pl.DataFrame({
        "customer_id": [1, 1],
        "ts": [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 7, 23, 30)],
        "amount": [1.0, 2.0],
    }).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))  # fmt: skip
    utc = lifetimes_summary(log, freq="W")
    berlin = lifetimes_summary(log, freq="W", tz="Europe/Berlin")
    assert utc.row(0) == (1, 0.0, 0.0, 0.0, 0.0)
    assert berlin.row(0) == (1, 1.0, 1.0, 1.0, 2.0)


def test_without_amount_column() -> None:
    log = hand_log().drop("amount")
    got = lifetimes_summary(log, as_of="2024-01-31", amount_col=None)
    # without money every row is a purchase: customer 3's day counts (no refunds)
    assert got.columns == ["customer_id", "frequency", "recency", "T"]
    assert got.rows() == [(1, 2.0, 11.0, 30.0), (2, 0.0, 0.0, 26.0), (3, 0.0, 0.0, 28.0)]


def test_other_columns_and_inputs() -> None:
    log = hand_log().rename({"customer_id": "cust", "ts": "when", "amount": "value"})
    log = log.with_columns(pl.col("cust").cast(pl.String).replace({"1": "b", "2": "a"}))
    got = lifetimes_summary(log.to_pandas(), as_of="2024-01-31", customer_col="cust",
                            ts_col="when", amount_col="value")  # fmt: skip
    assert got.columns == ["cust", "frequency", "recency", "T", "monetary_value"]
    assert got.rows() == [("a", 0.0, 0.0, 26.0, 0.0), ("b", 2.0, 11.0, 30.0, 25.0)]


def test_empty_results() -> None:
    # as_of before every row: nothing observed
    got = lifetimes_summary(hand_log(), as_of="2023-12-31")
    assert got.height == 0 and got.columns[-1] == "monetary_value"
    assert got.schema["customer_id"] == pl.Int64
    empty = pl.DataFrame(schema={"customer_id": pl.String, "ts": pl.Date, "amount": pl.Float64})
    assert lifetimes_summary(empty).schema["customer_id"] == pl.String


def test_default_as_of_is_the_last_day() -> None:
    # the last day in the data is 2024-01-12 (refund rows count for it, as in lifetimes)
    got = lifetimes_summary(hand_log())
    assert got.get_column("T").to_list() == [11.0, 7.0]


def test_threads_give_the_same_result() -> None:
    from churn_engine._generate import generate_log

    log = generate_log(3000, seed=5)
    one = lifetimes_summary(log, freq="W", threads=1)
    assert one.equals(lifetimes_summary(log, freq="W", threads=2))


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "message"),
    [
        ("X", "freq must be one of"),
        ("h", "shorter than a day"),
        ("30min", "shorter than a day"),
        ("2W", "multiples of a period"),
        ("ME", "freq must be one of"),
        (7, "freq must be one of"),
    ],
)
def test_bad_freq(freq, message) -> None:
    with pytest.raises(ConfigError, match=message):
        lifetimes_summary(hand_log(), freq=freq)


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "7"])
def test_bad_freq_multiplier(value) -> None:
    with pytest.raises(ConfigError, match="freq_multiplier"):
        lifetimes_summary(hand_log(), freq_multiplier=value)


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="include_first_transaction"):
        lifetimes_summary(hand_log(), include_first_transaction="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="as_of"):
        lifetimes_summary(hand_log(), as_of="31/01/2024")
    with pytest.raises(ConfigError, match="tz"):
        lifetimes_summary(hand_log(), as_of=dt.datetime(2024, 1, 3), tz="Mars/Base")


def test_missing_columns() -> None:
    with pytest.raises(SchemaError, match="'amount' \\(amount_col\\)"):
        lifetimes_summary(hand_log().drop("amount"))
    with pytest.raises(SchemaError, match="'date' \\(ts_col\\)"):
        lifetimes_summary(hand_log(), ts_col="date")


def test_bad_values_raise_or_are_left_out() -> None:
    log = hand_log().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("ts")).alias("ts")
    )
    with pytest.raises(churn_engine.DataError, match="'ts'"):
        lifetimes_summary(log)
    # quarantined: customer 1 without its 01-11 row
    got = lifetimes_summary(log, as_of="2024-01-31", on_error="quarantine")
    assert got.row(0) == (1, 1.0, 11.0, 30.0, 30.0)


def test_kernel_reports_bad_layouts() -> None:
    # the kernel never raises inside its loop: a status code becomes a KernelError
    from churn_engine._summary import period_summary

    def run(offsets, period, as_of_period=10):
        return period_summary(
            np.array(offsets, dtype=np.int64), np.array(period, dtype=np.int32),
            np.ones(len(period)), as_of_period, False, 1.0, 1,
        )  # fmt: skip

    frequency, recency, t, money = run([0, 3], [1, 1, 4])  # periods 1 (x2) and 4
    assert (frequency[0], recency[0], t[0], money[0]) == (1.0, 3.0, 9.0, 1.0)
    with pytest.raises(churn_engine.KernelError, match="not ascending"):
        run([0, 2], [4, 1])
    with pytest.raises(churn_engine.KernelError, match="after the as_of"):
        run([0, 1], [11])
    with pytest.raises(churn_engine.KernelError, match="without occasions"):
        run([0, 0, 1], [1])
    with pytest.raises(churn_engine.KernelError, match="offsets outside"):
        run([0, 3, 2], [1, 2])
    with pytest.raises(ValueError, match="offsets must run"):
        run([0, 1], [1, 2])
