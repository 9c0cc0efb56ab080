"""The behaviour funnel (``churn_engine.funnel``, docs/funnel.md).

- a hand-built event log with every number worked out by hand (daily PV, UV,
  users per behaviour, pay rate, funnel steps, conversion and drop-off; the
  overall period, the repurchase rate and the funnel table);
- the plain-Polars reference (``_funnel_reference``) checked with hypothesis
  over random logs and every id kind;
- invariance: row order, chunking, input kind (polars, pyarrow, pandas,
  Parquet, CSV);
- options: time zone, epoch seconds, start/end, item and category counts;
- bad input: unknown and null behaviour, null user, missing column, wrong
  types, quarantine;
- the compiled kernel (``_funnel``) against NumPy;
- the event generator and the two CLI commands.
"""

from __future__ import annotations

import datetime as dt
import itertools
import pathlib
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import churn_engine
from churn_engine import ConfigError, DataError, FunnelResult, KernelError, SchemaError, cli
from churn_engine import _funnel as K
from churn_engine._funnel_reference import reference_funnel
from churn_engine._generate_events import generate_events
from churn_engine.funnel import DAILY_SCHEMA, FUNNEL_SCHEMA, OVERALL_SCHEMA

D1, D2, D3 = dt.date(2017, 11, 25), dt.date(2017, 11, 26), dt.date(2017, 11, 27)


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


# ---------------------------------------------------------------------------
# the hand-built log
# ---------------------------------------------------------------------------

#: (user, behaviour, ts, item, category)
HAND_ROWS: list[tuple[int, str, dt.datetime, int | None, int]] = [
    # day 1: u1 pv pv cart buy; u2 pv fav; u3 pv; u4 buy (without a pv)
    (1, "pv", at(D1, 9), 100, 7),
    (1, "pv", at(D1, 10), 101, 7),
    (1, "cart", at(D1, 11), 101, 7),
    (1, "buy", at(D1, 12), 101, 7),
    (2, "pv", at(D1, 9), 100, 7),
    (2, "fav", at(D1, 9), 100, 7),
    (3, "pv", at(D1, 23), 102, 8),
    (4, "buy", at(D1, 8), 103, 8),
    # day 2: u1 pv buy; u2 pv cart buy; u3 fav (no pv that day); u5 pv pv pv
    (1, "pv", at(D2, 9), 104, 9),
    (1, "buy", at(D2, 10), 104, 9),
    (2, "pv", at(D2, 0), 101, 7),
    (2, "cart", at(D2, 1), 101, 7),
    (2, "buy", at(D2, 2), 101, 7),
    (3, "fav", at(D2, 5), 102, 8),
    (5, "pv", at(D2, 6), None, 8),
    (5, "pv", at(D2, 7), 100, 7),
    (5, "pv", at(D2, 8), 100, 7),
]


def hand_log() -> pl.DataFrame:
    users, behaviours, ts, items, categories = zip(*HAND_ROWS, strict=True)
    return pl.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "category_id": categories,
            "behavior": behaviours,
            "ts": ts,
        },
        schema={"user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64,
                "behavior": pl.String, "ts": pl.Datetime("us")},
    )  # fmt: skip


