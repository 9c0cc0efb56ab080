"""pytest-benchmark suite: the compiled stages of churn-engine, one by one.

The inputs of every stage are prepared once per module by the engine
itself: one ``Scorer().run`` on a generated log of ``CHURN_BENCH_CUSTOMERS``
customers (default 200_000, int64 ids; short string ids for the string
keys, ids longer than 16 bytes for ``encode_strings``) with the kernel
functions wrapped so
that each call's arguments are recorded (copied before the call). Each
benchmark then replays one stage's recorded calls, so it times exactly what
``Scorer.run`` asks of the kernel. A stage that ``Scorer.run`` no longer
calls fails the benchmark, so the list below stays true.

There are no timing assertions; with ``--benchmark-disable`` every
benchmark runs once, as a smoke test::

    PYTHONPATH=src python -m pytest benches/test_bench_kernel.py
    CHURN_BENCH_CUSTOMERS=2000 python -m pytest benches --benchmark-disable

Stages that may sort their input in place (``group_statistics``) get a
fresh copy of their arguments per round, outside the timed call.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

import churn_engine
from churn_engine import _kernel
from churn_engine._generate import generate_log

CUSTOMERS = int(os.environ.get("CHURN_BENCH_CUSTOMERS", "200000"))
ROUNDS = 5
STAGES = (
    "group_rows",
    "group_statistics",
    "category_priors",
    "cycle_status",
    "quantile_cuts",
    "rfm_scores",
)
IN_PLACE = {"group_statistics"}
WRITES_OUT = {"string_keys"}  # returns nothing: writes its out_keys argument
# recorded on a log with short string ids (int64 keys) and on one with long ids (ranked)
STRING_STAGES = ("string_key_plan", "string_keys", "string_keys_decode")
LONG_STRING_STAGES = ("encode_strings",)
LONG_ID_PREFIX = "customer-with-a-long-id-"

Call = tuple[tuple[Any, ...], dict[str, Any]]


class Recorded:
    """The kernel calls of one ``Scorer().run``, by stage."""

    def __init__(
        self,
        customers: int,
        stages: tuple[str, ...] = STAGES,
        string_ids: bool = False,
        id_prefix: str = "",
    ) -> None:
        log = generate_log(customers, seed=7, string_ids=string_ids)
        if id_prefix:
            log = log.with_columns(customer_id=id_prefix + pl.col("customer_id"))
        self.rows = log.height
        self.calls: dict[str, list[Call]] = {name: [] for name in stages}
        originals: dict[str, Callable[..., Any]] = {}
        for name in stages:
            func = getattr(_kernel, name, None)
            if func is None:
                continue
            originals[name] = func
            setattr(_kernel, name, self._recorder(name, func))
        try:
            result = churn_engine.Scorer().run(log)
        finally:
            for name, func in originals.items():
                setattr(_kernel, name, func)
        self.groups = result.customers.height
        self.functions = originals

    def _recorder(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls[name].append((copy.deepcopy(args), copy.deepcopy(kwargs)))
            return func(*args, **kwargs)

        return record

    def replay(self, name: str) -> Callable[[], list[Any]]:
        func = self.functions[name]
        calls = self.calls[name]

        def run() -> list[Any]:
            return [func(*args, **kwargs) for args, kwargs in calls]

        return run

    def replay_fresh(self, name: str) -> Callable[[list[Call]], list[Any]]:
        func = self.functions[name]

        def run(calls: list[Call]) -> list[Any]:
            return [func(*args, **kwargs) for args, kwargs in calls]

        return run


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    return Recorded(CUSTOMERS)


@pytest.fixture(scope="module")
def recorded_strings() -> Recorded:
    return Recorded(CUSTOMERS, STRING_STAGES, string_ids=True)


@pytest.fixture(scope="module")
def recorded_long_strings() -> Recorded:
    return Recorded(CUSTOMERS, LONG_STRING_STAGES, string_ids=True, id_prefix=LONG_ID_PREFIX)


@pytest.mark.parametrize("stage", STAGES)
def test_stage(benchmark: Any, recorded: Recorded, stage: str) -> None:
    if stage not in recorded.functions or not recorded.calls[stage]:
        pytest.fail(f"Scorer.run does not call the kernel's {stage}: update STAGES")
    benchmark.extra_info["customers"] = CUSTOMERS
    benchmark.extra_info["rows"] = recorded.rows
    benchmark.extra_info["groups"] = recorded.groups
    benchmark.extra_info["calls"] = len(recorded.calls[stage])
    if stage in IN_PLACE:
        calls = recorded.calls[stage]
        results = benchmark.pedantic(
            recorded.replay_fresh(stage),
            setup=lambda: ((copy.deepcopy(calls),), {}),
            rounds=ROUNDS,
        )
    else:
        results = benchmark(recorded.replay(stage))
    assert len(results) == len(recorded.calls[stage])
    assert stage in WRITES_OUT or all(r is not None for r in results)


@pytest.mark.parametrize("stage", STRING_STAGES)
def test_string_stage(benchmark: Any, recorded_strings: Recorded, stage: str) -> None:
    test_stage(benchmark, recorded_strings, stage)


@pytest.mark.parametrize("stage", LONG_STRING_STAGES)
def test_long_string_stage(benchmark: Any, recorded_long_strings: Recorded, stage: str) -> None:
    test_stage(benchmark, recorded_long_strings, stage)
