"""BG/NBD (`churn_engine.models.BetaGeo`): hand-computed values, parity with lifetimes.

lifetimes is in the ``test`` extra, so it is imported, never skipped. Its fitter
is the reference: the same data must give the same maximum-likelihood
parameters and log-likelihood, and its prediction formulas evaluated at *our*
parameters must give our predictions to rounding.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import churn_engine
from churn_engine import ConfigError, DataError, ModelError, SchemaError, _bgnbd
from churn_engine.models import BetaGeo

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter
    from lifetimes.datasets import load_cdnow_summary, load_dataset
    from lifetimes.utils import summary_data_from_transaction_data

NAMES = ("r", "alpha", "a", "b")
# the published CDNOW estimates (Fader, Hardie and Lee 2005, section 4)
CDNOW_PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_PAPER_LL = -9582.4


def lifetimes_ll(params: np.ndarray, x: np.ndarray, t: np.ndarray, T: np.ndarray) -> float:
    """lifetimes' own (unpenalised) log-likelihood, as a total, at ``params``."""
    mean_nll = BetaGeoFitter._negative_log_likelihood(np.log(params), x, t, T, np.ones_like(x), 0)
    return float(-mean_nll * x.size)


def lifetimes_at(params: dict[str, float]) -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(params)[list(NAMES)]
    return fitter


def model_at(params: dict[str, float]) -> BetaGeo:
    model = BetaGeo()
    model.params_ = dict(params)
    return model


def arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))


@pytest.fixture(scope="module")
def summaries() -> dict[str, pd.DataFrame]:
    """The classic CDNOW summary and lifetimes' summaries of the CDNOW master log."""
    out = {"cdnow_summary": load_cdnow_summary().set_index("ID")}
    log = load_dataset("CDNOW_master.txt", sep=r"\s+")
    log["date"] = pd.to_datetime(log["date"].astype(str), format="%Y%m%d")
    for freq in ("D", "W"):
        out[f"master_{freq}"] = summary_data_from_transaction_data(
            log, "customer_id", "date", observation_period_end="1998-06-30", freq=freq
        )
    return out


@pytest.fixture(scope="module")
def fits(summaries: dict[str, pd.DataFrame]) -> dict[str, tuple[BetaGeo, BetaGeoFitter]]:
    out = {}
    for name, summary in summaries.items():
        x, t, T = arrays(summary)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = BetaGeoFitter().fit(x, t, T)
        out[name] = (BetaGeo().fit(x, t, T), reference)
    return out


SUMMARY_NAMES = ["cdnow_summary", "master_D", "master_W"]
# horizon for expected purchases, in each summary's time unit (weeks, days, weeks)
HORIZONS = {"cdnow_summary": 39.0, "master_D": 90.0, "master_W": 13.0}


# ---------------------------------------------------------------- by hand


def test_log_likelihood_by_hand() -> None:
    # r = alpha = a = b = 1.
    # x = 0, T = 1: L = (alpha / (alpha + T))^r = 1/2.
    # x = 1, t = 1, T = 2: L = B(1,2)/B(1,1) · 1/3² + B(2,1)/B(1,1) · 1/2² = 1/18 + 1/8 = 13/72.
    ones = np.ones(4)
    for x, t, T, expected in [(0.0, 0.0, 1.0, 1 / 2), (1.0, 1.0, 2.0, 13 / 72)]:
        data = _bgnbd.Compressed.build(np.array([x]), np.array([t]), np.array([T]), np.ones(1))
        ll, _ = _bgnbd.log_likelihood_and_grad(ones, data)
        assert ll == pytest.approx(math.log(expected), rel=1e-14)
    # both customers together, the first counted 3 times
    data = _bgnbd.Compressed.build(
        np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([3.0, 1.0])
    )
    ll, _ = _bgnbd.log_likelihood_and_grad(ones, data)
    assert ll == pytest.approx(3 * math.log(1 / 2) + math.log(13 / 72), rel=1e-14)


