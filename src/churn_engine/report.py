"""The HTML report: one self-contained file with the key numbers and charts.

:func:`report` scores a transaction log and writes the report;
:func:`report_sections` turns a :class:`ScoreResult` (and optional extra
frames) into :class:`ReportSection` s; :func:`render_report` turns sections
into the HTML page. Charts are inline SVG drawn in Python
(:mod:`churn_engine._charts`); the page has no external reference at all
(no script, style sheet, font or image from elsewhere), so it opens offline.

Sections, in order (those without data are left out):

1. key numbers (always),
2. status mix by buyer type, with the status reasons,
3. the churn-rate curve (``churn_rate=`` frame),
4. RFM segments: customers and revenue per segment,
5. purchase cycles: their distribution and recency against cycle,
6. the funnel (``funnel=`` frame, or ``events=`` once the funnel analysis
   is plugged in),
7. product classes (``products=`` frame),
8. actions (``actions=`` frame).

The frames of sections 3 and 6-8 come from analyses kept in other modules;
their shapes are documented on :func:`report_sections` and in
docs/report.md. The ``_*_hook`` functions below are where :func:`report`
computes them itself when the caller does not pass them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from . import _charts as ch
from ._io import open_source
from ._rate import churn_rate as churn_rate_curve
from ._stats import ScoreResult
from ._writers import check_destination, write_text_atomic
from .api import AsOf, Scorer
from .config import BUYER_TYPES, STATUSES, ScoreConfig
from .errors import ConfigError
from .funnel import funnel as behaviour_funnel
from .products import product_classes

__all__ = [
    "DEFAULT_TITLE",
    "ReportSection",
    "actions_section",
    "churn_rate_section",
    "cycles_section",
    "funnel_section",
    "key_numbers_section",
    "products_section",
    "render_report",
    "report",
    "report_sections",
    "segments_section",
    "status_section",
]

DEFAULT_TITLE = "Customer churn report"
HTML_SUFFIXES = (".html", ".htm")
Progress = Callable[[str], None]

_STATUS_LABELS = {"active": "Active", "at_risk": "At risk", "churned": "Churned"}
_BUYER_LABELS = {"one_time": "One-time buyers", "repeat": "Repeat buyers"}
_CYCLE_BINS = 40
_HEAT_X_BINS, _HEAT_Y_BINS = 44, 30


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """One section of the report page.

    Attributes
    ----------
    key : str
        Anchor of the section (``id``), letters, digits and ``-``.
    title : str
        Heading (plain text).
    body : str
        HTML: charts and tables from :mod:`churn_engine._charts`, cards, notes.
    intro : str
        One plain-text paragraph under the heading (optional).
    """

    key: str
    title: str
    body: str
    intro: str = ""


# -- the entry point -------------------------------------------------------------


def report(
    data: Any,
    output: str | os.PathLike[str],
    *,
    as_of: AsOf = None,
    events: Any = None,
    title: str | None = None,
    progress: Progress | None = None,
    churn_rate: pl.DataFrame | None = None,
    funnel: pl.DataFrame | None = None,
    products: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
    config: ScoreConfig | None = None,
    **options: Any,
) -> pathlib.Path:
    """Score ``data`` and write a self-contained HTML report to ``output``.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The transaction log, as for :func:`churn_engine.score`.
    output : str or os.PathLike
        The ``.html`` (or ``.htm``) file to write; written atomically.
    as_of : date, datetime or ISO string, optional
        Score as of this point; default: the last day in the data.
    events : path or frame, optional
        An event log for the funnel section (see ``_funnel_hook``).
    title : str, optional
        Page title (default :data:`DEFAULT_TITLE`).
    progress : callable, optional
        Called with the name of each step as it starts: the scoring stages,
        then ``"charts"`` and ``"write"``.
    churn_rate, funnel, products, actions : polars.DataFrame, optional
        Ready-made frames for the optional sections (shapes in
        :func:`report_sections`); each wins over what ``report`` would
        compute itself.
    config : ScoreConfig, optional
        Scoring options; alternatively pass them as keywords (``**options``).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ConfigError
        Not an ``.html`` destination, a missing folder, bad options or a
        malformed section frame.
    SchemaError, DataError
        As :func:`churn_engine.score` for a bad transaction log.
    """
    dest = check_html_destination(output)
    if config is not None and options:
        raise TypeError("pass either a ScoreConfig or keyword options, not both")
    config = config if config is not None else ScoreConfig(**options)
    given = {"churn_rate": churn_rate, "funnel": funnel, "products": products, "actions": actions}
    for name, frame in given.items():  # fail before a long scoring run, not after
        if frame is not None:
            _check_frame(frame, name)
    if funnel is None and events is not None:
        _step(progress, "funnel")
        funnel = _funnel_hook(events, config)
    config = _with_actions(config)
    # a path is scanned again by each analysis; anything else is wrapped once,
    # so one-shot Arrow streams are read once and shared
    source = data if isinstance(data, (str, os.PathLike)) else open_source(data)
    result = Scorer(config).run(source, as_of=as_of, progress=progress)
    if churn_rate is None:
        _step(progress, "churn rate")
        churn_rate = _churn_rate_hook(source, result, config)
    if products is None:
        products = _products_hook(source, result, config, as_of, progress)
    if actions is None:
        actions = _actions_hook(result, config)
    _step(progress, "charts")
    sections = report_sections(
        result, config=config, churn_rate=churn_rate, funnel=funnel, products=products,
        actions=actions,
    )  # fmt: skip
    page = render_report(sections, title=title or DEFAULT_TITLE, subtitle=_subtitle(result))
    _step(progress, "write")
    return write_text_atomic(page, dest)


def check_html_destination(output: str | os.PathLike[str]) -> pathlib.Path:
    """``output`` as a path, checked: an ``.html``/``.htm`` name in an existing folder."""
    suffix = pathlib.Path(output).suffix.lower()
    if suffix not in HTML_SUFFIXES:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise ConfigError(
            f"the report is an HTML file: name it .html ({os.fspath(output)!r} has {shown})"
        )
    return check_destination(output)


def _step(progress: Progress | None, name: str) -> None:
    if progress is not None:
        progress(name)


# -- hook points: analyses that live in other modules ------------------------------
# Each returns the frame of its section (shape in report_sections) or None to
# leave the section out. Plug an analysis in by calling it here.


def _churn_rate_hook(data: Any, result: ScoreResult, config: ScoreConfig) -> pl.DataFrame | None:
    """The daily churn-rate curve of ``data`` up to the score's ``as_of`` day, with
    the score's no-purchase horizon (per customer, also when scoring per category)."""
    end = result.stats.as_of_day
    if end is None or result.customers.height == 0:
        return None
    options = {name: getattr(config, name) for name in _CHURN_RATE_OPTIONS}
    return churn_rate_curve(data, end=end, horizon_days=config.horizon_days, **options)


