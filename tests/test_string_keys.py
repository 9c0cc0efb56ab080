"""Short string ids as int64 keys (``_prepare.string_keys``, csrc/churn_strings.c).

A key must order and compare exactly like the string's UTF-8 bytes, decode
back to the same string, be the same from the pext and the byte-table code,
and be refused (None) whenever the strings do not fit: a string longer than
16 bytes or more than 63 bits that vary. Scores with such ids must be what
ranking the ids gives.
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

import churn_engine
from churn_engine import _fastprep, _kernel
from churn_engine._prebound import prepare_source
from churn_engine._prepare import _string_chunks, decode_string_keys, string_keys
from churn_engine.config import ScoreConfig
from churn_engine.errors import KernelError

# bytes that make ties and zero padding matter: NUL, digits, a prefix byte, UTF-8
_ALPHABETS = [
    st.sampled_from(["0", "1", "9"]),
    st.sampled_from(["\x00", "a", "b", "\x7f"]),
    st.characters(codec="utf-8", categories=["L", "N", "Cc"]),
]


def _bytes(value: str) -> bytes:
    return value.encode("utf-8")


@st.composite
def _columns(draw: st.DrawFn) -> tuple[list[str], pa.ChunkedArray]:
    """Strings as utf8, large_utf8 or string_view chunks, some sliced."""
    alphabet = draw(st.sampled_from(_ALPHABETS))
    prefix = draw(st.sampled_from(["", "C", "cust-"]))
    max_size = draw(st.sampled_from([4, 11, 16, 20]))
    body = st.text(alphabet, max_size=max_size)
    values = draw(st.lists(st.builds(lambda b: (prefix + b)[:max_size], body), min_size=1,
                           max_size=60))  # fmt: skip
    kind = draw(st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]))
    pieces = []
    start = 0
    while start < len(values):
        size = draw(st.integers(1, len(values) - start))
        pad = draw(st.integers(0, 2))  # sliced out of a longer array
        array = pa.array(["pad"] * pad + values[start : start + size] + ["x" * 30] * pad, kind)
        pieces.append(array.slice(pad, size))
        start += size
    return values, pa.chunked_array(pieces, type=kind)


@given(_columns())
def test_keys_order_and_compare_like_the_bytes(case: tuple[list[str], pa.ChunkedArray]) -> None:
    values, column = case
    keyed = string_keys(column, 1)
    encoded = [_bytes(v) for v in values]
    fits_length = max(len(b) for b in encoded) <= 16
    if keyed is None:
        event("refused")
        if fits_length:  # then only too many varying bits may refuse
            chunks = _string_chunks(column)
            assert _kernel.string_key_plan(chunks, 1) is None
            assert _varying_bits(encoded) > 63
        return
    event("keyed")
    assert fits_length
    keys, plan = keyed
    assert keys.dtype == np.int64 and (keys >= 0).all()
    for i, a in enumerate(encoded):
        for j, b in enumerate(encoded):
            assert (keys[i] < keys[j]) == (a < b), (a, b)
            assert (keys[i] == keys[j]) == (a == b), (a, b)
    assert decode_string_keys(keys, plan).to_pylist() == values
    portable = np.empty_like(keys)
    _kernel.string_keys(portable, plan, _string_chunks(column), 1, portable=True)
    np.testing.assert_array_equal(portable, keys)


def _varying_bits(encoded: list[bytes]) -> int:
    """Bits of the 16-byte window plus length that differ between strings."""
    any_bits = [0] * 17
    all_bits = [0xFF] * 17
    for b in encoded:
        window = [*b.ljust(16, b"\0"), len(b)]
        for j, byte in enumerate(window):
            any_bits[j] |= byte
            all_bits[j] &= byte
    return sum(bin(a ^ b).count("1") for a, b in zip(any_bits, all_bits, strict=True))


def test_long_or_too_varied_strings_are_refused() -> None:
    assert string_keys(pa.chunked_array([pa.array(["a" * 16, "b" * 17])]), 1) is None
    # 16 random bytes per id: far more than 63 bits vary
    rng = np.random.default_rng(0)
    varied = ["".join(chr(c) for c in rng.integers(33, 127, 16)) for _ in range(200)]
    assert string_keys(pa.chunked_array([pa.array(varied)]), 1) is None
    assert string_keys(pa.chunked_array([pa.array([], pa.string())]), 1) is None


@pytest.mark.parametrize(
    ("form", "top"), [("C{:010d}", 10**10), ("cust-{:010d}", 10**10), ("{}", 10**13)]
)
def test_many_rows_on_two_threads(form: str, top: int) -> None:
    """Above the one-thread threshold: both threads' blocks, chunk boundaries
    inside them; the same keys on one thread, and from the tables; decoded
    views inline (11 bytes), out of line (15 bytes) or both (1-13 digits),
    over many blocks."""
    rng = np.random.default_rng(1)
    ids = np.array([form.format(n) for n in rng.integers(0, top, 5_000)])
    values = ids[rng.integers(0, len(ids), 150_000)].tolist()
    column = pa.chunked_array([pa.array(values[:70_001]), pa.array(values[70_001:])])
    keyed = string_keys(column, 2)
    assert keyed is not None
    keys, plan = keyed
    assert plan is not None
    one, _ = string_keys(column, 1) or (None, None)
    np.testing.assert_array_equal(one, keys)
    portable = np.empty_like(keys)
    _kernel.string_keys(portable, plan, _string_chunks(column), 2, portable=True)
    np.testing.assert_array_equal(portable, keys)
    order = np.argsort(keys, kind="stable")
    assert [values[i] for i in order] == sorted(values)
    assert decode_string_keys(keys, plan).to_pylist() == values
    assert decode_string_keys(keys, plan, 2).to_pylist() == values


def test_a_plan_is_checked_before_use() -> None:
    column = pa.chunked_array([pa.array(["a1", "a2"])])
    keys, plan = string_keys(column, 1) or (None, None)
    assert plan is not None
    with pytest.raises(ValueError, match="not a string key plan"):
        decode_string_keys(keys, plan[:-1])
    broken = plan.copy()
    broken[:4] = 0  # fits = 0
    with pytest.raises(ValueError, match="not a string key plan"):
        decode_string_keys(keys, broken)
    with pytest.raises(ValueError, match="not one of the plan's"):
        decode_string_keys(np.array([1 << 40], dtype=np.int64), plan)
    # strings the plan does not describe: too long, or another constant byte
    for other in ["a" * 17, "b1", "a1\x00"]:
        chunks = _string_chunks(pa.chunked_array([pa.array([other])]))
        with pytest.raises(KernelError):
            _kernel.string_keys(np.empty(1, dtype=np.int64), plan, chunks, 1)
        with pytest.raises(KernelError):
            _kernel.string_keys(np.empty(1, dtype=np.int64), plan, chunks, 1, portable=True)


def _log(ids: list[str], kind: pa.DataType | None = None) -> pa.Table:
    n = len(ids)
    return pa.table({
        "customer_id": pa.array(ids, kind or pa.string()),
        "ts": pa.array([dt.datetime(2024, 1, 1 + (7 * i) % 28) for i in range(n)],
                       pa.timestamp("us")),
        "amount": pa.array([10.0 + i % 5 for i in range(n)]),
    })  # fmt: skip


def _without_keys(data: Any, **options: Any) -> Any:
    """The same score with string ids ranked instead of keyed."""
    original = _kernel.string_key_plan
    _kernel.string_key_plan = lambda chunks, threads: None
    try:
        return churn_engine.Scorer(**options).run(data)
    finally:
        _kernel.string_key_plan = original


def _same(a: Any, b: Any) -> None:
    assert a.customers.equals(b.customers)
    assert a.cuts == b.cuts
    assert dataclasses.replace(a.stats, timings={}) == dataclasses.replace(b.stats, timings={})


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.string_view()])
def test_clean_arrow_log_takes_keys_on_the_fast_path(kind: pa.DataType) -> None:
    ids = ["b2", "a10", "b2", "a9", "", "a10", "zz"] * 3
    table = _log(ids, kind)
    prepared = prepare_source(table, ScoreConfig(), None)
    assert prepared.id_key_plan is not None and prepared.id_dictionary is None
    result = churn_engine.Scorer().run(table)
    assert result.customers["customer_id"].to_list() == sorted(set(ids), key=_bytes)
    assert result.customers.schema["customer_id"] == pl.String
    _same(result, _without_keys(table))


def test_long_ids_are_ranked_as_before() -> None:
    table = _log(["x" * 17, "y", "x" * 17])
    prepared = prepare_source(table, ScoreConfig(), None)
    assert prepared.id_key_plan is None and prepared.id_dictionary is not None
    assert churn_engine.score(table)["customer_id"].to_list() == ["x" * 17, "y"]


def test_polars_and_unclean_inputs_take_keys_on_the_plain_path(tmp_path: Any) -> None:
    ids = ["c3", "c1", "c2", "c1", "c3"]
    table = _log(ids)
    frame = pl.from_arrow(table)
    prepared = prepare_source(frame, ScoreConfig(), None)
    assert prepared.id_key_plan is not None
    _same(churn_engine.Scorer().run(frame), _without_keys(frame))
    path = tmp_path / "log.parquet"
    frame.write_parquet(path)
    _same(churn_engine.Scorer().run(str(path)), _without_keys(str(path)))
    # a NaN amount in a Polars frame: the keys of the accepted rows, with rejects
    bad_table = table.set_column(2, "amount", pa.array([1.0, float("nan"), 2.0, 3.0, 4.0]))
    assert _fastprep.fast_prepare(bad_table, ScoreConfig(), None) is None
    bad = pl.from_arrow(bad_table)
    prepared = prepare_source(bad, ScoreConfig(on_error="quarantine"), None)
    assert prepared.id_key_plan is not None and prepared.rows_rejected == 1
    keyed = churn_engine.Scorer(on_error="quarantine").run(bad)
    ranked = _without_keys(bad, on_error="quarantine")
    _same(keyed, ranked)
    assert keyed.rejects is not None and ranked.rejects is not None
    assert keyed.rejects.equals(ranked.rejects)


def test_malformed_buffers_are_refused_row_by_row() -> None:
    """The key passes check each row's offsets or view themselves (no separate
    pass): every malformed row raises, wherever it is, on 1 and 2 threads."""
    n = 70_000  # above the one-thread threshold
    strings = [f"id{i % 997:04d}" for i in range(n)]
    data = np.frombuffer("".join(strings).encode(), np.uint8)
    good = np.concatenate([[0], np.cumsum([len(s) for s in strings])]).astype(np.int32)
    chunks = [(_kernel.STRING_UTF8, n, good, [data])]
    plan = _kernel.string_key_plan(chunks, 2)
    assert plan is not None
    for row in (0, n // 2 + 1, n - 1):
        for value in (-1, int(good[-1]) + 5):  # negative, past the data
            bad = good.copy()
            bad[row + 1] = value
            bad_chunks = [(_kernel.STRING_UTF8, n, bad, [data])]
            for threads in (1, 2):
                with pytest.raises(KernelError, match="outside their buffers"):
                    _kernel.string_key_plan(bad_chunks, threads)
                with pytest.raises(KernelError, match="outside their buffers"):
                    _kernel.string_keys(np.empty(n, np.int64), plan, bad_chunks, threads)
    # views: 15 bytes out of line in a buffer too short, a buffer that is not
    # there, a negative length
    view = np.zeros(16, np.uint8)
    for length, buffer, offset in ((15, 0, 0), (15, 1, 0), (14, 0, -1), (-3, 0, 0)):
        view[:4] = np.frombuffer(np.int32(length).tobytes(), np.uint8)
        view[8:12] = np.frombuffer(np.int32(buffer).tobytes(), np.uint8)
        view[12:16] = np.frombuffer(np.int32(offset).tobytes(), np.uint8)
        short = np.frombuffer(b"abcdef", np.uint8)
        with pytest.raises(KernelError, match="outside their buffers"):
            _kernel.string_key_plan([(_kernel.STRING_VIEW, 1, view.copy(), [short])], 1)


def test_occasions_decode_their_string_keys_on_the_configured_threads(monkeypatch) -> None:
    """Analyses built on occasions (summary, churn rate) keep to
    ``ScoreConfig.threads`` when they decode string keys back to ids."""
    from churn_engine import _occasions, api
    from churn_engine.config import ScoreConfig

    seen: list[int] = []
    real = api.decode_string_keys

    def spy(keys: Any, plan: Any, threads: int) -> Any:
        seen.append(threads)
        return real(keys, plan, threads)

    monkeypatch.setattr(api, "decode_string_keys", spy)
    log = pl.DataFrame(
        {
            "customer_id": ["C01", "C02", "C01"],
            "ts": [dt.date(2026, 1, d) for d in (1, 2, 9)],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    occasions = _occasions.collect_occasions(log, ScoreConfig(threads=1))
    assert occasions.prepared.id_key_plan is not None  # short ids: int64 keys
    assert occasions.customer_ids("customer_id").to_list() == ["C01", "C02"]
    assert seen == [1]