def test_hand_daily() -> None:
    daily = churn_engine.funnel(hand_log()).daily
    assert daily.schema == pl.Schema(DAILY_SCHEMA)
    assert daily["date"].to_list() == [D1, D2]
    rows = daily.rows(named=True)
    # Day 1: 8 events (pv 4: u1 x2, u2, u3; fav 1: u2; cart 1: u1; buy 2: u1, u4);
    # active users u1..u4; pv users u1 u2 u3; fav-or-cart users u1 (cart) u2 (fav);
    # buyers u1 u4 -> pay rate 2/4. Funnel: pv 3 -> pv & (fav|cart) 2 (u1, u2)
    # -> and buy 1 (u1; u4 bought without a pv).
    assert rows[0] == {
        "date": D1, "events": 8, "pv": 4, "fav": 1, "cart": 1, "buy": 2,
        "uv": 4, "pv_users": 3, "fav_cart_users": 2, "buyers": 2, "pay_rate": 0.5,
        "funnel_fav_cart_users": 2, "funnel_buy_users": 1,
        "conv_pv_to_fav_cart": 2 / 3, "conv_fav_cart_to_buy": 1 / 2, "conv_pv_to_buy": 1 / 3,
        "drop_pv_to_fav_cart": 1 / 3, "drop_fav_cart_to_buy": 1 / 2,
    }  # fmt: skip
    # Day 2: 9 events (pv 5: u1, u2, u5 x3; fav 1: u3; cart 1: u2; buy 2: u1, u2);
    # active u1 u2 u3 u5; pv users u1 u2 u5; fav-or-cart u2 u3; buyers u1 u2.
    # Funnel: pv 3 -> 1 (u2; u3's fav has no pv that day) -> 1 (u2).
    assert rows[1] == {
        "date": D2, "events": 9, "pv": 5, "fav": 1, "cart": 1, "buy": 2,
        "uv": 4, "pv_users": 3, "fav_cart_users": 2, "buyers": 2, "pay_rate": 0.5,
        "funnel_fav_cart_users": 1, "funnel_buy_users": 1,
        "conv_pv_to_fav_cart": 1 / 3, "conv_fav_cart_to_buy": 1.0, "conv_pv_to_buy": 1 / 3,
        "drop_pv_to_fav_cart": 2 / 3, "drop_fav_cart_to_buy": 0.0,
    }  # fmt: skip


def test_hand_overall_and_funnel() -> None:
    result = churn_engine.funnel(hand_log())
    assert result.overall.schema == pl.Schema(OVERALL_SCHEMA)
    # Over the period, per user: u1 pv cart buy; u2 pv fav cart buy; u3 pv fav
    # (pv on day 1, fav on day 2: the period funnel spans days); u4 buy; u5 pv.
    # UV 5; pv users 4; fav-or-cart users 3; buyers u1 u2 u4 -> pay rate 3/5.
    # Buy days: u1 2 (day 1 and 2), u2 1, u4 1 -> repurchase rate 1/3.
    # Items: 100..104 (one null item not counted) = 5; categories 7, 8, 9 = 3.
    assert result.overall.row(0, named=True) == {
        "start": D1, "end": D2, "days": 2,
        "events": 17, "pv": 9, "fav": 2, "cart": 2, "buy": 4,
        "uv": 5, "pv_users": 4, "fav_cart_users": 3, "buyers": 3, "repeat_buyers": 1,
        "pay_rate": 0.6, "repurchase_rate": 1 / 3,
        "funnel_fav_cart_users": 3, "funnel_buy_users": 2,
        "conv_pv_to_fav_cart": 3 / 4, "conv_fav_cart_to_buy": 2 / 3, "conv_pv_to_buy": 1 / 2,
        "drop_pv_to_fav_cart": 1 / 4, "drop_fav_cart_to_buy": 1 / 3,
        "items": 5, "categories": 3,
    }  # fmt: skip
    assert result.pay_rate == 0.6
    assert result.repurchase_rate == 1 / 3
    # The funnel: pv 4 users (9 pv events) -> fav/cart 3 (u1 u2 u3; 4 events)
    # -> buy 2 (u1 u2; 4 events): conversion 3/4 then 2/3, 2/4 of the top;
    # drop-off 1 user (1/4) then 1 user (1/3).
    assert result.funnel.schema == pl.Schema(FUNNEL_SCHEMA)
    assert result.funnel.rows() == [
        ("pv", 9, 4, None, 1.0, None, None),
        ("fav/cart", 4, 3, 3 / 4, 3 / 4, 1, 1 / 4),
        ("buy", 4, 2, 2 / 3, 1 / 2, 1, 1 / 3),
    ]
    stats = result.stats
    assert (stats.rows_read, stats.rows_accepted, stats.rows_rejected) == (17, 17, 0)
    assert (stats.users, stats.days, stats.start, stats.end) == (5, 2, D1, D2)
    assert stats.reconciles()
    assert result.rejects is None


def test_hand_log_matches_reference() -> None:
    log = hand_log()
    result = churn_engine.funnel(log)
    daily, overall, steps = reference_funnel(log.with_columns(date=pl.col("ts").dt.date()))
    assert_frame_equal(result.daily, daily)
    assert_frame_equal(result.overall.drop("items", "categories"), overall.select(
        result.overall.drop("items", "categories").columns))  # fmt: skip
    assert_frame_equal(result.funnel, steps)