#: the ScoreConfig fields churn_rate() takes (reading and validation)
_CHURN_RATE_OPTIONS = ("customer_col", "ts_col", "amount_col", "tz", "ts_unit", "on_error",
                       "threads")  # fmt: skip


def _with_actions(config: ScoreConfig) -> ScoreConfig:
    """The report always shows the action table: the default one unless the
    config has its own (or its segment map leaves the default table no segments
    to act on, then none)."""
    if config.action_table() is not None:
        return config
    try:
        return dataclasses.replace(config, actions=True)
    except ConfigError:
        return config


def _funnel_hook(events: Any, config: ScoreConfig) -> pl.DataFrame | None:
    """Users at each step of the pv -> fav/cart -> buy funnel of an event log
    (:func:`churn_engine.funnel` with its default columns, days cut in ``tz``)."""
    result = behaviour_funnel(events, tz=config.tz, on_error=config.on_error)
    return result.funnel.select("step", pl.col("users").alias("count"))


def _products_hook(
    data: Any, result: ScoreResult, config: ScoreConfig, as_of: AsOf, progress: Progress | None
) -> pl.DataFrame | None:
    """Product classes when the log has an ``item_id`` column (with ``price``,
    ``cost`` and ``quantity`` used when present): items and revenue per class,
    and how many churned customers bought each class."""
    names = set(open_source(data).collect_schema().names())
    if PRODUCT_ITEM_COL not in names or result.customers.height == 0:
        return None
    _step(progress, "products")
    optional: dict[str, Any] = {
        f"{c}_col": c if c in names else None for c in ("price", "cost", "quantity")
    }
    options: dict[str, Any] = {name: getattr(config, name) for name in _PRODUCT_OPTIONS}
    found = product_classes(
        data, as_of=as_of, item_col=PRODUCT_ITEM_COL, customers=result.customers, **optional,
        **options,
    )  # fmt: skip
    churned = found.churned_mix.filter(pl.col("status") == "churned").select(
        "class",
        pl.col("customers").alias("churned_buyers"),
        pl.col("customer_share").alias("churned_buyer_share"),
    )
    return found.classes.join(churned, on="class", how="left", maintain_order="left")


#: the item column that turns the product-classes section on
PRODUCT_ITEM_COL = "item_id"
#: the ScoreConfig fields product_classes() takes (reading, validation, statuses)
_PRODUCT_OPTIONS = ("customer_col", "ts_col", "amount_col", "category_col", "tz", "ts_unit",
                    "on_error", "threads")  # fmt: skip


def _actions_hook(result: ScoreResult, config: ScoreConfig) -> pl.DataFrame | None:
    """Customers per suggested action and the rule that chose it, with the
    action's description and channel from the action table."""
    customers = result.customers
    table = config.action_table()
    if "action" not in customers.columns or table is None:
        return None
    counts = customers.group_by("action_reason", "action").agg(pl.len().alias("customers"))
    described = table.to_frame().select(
        pl.col("rule").alias("action_reason"), "description", "channel"
    )
    return counts.join(described, on="action_reason", how="left").sort("action_reason")


# -- sections ------------------------------------------------------------------------


