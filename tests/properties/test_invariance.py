"""Results that must not change, exactly (floats included), when only the way
the data arrives changes: row order, chunking, slicing, the container (polars,
pyarrow, pandas, Arrow streams), int vs string ids, and the thread count.

Exact equality is part of the contract (DESIGN.md section 4): each
customer's amounts are summed in a fixed order, so reruns are identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ScoreConfig, ScoreResult

from .strategies import Case, cases, logs

AsOf = dt.date | dt.datetime | None


def run(data: Any, config: ScoreConfig, as_of: AsOf = None) -> ScoreResult:
    return churn_engine.Scorer(config).run(data, as_of=as_of)


def _stats(result: ScoreResult) -> dict[str, Any]:
    stats = dataclasses.asdict(result.stats)
    del stats["timings"]
    return stats


def assert_identical(got: ScoreResult, expected: ScoreResult, *, stats: bool = True) -> None:
    """Same table (schema, order, every value bit for bit), cut points and counts."""
    a, b = got.customers, expected.customers
    assert a.schema == b.schema, f"{a.schema}\n!=\n{b.schema}"
    if not a.equals(b):
        assert a.height == b.height, f"{a.height} rows != {b.height} rows"
        for name in a.columns:
            differ = ~(a[name].eq_missing(b[name]))
            if a[name].dtype == pl.Float64:  # NaN never appears: nulls stand for missing
                differ = differ & ~(a[name].is_nan() & b[name].is_nan())
            if differ.any():
                rows = differ.arg_true()[:5].to_list()
                raise AssertionError(
                    f"column {name!r} differs at rows {rows}: "
                    f"{a[name].gather(rows).to_list()} != {b[name].gather(rows).to_list()}"
                )
        raise AssertionError("frames differ")
    assert got.cuts == expected.cuts
    if stats:
        assert _stats(got) == _stats(expected)


class ArrowStream:
    """A minimal third-party object that only exposes ``__arrow_c_stream__``."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


def one_row_chunks(frame: pl.DataFrame) -> pl.DataFrame:
    """1-row slices concatenated without rechunking (Polars may still merge some
    of them: it appends tiny chunks of some types in place)."""
    return pl.concat([frame[i : i + 1] for i in range(frame.height)], rechunk=False)


def one_row_batches(frame: pl.DataFrame) -> pa.Table:
    table = frame.to_arrow()
    batches = table.to_batches(max_chunksize=1)
    return pa.Table.from_batches(batches, schema=table.schema)


small_cases = cases(logs(max_customers=25, big_customer=False))


# ---------------------------------------------------------------------------
# row order
# ---------------------------------------------------------------------------