def test_report_text() -> None:
    text = str(churn_engine.funnel(hand_log()))
    assert "2017-11-25 .. 2017-11-26 (2 days with events)" in text
    assert "pay rate 60.0 %" in text and "repurchase rate 33.3 %" in text
    assert "fav/cart" in text and "75.0 %" in text
    assert "rows read 17, counted 17, rejected 0" in text
    many = churn_engine.funnel(
        pl.DataFrame({"user_id": list(range(40)), "behavior": ["pv"] * 40,
                      "ts": [D1 + dt.timedelta(days=i) for i in range(40)]})
    )  # fmt: skip
    assert "... 9 more days" in many.format(max_days=31)
    assert "more days" not in many.format(max_days=None)


def test_empty_log() -> None:
    empty = hand_log().head(0)
    result = churn_engine.funnel(empty)
    assert result.daily.height == 0 and result.daily.schema == pl.Schema(DAILY_SCHEMA)
    row = result.overall.row(0, named=True)
    assert row["events"] == 0 and row["uv"] == 0 and row["start"] is None
    assert row["pay_rate"] is None and row["repurchase_rate"] is None
    assert result.pay_rate is None and result.repurchase_rate is None
    assert result.funnel["users"].to_list() == [0, 0, 0]
    assert result.funnel["conversion_from_top"].to_list() == [None, None, None]
    assert "no events" in str(result)


# ---------------------------------------------------------------------------
# options: time zone, epochs, period, item counts
# ---------------------------------------------------------------------------


def test_time_zone_moves_days() -> None:
    # 20:00 UTC on day 1 is 04:00 on day 2 in China (UTC+8)
    log = pl.DataFrame({
        "user_id": [1, 1], "behavior": ["pv", "buy"],
        "ts": [dt.datetime(2017, 11, 25, 10, tzinfo=dt.timezone.utc),
               dt.datetime(2017, 11, 25, 20, tzinfo=dt.timezone.utc)],
    })  # fmt: skip
    assert churn_engine.funnel(log).daily["date"].to_list() == [D1]
    china = churn_engine.funnel(log, tz="Asia/Shanghai").daily
    assert china["date"].to_list() == [D1, D2]
    assert china["buyers"].to_list() == [0, 1]


def test_taobao_layout_epoch_seconds_and_period() -> None:
    log = hand_log()
    taobao = log.select(
        "user_id", "item_id", "category_id", pl.col("behavior").alias("behavior_type"),
        pl.col("ts").dt.replace_time_zone("UTC").dt.epoch("s").alias("timestamp"),
    )  # fmt: skip
    with pytest.raises(SchemaError, match="ts_unit"):
        churn_engine.funnel(taobao, behaviour_col="behavior_type", ts_col="timestamp")
    result = churn_engine.funnel(
        taobao, behaviour_col="behavior_type", ts_col="timestamp", ts_unit="s"
    )
    expected = churn_engine.funnel(log)
    assert_frame_equal(result.daily, expected.daily)
    assert_frame_equal(result.overall, expected.overall)

    only_day2 = churn_engine.funnel(
        taobao, behaviour_col="behavior_type", ts_col="timestamp", ts_unit="s",
        start="2017-11-26", end=D2,
    )  # fmt: skip
    assert only_day2.daily["date"].to_list() == [D2]
    assert only_day2.stats.rows_outside_period == 8
    assert only_day2.stats.rows_accepted == 9
    assert only_day2.stats.reconciles()
    # the period's users: u1 u2 u3 u5; u1 bought on day 2 only -> no repeat buyer
    assert only_day2.overall.item(0, "uv") == 4
    assert only_day2.repurchase_rate == 0.0


def test_item_and_category_columns_are_optional() -> None:
    log = hand_log().drop("item_id", "category_id")
    result = churn_engine.funnel(log)  # default names absent: skipped
    assert result.overall.item(0, "items") is None
    assert result.overall.item(0, "categories") is None
    assert result.overall.item(0, "uv") == 5
    with pytest.raises(SchemaError, match="'sku' \\(item_col\\)"):
        churn_engine.funnel(log, item_col="sku")
    skipped = churn_engine.funnel(hand_log(), item_col=None, category_col=None)
    assert skipped.overall.item(0, "items") is None
    # string items and very sparse integer categories are counted too
    other = hand_log().with_columns(
        pl.col("item_id").cast(pl.String), pl.col("category_id") * 10**15
    )
    row = churn_engine.funnel(other).overall.row(0, named=True)
    assert (row["items"], row["categories"]) == (5, 3)


