"""Run statistics and the result object of a scoring run."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from .config import RfmCuts

__all__ = ["ScoreResult", "ScoreStats"]


@dataclasses.dataclass(frozen=True)
class ScoreStats:
    """What a run read, kept, rejected and produced.

    ``rows_accepted + rows_rejected + rows_after_as_of == rows_read`` always
    holds; rejected rows are counted by reason in ``rejected_by_reason``.
    """

    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rows_after_as_of: int
    rejected_by_reason: dict[str, int]
    customers: int
    customers_without_purchase: int
    as_of: dt.date | dt.datetime | None
    as_of_day: dt.date | None
    timings: dict[str, float]

    def reconciles(self) -> bool:
        return (
            self.rows_accepted + self.rows_rejected + self.rows_after_as_of == self.rows_read
            and sum(self.rejected_by_reason.values()) == self.rows_rejected
        )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """The outcome of :meth:`churn_engine.Scorer.run`.

    Attributes
    ----------
    customers : polars.DataFrame
        One row per customer (per customer x category), DESIGN.md section 4.
    cuts : RfmCuts or None
        The RFM cut points used (None when nothing was scored).
    stats : ScoreStats
        Row and customer counts, ``as_of`` and stage timings.
    rejects : polars.DataFrame or None
        The rejected rows with ``row`` and ``reason`` when ``on_error="quarantine"``.
    """

    customers: pl.DataFrame
    cuts: RfmCuts | None
    stats: ScoreStats
    rejects: pl.DataFrame | None = None
