"""Every customer's purchase occasions, for analyses beyond the score.

The score needs per-customer statistics only; the lifetimes summary, the
churn-rate curve and the backtest need the occasions themselves. They come
from the same pipeline (validate → group in the kernel), then one more
kernel walk writes each group's occasion days and purchase amounts as a
CSR layout: group ``g`` owns ``day[offsets[g]:offsets[g + 1]]``, days
ascending. Groups are in the score's order (ascending customer id, then
category), so their ids line up with a score of the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from . import _kernel
from ._prebound import prepare_source
from ._prepare import Prepared, parse_as_of
from ._threads import kernel_threads
from .config import ScoreConfig

__all__ = ["Occasions", "collect_occasions", "group_prepared"]


def group_prepared(prepared: Prepared, threads: int, *, packed: bool = False) -> _kernel.Grouped:
    """The kernel's grouping of the accepted rows (stage "group" of a score).

    ``packed``: only the statistics will read the rows, so they may be kept
    as 16-byte records (see ``_kernel.group_rows``).
    """
    return _kernel.group_rows(
        prepared.id_segments, prepared.id_rank_of_code, prepared.day_segments,
        prepared.amount_bits, prepared.cat_segments, prepared.n_rows,
        prepared.integer_amounts, threads, packed,
    )  # fmt: skip


@dataclass
class Occasions:
    """Purchase occasions of every group (customer, or customer x category)."""

    prepared: Prepared
    #: per-group statistics of :func:`_kernel.group_statistics` (key, cat, n_orders, ...)
    groups: dict[str, np.ndarray]
    #: int64, ``n_groups + 1`` entries
    offsets: np.ndarray
    #: int32 day numbers (days since 1970-01-01 in ``tz``), ascending per group
    day: np.ndarray
    #: float64 sum of the purchase amounts of each occasion (refunds excluded)
    amount: np.ndarray
    #: groups whose rows are all refunds (not scored, no occasions)
    no_purchase: int
    #: threads of the compiled passes (the config's; 0: all cores)
    threads: int = 0

    @property
    def n_groups(self) -> int:
        return len(self.offsets) - 1

    @property
    def as_of_day(self) -> int | None:
        return self.prepared.as_of_day

    def customer_ids(self, name: str) -> pl.Series:
        """The groups' customer ids, with the input's values and type."""
        from .api import _customer_ids

        return _customer_ids(self.prepared, self.groups["key"], name, self.threads)

    def categories(self, name: str) -> pl.Series | None:
        """The groups' categories (``None`` without ``category_col``)."""
        prepared = self.prepared
        if prepared.categories is None or prepared.cat_dtype is None:
            return None
        return prepared.categories.gather(self.groups["cat"]).cast(prepared.cat_dtype).alias(name)


def collect_occasions(data: Any, config: ScoreConfig, as_of: Any = None) -> Occasions:
    """Validate ``data`` like a score and return every group's occasions up to ``as_of``."""
    prepared = prepare_source(data, config, parse_as_of(as_of))
    threads = kernel_threads(config, prepared.n_rows)
    if prepared.n_rows == 0:
        empty = _kernel.statistics_arrays(0, prepared.integer_amounts)
        return Occasions(prepared, empty, np.zeros(1, np.int64), np.empty(0, np.int32),
                         np.empty(0, np.float64), 0, threads)  # fmt: skip
    grouped = group_prepared(prepared, threads)
    groups = _kernel.group_statistics(grouped, prepared.integer_amounts, threads)
    offsets = np.zeros(len(groups["n_orders"]) + 1, dtype=np.int64)
    np.cumsum(groups["n_orders"], out=offsets[1:])
    day, amount = _kernel.occasions(grouped, offsets, prepared.integer_amounts, threads)
    return Occasions(prepared, groups, offsets, day, amount, grouped.no_purchase, threads)
