"""The human-readable summaries the ``churn-engine`` commands print: of a
scoring run (score, demo) and of a churn-rate run."""

from __future__ import annotations

import datetime as dt
import functools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from ._rate import ChurnRateRun
from ._stats import ScoreResult
from .config import BUYER_TYPES, STATUSES


def format_summary(result: ScoreResult, elapsed: float) -> str:
    """A human-readable summary of a scoring run.

    Rows read, accepted, rejected (by reason) and after ``as_of``; customers;
    ``as_of``; customers by status (count and share), the churn rate
    (churned / scored customers), customers by buyer type, by segment and,
    when the ``action`` column is there, by action (most common first); the
    time taken.

    Shares are of the scored rows of ``result.customers`` (customer x
    category rows when scoring per category).
    """
    stats = result.stats
    frame = result.customers
    scored = frame.height
    lines: list[str] = []
    add = functools.partial(_add_line, lines)

    def share(count: int) -> str:
        return f"{100.0 * count / scored:5.1f} %" if scored else "    - %"

    _add_rows(lines, stats.rows_read, stats.rows_accepted, stats.rows_rejected,
              stats.rejected_by_reason)  # fmt: skip
    add("  after as_of (not used)", stats.rows_after_as_of)
    add("customers", stats.customers)
    if stats.customers_without_purchase:
        add("  without purchase (refunds only)", stats.customers_without_purchase)
    if scored != stats.customers:
        add("scored rows", scored, "(customer x category)")
    add("as of", _format_as_of(stats.as_of, stats.as_of_day))

    def add_counts(column: str, heading: str, known: Sequence[str]) -> dict[Any, int]:
        """Customers by ``column``: the ``known`` values first, in their order, then others."""
        counts = _counts(frame, column)
        lines.append(heading)
        for value in (*known, *sorted(set(counts) - set(known), key=str)):
            count = counts.get(value, 0)
            add(f"  {_label(value)}", count, share(count))
        return counts

    if "status" in frame.columns:
        churned = add_counts("status", "status", STATUSES).get("churned", 0)
        rate = f"{100.0 * churned / scored:.1f} %" if scored else "-"
        add("churn rate", rate, "(churned / customers)")
    if "buyer_type" in frame.columns:
        add_counts("buyer_type", "buyer type", BUYER_TYPES)
    if "segment" in frame.columns:
        counts = _counts(frame, "segment")
        lines.append("segment")
        for segment, count in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            add(f"  {_label(segment, none='(no segment)')}", count, share(count))
    if "action" in frame.columns:
        counts = _counts(frame, "action")
        lines.append("action")
        # keys can be longer than the 28-character labels: pad them all alike
        width = max([26, *(len(_label(key)) + 2 for key in counts)])
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            lines.append(f"  {_label(key):<{width}}{count:>12,}  {share(count)}")

    add("time", f"{elapsed:.2f} s")
    if stats.timings:
        stages = [f"{stage} {seconds:.2f} s" for stage, seconds in stats.timings.items()]
        lines.extend(textwrap.wrap(", ".join(stages), 76, initial_indent="  stages: ",
                                   subsequent_indent="          "))  # fmt: skip
    return "\n".join(lines)


def format_churn_rate_summary(run: ChurnRateRun, freq: str, elapsed: float) -> str:
    """A human-readable summary of a churn-rate run.

    Rows read, accepted, rejected and after ``end``; the window, horizon and
    number of rows; then for the curve (each category's with
    ``category_col``, the first 20) the churn rate on its first and last row
    and its lowest and highest value, with dates and counts.
    """
    prepared = run.prepared
    table = run.table
    lines: list[str] = []
    add = functools.partial(_add_line, lines)

    _add_rows(lines, prepared.rows_read, prepared.n_rows, prepared.rows_rejected,
              prepared.rejected_by_reason)  # fmt: skip
    add("  after end (not used)", prepared.rows_after_as_of)
    if run.start is None or run.end is None:
        add("window", "-", "(no rows)")
    else:
        days = (run.end - run.start).days + 1
        add("window", f"{run.start} .. {run.end}", f"({days:,} days)")
    low, high = min(run.horizons, default=0), max(run.horizons, default=0)
    add("horizon", f"{low} days" if low == high else f"{low}..{high} days")
    add("rows", table.height, f"(one per {_FREQ_NAMES[freq]})")
    if table.columns[0] != "date":
        category = table.columns[0]
        shown = table.get_column(category).unique(maintain_order=True)
        for value in shown.head(_SUMMARY_CATEGORIES).to_list():
            lines.append(f"churn rate, {category} = {value!r}")
            lines.extend(_curve_lines(table.filter(pl.col(category).eq_missing(value))))
        if shown.len() > _SUMMARY_CATEGORIES:
            lines.append(f"  ... {shown.len() - _SUMMARY_CATEGORIES:,} more categories")
    else:
        lines.append("churn rate (churned / customers)")
        lines.extend(_curve_lines(table))
    add("time", f"{elapsed:.2f} s")
    return "\n".join(lines)


_FREQ_NAMES = {"D": "day", "W": "week, dated at its last day", "M": "month, dated at its last day"}
_SUMMARY_CATEGORIES = 20


def _add_line(lines: list[str], label: str, value: object = "", note: str = "") -> None:
    """A label, a right-aligned value (whole numbers with thousands separators), a note."""
    text = f"{value:,}" if isinstance(value, int) else str(value)
    line = f"{label:<28}{text:>12}"
    lines.append(f"{line}  {note}".rstrip() if note else line.rstrip())


def _add_rows(
    lines: list[str], read: int, accepted: int, rejected: int, by_reason: Mapping[str, int]
) -> None:
    """The rows read, accepted and rejected (with the reasons, most common first)."""
    add = functools.partial(_add_line, lines)
    add("rows read", read)
    add("  accepted", accepted)
    reasons = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    add(
        "  rejected",
        rejected,
        "(" + ", ".join(f"{reason}: {count:,}" for reason, count in reasons) + ")"
        if reasons
        else "",
    )


def _counts(frame: pl.DataFrame, column: str) -> dict[Any, int]:
    counts = frame.group_by(column).agg(pl.len().alias("n"))
    return dict(zip(counts[column].to_list(), counts["n"].to_list(), strict=True))


def _label(value: Any, *, none: str = "(null)") -> str:
    return none if value is None else str(value)


def _format_as_of(as_of: dt.date | dt.datetime | None, day: dt.date | None) -> str:
    if as_of is None:
        return "-" if day is None else day.isoformat()
    if isinstance(as_of, dt.datetime):
        return as_of.isoformat(sep=" ")
    return f"{as_of.isoformat()} (end of day)"


def _curve_lines(curve: pl.DataFrame) -> list[str]:
    """first / last / min / max of one curve's churn_rate, with dates and counts."""
    if curve.is_empty():
        return ["  (no rows)"]

    def line(label: str, row: dict[str, Any]) -> str:
        rate = row["churn_rate"]
        text = "      - %" if rate is None else f"{100.0 * rate:7.1f} %"
        counts = f"{row['churned']:,} of {row['customers']:,} customers"
        return f"  {label:<8}{row['date']!s:<12}{text:>12}  ({counts})"

    rows = [line("first", curve.row(0, named=True)), line("last", curve.row(-1, named=True))]
    rated = curve.filter(pl.col("churn_rate").is_not_null())
    if not rated.is_empty():
        rates = rated.get_column("churn_rate")
        rows.append(line("lowest", rated.row(int(rates.arg_min() or 0), named=True)))
        rows.append(line("highest", rated.row(int(rates.arg_max() or 0), named=True)))
    return rows
