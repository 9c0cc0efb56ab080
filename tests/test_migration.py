"""Status and segment migration between two dates (docs/actions.md): a hand-built
log with every cell of both matrices worked out by hand, the date checks,
sources, options and the printed summary. The comparison with two score()
calls on random logs is in properties/test_actions_migration.py."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import churn_engine
from churn_engine import ConfigError, Migration, RfmCuts, ScoreConfig, cli
from churn_engine.config import DEFAULT_SEGMENT_MAP

FROM = dt.date(2024, 3, 31)  # day 0
TO = dt.date(2024, 4, 30)  # day 30

#: customer -> purchase days relative to FROM (amount 10 each). prior_days=10,
#: so one-time buyers are at risk from recency 15; R/F/M use CUTS at both dates.
PURCHASES: dict[int, list[int]] = {
    1: [-10, 0, 25],
    2: [-30, 0],
    3: [-10, 0],
    4: [-25, -15, 28],
    5: [-50, -40, 29],
    6: [-25, -15],
    7: [-400],
    8: [20],
    9: [10],
    10: [-12],
    12: [-20],
}
CUTS = RfmCuts((-100, -30, -14, -3), (1, 2, 3, 4), (10, 20, 40, 80))
OPTIONS: dict[str, Any] = {"prior_days": 10.0, "cuts": CUTS}

#: customer -> (status_from, status_to, segment_from, segment_to), by hand:
#: cycle = (k * mean gap + 10) / (k + 1); R = 1 + #cuts below -recency,
#: F = n_orders (max 5), M = 1 + #cuts below 10 * n_orders.
HAND = {
    # from: cycle 10, rec 0, 522 | to: gaps 10, 25 -> cycle 15, rec 5 (0.33), 433
    1: ("active", "active", "Promising", "Potential Loyalist"),
    # from: cycle 20, rec 0, 522 | to: rec 30 = 1.5 cycles: at risk, 222
    2: ("active", "at_risk", "Promising", "Hibernating"),
    # from: cycle 10, rec 0, 522 | to: rec 30 = 3 cycles: churned, 222
    3: ("active", "churned", "Promising", "Hibernating"),
    # from: cycle 10, rec 15 = 1.5: at risk, 322 | to: gaps 10, 43 -> cycle 21, rec 2, 533
    4: ("at_risk", "active", "Hibernating", "Potential Loyalist"),
    # from: cycle 10, rec 40 = 4: churned, 222 | to: gaps 10, 69 -> cycle 29.7, rec 1, 533
    5: ("churned", "active", "Hibernating", "Potential Loyalist"),
    # from: at risk, 322 | to: rec 45 = 4.5 cycles: churned, 222
    6: ("at_risk", "churned", "Hibernating", "Hibernating"),
    # one-time, rec 400 and 430 >= 365: churned, 111 at both dates
    7: ("churned", "churned", "Lost", "Lost"),
    # first purchase after FROM | to: rec 10 < 15: active, 411
    8: ("new", "active", "new", "New Customers"),
    # first purchase after FROM | to: rec 20 >= 15: at risk, 311
    9: ("new", "at_risk", "new", "New Customers"),
    # one-time: rec 12 < 15: active, 411 | rec 42: at risk, 211
    10: ("active", "at_risk", "New Customers", "Hibernating"),
    # one-time: rec 20: at risk, 311 | rec 50: at risk, 211
    12: ("at_risk", "at_risk", "New Customers", "Hibernating"),
}

#: status_from -> (to active, to at_risk, to churned), counted from HAND
STATUS_MATRIX = {
    "new": (1, 1, 0),
    "active": (1, 2, 1),
    "at_risk": (1, 1, 1),
    "churned": (1, 0, 1),
}
#: the non-zero cells of the segment matrix, counted from HAND
SEGMENT_CELLS = {
    ("new", "New Customers"): 2,
    ("Promising", "Potential Loyalist"): 1,
    ("Promising", "Hibernating"): 2,
    ("Hibernating", "Potential Loyalist"): 2,
    ("Hibernating", "Hibernating"): 1,
    ("Lost", "Lost"): 1,
    ("New Customers", "Hibernating"): 2,
}


@pytest.fixture
def log() -> pl.DataFrame:
    rows = [(c, FROM + dt.timedelta(days=d), 10.0) for c, days in PURCHASES.items() for d in days]
    return pl.DataFrame(rows, schema=["customer_id", "ts", "amount"], orient="row")


@pytest.fixture
def moves(log: pl.DataFrame) -> Migration:
    return churn_engine.migration(log, FROM, TO, **OPTIONS)


def test_customers_by_hand(moves: Migration) -> None:
    assert moves.customers.columns == [
        "customer_id", "status_from", "status_to", "segment_from", "segment_to",
    ]  # fmt: skip
    assert moves.customers.rows() == [(c, *HAND[c]) for c in sorted(HAND)]
    assert (moves.from_as_of, moves.to_as_of) == (FROM, TO)
    assert (moves.from_stats.customers, moves.to_stats.customers) == (9, 11)


def test_status_matrix_by_hand(moves: Migration) -> None:
    long = moves.status
    assert long.columns == ["status_from", "status_to", "customers", "share"]
    assert long.height == 12  # every cell, zeros included
    expected = [
        (f, t, n, n / sum(row))
        for f, row in STATUS_MATRIX.items()
        for t, n in zip(("active", "at_risk", "churned"), row, strict=True)
    ]
    assert long.rows() == expected
    wide = moves.status_matrix
    assert wide.columns == ["status_from", "active", "at_risk", "churned", "total"]
    assert wide.rows() == [(f, *row, sum(row)) for f, row in STATUS_MATRIX.items()]


def test_segment_matrix_by_hand(moves: Migration) -> None:
    assert moves.segment is not None
    names = list(DEFAULT_SEGMENT_MAP)
    assert moves.segment.height == (1 + len(names)) * len(names)
    cells = {(f, t): n for f, t, n, _ in moves.segment.rows()}
    assert list(cells) == [(f, t) for f in ["new", *names] for t in names]
    assert cells == {cell: SEGMENT_CELLS.get(cell, 0) for cell in cells}
    # share of the from row: Promising has 3 customers, 2 went to Hibernating
    share = moves.segment.filter(
        (pl.col("segment_from") == "Promising") & (pl.col("segment_to") == "Hibernating")
    )["share"]
    assert share.to_list() == [2 / 3]
    # a from row with no customer has null shares
    champions = moves.segment.filter(pl.col("segment_from") == "Champions")
    assert champions["share"].null_count() == len(names)
    wide = moves.segment_matrix
    assert wide is not None
    assert wide.columns == ["segment_from", *names, "total"]
    totals = dict(zip(wide["segment_from"], wide["total"], strict=True))
    nonzero = {"new": 2, "Promising": 3, "Hibernating": 3, "Lost": 1, "New Customers": 2}
    assert totals == {n: nonzero.get(n, 0) for n in ["new", *names]}


def test_convenience_numbers(moves: Migration) -> None:
    assert moves.summary() == {
        "customers": 11,
        "new_customers": 2,
        "stayed_active": 1,
        "active_to_at_risk": 2,  # customers 2 and 10
        "active_to_churned": 1,  # customer 3
        "at_risk_to_churned": 1,  # customer 6
        "came_back": 2,  # customers 4 (at risk) and 5 (churned)
    }
    assert moves.count(["new", "active"], ["at_risk", "churned"]) == 4
    with pytest.raises(ConfigError, match="status_from must be one of"):
        moves.count("gone", "active")
    with pytest.raises(ConfigError, match="status_to must be one of"):
        moves.count("active", "new")


def test_str_is_readable(moves: Migration) -> None:
    text = str(moves)
    assert text.splitlines()[0] == "migration from 2024-03-31 to 2024-04-30: 11 customers (2 new)"
    assert "status from \\ to  active  at_risk  churned  total" in text
    assert "active                 1        2        1      4" in text
    assert "active -> at_risk" in text and "50.0 % of active" in text
    assert "came back (at_risk/churned -> active)" in text
    assert "largest segment moves" in text
    assert "  new -> New Customers" in text
    assert "Hibernating -> Hibernating" not in text  # staying put is not a move


def test_actions_at_the_second_date(log: pl.DataFrame) -> None:
    moves = churn_engine.migration(log, FROM, TO, actions=True, **OPTIONS)
    scores = churn_engine.score(log, as_of=TO, actions=True, **OPTIONS)
    assert moves.customers.columns[-1] == "action"
    assert moves.customers["action"].equals(scores["action"])
    # customer 2: repeat, active -> at risk: personal care (status rule)
    row = moves.customers.filter(pl.col("customer_id") == 2).row(0, named=True)
    assert row["action"] == "personal_care_member_benefits"


def test_dates_must_be_in_order(log: pl.DataFrame) -> None:
    for start, end in [
        (TO, FROM),
        (FROM, FROM),
        ("2024-03-31", "2024-03-31"),
        # a date means the end of that day: after noon of the same day
        (FROM, dt.datetime(2024, 3, 31, 12, 0)),
    ]:
        with pytest.raises(ConfigError, match="must be before to_as_of"):
            churn_engine.migration(log, start, end)
    # noon is before the end of the same day; aware and naive compare in tz
    churn_engine.migration(log, dt.datetime(2024, 3, 31, 12, 0), FROM)
    aware = dt.datetime(2024, 3, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    with pytest.raises(ConfigError, match="must be before"):  # 01:00 UTC on April 1
        churn_engine.migration(log, aware, dt.datetime(2024, 4, 1, 0, 30))
    with pytest.raises(ConfigError, match="needs both"):
        churn_engine.migration(log, None, TO)
    with pytest.raises(ConfigError, match="cannot parse"):
        churn_engine.migration(log, "March", TO)
    with pytest.raises(TypeError, match="either a ScoreConfig or keyword options"):
        churn_engine.migration(log, FROM, TO, config=ScoreConfig(), prior_days=3.0)


def test_sources_read_once_and_paths(log: pl.DataFrame, tmp_path: Any, moves: Migration) -> None:
    # a one-shot Arrow stream is read once and scored twice
    reader = pa.RecordBatchReader.from_batches(log.to_arrow().schema, log.to_arrow().to_batches())
    assert churn_engine.migration(reader, FROM, TO, **OPTIONS).customers.equals(moves.customers)
    path = tmp_path / "log.parquet"
    log.write_parquet(path)
    from_path = churn_engine.migration(str(path), FROM, TO, config=ScoreConfig(**OPTIONS))
    assert from_path.customers.equals(moves.customers)
    assert churn_engine.migration(log.to_pandas(), FROM, TO, **OPTIONS).status.equals(moves.status)


def test_everyone_new_and_nobody(log: pl.DataFrame) -> None:
    early = churn_engine.migration(log, dt.date(2020, 1, 1), TO, **OPTIONS)
    assert early.new_customers == early.customers.height == 11
    assert early.from_stats.customers == 0
    nobody = churn_engine.migration(log, dt.date(2020, 1, 1), dt.date(2020, 2, 1))
    assert nobody.customers.height == 0
    assert nobody.status["customers"].sum() == 0
    assert nobody.status["share"].null_count() == 12
    assert "0 customers (0 new)" in str(nobody)


def test_string_ids_categories_and_no_segments() -> None:
    log = pl.DataFrame(
        {
            "customer_id": ["b", "a", "a", "b"],
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 5), dt.date(2024, 3, 1),
                   dt.date(2024, 3, 2)],
            "amount": [1.0, 2.0, 3.0, 4.0],
            "category": ["x", "x", "y", "x"],
        }
    )  # fmt: skip
    moves = churn_engine.migration(log, "2024-01-31", "2024-03-31", category_col="category",
                                   rfm_bins=3, prior_days=20.0)  # fmt: skip
    assert moves.segment is None and moves.segment_matrix is None
    # one-time at risk from 1.5 * 20 = 30 days. (a, x): 01-05, rec 26: active; rec 86: at risk
    # (a, y): new, rec 30: at risk; (b, x): rec 30: at risk; then 03-02: cycle (61 + 20)/2,
    # rec 29: active
    assert moves.customers.rows() == [
        ("a", "x", "active", "at_risk"),
        ("a", "y", "new", "at_risk"),
        ("b", "x", "at_risk", "active"),
    ]
    assert moves.came_back == 1 and moves.active_to_at_risk == 1
    assert "largest segment moves" not in str(moves)


# -- command line -----------------------------------------------------------------


def test_cli_migration(
    tmp_path: pathlib.Path, log: pl.DataFrame, moves: Migration, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path, out = tmp_path / "log.csv", tmp_path / "moves.parquet"
    log.write_csv(log_path)
    argv = ["migration", str(log_path), "--from", "2024-03-31", "--to", "2024-04-30",
            "--prior-days", "10", "-o", str(out)]  # fmt: skip
    cuts = tmp_path / "cuts.json"
    cuts.write_text(json.dumps(CUTS.to_dict()), encoding="utf-8")
    assert cli.main([*argv, "--cuts-in", str(cuts)]) == 0
    captured = capsys.readouterr()
    assert str(moves) in captured.out
    assert f"wrote 11 rows to {out}" in captured.out
    for stage in ("from: read", "to: assemble", "migration", "write", "done"):
        assert stage in captured.err
    assert pl.read_parquet(out).equals(moves.customers)

    assert cli.main([*argv, "--cuts-in", str(cuts), "--actions", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert pl.read_parquet(out).columns[-1] == "action"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "2024-04-30", "--to", "2024-03-31"], "must be before to_as_of"),
        (["--from", "2024-04-30"], "the following arguments are required: --to"),
        (["--from", "April", "--to", "2024-03-31"], "not an ISO date or datetime"),
        (["--from", "2024-03-01", "--to", "2024-03-31", "--rfm-bins", "12"], "--rfm-bins"),
        (["--from", "2024-03-01", "--to", "2024-03-31", "-o", "x.xlsx"], "x.xlsx"),
    ],
)
def test_cli_migration_usage_errors(
    tmp_path: pathlib.Path,
    log: pl.DataFrame,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_path = tmp_path / "log.parquet"
    log.write_parquet(log_path)
    assert cli.main(["migration", str(log_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_migration_missing_input_and_help(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none.parquet")
    assert cli.main(["migration", missing, "--from", "2024-01-01", "--to", "2024-02-01"]) == 2
    assert "input file not found" in capsys.readouterr().err
    assert cli.main(["migration", "--help"]) == 0
    out = capsys.readouterr().out
    options = "--from DATE, --to DATE, --output, --actions, --category-col, --at-risk-cycles"
    for option in [*options.split(", "), "--cuts-in", "--on-error", "--threads", "examples:"]:
        assert option in out, option
    assert cli.main(["--help"]) == 0
    assert "migration" in capsys.readouterr().out
