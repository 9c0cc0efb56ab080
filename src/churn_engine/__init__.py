"""churn-engine: batch customer-churn scoring (purchase cycles, churn status, RFM)."""

from __future__ import annotations

from ._backtest import BacktestResult, Calibration, backtest, calibrate
from ._migration import Migration, migration
from ._rate import churn_rate
from ._stats import ScoreResult, ScoreStats
from .actions import Action, ActionTable
from .api import Scorer, score
from .config import DEFAULT_SEGMENT_MAP, RfmCuts, ScoreConfig
from .errors import (
    ChurnEngineError,
    ConfigError,
    DataError,
    KernelError,
    ModelError,
    SchemaError,
)
from .funnel import FunnelResult, FunnelStats, funnel
from .products import (
    PRODUCT_CLASSES,
    ProductResult,
    ProductRules,
    ProductThresholds,
    product_classes,
)
from .report import ReportSection, render_report, report, report_sections
from .summary import lifetimes_summary

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SEGMENT_MAP",
    "PRODUCT_CLASSES",
    "Action",
    "ActionTable",
    "BacktestResult",
    "Calibration",
    "ChurnEngineError",
    "ConfigError",
    "DataError",
    "FunnelResult",
    "FunnelStats",
    "KernelError",
    "Migration",
    "ModelError",
    "ProductResult",
    "ProductRules",
    "ProductThresholds",
    "ReportSection",
    "RfmCuts",
    "SchemaError",
    "ScoreConfig",
    "ScoreResult",
    "ScoreStats",
    "Scorer",
    "__version__",
    "backtest",
    "calibrate",
    "churn_rate",
    "funnel",
    "lifetimes_summary",
    "migration",
    "product_classes",
    "render_report",
    "report",
    "report_sections",
    "score",
]