def test_string_and_categorical_columns() -> None:
    log = hand_log().with_columns(
        ("U" + pl.col("user_id").cast(pl.String)).alias("user_id"),
        pl.col("behavior").cast(pl.Categorical),
    )
    expected = churn_engine.funnel(hand_log())
    result = churn_engine.funnel(log)
    assert_frame_equal(result.daily, expected.daily)
    assert_frame_equal(result.overall, expected.overall)
    enum = hand_log().with_columns(pl.col("behavior").cast(pl.Enum(["pv", "fav", "cart", "buy"])))
    assert_frame_equal(churn_engine.funnel(enum).daily, expected.daily)


# ---------------------------------------------------------------------------
# invariance and input kinds
# ---------------------------------------------------------------------------


def test_row_order_and_chunks_do_not_matter() -> None:
    log = generate_events(5_000, users=60, seed=3)
    expected = churn_engine.funnel(log)
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=1)
    assert_frame_equal(churn_engine.funnel(shuffled).daily, expected.daily)
    chunked = pl.concat([log.slice(i, 700) for i in range(0, log.height, 700)], rechunk=False)
    assert chunked.n_chunks() > 1
    result = churn_engine.funnel(chunked)
    assert_frame_equal(result.daily, expected.daily)
    assert_frame_equal(result.overall, expected.overall)
    assert_frame_equal(result.funnel, expected.funnel)
    batches = pa.Table.from_batches(log.to_arrow().to_batches(max_chunksize=333))
    assert_frame_equal(churn_engine.funnel(batches).overall, expected.overall)


def test_input_kinds(tmp_path: pathlib.Path) -> None:
    log = hand_log()
    expected = churn_engine.funnel(log)
    log.write_parquet(tmp_path / "e.parquet")
    log.write_csv(tmp_path / "e.csv")
    for source in (
        log.lazy(),
        log.to_arrow(),
        log.to_pandas(),
        str(tmp_path / "e.parquet"),
        tmp_path / "e.csv",
    ):
        result = churn_engine.funnel(source)
        assert_frame_equal(result.daily, expected.daily)
        assert_frame_equal(result.overall, expected.overall)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_unknown_behaviour_names_column_row_and_values() -> None:
    log = hand_log().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("PV"))
        .when(pl.int_range(pl.len()) == 5).then(pl.lit("click"))
        .otherwise(pl.col("behavior")).alias("behavior")
    )  # fmt: skip
    with pytest.raises(DataError) as info:
        churn_engine.funnel(log)
    error = info.value
    assert (error.column, error.reason, error.row) == ("behavior", "unknown_behaviour", 3)
    message = str(error)
    assert "'behavior'" in message and "row 3" in message and "'PV'" in message
    assert "'click'" in message and "pv, fav, cart, buy" in message
    assert "2 bad rows" in message


def test_null_user_and_null_behaviour() -> None:
    log = hand_log().with_columns(
        pl.when(pl.int_range(pl.len()) == 2)
        .then(None)
        .otherwise(pl.col("user_id"))
        .alias("user_id")
    )
    with pytest.raises(DataError, match="column 'user_id': null user id at row 2") as info:
        churn_engine.funnel(log)
    assert info.value.reason == "null_user_id"
    log = hand_log().with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(None)
        .otherwise(pl.col("behavior"))
        .alias("behavior")
    )
    with pytest.raises(DataError, match="null behaviour at row 4"):
        churn_engine.funnel(log)


def test_quarantine_sets_bad_rows_aside() -> None:
    log = hand_log().with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("user_id"))
        .alias("user_id"),
        pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("view")).otherwise(pl.col("behavior"))
        .alias("behavior"),
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("ts")).alias("ts"),
    )  # fmt: skip
    result = churn_engine.funnel(log, on_error="quarantine")
    stats = result.stats
    assert stats.rows_rejected == 3 and stats.rows_accepted == 14 and stats.reconciles()
    assert stats.rejected_by_reason == {"null_user_id": 1, "null_ts": 1, "unknown_behaviour": 1}
    assert result.rejects is not None
    assert result.rejects["row"].to_list() == [0, 6, 7]
    assert result.rejects["reason"].to_list() == ["null_user_id", "unknown_behaviour", "null_ts"]
    assert result.rejects.columns == ["row", "user_id", "ts", "behavior", "reason"]
    # same as counting the good rows alone
    good = hand_log().filter(~pl.int_range(pl.len()).is_in([0, 6, 7]))
    assert_frame_equal(result.daily, churn_engine.funnel(good).daily)
    clean = churn_engine.funnel(hand_log(), on_error="quarantine")
    assert clean.rejects is not None and clean.rejects.height == 0