def report_sections(
    result: ScoreResult,
    *,
    config: ScoreConfig | None = None,
    churn_rate: pl.DataFrame | None = None,
    funnel: pl.DataFrame | None = None,
    products: pl.DataFrame | None = None,
    actions: pl.DataFrame | None = None,
) -> list[ReportSection]:
    """The sections of the report, in page order; optional ones only with data.

    Parameters
    ----------
    result : ScoreResult
        A scoring run (:meth:`churn_engine.Scorer.run`).
    config : ScoreConfig, optional
        The options of that run (status thresholds drawn on the charts);
        default: the default options.
    churn_rate : polars.DataFrame, optional
        ``date`` (Date or Datetime), ``churn_rate`` (share, 0..1); optional
        ``customers`` and ``churned`` (counts shown in the tooltips).
    funnel : polars.DataFrame, optional
        ``step`` (String, in funnel order), ``count`` (integer reaching the step).
    products : polars.DataFrame, optional
        ``class`` and at least one numeric column; the first two of
        ``items``, ``products``, ``customers`` and ``revenue`` present (else
        the first numeric column) are charted; every column goes to the table.
    actions : polars.DataFrame, optional
        ``action`` (String) and the groups it is for: columns shared with
        the score output (``segment``, ``buyer_type``, ``status``,
        ``action_reason``); without a ``customers`` column the customers of
        each row are counted from ``result`` on those columns.
    """
    config = config if config is not None else ScoreConfig()
    customers = result.customers
    sections = [key_numbers_section(result, config)]
    if customers.height:
        sections.append(status_section(customers, config))
    if churn_rate is not None:
        sections.append(churn_rate_section(churn_rate))
    if customers.height:
        sections.append(segments_section(customers))
        sections.append(cycles_section(customers, config))
    if funnel is not None:
        sections.append(funnel_section(funnel))
    if products is not None:
        sections.append(products_section(products))
    if actions is not None:
        sections.append(actions_section(actions, customers))
    return sections


def key_numbers_section(result: ScoreResult, config: ScoreConfig | None = None) -> ReportSection:
    """Cards: customers, rows, as of, status shares, one-time share, revenue, cycle.

    With ``config.category_col`` the customer count is of customer x category rows.
    """
    stats = result.stats
    frame = result.customers
    n = frame.height
    cards: list[tuple[str, str, str, str, str]] = []  # key, label, value, detail, exact

    def card(key: str, label: str, value: str, detail: str, exact: object) -> None:
        cards.append((key, label, value, detail, str(exact)))

    per_category = config is not None and config.category_col in frame.columns
    card("customers", "Customer x category rows" if per_category else "Customers",
         ch.fmt_int(n), "scored", n)  # fmt: skip
    not_used = []
    if stats.rows_rejected:
        not_used.append(f"{stats.rows_rejected:,} rejected")
    if stats.rows_after_as_of:
        not_used.append(f"{stats.rows_after_as_of:,} after as of")
    card("rows", "Transactions used", ch.fmt_int(stats.rows_accepted),
         f"of {stats.rows_read:,} read" + (f" ({', '.join(not_used)})" if not_used else ""),
         stats.rows_accepted)  # fmt: skip
    as_of_text, as_of_detail = _as_of_parts(stats.as_of, stats.as_of_day)
    card("as_of", "As of", as_of_text, as_of_detail, as_of_text)
    if n:
        counts = frame.select(
            *[(pl.col("status") == s).sum().alias(s) for s in STATUSES],
            (pl.col("buyer_type") == "one_time").sum().alias("one_time"),
            pl.col("monetary_total").sum().alias("revenue"),
            pl.col("refund_total").sum().alias("refunds"),
            pl.col("cycle_days").filter(pl.col("buyer_type") == "repeat").median().alias("cycle"),
        ).row(0, named=True)
        for status in STATUSES:
            label = "Churned (churn rate)" if status == "churned" else _STATUS_LABELS[status]
            count = int(counts[status])
            card(status, label, ch.fmt_pct(count / n), f"{count:,} customers", count)
        one_time = int(counts["one_time"])
        card("one_time", "One-time buyers", ch.fmt_pct(one_time / n), f"{one_time:,} customers",
             one_time)  # fmt: skip
        revenue, refunds = counts["revenue"], counts["refunds"]
        card("revenue", "Revenue (net)", ch.fmt_compact(revenue),
             f"{ch.fmt_num(revenue / n)} per customer; refunds {ch.fmt_compact(refunds)}",
             revenue)  # fmt: skip
        if counts["cycle"] is not None:
            cycle = float(counts["cycle"])
            card("cycle", "Typical purchase cycle", ch.fmt_days(cycle),
                 "median over repeat buyers", round(cycle, 6))  # fmt: skip
    body = ['<div class="cards">']
    for key, label, value, detail, exact in cards:
        body.append(
            f'<div class="card card-{key}" data-key="{key}" data-value="{ch.esc(exact)}">'
            f'<div class="label">{ch.esc(label)}</div><div class="value">{ch.esc(value)}</div>'
            f'<div class="detail">{ch.esc(detail)}</div></div>'
        )
    body.append("</div>")
    intro = "" if n else "No customer was scored: the log has no purchase up to as of."
    return ReportSection("key-numbers", "Key numbers", "".join(body), intro)


