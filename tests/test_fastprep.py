"""The fast path for clean in-memory Arrow logs (``_fastprep``).

It must prepare exactly what ``prepare`` prepares, and be taken exactly when
the table is clean and plain: otherwise the plain path runs unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import churn_engine._prebound as prebound_module
from churn_engine import ScoreConfig, Scorer, _fastprep
from churn_engine._fastprep import fast_prepare
from churn_engine._io import from_arrow_table
from churn_engine._prebound import prebind_ids
from churn_engine._prepare import MAX_DAY, MIN_DAY, Prepared, prepare
from churn_engine.errors import ChurnEngineError

_EPOCH = dt.date(1970, 1, 1)
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _plain(table: pa.Table, config: ScoreConfig, as_of: Any) -> Prepared:
    """What the plain path prepares (string ids ranked first, as a score does)."""
    bound = prebind_ids(table, config)
    if bound is None:
        return prepare(from_arrow_table(table), config, as_of)
    return prepare(from_arrow_table(bound[0]), config, as_of, prebound=bound[1])


def _fast(table: pa.Table, config: ScoreConfig, as_of: Any) -> Prepared | None:
    bound = prebind_ids(table, config)
    if bound is None:
        return fast_prepare(table, config, as_of)
    return fast_prepare(bound[0], config, as_of, bound[1])


def _assert_same(fast: Prepared, plain: Prepared) -> None:
    """Field for field; segments compared as concatenated rows (chunk
    boundaries may differ, the kernel does not see them)."""
    for field in dataclasses.fields(Prepared):
        name = field.name
        a, b = getattr(fast, name), getattr(plain, name)
        if name.endswith("_segments") or name == "amount_bits":
            if a is None or b is None:
                assert a is None and b is None, name
                continue
            assert len(a) == len(fast.id_segments), name
            got, want = np.concatenate(a), np.concatenate(b)
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want, err_msg=name)
        elif isinstance(a, pl.Series):
            assert b is not None and a.equals(b), name
        elif name == "id_dtype":
            assert a == b, name
        else:
            assert a == b and type(a) is type(b), (name, a, b)


def _table(ts: pa.Array, ids: Any = None, amounts: Any = None) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "customer_id": pa.array(ids if ids is not None else [1, 2] * (n // 2) + [1] * (n % 2),
                                    pa.int64()),
            "ts": ts,
            "amount": pa.array(amounts if amounts is not None else [1.0 + i for i in range(n)]),
        }
    )  # fmt: skip


# --- hand examples ---------------------------------------------------------------------------


def test_negative_timestamps_floor_to_the_previous_day() -> None:
    # 1969-12-31T23:00 is 3,600 s before the epoch: day -1 (truncation would give 0);
    # midnight of 1970-01-01 is day 0, midnight of 1969-12-31 day -1, 1969-12-30T00:00:01 day -2
    seconds = [-3_600, 0, -86_400, -2 * 86_400 + 1]
    for unit, scale in (("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)):
        table = _table(pa.array([s * scale for s in seconds], pa.timestamp(unit)))
        fast = fast_prepare(table, ScoreConfig(), None)
        assert fast is not None, unit
        assert np.concatenate(fast.day_segments).tolist() == [-1, 0, -1, -2], unit
        assert fast.as_of == _EPOCH and fast.as_of_day == 0
        _assert_same(fast, _plain(table, ScoreConfig(), None))


def test_units_and_date32() -> None:
    # 2024-03-01T12:34:56 is day 19,783; 2024-02-29T23:59:59.999 day 19,782
    moments = [dt.datetime(2024, 3, 1, 12, 34, 56), dt.datetime(2024, 2, 29, 23, 59, 59, 999_000)]
    for unit in ("s", "ms", "us", "ns"):
        if unit == "s":
            moments = [m.replace(microsecond=0) for m in moments]
        table = _table(pa.array(moments, pa.timestamp(unit)))
        fast = fast_prepare(table, ScoreConfig(), None)
        assert fast is not None
        assert np.concatenate(fast.day_segments).tolist() == [19_783, 19_782]
        _assert_same(fast, _plain(table, ScoreConfig(), None))
    dates = _table(pa.array([dt.date(2024, 3, 1), dt.date(1969, 12, 31)], pa.date32()))
    fast = fast_prepare(dates, ScoreConfig(), dt.date(2024, 3, 2))
    assert fast is not None
    assert np.concatenate(fast.day_segments).tolist() == [19_783, -1]
    assert fast.as_of == dt.date(2024, 3, 2) and fast.as_of_day == 19_784
    _assert_same(fast, _plain(dates, ScoreConfig(), dt.date(2024, 3, 2)))


def test_chunked_and_sliced_table() -> None:
    # three chunks of the ts column, the id column in one chunk sliced at offset 1
    base = dt.datetime(2023, 1, 1)
    stamps = [base + dt.timedelta(hours=7 * i) for i in range(12)]
    ts = pa.chunked_array(
        [pa.array(stamps[:5], pa.timestamp("us")), pa.array(stamps[5:6], pa.timestamp("us")),
         pa.array([base, *stamps[6:]], pa.timestamp("us")).slice(1)]
    )  # fmt: skip
    ids = pa.array([99] + [i % 3 for i in range(12)], pa.int64()).slice(1)
    amounts = pa.chunked_array([pa.array([float(i) for i in range(7)]), pa.array([7.5] * 5)])
    table = pa.table({"customer_id": ids, "ts": ts, "amount": amounts})
    fast = fast_prepare(table, ScoreConfig(), None)
    assert fast is not None
    # hours 0, 7, ..., 77 after 2023-01-01 (day 19,358): days 0,0,0,0,1,1,1,2,2,2,3,3 after it
    days = [19_358 + (7 * i) // 24 for i in range(12)]
    assert np.concatenate(fast.day_segments).tolist() == days
    assert np.concatenate(fast.id_segments).tolist() == [i % 3 for i in range(12)]
    _assert_same(fast, _plain(table, ScoreConfig(), None))


def test_string_ids_take_the_fast_path_with_their_ranks() -> None:
    table = _table(
        pa.array([dt.datetime(2024, 1, d) for d in (1, 2, 3, 4)], pa.timestamp("ms")),
    ).set_column(0, "customer_id", pa.array(["b", "a", "b", "c"]))
    fast = _fast(table, ScoreConfig(), None)
    assert fast is not None and fast.id_kind == "string"
    assert np.concatenate(fast.id_segments).tolist() == [1, 0, 1, 2]  # ranks of a < b < c
    _assert_same(fast, _plain(table, ScoreConfig(), None))


@pytest.mark.parametrize(
    ("change", "config", "as_of"),
    [
        ({"customer_id": pa.array([1, None, 3], pa.int64())}, {}, None),  # null id
        ({"customer_id": pa.array([1, 2, 3], pa.int32())}, {}, None),
        ({"customer_id": pa.array([1, 2, 3], pa.uint64())}, {}, None),
        ({"amount": pa.array([1.0, float("nan"), 2.0])}, {"on_error": "quarantine"}, None),
        ({"amount": pa.array([1.0, float("-inf"), 2.0])}, {}, None),
        ({"amount": pa.array([1.0, 2.0, 3.0], pa.float32())}, {}, None),
        ({"ts": pa.array([0, 86_400 * (MAX_DAY + 1), 0], pa.timestamp("s"))}, {}, None),
        ({"ts": pa.array([0, 0, 0], pa.timestamp("s", "UTC"))}, {"tz": "Europe/Paris"}, None),
        ({"ts": pa.array([0, 0, 0], pa.timestamp("s", "Europe/Paris"))}, {}, None),
        ({}, {}, dt.datetime(2024, 1, 1)),
        ({}, {}, dt.date(1970, 1, 1)),  # rows after as_of
        ({"category": pa.array(["a", "b", "a"])}, {"category_col": "category"}, None),
    ],
)
def test_refused(change: dict[str, pa.Array], config: dict[str, Any], as_of: Any) -> None:
    table = _table(pa.array([0, 86_400, 2 * 86_400], pa.timestamp("s")))
    for name, column in change.items():
        index = table.schema.get_field_index(name)
        table = (
            table.append_column(name, column)
            if index < 0
            else table.set_column(index, name, column)
        )
    assert _fast(table, ScoreConfig(**config), as_of) is None


def test_switch_off() -> None:
    table = _table(pa.array([0, 86_400], pa.timestamp("s")))
    assert fast_prepare(table, ScoreConfig(), None) is not None
    _fastprep.ENABLED = False
    try:
        assert fast_prepare(table, ScoreConfig(), None) is None
    finally:
        _fastprep.ENABLED = True


# --- property: a score is the same with and without the fast path ---------------------------

_ID_TYPES = ["int64", "int32", "uint64", "string", "large_string", "string_view"]
_TS_TYPES = ["s", "ms", "us", "ns", "us-utc", "ms-paris", "date32", "string"]
_AMOUNT_TYPES = ["float64", "int64", "float32", "int32"]


@st.composite
def _cases(draw: st.DrawFn) -> tuple[pa.Table, ScoreConfig, Any]:
    n = draw(st.integers(0, 24))
    # half the cases are drawn clean (accepted types, no defects), so that both
    # paths are well covered; the others mix everything
    clean = draw(st.booleans())
    id_type = draw(
        st.sampled_from(["int64", "string", "large_string", "string_view"] if clean else _ID_TYPES)
    )
    # short string ids become int64 keys, ids longer than 16 bytes are ranked
    id_prefix = draw(st.sampled_from(["c", "c", "customer-with-a-long-id-"]))
    ts_type = draw(st.sampled_from([*_TS_TYPES[:5], "date32"] if clean else _TS_TYPES))
    amount_type = draw(st.sampled_from(_AMOUNT_TYPES[:2] if clean else _AMOUNT_TYPES))
    # days around the epoch (negative timestamps) and around 2020; seconds within
    # the day, exact midnights often; sometimes one day out of range
    base = draw(st.sampled_from([-3, 18_260]))
    days = draw(st.lists(st.integers(base, base + 40), min_size=n, max_size=n))
    seconds = draw(st.lists(st.one_of(st.just(0), st.integers(0, 86_399)), min_size=n, max_size=n))
    if n and not clean and draw(st.integers(0, 9)) == 0:
        days[draw(st.integers(0, n - 1))] = draw(
            st.sampled_from([MIN_DAY - 1, MAX_DAY + 1, MIN_DAY, MAX_DAY])
        )
    ids = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    amounts: list[Any] = draw(st.lists(st.integers(-5, 50), min_size=n, max_size=n))
    roles = [None, None, "customer", "ts", "amount"]
    nulls = draw(st.sampled_from(roles)) if n and not clean else None
    if n and not clean and amount_type.startswith("float") and draw(st.integers(0, 5)) == 0:
        amounts[draw(st.integers(0, n - 1))] = draw(
            st.sampled_from([float("nan"), float("inf"), float("-inf")])
        )

    def with_null(values: list[Any], role: str) -> list[Any]:
        return [None, *values[1:]] if nulls == role else values

    id_values = [f"{id_prefix}{i}" if "string" in id_type else i for i in ids]
    columns = {
        "customer_id": pa.array(with_null(id_values, "customer"), getattr(pa, id_type)()),
        "ts": _ts_array(with_null(list(zip(days, seconds, strict=True)), "ts"), ts_type),
        "amount": pa.array(with_null(amounts, "amount")).cast(getattr(pa, amount_type)()),
    }
    config: dict[str, Any] = {
        "tz": draw(st.sampled_from(["UTC", "Europe/Paris"])),
        "on_error": draw(st.sampled_from(["raise", "quarantine"])),
    }
    if not clean and draw(st.integers(0, 3)) == 0:
        columns["category"] = pa.array(["x"] * n)
        config["category_col"] = "category"
    table = _chunked(pa.table(columns), draw)
    as_of = draw(
        st.sampled_from(
            [
                None,
                None,
                _EPOCH + dt.timedelta(days=base + 20),
                _EPOCH + dt.timedelta(days=base + 60),
                *([] if clean else [dt.datetime(2020, 3, 1, 12)]),
            ]
        )
    )
    return table, ScoreConfig(**config), as_of


def _ts_array(values: list[tuple[int, int] | None], kind: str) -> pa.Array:
    if kind == "date32":
        return pa.array([None if v is None else v[0] for v in values], pa.date32())
    if kind == "string":  # text: always the plain path
        return pa.array(
            [None if v is None else (_EPOCH + dt.timedelta(days=min(max(v[0], MIN_DAY), MAX_DAY)))
             .isoformat() for v in values]
        )  # fmt: skip
    unit, _, zone = kind.partition("-")
    if unit == "ns":  # ns cannot reach days out of range: keep them within int64
        values = [None if v is None else (max(min(v[0], 100_000), -100_000), v[1]) for v in values]
    per_second = _PER_DAY[unit] // 86_400
    stamps = [None if v is None else (v[0] * 86_400 + v[1]) * per_second for v in values]
    tz = {"": None, "utc": "UTC", "paris": "Europe/Paris"}[zone]
    return pa.array(stamps, pa.int64()).cast(pa.timestamp(unit, tz))


def _chunked(table: pa.Table, draw: st.DrawFn) -> pa.Table:
    """The same rows in several chunks, each column cut at its own places, some
    chunks sliced out of a longer array (a nonzero offset)."""
    n = table.num_rows
    columns = []
    for column in table.columns:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        pieces = []
        for start, stop in zip([0, *cuts], [*cuts, n], strict=True):
            piece = column.slice(start, stop - start).combine_chunks()
            if draw(st.booleans()):  # the same values at offset 1 of a longer array
                padded = pa.concat_arrays([piece.slice(0, 1), piece]) if len(piece) else piece
                piece = padded.slice(1) if len(piece) else piece
            pieces.append(piece)
        columns.append(pa.chunked_array(pieces, type=column.type))
    return pa.table(columns, names=table.column_names)


def _expected_fast(table: pa.Table, config: ScoreConfig, as_of: Any) -> bool:
    """The conditions of the fast path, spelled out independently."""
    if config.category_col is not None or isinstance(as_of, dt.datetime) or table.num_rows == 0:
        return False
    schema = table.schema
    ids, ts, amount = (schema.field(c).type for c in ("customer_id", "ts", "amount"))
    if not (
        pa.types.is_int64(ids) or pa.types.is_string(ids) or pa.types.is_large_string(ids)
        or pa.types.is_string_view(ids)
    ):  # fmt: skip
        return False
    if not (pa.types.is_float64(amount) or pa.types.is_int64(amount)):
        return False
    if any(table.column(c).null_count for c in ("customer_id", "ts", "amount")):
        return False
    if pa.types.is_date32(ts):
        days = np.array(table.column("ts").cast(pa.int32()).to_pylist(), dtype=np.int64)
    elif pa.types.is_timestamp(ts) and (ts.tz is None or ts.tz == config.tz == "UTC"):
        values = np.array(table.column("ts").cast(pa.int64()).to_pylist(), dtype=np.int64)
        days = values // _PER_DAY[ts.unit]  # numpy floors
    else:
        return False
    values = np.array(table.column("amount").to_pylist(), dtype=float)
    if pa.types.is_float64(amount) and not np.isfinite(values).all():
        return False
    if days.min() < MIN_DAY or days.max() > MAX_DAY:
        return False
    return as_of is None or days.max() <= (as_of - _EPOCH).days


def _score(table: pa.Table, config: ScoreConfig, as_of: Any) -> Any:
    try:
        result = Scorer(config).run(table, as_of=as_of)
    except ChurnEngineError as exc:
        return type(exc), str(exc)
    stats = dataclasses.replace(result.stats, timings={})
    return result.customers, result.cuts, stats, result.rejects


@given(_cases())
def test_score_is_the_same_without_the_fast_path(case: tuple[pa.Table, ScoreConfig, Any]) -> None:
    table, config, as_of = case
    taken: list[bool] = []

    def spy(*args: Any) -> Prepared | None:
        prepared = fast_prepare(*args)
        taken.append(prepared is not None)
        return prepared

    original = prebound_module.fast_prepare
    prebound_module.fast_prepare = spy
    try:
        fast = _score(table, config, as_of)
        _fastprep.ENABLED = False
        try:
            plain = _score(table, config, as_of)
        finally:
            _fastprep.ENABLED = True
    finally:
        prebound_module.fast_prepare = original
    expected = _expected_fast(table, config, as_of)
    event(f"fast path taken: {expected}")
    # string ids: a first attempt with int64 keys, then (too long) one with ranks
    assert any(taken) == expected
    if isinstance(plain, tuple) and len(plain) == 2:
        assert fast == plain  # the same error
        return
    assert not (isinstance(fast, tuple) and len(fast) == 2)
    customers, cuts, stats, rejects = fast
    assert customers.equals(plain[0])
    assert cuts == plain[1]
    assert stats == plain[2]
    assert (rejects is None and plain[3] is None) or rejects.equals(plain[3])
    if expected:
        prepared = _fast(table, config, as_of)
        assert prepared is not None
        _assert_same(prepared, _plain(table, config, as_of))
