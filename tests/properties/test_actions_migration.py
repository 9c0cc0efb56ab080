"""Suggested actions and migration against plain Polars (docs/actions.md).

- The ``action``/``action_reason`` columns equal
  :func:`churn_engine._reference.reference_actions` (two joins and a
  priority comparison) on the same score, for random logs, options and
  random tables with small priorities (so ties are common); the other
  columns are those of a score without actions.
- :func:`churn_engine.migration` equals two :func:`churn_engine.score`
  calls joined and counted in plain Polars.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ActionTable, ScoreConfig
from churn_engine._reference import reference_actions
from churn_engine._schema import ACTION_COLUMNS

from .strategies import Case, Log, cases, configs, logs

STATES = ("active", "at_risk", "churned")


def _options(config: ScoreConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


@st.composite
def tables_for(draw: st.DrawFn, segments: list[str]) -> ActionTable:
    """A random table over ``segments`` with priorities 0..3 and keys a..d."""
    keys = st.sampled_from(["a", "b", "c", "d"])
    priorities = st.integers(0, 3)

    def action() -> dict[str, Any]:
        return {"key": draw(keys), "priority": draw(priorities)}

    return ActionTable.from_dict(
        {
            "status": {b: {s: action() for s in STATES} for b in ("one_time", "repeat")},
            "segment": {name: action() for name in segments},
        }
    )


# threads=1: thread counts are covered by test_invariance; here speed matters
@given(data=st.data(), case=cases(logs(max_customers=40, big_customer=False), threads=1))
def test_engine_actions_match_reference(data: st.DataObject, case: Case) -> None:
    segment_map = case.config.effective_segment_map()
    table = data.draw(tables_for([str(s) for s in segment_map or {}]), label="table")
    config = ScoreConfig(**{**_options(case.config), "actions": table})
    got = churn_engine.Scorer(config).run(case.log.frame, as_of=case.as_of).customers
    plain = churn_engine.Scorer(case.config).run(case.log.frame, as_of=case.as_of).customers
    assert got.drop(*ACTION_COLUMNS).equals(plain)
    expected = reference_actions(plain, table)
    assert got.select(*ACTION_COLUMNS).equals(expected.select(*ACTION_COLUMNS))


def _expected_migration(
    log: Log, config: ScoreConfig, start: dt.date, end: dt.date
) -> tuple[pl.DataFrame, dict[tuple[str, str], int]]:
    """Two scores, a left join from the later one, ``new`` for the missing."""
    keys = [config.customer_col] + ([config.category_col] if config.category_col else [])
    before = churn_engine.Scorer(config).run(log.frame, as_of=start).customers
    after = churn_engine.Scorer(config).run(log.frame, as_of=end).customers
    customers = after.select(*keys, status_to="status", segment_to="segment").join(
        before.select(*keys, status_from="status", segment_from="segment"),
        on=keys,
        how="left",
        maintain_order="left",
    )
    customers = customers.with_columns(
        pl.col("status_from").fill_null("new"), pl.col("segment_from").fill_null("new")
    )
    counts = customers.group_by("status_from", "status_to").len()
    cells = {(f, t): int(n) for f, t, n in counts.iter_rows()}
    return customers, cells


@given(data=st.data(), log=logs(max_customers=40, big_customer=False, ts_kinds=("date",)))
def test_migration_matches_two_scores(data: st.DataObject, log: Log) -> None:
    config = data.draw(configs(log, threads=1), label="config")
    span = (log.last_day - log.first_day).days
    start = log.first_day + dt.timedelta(days=data.draw(st.integers(-3, span + 1), label="from"))
    end = start + dt.timedelta(days=data.draw(st.integers(1, span + 5), label="gap"))
    moves = churn_engine.migration(log.frame, start, end, config=config)
    customers, cells = _expected_migration(log, config, start, end)

    order = [*customers.columns[:-4], "status_from", "status_to"]
    with_segments = config.effective_segment_map() is not None
    if with_segments:
        order += ["segment_from", "segment_to"]
        assert moves.segment is not None
        assert int(moves.segment["customers"].sum()) == customers.height
    else:
        assert moves.segment is None and moves.segment_matrix is None
    assert moves.customers.equals(customers.select(order))

    got = {(f, t): n for f, t, n in moves.status.select(
        "status_from", "status_to", "customers").iter_rows()}  # fmt: skip
    assert set(got) == {(f, t) for f in ("new", *STATES) for t in STATES}
    assert got == {cell: cells.get(cell, 0) for cell in got}
    assert moves.came_back == cells.get(("at_risk", "active"), 0) + cells.get(
        ("churned", "active"), 0
    )
    assert moves.to_stats.customers == moves.customers.height
    assert moves.from_stats.customers == sum(n for (f, _), n in got.items() if f != "new")
