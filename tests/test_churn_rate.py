"""``churn_engine.churn_rate``: the churn rate over time (docs/churn_rate.md).

- hand examples: every day's counts worked out in the comments;
- the sweep kernel (``_churn_rate.sweep``) against a brute-force NumPy loop;
- the required check: for random logs, every sampled date's numbers equal
  ``churn_engine.score(data, as_of=date)`` (customers scored, and those with
  ``recency_days >= horizon``, reason ``no_purchase_{h}d``), flows included;
- week and month rows against the daily rows;
- edge cases: empty data, bad options, days before the first purchase,
  refunds-only customers, time zones, huge horizons, categories, the CLI.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ConfigError, DataError, KernelError, cli
from churn_engine import _churn_rate as K
from properties.strategies import ZONES, logs

D = dt.date
STOCKS = ["customers", "churned"]
FLOWS = ["new_customers", "newly_churned", "returned"]
COLUMNS = ["date", "customers", "churned", "churn_rate", "active", *FLOWS]


def hand_log() -> pl.DataFrame:
    """Customers of the hand examples (horizon 3 days):

    - 1 buys on Jan 1, 2 and 8;
    - 2 buys on Jan 3, refunds on Jan 6 (a refund is no occasion);
    - 3 only refunds (Jan 2): never a customer;
    - 4 buys twice on Jan 5 (one occasion) and on Jan 9.
    """
    rows = [
        (1, D(2024, 1, 1), 10.0), (1, D(2024, 1, 2), 5.0), (1, D(2024, 1, 8), 7.0),
        (2, D(2024, 1, 3), 20.0), (2, D(2024, 1, 6), -4.0),
        (3, D(2024, 1, 2), -3.0),
        (4, D(2024, 1, 5), 1.0), (4, D(2024, 1, 5), 2.0), (4, D(2024, 1, 9), 3.0),
    ]  # fmt: skip
    ids, ts, amounts = zip(*rows, strict=True)
    return pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amounts})


# With horizon 3, customer c is churned on day t when its last occasion on
# or before t is at least 3 days before t:
#   1: occasions 1, 2, 8 -> churned on [2+3, 8-1] = 5..7 and from 8+3 = 11
#      ([1+3, 2-1] is empty);
#   2: occasion 3 -> churned from 6;
#   4: occasions 5, 9 -> churned on [5+3, 9-1] = 8..8 and from 12.
# customers: 1 from Jan 1, 2 from Jan 3, 4 from Jan 5 (3 never).
HAND_DAILY = {
    #                1  2  3  4  5  6  7  8  9 10 11 12
    "customers":    [1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3],
    "churned":      [0, 0, 0, 0, 1, 2, 2, 2, 1, 1, 2, 3],
    # first occasions: 1 on Jan 1, 2 on Jan 3, 4 on Jan 5
    "new_customers": [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    # recency reaches 3: 1 on 5 and 11, 2 on 6, 4 on 8 and 12
    "newly_churned": [0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1],
    # churned the day before and bought: 1 on Jan 8, 4 on Jan 9
    "returned":     [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
}  # fmt: skip


# ---------------------------------------------------------------------------
# hand examples
# ---------------------------------------------------------------------------


def test_hand_example_daily() -> None:
    out = churn_engine.churn_rate(hand_log(), start="2024-01-01", end="2024-01-12", horizon_days=3)
    assert out.columns == COLUMNS
    assert out["date"].to_list() == [D(2024, 1, d) for d in range(1, 13)]
    for name, expected in HAND_DAILY.items():
        assert out[name].to_list() == expected, name
    assert out["active"].to_list() == [1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 1, 0]
    thirds = [0.0, 0.0, 0.0, 0.0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 2 / 3, 1.0]
    assert out["churn_rate"].to_list() == pytest.approx(thirds)
    assert out.schema == pl.Schema(
        {"date": pl.Date, "customers": pl.Int64, "churned": pl.Int64, "churn_rate": pl.Float64,
         "active": pl.Int64, "new_customers": pl.Int64, "newly_churned": pl.Int64,
         "returned": pl.Int64}
    )  # fmt: skip


def test_hand_example_matches_score_reason() -> None:
    # as of Jan 8: customers 2 (last Jan 3) and 4 (last Jan 5) are 5 and 3 days
    # out, so no_purchase_3d; 1 bought on Jan 8
    scored = churn_engine.score(hand_log(), as_of=D(2024, 1, 8), horizon_days=3)
    assert scored.filter(pl.col("status_reason") == "no_purchase_3d")["customer_id"].to_list() == [
        2, 4,
    ]  # fmt: skip
    assert scored.height == 3  # customer 3 (refunds only) is not scored
    assert HAND_DAILY["churned"][7] == 2 and HAND_DAILY["customers"][7] == 3


def test_default_window() -> None:
    # first row Jan 1 (+3 days of horizon: Jan 4), last row Jan 9 (customer 4)
    out = churn_engine.churn_rate(hand_log(), horizon_days=3)
    assert out["date"].to_list() == [D(2024, 1, d) for d in range(4, 10)]
    assert out["churned"].to_list() == HAND_DAILY["churned"][3:9]
    # a log shorter than one horizon: the window starts on its first day
    short = churn_engine.churn_rate(hand_log(), horizon_days=30)
    assert short["date"].to_list() == [D(2024, 1, d) for d in range(1, 10)]
    assert short["churned"].to_list() == [0] * 9
    # a refund is a row: one on Dec 30 moves the first day (and so the start)
    extra = pl.DataFrame({"customer_id": [9], "ts": [D(2023, 12, 30)], "amount": [-1.0]})
    out = churn_engine.churn_rate(pl.concat([hand_log(), extra]), horizon_days=3)
    assert out["date"][0] == D(2024, 1, 2)
    # end only: start still defaults from the data
    out = churn_engine.churn_rate(hand_log(), horizon_days=3, end=D(2024, 1, 6))
    assert out["date"].to_list() == [D(2024, 1, 4), D(2024, 1, 5), D(2024, 1, 6)]


def test_weeks_and_months_by_hand() -> None:
    # 2024-01-01 is a Monday: weeks Jan 1..7 and Jan 8..14 (cut at Jan 12)
    weeks = churn_engine.churn_rate(
        hand_log(), start=D(2024, 1, 1), end=D(2024, 1, 12), horizon_days=3, freq="W"
    )
    assert weeks.rows() == [
        # Jan 7: stocks of Jan 7; flows summed over Jan 1..7
        (D(2024, 1, 7), 3, 2, pytest.approx(2 / 3), 1, 3, 2, 0),
        # Jan 12: stocks of Jan 12; newly churned 4 (8), 1 (11), 4 (12); returned 1, 4
        (D(2024, 1, 12), 3, 3, 1.0, 0, 0, 3, 2),
    ]
    months = churn_engine.churn_rate(
        hand_log(), start=D(2023, 12, 31), end=D(2024, 2, 3), horizon_days=3, freq="M"
    )
    assert months.rows() == [
        (D(2023, 12, 31), 0, 0, None, 0, 0, 0, 0),  # nobody has bought yet
        # Jan 31: all three churned (last occasions Jan 8, 3, 9)
        (D(2024, 1, 31), 3, 3, 1.0, 0, 3, 5, 2),
        (D(2024, 2, 3), 3, 3, 1.0, 0, 0, 0, 0),
    ]


def test_days_before_the_first_purchase() -> None:
    out = churn_engine.churn_rate(hand_log(), start=D(2023, 12, 30), end=D(2024, 1, 1),
                                  horizon_days=3)  # fmt: skip
    assert out["customers"].to_list() == [0, 0, 1]
    assert out["churn_rate"].to_list() == [None, None, 0.0]  # 0 / 0 is no rate


def test_window_before_or_after_the_data() -> None:
    # rows after `end` are not used: a window before the data is all zeros
    out = churn_engine.churn_rate(hand_log(), start=D(2023, 1, 1), end=D(2023, 1, 3),
                                  horizon_days=3)  # fmt: skip
    assert out["customers"].to_list() == [0, 0, 0]
    # long after the data: everybody churned, no flows
    out = churn_engine.churn_rate(hand_log(), start=D(2030, 1, 1), end=D(2030, 1, 2))
    assert out["churned"].to_list() == [3, 3]
    assert out.select(FLOWS).sum().row(0) == (0, 0, 0)


def test_empty_data() -> None:
    log = pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64})
    out = churn_engine.churn_rate(log)
    assert out.is_empty() and out.columns == COLUMNS
    out = churn_engine.churn_rate(log, end="2024-01-02")  # no start to default from
    assert out.is_empty()
    out = churn_engine.churn_rate(log, start="2024-01-01", end="2024-01-02")
    assert out["customers"].to_list() == [0, 0]
    assert out["churn_rate"].to_list() == [None, None]
    cats = pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64,
                                "category": pl.String})  # fmt: skip
    out = churn_engine.churn_rate(cats, category_col="category", start="2024-01-01",
                                  end="2024-01-02")  # fmt: skip
    assert out.is_empty() and out.columns == ["category", *COLUMNS]
    # only refunds: rows, but no customer
    refunds = pl.DataFrame({"customer_id": [1], "ts": [D(2024, 1, 1)], "amount": [-5.0]})
    out = churn_engine.churn_rate(refunds)
    assert out.rows() == [(D(2024, 1, 1), 0, 0, None, 0, 0, 0, 0)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start": "2024-01-05", "end": "2024-01-04"}, "start (2024-01-05) is after end"),
        ({"start": "2024-02-01"}, "after end (2024-01-09), the last day of the data"),
        ({"horizon_days": 0}, "horizon_days must be a positive whole number"),
        ({"horizon_days": 1.5}, "horizon_days must be a positive whole number"),
        ({"horizon_days": True}, "horizon_days must be a positive whole number"),
        ({"freq": "Q"}, "freq must be 'D' (day), 'W' (week) or 'M' (month), got 'Q'"),
        ({"freq": "d"}, "got 'd'"),
        ({"start": dt.datetime(2024, 1, 1, 12)}, "start is a day, got the datetime"),
        ({"end": "01/02/2024"}, "end: cannot parse '01/02/2024'; use YYYY-MM-DD"),
        ({"end": 20240101}, "end must be a date or a YYYY-MM-DD string"),
        ({"rfm_bins": 3}, "'rfm_bins' does not affect the churn rate"),
        ({"as_of": "2024-01-01"}, "'as_of' does not affect the churn rate"),
        ({"tz": "Mars/Base"}, "unknown time zone"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        churn_engine.churn_rate(hand_log(), **options)
    assert message in str(info.value)


def test_too_long_a_window_is_refused_before_allocating() -> None:
    log = hand_log().with_columns(category=pl.Series([str(i % 5) for i in range(9)]))
    with pytest.raises(ConfigError, match="narrow start/end"):
        churn_engine.churn_rate(log, category_col="category", start=D(1, 1, 1),
                                end=D(9999, 12, 31))  # fmt: skip


def test_bad_rows_raise_or_are_left_out() -> None:
    log = hand_log().vstack(
        pl.DataFrame(
            {"customer_id": [None], "ts": [D(2024, 1, 1)], "amount": [1.0]},
            schema=hand_log().schema,
        )
    )
    with pytest.raises(DataError, match="customer"):
        churn_engine.churn_rate(log, horizon_days=3)
    out = churn_engine.churn_rate(log, start="2024-01-01", end="2024-01-12", horizon_days=3,
                                  on_error="quarantine")  # fmt: skip
    assert out["churned"].to_list() == HAND_DAILY["churned"]


def test_time_zone_cuts_the_days() -> None:
    # 23:30 UTC on Jan 1 is 00:30 on Jan 2 in Berlin
    log = pl.DataFrame({
        "customer_id": [1],
        "ts": [dt.datetime(2024, 1, 1, 23, 30, tzinfo=dt.timezone.utc)],
        "amount": [1.0],
    })  # fmt: skip
    window = {"start": "2024-01-01", "end": "2024-01-03", "horizon_days": 1}
    assert churn_engine.churn_rate(log, **window)["customers"].to_list() == [1, 1, 1]
    assert churn_engine.churn_rate(log, **window)["churned"].to_list() == [0, 1, 1]
    berlin = churn_engine.churn_rate(log, tz="Europe/Berlin", **window)
    assert berlin["customers"].to_list() == [0, 1, 1]
    assert berlin["churned"].to_list() == [0, 0, 1]


def test_horizon_beyond_int32_never_fires() -> None:
    out = churn_engine.churn_rate(hand_log(), start="2024-01-01", end="9999-12-31",
                                  horizon_days=10**12, freq="M")  # fmt: skip
    assert out["churned"].sum() == 0 and out["customers"][-1] == 3
    assert out["date"][-1] == D(9999, 12, 31)


def test_categories_by_hand() -> None:
    # customer 1 buys "a" on Jan 1 and "b" on Jan 3; customer 2 buys "b" on Jan 1;
    # horizon 2 days, 1 day for "b"
    log = pl.DataFrame({
        "customer_id": [1, 1, 2],
        "ts": [D(2024, 1, 1), D(2024, 1, 3), D(2024, 1, 1)],
        "amount": [1.0, 1.0, 1.0],
        "category": ["a", "b", "b"],
    })  # fmt: skip
    out = churn_engine.churn_rate(
        log,
        start="2024-01-01",
        end="2024-01-04",
        horizon_days=2,
        category_col="category",
        category_horizon_days={"b": 1},
    )
    assert out.columns == ["category", *COLUMNS]
    assert out["category"].to_list() == ["a"] * 4 + ["b"] * 4
    # "a": customer 1 from Jan 1, churned from Jan 3 (1 + 2)
    assert out["customers"].to_list()[:4] == [1, 1, 1, 1]
    assert out["churned"].to_list()[:4] == [0, 0, 1, 1]
    # "b": 2 from Jan 1, churned from Jan 2; 1 from Jan 3, churned from Jan 4
    assert out["customers"].to_list()[4:] == [1, 1, 2, 2]
    assert out["churned"].to_list()[4:] == [0, 1, 1, 2]
    # the customer-level curve: 1 last bought Jan 3, 2 on Jan 1 (horizon 2)
    overall = churn_engine.churn_rate(log.drop("category"), start="2024-01-01",
                                      end="2024-01-04", horizon_days=2)  # fmt: skip
    assert overall["churned"].to_list() == [0, 0, 1, 1]


# ---------------------------------------------------------------------------
# the sweep kernel against a brute-force loop
# ---------------------------------------------------------------------------


def brute_force(groups: list[list[int]], series: list[int], horizons: list[int], start: int,
                n_days: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Every (series, day) by definition: last occasion on or before t."""

    def state(days: list[int], t: int, h: int) -> tuple[bool, bool]:
        before = [d for d in days if d <= t]
        return bool(before), bool(before) and t - before[-1] >= h

    out = {k: np.zeros((len(horizons), n_days), np.int64) for k in [*STOCKS, *FLOWS]}
    for days, s in zip(groups, series, strict=True):
        h = horizons[s]
        for i in range(n_days):
            t = start + i
            is_customer, churned = state(days, t, h)
            _, churned_before = state(days, t - 1, h)
            out["customers"][s, i] += is_customer
            out["churned"][s, i] += churned
            out["new_customers"][s, i] += bool(days) and days[0] == t
            out["newly_churned"][s, i] += churned and not churned_before
            out["returned"][s, i] += churned_before and not churned
    return out


