"""churn-engine: batch customer-churn scoring (purchase cycles, churn status, RFM)."""

from __future__ import annotations

from ._stats import ScoreResult, ScoreStats
from .api import Scorer, score
from .config import DEFAULT_SEGMENT_MAP, RfmCuts, ScoreConfig
from .errors import ChurnEngineError, ConfigError, DataError, KernelError, SchemaError
from .products import (
    PRODUCT_CLASSES,
    ProductResult,
    ProductRules,
    ProductThresholds,
    product_classes,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "PRODUCT_CLASSES",
    "ChurnEngineError",
    "ConfigError",
    "DataError",
    "KernelError",
    "ProductResult",
    "ProductRules",
    "ProductThresholds",
    "RfmCuts",
    "SchemaError",
    "ScoreConfig",
    "ScoreResult",
    "ScoreStats",
    "Scorer",
    "__version__",
    "product_classes",
    "score",
]