def test_p_alive_by_hand() -> None:
    # x = 1, t = 1, T = 2: 1 / (1 + a/(b + x - 1) · ((alpha + T)/(alpha + t))^(r + x))
    # = 1 / (1 + (3/2)²) = 4/13; no repeat purchase: 1.
    model = model_at({"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})
    got = model.p_alive([1, 0], [1.0, 0.0], 2.0)
    np.testing.assert_allclose(got, [4 / 13, 1.0], rtol=1e-14)


def test_expected_purchases_by_hand() -> None:
    # r = 1, alpha = 1, a = 2, b = 1; 2F1(1, 1; 2; z) = -ln(1 - z) / z.
    model = model_at({"r": 1.0, "alpha": 1.0, "a": 2.0, "b": 1.0})
    # new customer, t = 1: (a+b-1)/(a-1) · (1 - (1/2) · 2F1(1,1;2;1/2)) = 2 (1 - ln 2)
    assert model.expected_purchases_new(1.0)[0] == pytest.approx(2 * (1 - math.log(2)), rel=1e-12)
    # x = 0, T = 1, next t = 1: 2 · (1 - (2/3) · 2F1(1,1;2;1/3)) = 2 - 4 ln(3/2)
    got = model.expected_purchases(1.0, 0, 0.0, 1.0)
    assert got[0] == pytest.approx(2 - 4 * math.log(1.5), rel=1e-12)
    # (lifetimes returns NaN here: it multiplies a/(b + x - 1) = 1/0 by [x > 0] = 0)
    with np.errstate(all="ignore"):
        theirs = lifetimes_at(model.params_).conditional_expected_number_of_purchases_up_to_time(
            1.0, np.array([0.0]), np.array([0.0]), np.array([1.0])
        )
    assert np.isnan(theirs[0])
    # a zero horizon expects nothing
    np.testing.assert_allclose(model.expected_purchases(0.0, [0, 3], [0.0, 2.0], 5.0), 0.0)


# ------------------------------------------------------- parity: CDNOW data


def test_cdnow_summary_matches_published_estimates(fits) -> None:
    model, _ = fits["cdnow_summary"]
    for name in NAMES:
        assert model.params_[name] == pytest.approx(CDNOW_PAPER[name], abs=1e-3)
    assert model.log_likelihood_ == pytest.approx(CDNOW_PAPER_LL, abs=0.05)
    assert model.n_customers_ == 2357


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_fit_matches_lifetimes(name, summaries, fits) -> None:
    model, reference = fits[name]
    x, t, T = arrays(summaries[name])
    ours = np.array([model.params_[p] for p in NAMES])
    theirs = reference.params_[list(NAMES)].to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    # both are MLEs: ours must be at least as likely, judged by lifetimes' own formula
    assert lifetimes_ll(ours, x, t, T) >= lifetimes_ll(theirs, x, t, T) - 1e-6
    assert model.log_likelihood_ == pytest.approx(lifetimes_ll(ours, x, t, T), rel=1e-12)


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_predictions_match_lifetimes_formulas(name, summaries, fits) -> None:
    model, _ = fits[name]
    reference = lifetimes_at(model.params_)
    x, t, T = arrays(summaries[name])
    horizon = HORIZONS[name]
    np.testing.assert_allclose(
        model.p_alive(x, t, T),
        reference.conditional_probability_alive(x, t, T),
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        model.expected_purchases(horizon, x, t, T),
        reference.conditional_expected_number_of_purchases_up_to_time(horizon, x, t, T),
        rtol=1e-10,
        atol=1e-14,
    )
    horizons = np.array([0.0, 1.0, horizon, 10 * horizon])
    np.testing.assert_allclose(
        model.expected_purchases_new(horizons),
        reference.expected_number_of_purchases_up_to_time(horizons),
        rtol=1e-12,
    )


def test_expected_purchases_of_heavy_buyers(fits) -> None:
    # 2F1 overflows for x >= ~300 over a long horizon; both implementations then
    # switch to Euler's transformation
    model, _ = fits["master_D"]
    x = np.array([30.0, 300.0, 500.0, 1000.0])
    t, T, horizon = np.full(4, 100.0), np.full(4, 100.0), 5000.0
    with np.errstate(all="ignore"):
        theirs = lifetimes_at(model.params_).conditional_expected_number_of_purchases_up_to_time(
            horizon, x, t, T
        )
    ours = model.expected_purchases(horizon, x, t, T)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    # bought at the very end: the more past purchases, the more expected
    assert np.all(np.diff(ours) > 0)


def test_penalized_fit_matches_lifetimes(summaries) -> None:
    x, t, T = arrays(summaries["cdnow_summary"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = BetaGeoFitter(penalizer_coef=0.1).fit(x, t, T)
    model = BetaGeo(penalizer_coef=0.1).fit(x, t, T)
    np.testing.assert_allclose(
        [model.params_[p] for p in NAMES], reference.params_[list(NAMES)], rtol=1e-3
    )
    unpenalized = BetaGeo().fit(x, t, T)
    assert model.log_likelihood_ < unpenalized.log_likelihood_


def test_fit_summary_and_predict_from_polars(summaries, fits) -> None:
    summary = pl.from_pandas(summaries["master_W"].reset_index())
    model = BetaGeo().fit_summary(summary)
    assert model.params_ == pytest.approx(fits["master_W"][0].params_, rel=1e-9)
    shuffled = summary.sample(fraction=1.0, shuffle=True, seed=3)
    predicted = model.predict(shuffled, horizon=13.0)
    assert predicted.columns == ["customer_id", "p_alive", "expected_purchases"]
    assert predicted["customer_id"].to_list() == shuffled["customer_id"].to_list()
    x, t, T = (shuffled[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_array_equal(predicted["p_alive"].to_numpy(), model.p_alive(x, t, T))
    np.testing.assert_array_equal(
        predicted["expected_purchases"].to_numpy(), model.expected_purchases(13.0, x, t, T)
    )
    # a LazyFrame and lifetimes' pandas summary (ids in the index) give the same frame
    assert model.predict(shuffled.lazy(), horizon=13.0).equals(predicted)
    from_pandas = model.predict(summaries["master_W"], horizon=13.0)
    assert from_pandas.sort("customer_id").equals(predicted.sort("customer_id"))
    # without an id column: only the predictions
    assert model.predict(shuffled.drop("customer_id"), 13.0).columns == [
        "p_alive",
        "expected_purchases",
    ]


# ----------------------------------------------------- optimiser and data


def test_gradient_matches_finite_differences(summaries) -> None:
    x, t, T = arrays(summaries["master_D"])
    data = _bgnbd.Compressed.build(x, t, T, np.ones_like(x)).scaled(1 / T.max())
    for log_params in ([0.1, 0.1, 0.1, 0.1], [-1.3, -2.5, -0.7, 0.75], [0.5, 1.0, 1.5, -0.5]):
        point = np.array(log_params)
        for penalizer in (0.0, 0.3):
            _, grad = _bgnbd.objective(point, data, penalizer)
            step = 1e-6
            numeric = [
                (
                    _bgnbd.objective(point + step * e, data, penalizer)[0]
                    - _bgnbd.objective(point - step * e, data, penalizer)[0]
                )
                / (2 * step)
                for e in np.eye(4)
            ]
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_weights_equal_repeated_rows_and_order_does_not_matter(summaries) -> None:
    x, t, T = arrays(summaries["cdnow_summary"])
    counts = np.random.default_rng(0).integers(1, 4, x.size)
    weighted = BetaGeo().fit(x, t, T, weights=counts)
    repeated = BetaGeo().fit(np.repeat(x, counts), np.repeat(t, counts), np.repeat(T, counts))
    assert weighted.params_ == pytest.approx(repeated.params_, rel=1e-9)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)
    assert weighted.n_customers_ == repeated.n_customers_ == counts.sum()
    order = np.random.default_rng(1).permutation(x.size)
    shuffled = BetaGeo().fit(x[order], t[order], T[order])
    assert shuffled.params_ == pytest.approx(BetaGeo().fit(x, t, T).params_, rel=1e-12)


def test_time_unit_only_rescales_alpha(summaries) -> None:
    # weeks -> days: r, a, b unchanged, alpha x 7; each x > 0 customer's density in
    # recency is divided by 7, so the log-likelihood drops by sum(x) ln 7.
    x, t, T = arrays(summaries["cdnow_summary"])
    weeks = BetaGeo().fit(x, t, T)
    days = BetaGeo().fit(x, 7 * t, 7 * T)
    for name in ("r", "a", "b"):
        assert days.params_[name] == pytest.approx(weeks.params_[name], rel=1e-5)
    assert days.params_["alpha"] == pytest.approx(7 * weeks.params_["alpha"], rel=1e-5)
    assert days.log_likelihood_ == pytest.approx(
        weeks.log_likelihood_ - x.sum() * math.log(7), rel=1e-9
    )


def test_initial_params(summaries, fits) -> None:
    x, t, T = arrays(summaries["cdnow_summary"])
    target = fits["cdnow_summary"][0].params_
    start = {"r": 1.0, "alpha": 10.0, "a": 1.0, "b": 1.0}
    for initial in (start, list(start.values())):
        model = BetaGeo().fit(x, t, T, initial_params=initial)
        assert model.params_ == pytest.approx(target, rel=1e-3)
    for bad in ({"r": 1.0}, [1.0, 2.0], [1.0, -1.0, 1.0, 1.0], ["x", 1, 1, 1]):
        with pytest.raises(ConfigError, match="initial_params"):
            BetaGeo().fit(x, t, T, initial_params=bad)


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(11)
    true = {"r": 0.5, "alpha": 20.0, "a": 0.7, "b": 3.0}
    T = rng.uniform(30, 400, 40_000)
    x, t = _bgnbd.simulate(np.array(list(true.values())), T, rng)
    model = BetaGeo().fit(x, t, T)
    for name, value in true.items():
        assert model.params_[name] == pytest.approx(value, rel=0.15)


def test_non_convergence_is_a_model_error() -> None:
    # every customer bought again right at the end: the likelihood has no maximum
    with pytest.raises(ModelError, match="did not converge"):
        BetaGeo().fit([1, 2], [1.0, 2.0], [3.0, 3.0])


# ---------------------------------------- parity on arbitrary small inputs


@st.composite
def customers(draw, max_size: int = 12):
    n = draw(st.integers(1, max_size))
    T = np.array(draw(st.lists(st.floats(0.5, 100.0), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)), dtype=np.float64)
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    t = np.where(x > 0, share * T, 0.0)
    return x, t, T


# a = 1 is a 0/0 point of equations (9)-(10) in both implementations, and with
# b = 1 lifetimes' conditional expectation is NaN for x = 0 (0 · a/0, see
# test_expected_purchases_by_hand for ours), so both are left out here.
params_strategy = st.tuples(
    *(st.floats(math.log(0.02), math.log(50.0)).map(math.exp) for _ in range(4))
).filter(lambda p: p[2] != 1.0 and p[3] != 1.0)


@given(customers(), params_strategy, st.floats(0.0, 200.0))
def test_formulas_equal_lifetimes(data, params, horizon) -> None:
    x, t, T = data
    p = dict(zip(NAMES, params, strict=True))
    reference = lifetimes_at(p)
    model = model_at(p)
    compressed = _bgnbd.Compressed.build(x, t, T, np.ones_like(x))
    ll, _ = _bgnbd.log_likelihood_and_grad(np.array(params), compressed)
    assert ll == pytest.approx(lifetimes_ll(np.array(params), x, t, T), rel=1e-10, abs=1e-9)
    np.testing.assert_allclose(
        model.p_alive(x, t, T), reference.conditional_probability_alive(x, t, T), rtol=1e-12
    )
    with np.errstate(all="ignore"):
        expected = reference.conditional_expected_number_of_purchases_up_to_time(horizon, x, t, T)
        ours = model.expected_purchases(horizon, x, t, T)
    np.testing.assert_allclose(ours, expected, rtol=1e-8, atol=1e-12)


@given(customers(), st.lists(st.integers(0, 3), min_size=12, max_size=12), params_strategy)
def test_weights_equal_repeated_rows_in_the_likelihood(data, counts, params) -> None:
    x, t, T = data
    w = np.array(counts[: x.size], dtype=np.float64)
    if w.sum() == 0:
        w[0] = 1.0
    k = w.astype(int)
    weighted = _bgnbd.Compressed.build(x, t, T, w)
    repeated = _bgnbd.Compressed.build(
        np.repeat(x, k), np.repeat(t, k), np.repeat(T, k), np.ones(k.sum())
    )
    p = np.array(params)
    ll_w, grad_w = _bgnbd.log_likelihood_and_grad(p, weighted)
    ll_r, grad_r = _bgnbd.log_likelihood_and_grad(p, repeated)
    assert ll_w == pytest.approx(ll_r, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad_w, grad_r, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "column", "reason", "shown"),
    [
        ([0, 1, 2], [0.0, 1.0], [5.0, 5.0, 5.0], None, "length_mismatch", "different lengths"),
        ([0, 1, 2], [0.0, float("nan"), 1.0], 5.0, "recency", "not_finite", "row 1"),
        ([0, 1, 2], [0.0, 1.0, 1.0], [5.0, 5.0, math.inf], "T", "not_finite", "row 2"),
        ([0, -1, 2], [0.0, 1.0, 1.0], 5.0, "frequency", "negative_frequency", "frequency=-1.0"),
        ([0, 1.5, 2], [0.0, 1.0, 1.0], 5.0, "frequency", "frequency_not_integer", "=1.5"),
        ([0, 1, 2], [0.0, 1.0, 1.0], [5.0, 0.0, 5.0], "T", "non_positive_T", "row 1 has T=0.0"),
        ([0, 1, 2], [0.0, 1.0, -1.0], 5.0, "recency", "negative_recency", "row 2"),
        ([0, 1, 2], [0.0, 6.0, 1.0], 5.0, "recency", "recency_after_T", "recency=6.0, T=5.0"),
        ([0, 1, 0], [0.0, 1.0, 2.0], 5.0, "recency", "recency_without_repeat", "row 2"),
    ],
)
def test_bad_values_name_the_argument_and_row(frequency, recency, T, column, reason, shown):
    with pytest.raises(DataError, match=shown) as info:
        BetaGeo().fit(frequency, recency, T)
    assert info.value.reason == reason
    assert info.value.column == column
    if column is not None:
        assert str(info.value).startswith(column)


def test_bad_inputs_of_other_kinds() -> None:
    with pytest.raises(DataError, match="frequency must be finite") as info:
        BetaGeo().fit(pl.Series([0, None, 1]), [0.0, 0.0, 1.0], 5.0)
    assert info.value.row == 1
    with pytest.raises(SchemaError, match="recency must be numeric"):
        BetaGeo().fit([0, 1], pl.Series(["0", "1"]), 5.0)
    with pytest.raises(SchemaError, match="T must be numeric"):
        BetaGeo().fit([0, 1], [0.0, 1.0], pd.Series(["5", "5"]))
    with pytest.raises(DataError, match="weights must be >= 0: row 1"):
        BetaGeo().fit([0, 1], [0.0, 1.0], 5.0, weights=[1.0, -2.0])
    with pytest.raises(DataError, match="no customers"):
        BetaGeo().fit([], [], [])
    with pytest.raises(DataError, match="no customers"):
        BetaGeo().fit([0, 1], [0.0, 1.0], 5.0, weights=[0, 0])
    with pytest.raises(ConfigError, match="penalizer_coef"):
        BetaGeo(penalizer_coef=-1.0)
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['T'\]"):
        BetaGeo().fit_summary(pl.DataFrame({"frequency": [1], "recency": [1.0]}))
    with pytest.raises(ModelError, match="not fitted"):
        BetaGeo().p_alive(1, 1.0, 2.0)
    model = model_at({"r": 1.0, "alpha": 1.0, "a": 2.0, "b": 1.0})
    with pytest.raises(DataError, match="t must be >= 0"):
        model.expected_purchases(-1.0, 1, 1.0, 2.0)
    with pytest.raises(DataError, match="t must be >= 0"):
        model.expected_purchases_new([1.0, -1.0])
    summary = pl.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]})
    with pytest.raises(ConfigError, match="horizon"):
        model.predict(summary, horizon=-1.0)
    with pytest.raises(DataError, match="recency must be <= T"):
        model.p_alive(1, 3.0, 2.0)


def test_pandas_and_numpy_inputs_agree(summaries, fits) -> None:
    summary = summaries["cdnow_summary"]
    model = fits["cdnow_summary"][0]
    x, t, T = arrays(summary)
    from_pandas = model.p_alive(summary["frequency"], summary["recency"], summary["T"])
    from_polars = model.p_alive(*(pl.Series(a) for a in (x, t, T)))
    np.testing.assert_array_equal(from_pandas, model.p_alive(x, t, T))
    np.testing.assert_array_equal(from_polars, model.p_alive(x, t, T))


# ------------------------------------------------------------ packaging


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(churn_engine.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )


def test_scipy_is_optional() -> None:
    result = _run_python(
        "import sys; import churn_engine; assert 'scipy' not in sys.modules, 'scipy imported'\n"
        "sys.modules['scipy'] = None\n"
        "try:\n"
        "    import churn_engine.models\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "churn-engine[models]"' in result.stdout
