"""Suggested actions (docs/actions.md): the default table, the choice between a
status rule and a segment rule, validation of replacement tables, YAML/JSON
round trips and the ``action``/``action_reason`` columns. The engine against
the plain-Polars reference is in properties/test_actions_migration.py."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys
from typing import Any

import polars as pl
import pytest

import churn_engine
from churn_engine import Action, ActionTable, ConfigError, RfmCuts, ScoreConfig, cli
from churn_engine._schema import ACTION_COLUMNS, SCORE_COLUMNS
from churn_engine.config import DEFAULT_SEGMENT_MAP

yaml = pytest.importorskip("yaml")

AS_OF = dt.date(2024, 12, 31)

#: The default table, written out by hand: (buyer_type, status) -> key.
STATUS_KEYS = {
    ("one_time", "active"): "second_purchase_nudge",
    ("one_time", "at_risk"): "care_reminder",
    ("one_time", "churned"): "care_reminder_price_offer_traffic",
    ("repeat", "active"): "member_cross_sell",
    ("repeat", "at_risk"): "personal_care_member_benefits",
    ("repeat", "churned"): "personal_winback_member_benefits",
}
#: segment -> key
SEGMENT_KEYS = {
    "Champions": "tiered_membership_checkin_rewards",
    "Loyal": "tiered_membership_checkin_rewards",
    "Potential Loyalist": "membership_invite",
    "New Customers": "onboarding_second_purchase",
    "Promising": "engagement_traffic_offer",
    "Need Attention": "personal_recommendations",
    "About To Sleep": "reminder_popular_traffic",
    "At Risk": "personal_care_member_benefits",
    "Can't Lose Them": "personal_winback_member_benefits",
    "Hibernating": "reactivation_traffic_offer",
    "Lost": "low_cost_reactivation_only",
}


def plain_table(**overrides: Any) -> dict[str, Any]:
    """A valid table with key-only actions (default priorities)."""
    table: dict[str, Any] = {
        "status": {
            b: {s: f"{b}_{s}" for s in ("active", "at_risk", "churned")}
            for b in ("one_time", "repeat")
        },
        "segment": {name: f"seg_{i}" for i, name in enumerate(DEFAULT_SEGMENT_MAP)},
    }
    table.update(overrides)
    return table


# -- the default table and the choice of rule ---------------------------------


def test_default_table_covers_every_pair_and_segment() -> None:
    table = ActionTable.default()
    assert {k: a.key for k, a in table.status.items()} == STATUS_KEYS
    assert {k: a.key for k, a in table.segment.items()} == SEGMENT_KEYS
    for action in [*table.status.values(), *table.segment.values()]:
        assert action.description and action.channel
    # priorities: Lost guard 10, win-back status rules 20, segments 30, active status 40
    assert table.segment["Lost"].priority == 10
    assert {table.status[(b, s)].priority for b in ("one_time", "repeat")
            for s in ("at_risk", "churned")} == {20}  # fmt: skip
    assert {a.priority for n, a in table.segment.items() if n != "Lost"} == {30}
    assert {table.status[(b, "active")].priority for b in ("one_time", "repeat")} == {40}


@pytest.mark.parametrize("segment", list(SEGMENT_KEYS))
@pytest.mark.parametrize("buyer_type", ["one_time", "repeat"])
def test_active_customers_follow_their_segment(buyer_type: str, segment: str) -> None:
    # segment rule 30 (Lost 10) beats the active status rule 40
    action, reason = ActionTable.default().choose(buyer_type, "active", segment)
    assert (action.key, reason) == (SEGMENT_KEYS[segment], f"segment/{segment}")


@pytest.mark.parametrize("segment", [s for s in SEGMENT_KEYS if s != "Lost"])
@pytest.mark.parametrize("status", ["at_risk", "churned"])
@pytest.mark.parametrize("buyer_type", ["one_time", "repeat"])
def test_win_back_follows_buyer_type_and_status(buyer_type: str, status: str, segment: str) -> None:
    # the win-back status rule 20 beats every segment rule 30
    action, reason = ActionTable.default().choose(buyer_type, status, segment)
    assert action.key == STATUS_KEYS[(buyer_type, status)]
    assert reason == f"status/{buyer_type}/{status}"


@pytest.mark.parametrize("status", ["active", "at_risk", "churned"])
@pytest.mark.parametrize("buyer_type", ["one_time", "repeat"])
def test_lost_gets_low_cost_reactivation_whatever_the_status(buyer_type: str, status: str) -> None:
    action, reason = ActionTable.default().choose(buyer_type, status, "Lost")
    assert (action.key, reason) == ("low_cost_reactivation_only", "segment/Lost")


@pytest.mark.parametrize(("pair", "key"), list(STATUS_KEYS.items()))
def test_without_a_segment_the_status_rule_decides(pair: tuple[str, str], key: str) -> None:
    action, reason = ActionTable.default().choose(*pair, None)
    assert (action.key, reason) == (key, f"status/{pair[0]}/{pair[1]}")


def test_priority_tie_goes_to_the_status_rule() -> None:
    data = plain_table()
    data["status"]["repeat"]["at_risk"] = {"key": "by_status", "priority": 5}
    data["segment"]["Champions"] = {"key": "by_segment", "priority": 5}
    table = ActionTable.from_dict(data)
    assert table.choose("repeat", "at_risk", "Champions")[0].key == "by_status"
    data["segment"]["Champions"] = {"key": "by_segment", "priority": 4}
    table = ActionTable.from_dict(data)
    assert table.choose("repeat", "at_risk", "Champions") == (
        Action("by_segment", priority=4),
        "segment/Champions",
    )


def test_key_only_tables_get_the_default_priorities() -> None:
    # status win-back 20 < segment 30 < status active 40
    table = ActionTable.from_dict(plain_table())
    assert table.status[("one_time", "churned")] == Action("one_time_churned", priority=20)
    assert table.status[("repeat", "active")] == Action("repeat_active", priority=40)
    assert table.segment["Lost"] == Action("seg_10", priority=30)
    assert table.choose("repeat", "churned", "Lost")[0].key == "repeat_churned"
    assert table.choose("repeat", "active", "Lost")[0].key == "seg_10"


# -- hand-made log: every column chosen by hand --------------------------------


def day(recency: int) -> dt.date:
    return AS_OF - dt.timedelta(days=recency)


#: customer -> (recencies of the purchases, amount of each); prior_days = 30,
#: cuts fixed below, so status and R/F/M are worked out by hand in HAND.
PURCHASES: dict[str, tuple[list[int], float]] = {
    "A": ([50, 40, 30, 20, 10], 150.0),
    "B": ([5], 20.0),
    "C": ([400], 10.0),
    "D": ([400], 150.0),
    "E": ([60], 30.0),
    "F": ([110, 80, 50], 100.0),
    "G": ([200, 170, 140], 10.0),
    "H": ([420, 400], 10.0),
}
CUTS = RfmCuts((-300, -200, -100, -30), (1, 2, 3, 4), (50, 100, 200, 400))

#: customer -> buyer_type, status, rfm_code, segment, action, action_reason
HAND = {
    # cycle (4*10 + 30)/5 = 14, 10/14 < 1.5: active; R5 (10 < 30) F5 M5 (750): Champions
    "A": ("repeat", "active", "555", "Champions", "tiered_membership_checkin_rewards",
          "segment/Champions"),
    # one-time, 5 < 1.5 * 30: active; 511 New Customers (segment 30 beats active 40)
    "B": ("one_time", "active", "511", "New Customers", "onboarding_second_purchase",
          "segment/New Customers"),
    # 400 >= 365: churned; 111 Lost: the Lost guard (10) beats churned (20)
    "C": ("one_time", "churned", "111", "Lost", "low_cost_reactivation_only", "segment/Lost"),
    # churned; M3 (150 > 50, 100): 113 Can't Lose Them (30) loses to churned (20)
    "D": ("one_time", "churned", "113", "Can't Lose Them", "care_reminder_price_offer_traffic",
          "status/one_time/churned"),
    # 60 >= 45: at risk; R4 (-60 > -300, -200, -100): 411 New Customers loses (30 > 20)
    "E": ("one_time", "at_risk", "411", "New Customers", "care_reminder",
          "status/one_time/at_risk"),
    # cycle (2*30 + 30)/3 = 30, 50/30 = 1.67: at risk; R4 F3 M4 (300): 434 Need Attention
    "F": ("repeat", "at_risk", "434", "Need Attention", "personal_care_member_benefits",
          "status/repeat/at_risk"),
    # cycle 30, 140/30 = 4.7: churned; R3 F3 M1 (30): 331 About To Sleep
    "G": ("repeat", "churned", "331", "About To Sleep", "personal_winback_member_benefits",
          "status/repeat/churned"),
    # 400 >= 365: churned; R1 F2 M1 (20): 121 Lost: the Lost guard wins
    "H": ("repeat", "churned", "121", "Lost", "low_cost_reactivation_only", "segment/Lost"),
}  # fmt: skip


@pytest.fixture
def hand_log() -> pl.DataFrame:
    rows = [(c, day(r), amount) for c, (recencies, amount) in PURCHASES.items() for r in recencies]
    return pl.DataFrame(rows, schema=["customer_id", "ts", "amount"], orient="row")


def test_hand_log_every_default_rule(hand_log: pl.DataFrame) -> None:
    scores = churn_engine.score(hand_log, as_of=AS_OF, prior_days=30, cuts=CUTS, actions=True)
    got = scores.select(
        "customer_id", "buyer_type", "status", "rfm_code", "segment", "action", "action_reason"
    ).rows()
    assert got == [(c, *HAND[c]) for c in sorted(HAND)]


def test_hand_log_without_segments_uses_the_status_rules(hand_log: pl.DataFrame) -> None:
    # rfm_bins=3 has no segment map: the default table's status rules decide
    scores = churn_engine.score(hand_log, as_of=AS_OF, prior_days=30, rfm_bins=3, actions=True)
    assert scores["segment"].null_count() == scores.height
    expected = {c: STATUS_KEYS[(h[0], h[1])] for c, h in HAND.items()}
    assert dict(zip(scores["customer_id"], scores["action"], strict=True)) == expected
    assert scores["action_reason"].to_list() == [f"status/{HAND[c][0]}/{HAND[c][1]}"
                                                 for c in sorted(HAND)]  # fmt: skip


def test_action_columns_present_only_when_asked(hand_log: pl.DataFrame) -> None:
    plain = churn_engine.score(hand_log, as_of=AS_OF)
    assert plain.columns == ["customer_id", *SCORE_COLUMNS]
    with_actions = churn_engine.score(hand_log, as_of=AS_OF, actions=True)
    assert with_actions.columns == ["customer_id", *SCORE_COLUMNS, *ACTION_COLUMNS]
    assert with_actions.schema["action"] == pl.String
    assert with_actions.schema["action_reason"] == pl.String
    assert with_actions.drop(*ACTION_COLUMNS).equals(plain)
    result = churn_engine.Scorer(actions=True).run(hand_log, as_of=AS_OF)
    assert result.customers.equals(with_actions)
    assert churn_engine.score(hand_log, as_of=AS_OF, actions=False).equals(plain)


def test_empty_result_has_typed_action_columns(hand_log: pl.DataFrame) -> None:
    before_any = churn_engine.score(hand_log, as_of=dt.date(2000, 1, 1), actions=True)
    assert before_any.height == 0
    assert before_any.schema["action"] == pl.String
    assert before_any.schema["action_reason"] == pl.String
    refunds_only = pl.DataFrame({"customer_id": [1], "ts": [AS_OF], "amount": [-5.0]})
    empty = churn_engine.score(refunds_only, actions=True)
    assert empty.height == 0 and empty.columns[-2:] == ["action", "action_reason"]


def test_per_category_rows_get_actions() -> None:
    log = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [day(5), day(400), day(60)],
            "amount": [20.0, 10.0, 30.0],
            "category": ["a", "b", "a"],
        }
    )
    scores = churn_engine.score(log, as_of=AS_OF, category_col="category", prior_days=30,
                                cuts=CUTS, actions=True)  # fmt: skip
    # (1, a): one-time, recency 5 -> active, 511 New Customers;
    # (1, b): recency 400 -> churned, 111 Lost; (2, a): recency 60 -> at risk, 411
    assert scores.select("customer_id", "category", "action").rows() == [
        (1, "a", "onboarding_second_purchase"),
        (1, "b", "low_cost_reactivation_only"),
        (2, "a", "care_reminder"),
    ]


def test_to_frame_lists_every_rule() -> None:
    frame = ActionTable.default().to_frame()
    assert frame.height == 6 + 11
    assert frame.columns == ["rule", "key", "description", "channel", "priority"]
    row = frame.filter(pl.col("rule") == "segment/Lost").row(0, named=True)
    assert row["key"] == "low_cost_reactivation_only" and row["priority"] == 10
    assert set(frame["rule"]) >= {"status/one_time/churned", "segment/Can't Lose Them"}


# -- replacement tables: files, round trips ------------------------------------


def test_json_round_trip(tmp_path: pathlib.Path, hand_log: pl.DataFrame) -> None:
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(ActionTable.default().to_dict()), encoding="utf-8")
    assert ActionTable.load(path) == ActionTable.default()
    assert ScoreConfig(actions=str(path)).action_table() == ActionTable.default()
    from_file = churn_engine.score(hand_log, as_of=AS_OF, actions=path)
    assert from_file.equals(churn_engine.score(hand_log, as_of=AS_OF, actions=True))


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_round_trip(tmp_path: pathlib.Path, suffix: str) -> None:
    path = tmp_path / f"actions{suffix}"
    path.write_text(yaml.safe_dump(ActionTable.default().to_dict()), encoding="utf-8")
    assert ActionTable.load(path) == ActionTable.default()


def test_handwritten_yaml(tmp_path: pathlib.Path, hand_log: pl.DataFrame) -> None:
    segments = "\n".join(f"  {json.dumps(name)}: nurture" for name in DEFAULT_SEGMENT_MAP)
    path = tmp_path / "mine.yaml"
    path.write_text(
        "status:\n"
        "  one_time:\n"
        "    active: welcome\n"
        "    at_risk: {key: remind, channel: sms, priority: 1}\n"
        "    churned: {key: remind, channel: sms}\n"
        "  repeat: {active: thanks, at_risk: call, churned: call}\n"
        f"segment:\n{segments}\n",
        encoding="utf-8",
    )
    scores = churn_engine.score(hand_log, as_of=AS_OF, prior_days=30, cuts=CUTS, actions=path)
    # default priorities: active -> segment (30 < 40), at risk/churned -> status
    # (20 < 30; no Lost guard in this table); one-time at risk: priority 1
    assert dict(zip(scores["customer_id"], scores["action"], strict=True)) == {
        "A": "nurture", "B": "nurture", "C": "remind", "D": "remind", "E": "remind",
        "F": "call", "G": "call", "H": "call",
    }  # fmt: skip


def test_dict_and_action_table_options_are_validated_once() -> None:
    table = ActionTable.from_dict(plain_table())
    config = ScoreConfig(actions=plain_table())
    assert config.action_table() == table
    assert ScoreConfig(actions=table) == config
    assert ScoreConfig().action_table() is None
    assert ScoreConfig(actions=False) == ScoreConfig() == ScoreConfig(actions=None)
    # a hand-built ActionTable is checked too
    broken = ActionTable(status={("one_time", "active"): Action("x")}, segment={})
    with pytest.raises(ConfigError, match=r"status\.one_time\.at_risk"):
        ScoreConfig(actions=broken)


# -- validation errors ----------------------------------------------------------


def _drop_lost() -> dict[str, Any]:
    data = plain_table()
    del data["segment"]["Lost"]
    return data


def _rename_champions() -> dict[str, Any]:
    data = plain_table()
    data["segment"]["Champion"] = data["segment"].pop("Champions")
    return data


def _set(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = plain_table()
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    data = plain_table()
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_drop_lost(), r"no action for segment 'Lost'"),
        (_rename_champions(), r"segment\.Champion is not a segment"),
        (plain_table(segments={}), r"unknown key 'segments'"),
        (_set(("status", "one-time"), {"active": "x"}), r"unknown buyer type 'one-time'"),
        (_set(("status", "repeat", "lost"), "x"), r"unknown status 'lost' in status\.repeat"),
        (_without(("status", "repeat", "churned")), r"no action for status\.repeat\.churned"),
        (_without(("status",)), r"'status' must map"),
        (_set(("status", "repeat"), "x"), r"status\.repeat must map"),
        (_set(("segment", "Lost"), ""), r"segment\.Lost: the action key must be a non-empty"),
        (_set(("segment", "Lost"), "   "), r"segment\.Lost: the action key must be a non-empty"),
        (_set(("segment", "Lost"), "win back"), r"segment\.Lost: action key 'win back'"),
        (_set(("segment", "Lost"), 7), r"segment\.Lost must be an action key"),
        (_set(("segment", "Lost"), {"description": "x"}), r"segment\.Lost: missing 'key'"),
        (_set(("segment", "Lost"), {"key": "x", "prio": 1}), r"unknown field 'prio'"),
        (_set(("segment", "Lost"), {"key": "x", "priority": True}), r"Lost\.priority must be"),
        (_set(("segment", "Lost"), {"key": "x", "priority": 1.5}), r"Lost\.priority must be"),
        (_set(("segment", "Lost"), {"key": "x", "channel": 3}), r"Lost\.channel must be a str"),
        (
            _set(("segment", "Lost"), {"key": "seg_0", "description": "other"}),
            r"key 'seg_0' has different descriptions or channels in segment\.Champions "
            r"and segment\.Lost",
        ),
        (_set(("segment",), ["Lost"]), r"'segment' must map segment names"),
        ([1, 2], r"actions must be True/False, an ActionTable, a dict"),
    ],
)
def test_invalid_tables(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScoreConfig(actions=data)


def test_segments_are_checked_against_the_segment_map_in_force() -> None:
    by_r = {f"R{r}": [f"{r}{f}{m}" for f in range(1, 4) for m in range(1, 4)] for r in (1, 2, 3)}
    # the default table knows only the default segments
    with pytest.raises(ConfigError, match="default action table covers the default segments"):
        ScoreConfig(rfm_bins=3, segment_map=by_r, actions=True)
    table = plain_table(segment={"R1": "a", "R2": "b", "R3": "c"})
    assert ScoreConfig(rfm_bins=3, segment_map=by_r, actions=table).action_table() is not None
    with pytest.raises(ConfigError, match="no action for segment 'R2', 'R3'"):
        ScoreConfig(rfm_bins=3, segment_map=by_r, actions=plain_table(segment={"R1": "a"}))
    # no segments at all: segment rules are an error, a status-only table is fine
    with pytest.raises(ConfigError, match="no segments are defined"):
        ScoreConfig(rfm_bins=3, actions=plain_table())
    status_only = plain_table()
    del status_only["segment"]
    assert ScoreConfig(rfm_bins=3, actions=status_only).action_table() is not None
    assert ScoreConfig(rfm_bins=3, actions=True).action_table() == (
        ActionTable.default().without_segments()
    )


@pytest.mark.parametrize(
    ("name", "text", "error", "message"),
    [
        ("bad.yaml", "status: [unclosed", ConfigError, "is not valid YAML"),
        ("bad.json", "{not json", ConfigError, "is not valid JSON"),
        ("list.json", "[1, 2]", ConfigError, r"expected a mapping .* \(in .*list\.json\)"),
        ("table.txt", "", ConfigError, "is not an action table file"),
        ("table", "", ConfigError, "is not an action table file"),
    ],
)
def test_bad_files(
    tmp_path: pathlib.Path, name: str, text: str, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error, match=message):
        ScoreConfig(actions=str(path))


def test_missing_file_and_wrong_types(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="action table not found"):
        ScoreConfig(actions=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="actions must be True/False"):
        ScoreConfig(actions=3)  # type: ignore[arg-type]


def test_yaml_without_pyyaml_says_what_to_do(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump(ActionTable.default().to_dict()), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    with pytest.raises(ConfigError, match=r"needs pyyaml \(pip install pyyaml\).*dict or a \.json"):
        ScoreConfig(actions=path)
    # JSON and dicts need no pyyaml
    json_path = tmp_path / "actions.json"
    json_path.write_text(json.dumps(ActionTable.default().to_dict()), encoding="utf-8")
    assert ScoreConfig(actions=json_path).action_table() == ActionTable.default()


# -- command line -----------------------------------------------------------------


def test_cli_score_actions(
    tmp_path: pathlib.Path, hand_log: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path, out = tmp_path / "log.parquet", tmp_path / "scores.parquet"
    hand_log.write_parquet(log_path)
    argv = ["score", str(log_path), "-o", str(out), "--as-of", "2024-12-31", "--prior-days", "30"]
    assert cli.main([*argv, "--actions"]) == 0
    scores = pl.read_parquet(out)
    assert scores.columns[-2:] == ["action", "action_reason"]
    expected = churn_engine.score(hand_log, as_of=AS_OF, prior_days=30, actions=True)
    assert scores.equals(expected)
    summary = capsys.readouterr().out
    assert "\naction\n" in summary
    count = expected.filter(pl.col("action") == "low_cost_reactivation_only").height
    assert "  low_cost_reactivation_only" in summary and f"{count}  " in summary

    # without --actions: no action columns, no action section
    assert cli.main([*argv, "-q"]) == 0
    assert "action" not in pl.read_parquet(out).columns

    # --actions TABLE, after INPUT or as --actions=TABLE
    table = plain_table()
    table["segment"]["Champions"] = {"key": "vip", "priority": 1}
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump(table), encoding="utf-8")
    for option in (["--actions", str(path)], [f"--actions={path}"]):
        assert cli.main([*argv, "-q", *option]) == 0
        scores = pl.read_parquet(out)
        assert scores.filter(pl.col("customer_id") == "A")["action"].to_list() == ["vip"]


def test_cli_score_actions_errors(
    tmp_path: pathlib.Path, hand_log: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "log.parquet"
    hand_log.write_parquet(log_path)
    out = str(tmp_path / "s.parquet")
    bad = tmp_path / "bad.yaml"
    bad.write_text("status: {one_time: {active: x}}", encoding="utf-8")
    assert cli.main(["score", str(log_path), "-o", out, "--actions", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("churn-engine: error: --actions: no action for status.one_time.at_risk")
    assert "Traceback" not in err
    missing = str(tmp_path / "no.json")
    assert cli.main(["score", str(log_path), "-o", out, "--actions", missing]) == 2
    assert "action table not found" in capsys.readouterr().err
    # --actions before INPUT takes INPUT as its TABLE: argparse says INPUT is missing
    assert cli.main(["score", "--actions", str(log_path), "-o", out]) == 2
    assert "the following arguments are required: INPUT" in capsys.readouterr().err
    # a TABLE that is not a table file is named
    assert cli.main(["score", str(log_path), "-o", out, "--actions", str(log_path)]) == 2
    assert "is not an action table file" in capsys.readouterr().err


def test_cli_score_help_mentions_actions(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["score", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--actions [TABLE]" in out and "--actions my_actions.yaml" in out