@given(cases(), st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(case: Case, seed: int) -> None:
    frame = case.log.frame
    expected = run(frame, case.config, case.as_of)
    order = np.random.default_rng(seed).permutation(frame.height).tolist()
    assert_identical(run(frame[order], case.config, case.as_of), expected)


# ---------------------------------------------------------------------------
# chunks and slices
# ---------------------------------------------------------------------------


@given(small_cases)
def test_one_row_chunks_score_like_one_chunk(case: Case) -> None:
    frame = case.log.frame.rechunk()
    expected = run(frame, case.config, case.as_of)
    assert_identical(run(one_row_chunks(frame), case.config, case.as_of), expected)
    assert_identical(run(one_row_batches(frame), case.config, case.as_of), expected)


@given(cases(logs(max_customers=40)), st.integers(0, 2**32 - 1))
def test_random_chunk_boundaries(case: Case, seed: int) -> None:
    frame = case.log.frame
    expected = run(frame, case.config, case.as_of)
    rng = np.random.default_rng(seed)
    cuts = np.unique(rng.integers(0, frame.height + 1, size=rng.integers(1, 20)))
    bounds = [0, *cuts.tolist(), frame.height]
    pieces = [frame[a:b] for a, b in itertools.pairwise(bounds)]
    assert_identical(run(pl.concat(pieces, rechunk=False), case.config, case.as_of), expected)
    table = frame.to_arrow()
    batches = [b for piece in pieces for b in piece.to_arrow().to_batches()]
    assert_identical(run(pa.Table.from_batches(batches, table.schema), case.config, case.as_of),
                     expected)  # fmt: skip


def _junk_rows(log_frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """n rows of the log's schema, each with one null (or NaN) in a used column."""
    template = log_frame.sample(n, with_replacement=True, seed=int(rng.integers(0, 2**31)))
    columns = template.columns
    float_amounts = template.schema["amount"].is_float()
    which = pl.Series("__which", rng.integers(0, len(columns) + float_amounts, size=n))
    out = template.with_columns(which)
    out = out.with_columns(
        pl.when(pl.col("__which") == k).then(None).otherwise(pl.col(name)).alias(name)
        for k, name in enumerate(columns)
    )
    if float_amounts:
        nan = pl.lit(float("nan"), dtype=template.schema["amount"])
        out = out.with_columns(
            pl.when(pl.col("__which") == len(columns))
            .then(nan)
            .otherwise(pl.col("amount"))
            .alias("amount")
        )
    return out.drop("__which")


@given(small_cases, st.integers(1, 30), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_sliced_arrow_arrays_and_quarantined_nulls(
    case: Case, head: int, tail: int, seed: int
) -> None:
    """A pyarrow table sliced out of a bigger one (non-zero offsets; nulls and
    NaN in the region the slice drops) scores like the clean table; scoring
    the whole table with quarantine gives the same customers."""
    frame = case.log.frame
    rng = np.random.default_rng(seed)
    expected = run(frame, case.config, case.as_of)
    junk_head, junk_tail = _junk_rows(frame, head, rng), _junk_rows(frame, tail, rng)
    full = pl.concat([junk_head, frame, junk_tail]).to_arrow().combine_chunks()
    assert full.column("customer_id").num_chunks == 1
    sliced = full.slice(head, frame.height)
    assert sliced.column("customer_id").chunk(0).offset == head
    assert_identical(run(sliced, case.config, case.as_of), expected)

    config = dataclasses.replace(case.config, on_error="quarantine")
    quarantined = run(full, config, case.as_of)
    assert_identical(quarantined, expected, stats=False)
    assert quarantined.rejects is not None
    assert quarantined.rejects.height == head + tail
    assert quarantined.rejects["row"].to_list() == [
        *range(head), *range(head + frame.height, head + frame.height + tail)
    ]  # fmt: skip
    stats = quarantined.stats
    assert stats.rows_read == full.num_rows
    assert stats.rows_rejected == head + tail
    assert stats.rows_after_as_of == expected.stats.rows_after_as_of
    assert stats.customers_without_purchase == expected.stats.customers_without_purchase
    assert stats.reconciles()


# ---------------------------------------------------------------------------
# int vs string ids
# ---------------------------------------------------------------------------


def _as_padded_strings(ids: pl.Series) -> tuple[pl.Series, dict[Any, str]]:
    """Zero-padded strings that sort like the ints (by rank: negatives too)."""
    distinct = ids.unique().sort().to_list()
    width = len(str(len(distinct)))
    mapping = {v: f"c{rank:0{width}d}" for rank, v in enumerate(distinct)}
    return ids.replace_strict(mapping, return_dtype=pl.String), mapping


@given(cases(logs(id_kinds=("int64", "int64_sparse", "int32", "uint64"))))
def test_int_and_string_ids_score_alike(case: Case) -> None:
    frame = case.log.frame
    as_strings, mapping = _as_padded_strings(frame["customer_id"])
    expected = run(frame, case.config, case.as_of)
    got = run(frame.with_columns(as_strings), case.config, case.as_of)
    assert got.customers.drop("customer_id").equals(expected.customers.drop("customer_id"))
    assert got.customers["customer_id"].to_list() == [
        mapping[v] for v in expected.customers["customer_id"].to_list()
    ]
    assert got.customers.schema["customer_id"] == pl.String
    assert got.cuts == expected.cuts
    assert _stats(got) == _stats(expected)


# ---------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------


def containers(frame: pl.DataFrame) -> dict[str, Callable[[], Any]]:
    """Makers of the same log in every supported in-memory container."""
    table = frame.to_arrow()
    return {
        "polars-lazy": frame.lazy,
        "pyarrow": lambda: table,
        "pyarrow-oldest": lambda: frame.to_arrow(compat_level=pl.CompatLevel.oldest()),
        "pyarrow-batch": lambda: table.combine_chunks().to_batches()[0],
        "reader": lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
        "c-stream": lambda: ArrowStream(table),
        "pandas-arrow": lambda: frame.to_pandas(use_pyarrow_extension_array=True),
        "pandas": frame.to_pandas,
    }


CONTAINERS = (
    "polars-lazy", "pyarrow", "pyarrow-oldest", "pyarrow-batch", "reader", "c-stream",
    "pandas-arrow", "pandas",
)  # fmt: skip


@given(
    cases(logs(max_customers=40)),
    st.lists(st.sampled_from(CONTAINERS), min_size=1, max_size=3, unique=True),
)
def test_containers_score_alike(case: Case, names: list[str]) -> None:
    """A few containers per example (each conversion costs a run; the ci
    profile still tries every container on many logs)."""
    frame = case.log.frame
    expected = run(frame, case.config, case.as_of)
    every = containers(frame)
    assert set(every) == set(CONTAINERS)
    for name in names:
        try:
            assert_identical(run(every[name](), case.config, case.as_of), expected)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------


@given(cases(threads=1))
def test_thread_count_does_not_matter(case: Case) -> None:
    expected = run(case.log.frame, case.config, case.as_of)
    config = dataclasses.replace(case.config, threads=2)
    assert_identical(run(case.log.frame, config, case.as_of), expected)


# ---------------------------------------------------------------------------
# one larger, deterministic log
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_log() -> pl.DataFrame:
    from churn_engine._generate import generate_log

    return generate_log(20_000, seed=1, categories=True)


@pytest.mark.parametrize("per_category", [False, True], ids=["customers", "per-category"])
def test_large_log_invariance(big_log: pl.DataFrame, per_category: bool) -> None:
    config = ScoreConfig(threads=1, category_col="category" if per_category else None)
    as_of = dt.date(2026, 3, 31)
    expected = run(big_log, config, as_of)
    assert expected.customers.height > 15_000
    assert expected.stats.rows_after_as_of > 0

    rng = np.random.default_rng(3)
    shuffled = big_log[rng.permutation(big_log.height).tolist()]
    assert_identical(run(shuffled, config, as_of), expected)

    bounds = np.unique(np.r_[0, rng.integers(0, big_log.height, 300), big_log.height])
    pieces = [big_log[a:b] for a, b in itertools.pairwise(bounds)]
    assert_identical(run(pl.concat(pieces, rechunk=False), config, as_of), expected)
    table = big_log.to_arrow()
    small_batches = pa.Table.from_batches(table.to_batches(max_chunksize=7), table.schema)
    assert_identical(run(small_batches, config, as_of), expected)
    assert_identical(run(table.slice(0), config, as_of), expected)

    for threads in (2, None):
        assert_identical(run(big_log, dataclasses.replace(config, threads=threads), as_of),
                         expected)  # fmt: skip

    for name, make in containers(big_log).items():
        if name in ("polars-lazy", "pyarrow-batch"):
            continue
        try:
            assert_identical(run(make(), config, as_of), expected)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc

    as_strings, mapping = _as_padded_strings(big_log["customer_id"])
    got = run(big_log.with_columns(as_strings), config, as_of)
    assert got.customers.drop("customer_id").equals(expected.customers.drop("customer_id"))
    assert got.customers["customer_id"].to_list() == [
        mapping[v] for v in expected.customers["customer_id"].to_list()
    ]
