"""Validated scoring options, RFM cut points and the segment map.

Everything a run can be told is in :class:`ScoreConfig`; it is checked once,
when it is built, so that the compiled pass never sees a bad option.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .actions import ActionsOption, ActionTable
from .errors import ConfigError

__all__ = [
    "BUYER_TYPES",
    "DEFAULT_SEGMENT_MAP",
    "STATUSES",
    "TS_UNITS",
    "RfmCuts",
    "ScoreConfig",
    "SegmentMap",
]

STATUSES = ("active", "at_risk", "churned")
BUYER_TYPES = ("one_time", "repeat")
TS_UNITS = ("s", "ms", "us", "ns")

SegmentMap = Mapping[str, Sequence[str]]

#: The default RFM segment map (DESIGN.md section 4): segment -> RFM codes.
DEFAULT_SEGMENT_MAP: dict[str, tuple[str, ...]] = {
    "Champions": ("555", "554", "544", "545", "454", "455", "445"),
    "Loyal": ("543", "444", "435", "355", "354", "345", "344", "335"),
    "Potential Loyalist": (
        "553", "551", "552", "541", "542", "533", "532", "531", "452", "451", "442", "441",
        "431", "453", "433", "432", "423", "353", "352", "351", "342", "341", "333", "323",
    ),
    "New Customers": ("512", "511", "422", "421", "412", "411", "311"),
    "Promising": (
        "525", "524", "523", "522", "521", "515", "514", "513",
        "425", "424", "413", "414", "415", "315", "314", "313",
    ),
    "Need Attention": ("535", "534", "443", "434", "343", "334", "325", "324"),
    "About To Sleep": ("331", "321", "312", "221", "213", "231", "241", "251"),
    "At Risk": (
        "255", "254", "245", "244", "253", "252", "243", "242", "235", "234", "225",
        "224", "153", "152", "145", "143", "142", "135", "134", "133", "125", "124",
    ),
    "Can't Lose Them": ("155", "154", "144", "214", "215", "115", "114", "113"),
    "Hibernating": ("332", "322", "233", "232", "223", "222", "132", "123", "122", "212", "211"),
    "Lost": ("111", "112", "121", "131", "141", "151"),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RfmCuts:
    """RFM cut points: ``bins - 1`` ascending values per dimension.

    ``recency`` cuts are on ``-recency_days`` (recent is high), ``frequency``
    on ``n_orders`` and ``monetary`` on ``monetary_total``. A score is
    ``1 + (number of cut points strictly below the value)``.
    """

    recency: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("recency", "frequency", "monetary"):
            values = tuple(float(v) for v in getattr(self, name))
            if any(math.isnan(v) for v in values):
                raise ConfigError(f"RfmCuts.{name} contains NaN: {values}")
            if list(values) != sorted(values):
                raise ConfigError(f"RfmCuts.{name} must be ascending, got {values}")
            object.__setattr__(self, name, values)
        if not len(self.recency) == len(self.frequency) == len(self.monetary):
            raise ConfigError("RfmCuts: recency, frequency and monetary need the same length")

    @property
    def bins(self) -> int:
        return len(self.recency) + 1

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> RfmCuts:
        try:
            return cls(tuple(data["recency"]), tuple(data["frequency"]), tuple(data["monetary"]))
        except KeyError as exc:
            raise ConfigError(f"RfmCuts.from_dict: missing key {exc}") from None


def validate_segment_map(segment_map: SegmentMap, bins: int) -> dict[str, int]:
    """Check that every RFM code of ``bins`` maps to exactly one segment.

    Returns ``{code: segment index}`` in the order of ``segment_map``.
    """
    expected = {
        f"{r}{f}{m}"
        for r in range(1, bins + 1)
        for f in range(1, bins + 1)
        for m in range(1, bins + 1)
    }
    owner: dict[str, int] = {}
    names = list(segment_map)
    for index, name in enumerate(names):
        codes = segment_map[name]
        if isinstance(codes, str):
            raise ConfigError(f"segment {name!r}: give a list of codes, not the string {codes!r}")
        for code in codes:
            code = str(code)
            if code not in expected:
                raise ConfigError(
                    f"segment {name!r}: {code!r} is not an RFM code for rfm_bins={bins}"
                )
            if code in owner:
                raise ConfigError(
                    f"segment map overlap: code {code!r} is in both "
                    f"{names[owner[code]]!r} and {name!r}"
                )
            owner[code] = index
    missing = sorted(expected - owner.keys())
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ConfigError(f"segment map has gaps: {len(missing)} codes unmapped ({shown})")
    return owner


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be finite and {bound}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """Options of a scoring run (DESIGN.md sections 3 and 4).

    Parameters
    ----------
    customer_col, ts_col, amount_col : str
        Input column names.
    category_col : str, optional
        Score per customer x category; priors and horizons are per category.
    tz : str
        Scoring time zone: days are cut in it; naive timestamps are taken to be in it.
    ts_unit : {"s", "ms", "us", "ns"}, optional
        Required when ``ts`` holds integer epochs.
    at_risk_cycles, churn_cycles : float
        Status thresholds in purchase cycles (``0 < at_risk_cycles <= churn_cycles``).
    horizon_days : int
        No purchase for this many days means churned, whatever the cycle.
    category_horizon_days : mapping, optional
        Per-category horizon overrides (category value -> days).
    prior_weight : float
        Weight ``w`` of the prior cycle in ``cycle_days``.
    prior_days : float, optional
        A fixed prior cycle instead of the median over repeat buyers.
    category_prior_days : mapping, optional
        Per-category fixed priors (category value -> days).
    rfm_bins : int
        Number of RFM score levels, 2..9.
    cuts : RfmCuts, optional
        Reuse cut points of an earlier run instead of computing them.
    segment_map : mapping, optional
        Segment name -> RFM codes; required for segments when ``rfm_bins != 5``.
    actions : bool, ActionTable, mapping or path
        Add the suggested ``action`` (and ``action_reason``) columns: ``True``
        for the default table, or a replacement table (an ``ActionTable``, a
        dict, or a ``.yaml``/``.yml``/``.json`` path), validated here against
        the segment map in force (docs/actions.md). Stored as the resolved
        ``ActionTable`` (``None`` when off).
    model : {"bgnbd"}, optional
        Also fit the BG/NBD model (:class:`churn_engine.models.BetaGeo`, needs
        SciPy) to the scored rows' daily ``frequency``/``recency``/``T`` and add
        its ``p_alive`` and ``expected_purchases`` columns (docs/models.md).
    model_horizon_days : float
        Days ahead for ``expected_purchases`` (default 90).
    model_penalizer : float
        L2 penalty of the BG/NBD fit (lifetimes' ``penalizer_coef``, default 0):
        a small value such as 0.001 makes fits converge whose likelihood peaks
        at the parameters' boundary.
    on_error : {"raise", "quarantine"}
        Raise on the first bad row, or move bad rows to ``ScoreResult.rejects``.
    threads : int, optional
        Worker threads for the compiled pass (default: all cores).
    """

    customer_col: str = "customer_id"
    ts_col: str = "ts"
    amount_col: str = "amount"
    category_col: str | None = None
    tz: str = "UTC"
    ts_unit: Literal["s", "ms", "us", "ns"] | None = None
    at_risk_cycles: float = 1.5
    churn_cycles: float = 2.0
    horizon_days: int = 365
    category_horizon_days: Mapping[Any, int] | None = None
    prior_weight: float = 1.0
    prior_days: float | None = None
    category_prior_days: Mapping[Any, float] | None = None
    rfm_bins: int = 5
    cuts: RfmCuts | None = None
    segment_map: SegmentMap | None = None
    actions: ActionsOption = False
    model: Literal["bgnbd"] | None = None
    model_horizon_days: float = 90.0
    model_penalizer: float = 0.0
    on_error: Literal["raise", "quarantine"] = "raise"
    threads: int | None = None

    def __post_init__(self) -> None:
        names = [self.customer_col, self.ts_col, self.amount_col]
        if self.category_col is not None:
            names.append(self.category_col)
        for name in names:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"column names must be non-empty strings, got {name!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"column names must differ, got {names}")
        if not isinstance(self.tz, str) or not self.tz:
            raise ConfigError(f"tz must be a time zone name such as 'UTC', got {self.tz!r}")
        if self.ts_unit is not None and self.ts_unit not in TS_UNITS:
            raise ConfigError(f"ts_unit must be one of {TS_UNITS}, got {self.ts_unit!r}")
        at_risk = _check_positive("at_risk_cycles", self.at_risk_cycles)
        churn = _check_positive("churn_cycles", self.churn_cycles)
        if at_risk > churn:
            raise ConfigError(f"at_risk_cycles ({at_risk}) must not exceed churn_cycles ({churn})")
        object.__setattr__(self, "at_risk_cycles", at_risk)
        object.__setattr__(self, "churn_cycles", churn)
        object.__setattr__(self, "horizon_days", _check_days("horizon_days", self.horizon_days))
        weight = _check_positive("prior_weight", self.prior_weight, allow_zero=True)
        object.__setattr__(self, "prior_weight", weight)
        if self.prior_days is not None:
            object.__setattr__(self, "prior_days", _check_positive("prior_days", self.prior_days))
        if self.category_col is None and (self.category_horizon_days or self.category_prior_days):
            raise ConfigError("category_horizon_days/category_prior_days need category_col")
        if self.category_horizon_days is not None:
            object.__setattr__(
                self,
                "category_horizon_days",
                {k: _check_days(f"category_horizon_days[{k!r}]", v)
                 for k, v in self.category_horizon_days.items()},
            )  # fmt: skip
        if self.category_prior_days is not None:
            object.__setattr__(
                self,
                "category_prior_days",
                {k: _check_positive(f"category_prior_days[{k!r}]", v)
                 for k, v in self.category_prior_days.items()},
            )  # fmt: skip
        if isinstance(self.rfm_bins, bool) or not isinstance(self.rfm_bins, int):
            raise ConfigError(f"rfm_bins must be an int, got {self.rfm_bins!r}")
        if not 2 <= self.rfm_bins <= 9:
            raise ConfigError(f"rfm_bins must be between 2 and 9, got {self.rfm_bins}")
        if self.cuts is not None:
            if not isinstance(self.cuts, RfmCuts):
                object.__setattr__(self, "cuts", RfmCuts.from_dict(self.cuts))
            assert self.cuts is not None
            if self.cuts.bins != self.rfm_bins:
                raise ConfigError(
                    f"cuts have {self.cuts.bins} bins but rfm_bins is {self.rfm_bins}"
                )
        if self.segment_map is not None:
            validate_segment_map(self.segment_map, self.rfm_bins)
        object.__setattr__(self, "actions", self._resolve_actions())
        if self.model not in (None, "bgnbd"):
            raise ConfigError(f"model must be None or 'bgnbd', got {self.model!r}")
        if self.model is not None and importlib.util.find_spec("scipy") is None:
            raise ConfigError(
                "model='bgnbd' needs SciPy, an optional dependency: "
                'pip install "churn-engine[models]"'
            )
        for name in ("model_horizon_days", "model_penalizer"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.on_error not in ("raise", "quarantine"):
            raise ConfigError(f"on_error must be 'raise' or 'quarantine', got {self.on_error!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(f"threads must be a positive int, got {self.threads!r}")

    # -- derived values used by the kernel and the reference ----------------

    def effective_segment_map(self) -> SegmentMap | None:
        """The segment map in force, or None when segments are not defined."""
        if self.segment_map is not None:
            return self.segment_map
        return DEFAULT_SEGMENT_MAP if self.rfm_bins == 5 else None

    def action_table(self) -> ActionTable | None:
        """The validated action table, or None when actions are off."""
        table = self.actions
        return table if isinstance(table, ActionTable) else None

    def _resolve_actions(self) -> ActionTable | None:
        table = ActionTable.resolve(self.actions)
        if table is None:
            return None
        segment_map = self.effective_segment_map()
        if self.actions is True and segment_map is None:
            # the default table's segment rules need the default segments
            table = table.without_segments()
        try:
            table.check_segments([str(name) for name in segment_map or {}])
        except ConfigError as exc:
            if self.actions is not True:
                raise
            raise ConfigError(
                f"{exc}; the default action table covers the default segments only: "
                "with your own segment_map pass actions= a table for its segments"
            ) from None
        return table

    def horizon_for(self, category: Any = None) -> int:
        if self.category_horizon_days and category in self.category_horizon_days:
            return int(self.category_horizon_days[category])
        return int(self.horizon_days)

    def fixed_prior_for(self, category: Any = None) -> float | None:
        if self.category_prior_days and category in self.category_prior_days:
            return float(self.category_prior_days[category])
        return self.prior_days

    def reason_codes(self, horizon_days: int) -> dict[str, str]:
        """Machine-readable ``status_reason`` values (DESIGN.md section 4)."""
        return reason_codes(self.at_risk_cycles, self.churn_cycles, horizon_days)


def _check_days(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number of days, got {value!r}")
    return int(value)


def reason_codes(at_risk_cycles: float, churn_cycles: float, horizon_days: int) -> dict[str, str]:
    """The ``status_reason`` strings, keyed by the rule that decided.

    Thresholds are written with ``repr(float)`` so the defaults read
    ``cycles>=2.0`` and ``cycles>=1.5``, as in DESIGN.md.
    """
    a, c = repr(float(at_risk_cycles)), repr(float(churn_cycles))
    return {
        "horizon": f"no_purchase_{int(horizon_days)}d",
        "churn_cycles": f"cycles>={c}",
        "at_risk_cycles": f"cycles>={a}",
        "active_cycles": f"cycles<{a}",
        "one_time_at_risk": f"one_time_recency>={a}x_prior",
        "one_time_active": f"one_time_recency<{a}x_prior",
        "one_time_no_prior": "one_time_no_prior",
    }
