"""churn-engine: batch customer-churn scoring (purchase cycles, churn status, RFM)."""

from __future__ import annotations

from ._rate import churn_rate
from ._stats import ScoreResult, ScoreStats
from .api import Scorer, score
from .config import DEFAULT_SEGMENT_MAP, RfmCuts, ScoreConfig
from .errors import ChurnEngineError, ConfigError, DataError, KernelError, SchemaError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "ChurnEngineError",
    "ConfigError",
    "DataError",
    "KernelError",
    "RfmCuts",
    "SchemaError",
    "ScoreConfig",
    "ScoreResult",
    "ScoreStats",
    "Scorer",
    "__version__",
    "churn_rate",
    "score",
]