@given(
    groups=st.lists(
        st.lists(st.integers(-25, 45), max_size=6, unique=True).map(sorted), max_size=10
    ),
    horizons=st.lists(
        st.one_of(st.integers(1, 30), st.just(K.MAX_HORIZON)), min_size=1, max_size=3
    ),
    data=st.data(),
    start=st.integers(-35, 50),
    n_days=st.integers(0, 70),
)
def test_sweep_matches_brute_force(groups, horizons, data, start, n_days) -> None:
    series = [data.draw(st.integers(0, len(horizons) - 1)) for _ in groups]
    offsets = np.cumsum([0, *map(len, groups)]).astype(np.int64)
    day = np.array([d for g in groups for d in g], dtype=np.int32)
    got = K.sweep(
        offsets, day, np.array(series, dtype=np.int32) if len(horizons) > 1 else None,
        np.array(horizons, dtype=np.int64), start, n_days,
    )  # fmt: skip
    expected = brute_force(groups, series, horizons, start, n_days)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_sweep_extreme_days() -> None:
    # int32 extremes and a maximal horizon: d + h is computed in int64
    lo, hi = -(2**31), 2**31 - 1
    offsets = np.array([0, 2, 3], np.int64)
    day = np.array([lo, hi - 1, hi], np.int32)  # group 0: lo, hi - 1; group 1: hi
    # window hi - 2 .. hi, horizon 2^31 - 1: group 0 is churned on
    # [lo + 2^31 - 1, hi - 2] = [-1, hi - 2] and returns on hi - 1
    got = K.sweep(offsets, day, None, np.array([K.MAX_HORIZON], np.int64), hi - 2, 3)
    assert got["customers"].tolist() == [[1, 1, 2]]
    assert got["churned"].tolist() == [[1, 0, 0]]
    assert got["returned"].tolist() == [[0, 1, 0]]
    assert got["newly_churned"].tolist() == [[0, 0, 0]]  # on day -1, outside
    # horizon 1: group 0 churned again from hi - 1 + 1 = hi
    got = K.sweep(offsets, day, None, np.array([1], np.int64), hi - 2, 3)
    assert got["churned"].tolist() == [[1, 0, 1]]
    # window lo .. lo + 1: group 0 from lo, churned from lo + 1
    got = K.sweep(offsets, day, None, np.array([1], np.int64), lo, 2)
    assert got["customers"].tolist() == [[1, 1]] and got["churned"].tolist() == [[0, 1]]


