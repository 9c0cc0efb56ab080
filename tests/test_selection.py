"""Order statistics of the kernel (issue #4): the RFM cut points of
``quantile_cuts`` and the medians of ``category_priors``, both by radix
selection on order-preserving keys (csrc/churn_sort.c), against NumPy.

- hand examples: ties, n = 1 and 2, negatives, ``negate`` (R's cuts of
  -recency_days), -0.0 and 0.0 (zero comes back
  as +0.0), subnormals, infinities, the largest doubles, int64 at its limits,
  NaN (every cut NaN and a NaN median, as numpy.quantile / numpy.median);
- sizes at the C code's thresholds (<= 64 keys are sorted; from 65_536 keys
  the passes run on several threads and doubles are counted by their top 16
  bits without a range pass first);
- hypothesis: adversarial floats (heavy ties, few distinct values, values a
  few ulps apart, many keys sharing their top digits so the selection goes
  round after round), int64 over its whole range, 1 and 2 threads giving the
  same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churn_engine import _kernel as K

INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
BIG = np.finfo(np.float64).max
TINY = 5e-324  # the smallest subnormal
# the sizes where the C code changes path
THRESHOLDS = [1, 2, 63, 64, 65, 65_535, 65_536, 65_537]


def lower_cuts(values: np.ndarray, bins: int) -> np.ndarray:
    """The reference: numpy's "lower" quantiles, checked against the sorted
    values at index ((n - 1) * i) // bins."""
    n = len(values)
    ordered = np.sort(values)[[((n - 1) * i) // bins for i in range(1, bins)]]
    expected = np.quantile(values, np.arange(1, bins) / bins, method="lower")
    np.testing.assert_array_equal(expected, ordered)
    return ordered.astype(np.float64)


def median(values: np.ndarray) -> float:
    with np.errstate(all="ignore"):  # the two middle values may overflow, as in numpy
        return float(np.median(values))


def assert_cuts(values: np.ndarray, bins: int) -> np.ndarray:
    before = values.copy()
    got = K.quantile_cuts(values, bins, 1)
    np.testing.assert_array_equal(got, lower_cuts(values, bins))
    assert not np.signbit(got[got == 0]).any(), got  # zero is +0.0
    # the same bits on two threads, and the input is left as it was
    np.testing.assert_array_equal(
        K.quantile_cuts(values, bins, 2).view(np.int64), got.view(np.int64)
    )
    # negate: the cuts of -values (R on -recency_days) without that array;
    # int64 go through float64, which keeps their order, so no -INT64_MIN
    negated = K.quantile_cuts(values, bins, 2, negate=True)
    np.testing.assert_array_equal(negated, lower_cuts(-values.astype(np.float64), bins))
    assert not np.signbit(negated[negated == 0]).any(), negated
    np.testing.assert_array_equal(values, before)
    return got


# ---------------------------------------------------------------------------
# quantile_cuts: hand examples
# ---------------------------------------------------------------------------


def test_cuts_by_hand() -> None:
    # n = 3, bins = 2: index (2 * 1) // 2 = 1 of [1, 2, 3]
    assert K.quantile_cuts(np.array([3.0, 1.0, 2.0]), 2).tolist() == [2.0]
    # n = 1: every cut is the value
    assert K.quantile_cuts(np.array([5.5]), 5).tolist() == [5.5] * 4
    # n = 2: indices (1 * i) // 5 = 0 for i = 1..4: the smaller value
    assert K.quantile_cuts(np.array([2.0, -1.0]), 5).tolist() == [-1.0] * 4
    # ties: [1, 1, 1, 2, 2, 9], bins = 3: indices 5 // 3 = 1 and 10 // 3 = 3
    assert K.quantile_cuts(np.array([2.0, 1.0, 9.0, 1.0, 2.0, 1.0]), 3).tolist() == [1.0, 2.0]
    # negatives: [-7.5, -3, -2.25, 0.5, 4], bins = 4: indices 1, 2, 3
    got = K.quantile_cuts(np.array([0.5, -3.0, 4.0, -7.5, -2.25]), 4)
    assert got.tolist() == [-3.0, -2.25, 0.5]
    # integers of a small span: [1, 2, 2, 3, 5], bins = 4: indices 1, 2, 3
    assert K.quantile_cuts(np.array([3, 1, 2, 2, 5]), 4).tolist() == [2.0, 2.0, 3.0]
    # negate: the cuts of [-5, -3, -2, -2, -1], indices 1, 2, 3
    got = K.quantile_cuts(np.array([3, 1, 2, 2, 5]), 4, negate=True)
    assert got.tolist() == [-3.0, -2.0, -2.0]


def test_cuts_of_signed_zeros_are_positive_zero() -> None:
    """-0.0 and 0.0 are one value; a zero cut is always +0.0, whatever the
    order or sign of the zeros in the input."""
    for values in ([-0.0, -0.0, -0.0], [0.0, -0.0, -0.0], [-0.0, 1.0, -0.0, -1.0, 0.0]):
        got = K.quantile_cuts(np.array(values), 2)
        assert got.tolist() == [0.0]
        assert not np.signbit(got).any()
    big = np.where(np.arange(100_000) % 3 == 0, 0.0, -0.0)  # the top-digit path
    got = K.quantile_cuts(big, 5, 2)
    assert got.tolist() == [0.0] * 4
    assert not np.signbit(got).any()


def test_cuts_of_extreme_floats() -> None:
    # [-5e-324, 0, 5e-324, 1e-310], bins = 4: indices 0, 1, 2
    got = K.quantile_cuts(np.array([1e-310, TINY, 0.0, -TINY]), 4)
    assert got.tolist() == [-TINY, 0.0, TINY]
    # [-max, -1, 1e-300, max] and [-inf, 0, inf], bins = 2: index 1
    assert K.quantile_cuts(np.array([BIG, -BIG, 1e-300, -1.0]), 2).tolist() == [-1.0]
    assert K.quantile_cuts(np.array([np.inf, 0.0, -np.inf]), 2).tolist() == [0.0]
    # bins = 3 on [-inf, -inf, inf]: indices 0 and 1
    assert K.quantile_cuts(np.array([np.inf, -np.inf, -np.inf]), 3).tolist() == [-np.inf] * 2


def test_cuts_of_int64_limits() -> None:
    values = np.array([INT64_MAX, 0, INT64_MIN, -1, 1], np.int64)
    # sorted [min, -1, 0, 1, max], bins = 4: indices 1, 2, 3
    assert K.quantile_cuts(values, 4).tolist() == [-1.0, 0.0, 1.0]
    assert K.quantile_cuts(values[[0, 2]], 2).tolist() == [float(INT64_MIN)]


@pytest.mark.parametrize("n", [1, 3, 64, 65, 65_536, 100_000])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_nan_makes_every_cut_nan(n: int, sign: float) -> None:
    """As numpy.quantile. The kernel never passes NaN (amounts are finite and
    a sum that overflows is an error), so this is a definition, not a path."""
    values = np.linspace(-1.0, 1.0, n)
    values[n // 2] = np.copysign(np.nan, sign)
    got = K.quantile_cuts(values, 5, 2)
    assert np.isnan(got).all()
    assert np.isnan(np.quantile(values, [0.2, 0.4, 0.6, 0.8], method="lower")).all()


def test_cuts_of_other_layouts() -> None:
    """Read-only, strided and int32 input give the same cuts (a contiguous
    float64 or int64 array is read in place)."""
    values = np.random.default_rng(2).normal(size=1_001)
    expected = lower_cuts(values, 5)
    read_only = values.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(K.quantile_cuts(read_only, 5), expected)
    doubled = np.repeat(values, 2)
    np.testing.assert_array_equal(K.quantile_cuts(doubled[::2], 5), expected)
    ints = np.arange(1_000, 0, -1, dtype=np.int32)
    np.testing.assert_array_equal(K.quantile_cuts(ints, 5), lower_cuts(ints, 5))


def test_cuts_of_one_or_no_bin() -> None:
    assert K.quantile_cuts(np.array([1.0, 2.0]), 1).tolist() == []
    with pytest.raises(ValueError, match="at least one value"):
        K.quantile_cuts(np.array([], dtype=np.int64), 5)


# ---------------------------------------------------------------------------
# quantile_cuts: every path of the C code, against numpy
# ---------------------------------------------------------------------------


def _shapes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ulp_steps = rng.integers(0, 1 << 12, size=n)
    return {
        "normal": rng.normal(size=n) * 1e3,
        "three values": rng.integers(0, 3, size=n).astype(np.float64),
        "one value": np.full(n, -7.25),
        "ascending": np.arange(n, dtype=np.float64),
        "mostly one": np.where(rng.random(n) < 0.9, 1.0, rng.normal(size=n)),
        # values 0..4095 ulps above 64.0: one top digit, so two more rounds
        "ulps apart": (np.float64(64.0).view(np.int64) + ulp_steps).view(np.float64),
        "both signs, ulps": np.where(rng.random(n) < 0.5, 1.0, -1.0)
        * (np.float64(1e-300).view(np.int64) + ulp_steps).view(np.float64),
        "specials": rng.choice(np.array([0.0, -0.0, TINY, -TINY, np.inf, -np.inf, BIG, -BIG]), n),
    }


@pytest.mark.parametrize("n", THRESHOLDS)
def test_cuts_at_the_thresholds(n: int) -> None:
    rng = np.random.default_rng(n)
    for kind, values in _shapes(n, rng).items():
        for bins in (2, 5, 9):
            try:
                assert_cuts(values, bins)
            except AssertionError as e:
                raise AssertionError(f"{kind} n={n} bins={bins}") from e


@pytest.mark.parametrize("n", THRESHOLDS)
def test_int64_cuts_at_the_thresholds(n: int) -> None:
    rng = np.random.default_rng(n)
    sets = {
        "full range": rng.integers(INT64_MIN, INT64_MAX, size=n, endpoint=True),
        "days": -rng.integers(0, 4_000, size=n),  # one count, no gather
        "orders": rng.geometric(0.4, size=n).astype(np.int64),
        "cents": rng.integers(0, 10**9, size=n),
        "one value": np.full(n, INT64_MIN),
        "clustered": rng.choice(np.array([INT64_MIN, -1, 0, 2**40, INT64_MAX]), n)
        + rng.integers(0, 3, size=n) * (rng.random(n) < 0.5),
    }
    for kind, values in sets.items():
        values = np.clip(values, INT64_MIN, INT64_MAX)
        for bins in (2, 5, 9):
            try:
                assert_cuts(values, bins)
            except AssertionError as e:
                raise AssertionError(f"{kind} n={n} bins={bins}") from e


@st.composite
def adversarial_floats(draw: st.DrawFn) -> np.ndarray:
    """Few distinct values with heavy ties, values a few ulps apart, or a mix,
    small or past the threshold where the top-digit path starts."""
    n = draw(st.one_of(st.integers(1, 300), st.integers(65_536, 90_000)), label="n")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    kind = draw(st.sampled_from(["pool", "ulps", "mixed"]), label="kind")
    pool = np.array(
        draw(st.lists(st.floats(allow_nan=False), min_size=1, max_size=6), label="pool"),
        dtype=np.float64,
    )
    weights = rng.random(len(pool)) ** 4  # heavy ties on one or two values
    ties = rng.choice(pool, size=n, p=weights / weights.sum())
    base = draw(st.floats(min_value=-1e300, max_value=1e300, allow_subnormal=True), label="base")
    span_bits = draw(st.integers(0, 44), label="span_bits")  # up to 2^44 ulps: some top digits
    ulps = (np.float64(base).view(np.int64) + rng.integers(0, 1 << span_bits, size=n)).view(
        np.float64
    )
    if kind == "pool":
        return ties
    if kind == "ulps":
        return ulps
    return np.where(rng.random(n) < 0.5, ties, ulps)


@given(adversarial_floats(), st.integers(2, 9))
def test_cuts_match_numpy(values: np.ndarray, bins: int) -> None:
    assert_cuts(values, bins)


@st.composite
def adversarial_ints(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.one_of(st.integers(1, 300), st.integers(65_536, 90_000)), label="n")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    centers = np.array(
        draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=1, max_size=6), label="centers"),
        dtype=np.int64,
    )
    spread = draw(st.integers(0, 62), label="spread_bits")
    offsets = rng.integers(0, 1 << spread, size=n, dtype=np.int64)
    values = rng.choice(centers, size=n)
    # center + offset, INT64_MAX where that would overflow (wrapped sums unused)
    return np.where(values > INT64_MAX - offsets, INT64_MAX, values + offsets)


@given(adversarial_ints(), st.integers(2, 9))
def test_int64_cuts_match_numpy(values: np.ndarray, bins: int) -> None:
    assert_cuts(values, bins)


# ---------------------------------------------------------------------------
# category_priors: medians
# ---------------------------------------------------------------------------


def test_priors_by_hand() -> None:
    cat = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4], np.int32)
    n_orders = np.array([2, 3, 1, 2, 2, 5, 2, 2, 1, 2], np.int64)
    mean = np.array([4.0, 10.0, np.nan, 1.0, 2.0, 3.0, -0.0, 9.0, np.nan, 8.0])
    fixed = np.array([np.nan, np.nan, np.nan, np.nan, 30.0])
    got = K.category_priors(cat, n_orders, mean, fixed, 1)
    # 0: median of [4, 10] = 7; 1: of [1, 2] = 1.5; 2: of [-0, 3, 9] = 3;
    # 3: no repeat buyer, NaN; 4: fixed 30 (its own values ignored)
    np.testing.assert_array_equal(got, [7.0, 1.5, 3.0, np.nan, 30.0])