def test_malformed_csv_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,behavior,ts\n1,pv,2017-11-25\n2,pv,2017-11-25,extra\n3,buy,2017-11-26\n"
    )
    with pytest.raises(DataError, match="malformed CSV line 3 \\(row 1\\)"):
        churn_engine.funnel(path)
    result = churn_engine.funnel(path, on_error="quarantine")
    assert result.stats.rejected_by_reason == {"malformed_csv_line": 1}
    assert result.overall.item(0, "uv") == 2 and result.stats.reconciles()


def test_progress_reports_stages() -> None:
    stages: list[str] = []
    result = churn_engine.funnel(hand_log(), progress=stages.append)
    assert stages == ["read", "count", "assemble"]
    assert set(result.stats.timings) == set(stages)


def test_missing_columns_and_wrong_types() -> None:
    with pytest.raises(SchemaError, match="missing column 'behavior' \\(behaviour_col\\)"):
        churn_engine.funnel(hand_log().drop("behavior"))
    with pytest.raises(SchemaError, match="'user_id' \\(user_col\\)"):
        churn_engine.funnel(hand_log().drop("user_id"))
    codes = hand_log().with_columns(pl.lit(1).alias("behavior"))
    with pytest.raises(SchemaError, match="replace_strict"):
        churn_engine.funnel(codes)
    floats = hand_log().with_columns(pl.col("user_id").cast(pl.Float64))
    with pytest.raises(SchemaError, match="user ids"):
        churn_engine.funnel(floats)
    text_ts = hand_log().with_columns(pl.lit("yesterday").alias("ts"))
    with pytest.raises(DataError, match="unparseable ts"):
        churn_engine.funnel(text_ts)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"start": "2017-11-27", "end": "2017-11-25"}, "after end"),
        ({"start": dt.datetime(2017, 11, 25, 10)}, "is a day"),
        ({"end": "25/11/2017"}, "YYYY-MM-DD"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"ts_unit": "h"}, "ts_unit"),
        ({"on_error": "ignore"}, "on_error"),
        ({"user_col": "behavior"}, "must differ"),
        ({"item_col": ""}, "item_col"),
    ],
)
def test_bad_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        churn_engine.funnel(hand_log(), **options)


# ---------------------------------------------------------------------------
# the plain-Polars reference, with hypothesis
# ---------------------------------------------------------------------------


@st.composite
def event_logs(draw: st.DrawFn) -> tuple[pl.DataFrame, str]:
    """A clean event log: its shape drawn by hypothesis, its values by NumPy."""
    n_rows = draw(st.integers(0, 400))
    n_users = draw(st.integers(1, 40))
    n_days = draw(st.integers(1, 6))
    id_kind = draw(st.sampled_from(["compact", "sparse", "string", "uint64"]))
    weights = np.array(draw(st.lists(st.integers(0, 10), min_size=4, max_size=4)), float)
    if not weights.any():
        weights[0] = 1.0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    users = rng.integers(0, n_users, size=n_rows)
    if id_kind == "compact":
        ids: Any = pl.Series(users - 3, dtype=pl.Int64)
    elif id_kind == "sparse":
        ids = pl.Series(users * 10**12 - 7 * 10**17, dtype=pl.Int64)
    elif id_kind == "uint64":
        ids = pl.Series(users.astype(np.uint64) + np.uint64(2**63), dtype=pl.UInt64)
    else:
        ids = pl.Series([f"u{u}" for u in users], dtype=pl.String)
    behaviour = rng.choice(4, size=n_rows, p=weights / weights.sum())
    day = rng.integers(0, n_days, size=n_rows) * draw(st.sampled_from([1, 3]))
    frame = pl.DataFrame(
        {
            "user_id": ids,
            "behavior": pl.Series(["pv", "fav", "cart", "buy"]).gather(behaviour),
            "date": pl.Series(day + 17_000, dtype=pl.Int32).cast(pl.Date),
        }
    )
    return frame, id_kind