@pytest.mark.parametrize(
    ("offsets", "day", "series", "error"),
    [
        ([0, 2], [5, 5], None, "not ascending"),  # a repeated day
        ([0, 2], [6, 5], None, "not ascending"),
        ([0, 3], [5, 6], None, "not ascending"),  # offsets past the days
        ([0, 2, 1], [5, 6], None, "not ascending"),  # offsets running backwards
        ([1, 2], [5, 6], None, "not ascending"),
        ([0, 1], [5], [3], "series is out of range"),
        ([0, 1], [5], [-1], "series is out of range"),
    ],
)
def test_sweep_reports_bad_input(offsets, day, series, error) -> None:
    n_series = 2 if series is not None else 1
    with pytest.raises(KernelError, match=error):
        K.sweep(np.array(offsets, np.int64), np.array(day, np.int32),
                None if series is None else np.array(series, np.int32),
                np.ones(n_series, np.int64), 0, 10)  # fmt: skip


def test_sweep_rejects_bad_arguments() -> None:
    offsets, day = np.array([0, 1], np.int64), np.array([3], np.int32)
    for horizons in ([0], [K.MAX_HORIZON + 1]):
        with pytest.raises(ValueError, match="horizon"):
            K.sweep(offsets, day, None, np.array(horizons, np.int64), 0, 5)
    with pytest.raises(ValueError, match="series per group"):
        K.sweep(offsets, day, None, np.ones(2, np.int64), 0, 5)
    with pytest.raises(ValueError, match="one entry per group"):
        K.sweep(offsets, day, np.zeros(2, np.int32), np.ones(2, np.int64), 0, 5)
    assert K.sweep(offsets, day, None, np.ones(1, np.int64), 0, 0)["churned"].shape == (1, 0)


