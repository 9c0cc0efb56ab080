"""pytest-benchmark suite: ``Scorer().run`` end to end.

On a generated log of ``CHURN_BENCH_CUSTOMERS`` customers (default
200_000), with int64 and with string customer ids, from an in-memory Polars
DataFrame and from a Parquet file (written once per module). There are no
timing assertions; with ``--benchmark-disable`` every benchmark runs once,
as a smoke test::

    PYTHONPATH=src python -m pytest benches/test_bench_end_to_end.py
    CHURN_BENCH_CUSTOMERS=2000 python -m pytest benches --benchmark-disable

For the comparison with DuckDB and Polars see ``benches/peers.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import churn_engine
from churn_engine._generate import generate_log

CUSTOMERS = int(os.environ.get("CHURN_BENCH_CUSTOMERS", "200000"))
ROUNDS = 3


@pytest.fixture(scope="module", params=["int", "string"], ids=["int_ids", "string_ids"])
def log(request: pytest.FixtureRequest) -> pl.DataFrame:
    return generate_log(CUSTOMERS, seed=3, string_ids=request.param == "string")


@pytest.fixture(scope="module")
def parquet_path(log: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = "string" if log.schema["customer_id"] == pl.String else "int"
    path = tmp_path_factory.mktemp("bench") / f"log_{CUSTOMERS}_{kind}.parquet"
    log.write_parquet(path)
    return path


def _check(result: churn_engine.ScoreResult, log: pl.DataFrame) -> None:
    stats = result.stats
    assert stats.rows_read == log.height
    assert stats.reconciles()
    assert stats.customers + stats.customers_without_purchase == CUSTOMERS
    assert result.customers.get_column("customer_id").is_sorted()


def _run(benchmark: Any, data: Any, log: pl.DataFrame) -> None:
    benchmark.extra_info["customers"] = CUSTOMERS
    benchmark.extra_info["rows"] = log.height
    scorer = churn_engine.Scorer()
    result = benchmark.pedantic(scorer.run, args=(data,), rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info["timings"] = result.stats.timings
    _check(result, log)


def test_run_polars_frame(benchmark: Any, log: pl.DataFrame) -> None:
    _run(benchmark, log, log)


def test_run_parquet_path(benchmark: Any, log: pl.DataFrame, parquet_path: Path) -> None:
    _run(benchmark, str(parquet_path), log)
