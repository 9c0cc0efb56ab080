"""``churn_engine.backtest`` and ``churn_engine.calibrate`` (docs/backtest.md).

- A hand-built log where every table cell is worked out in the comments.
- An independent plain-Polars implementation of the labels and the tables
  (day numbers from the oracle ``churn_engine._reference``), checked with
  hypothesis on random logs, plus a brute-force calibration sweep.
- Edge cases: datetime ``as_of``, categories, string ids, one-shot Arrow
  streams, CSV paths, quarantined rows; the error cases; the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pathlib
import zoneinfo
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import BacktestResult, ConfigError, DataError, ScoreConfig, cli
from churn_engine._backtest import CYCLE_BUCKETS, NO_CYCLE
from churn_engine._reference import _day_expr
from properties.strategies import ZONES, Log, logs

D = dt.date
A = D(2024, 3, 31)  # as_of of the hand log; the window of 30 days is 04-01 .. 04-30


def days_before(n: int) -> dt.date:
    return A - dt.timedelta(days=n)


# Every repeat buyer has one gap of 10 days, so the prior (median of the mean
# gaps) is 10 and every cycle is (1*10 + 1*10)/2 = 10 days; cycles_since_last
# is recency/10. One-time buyers are at risk from 1.5 * 10 = 15 days on.
#   id   purchases up to as_of       recency cycles status   window (04-01..04-30)  returned
#   1                      2       0.2    active   04-05                  yes
#   2                      7       0.7    active   -                      no
#   3                     12      1.2    active   04-20                  yes
#   4                     16      1.6    at_risk  04-02, 04-09           yes
#   5                     18      1.8    at_risk  -                      no
#   6                     25      2.5    churned  -                      no
#   7                     40      4.0    churned  -                      no
#   8                     50      5.0    churned  04-30 (last day)       yes
#   9                     20      2.0    churned  refund 04-03           no
#   10                    15      1.5    at_risk  05-01 (after window)   no
#   11   A-10, A (as_of day)         0       0.0    active   04-01 (first day)      yes
#   12   2023-01-01, 2023-01-11      445     44.5   churned (no_purchase_365d)  -   no
#   21   A-3 (one-time)              3       0.3    active   04-15                  yes
#   22   A-20                        20      2.0    at_risk  -                      no
#   23   2023-01-01                  455     45.5   churned (365d)   -              no
#   24   A-400                       400     40.0   churned (365d)   04-11          yes
#   31   first purchase 04-10: new customer (not scored)
#   32   refund A-5 only, purchase 04-12: new customer (no occasion up to as_of)
#   33   first purchase 05-01: after the window, neither scored nor new
# The data ends 2024-05-01 (rows of 10 and 33).
HAND_ROWS: list[tuple[int, dt.date, float]] = [
    (1, days_before(12), 10.0), (1, days_before(2), 10.0), (1, D(2024, 4, 5), 10.0),
    (2, days_before(17), 10.0), (2, days_before(7), 10.0),
    (3, days_before(22), 10.0), (3, days_before(12), 10.0), (3, D(2024, 4, 20), 10.0),
    (4, days_before(26), 10.0), (4, days_before(16), 10.0), (4, D(2024, 4, 9), 10.0),
    (4, D(2024, 4, 2), 10.0),
    (5, days_before(28), 10.0), (5, days_before(18), 10.0),
    (6, days_before(35), 10.0), (6, days_before(25), 10.0),
    (7, days_before(50), 10.0), (7, days_before(40), 10.0),
    (8, days_before(60), 10.0), (8, days_before(50), 10.0), (8, D(2024, 4, 30), 10.0),
    (9, days_before(30), 10.0), (9, days_before(20), 10.0), (9, D(2024, 4, 3), -5.0),
    (10, days_before(25), 10.0), (10, days_before(15), 10.0), (10, D(2024, 5, 1), 10.0),
    (11, days_before(10), 10.0), (11, A, 10.0), (11, D(2024, 4, 1), 10.0),
    (12, D(2023, 1, 1), 10.0), (12, D(2023, 1, 11), 10.0),
    (21, days_before(3), 10.0), (21, D(2024, 4, 15), 10.0),
    (22, days_before(20), 10.0),
    (23, D(2023, 1, 1), 10.0),
    (24, days_before(400), 10.0), (24, D(2024, 4, 11), 10.0),
    (31, D(2024, 4, 10), 10.0),
    (32, days_before(5), -5.0), (32, D(2024, 4, 12), 10.0),
    (33, D(2024, 5, 1), 10.0),
]  # fmt: skip


def hand_log() -> pl.DataFrame:
    ids, ts, amounts = zip(*HAND_ROWS, strict=True)
    return pl.DataFrame({"customer_id": list(ids), "ts": list(ts), "amount": list(amounts)})


@pytest.fixture(scope="module")
def hand() -> BacktestResult:
    return churn_engine.backtest(hand_log(), as_of=A, horizon_days=30)


def table(frame: pl.DataFrame, *keys: str) -> dict[Any, tuple[int, int]]:
    """{key (or key tuple): (customers, returned)}"""
    out = {}
    for row in frame.iter_rows(named=True):
        key = tuple(row[k] for k in keys)
        out[key[0] if len(key) == 1 else key] = (row["customers"], row["returned"])
    return out


# ---------------------------------------------------------------------------
# the hand example
# ---------------------------------------------------------------------------


def test_hand_labels(hand: BacktestResult) -> None:
    got = hand.customers.select("customer_id", "status", "cycles_since_last", "returned",
                                "first_return").rows()  # fmt: skip
    assert got == [
        (1, "active", 0.2, True, D(2024, 4, 5)),
        (2, "active", 0.7, False, None),
        (3, "active", 1.2, True, D(2024, 4, 20)),
        (4, "at_risk", 1.6, True, D(2024, 4, 2)),  # the first of two returns
        (5, "at_risk", 1.8, False, None),
        (6, "churned", 2.5, False, None),
        (7, "churned", 4.0, False, None),
        (8, "churned", 5.0, True, D(2024, 4, 30)),  # last day of the window counts
        (9, "churned", 2.0, False, None),  # a refund is not a return
        (10, "at_risk", 1.5, False, None),  # 05-01 is after the window
        (11, "active", 0.0, True, D(2024, 4, 1)),  # the as_of day is scored, not a return
        (12, "churned", 44.5, False, None),
        (21, "active", 0.3, True, D(2024, 4, 15)),
        (22, "at_risk", 2.0, False, None),
        (23, "churned", 45.5, False, None),
        (24, "churned", 40.0, True, D(2024, 4, 11)),
    ]
    # the score columns are those of churn_engine.score at as_of, unchanged
    scores = churn_engine.score(hand_log(), as_of=A)
    assert hand.customers.drop("returned", "first_return").equals(scores)


def test_hand_run_facts(hand: BacktestResult) -> None:
    assert hand.as_of == A and hand.as_of_day == A
    assert hand.horizon_days == 30 and hand.horizon_end == D(2024, 4, 30)
    assert hand.data_end == D(2024, 5, 1) and not hand.partial_horizon
    assert hand.new_customers == 2  # 31 and 32; 33 buys after the window
    assert hand.n_customers == 16 and hand.n_returned == 7  # 1 3 4 8 11 21 24
    assert hand.return_rate == 7 / 16
    assert hand.rows_later_on_as_of_day == 0
    assert hand.stats.customers_without_purchase == 1  # 32


def test_hand_by_status(hand: BacktestResult) -> None:
    # active: 1 3 11 21 returned, 2 not; at_risk: 4 returned, 5 10 22 not;
    # churned: 8 24 returned, 6 7 9 12 23 not
    assert hand.by_status.columns == [
        "status", "customers", "returned", "return_rate", "no_return_rate"
    ]  # fmt: skip
    assert table(hand.by_status, "status") == {
        "active": (5, 4), "at_risk": (4, 1), "churned": (7, 2)
    }  # fmt: skip
    rates = dict(hand.by_status.select("status", "return_rate").iter_rows())
    assert rates == {"active": 4 / 5, "at_risk": 1 / 4, "churned": 2 / 7}
    no_return = hand.by_status.get_column("no_return_rate").to_list()
    assert no_return == [1 - 4 / 5, 1 - 1 / 4, 1 - 2 / 7]


def test_hand_by_buyer_type(hand: BacktestResult) -> None:
    # one_time 21 22 23 24: 21 and 24 returned; repeat 1..12: 1 3 4 8 11 returned
    assert table(hand.by_buyer_type, "buyer_type") == {"one_time": (4, 2), "repeat": (12, 5)}
    assert table(hand.by_buyer_type_status, "buyer_type", "status") == {
        ("one_time", "active"): (1, 1),  # 21
        ("one_time", "at_risk"): (1, 0),  # 22
        ("one_time", "churned"): (2, 1),  # 23, 24
        ("repeat", "active"): (4, 3),  # 1 3 11 returned, 2 not
        ("repeat", "at_risk"): (3, 1),  # 4 returned, 5 10 not
        ("repeat", "churned"): (5, 1),  # 8 returned, 6 7 9 12 not
    }


def test_hand_by_cycles(hand: BacktestResult) -> None:
    # [0, 0.5): 1 (0.2) 11 (0.0) 21 (0.3), all returned
    # [0.5, 1): 2 (0.7);  [1, 1.5): 3 (1.2) returned
    # [1.5, 2): 10 (1.5) 4 (1.6, returned) 5 (1.8)
    # [2, 3): 9 (2.0) 22 (2.0) 6 (2.5), none returned
    # >= 3: 7 (4.0) 8 (5.0, returned) 12 (44.5) 23 (45.5) 24 (40.0, returned)
    labels = [label for label, _, _ in CYCLE_BUCKETS] + [NO_CYCLE]
    assert labels == ["0–0.5", "0.5–1", "1–1.5", "1.5–2", "2–3", "≥3", "no cycle"]
    assert hand.by_cycles.get_column("cycles_since_last").to_list() == labels
    assert table(hand.by_cycles, "cycles_since_last") == {
        "0–0.5": (3, 3), "0.5–1": (1, 0), "1–1.5": (1, 1), "1.5–2": (3, 1),
        "2–3": (3, 0), "≥3": (5, 2), "no cycle": (0, 0),
    }  # fmt: skip
    empty = hand.by_cycles.filter(pl.col("customers") == 0)
    assert empty.get_column("return_rate").to_list() == [None]
    repeat = table(
        hand.by_buyer_type_cycles.filter(pl.col("buyer_type") == "repeat"), "cycles_since_last"
    )
    assert repeat == {
        "0–0.5": (2, 2), "0.5–1": (1, 0), "1–1.5": (1, 1), "1.5–2": (3, 1),
        "2–3": (2, 0), "≥3": (3, 1), "no cycle": (0, 0),
    }  # fmt: skip


def test_hand_prediction_metrics(hand: BacktestResult) -> None:
    # churned and gone: 6 7 9 12 23 = 5; churned but back: 8 24 = 2;
    # not churned and gone: 2 5 10 22 = 4; not churned and back: 1 3 4 11 21 = 5
    assert (hand.tp, hand.fp, hand.fn, hand.tn) == (5, 2, 4, 5)
    assert hand.precision == 5 / 7
    assert hand.recall == 5 / 9
    # 2pr/(p+r) = (50/63) / (80/63) = 0.625
    assert hand.f1 == pytest.approx(0.625, rel=1e-15)


def test_hand_summary_and_dict(hand: BacktestResult) -> None:
    text = str(hand)
    assert text == hand.summary()
    assert "backtest as of 2024-03-31 (end of day)" in text
    assert "30 days: 2024-04-01 .. 2024-04-30" in text
    assert "  churned          7         2       28.6 %          71.4 %" in text
    assert "precision 71.4 %   recall 55.6 %   F1 0.625" in text
    data = hand.to_dict()
    json.dumps(data)  # JSON-ready
    assert data["churned_predicts_no_return"]["tp"] == 5
    assert data["by_status"][0] == {
        "status": "active", "customers": 5, "returned": 4,
        "return_rate": 0.8, "no_return_rate": 1 - 0.8,
    }  # fmt: skip


def test_hand_horizon_boundaries() -> None:
    log = hand_log()
    # 31 days: the window reaches 05-01, so 10 returns and 33 is new
    r31 = churn_engine.backtest(log, as_of=A, horizon_days=31)
    assert r31.customers.filter(pl.col("customer_id") == 10)["returned"].item() is True
    assert r31.new_customers == 3 and r31.horizon_end == r31.data_end
    # 32 days would end after the data: refused, unless allowed
    with pytest.raises(ConfigError, match=r"runs to 2024-05-02 but the data ends 2024-05-01"):
        churn_engine.backtest(log, as_of=A, horizon_days=32)
    partial = churn_engine.backtest(log, as_of=A, horizon_days=400, allow_partial_horizon=True)
    assert partial.partial_horizon and partial.n_returned == 8
    assert "PARTIAL horizon" in partial.summary()


# ---------------------------------------------------------------------------
# calibrate, by hand
# ---------------------------------------------------------------------------
# Repeat buyers by cycles_since_last (gone = did not come back), 7 of 12 gone:
#   0.0 back (11), 0.2 back (1), 0.7 gone (2), 1.2 back (3), 1.5 gone (10),
#   1.6 back (4), 1.8 gone (5), 2.0 gone (9), 2.5 gone (6), 4.0 gone (7),
#   5.0 back (8), 44.5 gone (12)
# flagged by cycles >= t:  t in (0, 0.2]: 11, 7 gone (0.636)
#   (0.2, 0.7]: 10, 7 (0.7)    (0.7, 1.2]: 9, 6 (0.667)   (1.2, 1.5]: 8, 6 (0.75)
#   (1.5, 1.6]: 7, 5 (0.714)   (1.6, 1.8]: 6, 5 (0.833)   (1.8, 2.0]: 5, 4 (0.8)
#   (2.0, 2.5]: 4, 3 (0.75)    (2.5, 4.0]: 3, 2 (0.667)   (4.0, 5.0]: 2, 1 (0.5)
#   (5.0, 44.5]: 1, 1 (1.0)


def test_calibrate_hand(hand: BacktestResult) -> None:
    cal = churn_engine.calibrate(hand, target_precision=0.8, at_risk_precision=0.7,
                                 min_customers=1)  # fmt: skip
    # smallest grid point in (1.6, 1.8] is 1.65: 6 flagged, 5 gone
    assert cal.reached and cal.churn_cycles == 1.65
    assert cal.churn == {"customers": 6, "no_return": 5, "precision": 5 / 6,
                         "recall": 5 / 7, "coverage": 6 / 12}  # fmt: skip
    # 0.7 is first reached in (0.2, 0.7]: 0.25, 10 flagged, 7 gone
    assert cal.at_risk_cycles == 0.25
    assert cal.at_risk == {"customers": 10, "no_return": 7, "precision": 0.7,
                           "recall": 1.0, "coverage": 10 / 12}  # fmt: skip
    assert cal.options() == {"at_risk_cycles": 0.25, "churn_cycles": 1.65}
    assert cal.repeat_customers == 12 and cal.no_return_rate == 7 / 12
    curve = cal.curve
    assert curve.columns == ["threshold", "customers", "no_return", "precision", "recall",
                             "coverage"]  # fmt: skip
    assert curve.height == 200 and curve["threshold"][0] == 0.05 and curve["threshold"][-1] == 10
    at = {row[0]: row[1:3] for row in curve.iter_rows()}
    assert at[0.2] == (11, 7) and at[1.5] == (8, 6) and at[2.0] == (5, 4) and at[10.0] == (1, 1)
    assert "churn_cycles=1.65" in cal.message and "83.3%" in cal.message
    assert "churn_cycles    1.65" in str(cal)
    json.dumps(cal.to_dict())


def test_calibrate_hand_unreachable(hand: BacktestResult) -> None:
    # 0.9 is only reached by the single customer at 44.5 cycles (t > 5.0)
    lone = churn_engine.calibrate(hand, target_precision=0.9, min_customers=1)
    assert lone.churn_cycles == 5.05 and lone.churn is not None
    assert lone.churn["customers"] == 1
    # needing 2 customers, the best is 5/6 at 1.65..1.8: not reached, nothing invented
    cal = churn_engine.calibrate(hand, target_precision=0.9, min_customers=2)
    assert not cal.reached and cal.churn_cycles is None and cal.churn is None
    assert cal.at_risk_cycles == 1.25  # 0.75 is first reached in (1.2, 1.5]: 8 flagged, 6 gone
    assert "not reached" in cal.message and "best 83.3%" in cal.message
    assert cal.options() == {"at_risk_cycles": 1.25}
    assert "churn_cycles    not found" in str(cal)


def test_calibrate_custom_thresholds(hand: BacktestResult) -> None:
    cal = churn_engine.calibrate(hand, target_precision=0.8, at_risk_precision=0.75,
                                 min_customers=1, thresholds=[2.0, 1.5, 2.0])  # fmt: skip
    assert cal.curve["threshold"].to_list() == [1.5, 2.0]  # sorted, deduplicated
    assert cal.churn_cycles == 2.0 and cal.at_risk_cycles == 1.5


def test_calibrate_runs_a_backtest() -> None:
    cal = churn_engine.calibrate(hand_log(), as_of=A, horizon_days=30, target_precision=0.8,
                                 at_risk_precision=0.7, min_customers=1)  # fmt: skip
    assert cal.churn_cycles == 1.65


def test_calibrate_no_repeat_buyers() -> None:
    log = hand_log().filter(pl.col("customer_id") > 20)
    cal = churn_engine.calibrate(log, as_of=A, horizon_days=30, min_customers=1)
    assert not cal.reached and cal.repeat_customers == 0 and cal.no_return_rate is None
    assert "no repeat buyer" in cal.message


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"target_precision": 0.0}, ConfigError, "target_precision"),
        ({"target_precision": 1.5}, ConfigError, "target_precision"),
        ({"at_risk_precision": "x"}, ConfigError, "at_risk_precision"),
        ({"target_precision": 0.7, "at_risk_precision": 0.8}, ConfigError, "must not exceed"),
        ({"min_customers": 0}, ConfigError, "min_customers"),
        ({"thresholds": []}, ConfigError, "thresholds"),
        ({"thresholds": [1.0, math.nan]}, ConfigError, "thresholds"),
        ({"thresholds": [0.0]}, ConfigError, "thresholds"),
        ({"as_of": A}, TypeError, "BacktestResult and backtest options"),
    ],
)
def test_calibrate_bad_options(
    hand: BacktestResult, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        churn_engine.calibrate(hand, **options)


# ---------------------------------------------------------------------------
# time: datetime as_of, time zones
# ---------------------------------------------------------------------------


def test_datetime_as_of_window_is_whole_days() -> None:
    # as_of 2024-03-31 12:00 in Berlin. Customer 1's 15:00 row on the as_of day
    # is after as_of (not scored) and not on a day after it (not a return);
    # customer 2 buys at 00:30 Berlin on 04-01 (22:30 UTC on 03-31): a return.
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    utc = dt.timezone.utc

    def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), berlin).astimezone(utc)

    log = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3],
            "ts": [at(D(2024, 3, 1), 10), at(A, 9), at(A, 15), at(D(2024, 3, 20), 10),
                   at(D(2024, 4, 1), 0, 30), at(D(2024, 4, 2), 10)],
            "amount": [1.0] * 6,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )  # fmt: skip
    as_of = dt.datetime(2024, 3, 31, 12, 0)  # naive: wall time in tz
    result = churn_engine.backtest(log, as_of=as_of, horizon_days=2, tz="Europe/Berlin")
    assert result.as_of_day == A and result.horizon_end == D(2024, 4, 2)
    assert result.customers.select("customer_id", "n_orders", "returned").rows() == [
        (1, 2, False), (2, 1, True)
    ]  # fmt: skip
    assert result.rows_later_on_as_of_day == 1
    assert result.new_customers == 1  # 3
    assert "rows later on as_of day 1" in result.summary()
    # in UTC the 00:30 row is on 03-31, after a 12:00 UTC as_of: not a return
    in_utc = churn_engine.backtest(
        log, as_of=dt.datetime(2024, 3, 31, 12, tzinfo=utc), horizon_days=2
    )
    assert in_utc.customers.select("customer_id", "returned").rows() == [(1, False), (2, False)]
    assert in_utc.rows_later_on_as_of_day == 2


def test_as_of_as_string_and_date_column() -> None:
    a = churn_engine.backtest(hand_log(), as_of="2024-03-31", horizon_days=30)
    b = churn_engine.backtest(hand_log(), as_of=dt.datetime(2024, 3, 31, 0, 0), horizon_days=30)
    # a Date column has no time: a datetime as_of keeps the whole day
    assert a.customers.equals(b.customers) and b.rows_later_on_as_of_day == 0


# ---------------------------------------------------------------------------
# inputs and options
# ---------------------------------------------------------------------------


def test_categories_are_labelled_per_category() -> None:
    log = pl.DataFrame(
        {
            "customer_id": ["b", "b", "b", "a", "a"],
            "ts": [D(2024, 1, 1), D(2024, 1, 1), D(2024, 1, 20), D(2024, 1, 2), D(2024, 1, 25)],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
            "category": ["x", "y", "y", "x", "z"],
        }
    )
    result = churn_engine.backtest(log, as_of=D(2024, 1, 10), horizon_days=15,
                                   category_col="category")  # fmt: skip
    # b bought y again (01-20), not x; a's later purchase is in a new category z
    assert result.customers.select("customer_id", "category", "returned").rows() == [
        ("a", "x", False), ("b", "x", False), ("b", "y", True)
    ]  # fmt: skip
    assert result.new_customers == 1  # (a, z)


@pytest.mark.parametrize("kind", ["uint64", "categorical", "int32_amounts"])
def test_id_and_amount_types(kind: str) -> None:
    log = hand_log()
    if kind == "uint64":
        log = log.with_columns(pl.col("customer_id").cast(pl.UInt64) + (2**63 - 5))
    elif kind == "categorical":
        log = log.with_columns(pl.col("customer_id").cast(pl.String).cast(pl.Categorical))
    else:
        log = log.with_columns(pl.col("amount").cast(pl.Int32))
    result = churn_engine.backtest(log, as_of=A, horizon_days=30)
    assert result.customers["customer_id"].dtype == log["customer_id"].dtype
    assert (result.tp, result.fp, result.fn, result.tn) == (5, 2, 4, 5)
    assert result.new_customers == 2


def test_sources_read_once_and_paths(tmp_path: pathlib.Path) -> None:
    log = hand_log()
    expected = churn_engine.backtest(log, as_of=A, horizon_days=30).customers
    reader = pa.RecordBatchReader.from_batches(
        log.to_arrow().schema, log.to_arrow().to_batches(max_chunksize=7)
    )
    assert churn_engine.backtest(reader, as_of=A, horizon_days=30).customers.equals(expected)
    path = tmp_path / "log.csv"
    log.write_csv(path)
    from_csv = churn_engine.backtest(str(path), as_of=A, horizon_days=30).customers
    assert from_csv.equals(expected)
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=3)
    assert churn_engine.backtest(shuffled, as_of=A, horizon_days=30).customers.equals(expected)


def test_quarantine_counts_bad_rows() -> None:
    log = hand_log().with_columns(
        pl.when(pl.col("customer_id") == 33).then(None).otherwise(pl.col("amount"))
        .alias("amount")
    )  # fmt: skip
    with pytest.raises(DataError, match="null amount"):
        churn_engine.backtest(log, as_of=A, horizon_days=30)
    result = churn_engine.backtest(log, as_of=A, horizon_days=30, on_error="quarantine")
    assert result.stats.rows_rejected == 1 and result.rejects is not None
    assert result.data_end == D(2024, 5, 1)  # 10's row; 33's row is rejected
    assert (result.tp, result.fp, result.fn, result.tn) == (5, 2, 4, 5)


def test_rule_options() -> None:
    # the churn rule's 365 days is rule_horizon_days; 30 makes 7 (40 days) and
    # 8 (50 days) churned by the no-purchase rule instead of by cycles
    result = churn_engine.backtest(hand_log(), as_of=A, horizon_days=30, rule_horizon_days=30)
    assert result.config.horizon_days == 30
    reasons = dict(result.customers.select("customer_id", "status_reason").iter_rows())
    assert reasons[7] == reasons[8] == "no_purchase_30d"
    # churned at 3 cycles: 7 8 12 by cycles, 12 23 24 by 365 days; 7 12 23 did not return
    config = ScoreConfig(churn_cycles=3.0)
    assert churn_engine.backtest(hand_log(), as_of=A, horizon_days=30, config=config).tp == 3
    with pytest.raises(TypeError, match="not both"):
        churn_engine.backtest(hand_log(), as_of=A, config=config, churn_cycles=3.0)
    with pytest.raises(ConfigError, match="rule_horizon_days must be"):
        churn_engine.backtest(hand_log(), as_of=A, rule_horizon_days=0)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"as_of": None}, ConfigError, "backtest needs as_of"),
        ({"as_of": "2024-13-01"}, ConfigError, "cannot parse"),
        ({"as_of": D(2024, 5, 1)}, ConfigError, "not before the last day of the data"),
        ({"as_of": D(2025, 1, 1)}, ConfigError, "not before the last day of the data"),
        ({"as_of": D(2022, 1, 1), "horizon_days": 30}, ConfigError,
         "no customer has a purchase on or before it .the data starts 2022-12-01"),
        ({"as_of": A, "horizon_days": 0}, ConfigError, "horizon_days must be a positive"),
        ({"as_of": A, "horizon_days": True}, ConfigError, "horizon_days must be a positive"),
        ({"as_of": A, "horizon_days": 2.5}, ConfigError, "horizon_days must be a positive"),
        ({"as_of": A, "horizon_days": 365}, ConfigError,
         "334 days short.*horizon_days <= 31.*on or before 2023-05-02.*allow_partial_horizon"),
        ({"as_of": A, "allow_partial_horizon": 1}, ConfigError, "allow_partial_horizon"),
    ],
)  # fmt: skip
def test_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    log = pl.concat([hand_log(), pl.DataFrame({"customer_id": [99], "ts": [D(2022, 12, 1)],
                                               "amount": [-1.0]})])  # fmt: skip
    with pytest.raises(error, match=match):
        churn_engine.backtest(log, **kwargs)


def test_empty_input() -> None:
    empty = hand_log().clear()
    with pytest.raises(DataError, match="no rows to backtest"):
        churn_engine.backtest(empty, as_of=A)


# ---------------------------------------------------------------------------
# against an independent plain-Polars implementation
# ---------------------------------------------------------------------------


def expected_labels(
    log: Log, config: ScoreConfig, as_of_day: dt.date, horizon: int
) -> tuple[pl.DataFrame, int]:
    """Per key: the first day with a non-refund row in (as_of_day, as_of_day + horizon],
    and the last day of the data; plain Polars on the oracle's day numbers."""
    keys = ["customer_id"] + (["category"] if config.category_col else [])
    frame = log.frame.with_columns(
        day=_day_expr("ts", log.frame.schema["ts"], config).cast(pl.Int32).cast(pl.Date)
    )
    data_end = frame["day"].max()
    window = frame.filter(
        pl.col("amount") >= 0,
        pl.col("day") > as_of_day,
        pl.col("day") <= as_of_day + dt.timedelta(days=horizon),
    )
    first = window.group_by(keys).agg(pl.col("day").min().alias("first_return"))
    assert isinstance(data_end, dt.date)
    return first, (data_end - dt.date(1970, 1, 1)).days