# ---------------------------------------------------------------------------
# against scoring as_of each date
# ---------------------------------------------------------------------------


def _scored_counts(frame: pl.DataFrame, as_of: dt.date, keys: list[str], options: dict[str, Any],
                   horizon_of: dict[Any, int] | None) -> pl.DataFrame:  # fmt: skip
    """One score as_of a day: ids, churned flag (recency >= horizon), first/last day."""
    scored = churn_engine.score(frame, as_of=as_of, **options)
    category = options.get("category_col")
    if category is None:
        horizon = pl.lit(options["horizon_days"])
        reason = pl.lit(f"no_purchase_{options['horizon_days']}d")
    else:
        assert horizon_of is not None
        horizon = pl.col(category).replace_strict(horizon_of, return_dtype=pl.Int64)
        reason = pl.format("no_purchase_{}d", horizon)
    out = scored.select(
        *keys,
        "first_purchase",
        "last_purchase",
        churned=pl.col("recency_days") >= horizon,
        by_reason=pl.col("status_reason") == reason,
    )
    assert (out["churned"] == out["by_reason"]).all()
    return out


@given(
    log=logs(max_customers=40),
    horizon=st.one_of(st.integers(1, 6), st.integers(1, 40), st.just(365)),
    tz=st.sampled_from(ZONES),
    data=st.data(),
)
def test_matches_score_as_of_each_date(log, horizon, tz, data) -> None:
    by_category = log.category and data.draw(st.booleans(), label="by_category")
    # one thread: tiny logs, and OpenMP start-up would dominate the run time
    options: dict[str, Any] = {"horizon_days": horizon, "tz": tz, "threads": 1}
    horizon_of = None
    keys = ["customer_id"]
    if by_category:
        options["category_col"] = "category"
        overrides = {c: data.draw(st.integers(1, 30)) for c in log.categories
                     if data.draw(st.booleans())}  # fmt: skip
        options["category_horizon_days"] = overrides
        horizon_of = {c: overrides.get(c, horizon) for c in log.categories}
        keys.append("category")
    # a window over the data and one horizon beyond, a little wider each side
    start = log.first_day - dt.timedelta(days=2)
    end = log.last_day + dt.timedelta(days=min(horizon, 45) + 2)
    curve = churn_engine.churn_rate(log.frame, start=start, end=end, **options)
    n_days = (end - start).days + 1
    n_series = len(log.categories) if by_category else 1
    assert curve.height == n_days * n_series

    # a day with each kind of flow (rare on random days), or any day
    choices = {"any": [start + dt.timedelta(days=offset) for offset in range(n_days)]}
    for flow in FLOWS:
        eventful = curve.filter(pl.col(flow) > 0)["date"].unique().sort().to_list()
        if eventful:
            choices[flow] = eventful
    days = st.sampled_from(sorted(choices)).flatmap(lambda kind: st.sampled_from(choices[kind]))
    for t in sorted(set(data.draw(st.lists(days, min_size=1, max_size=2), label="days"))):
        now = _scored_counts(log.frame, t, keys, options, horizon_of)
        before = _scored_counts(log.frame, t - dt.timedelta(days=1), keys, options, horizon_of)
        joined = now.join(before, on=keys, how="left", suffix="_before").with_columns(
            pl.col("churned_before").fill_null(False)
        )
        expected = joined.group_by(keys[1:] or pl.lit(0).alias("all")).agg(
            customers=pl.len(),
            churned=pl.col("churned").sum(),
            new_customers=(pl.col("first_purchase") == t).sum(),
            newly_churned=(pl.col("churned") & ~pl.col("churned_before")).sum(),
            returned=(~pl.col("churned") & pl.col("churned_before")).sum(),
        )
        rows = curve.filter(pl.col("date") == t)
        if by_category:
            rows = rows.join(expected, on="category", how="left", suffix="_score").fill_null(0)
        else:
            rows = rows.with_columns(
                expected.select(pl.all().name.suffix("_score")).drop("all_score")
                if expected.height
                else pl.DataFrame({f"{c}_score": [0] for c in [*STOCKS, *FLOWS]})
            )
        for name in [*STOCKS, *FLOWS]:
            assert rows[name].to_list() == rows[f"{name}_score"].to_list(), (t, name)
            event(f"{name} > 0: {rows[name].sum() > 0}")
        # a customer who bought on t is not churned on t, and churned before
        assert (joined.filter(pl.col("last_purchase") == t)["churned"].not_()).all()


