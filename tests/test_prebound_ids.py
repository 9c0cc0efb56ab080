"""String ids of Arrow inputs ranked before Polars reads them (``_prebound``).

A pyarrow source with a utf8, large_utf8 or string_view customer column is
scored through int32 ranks; everything the user sees must be what the plain
path gives for the same rows as a Polars DataFrame (which never prebinds):
the output, ``stats``, the rejects table and the error of a bad row (with
the original id in its example). The accepted rows are also checked against
the plain-Polars reference (ids, row and order counts, dates).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ScoreConfig
from churn_engine._occasions import collect_occasions
from churn_engine._prebound import prebind_ids, prepare_source
from churn_engine._reference import reference_score
from churn_engine.errors import DataError

STRING_TYPES = {"utf8": pa.string(), "large_utf8": pa.large_string(), "view": pa.string_view()}
#: short, inline-view, empty, non-ASCII and long (out-of-line view) ids
ID_POOL = ["b", "a", "", "é", "日本", "ab", "a\x00b", "customer-with-a-long-id-0001", "Z" * 40]
DAY0 = dt.date(2024, 1, 1)


class CStream:
    """Only ``__arrow_c_stream__``: the generic Arrow stream input."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.table.__arrow_c_stream__(requested_schema)


def _table(
    ids: list[str | None],
    days: list[int],
    amounts: list[float],
    *,
    id_type: pa.DataType | None = None,
    cats: list[str] | None = None,
) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "customer_id": pa.array(ids, id_type or pa.string()),
        "ts": pa.array([DAY0 + dt.timedelta(days=d) for d in days], pa.date32()),
        "amount": pa.array(amounts, pa.float64()),
    }
    if cats is not None:
        columns["category"] = pa.array(cats, pa.string())
    return pa.table(columns)