def status_section(customers: pl.DataFrame, config: ScoreConfig | None = None) -> ReportSection:
    """Status mix (active / at risk / churned) for all customers and per buyer type."""
    counts = customers.group_by("buyer_type", "status").agg(pl.len().alias("n"))
    table = {(b, s): n for b, s, n in counts.iter_rows()}
    rows, matrix = [], []
    for key in ("all", *BUYER_TYPES):
        row = [sum(n for (b, s), n in table.items() if s == status and key in ("all", b))
               for status in STATUSES]  # fmt: skip
        total = sum(row)
        if key != "all" and total == 0:
            continue
        label = "All customers" if key == "all" else _BUYER_LABELS[key]
        share = "" if key == "all" else f" ({ch.fmt_pct(total / customers.height)})"
        rows.append((key, label, f"{total:,} customers{share}"))
        matrix.append(row)
    series = [(s, _STATUS_LABELS[s], ch.STATUS_COLORS[s]) for s in STATUSES]
    chart = ch.stacked_share_chart(
        "status_mix", "Status mix by buyer type", rows=rows, series=series, counts=matrix,
        subtitle="Share of customers in each status",
        note="One-time buyers have no gaps of their own: they are judged against the "
        "shop's typical cycle and churn only by the no-purchase horizon.",
    )  # fmt: skip
    reasons = (
        customers.group_by("status", "status_reason")
        .agg(pl.len().alias("customers"))
        .with_columns((pl.col("customers") / customers.height).alias("share"))
        .sort(pl.col("status").replace_strict(
            {s: i for i, s in enumerate(STATUSES)}, default=len(STATUSES),
            return_dtype=pl.Int32), pl.col("customers"), pl.col("status_reason"),
            descending=[False, True, False])
    )  # fmt: skip
    reason_table = ch.table(
        "status_reasons", "Why: the rule that decided", reasons,
        formats={"share": ch.fmt_pct, "status": lambda s: _STATUS_LABELS.get(s, str(s))},
        headers={"status_reason": "reason"},
        subtitle="status_reason codes (docs/definitions.md)",
    )  # fmt: skip
    config = config if config is not None else ScoreConfig()
    intro = (
        f"Each customer is active, at risk ({config.at_risk_cycles:g} purchase cycles or more "
        f"without a purchase) or churned ({config.churn_cycles:g} cycles or more, or no "
        f"purchase for {config.horizon_days:,} days)."
    )
    return ReportSection("status", "Status", chart + reason_table, intro)


def segments_section(customers: pl.DataFrame) -> ReportSection:
    """Customers and revenue per RFM segment (most customers first)."""
    if customers["segment"].null_count() == customers.height:
        body = '<p class="empty">No RFM segments: they need rfm_bins=5 or a segment map.</p>'
        return ReportSection("segments", "RFM segments", body)
    per_segment = (
        customers.group_by("segment")
        .agg(pl.len().alias("customers"), pl.col("monetary_total").sum().alias("revenue"))
        .sort(["customers", "segment"], descending=[True, False], nulls_last=True)
    )
    labels = [s if s is not None else "(no segment)" for s in per_segment["segment"]]
    sizes = per_segment["customers"].to_list()
    revenue = [float(v) for v in per_segment["revenue"]]
    size_tips = [f"{label}: {n:,} customers ({ch.fmt_pct(n / customers.height)})"
                 for label, n in zip(labels, sizes, strict=True)]  # fmt: skip
    value_tips = [f"{label}: revenue {ch.fmt_num(v)} ({ch.fmt_num(v / n)} per customer)"
                  for label, v, n in zip(labels, revenue, sizes, strict=True)]  # fmt: skip
    sizes_chart = ch.bar_chart(
        "segment_sizes", "Customers per segment", labels=labels, values=sizes,
        value_label="customers", tips=size_tips, subtitle="Number of customers and their share",
    )  # fmt: skip
    value_chart = ch.bar_chart(
        "segment_value", "Revenue per segment", labels=labels, values=revenue,
        value_label="revenue (net of refunds)", color=ch.SECONDARY, fmt=ch.fmt_compact,
        tips=value_tips, subtitle="Sum of monetary_total and its share, same order",
    )  # fmt: skip
    intro = (
        "RFM scores rank recency, frequency and money 1-5 by quintile; the three digits map "
        "to a named segment."
    )
    return ReportSection("segments", "RFM segments", sizes_chart + value_chart, intro)


def cycles_section(customers: pl.DataFrame, config: ScoreConfig) -> ReportSection:
    """Distribution of purchase cycles, and recency against cycle (binned).

    Both charts bin the values (log-spaced bins), so their size does not
    grow with the number of customers. With 1,000 values or more, the range
    is cut at the 0.1 % and 99.9 % quantiles and the values beyond are
    counted in the end bins, so that a few extreme cycles do not squeeze the
    rest into a few bins.
    """
    repeat = (customers["buyer_type"] == "repeat").to_numpy()
    cycle = customers["cycle_days"].fill_null(np.nan).to_numpy().astype(np.float64)
    has_cycle = np.isfinite(cycle) & (cycle > 0)
    charts = []
    if (repeat & has_cycle).any():
        priors = np.unique(cycle[~repeat & has_cycle])
        charts.append(_cycle_histogram(cycle[repeat & has_cycle], priors))
    if has_cycle.any():
        recency = customers["recency_days"].to_numpy()[has_cycle].astype(np.float64)
        charts.append(_recency_heatmap(recency, cycle[has_cycle], config))
    if not charts:
        body = '<p class="empty">No purchase cycles: the log has no repeat buyer.</p>'
        return ReportSection("cycles", "Purchase cycles", body)
    intro = (
        "A customer's purchase cycle is the mean gap between purchases, shrunk towards the "
        "shop's typical cycle (the prior) when there are few gaps."
    )
    return ReportSection("cycles", "Purchase cycles", "".join(charts), intro)