def bucket_of(value: float | None) -> str:
    if value is None:
        return NO_CYCLE
    for label, low, high in CYCLE_BUCKETS:
        if low <= value < high:
            return label
    raise AssertionError(value)


def expected_table(customers: pl.DataFrame, by: list[str]) -> dict[Any, tuple[int, int]]:
    frame = customers.with_columns(
        pl.col("cycles_since_last")
        .map_elements(bucket_of, return_dtype=pl.String)
        .fill_null(NO_CYCLE)  # map_elements skips nulls
    )
    counts = frame.group_by(by).agg(pl.len(), pl.col("returned").sum())
    return {
        (row[0] if len(by) == 1 else tuple(row[: len(by)])): (row[-2], row[-1])
        for row in counts.iter_rows()
    }


@st.composite
def backtest_cases(draw: st.DrawFn) -> tuple[Log, ScoreConfig, Any, int, bool]:
    log = draw(logs(max_customers=40, big_customer=False))
    tz = draw(st.sampled_from(ZONES))
    options: dict[str, Any] = {"tz": tz, "threads": 1}
    if log.category:
        options["category_col"] = "category"
    if draw(st.booleans()):
        options["at_risk_cycles"] = draw(st.sampled_from([0.5, 1.0, 1.5]))
        options["churn_cycles"] = options["at_risk_cycles"] + draw(st.sampled_from([0.0, 0.5, 1]))
    config = ScoreConfig(**options)
    span = (log.last_day - log.first_day).days
    day = log.first_day + dt.timedelta(days=draw(st.integers(-1, span + 1)))
    kind = draw(st.sampled_from(["date", "naive", "aware"]))
    as_of: Any = day
    if kind != "date":
        wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(
            seconds=draw(st.sampled_from([0, 43_200, 86_399]))
        )
        as_of = wall if kind == "naive" else wall.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    horizon = draw(st.one_of(st.integers(1, 5), st.integers(1, span + 3)))
    return log, config, as_of, horizon, draw(st.booleans())


