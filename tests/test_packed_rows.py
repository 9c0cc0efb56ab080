"""Packed rows: a score groups its rows as packed records (``group_rows(...,
packed=True)``) when the key's offset in its partition, the category and the
day offset fit one 64-bit word: 12-byte records when every amount has a
32-bit code (integers spanning less than 2^32, doubles that are whole
cents), 16-byte ones otherwise; 24-byte rows when the word does not fit.
Either way the statistics must be bit for bit those of the 24-byte path,
which tests/test_kernel.py checks against pandas.
"""

from __future__ import annotations

import datetime as dt
import itertools
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from churn_engine import _kernel as K

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
UINT32_MAX = 2**32 - 1
RAW, INT, CENTS = 0, 1, 2  # packing["amount_kind"]
MIN_DAY = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
MAX_DAY = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days


def _segments(values: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    bounds = [0, *cuts, len(values)]
    return [values[a:b] for a, b in itertools.pairwise(bounds)]


def _grouped(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None,
    *,
    packed: bool,
    threads: int = 1,
    rank_of_code: np.ndarray | None = None,
    cuts: list[int] | None = None,
) -> Any:
    cuts = cuts or []
    return K.group_rows(
        _segments(ids, cuts), rank_of_code, _segments(days, cuts),
        _segments(amounts.view(np.int64), cuts),
        None if cats is None else _segments(cats, cuts),
        len(ids), amounts.dtype.kind == "i", threads, packed,
    )  # fmt: skip


def _both(
    ids: np.ndarray,
    days: np.ndarray,
    amounts: np.ndarray,
    cats: np.ndarray | None = None,
    *,
    threads: int = 1,
    consume: bool = False,
    **kwargs: Any,
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(packed grouping, its statistics, the 24-byte path's statistics)."""
    integer = amounts.dtype.kind == "i"
    plain = _grouped(ids, days, amounts, cats, packed=False, threads=threads, **kwargs)
    assert plain.packing is None
    want = K.group_statistics(plain, integer, threads)
    grouped = _grouped(ids, days, amounts, cats, packed=True, threads=threads, **kwargs)
    packing, no_purchase = grouped.packing, grouped.no_purchase
    got = K.group_statistics(grouped, integer, threads, consume=consume)
    assert no_purchase == plain.no_purchase
    grouped.packing = packing
    return grouped, got, want


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        # bit for bit: the same summation order (NaN medians of one-order groups too)
        assert np.array_equal(got[name].view(np.uint8), want[name].view(np.uint8)), name


@st.composite
def logs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 120))
    id_kind = draw(st.sampled_from(["narrow", "wide", "extremes", "ranks", "codes"]))
    if id_kind == "narrow":
        base = draw(st.integers(INT64_MIN, INT64_MAX - 2**20))
        ids = base + np.array(draw(st.lists(st.integers(0, 2**20), min_size=n, max_size=n)))
    elif id_kind == "wide":
        ids = np.array(draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=n, max_size=n)))
    elif id_kind == "extremes":
        pool = [INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]
        ids = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
    else:
        ids = np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)))
    ids = ids.astype(np.int32 if id_kind in ("ranks", "codes") else np.int64)
    rank_of_code = (
        np.array(draw(st.permutations(range(10))), dtype=np.int32) if id_kind == "codes" else None
    )
    day_min = draw(st.integers(MIN_DAY, MAX_DAY))
    day_span = draw(st.sampled_from([0, 1, 3, 400, MAX_DAY - MIN_DAY]))
    days = np.clip(
        day_min + np.array(draw(st.lists(st.integers(0, day_span), min_size=n, max_size=n))),
        MIN_DAY, MAX_DAY,
    ).astype(np.int32)  # fmt: skip
    n_cats = draw(st.sampled_from([0, 1, 3, 2**20]))
    cats = (
        None if n_cats == 0
        else np.array(draw(st.lists(st.integers(0, n_cats - 1), min_size=n, max_size=n)),
                      dtype=np.int32)
    )  # fmt: skip
    amounts = draw(amount_columns(n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return {
        "ids": ids, "days": days, "amounts": amounts, "cats": cats,
        "rank_of_code": rank_of_code, "cuts": cuts,
    }  # fmt: skip


def _is_cents(value: float) -> bool:
    """The engine's test for a double that is whole cents (12-byte rows)."""
    if not abs(value) < 1e13:
        return False
    back = round(value * 100) / 100  # the same bits, -0.0 excluded
    return bool(np.float64(back).view(np.int64) == np.float64(value).view(np.int64))


@st.composite
def amount_columns(draw: st.DrawFn, n: int) -> np.ndarray:
    """Integer or float amounts, whole cents or not, near the 32-bit code limits."""
    kind = draw(st.sampled_from(["int", "int_narrow", "floats", "cents", "cents_odd"]))
    if kind == "int":
        values = draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n))
        return np.array(values, dtype=np.int64)
    if kind == "int_narrow":  # spans of at most 2^32 - 1, or just above
        low = draw(st.integers(-(2**55), 2**55))  # 120 rows' sums stay inside int64
        span = draw(st.sampled_from([0, 1, 1000, UINT32_MAX, UINT32_MAX + 1]))
        values = draw(st.lists(st.integers(low, low + span), min_size=n, max_size=n))
        if n >= 2 and draw(st.booleans()):
            values[:2] = [low, low + span]  # the span exactly
        return np.array(values, dtype=np.int64)
    if kind == "floats":
        finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
        return np.array(draw(st.lists(finite, min_size=n, max_size=n)), dtype=np.float64)
    # whole cents: codes around zero and near the 32-bit limit of the code
    bound = draw(st.sampled_from([10**4, 2**31, UINT32_MAX, 10**13]))
    cents = draw(st.lists(st.integers(-bound, bound), min_size=n, max_size=n))
    values = [c / 100 for c in cents]
    if kind == "cents_odd" and n:  # one amount that is not whole cents
        odd = draw(st.sampled_from([-0.0, 0.001, 12.345, 1e13, -1e13, 2.0**-30]))
        values[draw(st.integers(0, n - 1))] = odd
    return np.array(values, dtype=np.float64)


