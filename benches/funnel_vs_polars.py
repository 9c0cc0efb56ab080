#!/usr/bin/env python
"""The behaviour funnel (``churn_engine.funnel``) against the same numbers in
plain Polars (``churn_engine._funnel_reference.reference_funnel``).

Generates a synthetic event log with ``churn_engine._generate_events`` (cached
as Parquet in ``benches/.data/``), then times, best of ``--repeat``:

==================  ======================================================
contender           what is timed
==================  ======================================================
engine_parquet      ``funnel(path)``: read, validate, count, tables
engine_memory       ``funnel(frame)`` on the loaded polars DataFrame
polars_parquet      day cut + ``reference_funnel`` over ``scan_parquet``
polars_memory       the same over the loaded DataFrame
==================  ======================================================

The engine runs with ``item_col=None, category_col=None`` (the reference does
not count items); ``--items`` adds a run with the distinct item and category
counts. Every result is checked equal to the engine's. One process, so the
numbers are indicative; peak memory is not measured.

Usage::

    PYTHONPATH=src python benches/funnel_vs_polars.py --events 10000000 --repeat 2
"""

from __future__ import annotations

import argparse
import pathlib
import time
from collections.abc import Callable
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

import churn_engine
from churn_engine._funnel_reference import reference_funnel
from churn_engine._generate_events import generate_events

DATA = pathlib.Path(__file__).parent / ".data"


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def polars_funnel(source: pl.DataFrame | pl.LazyFrame) -> Any:
    lf = source.lazy().with_columns(date=pl.col("ts").dt.convert_time_zone("UTC").dt.date())
    return reference_funnel(lf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--items", action="store_true", help="also time the item counts")
    args = parser.parse_args()

    DATA.mkdir(exist_ok=True)
    path = DATA / f"events_{args.events}_{args.seed}.parquet"
    if not path.exists():
        start = time.perf_counter()
        generate_events(args.events, seed=args.seed).write_parquet(path)
        print(f"generated {args.events:,} events in {time.perf_counter() - start:.1f} s")
    frame = pl.read_parquet(path)
    no_items = {"item_col": None, "category_col": None}

    timings: dict[str, float] = {}
    timings["engine_parquet"], engine = best_of(
        args.repeat, lambda: churn_engine.funnel(str(path), **no_items)
    )
    timings["engine_memory"], _ = best_of(
        args.repeat, lambda: churn_engine.funnel(frame, **no_items)
    )
    if args.items:
        timings["engine_memory_items"], _ = best_of(args.repeat, lambda: churn_engine.funnel(frame))
    timings["polars_parquet"], reference = best_of(
        args.repeat, lambda: polars_funnel(pl.scan_parquet(path))
    )
    timings["polars_memory"], _ = best_of(args.repeat, lambda: polars_funnel(frame))

    daily, overall, steps = reference
    assert_frame_equal(engine.daily, daily)
    columns = engine.overall.drop("items", "categories").columns
    assert_frame_equal(engine.overall.select(columns), overall.select(columns))
    assert_frame_equal(engine.funnel, steps)

    print(f"{args.events:,} events, {engine.stats.users:,} users, {engine.stats.days} days")
    print(f"engine stages (last run): {engine.stats.timings}")
    for name, seconds in timings.items():
        print(f"{name:<22}{seconds:8.2f} s")
    print("results equal")


if __name__ == "__main__":
    main()
