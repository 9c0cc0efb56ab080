"""Hand-computed cases for every definition of DESIGN.md section 4.

Each test runs twice, against the plain-Polars oracle (``reference``) and the
compiled engine (``engine``). Expected numbers are worked out by hand in the
comments next to them, never by calling the code under test.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

import numpy as np
import polars as pl
import pytest

from churn_engine._reference import reference_score
from churn_engine.config import RfmCuts, ScoreConfig

D = dt.date
UTC = dt.timezone.utc


@pytest.fixture(params=["reference", "engine"])
def run(request):
    if request.param == "reference":

        def _run(df, as_of=None, **options):
            r = reference_score(df, ScoreConfig(**options), as_of)
            return r.customers, r.cuts, r  # third item: .rows_after_as_of, ...

    else:

        def _run(df, as_of=None, **options):
            import churn_engine

            res = churn_engine.Scorer(churn_engine.ScoreConfig(**options)).run(df, as_of=as_of)
            return res.customers, res.cuts, res.stats

    return _run


def frame(rows: list[tuple[Any, Any, Any]], ts_dtype: pl.DataType | None = None) -> pl.DataFrame:
    """(customer_id, ts, amount) tuples -> a frame; float amounts unless given ints."""
    ids, ts, amounts = (list(col) for col in zip(*rows, strict=True)) if rows else ([], [], [])
    schema: dict[str, Any] = {
        "customer_id": pl.Int64,
        "ts": ts_dtype or pl.Date,
        "amount": pl.Float64,
    }
    return pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amounts}, schema=schema)


def by_id(out: pl.DataFrame, key: str = "customer_id") -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in out.iter_rows(named=True)}


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------
# counts, dates, money
# ---------------------------------------------------------------------------


def test_n_orders_counts_days_not_rows_and_skips_refund_days(run):
    df = frame(
        [
            (1, D(2024, 1, 1), 10.0),
            (1, D(2024, 1, 1), 5.0),  # same day: one occasion
            (1, D(2024, 1, 3), -4.0),  # refund-only day: no occasion
            (1, D(2024, 1, 5), 0.0),  # zero amount is a purchase row
        ]
    )
    out, _, stats = run(df)
    row = by_id(out)[1]
    assert row["n_orders"] == 2  # Jan 1, Jan 5
    assert row["n_rows"] == 4  # refunds included
    assert row["first_purchase"] == D(2024, 1, 1)
    assert row["last_purchase"] == D(2024, 1, 5)
    assert row["tenure_days"] == 4  # as_of = Jan 5 (last day in data)
    assert row["recency_days"] == 0
    assert row["monetary_total"] == approx(11.0)  # 10 + 5 - 4 + 0
    assert row["refund_total"] == approx(4.0)
    assert row["monetary_mean"] == approx(5.5)  # 11 / 2
    assert row["buyer_type"] == "repeat"
    assert stats.rows_after_as_of == 0
    assert stats.customers_without_purchase == 0


def test_first_last_tenure_recency_with_explicit_as_of(run):
    df = frame([(7, D(2024, 3, 1), 1.0), (7, D(2024, 3, 10), 2.0)])
    out, _, _ = run(df, as_of=D(2024, 3, 31))
    row = by_id(out)[7]
    assert (row["first_purchase"], row["last_purchase"]) == (D(2024, 3, 1), D(2024, 3, 10))
    assert row["tenure_days"] == 30  # Mar 31 - Mar 1
    assert row["recency_days"] == 21  # Mar 31 - Mar 10


def test_default_as_of_is_last_day_of_any_row(run):
    # customer 2's refund on Jan 10 is the last row: as_of_day = Jan 10
    df = frame([(1, D(2024, 1, 1), 5.0), (2, D(2024, 1, 2), 9.0), (2, D(2024, 1, 10), -3.0)])
    out, _, stats = run(df)
    rows = by_id(out)
    assert rows[1]["recency_days"] == 9
    assert rows[2]["recency_days"] == 8
    assert rows[2]["monetary_total"] == approx(6.0)
    assert rows[2]["refund_total"] == approx(3.0)
    assert stats.as_of_day == D(2024, 1, 10)


def test_integer_amounts_give_int64_money(run):
    df = pl.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "ts": [D(2024, 1, 1), D(2024, 1, 2), D(2024, 1, 3)],
            "amount": pl.Series([100, 250, -50], dtype=pl.Int32),
        }
    )
    out, _, _ = run(df)
    assert out.schema["monetary_total"] == pl.Int64
    assert out.schema["refund_total"] == pl.Int64
    assert out.schema["monetary_mean"] == pl.Float64
    row = by_id(out)[1]
    assert row["monetary_total"] == 300  # 100 + 250 - 50
    assert row["refund_total"] == 50
    assert row["n_orders"] == 2
    assert row["monetary_mean"] == approx(150.0)  # 300 / 2


def test_all_refund_customer_is_not_scored_but_counted(run):
    df = frame(
        [
            (1, D(2024, 1, 1), 10.0),
            (2, D(2024, 1, 2), -5.0),
            (2, D(2024, 1, 3), -1.0),
            # customer 3: refund before as_of, its purchase after as_of
            (3, D(2024, 1, 2), -2.0),
            (3, D(2024, 1, 9), 8.0),
        ]
    )
    out, _, stats = run(df, as_of=D(2024, 1, 5))
    assert out["customer_id"].to_list() == [1]
    assert stats.customers_without_purchase == 2  # customers 2 and 3
    assert stats.rows_after_as_of == 1  # customer 3's Jan 9 row


def test_only_refunds_gives_empty_full_schema(run):
    df = frame([(1, D(2024, 1, 1), -5.0)])
    out, cuts, stats = run(df)
    assert out.height == 0
    assert out.columns == EXPECTED_COLUMNS
    assert cuts is None
    assert stats.customers_without_purchase == 1


# ---------------------------------------------------------------------------
# intervals
# ---------------------------------------------------------------------------


def test_interval_stats_odd_even_one_and_no_gap(run):
    df = frame(
        [
            # customer 1: Jan 1, 3, 6, 12 -> gaps 2, 3, 6 (odd count)
            (1, D(2024, 1, 1), 1.0),
            (1, D(2024, 1, 3), 1.0),
            (1, D(2024, 1, 6), 1.0),
            (1, D(2024, 1, 12), 1.0),
            # customer 2: Jan 1, 2, 5, 9, 19 -> gaps 1, 3, 4, 10 (even count)
            (2, D(2024, 1, 1), 1.0),
            (2, D(2024, 1, 2), 1.0),
            (2, D(2024, 1, 5), 1.0),
            (2, D(2024, 1, 9), 1.0),
            (2, D(2024, 1, 19), 1.0),
            # customer 3: Jan 1, 8 -> one gap of 7
            (3, D(2024, 1, 1), 1.0),
            (3, D(2024, 1, 8), 1.0),
            # customer 4: one-time
            (4, D(2024, 1, 5), 1.0),
        ]
    )
    out, _, _ = run(df)
    rows = by_id(out)
    # 1: mean 11/3; median 3; squares (25 + 4 + 49)/9 = 78/9, / 2 = 13/3
    assert rows[1]["interval_mean_days"] == approx(11 / 3)
    assert rows[1]["interval_median_days"] == approx(3.0)
    assert rows[1]["interval_std_days"] == approx(math.sqrt(13 / 3))
    # 2: mean 18/4 = 4.5; median (3 + 4)/2 = 3.5; squares 12.25+2.25+0.25+30.25 = 45, / 3
    assert rows[2]["interval_mean_days"] == approx(4.5)
    assert rows[2]["interval_median_days"] == approx(3.5)
    assert rows[2]["interval_std_days"] == approx(math.sqrt(15.0))
    # 3: one gap: mean = median = 7, std undefined
    assert rows[3]["interval_mean_days"] == approx(7.0)
    assert rows[3]["interval_median_days"] == approx(7.0)
    assert rows[3]["interval_std_days"] is None
    # 4: no gap
    assert rows[4]["interval_mean_days"] is None
    assert rows[4]["interval_median_days"] is None
    assert rows[4]["interval_std_days"] is None
    assert rows[4]["buyer_type"] == "one_time"


# ---------------------------------------------------------------------------
# prior and cycle
# ---------------------------------------------------------------------------

PRIOR_ROWS = [
    (1, D(2024, 1, 1), 1.0),
    (1, D(2024, 1, 3), 1.0),  # mean 2
    (2, D(2024, 1, 1), 1.0),
    (2, D(2024, 1, 5), 1.0),  # mean 4
    (3, D(2024, 1, 1), 1.0),
    (3, D(2024, 1, 11), 1.0),  # mean 10
    (4, D(2024, 1, 11), 1.0),  # one-time
]


def test_prior_is_median_of_means_odd_count_weight_1(run):
    out, _, _ = run(frame(PRIOR_ROWS))  # prior = median(2, 4, 10) = 4
    rows = by_id(out)
    assert rows[1]["cycle_days"] == approx(3.0)  # (1*2 + 1*4) / 2
    assert rows[2]["cycle_days"] == approx(4.0)  # (4 + 4) / 2
    assert rows[3]["cycle_days"] == approx(7.0)  # (10 + 4) / 2
    assert rows[4]["cycle_days"] == approx(4.0)  # one-time: the prior


def test_prior_weight_2(run):
    out, _, _ = run(frame(PRIOR_ROWS), prior_weight=2.0)  # prior still 4
    rows = by_id(out)
    assert rows[1]["cycle_days"] == approx(10 / 3)  # (2 + 2*4) / 3
    assert rows[2]["cycle_days"] == approx(4.0)  # (4 + 8) / 3
    assert rows[3]["cycle_days"] == approx(6.0)  # (10 + 8) / 3
    assert rows[4]["cycle_days"] == approx(4.0)


def test_prior_is_median_of_means_even_count(run):
    # add customer 5 with mean 6: prior = median(2, 4, 6, 10) = (4 + 6) / 2 = 5
    rows_in = [*PRIOR_ROWS, (5, D(2024, 1, 5), 1.0), (5, D(2024, 1, 11), 1.0)]
    out, _, _ = run(frame(rows_in))
    rows = by_id(out)
    assert rows[4]["cycle_days"] == approx(5.0)
    assert rows[1]["cycle_days"] == approx(3.5)  # (2 + 5) / 2


def test_fixed_prior_days_overrides_median(run):
    out, _, _ = run(frame(PRIOR_ROWS), prior_days=10.0)
    rows = by_id(out)
    assert rows[1]["cycle_days"] == approx(6.0)  # (2 + 10) / 2
    assert rows[4]["cycle_days"] == approx(10.0)


def test_cycle_with_two_gaps_and_weights(run):
    # gaps 3, 5 -> k = 2, mean 4; fixed prior 10
    df = frame([(1, D(2024, 1, 1), 1.0), (1, D(2024, 1, 4), 1.0), (1, D(2024, 1, 9), 1.0)])
    out, _, _ = run(df, prior_days=10.0)
    assert by_id(out)[1]["cycle_days"] == approx(6.0)  # (2*4 + 1*10) / 3 = 18/3
    out, _, _ = run(df, prior_days=10.0, prior_weight=2.0)
    assert by_id(out)[1]["cycle_days"] == approx(7.0)  # (2*4 + 2*10) / 4 = 28/4


@pytest.mark.parametrize(
    ("prior", "expected"),
    [
        (2.5, D(2024, 1, 13)),  # floor(2.5 + 0.5) = 3 (half up, not to even)
        (2.4, D(2024, 1, 12)),  # floor(2.9) = 2
        (3.5, D(2024, 1, 14)),  # floor(4.0) = 4
        (2.6, D(2024, 1, 13)),  # floor(3.1) = 3
    ],
)
def test_expected_next_purchase_rounds_half_up(run, prior, expected):
    df = frame([(1, D(2024, 1, 10), 1.0)])  # one-time: cycle = prior
    out, _, _ = run(df, prior_days=prior)
    row = by_id(out)[1]
    assert row["cycle_days"] == approx(prior)
    assert row["expected_next_purchase"] == expected


# ---------------------------------------------------------------------------
# cycles, overdue, status
# ---------------------------------------------------------------------------

# Jan 1 and Jan 11: mean 10; with prior_days=10 the cycle is 10 and last = Jan 11.
REPEAT = frame([(1, D(2024, 1, 1), 1.0), (1, D(2024, 1, 11), 1.0)])


def test_cycles_since_last_and_days_overdue(run):
    out, _, _ = run(REPEAT, as_of=D(2024, 1, 26), prior_days=10.0)
    row = by_id(out)[1]
    assert row["cycle_days"] == approx(10.0)
    assert row["recency_days"] == 15
    assert row["cycles_since_last"] == approx(1.5)  # 15 / 10
    assert row["days_overdue"] == approx(5.0)  # 15 - 10
    assert row["expected_next_purchase"] == D(2024, 1, 21)  # Jan 11 + 10


def test_days_overdue_clamps_at_zero(run):
    out, _, _ = run(REPEAT, as_of=D(2024, 1, 14), prior_days=10.0)
    row = by_id(out)[1]
    assert row["recency_days"] == 3
    assert row["cycles_since_last"] == approx(0.3)
    assert row["days_overdue"] == 0.0  # max(0, 3 - 10)


@pytest.mark.parametrize(
    ("as_of", "options", "status", "reason"),
    [
        (D(2024, 1, 14), {}, "active", "cycles<1.5"),  # 3/10 = 0.3
        (D(2024, 1, 25), {}, "active", "cycles<1.5"),  # 14/10 = 1.4
        (D(2024, 1, 26), {}, "at_risk", "cycles>=1.5"),  # 15/10 = 1.5
        (D(2024, 1, 30), {}, "at_risk", "cycles>=1.5"),  # 19/10 = 1.9
        (D(2024, 1, 31), {}, "churned", "cycles>=2.0"),  # 20/10 = 2.0
        (D(2024, 2, 20), {}, "churned", "cycles>=2.0"),  # 40/10 = 4.0
        # horizon first: recency 15 >= 15 although cycles only say at_risk
        (D(2024, 1, 26), {"horizon_days": 15}, "churned", "no_purchase_15d"),
        (D(2024, 1, 25), {"horizon_days": 15}, "active", "cycles<1.5"),  # 14 < 15
        # other thresholds show up in the reason codes
        (
            D(2024, 1, 23),
            {"at_risk_cycles": 1.2, "churn_cycles": 3.0},
            "at_risk",
            "cycles>=1.2",
        ),  # 12/10 = 1.2
        (
            D(2024, 2, 10),
            {"at_risk_cycles": 1.2, "churn_cycles": 3.0},
            "churned",
            "cycles>=3.0",
        ),  # 30/10 = 3.0
        (D(2024, 1, 22), {"at_risk_cycles": 1.2}, "active", "cycles<1.2"),  # 11/10
    ],
)
def test_repeat_buyer_status(run, as_of, options, status, reason):
    out, _, _ = run(REPEAT, as_of=as_of, prior_days=10.0, **options)
    row = by_id(out)[1]
    assert (row["status"], row["status_reason"]) == (status, reason)


def test_horizon_default_365(run):
    # recency 365 (2024 is a leap year: Jan 11 2024 -> Jan 10 2025 is 365 days)
    out, _, _ = run(REPEAT, as_of=D(2025, 1, 10), prior_days=1000.0)
    row = by_id(out)[1]
    assert row["recency_days"] == 365
    assert (row["status"], row["status_reason"]) == ("churned", "no_purchase_365d")
    # one day earlier: 364 days, 364 / ((10 + 1000)/2 = 505) cycles -> active
    out, _, _ = run(REPEAT, as_of=D(2025, 1, 9), prior_days=1000.0)
    row = by_id(out)[1]
    assert row["cycle_days"] == approx(505.0)
    assert (row["status"], row["status_reason"]) == ("active", "cycles<1.5")


ONE_TIME = frame([(1, D(2024, 1, 1), 1.0)])


@pytest.mark.parametrize(
    ("as_of", "status", "reason"),
    [
        (D(2024, 1, 15), "active", "one_time_recency<1.5x_prior"),  # 14 < 1.5 * 10
        (D(2024, 1, 16), "at_risk", "one_time_recency>=1.5x_prior"),  # 15 >= 15
        (D(2024, 1, 31), "at_risk", "one_time_recency>=1.5x_prior"),  # 30: never cycles-churned
        (D(2024, 12, 31), "churned", "no_purchase_365d"),  # 365 days
    ],
)
def test_one_time_buyer_with_prior(run, as_of, status, reason):
    out, _, _ = run(ONE_TIME, as_of=as_of, prior_days=10.0)
    row = by_id(out)[1]
    assert row["buyer_type"] == "one_time"
    assert row["cycle_days"] == approx(10.0)
    assert (row["status"], row["status_reason"]) == (status, reason)


def test_one_time_buyer_with_median_prior(run):
    # repeat buyers' means 2, 4, 10 -> prior 4; one-time customer 4 bought Jan 11
    out, _, _ = run(frame(PRIOR_ROWS), as_of=D(2024, 1, 17))  # recency 6 >= 1.5 * 4
    row = by_id(out)[4]
    assert row["cycles_since_last"] == approx(1.5)  # 6 / 4
    assert row["days_overdue"] == approx(2.0)
    assert (row["status"], row["status_reason"]) == ("at_risk", "one_time_recency>=1.5x_prior")
    out, _, _ = run(frame(PRIOR_ROWS), as_of=D(2024, 1, 16))  # 5 < 6
    row = by_id(out)[4]
    assert (row["status"], row["status_reason"]) == ("active", "one_time_recency<1.5x_prior")


def test_one_time_buyers_without_prior(run):
    df = frame([(1, D(2024, 1, 1), 3.0), (2, D(2024, 6, 1), 4.0)])
    out, _, _ = run(df, as_of=D(2024, 12, 31))
    rows = by_id(out)
    for cid in (1, 2):
        row = rows[cid]
        assert row["cycle_days"] is None
        assert row["cycles_since_last"] is None
        assert row["expected_next_purchase"] is None
        assert row["days_overdue"] is None
    # 1: recency 365 -> horizon; 2: recency 213 -> active, no prior
    assert (rows[1]["status"], rows[1]["status_reason"]) == ("churned", "no_purchase_365d")
    assert (rows[2]["status"], rows[2]["status_reason"]) == ("active", "one_time_no_prior")


# ---------------------------------------------------------------------------
# as_of and time zones
# ---------------------------------------------------------------------------

INTRADAY = [
    (1, dt.datetime(2024, 1, 10, 8, 0), 50.0),
    (1, dt.datetime(2024, 1, 10, 20, 0), 30.0),
    (1, dt.datetime(2024, 1, 11, 9, 0), 20.0),
]


def test_as_of_date_is_end_of_day(run):
    out, _, stats = run(frame(INTRADAY, pl.Datetime("us")), as_of=D(2024, 1, 10))
    row = by_id(out)[1]
    assert row["n_rows"] == 2  # both Jan 10 rows
    assert row["monetary_total"] == approx(80.0)
    assert row["n_orders"] == 1
    assert row["recency_days"] == 0
    assert stats.rows_after_as_of == 1
    assert stats.as_of_day == D(2024, 1, 10)


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_as_of_datetime_is_taken_as_is(run, unit):
    out, _, stats = run(frame(INTRADAY, pl.Datetime(unit)), as_of=dt.datetime(2024, 1, 10, 12))
    row = by_id(out)[1]
    assert row["n_rows"] == 1  # only the 08:00 row
    assert row["monetary_total"] == approx(50.0)
    assert stats.rows_after_as_of == 2
    assert stats.as_of_day == D(2024, 1, 10)
    # the boundary is inclusive: ts == as_of is used
    out, _, stats = run(frame(INTRADAY, pl.Datetime(unit)), as_of=dt.datetime(2024, 1, 10, 20))
    assert by_id(out)[1]["n_rows"] == 2
    assert stats.rows_after_as_of == 1


def test_as_of_datetime_on_date_column_keeps_that_day(run):
    df = frame([(1, D(2024, 1, 9), 1.0), (1, D(2024, 1, 10), 2.0), (1, D(2024, 1, 11), 4.0)])
    out, _, stats = run(df, as_of=dt.datetime(2024, 1, 10, 0, 0))
    row = by_id(out)[1]
    assert row["n_rows"] == 2  # Jan 9 and Jan 10
    assert row["monetary_total"] == approx(3.0)
    assert stats.rows_after_as_of == 1


def test_tz_aware_timestamps_are_cut_in_config_tz(run):
    # 20:00 UTC Jan 10 and 02:00 UTC Jan 11
    rows = [
        (1, dt.datetime(2024, 1, 10, 20, 0, tzinfo=UTC), 1.0),
        (1, dt.datetime(2024, 1, 11, 2, 0, tzinfo=UTC), 1.0),
    ]
    df = frame(rows, pl.Datetime("us", "UTC"))
    out, _, _ = run(df)  # UTC: two days
    row = by_id(out)[1]
    assert (row["n_orders"], row["first_purchase"]) == (2, D(2024, 1, 10))
    # New York (UTC-5): 15:00 and 21:00 on Jan 10 -> one day
    out, _, stats = run(df, tz="America/New_York")
    row = by_id(out)[1]
    assert (row["n_orders"], row["first_purchase"]) == (1, D(2024, 1, 10))
    assert stats.as_of_day == D(2024, 1, 10)
    # Tokyo (UTC+9): 05:00 and 11:00 on Jan 11 -> one day, Jan 11
    out, _, stats = run(df, tz="Asia/Tokyo")
    row = by_id(out)[1]
    assert (row["n_orders"], row["first_purchase"]) == (1, D(2024, 1, 11))
    assert stats.as_of_day == D(2024, 1, 11)


def test_tz_aware_column_in_other_zone(run):
    # stored in Tokyo: 2024-01-11 07:00 +09:00 = 2024-01-10 22:00 UTC
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    rows = [(1, dt.datetime(2024, 1, 11, 7, 0, tzinfo=tokyo), 1.0)]
    df = frame(rows, pl.Datetime("ms", "Asia/Tokyo"))
    out, _, _ = run(df)  # UTC day Jan 10
    assert by_id(out)[1]["last_purchase"] == D(2024, 1, 10)


def test_naive_timestamps_are_taken_to_be_in_tz(run):
    rows = [(1, dt.datetime(2024, 1, 10, 23, 30), 1.0)]
    out, _, _ = run(frame(rows, pl.Datetime("us")), tz="Asia/Tokyo")
    assert by_id(out)[1]["last_purchase"] == D(2024, 1, 10)  # no conversion


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("ns", 1_000_000_000)])
def test_integer_epochs_are_utc(run, unit, scale):
    # 2024-01-10 23:30 UTC = 2024-01-11 08:30 in Tokyo
    epoch = int(dt.datetime(2024, 1, 10, 23, 30, tzinfo=UTC).timestamp()) * scale
    df = frame([(1, epoch, 1.0)], pl.Int64)
    out, _, _ = run(df, ts_unit=unit)
    assert by_id(out)[1]["last_purchase"] == D(2024, 1, 10)
    out, _, _ = run(df, ts_unit=unit, tz="Asia/Tokyo")
    assert by_id(out)[1]["last_purchase"] == D(2024, 1, 11)


def test_as_of_datetime_with_tz_aware_column(run):
    # 10:00 UTC = 19:00 Tokyo, 14:00 UTC = 23:00 Tokyo, both on Jan 10 in Tokyo
    rows = [
        (1, dt.datetime(2024, 1, 10, 10, 0, tzinfo=UTC), 1.0),
        (1, dt.datetime(2024, 1, 10, 14, 0, tzinfo=UTC), 2.0),
    ]
    df = frame(rows, pl.Datetime("us", "UTC"))
    # naive as_of is in tz: 21:00 Tokyo = 12:00 UTC -> only the first row
    out, _, stats = run(df, as_of=dt.datetime(2024, 1, 10, 21, 0), tz="Asia/Tokyo")
    assert by_id(out)[1]["n_rows"] == 1
    assert stats.rows_after_as_of == 1
    assert stats.as_of_day == D(2024, 1, 10)
    # tz-aware as_of: 2024-01-10 13:00 UTC = 22:00 Tokyo, same cut
    out, _, stats = run(df, as_of=dt.datetime(2024, 1, 10, 13, tzinfo=UTC), tz="Asia/Tokyo")
    assert by_id(out)[1]["n_rows"] == 1
    assert stats.rows_after_as_of == 1
    # tz-aware as_of: 16:00 UTC = 01:00 Jan 11 in Tokyo -> as_of_day Jan 11, both rows
    out, _, stats = run(df, as_of=dt.datetime(2024, 1, 10, 16, tzinfo=UTC), tz="Asia/Tokyo")
    row = by_id(out)[1]
    assert (row["n_rows"], row["recency_days"]) == (2, 1)
    assert stats.as_of_day == D(2024, 1, 11)


# ---------------------------------------------------------------------------
# RFM
# ---------------------------------------------------------------------------

# as_of Jan 31:      recency  n_orders  monetary
#   1: Jan 21          10        1         10
#   2: Jan 21          10        1         20
#   3: Jan 20, 26       5        2         20
#   4: Jan 1, 10, 28    3        3         40
#   5: Jan 5, 15, 31    0        3         50
#   6: Jan 2, 9, 16, 31 0        4        100
RFM_ROWS = [
    (1, D(2024, 1, 21), 10.0),
    (2, D(2024, 1, 21), 20.0),
    (3, D(2024, 1, 20), 10.0),
    (3, D(2024, 1, 26), 10.0),
    (4, D(2024, 1, 1), 10.0),
    (4, D(2024, 1, 10), 10.0),
    (4, D(2024, 1, 28), 20.0),
    (5, D(2024, 1, 5), 20.0),
    (5, D(2024, 1, 15), 20.0),
    (5, D(2024, 1, 31), 10.0),
    (6, D(2024, 1, 2), 25.0),
    (6, D(2024, 1, 9), 25.0),
    (6, D(2024, 1, 16), 25.0),
    (6, D(2024, 1, 31), 25.0),
]


def _scores(out: pl.DataFrame) -> dict[int, tuple[int, int, int, str, str | None]]:
    return {
        row["customer_id"]: (
            row["r_score"],
            row["f_score"],
            row["m_score"],
            row["rfm_code"],
            row["segment"],
        )
        for row in out.iter_rows(named=True)
    }


def test_rfm_cuts_scores_codes_and_segments(run):
    out, cuts, _ = run(frame(RFM_ROWS), as_of=D(2024, 1, 31))
    # n = 6, bins = 5: cut i is sorted[(5 * i) // 5] = sorted[i], i = 1..4
    # R = -recency sorted: -10 -10 -5 -3 0 0 -> cuts -10 -5 -3 0
    # F sorted:             1   1  2  3 3 4 -> cuts   1  2  3 3
    # M sorted:            10  20 20 40 50 100 -> cuts 20 20 40 50
    assert cuts == RfmCuts(
        recency=(-10.0, -5.0, -3.0, 0.0),
        frequency=(1.0, 2.0, 3.0, 3.0),
        monetary=(20.0, 20.0, 40.0, 50.0),
    )
    assert _scores(out) == {
        1: (1, 1, 1, "111", "Lost"),  # nothing strictly below -10 / 1 / 10
        2: (1, 1, 1, "111", "Lost"),  # M 20: the cuts 20, 20 are not below
        3: (2, 2, 1, "221", "About To Sleep"),  # ties with 2 on M: same score
        4: (3, 3, 3, "333", "Potential Loyalist"),
        5: (4, 3, 4, "434", "Need Attention"),
        6: (4, 5, 5, "455", "Champions"),  # R ties with 5
    }
    assert out.schema["r_score"] == pl.Int8
    assert out.schema["rfm_code"] == pl.String


def test_rfm_given_cuts_are_reused(run):
    given = RfmCuts(
        recency=(-20.0, -9.0, -4.0, -1.0),
        frequency=(1.0, 1.0, 2.0, 3.0),
        monetary=(5.0, 15.0, 30.0, 60.0),
    )
    out, cuts, _ = run(frame(RFM_ROWS), as_of=D(2024, 1, 31), cuts=given)
    assert cuts == given
    assert _scores(out) == {
        1: (2, 1, 2, "212", "Hibernating"),  # R -10 > -20; F 1; M 10 > 5
        2: (2, 1, 3, "213", "About To Sleep"),  # M 20 > 5, 15
        3: (3, 3, 3, "333", "Potential Loyalist"),  # R -5 > -20, -9; F 2 > 1, 1
        4: (4, 4, 4, "444", "Loyal"),
        5: (5, 4, 4, "544", "Champions"),
        6: (5, 5, 5, "555", "Champions"),
    }


def test_rfm_three_bins_segment_null(run):
    out, cuts, _ = run(frame(RFM_ROWS), as_of=D(2024, 1, 31), rfm_bins=3)
    # cut i at sorted[(5 * i) // 3]: indices 1 and 3
    assert cuts == RfmCuts(recency=(-10.0, -3.0), frequency=(1.0, 3.0), monetary=(20.0, 40.0))
    assert _scores(out) == {
        1: (1, 1, 1, "111", None),
        2: (1, 1, 1, "111", None),
        3: (2, 2, 1, "221", None),  # R -5 > -10; F 2 > 1; M 20
        4: (2, 2, 2, "222", None),  # R -3 not > -3; F 3 not > 3; M 40 not > 40
        5: (3, 2, 3, "323", None),
        6: (3, 3, 3, "333", None),
    }
    assert out.schema["segment"] == pl.String


def test_rfm_three_bins_with_own_segment_map(run):
    codes = [f"{r}{f}{m}" for r in "123" for f in "123" for m in "123"]
    seg_map = {
        "sleeping": [c for c in codes if c[0] == "1"],
        "awake": [c for c in codes if c[0] != "1"],
    }
    out, _, _ = run(frame(RFM_ROWS), as_of=D(2024, 1, 31), rfm_bins=3, segment_map=seg_map)
    segments = {cid: s[4] for cid, s in _scores(out).items()}
    # r_scores 1 1 2 2 3 3 (see test_rfm_three_bins_segment_null)
    assert segments == {
        1: "sleeping",
        2: "sleeping",
        3: "awake",
        4: "awake",
        5: "awake",
        6: "awake",
    }


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 50, 101, 1000])
def test_reference_rfm_cuts_match_numpy_lower_quantile(n):
    rng = np.random.default_rng(n)
    days = rng.integers(0, 60, n)
    amounts = np.round(rng.gamma(2.0, 30.0, n), 2)
    # each customer: one to three rows on distinct days
    extra = rng.integers(0, 3, n)
    rows = []
    for cid in range(n):
        for j in range(int(extra[cid]) + 1):
            day = D(2024, 1, 1) + dt.timedelta(days=int(days[cid]) + 7 * j)
            rows.append((cid, day, float(amounts[cid])))
    for bins in (2, 3, 5, 9):
        res = reference_score(frame(rows), ScoreConfig(rfm_bins=bins))
        out, cuts = res.customers, res.cuts
        qs = [i / bins for i in range(1, bins)]
        for values, got in (
            (-out["recency_days"].to_numpy(), cuts.recency),
            (out["n_orders"].to_numpy(), cuts.frequency),
            (out["monetary_total"].to_numpy(), cuts.monetary),
        ):
            assert list(got) == list(np.quantile(values, qs, method="lower").astype(float))


# ---------------------------------------------------------------------------
# categories
# ---------------------------------------------------------------------------

# as_of Jan 31
#   (1, A): Jan 21, 25  mean 4, recency 6
#   (2, A): Jan 15, 23  mean 8, recency 8
#   (3, A): Jan 1       one-time, recency 30
#   (1, B): Jan 1, 21   mean 20, recency 10
#   (3, B): Jan 11      one-time, recency 20
# priors: A = median(4, 8) = 6, B = 20 (a global one would be median(4, 8, 20) = 8)
CAT_ROWS = [
    (1, D(2024, 1, 21), "A"),
    (1, D(2024, 1, 25), "A"),
    (2, D(2024, 1, 15), "A"),
    (2, D(2024, 1, 23), "A"),
    (3, D(2024, 1, 1), "A"),
    (1, D(2024, 1, 1), "B"),
    (1, D(2024, 1, 21), "B"),
    (3, D(2024, 1, 11), "B"),
]


def _cat_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in CAT_ROWS],
            "ts": [r[1] for r in CAT_ROWS],
            "amount": [5.0] * len(CAT_ROWS),
            "category": [r[2] for r in CAT_ROWS],
        }
    )


def _cat_rows(out: pl.DataFrame) -> list[tuple[Any, ...]]:
    return [
        (r["customer_id"], r["category"], r["cycle_days"], r["status"], r["status_reason"])
        for r in out.iter_rows(named=True)
    ]


def test_category_priors_and_horizons(run):
    out, _, _ = run(
        _cat_frame(),
        as_of=D(2024, 1, 31),
        category_col="category",
        category_horizon_days={"A": 20},
    )
    assert out.columns[:3] == ["customer_id", "category", "n_orders"]
    assert _cat_rows(out) == [
        (1, "A", approx(5.0), "active", "cycles<1.5"),  # (4 + 6)/2; 6/5 = 1.2
        (1, "B", approx(20.0), "active", "cycles<1.5"),  # (20 + 20)/2; 10/20
        (2, "A", approx(7.0), "active", "cycles<1.5"),  # (8 + 6)/2; 8/7
        (3, "A", approx(6.0), "churned", "no_purchase_20d"),  # 30 >= 20 (A horizon)
        (3, "B", approx(20.0), "active", "one_time_recency<1.5x_prior"),  # 20 < 30
    ]


def test_category_fixed_prior(run):
    out, _, _ = run(
        _cat_frame(),
        as_of=D(2024, 1, 31),
        category_col="category",
        category_prior_days={"B": 8.0},
    )
    assert _cat_rows(out) == [
        (1, "A", approx(5.0), "active", "cycles<1.5"),  # A keeps its median prior 6
        (1, "B", approx(14.0), "active", "cycles<1.5"),  # (20 + 8)/2; 10/14
        (2, "A", approx(7.0), "active", "cycles<1.5"),
        (3, "A", approx(6.0), "at_risk", "one_time_recency>=1.5x_prior"),  # 30 >= 9, horizon 365
        (3, "B", approx(8.0), "at_risk", "one_time_recency>=1.5x_prior"),  # 20 >= 12
    ]


# ---------------------------------------------------------------------------
# ids, order, schema
# ---------------------------------------------------------------------------


def test_string_ids_sorted_by_bytes(run):
    ids = ["b", "B", "a", "é", "Z", "ab"]
    df = pl.DataFrame(
        {"customer_id": ids, "ts": [D(2024, 1, 1)] * len(ids), "amount": [1.0] * len(ids)}
    )
    out, _, _ = run(df)
    assert out.schema["customer_id"] == pl.String
    assert out["customer_id"].to_list() == ["B", "Z", "a", "ab", "b", "é"]


def test_integer_ids_keep_dtype_and_numeric_order(run):
    df = pl.DataFrame(
        {
            "customer_id": pl.Series([300, 2, 10], dtype=pl.UInt16),
            "ts": [D(2024, 1, 1)] * 3,
            "amount": [1.0] * 3,
        }
    )
    out, _, _ = run(df)
    assert out.schema["customer_id"] == pl.UInt16
    assert out["customer_id"].to_list() == [2, 10, 300]


def test_custom_column_names(run):
    df = pl.DataFrame({"cid": [5, 5], "when": [D(2024, 1, 1), D(2024, 1, 3)], "value": [2.0, 3.0]})
    out, _, _ = run(df, customer_col="cid", ts_col="when", amount_col="value")
    assert out.columns[0] == "cid"
    row = by_id(out, "cid")[5]
    assert (row["n_orders"], row["monetary_total"]) == (2, approx(5.0))


EXPECTED_COLUMNS = [
    "customer_id",
    "n_orders",
    "n_rows",
    "first_purchase",
    "last_purchase",
    "tenure_days",
    "recency_days",
    "monetary_total",
    "refund_total",
    "monetary_mean",
    "interval_mean_days",
    "interval_std_days",
    "interval_median_days",
    "cycle_days",
    "cycles_since_last",
    "expected_next_purchase",
    "days_overdue",
    "buyer_type",
    "status",
    "status_reason",
    "r_score",
    "f_score",
    "m_score",
    "rfm_code",
    "segment",
]


def test_empty_input_gives_full_schema(run):
    out, cuts, stats = run(frame([]))
    assert out.height == 0
    assert out.columns == EXPECTED_COLUMNS
    assert cuts is None
    assert stats.rows_after_as_of == 0
    assert stats.customers_without_purchase == 0
    expected_dtypes = {
        "customer_id": pl.Int64,
        "n_orders": pl.Int64,
        "first_purchase": pl.Date,
        "monetary_total": pl.Float64,
        "cycle_days": pl.Float64,
        "expected_next_purchase": pl.Date,
        "status": pl.String,
        "r_score": pl.Int8,
        "segment": pl.String,
    }
    for name, dtype in expected_dtypes.items():
        assert out.schema[name] == dtype, name


def test_empty_input_integer_amounts_and_string_ids(run):
    df = pl.DataFrame(
        {"customer_id": [], "ts": [], "amount": []},
        schema={"customer_id": pl.String, "ts": pl.Date, "amount": pl.Int64},
    )
    out, cuts, _ = run(df)
    assert out.height == 0 and cuts is None
    assert out.schema["customer_id"] == pl.String
    assert out.schema["monetary_total"] == pl.Int64
    assert out.schema["refund_total"] == pl.Int64


def test_full_row_dtypes(run):
    out, _, _ = run(frame(PRIOR_ROWS))
    assert out.schema == pl.Schema(
        {
            "customer_id": pl.Int64,
            "n_orders": pl.Int64,
            "n_rows": pl.Int64,
            "first_purchase": pl.Date,
            "last_purchase": pl.Date,
            "tenure_days": pl.Int64,
            "recency_days": pl.Int64,
            "monetary_total": pl.Float64,
            "refund_total": pl.Float64,
            "monetary_mean": pl.Float64,
            "interval_mean_days": pl.Float64,
            "interval_std_days": pl.Float64,
            "interval_median_days": pl.Float64,
            "cycle_days": pl.Float64,
            "cycles_since_last": pl.Float64,
            "expected_next_purchase": pl.Date,
            "days_overdue": pl.Float64,
            "buyer_type": pl.String,
            "status": pl.String,
            "status_reason": pl.String,
            "r_score": pl.Int8,
            "f_score": pl.Int8,
            "m_score": pl.Int8,
            "rfm_code": pl.String,
            "segment": pl.String,
        }
    )