# ---------------------------------------------------------------------------
# weeks and months against days; identities
# ---------------------------------------------------------------------------


@given(log=logs(max_customers=30), horizon=st.integers(1, 60), data=st.data())
def test_weeks_and_months_sample_the_daily_curve(log, horizon, data) -> None:
    category = "category" if log.category else None
    keys = [category] if category else []
    start = log.first_day + dt.timedelta(days=data.draw(st.integers(-40, 20)))
    end = log.last_day + dt.timedelta(days=data.draw(st.integers(-5, 80)))
    if start > end:
        start, end = end, start
    window = {"start": start, "end": end, "horizon_days": horizon, "category_col": category,
              "threads": 1}  # fmt: skip
    daily = churn_engine.churn_rate(log.frame, **window)

    # identities of the daily curve
    assert (daily["active"] == daily["customers"] - daily["churned"]).all()
    steps = daily.with_columns(
        (pl.col(c) - pl.col(c).shift(1).over(keys or pl.lit(0))).alias(f"d_{c}") for c in STOCKS
    ).drop_nulls("d_customers")
    assert (steps["d_customers"] == steps["new_customers"]).all()
    assert (steps["d_churned"] == steps["newly_churned"] - steps["returned"]).all()

    for freq, period in (("W", "1w"), ("M", "1mo")):
        got = churn_engine.churn_rate(log.frame, freq=freq, **window)
        expected = (
            daily.with_columns(period=pl.col("date").dt.truncate(period))
            .group_by([*keys, "period"], maintain_order=True)
            .agg(
                pl.col("date", *STOCKS, "churn_rate", "active").last(),
                pl.col(FLOWS).sum(),
            )
            .select(got.columns)
        )
        assert got.equals(expected), freq
        if freq == "W":
            last_days = got.filter(pl.col("date") != end)["date"].dt.weekday()
            assert (last_days == 7).all()  # Sundays


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def test_cli_churn_rate_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["churn-rate", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ["--output", "--start", "--end", "--horizon-days", "--freq", "--customer-col",
                   "--ts-col", "--amount-col", "--category-col", "--tz", "--ts-unit",
                   "--on-error", "--threads", "--quiet", "INPUT", "examples:"]:  # fmt: skip
        assert option in out, option
    assert cli.main(["--help"]) == 0
    assert "churn-rate" in capsys.readouterr().out


def test_cli_churn_rate(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "log.parquet"
    hand_log().write_parquet(log_path)
    out_path = tmp_path / "rate.csv"
    argv = ["churn-rate", str(log_path), "-o", str(out_path), "--start", "2024-01-01",
            "--end", "2024-01-12", "--horizon-days", "3", "-q"]  # fmt: skip
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == ""
    table = pl.read_csv(out_path, try_parse_dates=True)
    assert table["churned"].to_list() == HAND_DAILY["churned"]

    assert cli.main(argv[:-1]) == 0
    out = capsys.readouterr().out
    assert "window                      2024-01-01 .. 2024-01-12  (12 days)" in out
    assert "horizon                           3 days" in out
    assert "first   2024-01-01         0.0 %  (0 of 1 customers)" in out
    assert "last    2024-01-12       100.0 %  (3 of 3 customers)" in out
    assert "lowest  2024-01-01         0.0 %" in out
    assert "highest 2024-01-12       100.0 %" in out
    assert f"wrote 12 rows to {out_path}" in out

    assert cli.main(["churn-rate", str(log_path), "--freq", "W", "--horizon-days", "3"]) == 0
    out = capsys.readouterr().out
    assert "(one per week, dated at its last day)" in out and "wrote" not in out


def test_cli_churn_rate_by_category(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "log.csv"
    hand_log().with_columns(category=pl.Series(list("xyxyxyxyx"))).write_csv(log_path)
    assert cli.main(["churn-rate", str(log_path), "--category-col", "category"]) == 0
    out = capsys.readouterr().out
    assert "churn rate, category = 'x'" in out and "churn rate, category = 'y'" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "2024-01-05", "--end", "2024-01-01"], "--start (2024-01-05) is after --end"),
        (["--horizon-days", "0"], "--horizon-days must be a positive whole number"),
        (["--freq", "Q"], "invalid choice: 'Q'"),
        (["--start", "yesterday"], "not an ISO date"),
        (["-o", "rate.txt"], "rate.txt"),
        (["--start", "2030-01-01"], "after end (2024-01-09), the last day of the data"),
    ],
)
def test_cli_churn_rate_usage_errors(
    argv: list[str], message: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    hand_log().write_parquet(tmp_path / "log.parquet")
    assert cli.main(["churn-rate", "log.parquet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "rate.txt").exists()


def test_cli_churn_rate_bad_data(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer_id,ts,amount\n1,2024-01-01,x\n")
    assert cli.main(["churn-rate", str(path)]) == 1
    assert "amount" in capsys.readouterr().err
    assert cli.main(["churn-rate", str(path), "--on-error", "quarantine"]) == 0
    captured = capsys.readouterr()
    assert "1 rejected rows left out of the churn rate" in captured.err
    assert "rejected                             1  (unparseable_amount: 1)" in captured.out
    assert cli.main(["churn-rate", str(tmp_path / "missing.csv")]) == 2