_TRIM = 0.001  # share of values cut off at each end of a cycle axis (see cycles_section)
_TRIM_MIN_VALUES = 1000


def _cycle_edges(values: np.ndarray, bins: int) -> tuple[np.ndarray, bool, bool]:
    """Log-spaced edges and whether values lie below the first / above the last."""
    if values.size >= _TRIM_MIN_VALUES:
        lo, hi = np.quantile(values, [_TRIM, 1 - _TRIM])
        edges = ch.log_edges(values[(values >= lo) & (values <= hi)], bins)
    else:
        edges = ch.log_edges(values, bins)
    return edges, bool(values.min() < edges[0]), bool(values.max() > edges[-1])


def _range_label(
    what: str, lo: float, hi: float, edges: np.ndarray, below: bool, above: bool
) -> str:
    if below and lo == edges[0]:
        return f"{what} up to {ch.fmt_days(hi)}"
    if above and hi == edges[-1]:
        return f"{what} {ch.fmt_days(lo)} or more"
    return f"{what} {ch.fmt_days(lo)} to {ch.fmt_days(hi)}"


def _cycle_histogram(cycles: np.ndarray, priors: np.ndarray) -> str:
    edges, below, above = _cycle_edges(cycles, _CYCLE_BINS)
    counts, _ = np.histogram(np.clip(cycles, edges[0], edges[-1]), bins=edges)
    axis = _days_axis(float(edges[0]), float(edges[-1]), "purchase cycle (log scale)")
    markers = []
    if priors.size == 1 and edges[0] <= priors[0] <= edges[-1]:
        markers.append((float(priors[0]), f"prior {ch.fmt_days(float(priors[0]))}"))
    median = float(np.median(cycles))
    note = "Bins are equally wide on a log scale."
    if below or above:
        note += " The shortest and longest 0.1 % of cycles are counted in the end bins."
    return ch.histogram(
        "cycle_distribution", "Distribution of purchase cycles",
        edges=edges.tolist(), counts=counts.tolist(), x_axis=axis, y_label="repeat buyers",
        bin_label=lambda a, b: _range_label("cycle", a, b, edges, below, above),
        markers=markers,
        subtitle=f"{len(cycles):,} repeat buyers; median cycle {ch.fmt_days(median)}. "
        "One-time buyers have no gaps of their own and take the prior.",
        note=note,
    )  # fmt: skip


def _recency_heatmap(recency: np.ndarray, cycle: np.ndarray, config: ScoreConfig) -> str:
    # recency is whole days: bins are log-spaced in recency + 1 but hold whole days
    # (edges at half days), so that no column of short recencies stays empty
    x_hi = max(float(recency.max()), 1.0)
    x_edges = np.unique(np.round(np.geomspace(1.0, x_hi + 2.0, _HEAT_X_BINS + 1))) - 1.5
    y_edges, below, above = _cycle_edges(cycle, _HEAT_Y_BINS)
    counts, _, _ = np.histogram2d(
        recency, np.clip(cycle, y_edges[0], y_edges[-1]), bins=[x_edges, y_edges]
    )
    x_axis = _days_axis(float(x_edges[0]), float(x_edges[-1]),
                        "days since the last purchase (log scale)",
                        offset=1.0)  # fmt: skip
    y_axis = _days_axis(float(y_edges[0]), float(y_edges[-1]), "purchase cycle (log scale)")
    ys = np.geomspace(y_edges[0], y_edges[-1], 64)
    overlays: list[tuple[list[tuple[float, float]], str, str]] = [
        ([(config.at_risk_cycles * y, y) for y in ys], f"{config.at_risk_cycles:g} cycles",
         "bottom-left"),
        ([(config.churn_cycles * y, y) for y in ys], f"{config.churn_cycles:g} cycles",
         "bottom-right"),
        ([(config.horizon_days, y_edges[0]), (config.horizon_days, y_edges[-1])],
         f"{config.horizon_days:,} d", "bottom-right"),
    ]  # fmt: skip
    return ch.heatmap(
        "recency_vs_cycle", "Days since the last purchase against the purchase cycle",
        counts=counts.astype(np.int64), x_edges=x_edges.tolist(), y_edges=y_edges.tolist(),
        x_axis=x_axis, y_axis=y_axis,
        cell_label=lambda x0, x1, y0, y1: (
            f"{_whole_days(x0, x1)} since the last purchase, "
            + _range_label("cycle", y0, y1, y_edges, below, above)),
        overlays=overlays,
        subtitle=f"{len(cycle):,} customers, counted in {len(x_edges) - 1} x "
        f"{len(y_edges) - 1} cells",
        note=f"Dashed lines: the status rules. Repeat buyers left of the "
        f"{config.at_risk_cycles:g}-cycle line are active, between the lines at risk, right "
        f"of the {config.churn_cycles:g}-cycle line churned; everyone right of the "
        f"{config.horizon_days:,}-day line is churned. One-time buyers form the band at the "
        "prior.",
    )  # fmt: skip


