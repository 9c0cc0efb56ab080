"""Charts as inline SVG, drawn in Python (no JavaScript library, no network).

Every chart function returns one HTML ``<figure class="chart"
data-chart="NAME">`` holding a heading, an optional subtitle, one ``<svg>``
and an optional note. The SVG is well-formed XML (every text is escaped),
scales with its container (``viewBox``; CSS sets ``width: 100%``) and marks
every drawn datum (bar, cell, line, point) with ``class="mark"``, a
``<title>`` tooltip and ``data-*`` attributes holding the exact numbers, so
that a test or a browser can check what was drawn.

Sizes are in SVG user units that match CSS pixels when a chart is shown at
its design width (:data:`HALF` or :data:`FULL`). Text widths are estimated
from Arial/Helvetica metrics with a margin, which is enough to place labels
without overlaps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "FULL",
    "HALF",
    "STATUS_COLORS",
    "Axis",
    "LineSeries",
    "bar_chart",
    "day_ticks",
    "figure",
    "fmt_compact",
    "fmt_int",
    "fmt_pct",
    "funnel_chart",
    "heatmap",
    "histogram",
    "line_chart",
    "log_edges",
    "stacked_share_chart",
    "table",
]

#: Design widths: half of the page grid and the whole of it.
HALF = 560
FULL = 1180

FONT_SIZE = 12
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#e4e7eb"
AXIS = "#9aa5b1"
PRIMARY = "#2f6db5"
SECONDARY = "#1f8a70"
#: active / at risk / churned: blue, orange, red (distinct in lightness too,
#: so the three stay apart for colour-blind readers and in grey print).
STATUS_COLORS: dict[str, str] = {"active": "#2f6db5", "at_risk": "#e69f00", "churned": "#c23b22"}
#: Sequential scale for counts, light yellow to dark blue (ColorBrewer YlGnBu):
#: the hue moves as well as the lightness, so neighbouring levels stay apart.
_HEAT_STOPS = ("#ffffd9", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84")
_SERIES = ("#2f6db5", "#e69f00", "#1f8a70", "#c23b22", "#7b5ea7", "#8c6d31")


# -- formatting ----------------------------------------------------------------


def esc(value: object) -> str:
    """Text escaped for HTML and XML (both quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def fmt_int(value: float) -> str:
    return f"{round(value):,}"


def fmt_pct(share: float, digits: int = 1) -> str:
    return f"{100.0 * share:.{digits}f} %"


def fmt_num(value: float) -> str:
    """A readable number: integers with separators, others with two decimals."""
    if float(value).is_integer():
        return fmt_int(value)
    return f"{value:,.2f}"


def fmt_compact(value: float) -> str:
    """Short number for ticks and cards: 950, 1.2k, 34k, 1.5M, 2B."""
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            scaled = value / limit
            text = f"{scaled:.1f}" if abs(scaled) < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def fmt_days(days: float) -> str:
    """Days with one decimal below 100 (``27.5 d``, ``30 d``), whole days above."""
    if days >= 100 or float(days).is_integer():
        return f"{days:,.0f} d"
    return f"{days:.1f} d"


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated rendered width of ``text`` (Arial-like metrics, 10 % margin)."""
    width = 0.0
    for ch in text:
        if ch in "iljtfI.,:;'|!() ":
            width += 0.30
        elif ch in "mwMW%@":
            width += 0.86
        elif ch.isupper() or ch in "&":
            width += 0.68
        else:
            width += 0.56
    return width * size * 1.1


def _n(value: float) -> str:
    """A coordinate: short, and never ``-0``."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


# -- SVG building ----------------------------------------------------------------


class _Svg:
    """Collects SVG elements; ``render`` wraps them in a responsive ``<svg>``."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width = width
        self.height = height
        self.label = label
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        fill: str,
        cls: str = "mark",
        tip: str | None = None,
        data: Mapping[str, object] | None = None,
        extra: str = "",
    ) -> None:
        attrs = (
            f'x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0.0))}" height="{_n(max(h, 0.0))}" '
            f'fill="{fill}"'
        )
        self.add(_element("rect", cls, attrs + extra, tip, data))

    def line(
        self, x1: float, y1: float, x2: float, y2: float, *, stroke: str, cls: str, extra: str = ""
    ) -> None:
        self.add(
            f'<line class="{cls}" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
            f'stroke="{stroke}"{extra}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        anchor: str = "start",
        cls: str = "",
        size: float | None = None,
        fill: str | None = None,
        extra: str = "",
    ) -> None:
        attrs = f'x="{_n(x)}" y="{_n(y)}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if cls:
            attrs += f' class="{cls}"'
        styles = []  # inline style: the page's CSS must not override these
        if size is not None:
            styles.append(f"font-size:{_n(size)}px")
        if fill is not None:
            styles.append(f"fill:{fill}")
        if styles:
            attrs += f' style="{";".join(styles)}"'
        self.add(f"<text {attrs}{extra}>{esc(content)}</text>")

    def render(self) -> str:
        w, h = _n(self.width), _n(self.height)
        return (
            f'<svg class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{esc(self.label)}" font-size="{FONT_SIZE}">'
            + "".join(self.parts)
            + "</svg>"
        )


def _element(
    tag: str, cls: str, attrs: str, tip: str | None, data: Mapping[str, object] | None
) -> str:
    data_attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in (data or {}).items())
    head = f'<{tag} class="{cls}" {attrs}{data_attrs}'
    if tip is None:
        return head + "/>"
    return f"{head}><title>{esc(tip)}</title></{tag}>"


def figure(
    name: str,
    title: str,
    body: str,
    *,
    subtitle: str = "",
    note: str = "",
    wide: bool = False,
    kind: str = "chart",
) -> str:
    """Wrap a chart (or a table, ``kind="table"``) with its heading and notes."""
    classes = kind + (" wide" if wide else "")
    parts = [f'<figure class="{classes}" data-{kind}="{esc(name)}">', "<figcaption>"]
    parts.append(f"<h3>{esc(title)}</h3>")
    if subtitle:
        parts.append(f'<p class="subtitle">{esc(subtitle)}</p>')
    parts.append("</figcaption>")
    parts.append(body)
    if note:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("</figure>")
    return "".join(parts)


def _legend(svg: _Svg, items: Sequence[tuple[str, str]], x: float, y: float) -> None:
    """Colour keys in one row starting at (x, y)."""
    for label, color in items:
        svg.rect(x, y - 9, 11, 11, fill=color, cls="key")
        svg.text(x + 16, y, label, cls="legend")
        x += 16 + text_width(label) + 14


# -- scales and ticks --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Axis:
    """A value axis: linear, or log10 of ``value + offset``, with its ticks.

    ``ticks`` are ``(value, label)`` pairs; ``label`` names the axis.
    """

    lo: float
    hi: float
    label: str
    log: bool = False
    offset: float = 0.0
    ticks: tuple[tuple[float, str], ...] = ()

    def fraction(self, value: float) -> float:
        """Position of ``value`` on the axis, 0 at ``lo`` and 1 at ``hi``."""
        a, b, v = self._t(self.lo), self._t(self.hi), self._t(value)
        return 0.5 if b == a else (v - a) / (b - a)

    def _t(self, value: float) -> float:
        if not self.log:
            return value
        return math.log10(max(value + self.offset, 1e-12))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 x 10^k steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def linear_axis(
    lo: float, hi: float, label: str, fmt: Callable[[float], str] = fmt_compact, count: int = 5
) -> Axis:
    """A linear axis from round ticks covering [lo, hi]."""
    ticks = nice_ticks(lo, hi, count)
    return Axis(ticks[0], ticks[-1], label, ticks=tuple((t, fmt(t)) for t in ticks))


_DAY_TICKS: tuple[tuple[float, str], ...] = (
    (0.25, "6 h"), (0.5, "12 h"), (1, "1 d"), (2, "2 d"), (3, "3 d"), (7, "1 wk"),
    (14, "2 wk"), (30, "1 mo"), (61, "2 mo"), (91, "3 mo"), (182, "6 mo"), (365, "1 yr"),
    (730, "2 yr"), (1095, "3 yr"), (1826, "5 yr"), (3652, "10 yr"), (7305, "20 yr"),
    (18262, "50 yr"), (36524, "100 yr"), (365242, "1,000 yr"),
)  # fmt: skip


def day_ticks(lo: float, hi: float, *, whole_days: bool = False) -> tuple[tuple[float, str], ...]:
    """Calendar-like ticks (1 d, 1 wk, 1 mo, 1 yr, ...) within [lo, hi].

    ``whole_days``: an axis of whole days (e.g. recency): 0 and no hours.
    """
    ticks = [(v, label) for v, label in _DAY_TICKS if lo <= v <= hi and (v >= 1 or not whole_days)]
    if whole_days and lo <= 0 <= hi:
        ticks.insert(0, (0.0, "0"))
    return tuple(ticks)


def log_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """``bins + 1`` geometric bin edges covering the positive ``values``."""
    positive = values[values > 0]
    if positive.size == 0:
        return np.geomspace(0.5, 2.0, bins + 1)
    lo, hi = float(positive.min()), float(positive.max())
    if hi <= lo * 1.05:
        lo, hi = lo / 1.25, hi * 1.25
    return np.geomspace(lo, hi * (1 + 1e-9), bins + 1)


def _thin(
    ticks: Sequence[tuple[float, str]], position: Callable[[float], float], gap: float
) -> list[tuple[float, str]]:
    """Drop ticks whose labels would overlap (keeps the first, greedy)."""
    kept: list[tuple[float, str]] = []
    last_end = -math.inf
    for value, label in ticks:
        x = position(value)
        half = text_width(label) / 2
        if x - half >= last_end + gap:
            kept.append((value, label))
            last_end = x + half
    return kept


def _x_axis(svg: _Svg, axis: Axis, left: float, right: float, y: float, grid_top: float) -> None:
    def px(v: float) -> float:
        return left + axis.fraction(v) * (right - left)

    for value, label in _thin(axis.ticks, px, 8):
        x = px(value)
        svg.line(x, grid_top, x, y, stroke=GRID, cls="grid")
        svg.line(x, y, x, y + 4, stroke=AXIS, cls="tick")
        svg.text(x, y + 17, label, anchor="middle", cls="tick-label")
    svg.line(left, y, right, y, stroke=AXIS, cls="axis")
    svg.text((left + right) / 2, y + 36, axis.label, anchor="middle", cls="axis-label")


def _y_axis(svg: _Svg, axis: Axis, top: float, bottom: float, x: float, grid_right: float) -> None:
    def py(v: float) -> float:
        return bottom - axis.fraction(v) * (bottom - top)

    last = math.inf
    for value, label in axis.ticks:
        y = py(value)
        if last - y < 16:  # keep labels at least a line apart
            continue
        last = y
        svg.line(x, y, grid_right, y, stroke=GRID, cls="grid")
        svg.text(x - 7, y + 4, label, anchor="end", cls="tick-label")
    svg.line(x, top, x, bottom, stroke=AXIS, cls="axis")
    mid = (top + bottom) / 2
    svg.text(
        14, mid, axis.label, anchor="middle", cls="axis-label",
        extra=f' transform="rotate(-90 14 {_n(mid)})"',
    )  # fmt: skip


def _tick_label_width(axis: Axis) -> float:
    return max((text_width(label) for _, label in axis.ticks), default=0.0)


# -- charts -------------------------------------------------------------------------


def stacked_share_chart(
    name: str,
    title: str,
    *,
    rows: Sequence[tuple[str, str, str]],
    series: Sequence[tuple[str, str, str]],
    counts: Sequence[Sequence[int]],
    subtitle: str = "",
    note: str = "",
) -> str:
    """Horizontal 100 % stacked bars: one bar per row, one segment per series.

    Parameters
    ----------
    rows : sequence of (key, label, sublabel)
        One bar each, top to bottom; ``key`` goes to ``data-row``.
    series : sequence of (key, label, colour)
        The stacked parts, left to right; ``key`` goes to ``data-series``.
    counts : rows x series counts
        Each segment carries ``data-count`` and ``data-share``.
    """
    label_w = max(max(text_width(r[1], 13), text_width(r[2])) for r in rows) + 16
    left, right = label_w, HALF - 16
    top, bar_h, gap = 44, 34, 22
    bottom = top + len(rows) * (bar_h + gap) - gap + 8
    height = bottom + 26
    svg = _Svg(HALF, height, title)
    _legend(svg, [(s[1], s[2]) for s in series], left, 18)
    axis = Axis(0.0, 1.0, "share of customers", ticks=tuple(
        (v / 100, f"{v} %") for v in range(0, 101, 20)))  # fmt: skip
    for value, _ in axis.ticks:
        x = left + value * (right - left)
        svg.line(x, top - 6, x, bottom, stroke=GRID, cls="grid")
        svg.text(x, bottom + 16, f"{round(value * 100)} %", anchor="middle", cls="tick-label")
    for i, (row_key, row_label, row_sub) in enumerate(rows):
        y = top + i * (bar_h + gap)
        svg.text(left - 10, y + bar_h / 2 - 2, row_label, anchor="end", cls="row-label")
        svg.text(left - 10, y + bar_h / 2 + 13, row_sub, anchor="end", cls="row-sub")
        total = sum(counts[i])
        x = left
        for j, (series_key, series_label, color) in enumerate(series):
            count = counts[i][j]
            share = count / total if total else 0.0
            w = share * (right - left)
            tip = f"{row_label}: {series_label} {fmt_int(count)} ({fmt_pct(share)})"
            data = {"row": row_key, "series": series_key, "count": count,
                    "share": f"{share:.6f}"}  # fmt: skip
            if count:
                svg.rect(x, y, w, bar_h, fill=color, tip=tip, data=data)
                label = fmt_pct(share, 0) if share < 0.995 else "100 %"
                if w >= text_width(label) + 4:
                    svg.text(x + w / 2, y + bar_h / 2 + 4, label, anchor="middle",
                             cls="in-bar", fill=_on(color))  # fmt: skip
            x += w
    svg.line(left, top - 6, left, bottom, stroke=AXIS, cls="axis")
    return figure(name, title, svg.render(), subtitle=subtitle, note=note)


def bar_chart(
    name: str,
    title: str,
    *,
    labels: Sequence[str],
    values: Sequence[float],
    value_label: str,
    color: str = PRIMARY,
    fmt: Callable[[float], str] = fmt_int,
    tips: Sequence[str] | None = None,
    subtitle: str = "",
    note: str = "",
    width: float = HALF,
) -> str:
    """Horizontal bars, one per label, top to bottom, with the value and share at the end.

    Each bar carries ``data-label`` and ``data-value`` (the exact value).
    """
    total = float(sum(v for v in values if v > 0))
    label_w = max((text_width(label) for label in labels), default=0.0) + 14
    end_texts = [f"{fmt(v)} · {fmt_pct(v / total)}" if total else fmt(v) for v in values]
    end_w = max((text_width(t) for t in end_texts), default=0.0) + 10
    left, right = label_w, width - end_w - 8
    top, bar_h, gap = 10, 20, 8
    plot_bottom = top + len(labels) * (bar_h + gap) - gap + 6
    lo = min(0.0, *values) if values else 0.0
    hi = max(0.0, *values) if values else 1.0
    hi = hi if hi > lo else lo + 1
    # the longest bar spans the plot; ticks are the round values inside it
    ticks = [t for t in nice_ticks(lo, hi, 4) if lo <= t <= hi]
    axis = Axis(lo, hi, value_label, ticks=tuple((t, fmt_compact(t)) for t in ticks))
    height = plot_bottom + 48
    svg = _Svg(width, height, title)

    def px(v: float) -> float:
        return left + axis.fraction(v) * (right - left)

    _x_axis(svg, axis, left, right, plot_bottom, top - 4)
    zero = px(0.0)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar_h + gap)
        svg.text(left - 8, y + bar_h / 2 + 4, label, anchor="end", cls="row-label")
        x0, x1 = sorted((zero, px(value)))
        tip = tips[i] if tips is not None else f"{label}: {fmt(value)} {value_label}"
        svg.rect(x0, y, max(x1 - x0, 0.8), bar_h, fill=color, tip=tip,
                 data={"label": label, "value": _plain(value)})  # fmt: skip
        svg.text(max(x1, zero) + 5, y + bar_h / 2 + 4, end_texts[i], cls="bar-value")
    svg.line(zero, top - 4, zero, plot_bottom, stroke=AXIS, cls="axis")
    return figure(name, title, svg.render(), subtitle=subtitle, note=note)


@dataclasses.dataclass(frozen=True)
class LineSeries:
    """One line of a :func:`line_chart`: x dates, y values, optional point tooltips."""

    name: str
    x: Sequence[dt.date]
    y: Sequence[float]
    tips: Sequence[str] | None = None


def date_ticks(lo: dt.date, hi: dt.date, max_ticks: int = 8) -> list[tuple[dt.date, str]]:
    """Calendar ticks between ``lo`` and ``hi``: days, weeks, months or years."""
    span = (hi - lo).days
    for months in (1, 2, 3, 6, 12, 24, 60, 120):
        if span / (30.44 * months) <= max_ticks:
            break
    if span <= 31 * 2:  # short spans: days or weeks
        step = next(s for s in (1, 2, 7, 14) if span / s <= max_ticks)
        ticks = [lo + dt.timedelta(days=d) for d in range(0, span + 1, step)]
        return [(d, f"{d:%b} {d.day}") for d in ticks]
    first = dt.date(lo.year, lo.month, 1)
    if first < lo:
        first = _add_months(first, 1)
    while (first.month - 1) % months:  # align to the step (quarters start Jan/Apr/...)
        first = _add_months(first, 1)
    ticks = []
    d = first
    while d <= hi:
        ticks.append(d)
        d = _add_months(d, months)
    if months >= 12:
        return [(d, str(d.year)) for d in ticks]
    return [(d, f"{d:%b} {d.year}" if d.month == 1 or d == ticks[0] else f"{d:%b}")
            for d in ticks]  # fmt: skip


def _add_months(d: dt.date, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def line_chart(
    name: str,
    title: str,
    *,
    series: Sequence[LineSeries],
    y_label: str,
    y_fmt: Callable[[float], str] = fmt_compact,
    y_min: float | None = 0.0,
    subtitle: str = "",
    note: str = "",
    width: float = FULL,
) -> str:
    """Lines over dates; each point is a hover target with its tooltip.

    The path carries ``data-points`` (its number of points); each point
    (``class="mark point"``, drawn when there are at most 60, otherwise shown
    on hover) ``data-date`` and ``data-value``.
    """
    xs = [d for s in series for d in s.x]
    ys = [v for s in series for v in s.y if v is not None and math.isfinite(v)]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - dt.timedelta(days=1), x_hi + dt.timedelta(days=1)
    lo = min(ys) if y_min is None else min(y_min, *ys)
    hi = max(ys)
    y_axis = linear_axis(lo, hi if hi > lo else lo + 1, y_label, y_fmt)
    left = _tick_label_width(y_axis) + 34
    right, top = width - 20, 34 if len(series) > 1 else 14
    height = 330
    bottom = height - 48
    svg = _Svg(width, height, title)
    span = (x_hi - x_lo).days

    def px(d: dt.date) -> float:
        return left + (d - x_lo).days / span * (right - left)

    def py(v: float) -> float:
        return bottom - y_axis.fraction(v) * (bottom - top)

    _y_axis(svg, y_axis, top, bottom, left, right)
    ticks = [(float((d - x_lo).days), label) for d, label in date_ticks(x_lo, x_hi)]
    x_axis = Axis(0.0, float(span), "date", ticks=tuple(ticks))
    _x_axis(svg, x_axis, left, right, bottom, top)
    if len(series) > 1:
        _legend(svg, [(s.name, _SERIES[i % len(_SERIES)]) for i, s in enumerate(series)], left, 16)
    for i, s in enumerate(series):
        color = _SERIES[i % len(_SERIES)]
        points = [(px(d), py(v)) for d, v in zip(s.x, s.y, strict=True)
                  if v is not None and math.isfinite(v)]  # fmt: skip
        path = "M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in points)
        svg.add(
            f'<path class="mark line" d="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2.2" stroke-linejoin="round" data-series="{esc(s.name)}" '
            f'data-points="{len(points)}"><title>{esc(s.name)}</title></path>'
        )
        radius = 3.5 if len(s.x) <= 60 else 3.0
        for k, (d, v) in enumerate(zip(s.x, s.y, strict=True)):
            if v is None or not math.isfinite(v):
                continue
            tip = s.tips[k] if s.tips is not None else f"{d.isoformat()}: {y_fmt(v)}"
            visible = " visible" if len(s.x) <= 60 else ""
            svg.add(
                _element("circle", f"mark point{visible}",
                         f'cx="{_n(px(d))}" cy="{_n(py(v))}" r="{radius}" fill="{color}"',
                         tip, {"date": d.isoformat(), "value": _plain(v)})
            )  # fmt: skip
    return figure(name, title, svg.render(), subtitle=subtitle, note=note, wide=True)


def histogram(
    name: str,
    title: str,
    *,
    edges: Sequence[float],
    counts: Sequence[int],
    x_axis: Axis,
    y_label: str,
    color: str = PRIMARY,
    bin_label: Callable[[float, float], str] = lambda a, b: f"{fmt_num(a)}-{fmt_num(b)}",
    markers: Sequence[tuple[float, str]] = (),
    subtitle: str = "",
    note: str = "",
    width: float = HALF,
) -> str:
    """Bars over bins (``x_axis`` may be logarithmic); optional vertical marker lines.

    Each bar carries ``data-lo``, ``data-hi`` and ``data-count``.
    """
    total = int(sum(counts))
    y_axis = linear_axis(0.0, float(max(counts, default=0)) or 1.0, y_label, fmt_compact)
    left = _tick_label_width(y_axis) + 34
    right, top = width - 16, 22
    height = 320
    bottom = height - 48
    svg = _Svg(width, height, title)

    def px(v: float) -> float:
        return left + x_axis.fraction(v) * (right - left)

    def py(v: float) -> float:
        return bottom - y_axis.fraction(v) * (bottom - top)

    _y_axis(svg, y_axis, top, bottom, left, right)
    _x_axis(svg, x_axis, left, right, bottom, top)
    for lo, hi, count in zip(edges[:-1], edges[1:], counts, strict=True):
        if count <= 0:
            continue
        x0, x1 = px(lo), px(hi)
        share = count / total if total else 0.0
        tip = f"{bin_label(lo, hi)}: {fmt_int(count)} ({fmt_pct(share)})"
        data = {"lo": _plain(lo), "hi": _plain(hi), "count": int(count)}
        y = py(count)
        svg.rect(x0 + 0.5, y, max(x1 - x0 - 1, 0.8), bottom - y, fill=color, tip=tip, data=data)
    for value, label in markers:
        x = px(value)
        svg.line(x, top - 8, x, bottom, stroke=INK, cls="guide",
                 extra=' stroke-dasharray="4 3"')  # fmt: skip
        anchor = "end" if x > (left + right) / 2 else "start"
        svg.text(x + (-5 if anchor == "end" else 5), top + 4, label, anchor=anchor,
                 cls="guide-label")  # fmt: skip
    return figure(name, title, svg.render(), subtitle=subtitle, note=note)


def heatmap(
    name: str,
    title: str,
    *,
    counts: np.ndarray,
    x_edges: Sequence[float],
    y_edges: Sequence[float],
    x_axis: Axis,
    y_axis: Axis,
    cell_label: Callable[[float, float, float, float], str],
    overlays: Sequence[tuple[Sequence[tuple[float, float]], str, str]] = (),
    subtitle: str = "",
    note: str = "",
    width: float = HALF,
) -> str:
    """Counts over a 2-D grid of bins (``counts[i, j]``: x bin i, y bin j).

    Colour is log-scaled so that both the crowded and the sparse cells show;
    empty cells are not drawn. Each cell carries ``data-count``. ``overlays``
    are ``(points, label, where)``: a dashed polyline in data coordinates,
    labelled at its top or bottom end, left or right of it (``where`` is
    ``"top-left"``, ``"top-right"``, ``"bottom-left"`` or ``"bottom-right"``).
    """
    left = _tick_label_width(y_axis) + 34
    right, top = width - 74, 12
    height = 360
    bottom = height - 48
    svg = _Svg(width, height, title)

    def px(v: float) -> float:
        return left + x_axis.fraction(v) * (right - left)

    def py(v: float) -> float:
        return bottom - y_axis.fraction(v) * (bottom - top)

    _y_axis(svg, y_axis, top, bottom, left, right)
    _x_axis(svg, x_axis, left, right, bottom, top)
    peak = float(counts.max()) if counts.size else 0.0
    scale = math.log1p(peak) or 1.0
    total = float(counts.sum())
    xs = [px(v) for v in x_edges]
    ys = [py(v) for v in y_edges]
    for i, j in zip(*np.nonzero(counts), strict=True):
        count = int(counts[i, j])
        level = math.log1p(count) / scale
        tip = (f"{cell_label(x_edges[i], x_edges[i + 1], y_edges[j], y_edges[j + 1])}: "
               f"{fmt_int(count)} ({fmt_pct(count / total, 2)})")  # fmt: skip
        svg.rect(xs[i], ys[j + 1], xs[i + 1] - xs[i] + 0.4, ys[j] - ys[j + 1] + 0.4,
                 fill=_heat(level), tip=tip, data={"count": count})  # fmt: skip
    for points, label, where in overlays:
        pts = [(px(x), py(y)) for x, y in points]
        pts = [(x, y) for x, y in pts
               if left - 0.5 <= x <= right + 0.5 and top - 0.5 <= y <= bottom + 0.5]  # fmt: skip
        if len(pts) < 2:
            continue
        d = "M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in pts)
        svg.add(f'<path class="guide" d="{d}" fill="none" stroke="{INK}" stroke-width="1.4" '
                'stroke-dasharray="5 3"/>')  # fmt: skip
        vertical, side = where.split("-")
        lx, ly = min(pts, key=lambda p: p[1]) if vertical == "top" else max(pts, key=lambda p: p[1])
        ly = max(ly + 12, top + 12) if vertical == "top" else min(ly - 6, bottom - 6)
        if side == "left":
            svg.text(lx - 5, ly, label, anchor="end", cls="guide-label halo")
        else:
            svg.text(lx + 5, ly, label, cls="guide-label halo")
    # colour key: a vertical ramp with the count range, below the line labels
    kx, k_top, k_bottom = right + 30, top + 64, top + 204
    steps = 24
    for s in range(steps):
        y0 = k_bottom - (s + 1) * (k_bottom - k_top) / steps
        svg.rect(kx, y0, 12, (k_bottom - k_top) / steps + 0.3, fill=_heat((s + 0.5) / steps),
                 cls="key")  # fmt: skip
    svg.text(kx + 6, k_top - 24, "per cell", anchor="middle", cls="tick-label")
    svg.text(kx + 6, k_top - 7, fmt_compact(peak), anchor="middle", cls="tick-label")
    svg.text(kx + 6, k_bottom + 15, "1", anchor="middle", cls="tick-label")
    return figure(name, title, svg.render(), subtitle=subtitle, note=note)


def funnel_chart(
    name: str,
    title: str,
    *,
    steps: Sequence[str],
    counts: Sequence[int],
    unit: str = "",
    subtitle: str = "",
    note: str = "",
    width: float = HALF,
) -> str:
    """Centred bars whose widths follow the counts, with the share of the first
    step and the conversion from the step before.

    Each bar carries ``data-step``, ``data-count``, ``data-of-first`` and
    ``data-of-previous``.
    """
    label_w = max((text_width(s, 13) for s in steps), default=0.0) + 16
    left, right = label_w, width - 12
    bar_h, gap, top = 30, 24, 8
    height = top + len(steps) * (bar_h + gap) + 4
    svg = _Svg(width, height, title)
    first = counts[0] if counts else 0
    mid = (left + right) / 2
    for i, (step, count) in enumerate(zip(steps, counts, strict=True)):
        y = top + i * (bar_h + gap)
        of_first = count / first if first else 0.0
        previous = counts[i - 1] if i else count
        of_previous = count / previous if previous else 0.0
        w = max(of_first * (right - left), 1.0)
        tip = (
            f"{step}: {fmt_int(count)} {unit}".rstrip() + f" ({fmt_pct(of_first)} of the first step"
        )
        tip += f", {fmt_pct(of_previous)} of the step before)" if i else ")"
        svg.rect(mid - w / 2, y, w, bar_h, fill=PRIMARY, tip=tip, data={
            "step": step, "count": int(count), "of-first": f"{of_first:.6f}",
            "of-previous": f"{of_previous:.6f}"})  # fmt: skip
        svg.text(left - 10, y + bar_h / 2 + 4, step, anchor="end", cls="row-label")
        label = f"{fmt_int(count)} · {fmt_pct(of_first)}"
        if w >= text_width(label) + 12:
            svg.text(mid, y + bar_h / 2 + 4, label, anchor="middle", cls="in-bar", fill="#ffffff")
        else:
            svg.text(mid + w / 2 + 6, y + bar_h / 2 + 4, label, cls="bar-value")
        if i:
            svg.text(mid, y - 7, f"↓ {fmt_pct(of_previous)} of the step before", anchor="middle",
                     cls="row-sub")  # fmt: skip
    return figure(name, title, svg.render(), subtitle=subtitle, note=note)


def table(
    name: str,
    title: str,
    frame: pl.DataFrame,
    *,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    headers: Mapping[str, str] | None = None,
    max_rows: int = 200,
    subtitle: str = "",
    note: str = "",
    wide: bool = False,
) -> str:
    """An HTML table of ``frame`` (numbers right-aligned and formatted).

    Integers get thousands separators, floats two decimals (percentages for
    columns named ``*share`` or ``*_rate``), dates ISO form; ``formats``
    overrides per column. Only the first ``max_rows`` rows are
    shown, with a note saying so.
    """
    formats = dict(formats or {})
    headers = dict(headers or {})
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
    for column, dtype in frame.schema.items():  # shares and rates read as percentages
        if dtype.is_float() and column.endswith(("share", "_rate")):
            formats.setdefault(column, fmt_pct)
    head = "".join(
        f'<th class="{"num" if c in numeric else "txt"}">{esc(headers.get(c, c))}</th>'
        for c in frame.columns
    )
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            text = _cell(value, formats.get(column))
            cls = "num" if column in numeric else "txt"
            cells.append(f'<td class="{cls}">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    if frame.height > max_rows:
        extra = f"first {max_rows:,} of {frame.height:,} rows shown"
        note = f"{note} ({extra})" if note else extra.capitalize() + "."
    markup = (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
              f"<tbody>{''.join(body)}</tbody></table></div>")  # fmt: skip
    return figure(name, title, markup, subtitle=subtitle, note=note, wide=wide, kind="table")


def _cell(value: Any, fmt: Callable[[Any], str] | None) -> str:
    if value is None:
        return "–"
    if fmt is not None:
        return fmt(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.2f}"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


# -- colours -----------------------------------------------------------------------


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _heat(level: float) -> str:
    """Colour of a level in [0, 1] on the sequential scale."""
    level = min(max(level, 0.0), 1.0) * (len(_HEAT_STOPS) - 1)
    k = min(int(level), len(_HEAT_STOPS) - 2)
    t = level - k
    a, b = _hex(_HEAT_STOPS[k]), _hex(_HEAT_STOPS[k + 1])
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _on(color: str) -> str:
    """Black or white text, whichever reads better on ``color``."""
    r, g, b = _hex(color)
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def _plain(value: float) -> str:
    """An exact, locale-free number for ``data-*`` attributes."""
    if isinstance(value, int | np.integer) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