@given(backtest_cases())
def test_backtest_matches_plain_polars(case: tuple[Log, ScoreConfig, Any, int, bool]) -> None:
    log, config, as_of, horizon, allow_partial = case
    as_of_day = as_of if not isinstance(as_of, dt.datetime) else (
        as_of.astimezone(zoneinfo.ZoneInfo(config.tz)).date() if as_of.tzinfo else as_of.date()
    )  # fmt: skip
    first, data_end = expected_labels(log, config, as_of_day, horizon)
    a = (as_of_day - dt.date(1970, 1, 1)).days
    try:
        result = churn_engine.backtest(
            log.frame, as_of=as_of, horizon_days=horizon,
            allow_partial_horizon=allow_partial, config=config,
        )  # fmt: skip
    except ConfigError as exc:
        text = str(exc)
        too_late = a >= data_end
        partial = a + horizon > data_end and not allow_partial
        scores = churn_engine.score(log.frame, as_of=as_of, **_options(config))
        assert too_late or partial or scores.height == 0, text
        return
    assert a < data_end and (allow_partial or a + horizon <= data_end)
    keys = ["customer_id"] + (["category"] if config.category_col else [])
    scores = result.customers.drop("returned", "first_return")  # checked in test_hand_labels
    expected = scores.join(first, on=keys, how="left", maintain_order="left").with_columns(
        returned=pl.col("first_return").is_not_null()
    )
    assert result.customers.select("returned", "first_return").equals(
        expected.select("returned", "first_return")
    )
    assert result.data_end == dt.date(1970, 1, 1) + dt.timedelta(days=data_end)
    assert result.partial_horizon == (a + horizon > data_end)
    assert result.new_customers == first.join(scores.select(keys), on=keys, how="anti").height
    assert result.rows_later_on_as_of_day >= 0
    if not isinstance(as_of, dt.datetime):
        assert result.rows_later_on_as_of_day == 0

    for frame, by in (
        (result.by_status, ["status"]),
        (result.by_buyer_type, ["buyer_type"]),
        (result.by_buyer_type_status, ["buyer_type", "status"]),
        (result.by_cycles, ["cycles_since_last"]),
        (result.by_buyer_type_cycles, ["buyer_type", "cycles_since_last"]),
    ):
        got = table(frame.filter(pl.col("customers") > 0), *by)
        assert got == expected_table(expected, by), by
        assert frame.height == math.prod({"status": 3, "buyer_type": 2,
                                          "cycles_since_last": 7}[c] for c in by)  # fmt: skip
        rates = frame.filter(pl.col("customers") > 0)
        assert (rates["return_rate"] == rates["returned"] / rates["customers"]).all()

    churned = expected["status"] == "churned"
    gone = ~expected["returned"]
    tp, fp = int((churned & gone).sum()), int((churned & ~gone).sum())
    fn, tn = int((~churned & gone).sum()), int((~churned & ~gone).sum())
    assert (result.tp, result.fp, result.fn, result.tn) == (tp, fp, fn, tn)
    assert result.precision == (tp / (tp + fp) if tp + fp else None)
    assert result.recall == (tp / (tp + fn) if tp + fn else None)