def _chunked(table: pa.Table, cuts: list[int]) -> pa.Table:
    """The same rows in chunks ending at ``cuts``."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < table.num_rows}), table.num_rows]
    parts = [table.slice(a, b - a).combine_chunks() for a, b in itertools.pairwise(bounds)]
    return pa.concat_tables(parts) if parts else table


def _as_source(table: pa.Table, form: str) -> Any:
    if form == "table":
        return table
    if form == "batch":
        return table.combine_chunks().to_batches()[0] if table.num_rows else table
    if form == "reader":
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return CStream(table)


def _run(data: Any, config: ScoreConfig, as_of: Any) -> tuple[str, Any]:
    """What the user sees of a run: its result, or its error."""
    try:
        result = churn_engine.Scorer(config).run(data, as_of=as_of)
    except DataError as exc:
        return "error", (str(exc), exc.reason, exc.row, exc.column)
    stats = dataclasses.replace(result.stats, timings={})
    return "result", (result.customers, result.cuts, stats, result.rejects)


def _assert_same(new: tuple[str, Any], old: tuple[str, Any]) -> None:
    assert new[0] == old[0], (new, old)
    if new[0] == "error":
        assert new[1] == old[1]
        return
    customers, cuts, stats, rejects = new[1]
    old_customers, old_cuts, old_stats, old_rejects = old[1]
    assert customers.schema == old_customers.schema
    assert customers.equals(old_customers, null_equal=True)
    assert cuts == old_cuts
    assert stats == old_stats
    if old_rejects is None:
        assert rejects is None
    else:
        assert rejects.schema == old_rejects.schema
        assert rejects.equals(old_rejects, null_equal=True)


# ---------------------------------------------------------------------------
# hand-computed examples
# ---------------------------------------------------------------------------

HAND_IDS = ["b", None, "a", "", "é", "b", "a"]
HAND_DAYS = [0, 1, 2, 3, 4, 35, 40]
HAND_AMOUNTS = [1.0, 2.0, float("nan"), 4.0, 5.0, 6.0, 7.0]


@pytest.mark.parametrize("id_type", list(STRING_TYPES.values()), ids=list(STRING_TYPES))
def test_hand_example_quarantine(id_type: pa.DataType) -> None:
    # row 1 (null id) and row 2 (NaN amount) are rejected; as_of 2024-02-05
    # (day 35) leaves row 6 ("a" on day 40) after it, so "a" has no accepted
    # row although it is in the ranks' dictionary
    table = _table(HAND_IDS, HAND_DAYS, HAND_AMOUNTS, id_type=id_type)
    result = churn_engine.Scorer(on_error="quarantine").run(table, as_of="2024-02-05")
    out = result.customers
    assert out.get_column("customer_id").to_list() == ["", "b", "é"]  # byte order
    assert out.get_column("n_orders").to_list() == [1, 2, 1]
    assert out.get_column("monetary_total").to_list() == [4.0, 7.0, 5.0]
    assert out.get_column("last_purchase").to_list() == [
        dt.date(2024, 1, 4), dt.date(2024, 2, 5), dt.date(2024, 1, 5),
    ]  # fmt: skip
    assert out.schema["customer_id"] == pl.String
    assert result.rejects is not None
    assert result.rejects.drop("amount").to_dicts() == [
        {"row": 1, "customer_id": None, "ts": dt.date(2024, 1, 2), "reason": "null_customer_id"},
        {"row": 2, "customer_id": "a", "ts": dt.date(2024, 1, 3), "reason": "nan_amount"},
    ]
    assert result.rejects.get_column("amount").is_nan().to_list() == [False, True]
    assert (result.stats.rows_read, result.stats.rows_accepted) == (7, 4)
    assert (result.stats.rows_rejected, result.stats.rows_after_as_of) == (2, 1)
    assert result.stats.customers == 3


def test_hand_example_errors_show_the_original_id() -> None:
    table = _table(HAND_IDS, HAND_DAYS, HAND_AMOUNTS)
    with pytest.raises(DataError) as null_id:
        churn_engine.Scorer().run(table)
    assert str(null_id.value) == (
        "column 'customer_id': null customer id at row 1: {'customer_id': None, "
        "'ts': datetime.date(2024, 1, 2), 'amount': 2.0} (2 bad rows in all); fix the input "
        "or pass on_error='quarantine' to score the rest and get the bad rows in "
        "ScoreResult.rejects"
    )
    without_null = _table(["b", "é", "a"], [0, 1, 2], [1.0, float("nan"), 3.0])
    with pytest.raises(DataError) as nan_amount:
        churn_engine.Scorer().run(without_null)
    assert str(nan_amount.value).startswith(
        "column 'amount': nan amount at row 1: {'customer_id': 'é', "
        "'ts': datetime.date(2024, 1, 2), 'amount': nan}; "
    )


@pytest.mark.parametrize("id_type", list(STRING_TYPES.values()), ids=list(STRING_TYPES))
def test_prepared_holds_ranks_and_the_dictionary(id_type: pa.DataType) -> None:
    # ids longer than 16 bytes are ranked (shorter ones become int64 keys:
    # tests/test_string_keys.py)
    a, b, c = ("customer-with-a-long-id-" + x for x in "abc")
    table = _table([b, a, b, c], [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0], id_type=id_type)
    prepared = prepare_source(table, ScoreConfig(), None)
    assert prepared.id_kind == "string"
    assert prepared.id_dtype == pl.String
    assert prepared.id_rank_of_code is None
    assert prepared.id_key_plan is None
    assert prepared.id_dictionary is not None
    assert prepared.id_dictionary.to_list() == [a, b, c]
    ranks = np.concatenate(prepared.id_segments)
    assert ranks.dtype == np.int32
    assert ranks.tolist() == [1, 0, 1, 2]


def test_only_string_columns_are_prebound() -> None:
    config = ScoreConfig()
    base = _table(["b", "a"], [0, 1], [1.0, 2.0])
    assert prebind_ids(base, config) is not None
    as_dictionary = base.set_column(0, "customer_id", base.column(0).dictionary_encode())
    assert prebind_ids(as_dictionary, config) is None
    as_ints = base.set_column(0, "customer_id", pa.array([2, 1]))
    assert prebind_ids(as_ints, config) is None
    assert prebind_ids(base.rename_columns(["id", "ts", "amount"]), config) is None


def test_null_slots_with_bytes_or_garbage_views() -> None:
    # a utf8 null slot spanning "zz" and a string-view null slot with a bogus
    # view: neither may reach the output or the dictionary's users
    data = pa.py_buffer(b"bzza")
    offsets = pa.py_buffer(np.array([0, 1, 3, 4], dtype=np.int32).tobytes())
    validity = pa.py_buffer(bytes([0b101]))
    utf8 = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, data], null_count=1)
    view = pa.array(["b", None, "a"], pa.string_view())
    words = np.frombuffer(view.buffers()[1], dtype=np.int32).copy()
    words[4:8] = [1000, 0, 7, 12345]  # row 1: 1000 bytes in buffer 7 at 12345
    bogus = pa.Array.from_buffers(
        pa.string_view(), 3, [view.buffers()[0], pa.py_buffer(words.tobytes())], null_count=1
    )
    config = ScoreConfig(on_error="quarantine")
    for ids in (utf8, bogus):
        table = pa.table({
            "customer_id": ids, "ts": pa.array([DAY0] * 3, pa.date32()),
            "amount": pa.array([1.0, 2.0, 3.0]),
        })  # fmt: skip
        new = _run(table, config, None)
        _assert_same(new, _run(pl.from_arrow(table), config, None))
        assert new[1][0].get_column("customer_id").to_list() == ["a", "b"]


def test_occasions_use_the_prebound_path_too() -> None:
    table = _table(HAND_IDS, HAND_DAYS, [1.0] * len(HAND_IDS))
    config = ScoreConfig(on_error="quarantine")
    new = collect_occasions(table, config)
    old = collect_occasions(pl.from_arrow(table), config)
    assert new.customer_ids("id").to_list() == old.customer_ids("id").to_list() == [
        "", "a", "b", "é",
    ]  # fmt: skip
    assert new.offsets.tolist() == old.offsets.tolist()
    assert new.day.tolist() == old.day.tolist()


# ---------------------------------------------------------------------------
# property: the prebound path against the plain one and the reference
# ---------------------------------------------------------------------------


@st.composite
def prebound_cases(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 40))
    pool = draw(st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=6, unique=True))
    null_rate = draw(st.sampled_from([0.0, 0.0, 0.1]))
    nan_rate = draw(st.sampled_from([0.0, 0.0, 0.1]))
    ids: list[str | None] = []
    amounts: list[float] = []
    for _ in range(n):
        ids.append(None if draw(st.floats(0, 1)) < null_rate else draw(st.sampled_from(pool)))
        nan = draw(st.floats(0, 1)) < nan_rate
        amounts.append(float("nan") if nan else float(draw(st.integers(-3, 50))))
    days = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    with_cat = draw(st.booleans())
    cats = draw(st.lists(st.sampled_from(["x", "y"]), min_size=n, max_size=n)) if with_cat else None
    id_type = STRING_TYPES[draw(st.sampled_from(list(STRING_TYPES)))]
    table = _table(ids, days, amounts, id_type=id_type, cats=cats)
    pad = draw(st.integers(0, 3))
    if pad and n:  # rows around the wanted ones, then sliced away: chunk offsets
        padded = pa.concat_tables([table.slice(0, pad), table, table.slice(0, pad)])
        table = padded.slice(pad, n)
    table = _chunked(table, draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=3)))
    as_of = draw(st.sampled_from([None, None, DAY0 + dt.timedelta(days=60)]))
    on_error = draw(st.sampled_from(["quarantine", "quarantine", "raise"]))
    config = ScoreConfig(category_col="category" if with_cat else None, on_error=on_error)
    form = draw(st.sampled_from(["table", "table", "batch", "reader", "stream"]))
    return {"table": table, "config": config, "as_of": as_of, "form": form}


@given(prebound_cases())
def test_prebound_path_matches_the_plain_path(case: dict[str, Any]) -> None:
    table, config, as_of = case["table"], case["config"], case["as_of"]
    new = _run(_as_source(table, case["form"]), config, as_of)
    _assert_same(new, _run(pl.from_arrow(table), config, as_of))
    if new[0] == "error":
        return
    # the accepted rows against the reference: ids in order, counts, dates
    customers = new[1][0]
    clean = pl.from_arrow(table).filter(
        pl.col("customer_id").is_not_null() & pl.col("amount").is_not_nan()
    )
    assert isinstance(clean, pl.DataFrame)
    expected = reference_score(clean, config, as_of).customers
    keys = [c for c in ("customer_id", "category") if c in customers.columns]
    columns = [*keys, "n_orders", "n_rows", "first_purchase", "last_purchase", "recency_days"]
    assert customers.select(columns).equals(expected.select(columns))