def test_priors_of_one_category_and_extremes() -> None:
    one = np.zeros(4, np.int32)
    orders = np.array([2, 2, 2, 1], np.int64)
    # odd count of huge values: the middle one, not (v + v) / 2 = inf
    got = K.category_priors(
        one[:3], orders[:3], np.array([1e308, 1.7e308, BIG]), np.array([np.nan])
    )
    assert got.tolist() == [1.7e308]
    # a zero median is +0.0
    got = K.category_priors(one[:3], orders[:3], np.array([-0.0, -0.0, 5.0]), np.array([np.nan]))
    assert got.tolist() == [0.0] and not np.signbit(got[0])
    # a NaN among the values: NaN, as numpy.median
    got = K.category_priors(one, orders, np.array([1.0, np.nan, 3.0, 4.0]), np.array([np.nan]))
    assert np.isnan(got[0])
    # no groups, no categories
    empty = K.category_priors(one[:0], orders[:0], np.array([]), np.array([np.nan, 2.0]))
    np.testing.assert_array_equal(empty, [np.nan, 2.0])
    assert K.category_priors(one[:0], orders[:0], np.array([]), np.array([])).shape == (0,)


def _expected_priors(
    cat: np.ndarray, n_orders: np.ndarray, mean: np.ndarray, n_cats: int
) -> list[float]:
    out = []
    for c in range(n_cats):
        values = mean[(cat == c) & (n_orders >= 2)]
        out.append(median(values) if len(values) else np.nan)
    return out


