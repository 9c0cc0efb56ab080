"""Suggested actions: who to win back, and how (docs/actions.md).

An :class:`ActionTable` holds one :class:`Action` per buyer type x status
(``status`` rules) and one per RFM segment (``segment`` rules). Every scored
customer matches one status rule and, when segments are defined, one segment
rule; the rule with the lower ``priority`` decides (a tie goes to the status
rule). The default table (:meth:`ActionTable.default`) encodes the retail
playbook of DESIGN.md section 1:

- win-back (``at_risk``/``churned``) follows buyer type x status: one-time
  buyers mostly forgot the shop, so a care reminder and a price offer on
  traffic products; repeat buyers get personal care and member benefits,
  never blanket discounts on profit products;
- active customers follow their segment (Champions/Loyal: tiered membership
  and check-in rewards, ...);
- the Lost segment gets low-cost reactivation only, whatever the status: a
  cost guard, so it has the lowest priority number of all.

A table can be replaced by a dict, a JSON file or a YAML file (needs pyyaml)
of the same shape as :meth:`ActionTable.to_dict`; it is validated once, when
the :class:`~churn_engine.ScoreConfig` is built.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Union

import polars as pl

from .errors import ConfigError

__all__ = [
    "DEFAULT_PRIORITIES",
    "Action",
    "ActionTable",
    "ActionsOption",
]

_BUYER_TYPES = ("one_time", "repeat")  # config.BUYER_TYPES (no import: config imports us)
_STATUSES = ("active", "at_risk", "churned")

#: Priority of a rule whose action does not give one: win-back status rules
#: first, then segment rules, then the status rules of active customers.
DEFAULT_PRIORITIES = {"win_back": 20, "segment": 30, "active": 40}

_ACTION_FIELDS = ("key", "description", "channel", "priority")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_TABLE_SUFFIXES = (".yaml", ".yml", ".json")

#: What ``ScoreConfig(actions=...)`` accepts.
ActionsOption = Union[bool, "ActionTable", Mapping[str, Any], str, "os.PathLike[str]", None]


@dataclasses.dataclass(frozen=True)
class Action:
    """One suggested action.

    Parameters
    ----------
    key : str
        Short machine-readable name, the value of the ``action`` column
        (letters, digits, ``_ . : -``; no spaces).
    description : str
        What to do, for people.
    channel : str
        How to reach the customer (e.g. ``"sms, email"``).
    priority : int
        When a status rule and a segment rule both apply, the lower number
        decides (a tie goes to the status rule). An ``Action`` built in Python
        keeps its priority (default 30); in a dict or file a missing priority
        takes the default of its rule (:data:`DEFAULT_PRIORITIES`).
    """

    key: str
    description: str = ""
    channel: str = ""
    priority: int = DEFAULT_PRIORITIES["segment"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _status_reason(buyer_type: str, status: str) -> str:
    return f"status/{buyer_type}/{status}"


def _segment_reason(segment: str) -> str:
    return f"segment/{segment}"


@dataclasses.dataclass(frozen=True)
class ActionTable:
    """Suggested actions by buyer type x status and by segment.

    Build one with :meth:`default`, :meth:`from_dict` or :meth:`load`; pass
    it (or the dict, or the file path) as ``ScoreConfig(actions=...)``.

    Attributes
    ----------
    status : dict
        ``(buyer_type, status) -> Action`` for all six pairs.
    segment : dict
        ``segment name -> Action``; empty when no segments are used.
    """

    status: Mapping[tuple[str, str], Action]
    segment: Mapping[str, Action]

    # -- building --------------------------------------------------------------

    @classmethod
    def default(cls) -> ActionTable:
        """The default table (docs/actions.md)."""
        return cls.from_dict(_DEFAULT_TABLE)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionTable:
        """Validate a table given as plain data (the shape of :meth:`to_dict`).

        ``{"status": {buyer_type: {status: action}}, "segment": {name: action}}``
        where an action is a key string or a mapping with ``key`` and
        optionally ``description``, ``channel`` and ``priority``. All six
        buyer type x status pairs are required; segments are checked against
        the segment map by :meth:`check_segments`.

        Raises
        ------
        ConfigError
            Naming the offending entry.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"actions: expected a mapping with 'status' and 'segment', "
                f"got {type(data).__name__}"
            )
        unknown = [str(k) for k in data if k not in ("status", "segment")]
        if unknown:
            raise ConfigError(
                f"actions: unknown key {unknown[0]!r} (expected 'status' and 'segment')"
            )
        status_part = data.get("status")
        if not isinstance(status_part, Mapping):
            raise ConfigError(
                "actions: 'status' must map each buyer type (one_time, repeat) to "
                "{active, at_risk, churned} actions"
            )
        status: dict[tuple[str, str], Action] = {}
        for buyer_type, by_status in status_part.items():
            if buyer_type not in _BUYER_TYPES:
                raise ConfigError(
                    f"actions: unknown buyer type {buyer_type!r} in 'status' "
                    f"(expected one of {', '.join(_BUYER_TYPES)})"
                )
            if not isinstance(by_status, Mapping):
                raise ConfigError(
                    f"actions: status.{buyer_type} must map active, at_risk and churned "
                    f"to actions, got {by_status!r}"
                )
            for state, spec in by_status.items():
                if state not in _STATUSES:
                    raise ConfigError(
                        f"actions: unknown status {state!r} in status.{buyer_type} "
                        f"(expected one of {', '.join(_STATUSES)})"
                    )
                group = "active" if state == "active" else "win_back"
                status[(buyer_type, state)] = _action(
                    spec, f"status.{buyer_type}.{state}", DEFAULT_PRIORITIES[group]
                )
        missing = [
            f"status.{b}.{s}" for b in _BUYER_TYPES for s in _STATUSES if (b, s) not in status
        ]
        if missing:
            raise ConfigError(f"actions: no action for {', '.join(missing)}")
        segment_part = data.get("segment")
        if segment_part is None:
            segment_part = {}
        if not isinstance(segment_part, Mapping):
            raise ConfigError(
                f"actions: 'segment' must map segment names to actions, got {segment_part!r}"
            )
        segment: dict[str, Action] = {}
        for name, spec in segment_part.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"actions: segment names must be non-empty strings, got {name!r}")
            segment[name] = _action(spec, f"segment.{name}", DEFAULT_PRIORITIES["segment"])
        table = cls(
            status={(b, s): status[(b, s)] for b in _BUYER_TYPES for s in _STATUSES},
            segment=segment,
        )
        table._check_keys_consistent()
        return table

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ActionTable:
        """Read a table from a ``.yaml``/``.yml`` (needs pyyaml) or ``.json`` file."""
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix not in _TABLE_SUFFIXES:
            raise ConfigError(
                f"actions: {str(path)!r} is not an action table file "
                f"(use {', '.join(_TABLE_SUFFIXES)})"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(2, "action table not found", str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"actions: cannot read {str(path)!r}: {exc}") from None
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"actions: {str(path)!r} is not valid JSON: {exc}") from None
        else:
            data = _load_yaml(text, path)
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (in {path})") from None

    @classmethod
    def resolve(cls, option: ActionsOption) -> ActionTable | None:
        """The table an ``actions=`` option stands for (None for False/None)."""
        if option is None or option is False:
            return None
        if option is True:
            return cls.default()
        if isinstance(option, ActionTable):
            return cls.from_dict(option.to_dict())  # built by hand: check it too
        if isinstance(option, (str, os.PathLike)):
            return cls.load(option)
        if isinstance(option, Mapping):
            return cls.from_dict(option)
        raise ConfigError(
            "actions must be True/False, an ActionTable, a dict or a path to a "
            f".yaml/.yml/.json file, got {type(option).__name__}"
        )

    # -- checks and use --------------------------------------------------------

    def check_segments(self, segments: Sequence[str]) -> None:
        """Every segment has an action and every segment rule names a segment.

        ``segments`` are the names of the segment map in force (empty when
        segments are not defined, e.g. ``rfm_bins != 5`` without a map).
        """
        unknown = [name for name in self.segment if name not in segments]
        if unknown:
            if not segments:
                raise ConfigError(
                    f"actions: segment.{unknown[0]}: no segments are defined (rfm_bins other "
                    "than 5 needs a segment_map); give one or drop the 'segment' rules"
                )
            raise ConfigError(
                f"actions: segment.{unknown[0]} is not a segment of the segment map "
                f"(segments: {', '.join(segments)})"
            )
        missing = [name for name in segments if name not in self.segment]
        if missing:
            raise ConfigError(
                f"actions: no action for segment {', '.join(repr(m) for m in missing)}"
            )

    def without_segments(self) -> ActionTable:
        """The same table with the status rules only."""
        return ActionTable(status=dict(self.status), segment={})

    def choose(self, buyer_type: str, status: str, segment: str | None) -> tuple[Action, str]:
        """The action for one customer and its ``action_reason``.

        The status rule and (when ``segment`` is not None) the segment rule
        both apply; the lower ``priority`` wins, a tie goes to the status rule.
        """
        by_status = self.status[(buyer_type, status)]
        if segment is not None:
            by_segment = self.segment[segment]
            if by_segment.priority < by_status.priority:
                return by_segment, _segment_reason(segment)
        return by_status, _status_reason(buyer_type, status)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML ready); :meth:`from_dict` reads it back."""
        status: dict[str, dict[str, Any]] = {}
        for (buyer_type, state), action in self.status.items():
            status.setdefault(buyer_type, {})[state] = action.to_dict()
        return {
            "status": status,
            "segment": {name: action.to_dict() for name, action in self.segment.items()},
        }

    def to_frame(self) -> pl.DataFrame:
        """One row per rule: ``rule`` (the ``action_reason`` it gives), ``key``,
        ``description``, ``channel``, ``priority``; join it on ``action`` for
        the descriptions."""
        rules = [(_status_reason(b, s), a) for (b, s), a in self.status.items()]
        rules += [(_segment_reason(name), a) for name, a in self.segment.items()]
        return pl.DataFrame(
            {
                "rule": [r for r, _ in rules],
                "key": [a.key for _, a in rules],
                "description": [a.description for _, a in rules],
                "channel": [a.channel for _, a in rules],
                "priority": [a.priority for _, a in rules],
            },
            schema={"rule": pl.String, "key": pl.String, "description": pl.String,
                    "channel": pl.String, "priority": pl.Int64},
        )  # fmt: skip

    def _check_keys_consistent(self) -> None:
        """One key, one meaning: a key shared by several rules has one
        description and channel (the priority may differ)."""
        seen: dict[str, tuple[str, Action]] = {}
        rules = [(f"status.{b}.{s}", a) for (b, s), a in self.status.items()]
        rules += [(f"segment.{name}", a) for name, a in self.segment.items()]
        for rule, action in rules:
            if action.key in seen:
                first_rule, first = seen[action.key]
                if (first.description, first.channel) != (action.description, action.channel):
                    raise ConfigError(
                        f"actions: key {action.key!r} has different descriptions or channels "
                        f"in {first_rule} and {rule}; use one meaning per key"
                    )
            else:
                seen[action.key] = (rule, action)


def _action(spec: Any, where: str, default_priority: int) -> Action:
    """An :class:`Action` from a key string or a mapping, checked."""
    if isinstance(spec, Action):
        _check_key(spec.key, where)
        return spec
    if isinstance(spec, str):
        _check_key(spec, where)
        return Action(key=spec, priority=default_priority)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"actions: {where} must be an action key or a mapping with 'key', got {spec!r}"
        )
    unknown = [str(k) for k in spec if k not in _ACTION_FIELDS]
    if unknown:
        raise ConfigError(
            f"actions: {where}: unknown field {unknown[0]!r} (fields: {', '.join(_ACTION_FIELDS)})"
        )
    if "key" not in spec:
        raise ConfigError(f"actions: {where}: missing 'key'")
    key = spec["key"]
    _check_key(key, where)
    texts = {}
    for field in ("description", "channel"):
        value = spec.get(field, "")
        if not isinstance(value, str):
            raise ConfigError(f"actions: {where}.{field} must be a string, got {value!r}")
        texts[field] = value
    priority = spec.get("priority", default_priority)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"actions: {where}.priority must be a whole number, got {priority!r}")
    return Action(key=key, priority=priority, **texts)


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(
            f"actions: {where}: the action key must be a non-empty string, got {key!r}"
        )
    if _KEY.fullmatch(key) is None:
        raise ConfigError(
            f"actions: {where}: action key {key!r} may hold only letters, digits and _ . : - "
            "(no spaces); put prose in 'description'"
        )


def _load_yaml(text: str, path: pathlib.Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"actions: reading {str(path)!r} needs pyyaml (pip install pyyaml); "
            "or pass the table as a dict or a .json file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"actions: {str(path)!r} is not valid YAML: {exc}") from None


# -- the default table ---------------------------------------------------------


def _entry(key: str, description: str, channel: str, priority: int) -> dict[str, Any]:
    return {"key": key, "description": description, "channel": channel, "priority": priority}


_WIN_BACK, _SEGMENT, _ACTIVE = (
    DEFAULT_PRIORITIES["win_back"],
    DEFAULT_PRIORITIES["segment"],
    DEFAULT_PRIORITIES["active"],
)
_LOST_GUARD = 10

_PERSONAL_CARE = (
    "personal_care_member_benefits",
    "Repeat buyer slipping away: a personal care contact and member benefits "
    "(points, service, early access); no blanket discounts on profit products",
    "phone, email",
)
_PERSONAL_WIN_BACK = (
    "personal_winback_member_benefits",
    "Valuable repeat buyer who stopped: personal win-back contact with member "
    "benefits (points, vouchers on traffic products); no blanket discounts on profit products",
    "phone, email, sms",
)
_TIERED = (
    "tiered_membership_checkin_rewards",
    "Best customers: tiered membership (upgrade, tier perks) and check-in rewards; "
    "no discounts needed",
    "app, email",
)

_DEFAULT_TABLE: dict[str, Any] = {
    "status": {
        "one_time": {
            "active": _entry(
                "second_purchase_nudge",
                "Recent first-time buyer: thank-you and a reminder timed to the shop's "
                "typical cycle to earn the second purchase",
                "email",
                _ACTIVE,
            ),
            "at_risk": _entry(
                "care_reminder",
                "One-time buyer going quiet: a care reminder so they do not forget the shop "
                "(usage tips, what is new)",
                "sms, email",
                _WIN_BACK,
            ),
            "churned": _entry(
                "care_reminder_price_offer_traffic",
                "One-time buyer who went quiet (the largest churned group; most forgot the "
                "shop): care reminder with a price offer on traffic products",
                "sms, email",
                _WIN_BACK,
            ),
        },
        "repeat": {
            "active": _entry(
                "member_cross_sell",
                "Repeat buyer on cycle: keep them in the member programme; cross-sell around "
                "the expected next purchase",
                "email, app",
                _ACTIVE,
            ),
            "at_risk": _entry(*_PERSONAL_CARE, _WIN_BACK),
            "churned": _entry(*_PERSONAL_WIN_BACK, _WIN_BACK),
        },
    },
    "segment": {
        "Champions": _entry(*_TIERED, _SEGMENT),
        "Loyal": _entry(*_TIERED, _SEGMENT),
        "Potential Loyalist": _entry(
            "membership_invite",
            "Recent customers buying more: invite to the membership programme, "
            "recommendations that build the habit",
            "email, app",
            _SEGMENT,
        ),
        "New Customers": _entry(
            "onboarding_second_purchase",
            "Recent first purchases: onboarding series and a nudge to the second purchase",
            "email",
            _SEGMENT,
        ),
        "Promising": _entry(
            "engagement_traffic_offer",
            "Recent but infrequent: engagement content and a price offer on traffic products "
            "to build frequency",
            "email, sms",
            _SEGMENT,
        ),
        "Need Attention": _entry(
            "personal_recommendations",
            "Good customers starting to slip: personalised recommendations and a "
            "time-limited member benefit",
            "email, app",
            _SEGMENT,
        ),
        "About To Sleep": _entry(
            "reminder_popular_traffic",
            "Below average and fading: reminder featuring popular traffic products, "
            "low-cost channels",
            "email",
            _SEGMENT,
        ),
        "At Risk": _entry(*_PERSONAL_CARE, _SEGMENT),
        "Can't Lose Them": _entry(*_PERSONAL_WIN_BACK, _SEGMENT),
        "Hibernating": _entry(
            "reactivation_traffic_offer",
            "Long inactive, low value: automated reactivation with an offer on traffic products",
            "email",
            _SEGMENT,
        ),
        "Lost": _entry(
            "low_cost_reactivation_only",
            "Lowest recency, frequency and value: low-cost reactivation only (automated "
            "e-mail/SMS, no paid offers)",
            "email, sms",
            _LOST_GUARD,
        ),
    },
}
