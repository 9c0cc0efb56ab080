"""Status and segment migration between two dates (docs/actions.md).

:func:`migration` scores the same log as of two dates and reports, per
customer and as from x to matrices, who moved between ``active``,
``at_risk`` and ``churned`` (and between segments): who slipped from active
to at risk, who came back. Customers without a purchase at the first date
start in the state ``new``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ._io import open_source
from ._prepare import parse_as_of
from ._stats import ScoreStats
from .api import AsOf, Scorer
from .config import STATUSES, ScoreConfig
from .errors import ChurnEngineError, ConfigError

__all__ = ["NEW", "Migration", "migration"]

#: The from-state of customers with no purchase up to the first date.
NEW = "new"

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True, eq=False)
class Migration:
    """Who moved where between two scoring dates.

    Attributes
    ----------
    from_as_of, to_as_of : date or datetime
        The two dates (a date means the end of that day).
    customers : polars.DataFrame
        One row per customer scored at ``to_as_of`` (per customer x category
        with ``category_col``), in the order of :func:`churn_engine.score`:
        the key column(s), ``status_from``, ``status_to``, ``segment_from``,
        ``segment_to`` (the segment columns only when segments are defined),
        and ``action`` (at ``to_as_of``) when the ``actions`` option is set.
        ``status_from``/``segment_from`` are ``"new"`` for customers with no
        purchase up to ``from_as_of``.
    status : polars.DataFrame
        The status matrix in long form: ``status_from`` (new, active,
        at_risk, churned) x ``status_to`` (active, at_risk, churned), every
        cell listed (zeros too), with ``customers`` (count) and ``share``
        (of the ``status_from`` row; null for an empty row).
    segment : polars.DataFrame or None
        The same by segment (``segment_from``: new and every segment;
        ``segment_to``: every segment, in segment-map order); None when
        segments are not defined (``rfm_bins != 5`` without a map).
    from_stats, to_stats : ScoreStats
        The statistics of the two scoring runs.
    """

    from_as_of: dt.date | dt.datetime
    to_as_of: dt.date | dt.datetime
    customers: pl.DataFrame
    status: pl.DataFrame
    segment: pl.DataFrame | None
    from_stats: ScoreStats
    to_stats: ScoreStats

    # -- matrices --------------------------------------------------------------

    @property
    def status_matrix(self) -> pl.DataFrame:
        """The status matrix, wide: one row per from-state, one column per
        to-state, and ``total``."""
        return _wide(self.status, "status")

    @property
    def segment_matrix(self) -> pl.DataFrame | None:
        """The segment matrix, wide (None without segments)."""
        return None if self.segment is None else _wide(self.segment, "segment")

    def count(self, status_from: str | Sequence[str], status_to: str | Sequence[str]) -> int:
        """Customers who moved from (any of) ``status_from`` to (any of) ``status_to``."""
        froms = [status_from] if isinstance(status_from, str) else list(status_from)
        tos = [status_to] if isinstance(status_to, str) else list(status_to)
        for state in froms:
            if state not in (NEW, *STATUSES):
                raise ConfigError(f"status_from must be one of {(NEW, *STATUSES)}, got {state!r}")
        for state in tos:
            if state not in STATUSES:
                raise ConfigError(f"status_to must be one of {STATUSES}, got {state!r}")
        cells = self.status.filter(
            pl.col("status_from").is_in(froms) & pl.col("status_to").is_in(tos)
        )
        return int(cells["customers"].sum())

    # -- the numbers a retention team asks for ---------------------------------

    @property
    def active_to_at_risk(self) -> int:
        """Active at the first date, at risk at the second."""
        return self.count("active", "at_risk")

    @property
    def active_to_churned(self) -> int:
        """Active at the first date, churned at the second."""
        return self.count("active", "churned")

    @property
    def at_risk_to_churned(self) -> int:
        """At risk at the first date, churned at the second."""
        return self.count("at_risk", "churned")

    @property
    def came_back(self) -> int:
        """At risk or churned at the first date, active at the second."""
        return self.count(("at_risk", "churned"), "active")

    @property
    def stayed_active(self) -> int:
        """Active at both dates."""
        return self.count("active", "active")

    @property
    def new_customers(self) -> int:
        """First purchase after the first date (up to the second)."""
        return self.count(NEW, STATUSES)

    def summary(self) -> dict[str, int]:
        """The numbers above as a dict."""
        return {
            "customers": self.customers.height,
            "new_customers": self.new_customers,
            "stayed_active": self.stayed_active,
            "active_to_at_risk": self.active_to_at_risk,
            "active_to_churned": self.active_to_churned,
            "at_risk_to_churned": self.at_risk_to_churned,
            "came_back": self.came_back,
        }

    def __str__(self) -> str:
        lines = [
            f"migration from {_format_as_of(self.from_as_of)} to {_format_as_of(self.to_as_of)}: "
            f"{self.customers.height:,} customers ({self.new_customers:,} new)",
            "",
            *_format_matrix(self.status_matrix, "status"),
            "",
        ]
        from_totals = {
            state: int(self.status.filter(pl.col("status_from") == state)["customers"].sum())
            for state in (NEW, *STATUSES)
        }

        def flow(label: str, count: int, of: Sequence[str]) -> None:
            base = sum(from_totals[s] for s in of)
            share = f"{100.0 * count / base:5.1f} % of {'/'.join(of)}" if base else ""
            lines.append(f"{label:<40}{count:>12,}  {share}".rstrip())

        flow("active -> at_risk", self.active_to_at_risk, ["active"])
        flow("active -> churned", self.active_to_churned, ["active"])
        flow("at_risk -> churned", self.at_risk_to_churned, ["at_risk"])
        flow("came back (at_risk/churned -> active)", self.came_back, ["at_risk", "churned"])
        if self.segment is not None:
            moves = (
                self.segment.filter(
                    (pl.col("segment_from") != pl.col("segment_to")) & (pl.col("customers") > 0)
                )
                .sort("customers", descending=True, maintain_order=True)
                .head(10)
            )
            if moves.height:
                lines += ["", "largest segment moves"]
                for source, target, count in moves.select(
                    "segment_from", "segment_to", "customers"
                ).iter_rows():
                    lines.append(f"  {f'{source} -> {target}':<38}{count:>12,}")
        return "\n".join(lines)


def migration(
    data: Any,
    from_as_of: AsOf,
    to_as_of: AsOf,
    *,
    config: ScoreConfig | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Migration:
    """Status and segment migration of the customers of ``data`` between two dates.

    The log is scored twice (as of each date, with the same options; RFM cut
    points are each date's own unless ``cuts`` is given) and the two results
    are joined on the customer (and category) key.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The transaction log (DESIGN.md section 3). One-shot streams are read once.
    from_as_of, to_as_of : date, datetime or ISO string
        The two dates; ``from_as_of`` must be before ``to_as_of``.
    config : ScoreConfig, optional
        The options; alternatively pass them as keywords (as for :func:`score`).
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    Migration

    Raises
    ------
    ConfigError
        A missing or unparseable date, or ``from_as_of`` not before ``to_as_of``.
    """
    if config is not None and options:
        raise TypeError("pass either a ScoreConfig or keyword options, not both")
    config = config if config is not None else ScoreConfig(**options)
    start, end = parse_as_of(from_as_of), parse_as_of(to_as_of)
    if start is None or end is None:
        raise ConfigError("migration needs both from_as_of and to_as_of")
    if not _cutoff(start, config.tz) < _cutoff(end, config.tz):
        raise ConfigError(f"from_as_of ({start}) must be before to_as_of ({end})")

    # a path is scanned again cheaply (and keeps the lenient CSV re-read);
    # any other source is wrapped once, so one-shot streams are read once
    source = data if isinstance(data, (str, os.PathLike)) else open_source(data)
    # actions are reported at the second date only
    first = config if config.action_table() is None else dataclasses.replace(config, actions=None)
    before = Scorer(first).run(source, as_of=start, progress=_prefixed(progress, "from"))
    after = Scorer(config).run(source, as_of=end, progress=_prefixed(progress, "to"))
    if progress is not None:
        progress("migration")

    keys = [config.customer_col]
    if config.category_col is not None:
        keys.append(config.category_col)
    segment_map = config.effective_segment_map()
    segments = [str(name) for name in segment_map] if segment_map is not None else None
    states = ["status"] if segments is None else ["status", "segment"]
    old = before.customers.select(*keys, *(pl.col(c).alias(f"{c}_from") for c in states))
    new = after.customers.select(
        *keys,
        *(pl.col(c).alias(f"{c}_to") for c in states),
        *(["action"] if config.action_table() is not None else []),
    )
    joined = new.join(old, on=keys, how="left", maintain_order="left")
    matched = joined.height - joined["status_from"].null_count()
    if matched != old.height:  # rows only accumulate, so every earlier customer is still there
        raise ChurnEngineError(
            f"migration: {old.height - matched} customers scored at {start} are missing at {end}"
        )
    order = [c for s in states for c in (f"{s}_from", f"{s}_to")]
    customers = joined.select(
        *keys,
        *(pl.col(c).fill_null(NEW) if c.endswith("_from") else pl.col(c) for c in order),
        *(["action"] if "action" in joined.columns else []),
    )
    return Migration(
        from_as_of=start,
        to_as_of=end,
        customers=customers,
        status=_long(customers, "status", [NEW, *STATUSES], list(STATUSES)),
        segment=(
            None if segments is None else _long(customers, "segment", [NEW, *segments], segments)
        ),
        from_stats=before.stats,
        to_stats=after.stats,
    )


# -- helpers -------------------------------------------------------------------


def _cutoff(as_of: dt.date | dt.datetime, tz: str) -> dt.datetime:
    """The last instant ``as_of`` includes, in ``tz`` (a date: the end of the day)."""
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"tz: unknown time zone {tz!r}") from None
    if not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of, dt.time.max)
    return as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=zone)


def _prefixed(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda stage: progress(f"{label}: {stage}")


def _long(
    customers: pl.DataFrame, kind: str, from_states: list[str], to_states: list[str]
) -> pl.DataFrame:
    """Counts of every from x to cell (zeros included) and the row shares."""
    source, target = f"{kind}_from", f"{kind}_to"
    counts = customers.group_by(source, target).agg(pl.len().cast(pl.Int64).alias("customers"))
    grid = pl.DataFrame(
        {
            source: [a for a in from_states for _ in to_states],
            target: [b for _ in from_states for b in to_states],
        },
        schema={source: pl.String, target: pl.String},
    )
    cells = grid.join(counts, on=[source, target], how="left", maintain_order="left")
    cells = cells.with_columns(pl.col("customers").fill_null(0))
    if int(cells["customers"].sum()) != customers.height:
        raise ChurnEngineError(f"migration: a {kind} outside {from_states} -> {to_states}")
    row_total = pl.col("customers").sum().over(source)
    return cells.with_columns(
        pl.when(row_total > 0).then(pl.col("customers") / row_total).alias("share")
    )


def _wide(cells: pl.DataFrame, kind: str) -> pl.DataFrame:
    source, target = f"{kind}_from", f"{kind}_to"
    to_states = cells[target].unique(maintain_order=True).to_list()
    wide = cells.pivot(on=target, index=source, values="customers")
    return wide.select(source, *to_states).with_columns(pl.sum_horizontal(to_states).alias("total"))


def _format_as_of(as_of: dt.date | dt.datetime) -> str:
    if isinstance(as_of, dt.datetime):
        return as_of.isoformat(sep=" ")
    return as_of.isoformat()


def _format_matrix(wide: pl.DataFrame, kind: str) -> list[str]:
    """A text table: from-states down, to-states across."""
    header = [f"{kind} from \\ to", *wide.columns[1:]]
    rows = [[str(row[0]), *(f"{v:,}" for v in row[1:])] for row in wide.iter_rows()]
    first = max(len(r[0]) for r in [header, *rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(1, len(header))]
    return [
        f"{r[0]:<{first}}" + "".join(f"  {v:>{w}}" for v, w in zip(r[1:], widths, strict=True))
        for r in [header, *rows]
    ]