@given(event_logs(), st.integers(-1, 18), st.integers(-1, 18), st.integers(1, 5))
def test_engine_matches_polars_reference(
    case: tuple[pl.DataFrame, str], start: int, end: int, parts: int
) -> None:
    frame, _ = case
    first = dt.date(1970, 1, 1) + dt.timedelta(days=17_000)
    period: dict[str, dt.date] = {}
    expected_rows = frame
    if start >= 0:
        period["start"] = first + dt.timedelta(days=start)
        expected_rows = expected_rows.filter(pl.col("date") >= period["start"])
    if end >= 0:
        period["end"] = first + dt.timedelta(days=end)
        expected_rows = expected_rows.filter(pl.col("date") <= period["end"])
    if start >= 0 and end >= 0 and start > end:
        with pytest.raises(ConfigError):
            churn_engine.funnel(frame, ts_col="date", **period)
        return
    # several chunks: the kernel walks them as separate segments
    size = -(-frame.height // parts) or 1
    chunked = pl.concat([frame.slice(i, size) for i in range(0, max(frame.height, 1), size)],
                        rechunk=False)  # fmt: skip
    result = churn_engine.funnel(chunked, ts_col="date", **period)
    daily, overall, steps = reference_funnel(expected_rows)
    assert_frame_equal(result.daily, daily)
    columns = result.overall.drop("items", "categories").columns
    assert_frame_equal(result.overall.select(columns), overall.select(columns))
    assert_frame_equal(result.funnel, steps)
    assert result.stats.reconciles()
    assert result.stats.rows_outside_period == frame.height - expected_rows.height


# ---------------------------------------------------------------------------
# the compiled kernel against NumPy
# ---------------------------------------------------------------------------


def numpy_funnel(users: np.ndarray, days: np.ndarray, behaviours: np.ndarray,
                 n_users: int) -> dict[str, np.ndarray]:  # fmt: skip
    """The kernel's outputs computed with dense NumPy arrays."""
    present = np.unique(days)
    index = np.searchsorted(present, days)
    events = np.zeros((present.size, 4), np.int64)
    np.add.at(events, (index, behaviours), 1)
    masks = np.zeros((present.size, n_users), np.int64)  # behaviour set per day and user
    np.bitwise_or.at(masks, (index, users), 1 << behaviours.astype(np.int64))
    day_masks = np.stack([np.bincount(row[row > 0], minlength=16) for row in masks]) if \
        present.size else np.zeros((0, 16), np.int64)  # fmt: skip
    all_masks = np.bitwise_or.reduce(masks, axis=0) if present.size else np.zeros(n_users, int)
    buy_days = np.minimum(((masks & 8) > 0).sum(axis=0), 2)
    return {
        "days": present,
        "events": events,
        "day_masks": day_masks,
        "user_masks": np.bincount(all_masks, minlength=16),
        "buy_days": np.bincount(buy_days, minlength=3),
    }


def run_kernel(
    user_segments: list[np.ndarray],
    user_base: int,
    day_segments: list[np.ndarray],
    behaviour_segments: list[np.ndarray],
    n_users: int,
) -> dict[str, np.ndarray]:
    all_days = np.concatenate(day_segments) if day_segments else np.empty(0, np.int32)
    min_day = int(all_days.min()) if all_days.size else 0
    span = int(all_days.max()) - min_day + 1 if all_days.size else 0
    per_day = np.zeros(span, np.int64)
    K.day_histogram(per_day, day_segments, min_day)
    present = np.flatnonzero(per_day)
    index = np.full(span, -1, np.int32)
    index[present] = np.arange(present.size)
    offsets = np.concatenate([[0], np.cumsum(per_day[present])]).astype(np.int64)
    out = {
        "days": present + min_day,
        "events": np.zeros((present.size, 4), np.int64),
        "day_masks": np.zeros((present.size, 16), np.int64),
        "user_masks": np.zeros(16, np.int64),
        "buy_days": np.zeros(3, np.int64),
    }
    K.funnel_pass(out["events"], out["day_masks"], out["user_masks"], out["buy_days"],
                  user_segments, user_base, day_segments, behaviour_segments, index, offsets,
                  min_day, n_users)  # fmt: skip
    return out


def split(array: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    bounds = [0, *sorted(cuts), array.size]
    return [array[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_users = int(rng.integers(1, 3_000)), int(rng.integers(1, 200))
    users = rng.integers(0, n_users, size=n).astype(np.int32)
    days = (rng.integers(0, 12, size=n) * 2 - 5).astype(np.int32)  # gaps, negative days
    behaviours = rng.choice(4, size=n, p=[0.7, 0.1, 0.1, 0.1]).astype(np.uint8)
    expected = numpy_funnel(users, days, behaviours, n_users)
    cuts = rng.integers(0, n + 1, size=4).tolist()  # some segments empty
    got = run_kernel(split(users, cuts), 0, split(days, cuts), split(behaviours, cuts), n_users)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    # int64 ids with a base give the same counts
    ids = users.astype(np.int64) + 10**15
    got = run_kernel([ids], 10**15, [days], [behaviours], n_users)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_kernel_rejects_out_of_range_codes() -> None:
    days = [np.array([0, 1], np.int32)]
    behaviours = [np.array([0, 3], np.uint8)]
    with pytest.raises(KernelError, match="out of range"):
        run_kernel([np.array([0, 5], np.int32)], 0, days, behaviours, n_users=5)
    with pytest.raises(KernelError, match="out of range"):
        run_kernel([np.array([0, 1], np.int32)], 0, days, [np.array([0, 4], np.uint8)], 5)
    with pytest.raises(KernelError, match="out of range"):  # id below the base
        run_kernel([np.array([9, 10], np.int64)], 10, days, behaviours, n_users=5)
    with pytest.raises(KernelError, match="out of range"):
        K.day_histogram(np.zeros(2, np.int64), [np.array([0, 2], np.int32)], 0)
    # offsets that do not match the days: an error, never a write past a day's slot
    out = [np.zeros((2, 4), np.int64), np.zeros((2, 16), np.int64), np.zeros(16, np.int64),
           np.zeros(3, np.int64)]  # fmt: skip
    with pytest.raises(KernelError):
        two_on_day_1 = [np.array([1, 1], np.int32)]
        K.funnel_pass(*out, [np.array([0, 1], np.int32)], 0, two_on_day_1, behaviours,
                      np.array([0, 1], np.int32), np.array([0, 1, 2]), 0, 2)  # fmt: skip
    with pytest.raises(ValueError, match="add up"):
        K.funnel_pass(*out, [np.array([0, 1], np.int32)], 0, days, behaviours,
                      np.array([0, 1], np.int32), np.array([0, 1, 3]), 0, 2)  # fmt: skip
    with pytest.raises(KernelError, match="too many"):
        K.funnel_pass(*out, [], 0, [], [], np.array([0, 1], np.int32), np.array([0, 0, 0]), 0,
                      K.MAX_USERS + 1)  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_count_distinct_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(-50, 1_000, size=int(rng.integers(0, 5_000)))
    bits = np.zeros((1_050 + 7) // 8, np.uint8)
    segments = split(values, rng.integers(0, values.size + 1, size=3).tolist())
    assert K.count_distinct(bits, segments, -50) == np.unique(values).size
    with pytest.raises(KernelError):
        K.count_distinct(np.zeros(1, np.uint8), [np.array([8], np.int64)], 0)


# ---------------------------------------------------------------------------
# the event generator
# ---------------------------------------------------------------------------


def test_generator_shape_and_rates() -> None:
    events = generate_events(50_000, seed=5)
    assert events.height == 50_000
    assert events.schema == pl.Schema({
        "user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64,
        "behavior": pl.String, "ts": pl.Datetime("us", "UTC"),
    })  # fmt: skip
    assert events.null_count().sum_horizontal().item() == 0
    assert events.equals(events.sort("user_id", "ts", maintain_order=True))
    shares = dict(events["behavior"].value_counts(normalize=True).iter_rows())
    assert 0.87 < shares["pv"] < 0.92 and 0.01 < shares["buy"] < 0.03
    assert shares["cart"] > shares["fav"] > shares["buy"]
    dates = events["ts"].dt.date()
    assert dates.min() == dt.date(2017, 11, 25) and dates.max() == dt.date(2017, 12, 3)
    result = churn_engine.funnel(events)
    assert 0.3 < result.repurchase_rate < 0.9  # type: ignore[operator]
    assert 0.3 < result.pay_rate < 0.9  # type: ignore[operator]
    uv = result.daily["uv"].to_numpy() / result.overall.item(0, "uv")
    assert ((uv > 0.5) & (uv < 0.95)).all()


def test_generator_is_deterministic_and_checks_arguments() -> None:
    a = generate_events(3_000, seed=1)
    assert a.equals(generate_events(3_000, seed=1))
    assert not a.equals(generate_events(3_000, seed=2))
    taobao = generate_events(3_000, seed=1, taobao_columns=True)
    assert taobao.columns == ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
    assert taobao["timestamp"].dtype == pl.Int64
    assert (taobao["timestamp"] * 1_000_000).to_list() == a["ts"].dt.epoch("us").to_list()
    assert generate_events(0).height == 0
    assert generate_events(100, users=500, days=1).height == 100
    for bad in (
        {"n_events": -1},
        {"n_events": 10, "users": 0},
        {"n_events": 10, "days": 0},
        {"n_events": 10, "days": 367},
        {"n_events": 10, "start": dt.datetime(2017, 1, 1)},
        {"n_events": True},
    ):
        with pytest.raises(ConfigError):
            generate_events(**bad)


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------


def test_cli_generate_events_then_funnel(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, daily, steps = tmp_path / "e.parquet", tmp_path / "daily.csv", tmp_path / "f.parquet"
    assert cli.main(["generate-events", "20000", "-o", str(events), "--seed", "3", "-q"]) == 0
    assert pl.read_parquet(events).height == 20_000
    assert cli.main(["funnel", str(events), "-o", str(daily), "--funnel-out", str(steps)]) == 0
    out = capsys.readouterr().out
    assert "behaviour funnel: 2017-11-25 .. 2017-12-03" in out and "fav/cart" in out
    expected = churn_engine.funnel(str(events))
    assert_frame_equal(pl.read_csv(daily, try_parse_dates=True), expected.daily,
                       check_dtypes=False)  # fmt: skip
    assert_frame_equal(pl.read_parquet(steps), expected.funnel)


def test_cli_headerless_taobao_csv(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "UserBehavior.csv"
    generate_events(5_000, seed=2, taobao_columns=True).write_csv(csv, include_header=False)
    argv = ["funnel", str(csv), "--csv-columns",
            "user_id,item_id,category_id,behavior_type,timestamp", "--behavior-col",
            "behavior_type", "--ts-col", "timestamp", "--ts-unit", "s", "--tz", "Asia/Shanghai",
            "--start", "2017-11-25", "--end", "2017-12-03", "-q"]  # fmt: skip
    assert cli.main(argv) == 0
    assert cli.main(argv[:-1]) == 0
    assert "outside the period" in capsys.readouterr().out


def test_cli_errors(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    hand_log().with_columns(pl.lit("click").alias("behavior")).write_csv(bad)
    assert cli.main(["funnel", str(bad), "-q"]) == 1
    err = capsys.readouterr().err
    assert "unknown behaviour" in err and "'click'" in err and "Traceback" not in err
    assert cli.main(["funnel", str(bad), "--start", "2017-12-01", "--end", "2017-11-01"]) == 2
    assert "after end" in capsys.readouterr().err
    assert cli.main(["funnel", str(tmp_path / "missing.csv")]) == 2
    assert cli.main(["funnel", str(bad), "--user-col", "behavior"]) == 2
    assert "must differ" in capsys.readouterr().err
    rejects = tmp_path / "rejects.csv"
    assert cli.main(["funnel", str(bad), "--rejects", str(rejects), "-q"]) == 0
    assert pl.read_csv(rejects).height == len(HAND_ROWS)
    assert cli.main(["generate-events", "0", "-o", str(tmp_path / "x.parquet")]) == 2


@pytest.mark.parametrize("command", ["funnel", "generate-events"])
def test_cli_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"churn-engine {command}" in out


def test_result_is_public() -> None:
    assert churn_engine.FunnelResult is FunnelResult
    assert {"funnel", "FunnelResult", "FunnelStats"} <= set(churn_engine.__all__)