def _expected_amount_kind(amounts: np.ndarray) -> int:
    """12-byte rows exactly when every amount has a code and they fit 32 bits."""
    if len(amounts) == 0:
        return RAW
    if amounts.dtype.kind == "i":
        return INT if int(amounts.max()) - int(amounts.min()) <= UINT32_MAX else RAW
    if not all(_is_cents(float(v)) for v in amounts):
        return RAW
    codes = [round(float(v) * 100) for v in amounts]
    negatives = max(0, -min(codes))
    top = negatives + max(codes) if max(codes) >= 0 else negatives - 1
    return CENTS if top <= UINT32_MAX else RAW


@given(logs(), st.booleans())
def test_packed_statistics_are_the_24_byte_ones(log: dict[str, Any], consume: bool) -> None:
    grouped, got, want = _both(
        log["ids"], log["days"], log["amounts"], log["cats"], consume=consume,
        rank_of_code=log["rank_of_code"], cuts=log["cuts"],
    )  # fmt: skip
    _assert_same(got, want)
    if grouped.packing is not None:
        packing = grouped.packing
        assert packing["shift"] + packing["cat_bits"] + packing["day_bits"] <= 64
        assert packing["amount_kind"] == _expected_amount_kind(log["amounts"])
        row_bytes = 16 if packing["amount_kind"] == RAW else 12
        words = -(-row_bytes * len(log["ids"]) // 8)  # int64 words holding the rows
        assert grouped.rows is None or grouped.rows.nbytes == 8 * words
    amounts = log["amounts"]
    whole_cents = amounts.dtype.kind == "f" and len(amounts) and all(map(_is_cents, amounts))
    event(f"whole cents: {bool(whole_cents)}, rows: {'none' if not len(amounts) else 'some'}")
    assert grouped.cents == bool(whole_cents)
    if grouped.cents and log["ids"].dtype == np.int64 and log["cats"] is None:
        exact = _exact_money(log["ids"], amounts)
        for key, money in zip(got["key"].tolist(), got["monetary_total"].tolist(), strict=True):
            if abs(round(exact[key][0] * 100)) < 2**53:  # else summed as doubles
                assert money == exact[key][0]


#: the rows of the two hand-made tests below: keys 100..103, days 5..8
#: (2 bits), categories 0..2 (2 bits)
_IDS = np.array([103, 100, 101, 100, 102, 103], dtype=np.int64)
_DAYS = np.array([8, 5, 6, 7, 5, 5], dtype=np.int32)
_CATS = np.array([2, 0, 1, 0, 0, 2], dtype=np.int32)
#: one partition of 4 keys, so the word is key offset << 4 | cat << 2 | day - 5
_WORDS = [
    (0 << 4) | (0 << 2) | 0,  # 100, cat 0, day 5
    (0 << 4) | (0 << 2) | 2,  # 100, cat 0, day 7
    (1 << 4) | (1 << 2) | 1,  # 101, cat 1, day 6
    (2 << 4) | (0 << 2) | 0,  # 102, cat 0, day 5
    (3 << 4) | (2 << 2) | 0,  # 103, cat 2, day 5
    (3 << 4) | (2 << 2) | 3,  # 103, cat 2, day 8
]


def test_small_spans_are_packed_by_hand() -> None:
    """An amount that is not whole cents (-3.125) keeps 16-byte rows."""
    ids, days, cats = _IDS, _DAYS, _CATS
    amounts = np.array([1.0, 2.0, -3.125, 4.0, 5.0, 6.0])
    grouped, got, want = _both(ids, days, amounts, cats)
    assert grouped.packing is not None
    assert grouped.packing["amount_kind"] == RAW
    assert (grouped.packing["day_bits"], grouped.packing["cat_bits"]) == (2, 2)
    assert grouped.packing["day_min"] == 5 and grouped.packing["cat_min"] == 0
    words = grouped.rows.reshape(-1, 2)
    shift = grouped.packing["shift"]
    assert shift == 2  # 4 keys in one partition
    assert words[:, 0].tolist() == _WORDS
    assert words[:, 1].view(np.float64).tolist() == [2.0, 4.0, -3.125, 5.0, 6.0, 1.0]
    _assert_same(got, want)
    assert got["key"].tolist() == [100, 102, 103]  # 101 only refunded
    assert grouped.no_purchase == 1


def _tight_rows(grouped: Any) -> tuple[list[int], list[int]]:
    """(words, amount codes) of 12-byte rows."""
    raw = grouped.rows.view(np.uint8)[: 12 * len(_IDS)].reshape(-1, 12)
    words = raw[:, :8].copy().view("<u8").ravel().tolist()
    codes = raw[:, 8:].copy().view("<u4").ravel().tolist()
    return words, codes


def test_whole_cents_are_packed_in_12_bytes_by_hand() -> None:
    """Cents -300..625: the negative code -300 becomes 299 (doubles below zero
    order by magnitude), the others 300 (the number of negative codes) + c."""
    amounts = np.array([1.0, 2.0, -3.0, 4.0, 5.5, 6.25])
    grouped, got, want = _both(_IDS, _DAYS, amounts, _CATS)
    assert grouped.packing["amount_kind"] == CENTS
    assert grouped.packing["amount_base"] == 300
    assert grouped.rows.nbytes == 72  # 6 rows of 12 bytes
    words, codes = _tight_rows(grouped)
    assert words == _WORDS
    assert codes == [500, 700, 299, 850, 925, 400]
    _assert_same(got, want)
    assert got["monetary_total"].tolist() == [6.0, 5.5, 7.25]


def test_same_day_amounts_keep_the_raw_bits_order() -> None:
    """One customer, one day, amounts -2, -1, +0, 1, 2: the 24-byte rows order
    them by their raw bits (-1 before -2), the codes must too, or the float
    sum would be taken in another order."""
    amounts = np.array([2.0, -2.0, 0.0, -1.0, 1.0, 0.1, 0.2, 0.3])
    ids = np.zeros(len(amounts), dtype=np.int64)
    days = np.zeros(len(amounts), dtype=np.int32)
    grouped, got, want = _both(ids, days, amounts)
    assert grouped.packing["amount_kind"] == CENTS
    _assert_same(got, want)


def test_integer_amounts_are_packed_in_12_bytes_by_hand() -> None:
    amounts = np.array([-7, 10, -7, 3, 2**32 - 8, 0], dtype=np.int64)  # span 2^32 - 1
    grouped, got, want = _both(_IDS, _DAYS, amounts, _CATS)
    assert grouped.packing["amount_kind"] == INT
    assert grouped.packing["amount_base"] == -7
    words, codes = _tight_rows(grouped)
    assert words == _WORDS
    assert codes == [17, 10, 0, 2**32 - 1, 7, 0]
    _assert_same(got, want)
    amounts[4] += 1  # span 2^32: 16-byte rows
    grouped, got, want = _both(_IDS, _DAYS, amounts, _CATS)
    assert grouped.packing["amount_kind"] == RAW
    _assert_same(got, want)


@pytest.mark.parametrize(
    ("top_cents", "kind"), [(UINT32_MAX - 1, CENTS), (UINT32_MAX, RAW)], ids=["fits", "over"]
)
def test_cent_codes_up_to_32_bits(top_cents: int, kind: int) -> None:
    """-0.01 takes code 0; the largest code is 1 + top_cents."""
    amounts = np.array([-0.01, top_cents / 100, 1.0, 2.5])
    ids = np.array([1, 1, 2, 2], dtype=np.int64)
    days = np.array([3, 4, 3, 9], dtype=np.int32)
    grouped, got, want = _both(ids, days, amounts)
    assert grouped.packing["amount_kind"] == kind
    _assert_same(got, want)


def test_ids_over_the_whole_int64_range_fall_back_to_24_byte_rows() -> None:
    """64 bits of key span leave no room for days 0..3: not packed, same numbers."""
    ids = np.array([INT64_MIN, INT64_MAX, 0, INT64_MIN, INT64_MAX], dtype=np.int64)
    days = np.array([0, 1, 2, 3, 3], dtype=np.int32)
    amounts = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    grouped, got, want = _both(ids, days, amounts)
    assert grouped.packing is None and grouped.rows.size == 3 * len(ids)
    _assert_same(got, want)
    assert got["key"].tolist() == [INT64_MIN, 0, INT64_MAX]


@pytest.mark.parametrize("cents", [True, False], ids=["12-byte", "16-byte"])
@pytest.mark.parametrize("kind", ["sparse", "consecutive", "ranks"])
def test_packed_on_two_threads_matches_one_thread_and_24_byte_rows(kind: str, cents: bool) -> None:
    """Enough rows (200k) for both threads to scatter and many partitions;
    sparse keys are hashed per partition, consecutive ids and ranks counted
    directly."""
    rng = np.random.default_rng(7)
    n = 200_000
    if kind == "sparse":
        ids = rng.integers(0, 2**40, 30_000)[rng.integers(0, 30_000, n)] * 977 - 2**50
    elif kind == "consecutive":
        ids = rng.integers(10**9, 10**9 + 30_000, n)
    else:
        ids = rng.integers(0, 30_000, n).astype(np.int32)
    days = rng.integers(18_000, 19_500, n).astype(np.int32)
    amounts = rng.normal(50, 30, n)
    if cents:
        amounts = np.round(amounts, 2)
    cats = rng.integers(0, 5, n).astype(np.int32)
    cuts = [50_000, 50_001, 130_000]
    results = []
    for threads in (1, 2):
        grouped, got, want = _both(ids, days, amounts, cats, threads=threads, cuts=cuts,
                                   consume=True)  # fmt: skip
        assert grouped.packing is not None
        assert grouped.packing["amount_kind"] == (CENTS if cents else RAW)
        _assert_same(got, want)
        results.append(got)
    _assert_same(results[1], results[0])


def test_occasions_refuse_packed_rows() -> None:
    ids = np.array([1, 2], dtype=np.int64)
    grouped = _grouped(ids, np.array([3, 4], np.int32), np.array([1.0, 2.0]), None,
                       packed=True)  # fmt: skip
    assert grouped.packing is not None
    with pytest.raises(ValueError, match="without packed"):
        K.occasions(grouped, np.array([0, 1, 2], np.int64), False, 1)


# ---------------------------------------------------------------------------
# money of whole-cent amounts: summed in cents, exactly, in every row layout
# ---------------------------------------------------------------------------


def _exact_money(ids: np.ndarray, amounts: np.ndarray) -> dict[int, tuple[float, float]]:
    """Per id: (sum, refund sum) of the amounts as exact decimals, rounded once."""
    sums: dict[int, list[int]] = {}
    for key, value in zip(ids.tolist(), amounts.tolist(), strict=True):
        cents = round(value * 100)
        total = sums.setdefault(key, [0, 0])
        total[0] += cents
        total[1] += -cents if cents < 0 else 0
    return {k: (float(Fraction(m, 100)), float(Fraction(r, 100))) for k, (m, r) in sums.items()}


def _float_money(ids: np.ndarray, days: np.ndarray, amounts: np.ndarray) -> dict[int, float]:
    """Per id: the double sum of its amounts in (day, raw bits) order."""
    order = sorted(
        range(len(ids)), key=lambda i: (ids[i], days[i], amounts[i : i + 1].view(np.int64)[0])
    )
    sums: dict[int, float] = {}
    for i in order:
        sums[int(ids[i])] = sums.get(int(ids[i]), 0.0) + float(amounts[i])
    return sums


@pytest.mark.parametrize(
    ("layout", "scale"),
    [("12-byte", 1.0), ("16-byte", 1e9), ("24-byte", 1.0)],
)
def test_whole_cents_are_summed_exactly_in_every_layout(layout: str, scale: float) -> None:
    """0.1 + 0.2 is 0.3 whatever the layout: 12-byte rows (cent codes), 16-byte
    rows (codes beyond 32 bits: amounts up to 10^11) and 24-byte rows (ids
    over the whole int64 range)."""
    rng = np.random.default_rng(5)
    n = 5_000
    pool = (
        np.array([INT64_MIN, -1, 0, INT64_MAX])
        if layout == "24-byte" else rng.integers(0, 2**40, 300)
    )  # fmt: skip
    ids = pool[rng.integers(0, len(pool), n)].astype(np.int64)
    days = rng.integers(19_000, 19_400, n).astype(np.int32)
    cents = rng.integers(-2_000, 50_000, n)
    amounts = np.round(cents * scale) / 100
    ids[:3] = ids[3]
    amounts[:3] = [0.1, 0.2, -0.3]  # not 0.0 in doubles whatever the order
    grouped, got, want = _both(ids, days, amounts)
    assert grouped.cents
    kind = None if grouped.packing is None else grouped.packing["amount_kind"]
    assert kind == {"12-byte": CENTS, "16-byte": RAW, "24-byte": None}[layout]
    _assert_same(got, want)
    exact = _exact_money(ids, amounts)
    assert got["monetary_total"].tolist() == [exact[k][0] for k in got["key"].tolist()]
    assert got["refund_total"].tolist() == [exact[k][1] for k in got["key"].tolist()]


def test_one_amount_not_in_cents_keeps_double_sums() -> None:
    ids = np.array([1, 1, 1, 2, 2], dtype=np.int64)
    days = np.array([3, 4, 5, 3, 3], dtype=np.int32)
    amounts = np.array([0.1, 0.2, 0.3, 1.005, 2.0])
    grouped, got, want = _both(ids, days, amounts)
    assert not grouped.cents and grouped.packing["amount_kind"] == RAW
    _assert_same(got, want)
    assert got["monetary_total"].tolist() == [0.1 + 0.2 + 0.3, 1.005 + 2.0]
    assert got["monetary_total"][0] != 0.6  # 0.6000000000000001


def test_cent_sums_past_2_to_the_53_are_summed_as_doubles() -> None:
    """Customer 1's cents pass 2^53 (exact integer cents would round twice):
    its sums are the double sums in row order; customer 2 stays exact."""
    ids = np.array([1] * 1_000 + [2, 2], dtype=np.int64)
    days = np.arange(1_002, dtype=np.int32)
    amounts = np.array([9_999_999_999_999.99] * 1_000 + [0.1, 0.2])
    grouped, got, _ = _both(ids, days, amounts)
    assert grouped.cents
    doubles = _float_money(ids, days, amounts)
    assert got["monetary_total"].tolist() == [doubles[1], 0.3]


def test_a_score_sums_cents_exactly() -> None:
    import polars as pl

    from churn_engine import Scorer

    log = pl.DataFrame(
        {
            "customer_id": [7, 7, 7, 8],
            "ts": [dt.datetime(2026, 1, d) for d in (1, 2, 3, 4)],
            "amount": [0.1, 0.2, -0.05, 1.0],
        }
    )
    customers = Scorer().run(log).customers
    assert customers["monetary_total"].to_list() == [0.25, 1.0]
    assert customers["refund_total"].to_list() == [0.05, 0.0]


@pytest.mark.parametrize("huge", [-7e13, -1e15, -1e300, 7e13, 1e300, -(2.0**-1074)])
def test_amounts_past_the_cent_limit_keep_16_byte_rows(huge: float) -> None:
    """Amounts of 10^13 or more (and subnormals, never whole cents) are not
    coded: 16-byte rows and double sums (and no integer overflow in the
    vectorised check, which the sanitizer build would report)."""
    amounts = np.array([1.0, huge, 2.5, 0.25])
    ids = np.array([1, 1, 2, 2], dtype=np.int64)
    days = np.array([3, 4, 3, 9], dtype=np.int32)
    grouped, got, want = _both(ids, days, amounts)
    assert not grouped.cents and grouped.packing["amount_kind"] == RAW
    _assert_same(got, want)
