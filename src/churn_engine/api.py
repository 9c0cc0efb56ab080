"""The public entry points: :func:`score` and :class:`Scorer` (orchestration only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from ._stats import ScoreResult
from .config import ScoreConfig

__all__ = ["Scorer", "score"]

AsOf = dt.date | dt.datetime | str | None
Progress = Callable[[str], None]


class Scorer:
    """Scores transaction logs with one validated :class:`ScoreConfig`."""

    def __init__(self, config: ScoreConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass either a ScoreConfig or keyword options, not both")
        self.config = config if config is not None else ScoreConfig(**options)

    def run(self, data: Any, as_of: AsOf = None, *, progress: Progress | None = None) -> ScoreResult:
        raise NotImplementedError


def score(data: Any, *, as_of: AsOf = None, **options: Any) -> pl.DataFrame:
    """Score every customer of ``data``; see :class:`Scorer` and DESIGN.md section 4."""
    return Scorer(ScoreConfig(**options)).run(data, as_of=as_of).customers