def _options(config: ScoreConfig) -> dict[str, Any]:
    names = ("tz", "category_col", "at_risk_cycles", "churn_cycles")
    return {name: getattr(config, name) for name in names}


@given(
    cycles=st.lists(
        st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]), st.floats(0, 12)),
        max_size=60,
    ),
    data=st.data(),
)
def test_calibrate_matches_brute_force(cycles: list[float], data: st.DataObject) -> None:
    n = len(cycles)
    returned = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    one_time = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    some = st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.25, 11.9]), min_size=1)
    thresholds = data.draw(st.one_of(st.none(), some))
    target = data.draw(st.sampled_from([0.5, 0.75, 0.9, 1.0]))
    at_risk = data.draw(st.sampled_from([0.5, target]))
    min_customers = data.draw(st.integers(1, 5))
    customers = pl.DataFrame(
        {
            "buyer_type": ["one_time" if o else "repeat" for o in one_time],
            "cycles_since_last": pl.Series(cycles, dtype=pl.Float64),
            "returned": pl.Series(returned, dtype=pl.Boolean),
        }
    )
    result = _fake_result(customers)
    cal = churn_engine.calibrate(result, target_precision=target, at_risk_precision=at_risk,
                                 min_customers=min_customers, thresholds=thresholds)  # fmt: skip

    repeat = [(c, r) for c, r, o in zip(cycles, returned, one_time, strict=True) if not o]
    gone_total = sum(not r for _, r in repeat)
    grid = sorted(set(thresholds)) if thresholds else [k / 20 for k in range(1, 201)]
    rows = []
    for t in grid:  # every threshold on its own, in plain Python: the obvious, slow way
        flagged = [r for c, r in repeat if c >= t]
        gone = sum(not r for r in flagged)
        rows.append((t, len(flagged), gone,
                     gone / len(flagged) if flagged else None,
                     gone / gone_total if gone_total else None,
                     len(flagged) / len(repeat) if repeat else None))  # fmt: skip
    assert cal.curve.rows() == rows

    def first_reaching(goal: float) -> float | None:
        for t, count, _, precision, _, _ in rows:
            if precision is not None and precision >= goal and count >= min_customers:
                return t
        return None

    assert cal.churn_cycles == first_reaching(target)
    assert cal.at_risk_cycles == first_reaching(at_risk)
    assert cal.reached == (cal.churn_cycles is not None)
    if cal.churn_cycles is not None and cal.at_risk_cycles is not None:
        assert cal.at_risk_cycles <= cal.churn_cycles