def _whole_days(lo: float, hi: float) -> str:
    """The whole days in the bin [lo, hi) with half-day edges, e.g. "7-9 days"."""
    first, last = math.ceil(lo), math.ceil(hi) - 1
    return f"{first:,} days" if first == last else f"{first:,}-{last:,} days"


def _days_axis(lo: float, hi: float, label: str, offset: float = 0.0) -> ch.Axis:
    ticks = ch.day_ticks(lo, hi, whole_days=offset > 0)
    if len(ticks) < 2:  # a narrow range: label its ends
        ticks = ((lo, ch.fmt_days(lo)), (hi, ch.fmt_days(hi)))
    return ch.Axis(lo, hi, label, log=True, offset=offset, ticks=ticks)


def churn_rate_section(frame: pl.DataFrame) -> ReportSection:
    """The churn-rate curve: ``date``, ``churn_rate`` (0..1), optional counts."""
    frame = _check_frame(frame, "churn_rate")
    frame = frame.filter(pl.col("date").is_not_null() & pl.col("churn_rate").is_not_null())
    frame = frame.sort("date")
    if frame.height == 0:
        body = '<p class="empty">The churn-rate frame has no rows.</p>'
        return ReportSection("churn-rate", "Churn rate over time", body)
    dates = [d.date() if isinstance(d, dt.datetime) else d for d in frame["date"]]
    rates = [float(v) for v in frame["churn_rate"]]
    has_counts = "customers" in frame.columns and "churned" in frame.columns
    tips = []
    for i, (d, r) in enumerate(zip(dates, rates, strict=True)):
        tip = f"{d.isoformat()}: churn rate {ch.fmt_pct(r)}"
        if has_counts:
            tip += f" ({frame['churned'][i]:,} of {frame['customers'][i]:,} customers)"
        tips.append(tip)
    step = max(rates) - min(0.0, *rates)
    digits = 0 if step >= 0.05 else 1 if step >= 0.005 else 2
    chart = ch.line_chart(
        "churn_rate", "Churn rate over time",
        series=[ch.LineSeries("churn rate", dates, rates, tips)],
        y_label="churn rate", y_fmt=lambda v: ch.fmt_pct(v, digits),
        subtitle=f"Share of customers churned on each date, {dates[0]} to {dates[-1]}",
    )  # fmt: skip
    intro = "The churn rate changes every day: each point scores the log as of that date."
    return ReportSection("churn-rate", "Churn rate over time", chart, intro)


def funnel_section(frame: pl.DataFrame) -> ReportSection:
    """The funnel: ``step`` (in order), ``count`` reaching each step."""
    frame = _check_frame(frame, "funnel")
    steps = [str(s) for s in frame["step"]]
    counts = [int(c or 0) for c in frame["count"]]
    chart = ch.funnel_chart(
        "funnel", "Funnel", steps=steps, counts=counts,
        subtitle="How many reach each step, with the conversion from the step before",
    )  # fmt: skip
    first = counts[0] if counts else 0
    of_previous = [None, *(c / p if p else None for p, c in itertools.pairwise(counts))]
    table_frame = pl.DataFrame(
        {
            "step": steps,
            "count": counts,
            "of first step": [c / first if first else None for c in counts],
            "of step before": of_previous,
        },
        schema={"step": pl.String, "count": pl.Int64, "of first step": pl.Float64,
                "of step before": pl.Float64},
    )  # fmt: skip
    table = ch.table(
        "funnel_steps", "Funnel steps", table_frame,
        formats={"of first step": ch.fmt_pct, "of step before": ch.fmt_pct},
    )  # fmt: skip
    return ReportSection("funnel", "Funnel", chart + table)


_PRODUCT_MEASURES = ("items", "products", "customers", "revenue")


def products_section(frame: pl.DataFrame) -> ReportSection:
    """Product classes: ``class`` and numeric columns.

    The first two of ``items``, ``products``, ``customers`` and ``revenue``
    that the frame has (else its first numeric column) are charted; every
    column goes to the table.
    """
    frame = _check_frame(frame, "products")
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c != "class"]
    if not numeric:
        raise ConfigError("products frame needs a numeric column (e.g. products, revenue)")
    measures = [c for c in _PRODUCT_MEASURES if c in numeric] or numeric[:1]
    labels = ["(none)" if c is None else str(c) for c in frame["class"]]
    charts = []
    for i, measure in enumerate(measures[:2]):
        values = [float(v) if v is not None else 0.0 for v in frame[measure]]
        charts.append(ch.bar_chart(
            "product_classes" if i == 0 else f"product_classes_{measure}",
            f"{measure.capitalize()} per product class", labels=labels, values=values,
            value_label=measure, color=ch.PRIMARY if i == 0 else ch.SECONDARY,
            fmt=ch.fmt_num if i == 0 else ch.fmt_compact,
        ))  # fmt: skip
    table = ch.table("product_table", "Product classes", frame, wide=True)
    return ReportSection("products", "Product classes", "".join(charts) + table)


