"""Options are validated once, with messages that say what to change."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import churn_engine as ce
from churn_engine.config import DEFAULT_SEGMENT_MAP, validate_segment_map


def test_default_segment_map_covers_every_code_once():
    owner = validate_segment_map(DEFAULT_SEGMENT_MAP, 5)
    assert len(owner) == 125
    assert sum(len(codes) for codes in DEFAULT_SEGMENT_MAP.values()) == 125


def test_segment_map_gap_is_refused():
    broken = {k: list(v) for k, v in DEFAULT_SEGMENT_MAP.items()}
    broken["Lost"].remove("111")
    with pytest.raises(ce.ConfigError, match=r"gaps: 1 codes unmapped \(111\)"):
        ce.ScoreConfig(segment_map=broken)


def test_segment_map_overlap_is_refused():
    broken = {k: list(v) for k, v in DEFAULT_SEGMENT_MAP.items()}
    broken["Lost"].append("555")
    with pytest.raises(ce.ConfigError, match=r"overlap: code '555' is in both 'Champions'"):
        ce.ScoreConfig(segment_map=broken)


def test_segment_map_code_outside_bins_is_refused():
    with pytest.raises(ce.ConfigError, match=r"'444' is not an RFM code for rfm_bins=3"):
        ce.ScoreConfig(rfm_bins=3, segment_map={"All": ["444"]})


def test_segment_map_for_other_bins():
    codes = [f"{r}{f}{m}" for r in (1, 2) for f in (1, 2) for m in (1, 2)]
    config = ce.ScoreConfig(rfm_bins=2, segment_map={"High R": codes[4:], "Low R": codes[:4]})
    frame = pl.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
            "amount": [1.0, 2.0],
        }
    )
    result = ce.Scorer(config).run(frame)
    assert result.customers.get_column("segment").to_list() == ["Low R", "High R"]


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"at_risk_cycles": 0}, r"at_risk_cycles must be finite and > 0"),
        ({"churn_cycles": float("nan")}, r"churn_cycles must be finite"),
        ({"at_risk_cycles": 3.0, "churn_cycles": 2.0}, r"must not exceed churn_cycles"),
        ({"horizon_days": 0}, r"horizon_days must be a positive whole number"),
        ({"horizon_days": 1.5}, r"horizon_days must be a positive whole number"),
        ({"prior_weight": -1}, r"prior_weight must be finite and >= 0"),
        ({"prior_days": 0}, r"prior_days must be finite and > 0"),
        ({"rfm_bins": 10}, r"rfm_bins must be between 2 and 9"),
        ({"rfm_bins": 1}, r"rfm_bins must be between 2 and 9"),
        ({"on_error": "ignore"}, r"on_error must be 'raise' or 'quarantine'"),
        ({"ts_unit": "days"}, r"ts_unit must be one of"),
        ({"customer_col": "ts"}, r"column names must differ"),
        ({"threads": 0}, r"threads must be a positive int"),
        ({"category_horizon_days": {"a": 30}}, r"need category_col"),
        ({"cuts": ce.RfmCuts((1.0,), (1.0,), (1.0,))}, r"cuts have 2 bins but rfm_bins is 5"),
    ],
)
def test_bad_options(options, pattern):
    with pytest.raises(ce.ConfigError, match=pattern):
        ce.ScoreConfig(**options)


def test_cuts_must_ascend():
    with pytest.raises(ce.ConfigError, match=r"RfmCuts.recency must be ascending"):
        ce.RfmCuts((2.0, 1.0), (1.0, 2.0), (1.0, 2.0))


def test_cuts_round_trip_through_dict():
    cuts = ce.RfmCuts((-30.0, -10.0), (1.0, 2.0), (5.0, 50.0))
    assert ce.RfmCuts.from_dict(cuts.to_dict()) == cuts
    # a dict is accepted in the config too
    assert ce.ScoreConfig(rfm_bins=3, cuts=cuts.to_dict()).cuts == cuts  # type: ignore[arg-type]


def test_scorer_takes_config_or_keywords_not_both():
    assert ce.Scorer(rfm_bins=4).config.rfm_bins == 4
    with pytest.raises(TypeError, match=r"either a ScoreConfig or keyword options"):
        ce.Scorer(ce.ScoreConfig(), rfm_bins=4)


def test_unknown_option_is_a_type_error():
    frame = pl.DataFrame({"customer_id": [1], "ts": [dt.date(2024, 1, 1)], "amount": [1.0]})
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'horizon'"):
        ce.score(frame, horizon=30)
