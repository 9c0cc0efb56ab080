"""The compiled engine against the plain-Polars oracle (``churn_engine._reference``).

For every generated log, options and ``as_of``, ``Scorer(config).run`` must
give the table of ``reference_score``: the same keys in the same order, equal
integer, date and string columns, float columns within 1e-9 (relative, with
an absolute floor of 1e-9), the same cut points and the same run counts.

Allowed differences (DESIGN.md section 4: float64 money sums and medians may
differ in the last bit with summation order):

- ``m_score`` (and so ``rfm_code``, ``segment``) only for customers whose
  ``monetary_total`` lies within 1e-9 (relative; absolute 1e-9 near zero) of
  an M cut point;
- ``status``/``status_reason`` only when ``cycles_since_last`` is within
  1e-12 of a threshold (``at_risk_cycles`` or ``churn_cycles``);
- ``expected_next_purchase`` by one day only when ``cycle_days + 0.5`` is
  within 1e-9 of a whole number: the prior is a median of means, and the
  oracle's Polars median (``lo + (hi - lo) / 2``) and the kernel's
  ``(lo + hi) / 2`` differ in the last bit for about one pair in five, which
  moves a cycle of exactly ``x.5`` days across the rounding point.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ScoreConfig, ScoreResult
from churn_engine._reference import ReferenceResult, reference_score

from .strategies import Case, as_ofs, cases, logs, small_logs

REL = 1e-9
ABS = 1e-9
STATUS_TOL = 1e-12
FLOAT_COLUMNS = (
    "monetary_mean", "interval_mean_days", "interval_std_days", "interval_median_days",
    "cycle_days", "cycles_since_last", "days_overdue",
)  # fmt: skip
M_DERIVED = ("m_score", "rfm_code", "segment")
STATUS_COLUMNS = ("status", "status_reason")


def run_engine(case: Case) -> ScoreResult:
    return churn_engine.Scorer(case.config).run(case.log.frame, as_of=case.as_of)


def run_reference(case: Case) -> ReferenceResult:
    return reference_score(case.log.frame, case.config, case.as_of)


# ---------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------


def _floats(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy()


def _near(values: np.ndarray, points: list[float], rel: float, abs_: float) -> np.ndarray:
    """values[i] within rel (or abs_) of any of the points; NaN is near nothing."""
    if not points or values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    v = values[:, None]
    p = np.asarray(points, dtype=np.float64)[None, :]
    bound = np.maximum(abs_, rel * np.maximum(np.abs(v), np.abs(p)))
    return (np.abs(v - p) <= bound).any(axis=1)


def _near_half(cycle: np.ndarray) -> np.ndarray:
    shifted = cycle + 0.5
    with np.errstate(invalid="ignore"):
        return np.abs(shifted - np.round(shifted)) <= REL * np.maximum(1.0, np.abs(shifted))


def _show(frame: pl.DataFrame, rows: np.ndarray, columns: list[str]) -> str:
    picked = frame[rows[:10].tolist()].select(columns)
    with pl.Config(tbl_cols=-1, tbl_rows=20, fmt_str_lengths=30):
        return str(picked)


def assert_matches_reference(
    result: ScoreResult, ref: ReferenceResult, config: ScoreConfig, frame: pl.DataFrame
) -> None:
    """Engine result == oracle result, up to the documented tolerances."""
    got, exp = result.customers, ref.customers
    assert got.schema == exp.schema, f"schema\n{got.schema}\n!=\n{exp.schema}"
    assert got.height == exp.height, f"{got.height} rows, reference has {exp.height}"

    # -- run counts ---------------------------------------------------------
    stats = result.stats
    assert stats.rows_read == frame.height
    assert stats.rows_rejected == 0
    assert stats.reconciles()
    assert stats.customers == got.height
    assert stats.rows_after_as_of == ref.rows_after_as_of
    assert stats.customers_without_purchase == ref.customers_without_purchase
    assert stats.as_of_day == ref.as_of_day

    keys = [config.customer_col] + ([config.category_col] if config.category_col else [])
    for key in keys:
        assert got[key].equals(exp[key]), f"{key} differs:\n{got[key]}\n{exp[key]}"

    # -- cut points ---------------------------------------------------------
    if exp.height == 0:
        assert result.cuts is None and ref.cuts is None
        return
    assert result.cuts is not None and ref.cuts is not None
    if config.cuts is not None:
        assert result.cuts == config.cuts
    assert result.cuts.recency == ref.cuts.recency
    assert result.cuts.frequency == ref.cuts.frequency
    assert len(result.cuts.monetary) == len(ref.cuts.monetary)
    m_got, m_exp = np.array(result.cuts.monetary), np.array(ref.cuts.monetary)
    assert np.all(np.abs(m_got - m_exp) <= np.maximum(ABS, REL * np.abs(m_exp))), (
        f"M cuts {result.cuts.monetary} != {ref.cuts.monetary}"
    )

    # -- the excuses ----------------------------------------------------------
    m_cuts = [*result.cuts.monetary, *ref.cuts.monetary]
    money_got, money_exp = _floats(got["monetary_total"]), _floats(exp["monetary_total"])
    m_excused = _near(money_got, m_cuts, REL, ABS) | _near(money_exp, m_cuts, REL, ABS)
    thresholds = [config.at_risk_cycles, config.churn_cycles]
    since_got, since_exp = _floats(got["cycles_since_last"]), _floats(exp["cycles_since_last"])
    status_excused = _near(since_got, thresholds, STATUS_TOL, STATUS_TOL) | _near(
        since_exp, thresholds, STATUS_TOL, STATUS_TOL
    )
    next_excused = _near_half(_floats(got["cycle_days"])) | _near_half(_floats(exp["cycle_days"]))

    # -- column by column -------------------------------------------------------
    problems: list[str] = []
    for name in got.columns:
        a, b = got[name], exp[name]
        if name in FLOAT_COLUMNS or a.dtype == pl.Float64:
            x, y = _floats(a), _floats(b)
            null_x, null_y = a.is_null().to_numpy(), b.is_null().to_numpy()
            with np.errstate(invalid="ignore"):
                close = np.abs(x - y) <= np.maximum(ABS, REL * np.maximum(np.abs(x), np.abs(y)))
            bad = (null_x != null_y) | (~null_x & ~null_y & ~close)
        else:
            bad = a.ne_missing(b).to_numpy()
            if name in M_DERIVED:
                bad &= ~m_excused
            elif name in STATUS_COLUMNS:
                bad &= ~status_excused
            elif name == "expected_next_purchase":
                one_day = (a.cast(pl.Int32) - b.cast(pl.Int32)).abs().fill_null(0).to_numpy()
                bad &= ~(next_excused & (one_day == 1))
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(
                f"column {name!r}: {len(rows)} rows differ; engine:\n"
                f"{_show(got, rows, [*keys, name])}\nreference:\n{_show(exp, rows, [*keys, name])}"
            )
    assert not problems, "\n".join(problems)

    # where an M score may differ, the engine must still be self-consistent
    codes = pl.format("{}{}{}", "r_score", "f_score", "m_score")
    assert got.select((pl.col("rfm_code") == codes).all()).item()


def check(case: Case) -> ScoreResult:
    result = run_engine(case)
    assert_matches_reference(result, run_reference(case), case.config, case.log.frame)
    return result


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------


@given(cases())
def test_engine_matches_reference(case: Case) -> None:
    check(case)


@given(cases(small_logs()))
def test_engine_matches_reference_on_small_logs(case: Case) -> None:
    check(case)


@given(cases(logs(max_customers=30, category=True)))
def test_engine_matches_reference_per_category(case: Case) -> None:
    check(case)


@given(st.data())
def test_reused_cuts_score_like_the_reference(data: st.DataObject) -> None:
    first = data.draw(cases(logs(max_customers=60)), label="first")
    cuts = run_engine(first).cuts
    assume(cuts is not None)
    second_log = data.draw(logs(max_customers=60, category=first.log.category), label="second")
    config = dataclasses.replace(first.config, cuts=cuts)
    second = Case(second_log, config, data.draw(as_ofs(second_log, config.tz), label="as_of"))
    result = check(second)
    if result.customers.height:
        assert result.cuts == cuts


@given(cases(logs(max_customers=60)))
def test_reusing_own_cuts_changes_nothing(case: Case) -> None:
    result = run_engine(case)
    assume(result.cuts is not None)
    again = dataclasses.replace(case, config=dataclasses.replace(case.config, cuts=result.cuts))
    rerun = run_engine(again)
    assert rerun.customers.equals(result.customers)
    assert rerun.cuts == result.cuts


def _sort_key(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


@given(cases(logs(max_customers=80)))
def test_output_is_in_key_order(case: Case) -> None:
    """Ascending customer_id (strings by UTF-8 bytes), then category; keys unique."""
    out = run_engine(case).customers
    keys = [case.config.customer_col]
    if case.config.category_col:
        keys.append(case.config.category_col)
    rows = [tuple(_sort_key(v) for v in row) for row in out.select(keys).iter_rows()]
    assert all(a < b for a, b in itertools.pairwise(rows)), rows


# ---------------------------------------------------------------------------
# regressions: engine bugs these suites found (fixed in 4578351), and edge cases
# ---------------------------------------------------------------------------

UTC = dt.timezone.utc


def test_tz_aware_rows_in_a_dst_fold_are_compared_as_instants() -> None:
    """Rows with ``ts <= as_of`` are used (DESIGN.md section 4), as instants.

    In Europe/Berlin 2024-10-27 02:00-03:00 happens twice. 00:30 UTC is
    02:30 CEST, before ``as_of`` = 01:00 UTC (02:00 CET); comparing local
    wall clocks (02:30 > 02:00) dropped the row as "after as_of".
    """
    df = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [
                dt.datetime(2024, 10, 20, 12, tzinfo=UTC),
                dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
                dt.datetime(2024, 10, 20, 12, tzinfo=UTC),
            ],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    config = ScoreConfig(tz="Europe/Berlin")
    as_of = dt.datetime(2024, 10, 27, 1, 0, tzinfo=UTC)
    result = churn_engine.Scorer(config).run(df, as_of=as_of)
    assert result.stats.rows_after_as_of == 0
    assert result.customers.filter(pl.col("customer_id") == 1)["n_orders"].item() == 2
    assert_matches_reference(result, reference_score(df, config, as_of), config, df)


def test_nanosecond_rows_just_after_a_datetime_as_of_are_not_used() -> None:
    """``as_of`` as a datetime keeps rows with ``ts <= as_of`` (DESIGN.md section 4).

    With a ``Datetime("ns")`` column, Polars compares the column with a Python
    datetime literal at microsecond precision (it truncates the column), so
    00:00:00.000000503 was taken as not after ``as_of`` = 00:00:00.
    """
    ts = pl.Series([1_704_067_200_000_000_503, 1_704_024_000_000_000_000]).cast(
        pl.Datetime("ns")
    )  # 2024-01-01 00:00:00.000000503 and 2023-12-31 12:00
    df = pl.DataFrame({"customer_id": [1, 2], "ts": ts, "amount": [5.0, 7.0]})
    config = ScoreConfig()
    as_of = dt.datetime(2024, 1, 1)
    result = churn_engine.Scorer(config).run(df, as_of=as_of)
    assert result.stats.rows_after_as_of == 1
    assert result.customers["customer_id"].to_list() == [2]
    assert_matches_reference(result, reference_score(df, config, as_of), config, df)


def test_dictionary_encoded_ids_keep_their_type() -> None:
    """DESIGN.md section 3: string ids may be dictionary-encoded; the output
    keeps the original values *and type* (the engine returned String)."""
    df = pl.DataFrame(
        {
            "customer_id": pl.Series(["b", "a", "b"], dtype=pl.Categorical),
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 5)],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    out = churn_engine.score(df)
    assert out["customer_id"].cast(pl.String).to_list() == ["a", "b"]
    assert isinstance(out.schema["customer_id"], pl.Categorical), out.schema["customer_id"]


def test_a_cycle_of_exactly_half_a_day_rounds_up() -> None:
    """``expected_next_purchase = last_purchase + floor(cycle_days + 0.5)``.

    Interval means 75/7 and 16/7 have the median 6.5 exactly: the one-time
    buyer's cycle is the prior, 6.5 days, which rounds up to 7. The oracle's
    Polars median gives 6.499999999999999 and so one day less; the comparison
    excuses exactly this (see the module docstring).
    """
    first = np.cumsum([0] + [10] * 6 + [15]).tolist()  # gaps sum 75 over 7
    second = np.cumsum([0] + [2] * 5 + [3, 3]).tolist()  # gaps sum 16 over 7
    days = [*first, *second, 70]
    df = pl.DataFrame(
        {
            "customer_id": [1] * 8 + [2] * 8 + [3],
            "ts": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
            "amount": [1.0] * 17,
        }
    )
    config = ScoreConfig()
    result = churn_engine.Scorer(config).run(df)
    one_time = result.customers.row(2, named=True)
    assert one_time["cycle_days"] == 6.5
    assert one_time["expected_next_purchase"] == dt.date(1970, 1, 1) + dt.timedelta(days=77)
    assert_matches_reference(result, reference_score(df, config), config, df)


@pytest.mark.parametrize("category", [False, True])
@pytest.mark.parametrize("as_of", [None, dt.date(2024, 1, 1)])
def test_empty_log_matches_reference(category: bool, as_of: dt.date | None) -> None:
    columns: dict[str, Any] = {"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64}
    if category:
        columns["category"] = pl.String
    df = pl.DataFrame(schema=columns)
    config = ScoreConfig(category_col="category" if category else None)
    result = churn_engine.Scorer(config).run(df, as_of=as_of)
    assert_matches_reference(result, reference_score(df, config, as_of), config, df)


@pytest.mark.parametrize("threads", [1, 2])
def test_big_single_customer_matches_reference(threads: int) -> None:
    """One customer with many rows and heavy same-day ties (deterministic)."""
    rng = np.random.default_rng(7)
    n = 5_000
    df = pl.DataFrame(
        {
            "customer_id": np.r_[np.zeros(n, dtype=np.int64), np.arange(1, 50)],
            "ts": pl.Series(rng.integers(19_000, 19_040, n + 49), dtype=pl.Int32).cast(pl.Date),
            "amount": np.round(rng.normal(20, 40, n + 49), 2),
        }
    )
    config = ScoreConfig(threads=threads)
    result = churn_engine.Scorer(config).run(df)
    assert_matches_reference(result, reference_score(df, config), config, df)


@pytest.mark.parametrize(
    "ids",
    [
        [-(2**63), 2**63 - 1],  # the whole int64 range
        [-1, 2**63 - 1],  # a key range of exactly 2**63
        [0, 2**64 - 1],  # UInt64 (e.g. hashed ids) over the whole range
    ],
    ids=["int64-extremes", "range-2**63", "uint64-extremes"],
)
def test_ids_spanning_half_the_key_space_do_not_crash(ids: list[int]) -> None:
    """Ids whose range is >= 2**63 (random 64-bit ids, hashes) must score.

    Run in a subprocess, so a crash fails this test instead of the session:
    a version of the kernel's group_rows shifted a uint64 by 64 bits
    (undefined in C) for such key ranges and corrupted memory.
    """
    code = textwrap.dedent(
        f"""
        import datetime as dt, polars as pl, churn_engine
        ids = pl.Series({ids!r}, dtype=pl.UInt64 if max({ids!r}) >= 2**63 else pl.Int64)
        df = pl.DataFrame({{"customer_id": ids, "ts": [dt.date(2024, 1, 1)] * len(ids),
                           "amount": [1.0] * len(ids)}})
        print(churn_engine.score(df)["customer_id"].to_list())
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip().splitlines()[-1] == repr(sorted(ids))