_ACTION_KEYS = ("action_reason", "segment", "buyer_type", "status")
_ACTION_TEXT = ("action", "description", "channel")


def actions_section(frame: pl.DataFrame, customers: pl.DataFrame | None = None) -> ReportSection:
    """The action table: ``action`` and the groups it is for.

    The group columns are those the frame shares with the score output
    (``segment``, ``buyer_type``, ``status``, ``action_reason``, ...). Without
    a ``customers`` column, the customers of each row are counted from
    ``customers`` (the score output) on the shared columns; rows are then
    shown largest first with their share.
    """
    frame = _check_frame(frame, "actions")
    if "customers" not in frame.columns and customers is not None and customers.height:
        # the action is what the table suggests, not a group to count by
        keys = [c for c in frame.columns if c in customers.columns and c not in _ACTION_TEXT]
        if not keys:
            raise ConfigError(
                "actions frame: give it a customers column, or columns of the score output "
                f"to count customers by (e.g. segment, buyer_type, status); it has "
                f"{', '.join(frame.columns)}"
            )
        counts = customers.group_by(keys).agg(pl.len().alias("customers"))
        counts = counts.cast({k: frame.schema[k] for k in keys})
        frame = (
            frame.with_row_index("_order")
            .join(counts, on=keys, how="left")
            .sort("_order")
            .drop("_order")
            .with_columns(pl.col("customers").fill_null(0))
        )
    formats: dict[str, Callable[[Any], str]] = {
        "status": lambda s: _STATUS_LABELS.get(s, str(s)),
        "buyer_type": lambda b: _BUYER_LABELS.get(b, str(b)),
    }
    if "customers" in frame.columns:
        total = customers.height if customers is not None else 0
        total = total or int(frame["customers"].sum() or 0)
        if total:
            frame = frame.with_columns((pl.col("customers") / total).alias("share"))
            formats["share"] = ch.fmt_pct
        frame = frame.sort("customers", descending=True, maintain_order=True)
    keys = [k for k in _ACTION_KEYS if k in frame.columns]
    order = [*keys, *[c for c in ("customers", "share") if c in frame.columns], "action"]
    frame = frame.select(*order, *[c for c in frame.columns if c not in order])
    table = ch.table(
        "actions", "Suggested actions", frame, formats=formats,
        headers={"buyer_type": "buyer type", "action_reason": "rule"}, wide=True,
        subtitle="What to do for each group of customers, largest first",
    )  # fmt: skip
    return ReportSection("actions", "Actions", table)


#: The columns each optional section needs, and their kind.
_REQUIRED: dict[str, dict[str, str]] = {
    "churn_rate": {"date": "temporal", "churn_rate": "numeric"},
    "funnel": {"step": "text", "count": "numeric"},
    "products": {"class": "any"},
    "actions": {"action": "text"},
}


def _check_frame(frame: Any, name: str) -> pl.DataFrame:
    """``frame`` as a polars DataFrame with the columns section ``name`` needs."""
    required = _REQUIRED[name]
    if not isinstance(frame, pl.DataFrame):
        try:
            frame = pl.DataFrame(frame)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{name} must be a polars DataFrame, got {type(frame).__name__}"
            ) from exc
    for column, kind in required.items():
        if column not in frame.columns:
            raise ConfigError(
                f"{name} frame needs a column {column!r}; "
                f"it has {', '.join(frame.columns) or 'no columns'}"
            )
        dtype = frame.schema[column]
        ok = {
            "any": True,
            "numeric": dtype.is_numeric(),
            "temporal": dtype in (pl.Date,) or isinstance(dtype, pl.Datetime),
            "text": dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum),
        }[kind]
        if not ok:
            example = frame[column].drop_nulls().head(1).to_list()
            raise ConfigError(
                f"{name} frame: column {column!r} must be {kind}, got {dtype}"
                + (f" (e.g. {example[0]!r})" if example else "")
            )
    return frame


def _as_of_parts(as_of: dt.date | dt.datetime | None, day: dt.date | None) -> tuple[str, str]:
    if isinstance(as_of, dt.datetime):
        return as_of.date().isoformat(), as_of.isoformat(sep=" ")
    if as_of is not None:
        return as_of.isoformat(), "end of day"
    if day is not None:
        return day.isoformat(), "end of day"
    return "-", "no data"


def _subtitle(result: ScoreResult) -> str:
    stats = result.stats
    as_of, detail = _as_of_parts(stats.as_of, stats.as_of_day)
    when = f"As of {detail}" if ":" in detail else f"As of {as_of}"
    return (f"{when} · {result.customers.height:,} customers · "
            f"{stats.rows_accepted:,} transactions")  # fmt: skip


# -- the page --------------------------------------------------------------------------


