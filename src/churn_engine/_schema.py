"""The output schema of a score (DESIGN.md section 4), shared by api and reference."""

from __future__ import annotations

import polars as pl

#: Output columns after ``customer_id`` (and the category column, when given).
#: ``monetary_total``/``refund_total`` are Int64 when the amount column is an
#: integer type (summed exactly, overflow reported) and Float64 otherwise.
SCORE_COLUMNS: dict[str, pl.DataType] = {
    "n_orders": pl.Int64(),
    "n_rows": pl.Int64(),
    "first_purchase": pl.Date(),
    "last_purchase": pl.Date(),
    "tenure_days": pl.Int64(),
    "recency_days": pl.Int64(),
    "monetary_total": pl.Float64(),
    "refund_total": pl.Float64(),
    "monetary_mean": pl.Float64(),
    "interval_mean_days": pl.Float64(),
    "interval_std_days": pl.Float64(),
    "interval_median_days": pl.Float64(),
    "cycle_days": pl.Float64(),
    "cycles_since_last": pl.Float64(),
    "expected_next_purchase": pl.Date(),
    "days_overdue": pl.Float64(),
    "buyer_type": pl.String(),
    "status": pl.String(),
    "status_reason": pl.String(),
    "r_score": pl.Int8(),
    "f_score": pl.Int8(),
    "m_score": pl.Int8(),
    "rfm_code": pl.String(),
    "segment": pl.String(),
}

MONEY_COLUMNS = ("monetary_total", "refund_total")

#: Added after ``segment`` when ``ScoreConfig.actions`` is set (docs/actions.md).
ACTION_COLUMNS: dict[str, pl.DataType] = {
    "action": pl.String(),
    "action_reason": pl.String(),
}

#: Added last when ``ScoreConfig.model == "bgnbd"`` (docs/models.md).
MODEL_COLUMNS: dict[str, pl.DataType] = {
    "p_alive": pl.Float64(),
    "expected_purchases": pl.Float64(),
}


def output_schema(
    customer_col: str,
    customer_dtype: pl.DataType,
    category_col: str | None = None,
    category_dtype: pl.DataType | None = None,
    integer_amounts: bool = False,
    actions: bool = False,
    model: bool = False,
) -> dict[str, pl.DataType]:
    """The full output schema for the given key columns and amount kind
    (with the action columns when ``actions``, the model's when ``model``)."""
    schema: dict[str, pl.DataType] = {customer_col: customer_dtype}
    if category_col is not None:
        assert category_dtype is not None
        schema[category_col] = category_dtype
    for name, dtype in SCORE_COLUMNS.items():
        schema[name] = pl.Int64() if integer_amounts and name in MONEY_COLUMNS else dtype
    if actions:
        schema.update(ACTION_COLUMNS)
    if model:
        schema.update(MODEL_COLUMNS)
    return schema