_HAND_RESULT: list[BacktestResult] = []


def _fake_result(customers: pl.DataFrame) -> BacktestResult:
    """A BacktestResult around a given customers frame (calibrate reads only that)."""
    if not _HAND_RESULT:
        _HAND_RESULT.append(churn_engine.backtest(hand_log(), as_of=A, horizon_days=30))
    hand_result = _HAND_RESULT[0]
    fields = {f: getattr(hand_result, f) for f in hand_result.__dataclass_fields__}
    fields["customers"] = customers
    return BacktestResult(**fields)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


@pytest.fixture
def hand_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "log.parquet"
    hand_log().write_parquet(path)
    return path


def test_cli_backtest(
    hand_file: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    code = cli.main(["backtest", str(hand_file), "--as-of", "2024-03-31", "--horizon-days", "30",
                     "--target-precision", "0.8", "--at-risk-precision", "0.7",
                     "--min-customers", "1", "-o", str(report), "-q"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == ""
    data = json.loads(report.read_text())
    assert data["customers"] == 16 and data["returned"] == 7 and data["new_customers"] == 2
    assert [row["customers"] for row in data["by_status"]] == [5, 4, 7]
    assert data["calibration"]["churn_cycles"] == 1.65

    labels = tmp_path / "labels.csv"
    code = cli.main(["backtest", str(hand_file), "--as-of", "2024-03-31", "--horizon-days", "30",
                     "-o", str(labels), "--rule-horizon-days", "30"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "by status" in out and "calibration (repeat buyers: 12" in out
    assert "no purchase for 30 days" in out and f"wrote 16 rows to {labels}" in out
    written = pl.read_csv(labels)
    assert written["returned"].sum() == 7 and "first_return" in written.columns


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--horizon-days", "60"], 2, "--allow-partial-horizon"),
        (["--horizon-days", "0"], 2, "must be at least 1"),
        (["--target-precision", "2"], 2, "must be in (0, 1]"),
        (["--target-precision", "0.7", "--at-risk-precision", "0.8"], 2, "must not exceed"),
        (["--rule-horizon-days", "0"], 2, "--rule-horizon-days must be"),
        (["-o", "out.txt"], 2, "cannot tell the output format"),
    ],
)
def test_cli_errors(
    hand_file: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    assert cli.main(["backtest", str(hand_file), "--as-of", "2024-03-31", *argv]) == code
    assert message in capsys.readouterr().err


def test_cli_needs_as_of_and_explains(
    hand_file: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["backtest", str(hand_file)]) == 2
    assert "--as-of" in capsys.readouterr().err
    assert cli.main(["backtest", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--as-of", "--horizon-days", "--allow-partial-horizon", "--target-precision",
                   "--at-risk-precision", "--min-customers", "--rule-horizon-days",
                   "--customer-col", "--tz", "--on-error", "-o"):  # fmt: skip
        assert option in text
    assert "came back" in text and "label window" in text


def test_cli_bad_data_exit_1(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.parquet"
    hand_log().with_columns(pl.lit(None, dtype=pl.Float64).alias("amount")).write_parquet(path)
    assert cli.main(["backtest", str(path), "--as-of", "2024-03-31", "-q"]) == 1
    assert "null amount" in capsys.readouterr().err


def test_numpy_horizon_accepted() -> None:
    result = churn_engine.backtest(hand_log(), as_of=A, horizon_days=np.int64(30))
    assert result.horizon_days == 30 and isinstance(result.horizon_days, int)
