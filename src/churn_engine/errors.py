"""Exceptions raised by churn-engine; all derive from :class:`ChurnEngineError`."""

from __future__ import annotations

__all__ = [
    "ChurnEngineError",
    "ConfigError",
    "DataError",
    "KernelError",
    "ModelError",
    "SchemaError",
]


class ChurnEngineError(Exception):
    """Base class of every error churn-engine raises on purpose."""


class ConfigError(ChurnEngineError, ValueError):
    """An option is invalid (bad threshold, segment map with gaps, ...)."""


class SchemaError(ChurnEngineError, TypeError):
    """A column is missing or has a type that cannot be scored."""


class DataError(ChurnEngineError, ValueError):
    """A value is invalid (null id, unparseable timestamp, NaN amount, overflow, ...).

    Attributes
    ----------
    column : str | None
        The column holding the bad value.
    reason : str | None
        Machine-readable reason code, the same as in the rejects table.
    row : int | None
        0-based position of an example row in the input.
    """

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        reason: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(message)
        self.column = column
        self.reason = reason
        self.row = row


class KernelError(ChurnEngineError, RuntimeError):
    """The compiled kernel reported a failure it could not recover from."""


class ModelError(ChurnEngineError, RuntimeError):
    """A statistical model did not converge, or was used before it was fitted."""