@pytest.mark.parametrize("n", [*THRESHOLDS, 200_001])
def test_priors_at_the_thresholds(n: int) -> None:
    rng = np.random.default_rng(n)
    for n_cats in (1, 3):
        cat = rng.integers(0, n_cats, size=n).astype(np.int32)
        n_orders = np.where(rng.random(n) < 0.5, 1, rng.integers(2, 9, size=n)).astype(np.int64)
        for kind, mean in _shapes(n, rng).items():
            mean = np.where(n_orders >= 2, mean, np.nan)
            expected = _expected_priors(cat, n_orders, mean, n_cats)
            for threads in (1, 2):
                got = K.category_priors(cat, n_orders, mean, np.full(n_cats, np.nan), threads)
                np.testing.assert_array_equal(got, expected, err_msg=f"{kind} n={n} cats={n_cats}")


@given(
    adversarial_floats(),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_priors_match_numpy(mean: np.ndarray, n_cats: int, seed: int) -> None:
    n = len(mean)
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, n_cats, size=n).astype(np.int32)
    n_orders = rng.integers(1, 4, size=n).astype(np.int64)
    fixed = np.full(n_cats, np.nan)
    got = K.category_priors(cat, n_orders, mean, fixed, 2)
    np.testing.assert_array_equal(got, _expected_priors(cat, n_orders, mean, n_cats))
    np.testing.assert_array_equal(
        K.category_priors(cat, n_orders, mean, fixed, 1).view(np.int64), got.view(np.int64)
    )