def render_report(sections: Sequence[ReportSection], *, title: str = DEFAULT_TITLE,
                  subtitle: str = "") -> str:  # fmt: skip
    """The HTML page of ``sections``: one self-contained document.

    All CSS and SVG are inline; a short inline script marks each chart
    ``data-rendered="true"`` once the browser has laid it out with visible
    marks, and sets ``data-charts-rendered`` (their number) on ``<body>``.
    """
    from . import __version__  # the package sets it after importing this module

    nav = "".join(f'<a href="#{s.key}">{ch.esc(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="churn-engine {__version__}">',
        f"<title>{ch.esc(title)}</title>",
        f"<style>{_CSS}</style></head>",
        '<body><header class="page-head"><div class="inner">',
        f"<h1>{ch.esc(title)}</h1>",
        f'<p class="meta">{ch.esc(subtitle)}</p>' if subtitle else "",
        f"<nav>{nav}</nav></div></header><main>",
    ]
    for section in sections:
        parts.append(f'<section id="{ch.esc(section.key)}"><h2>{ch.esc(section.title)}</h2>')
        if section.intro:
            parts.append(f'<p class="intro">{ch.esc(section.intro)}</p>')
        parts.append(f'<div class="grid">{section.body}</div></section>')
    parts.append(
        f"</main><footer>Made by churn-engine {__version__}. Definitions: docs/definitions.md; "
        "about this report: docs/report.md.</footer>"
    )
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(p for p in parts if p) + "\n"


_CSS = """
:root{--ink:#1f2933;--muted:#52606d;--line:#e4e7eb;--bg:#f4f6f9;--accent:#2f6db5}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);line-height:1.45;
font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,
"Liberation Sans",sans-serif;font-size:15px}
.page-head{background:#fff;border-bottom:1px solid var(--line);padding:22px 28px 10px}
.inner,main,footer{max-width:1240px;margin:0 auto}
h1{font-size:26px;margin:0 0 2px;font-weight:650}
.meta{color:var(--muted);margin:0 0 12px}
nav{display:flex;flex-wrap:wrap;gap:4px 18px;font-size:14px}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
main{padding:0 28px 24px}
section{margin-top:30px}
h2{font-size:20px;margin:0 0 4px;font-weight:650}
.intro{color:var(--muted);margin:0 0 14px;max-width:900px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));
gap:20px;align-items:start}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:10px;
padding:16px 18px 14px;min-width:0}
figure.wide,.grid>.cards,.grid>.empty{grid-column:1/-1}
figcaption h3{font-size:16px;margin:0;font-weight:650}
.subtitle{color:var(--muted);font-size:13px;margin:2px 0 10px}
.note{color:var(--muted);font-size:12.5px;margin:10px 0 0}
.empty{color:var(--muted);font-style:italic}
svg.plot{display:block;width:100%;height:auto;max-width:100%;overflow:visible}
svg text{fill:var(--ink);font-family:inherit}
.tick-label,.axis-label,.row-sub,.bar-value{fill:var(--muted)}
.tick-label{font-size:11.5px}.axis-label{font-size:12px}
.row-label{font-size:13px}.row-sub{font-size:11.5px}
.in-bar{font-size:12px;font-weight:600}.bar-value{font-size:12px}
.legend{font-size:12px}.guide-label{font-size:11.5px;font-weight:600}
.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
rect.mark:hover{stroke:var(--ink);stroke-width:1}
.point{opacity:0}.point.visible{opacity:1}.point:hover{opacity:1}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:14px}
.card{background:#fff;border:1px solid var(--line);border-top:3px solid var(--accent);
border-radius:10px;padding:12px 14px}
.card-active{border-top-color:#2f6db5}.card-at_risk{border-top-color:#e69f00}
.card-churned{border-top-color:#c23b22}
.card .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:25px;font-weight:650;margin:2px 0;font-variant-numeric:tabular-nums}
.card .detail{font-size:12.5px;color:var(--muted)}
.table-wrap{overflow:auto;max-height:540px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600;background:#f8fafc;position:sticky;top:0;
text-align:left}
.num{text-align:right}tbody tr:hover{background:#f3f7fc}
footer{color:var(--muted);font-size:12.5px;padding:8px 28px 28px}
@media print{body{background:#fff}figure,.card{break-inside:avoid}}
"""

# Marks each chart that the browser laid out with visible marks (for tests and
# for a reader's devtools); nothing in the page depends on it.
_SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('.chart'), rendered = 0;
  charts.forEach(function (chart) {
    var svg = chart.querySelector('svg'), drawn = 0;
    if (!svg) return;
    var box = svg.getBoundingClientRect();
    svg.querySelectorAll('.mark').forEach(function (mark) {
      var b = mark.getBBox();
      if (b.width > 0 || b.height > 0) drawn++;
    });
    chart.dataset.marks = String(drawn);
    if (box.width > 0 && box.height > 0 && drawn > 0) {
      chart.dataset.rendered = 'true';
      rendered++;
    }
  });
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.chartsRendered = String(rendered);
  document.body.dataset.pageHeight = String(Math.ceil(
    document.documentElement.getBoundingClientRect().height));
});
"""
