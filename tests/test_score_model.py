"""``score(..., model="bgnbd")``: BG/NBD columns next to the cycle rule.

The score's daily summary is lifetimes' ``freq="D"`` summary (frequency =
n_orders - 1, recency = last - first day, T = as_of - first day), so on CDNOW
the columns must equal lifetimes' ``BetaGeoFitter`` fitted to lifetimes' own
summary of the same log.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_dataset
from lifetimes.utils import summary_data_from_transaction_data

import churn_engine
from churn_engine import ConfigError, ModelError, ScoreConfig
from churn_engine.models import BetaGeo


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = load_dataset("CDNOW_master.txt", sep=r"\s+")
    frame["date"] = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d")
    return frame


def test_cdnow_matches_lifetimes(cdnow: pd.DataFrame) -> None:
    log = pl.from_pandas(cdnow).select(
        "customer_id", pl.col("date").cast(pl.Date).alias("ts"), amount="dollar_value"
    )
    scored = churn_engine.score(log, as_of="1998-06-30", model="bgnbd", model_horizon_days=90)
    summary = summary_data_from_transaction_data(
        cdnow, "customer_id", "date", "dollar_value", observation_period_end="1998-06-30", freq="D"
    )
    fitter = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    assert scored["customer_id"].to_list() == summary.index.to_list()
    np.testing.assert_allclose(
        scored["p_alive"], fitter.conditional_probability_alive(f, r, t), rtol=1e-7
    )
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(90, f, r, t)
    np.testing.assert_allclose(scored["expected_purchases"], expected, rtol=1e-6)


def test_first_purchase_on_the_as_of_day_is_alive() -> None:
    """Customer 3 first bought on the as_of day (T = 0): no information for the
    fit; alive, and expecting what a new customer expects."""
    d = dt.date
    log = pl.DataFrame({
        "customer_id": [1, 1, 1, 2, 2, 3, 4, 5, 5],
        "ts": [d(2024, 1, 1), d(2024, 2, 1), d(2024, 3, 1), d(2024, 1, 10), d(2024, 5, 1),
               d(2024, 6, 30), d(2024, 2, 2), d(2024, 3, 3), d(2024, 4, 4)],
        "amount": [1.0] * 9,
    })  # fmt: skip
    scored = churn_engine.score(log, as_of="2024-06-30", model="bgnbd", model_horizon_days=30)
    first = np.array([(v - d(1970, 1, 1)).days for v in scored["first_purchase"]], float)
    last = np.array([(v - d(1970, 1, 1)).days for v in scored["last_purchase"]], float)
    age = (d(2024, 6, 30) - d(1970, 1, 1)).days - first
    frequency = scored["n_orders"].to_numpy() - 1.0
    seen = age > 0
    model = BetaGeo().fit(frequency[seen], (last - first)[seen], age[seen])
    row = scored["customer_id"].to_list().index(3)
    assert scored["p_alive"][row] == 1.0
    assert scored["expected_purchases"][row] == pytest.approx(model.expected_purchases_new(30))
    others = [i for i in range(scored.height) if i != row]
    np.testing.assert_allclose(
        scored["p_alive"].to_numpy()[others],
        model.p_alive(frequency[seen], (last - first)[seen], age[seen]),
    )


def test_columns_are_typed_and_last() -> None:
    empty = pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Date, "amount": pl.Float64})
    frame = churn_engine.score(empty, model="bgnbd")
    assert frame.columns[-2:] == ["p_alive", "expected_purchases"]
    assert frame.schema["p_alive"] == pl.Float64
    assert "p_alive" not in churn_engine.score(empty).columns


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "pareto"}, "model must be None or 'bgnbd'"),
        ({"model_horizon_days": -1}, "model_horizon_days must be a finite number >= 0"),
        ({"model_penalizer": float("nan")}, "model_penalizer must be a finite number >= 0"),
        ({"model_penalizer": True}, "model_penalizer must be a finite number >= 0"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScoreConfig(**options)  # type: ignore[arg-type]


def test_no_convergence_names_the_option() -> None:
    """Everyone drops out at the same rate: the likelihood peaks at a, b -> inf."""
    from churn_engine._generate import generate_log

    log = generate_log(100_000, seed=1)
    with pytest.raises(ModelError, match=r"model_penalizer \(e\.g\. 0\.001\)"):
        churn_engine.score(log, model="bgnbd")
    scored = churn_engine.score(log, model="bgnbd", model_penalizer=0.001)
    assert scored["p_alive"].is_between(0, 1).all()


def test_without_scipy_the_option_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r'pip install "churn-engine\[models\]"'):
        ScoreConfig(model="bgnbd")


def test_cli_score_with_model(tmp_path, capsys) -> None:
    from churn_engine import cli
    from churn_engine._generate import generate_log
    from churn_engine._writers import write_atomic

    log, out = tmp_path / "log.parquet", tmp_path / "scores.parquet"
    write_atomic(generate_log(2_000, seed=2), log)
    argv = ["score", str(log), "-o", str(out), "-q", "--model", "bgnbd", "--model-penalizer",
            "0.001", "--model-horizon-days", "30"]  # fmt: skip
    assert cli.main(argv) == 0
    expected = churn_engine.score(str(log), model="bgnbd", model_penalizer=0.001,
                                  model_horizon_days=30)  # fmt: skip
    assert pl.read_parquet(out).equals(expected)
    assert cli.main([*argv[:-1], "-5"]) == 2
    assert "--model-horizon-days must be a finite number" in capsys.readouterr().err
