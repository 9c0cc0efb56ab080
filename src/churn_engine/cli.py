"""The ``churn-engine`` command (also ``python -m churn_engine``).

Subcommands:

- ``score INPUT -o OUTPUT``: score a transaction log (Parquet, CSV or Arrow
  IPC) and write one row per customer;
- ``report INPUT -o REPORT.html``: score a log and write a self-contained
  HTML report with charts;
- ``generate --customers N -o FILE``: write a synthetic transaction log;
- ``demo``: generate a sample, score it and print a summary;
- ``products INPUT``: sell-through rate and product classes of the items;
- ``backtest INPUT --as-of DATE``: score as of a past day, check the status
  against who came back in the following days, suggest cycle thresholds.
- ``churn-rate INPUT [-o OUTPUT]``: the churn rate on every day (week,
  month) of a window, with a summary (first, last, lowest, highest).
- ``funnel EVENTS``: daily PV/UV, pay rate, repurchase rate and the
  pv -> fav/cart -> buy funnel of a user-behaviour event log.
- ``generate-events N -o FILE``: write a synthetic event log of N events.

Progress goes to stderr (one line per stage, or a single redrawn status line
on a terminal), the summary to stdout; ``--quiet`` prints nothing but
errors and warnings. Exit codes: 0 success, 1 bad data (schema, values,
unreadable input), 2 bad usage or options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import pathlib
import re
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

import polars as pl

from . import __version__, api, products
from ._backtest import backtest, calibrate
from ._generate import generate_log
from ._generate_events import generate_events
from ._io import open_source
from ._migration import migration
from ._prepare_events import FunnelOptions
from ._rate import FREQS, ChurnRateRun, run_churn_rate
from ._stats import ScoreResult
from ._writers import FORMATS, check_destination, format_for, write_atomic, write_json_atomic
from .config import BUYER_TYPES, STATUSES, TS_UNITS, RfmCuts, ScoreConfig
from .errors import ChurnEngineError, ConfigError
from .funnel import FunnelResult, funnel
from .report import DEFAULT_TITLE, check_html_destination, report

__all__ = ["build_parser", "format_churn_rate_summary", "format_summary", "main"]

PROG = "churn-engine"
DEFAULT_END = dt.date(2026, 6, 30)
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ScoreConfig)}
_EXTENSIONS = ", ".join(FORMATS)
_GLOB_CHARS = frozenset("*?[")


# -- summary -----------------------------------------------------------------


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

    def add(label: str, value: object = "", note: str = "") -> None:
        text = f"{value:,}" if isinstance(value, int) else str(value)
        line = f"{label:<28}{text:>12}"
        lines.append(f"{line}  {note}".rstrip() if note else line.rstrip())

    def share(count: int) -> str:
        return f"{100.0 * count / scored:5.1f} %" if scored else "    - %"

    add("rows read", stats.rows_read)
    add("  accepted", stats.rows_accepted)
    reasons = sorted(stats.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    add(
        "  rejected",
        stats.rows_rejected,
        "(" + ", ".join(f"{reason}: {count:,}" for reason, count in reasons) + ")"
        if reasons
        else "",
    )
    add("  after as_of (not used)", stats.rows_after_as_of)
    add("customers", stats.customers)
    if stats.customers_without_purchase:
        add("  without purchase (refunds only)", stats.customers_without_purchase)
    if scored != stats.customers:
        add("scored rows", scored, "(customer x category)")
    add("as of", _format_as_of(stats.as_of, stats.as_of_day))

    if "status" in frame.columns:
        counts = _counts(frame, "status")
        lines.append("status")
        for status in (*STATUSES, *sorted(set(counts) - set(STATUSES), key=str)):
            count = counts.get(status, 0)
            add(f"  {_label(status)}", count, share(count))
        churned = counts.get("churned", 0)
        rate = f"{100.0 * churned / scored:.1f} %" if scored else "-"
        add("churn rate", rate, "(churned / customers)")
    if "buyer_type" in frame.columns:
        counts = _counts(frame, "buyer_type")
        lines.append("buyer type")
        for kind in (*BUYER_TYPES, *sorted(set(counts) - set(BUYER_TYPES), key=str)):
            count = counts.get(kind, 0)
            add(f"  {_label(kind)}", count, share(count))
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

    def add(label: str, value: object = "", note: str = "") -> None:
        text = f"{value:,}" if isinstance(value, int) else str(value)
        line = f"{label:<28}{text:>12}"
        lines.append(f"{line}  {note}".rstrip() if note else line.rstrip())

    add("rows read", prepared.rows_read)
    add("  accepted", prepared.n_rows)
    reasons = sorted(prepared.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    add(
        "  rejected",
        prepared.rows_rejected,
        "(" + ", ".join(f"{reason}: {count:,}" for reason, count in reasons) + ")"
        if reasons
        else "",
    )
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


# -- progress ----------------------------------------------------------------


class Progress:
    """Stage progress on a stream (stderr): a callable taking a stage name.

    On a terminal a single status line is redrawn (``\\r``) with the stage
    and the elapsed seconds, refreshed twice a second by a daemon thread;
    otherwise one plain line is printed per stage. Disabled, it does nothing.
    """

    def __init__(
        self, stream: TextIO | None = None, *, enabled: bool = True, tty: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.start = time.perf_counter()
        self.stage: str | None = None
        self.stage_start = self.start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._closed = False

    def __call__(self, stage: str) -> None:
        if not self.enabled or self._closed:
            return
        with self._lock:
            self.stage = str(stage)
            self.stage_start = time.perf_counter()
            if self.tty:
                self._draw()
            else:
                self._write(f"[{self.stage_start - self.start:7.1f} s] {self.stage}\n")
        if self.tty and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="churn-progress", daemon=True)
            self._ticker.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close("failed" if exc_type is not None else "done")

    def close(self, final: str = "done") -> None:
        """Stop the ticker and finish the display with a last line."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if not self.enabled or self.stage is None:
            return
        with self._lock:
            now = time.perf_counter()
            if self.tty:
                self._write(f"\r\x1b[K{PROG}: {final} in {now - self.start:.1f} s\n")
            else:
                self._write(f"[{now - self.start:7.1f} s] {final}\n")

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if not self._stop.is_set():
                    self._draw()

    def _draw(self) -> None:
        now = time.perf_counter()
        self._write(
            f"\r\x1b[K{PROG}: {self.stage} ... {now - self.stage_start:.1f} s"
            f" (total {now - self.start:.1f} s)"
        )

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stderr: progress is optional
            pass


# -- argument types ----------------------------------------------------------


def parse_as_of(text: str) -> dt.date | dt.datetime:
    """An ISO date (``2026-06-30``) or datetime (``2026-06-30T18:00[:00][+02:00]``)."""
    text = text.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date or datetime: {text!r} (e.g. 2026-06-30 or 2026-06-30T18:00)"
        ) from None


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r} (e.g. 2026-06-30)") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- parser ------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


_MAIN_EPILOG = f"""\
examples:
  {PROG} demo
  {PROG} generate --customers 1000000 -o transactions.parquet
  {PROG} score transactions.parquet -o scores.parquet --as-of 2026-06-30
  {PROG} score transactions.parquet -o scores.parquet --actions
  {PROG} backtest transactions.parquet --as-of 2025-06-30 --horizon-days 365
  {PROG} migration transactions.parquet --from 2026-03-31 --to 2026-06-30
  {PROG} report transactions.parquet -o report.html
  {PROG} churn-rate transactions.parquet -o churn_rate.csv --freq M
  {PROG} generate-events 10000000 -o events.parquet
  {PROG} funnel events.parquet -o daily.csv

Run '{PROG} COMMAND --help' for the options of a command.
exit codes: 0 ok, 1 bad data (schema, values, unreadable input), 2 bad usage
or options, 130 interrupted.
"""

_SCORE_DESCRIPTION = """\
Score every customer of a transaction log: purchase-interval statistics, a
purchase-cycle churn status (active / at_risk / churned) with its reason,
RFM scores and a segment. One output row per customer (per customer x
category with --category-col), in ascending customer id.

INPUT is a Parquet, CSV or Arrow IPC file with a customer id, a timestamp and
an amount column (negative amounts are refunds). The output format follows
the extension of OUTPUT; the file is written atomically.
"""

_SCORE_EPILOG = f"""\
examples:
  {PROG} score transactions.parquet -o scores.parquet
  {PROG} score log.csv -o scores.csv --as-of 2026-06-30 --customer-col user_id
  {PROG} score log.parquet -o scores.arrow --category-col category --tz Europe/Berlin
  {PROG} score log.parquet -o scores.parquet --on-error quarantine --rejects rejects.csv
  {PROG} score log.parquet -o june.parquet --cuts-out cuts.json
  {PROG} score log.parquet -o july.parquet --cuts-in cuts.json --as-of 2026-07-31
  {PROG} score log.parquet -o scores.parquet --actions
  {PROG} score log.parquet -o scores.parquet --actions my_actions.yaml

Rows after --as-of are not used. A date means the end of that day; a
datetime is taken as is. Bad rows stop the run with an error naming the
column and an example row, unless --on-error quarantine (implied by
--rejects) moves them to the rejects table. --cuts-out saves the RFM cut
points as JSON; --cuts-in reuses them so scores stay comparable across runs.
--actions adds the suggested action of each customer (and the rule that chose
it) from the default action table, or from TABLE (docs/actions.md).
"""

_MIGRATION_DESCRIPTION = """\
Score a transaction log as of two dates and show who moved where: the
status matrix (new / active / at_risk / churned at --from, against active /
at_risk / churned at --to), how many slipped from active to at risk or
churned, how many came back (at_risk or churned, then active), and the
largest moves between RFM segments. "new" are customers whose first purchase
falls after --from.

Both dates use the same column and rule options; RFM cut points are each
date's own unless --cuts-in is given. With -o, one row per customer
(status_from, status_to, segment_from, segment_to; action with --actions) is
written to OUTPUT.
"""

_MIGRATION_EPILOG = f"""\
examples:
  {PROG} migration transactions.parquet --from 2026-03-31 --to 2026-06-30
  {PROG} migration log.parquet --from 2026-01-31 --to 2026-02-28 -o moves.parquet --actions
  {PROG} migration log.csv --from 2025-12-31 --to 2026-06-30 --category-col category

A date means the end of that day; --from must be before --to.
"""

_REPORT_DESCRIPTION = """\
Score a transaction log and write one self-contained HTML file with the key
numbers and charts: status mix by buyer type, RFM segment sizes and revenue,
the distribution of purchase cycles and recency against cycle (plus the
churn-rate curve, funnel, product classes and action table when those
analyses are available). All styles and charts are inline (SVG): the file
opens offline, in any browser, and can be mailed as it is.

INPUT and the column and rule options are as for 'score'. The file is written
atomically. docs/report.md describes every chart.
"""

_REPORT_EPILOG = f"""\
examples:
  {PROG} report transactions.parquet -o report.html
  {PROG} report log.csv -o june.html --as-of 2026-06-30 --title "Shop A, June"
  {PROG} report log.parquet -o report.html --category-col category
"""

_GENERATE_DESCRIPTION = """\
Write a realistic synthetic transaction log (for demos and benchmarks):
about half one-time buyers, repeat buyers with their own purchase cycle,
customers who stopped buying, ~1 % refunds and about 5.4 rows per customer,
spread over three years up to --end and sorted by time. The same --seed
gives the same file.
"""

_GENERATE_EPILOG = f"""\
examples:
  {PROG} generate --customers 100000 -o transactions.parquet
  {PROG} generate --customers 5000000 -o big.parquet --seed 7
  {PROG} generate --customers 1000 -o sample.csv --string-ids --categories --end 2025-12-31
  {PROG} generate --customers 100000 -o items.parquet --items --n-items 5000
"""

_PRODUCTS_DESCRIPTION = """\
Sell-through rate and product classes of the items of a transaction log:
traffic (high volume, low margin), profit (high margin, bought by repeat
buyers), potential (low volume, high margin or rising), edge (low volume,
low margin, or no sale) and core (the rest), by quantile rules over the
items; and which classes the churned (and other) customers bought. The
customers are scored as by 'score' for their buyer type and status.

INPUT is a transaction log with an item column (and optionally unit price,
unit cost and quantity columns). The margin measure is the margin rate with
--cost-col, else the unit price. Definitions: docs/products.md.
"""

_PRODUCTS_EPILOG = f"""\
examples:
  {PROG} products items.parquet --quantity-col quantity --cost-col cost
  {PROG} products log.parquet --as-of 2026-06-30 -o items.parquet --mix-out mix.csv
  {PROG} products log.csv --catalog listed.csv --lookback-days 365 --volume orders

-o writes one row per item with its class; --mix-out the status x class table.
"""

_DEMO_DESCRIPTION = """\
Generate a sample transaction log, score it and print a summary. Both files
(transactions.parquet and scores.parquet) are kept in a new temporary folder,
or in --dir, so that you can look at them.
"""

_CHURN_RATE_DESCRIPTION = """\
The churn rate over time: for every day of a window, as of the end of that
day, the customers who had bought on or before it (customers), those of them
whose last purchase is --horizon-days days old or more (churned), their share
(churn_rate), and the day's new, newly churned and returned customers. The
same numbers as 'score --as-of DAY' (reason no_purchase_365d) gives, for
every day at once, in one pass over the log. Refund-only customers are not
counted.

Before one horizon has passed since the first day of the data nobody can be
churned yet, so --start defaults to that day. Prints a summary (first, last,
lowest and highest rate); -o writes the table (atomically).
"""

_CHURN_RATE_EPILOG = f"""\
examples:
  {PROG} churn-rate transactions.parquet
  {PROG} churn-rate transactions.parquet -o rate.csv --start 2025-01-01 --end 2026-06-30
  {PROG} churn-rate log.parquet -o monthly.parquet --freq M --horizon-days 180
  {PROG} churn-rate log.parquet -o by_category.csv --category-col category --freq W
"""

_DEMO_EPILOG = f"""\
examples:
  {PROG} demo
  {PROG} demo --customers 1000000 --dir ./demo
"""


_BACKTEST_DESCRIPTION = """\
Check the churn status against what customers did next. The log is scored
with the rows up to --as-of only; each scored customer is then labelled
"came back" when they have a purchase (a non-refund row) on one of the
--horizon-days whole days after the as_of day. Prints, per status, per
buyer type and per cycles_since_last bucket (0-0.5, 0.5-1, 1-1.5, 1.5-2,
2-3, >=3 cycles), how many customers came back; the precision, recall and
F1 of "churned" as a prediction of "did not come back"; and the smallest
churn_cycles / at_risk_cycles whose repeat buyers did not come back with
the target precision (calibration).

INPUT is the whole log (Parquet, CSV or Arrow IPC), rows after --as-of
included. A horizon that runs past the last day of the data is refused
(the labels would be wrong) unless --allow-partial-horizon.
"""

_BACKTEST_EPILOG = f"""\
examples:
  {PROG} backtest transactions.parquet --as-of 2025-06-30
  {PROG} backtest log.csv --as-of 2025-12-31 --horizon-days 90 --target-precision 0.95
  {PROG} backtest log.parquet --as-of 2025-06-30 -o backtest.json
  {PROG} backtest log.parquet --as-of 2025-06-30 -o labels.parquet --churn-cycles 2.5

--horizon-days is the label window here; the status rule "churned after 365
days without a purchase" is --rule-horizon-days. -o FILE.json writes the
tables, metrics and calibration as JSON; -o FILE.parquet (.csv, .arrow)
writes one row per scored customer: the scores plus returned and first_return.
"""


_FUNNEL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(FunnelOptions)}

DEFAULT_EVENTS_START = dt.date(2017, 11, 25)

_FUNNEL_DESCRIPTION = """\
Count the behaviour funnel of a user-behaviour event log (one row per user
action: user id, behaviour pv/fav/cart/buy, timestamp; optionally item and
category ids, as in the public Taobao UserBehavior log): per day and over the
period, the events of each behaviour (PV = pv events), the distinct users
(UV), the buyers and the pay rate (buyers / users), the repurchase rate
(users buying on 2+ days / buyers) and the funnel pv -> fav/cart -> buy
(users at each step, each step requiring the previous ones) with its
conversion and drop-off. Prints the daily table and the funnel; -o writes
the daily table, --funnel-out the funnel table (format from the extension).

Behaviour values must be exactly pv, fav, cart or buy (lower case).
Definitions: docs/funnel.md.
"""

_FUNNEL_EPILOG = f"""\
examples:
  {PROG} funnel events.parquet
  {PROG} funnel events.parquet -o daily.csv --funnel-out funnel.csv
  {PROG} funnel UserBehavior.csv \\
      --csv-columns user_id,item_id,category_id,behavior_type,timestamp \\
      --behaviour-col behavior_type --ts-col timestamp --ts-unit s --tz Asia/Shanghai \\
      --start 2017-11-25 --end 2017-12-03 -o daily.parquet

Events outside --start .. --end (inclusive days in --tz) are not counted.
Bad rows (null user, null or unparseable timestamp, null or unknown
behaviour) stop the run with an error naming the column and an example row,
unless --on-error quarantine (implied by --rejects) sets them aside.
"""

_GENERATE_EVENTS_DESCRIPTION = f"""\
Write a synthetic user-behaviour event log of N events (for demos and
benchmarks), shaped like the public Taobao UserBehavior log: about 100
events per user over --days days from --start, ~89.5 % pv, 5.5 % cart,
2.9 % fav and 2 % buy, each user with their own propensities (so some users
never buy and others buy on several days), items and categories, sorted by
user then time. Columns: user_id, item_id, category_id, behavior, ts (UTC),
the defaults of '{PROG} funnel'. The same --seed gives the same file.
"""

_GENERATE_EVENTS_EPILOG = f"""\
examples:
  {PROG} generate-events 1000000 -o events.parquet
  {PROG} generate-events 10000000 -o events.parquet --seed 7
  {PROG} generate-events 100000 -o UserBehavior.csv --taobao-columns
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``churn-engine`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Batch customer-churn scoring: purchase cycles, churn status, RFM segments.",
        epilog=_MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # score
    p = commands.add_parser(
        "score",
        help="score the customers of a transaction log",
        description=_SCORE_DESCRIPTION,
        epilog=_SCORE_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_score)
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT",
        help=f"scores file; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    p.add_argument(
        "--as-of", type=parse_as_of, metavar="DATE",
        help="score as of this ISO date or datetime (default: the last day in the data)",
    )  # fmt: skip
    _add_actions_option(p, "(action, action_reason columns)")
    _add_column_options(p)
    rules = _add_rule_options(p)
    rules.add_argument("--cuts-out", metavar="JSON", help="save the RFM cut points used as JSON")
    _add_model_options(p)
    _add_run_options(p, rejects=True)

    # migration
    p = commands.add_parser(
        "migration",
        help="who moved between statuses and segments from one date to another",
        description=_MIGRATION_DESCRIPTION,
        epilog=_MIGRATION_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_migration)
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "--from", dest="from_as_of", type=parse_as_of, required=True, metavar="DATE",
        help="the first date (ISO date or datetime)",
    )  # fmt: skip
    p.add_argument(
        "--to", dest="to_as_of", type=parse_as_of, required=True, metavar="DATE",
        help="the second date, after --from",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help=f"write one row per customer here; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    _add_actions_option(p, "at --to to each customer of OUTPUT")
    _add_column_options(p)
    _add_rule_options(p)
    _add_run_options(p, rejects=False)

    # report
    p = commands.add_parser(
        "report",
        help="write an HTML report with charts (self-contained, opens offline)",
        description=_REPORT_DESCRIPTION,
        epilog=_REPORT_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_report)
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", required=True, metavar="REPORT",
        help="the HTML file to write (.html)",
    )  # fmt: skip
    p.add_argument(
        "--as-of", type=parse_as_of, metavar="DATE",
        help="score as of this ISO date or datetime (default: the last day in the data)",
    )  # fmt: skip
    p.add_argument(
        "--events", metavar="EVENTS",
        help="user-behaviour event log (pv/fav/cart/buy) for the funnel section",
    )  # fmt: skip
    p.add_argument("--title", metavar="TEXT", help=f"page title (default: {DEFAULT_TITLE!r})")
    _add_column_options(p)
    _add_rule_options(p)
    _add_run_options(p, rejects=False)

    # generate
    p = commands.add_parser(
        "generate",
        help="write a synthetic transaction log",
        description=_GENERATE_DESCRIPTION,
        epilog=_GENERATE_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_generate)
    p.add_argument(
        "--customers", type=_positive_int, required=True, metavar="N",
        help="number of customers (about 5.4 rows each)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE",
        help=f"output file; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--end", type=_parse_date, default=DEFAULT_END, metavar="DATE",
        help=f"last day of the log (default: {DEFAULT_END})",
    )  # fmt: skip
    p.add_argument(
        "--years", type=float, default=3.0,
        help="first purchases spread over this many years before --end (default: 3)",
    )  # fmt: skip
    p.add_argument(
        "--string-ids", action="store_true",
        help='string customer ids like "C0004812305" instead of Int64',
    )  # fmt: skip
    p.add_argument("--categories", action="store_true", help="add a product category column")
    p.add_argument(
        "--items", action="store_true",
        help="add item_id, quantity, price (unit price) and cost (unit cost) columns",
    )  # fmt: skip
    p.add_argument(
        "--n-items", type=_positive_int, default=2_000, metavar="N",
        help="number of items with --items (default: 2000)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    # products
    p = commands.add_parser(
        "products",
        help="sell-through rate and product classes of the items",
        description=_PRODUCTS_DESCRIPTION,
        epilog=_PRODUCTS_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_products)
    _add_products_options(p)

    # demo
    p = commands.add_parser(
        "demo",
        help="generate a sample, score it and print a summary",
        description=_DEMO_DESCRIPTION,
        epilog=_DEMO_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_demo)
    p.add_argument(
        "--customers", type=_positive_int, default=100_000, metavar="N",
        help="number of customers (default: 100000)",
    )  # fmt: skip
    p.add_argument(
        "--dir", metavar="DIR",
        help="folder for the files, created if needed (default: a new temporary folder)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    # backtest
    p = commands.add_parser(
        "backtest",
        help="check the status against who came back; suggest cycle thresholds",
        description=_BACKTEST_DESCRIPTION,
        epilog=_BACKTEST_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_backtest)
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "--as-of", type=parse_as_of, required=True, metavar="DATE",
        help="score with the rows up to this ISO date (end of day) or datetime",
    )  # fmt: skip
    p.add_argument(
        "--horizon-days", type=_positive_int, default=365, metavar="N",
        help="label window: came back = a purchase in the N days after the as_of day "
        "(default: 365)",
    )  # fmt: skip
    p.add_argument(
        "--allow-partial-horizon", action="store_true",
        help="accept a window that runs past the end of the data (returns after it are missed)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", metavar="FILE",
        help=f"write the report (.json) or the labelled customers ({_EXTENSIONS})",
    )  # fmt: skip
    calibration = p.add_argument_group("calibration")
    calibration.add_argument(
        "--target-precision", type=_fraction, default=0.9, metavar="P",
        help="suggest the smallest churn_cycles whose repeat buyers did not come back "
        "with at least this precision (default: 0.9)",
    )  # fmt: skip
    calibration.add_argument(
        "--at-risk-precision", type=_fraction, default=0.75, metavar="P",
        help="the same for at_risk_cycles (default: 0.75)",
    )  # fmt: skip
    calibration.add_argument(
        "--min-customers", type=_positive_int, default=100, metavar="N",
        help="a threshold must flag at least N repeat buyers (default: 100)",
    )  # fmt: skip
    _add_column_options(p)
    rules = p.add_argument_group("rules (the status being tested)")
    _add_cycle_rule_options(rules, "--rule-horizon-days")
    run = p.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"), default="raise",
        help="stop at the first bad row, or leave bad rows out and count them (default: raise)",
    )  # fmt: skip
    run.add_argument("--threads", type=int, metavar="N", help="worker threads (default: all cores)")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    # churn-rate
    p = commands.add_parser(
        "churn-rate",
        help="the churn rate on every day (week, month) of a window",
        description=_CHURN_RATE_DESCRIPTION,
        epilog=_CHURN_RATE_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_churn_rate)
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help=f"write the table here; format from the extension ({_EXTENSIONS}) "
        "(default: print the summary only)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=_parse_date, metavar="DATE",
        help="first day (default: the first day of the data + the horizon)",
    )  # fmt: skip
    p.add_argument(
        "--end", type=_parse_date, metavar="DATE",
        help="last day; later rows are not used (default: the last day of the data)",
    )  # fmt: skip
    p.add_argument(
        "--horizon-days", type=int, default=_DEFAULTS["horizon_days"], metavar="DAYS",
        help=f"churned after DAYS without a purchase (default: {_DEFAULTS['horizon_days']})",
    )  # fmt: skip
    p.add_argument(
        "--freq", choices=FREQS, default="D",
        help="one row per day, week (Monday..Sunday) or month; a week or month row holds "
        "the rate on its last day and the flows summed over it (default: D)",
    )  # fmt: skip
    columns = p.add_argument_group("columns")
    for option, field, what in (
        ("--customer-col", "customer_col", "customer id column"),
        ("--ts-col", "ts_col", "timestamp column"),
        ("--amount-col", "amount_col", "amount column (negative = refund)"),
    ):
        columns.add_argument(
            option, default=_DEFAULTS[field], metavar="NAME",
            help=f"{what} (default: {_DEFAULTS[field]})",
        )  # fmt: skip
    columns.add_argument(
        "--category-col", metavar="NAME",
        help="one curve per category (a customer counts in each category bought in)",
    )  # fmt: skip
    columns.add_argument(
        "--tz", default=_DEFAULTS["tz"], metavar="ZONE",
        help=f"time zone days are cut in (default: {_DEFAULTS['tz']})",
    )  # fmt: skip
    columns.add_argument(
        "--ts-unit", choices=TS_UNITS,
        help="unit of integer epoch timestamps (required for them)",
    )  # fmt: skip
    run = p.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"), default="raise",
        help="stop at the first bad row, or leave bad rows out and count them (default: raise)",
    )  # fmt: skip
    run.add_argument("--threads", type=int, metavar="N", help="worker threads (default: all cores)")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    _add_funnel(commands)
    _add_generate_events(commands)
    return parser


def _add_column_options(p: argparse.ArgumentParser) -> None:
    """Input columns, time zone and epoch unit (shared by the commands that read a log)."""
    columns = p.add_argument_group("columns")
    for option, field, what in (
        ("--customer-col", "customer_col", "customer id column"),
        ("--ts-col", "ts_col", "timestamp column"),
        ("--amount-col", "amount_col", "amount column (negative = refund)"),
    ):
        columns.add_argument(
            option, default=_DEFAULTS[field], metavar="NAME",
            help=f"{what} (default: {_DEFAULTS[field]})",
        )  # fmt: skip
    columns.add_argument(
        "--category-col", metavar="NAME",
        help="score per customer x category, with per-category priors (default: none)",
    )  # fmt: skip
    columns.add_argument(
        "--tz", default=_DEFAULTS["tz"], metavar="ZONE",
        help="time zone days are cut in; naive timestamps are taken to be in it "
        f"(default: {_DEFAULTS['tz']})",
    )  # fmt: skip
    columns.add_argument(
        "--ts-unit", choices=TS_UNITS,
        help="unit of integer epoch timestamps (required for them)",
    )  # fmt: skip


def _add_rule_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The status and RFM rule options shared by score and migration."""
    rules = p.add_argument_group("rules")
    _add_cycle_rule_options(rules, "--horizon-days")
    rules.add_argument(
        "--rfm-bins", type=int, default=_DEFAULTS["rfm_bins"], metavar="N",
        help=f"RFM score levels, 2..9; segments need 5 (default: {_DEFAULTS['rfm_bins']})",
    )  # fmt: skip
    rules.add_argument(
        "--cuts-in", metavar="JSON",
        help="reuse RFM cut points saved by --cuts-out instead of computing them",
    )  # fmt: skip
    return rules


def _add_actions_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--actions", nargs="?", const=True, default=False, metavar="TABLE",
        help=f"add the suggested action {what}; TABLE (.yaml, .yml or .json) replaces the "
        "default action table (put it after INPUT, or write --actions=TABLE)",
    )  # fmt: skip


def _add_model_options(p: argparse.ArgumentParser) -> None:
    model = p.add_argument_group("model")
    model.add_argument(
        "--model", choices=("bgnbd",),
        help="also fit the BG/NBD model and add p_alive and expected_purchases (needs SciPy: "
        'pip install "churn-engine[models]")',
    )  # fmt: skip
    model.add_argument(
        "--model-horizon-days", type=float, default=_DEFAULTS["model_horizon_days"],
        metavar="DAYS",
        help=f"days ahead for expected_purchases (default: {_DEFAULTS['model_horizon_days']:g})",
    )  # fmt: skip
    model.add_argument(
        "--model-penalizer", type=float, default=_DEFAULTS["model_penalizer"], metavar="X",
        help="L2 penalty of the fit, e.g. 0.001 when it does not converge (default: 0)",
    )  # fmt: skip


def _add_run_options(p: argparse.ArgumentParser, *, rejects: bool) -> None:
    run = p.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"),
        help="stop at the first bad row, or set bad rows aside "
        + ("(default: raise; quarantine with --rejects)" if rejects else "(default: raise)"),
    )  # fmt: skip
    if rejects:
        run.add_argument(
            "--rejects", metavar="FILE",
            help="write the rejected rows with their reason here (implies --on-error quarantine)",
        )  # fmt: skip
    run.add_argument("--threads", type=int, metavar="N", help="worker threads (default: all cores)")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_cycle_rule_options(rules: Any, horizon_option: str) -> None:
    """The status rule options; the no-purchase horizon is ``horizon_option``
    (``--rule-horizon-days`` for backtest, where --horizon-days is the label window)."""
    rules.add_argument(
        "--at-risk-cycles", type=float, default=_DEFAULTS["at_risk_cycles"], metavar="X",
        help=f"at risk after X purchase cycles without a purchase "
        f"(default: {_DEFAULTS['at_risk_cycles']})",
    )  # fmt: skip
    rules.add_argument(
        "--churn-cycles", type=float, default=_DEFAULTS["churn_cycles"], metavar="X",
        help=f"churned after X cycles (default: {_DEFAULTS['churn_cycles']})",
    )  # fmt: skip
    rules.add_argument(
        horizon_option, type=int, default=_DEFAULTS["horizon_days"], metavar="DAYS",
        dest="rule_horizon_days",
        help=f"churned after DAYS without a purchase, whatever the cycle "
        f"(default: {_DEFAULTS['horizon_days']})",
    )  # fmt: skip
    rules.add_argument(
        "--prior-weight", type=float, default=_DEFAULTS["prior_weight"], metavar="W",
        help=f"weight of the prior cycle against a customer's own gaps "
        f"(default: {_DEFAULTS['prior_weight']})",
    )  # fmt: skip
    rules.add_argument(
        "--prior-days", type=float, metavar="DAYS",
        help="fixed prior cycle (default: median mean gap of the repeat buyers)",
    )  # fmt: skip


# -- commands ----------------------------------------------------------------


def _cmd_generate(args: argparse.Namespace) -> int:
    format_for(args.output)
    check_destination(args.output)
    with Progress(enabled=not args.quiet) as progress:
        progress("generate")
        log = generate_log(
            args.customers,
            seed=args.seed,
            end=args.end,
            years=args.years,
            string_ids=args.string_ids,
            categories=args.categories,
            items=args.items,
            n_items=args.n_items,
        )
        progress("write")
        path = write_atomic(log, args.output)
    if not args.quiet:
        print(f"wrote {log.height:,} rows for {args.customers:,} customers to {path}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    output = pathlib.Path(args.output)
    format_for(output)
    check_destination(output)
    on_error = args.on_error
    if args.rejects is not None:
        if on_error == "raise":
            raise ConfigError("--rejects needs --on-error quarantine (it is implied when omitted)")
        on_error = "quarantine"
        format_for(args.rejects)
        check_destination(args.rejects)
        if _same_path(args.rejects, output):
            raise ConfigError("--rejects and --output name the same file")
    if args.cuts_out is not None:
        check_destination(args.cuts_out)
    config = _score_config(args, on_error or "raise")
    source = _check_input(args.input)
    if _same_path(source, output):
        raise ConfigError("--output would overwrite INPUT; choose another file")

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        result = api.Scorer(config).run(source, as_of=args.as_of, progress=progress)
        progress("write")
        write_atomic(result.customers, output)
        if args.rejects is not None and result.rejects is not None:
            write_atomic(result.rejects, args.rejects)
        if args.cuts_out is not None and result.cuts is not None:
            write_json_atomic(result.cuts.to_dict(), args.cuts_out)
    elapsed = time.perf_counter() - start

    if args.rejects is not None and result.rejects is None:
        _warn(f"no rejects table was produced; {args.rejects} not written")
    if args.cuts_out is not None and result.cuts is None:
        _warn(f"no customer was scored, so there are no cut points; {args.cuts_out} not written")
    if on_error == "quarantine" and args.rejects is None and result.stats.rows_rejected:
        _warn(f"{result.stats.rows_rejected:,} rejected rows not saved (use --rejects FILE)")
    if not args.quiet:
        print(format_summary(result, elapsed))
        print(f"wrote {result.customers.height:,} rows to {output}")
        if args.rejects is not None and result.rejects is not None:
            print(f"wrote {result.rejects.height:,} rejected rows to {args.rejects}")
        if args.cuts_out is not None and result.cuts is not None:
            print(f"wrote RFM cut points to {args.cuts_out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    output = check_html_destination(args.output)
    config = _score_config(args, args.on_error or "raise")
    source = _check_input(args.input)
    if _same_path(source, output):
        raise ConfigError("--output would overwrite INPUT; choose another file")
    events = None
    if args.events is not None:
        events = _check_input(args.events, what="--events file")
        if _same_path(events, output):
            raise ConfigError("--output would overwrite the --events file; choose another file")

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        path = report(source, output, as_of=args.as_of, events=events, title=args.title,
                      progress=progress, config=config)  # fmt: skip
    elapsed = time.perf_counter() - start
    if not args.quiet:
        size = path.stat().st_size
        print(f"wrote the report to {path} ({size / 1024:,.0f} KiB) in {elapsed:.1f} s")
    return 0


_RULE_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(products.ProductRules)
}


def _add_products_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="transaction log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help=f"write the item table here; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    p.add_argument("--mix-out", metavar="FILE", help="write the status x class table here")
    p.add_argument(
        "--as-of", type=parse_as_of, metavar="DATE",
        help="as of this ISO date or datetime (default: the last day in the data)",
    )  # fmt: skip
    columns = p.add_argument_group("columns")
    columns.add_argument(
        "--item-col", default="item_id", metavar="NAME", help="item id column (default: item_id)"
    )
    columns.add_argument(
        "--price-col", metavar="NAME",
        help="unit price column (default: amount / quantity, or amount)",
    )  # fmt: skip
    columns.add_argument(
        "--cost-col", metavar="NAME",
        help="unit cost column; with it the margin measure is the margin rate, else the price",
    )  # fmt: skip
    columns.add_argument(
        "--quantity-col", metavar="NAME", help="units per row (default: one unit per row)"
    )
    columns.add_argument(
        "--catalog", metavar="FILE",
        help="listed items (a file with the item column); items without a sale count as unsold",
    )  # fmt: skip
    for option, field, what in (
        ("--customer-col", "customer_col", "customer id column"),
        ("--ts-col", "ts_col", "timestamp column"),
        ("--amount-col", "amount_col", "amount column (negative = refund)"),
    ):
        columns.add_argument(
            option, default=_DEFAULTS[field], metavar="NAME",
            help=f"{what} (default: {_DEFAULTS[field]})",
        )  # fmt: skip
    columns.add_argument(
        "--category-col", metavar="NAME",
        help="score per customer x category (statuses and buyer types per category)",
    )  # fmt: skip
    columns.add_argument(
        "--tz", default=_DEFAULTS["tz"], metavar="ZONE",
        help=f"time zone days are cut in (default: {_DEFAULTS['tz']})",
    )  # fmt: skip
    columns.add_argument(
        "--ts-unit", choices=TS_UNITS, help="unit of integer epoch timestamps (required for them)"
    )
    rules = p.add_argument_group("product rules (quantiles are over the items sold)")
    rules.add_argument(
        "--volume", choices=("units", "orders"), default=_RULE_DEFAULTS["volume"],
        help=f"volume measure (default: {_RULE_DEFAULTS['volume']})",
    )  # fmt: skip
    for name, what in (
        ("volume_high_quantile", "high volume: at least this quantile"),
        ("volume_low_quantile", "low volume: at most this quantile"),
        ("margin_high_quantile", "high margin: at least this quantile"),
        ("margin_low_quantile", "low margin: at most this quantile"),
        ("repeat_share_quantile", "profit: repeat-buyer share at least this quantile"),
    ):
        rules.add_argument(
            "--" + name.replace("_", "-"), type=float, default=_RULE_DEFAULTS[name],
            metavar="Q", help=f"{what} (default: {_RULE_DEFAULTS[name]})",
        )  # fmt: skip
    for name, what in (
        ("sell_through_days", "sell-through: sold in the last DAYS"),
        ("rising_recent_days", "rising: the recent window"),
        ("rising_baseline_days", "rising: the baseline window before it"),
    ):
        rules.add_argument(
            "--" + name.replace("_", "-"), type=int, default=_RULE_DEFAULTS[name],
            metavar="DAYS", help=f"{what} (default: {_RULE_DEFAULTS[name]})",
        )  # fmt: skip
    rules.add_argument(
        "--rising-ratio", type=float, default=_RULE_DEFAULTS["rising_ratio"], metavar="X",
        help="rising: recent daily volume at least X times the baseline's "
        f"(default: {_RULE_DEFAULTS['rising_ratio']})",
    )  # fmt: skip
    rules.add_argument(
        "--rising-min-orders", type=int, default=_RULE_DEFAULTS["rising_min_orders"],
        metavar="N", help="rising: at least N orders in the recent window "
        f"(default: {_RULE_DEFAULTS['rising_min_orders']})",
    )  # fmt: skip
    rules.add_argument(
        "--lookback-days", type=int, metavar="DAYS",
        help="volumes, money and quantiles over the last DAYS only (default: all rows)",
    )  # fmt: skip
    status = p.add_argument_group("status rules (as for 'score')")
    for option, field, metavar, kind in (
        ("--at-risk-cycles", "at_risk_cycles", "X", float),
        ("--churn-cycles", "churn_cycles", "X", float),
        ("--horizon-days", "horizon_days", "DAYS", int),
    ):
        status.add_argument(
            option, type=kind, default=_DEFAULTS[field], metavar=metavar,
            help=f"(default: {_DEFAULTS[field]})",
        )  # fmt: skip
    run = p.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"), default="raise",
        help="stop at the first bad row, or set bad rows aside (default: raise)",
    )  # fmt: skip
    run.add_argument("--threads", type=int, metavar="N", help="worker threads (default: all cores)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


_RULE_NAMES = re.compile(
    r"\b(?:volume_high_quantile|volume_low_quantile|margin_high_quantile|margin_low_quantile"
    r"|repeat_share_quantile|sell_through_days|rising_recent_days|rising_baseline_days"
    r"|rising_ratio|rising_min_orders|lookback_days)\b"
)


def _cmd_products(args: argparse.Namespace) -> int:
    outputs = [path for path in (args.output, args.mix_out) if path is not None]
    for path in outputs:
        format_for(path)
        check_destination(path)
    if len(outputs) == 2 and _same_path(*outputs):
        raise ConfigError("--output and --mix-out name the same file")
    try:
        rules = products.ProductRules(
            volume=args.volume,
            **{name: getattr(args, name) for name in _RULE_DEFAULTS
               if name not in ("volume", "thresholds")},
        )  # fmt: skip
    except ConfigError as exc:
        message = _RULE_NAMES.sub(lambda m: "--" + m.group(0).replace("_", "-"), str(exc))
        raise ConfigError(message) from None
    options = dict(
        customer_col=args.customer_col,
        ts_col=args.ts_col,
        amount_col=args.amount_col,
        category_col=args.category_col,
        tz=args.tz,
        ts_unit=args.ts_unit,
        at_risk_cycles=args.at_risk_cycles,
        churn_cycles=args.churn_cycles,
        horizon_days=args.horizon_days,
        on_error=args.on_error,
        threads=args.threads,
    )
    _config(**options)  # option errors name the command-line options
    source = _check_input(args.input)
    if any(_same_path(source, path) for path in outputs):
        raise ConfigError("an output would overwrite INPUT; choose another file")
    catalog = None
    if args.catalog is not None:
        catalog = open_source(_check_input(args.catalog)).collect()

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        result = products.product_classes(
            source,
            as_of=args.as_of,
            item_col=args.item_col,
            price_col=args.price_col,
            cost_col=args.cost_col,
            quantity_col=args.quantity_col,
            catalog=catalog,
            rules=rules,
            progress=progress,
            **options,
        )
        if args.output is not None:
            progress("write")
            write_atomic(result.items, args.output)
        if args.mix_out is not None:
            write_atomic(result.churned_mix, args.mix_out)
    elapsed = time.perf_counter() - start
    if args.on_error == "quarantine" and result.rejected_by_reason:
        _warn(f"{sum(result.rejected_by_reason.values()):,} rows were set aside")
    print(result)
    if not args.quiet:
        print(f"time {elapsed:.2f} s")
        if args.output is not None:
            print(f"wrote {result.items.height:,} items to {args.output}")
        if args.mix_out is not None:
            print(f"wrote the status x class table to {args.mix_out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        folder = pathlib.Path(args.dir)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--dir {args.dir!r} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="churn-engine-demo-"))
    log_path = folder / "transactions.parquet"
    scores_path = folder / "scores.parquet"

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        progress("generate")
        log = generate_log(args.customers, seed=args.seed, end=DEFAULT_END)
        n_rows = log.height
        progress("write log")
        write_atomic(log, log_path)
        del log
        result = api.Scorer(ScoreConfig()).run(str(log_path), as_of=DEFAULT_END, progress=progress)
        progress("write scores")
        write_atomic(result.customers, scores_path)
    elapsed = time.perf_counter() - start

    print(format_summary(result, elapsed))
    print()
    print(f"transactions: {log_path}  ({n_rows:,} rows, {args.customers:,} customers)")
    print(f"scores:       {scores_path}  ({result.customers.height:,} rows)")
    snippet = f"import polars as pl; print(pl.read_parquet({str(scores_path)!r}))"
    print(f'look at them: python -c "{snippet}"')
    return 0


def _cmd_migration(args: argparse.Namespace) -> int:
    output = pathlib.Path(args.output) if args.output is not None else None
    if output is not None:
        format_for(output)
        check_destination(output)
    config = _score_config(args, args.on_error or "raise")
    source = _check_input(args.input)
    if output is not None and _same_path(source, output):
        raise ConfigError("--output would overwrite INPUT; choose another file")

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        moves = migration(source, args.from_as_of, args.to_as_of, config=config,
                          progress=progress)  # fmt: skip
        if output is not None:
            progress("write")
            write_atomic(moves.customers, output)
    elapsed = time.perf_counter() - start

    rejected = moves.to_stats.rows_rejected
    if rejected:
        _warn(f"{rejected:,} rejected rows were not used")
    if not args.quiet:
        print(moves)
        print(f"{'time':<28}{f'{elapsed:.2f} s':>12}")
        if output is not None:
            print(f"wrote {moves.customers.height:,} rows to {output}")
    return 0


def _score_config(args: argparse.Namespace, on_error: str) -> ScoreConfig:
    """The ScoreConfig of the column, rule and run options of score/migration."""
    cuts = _read_cuts(args.cuts_in) if args.cuts_in is not None else None
    return _config(
        customer_col=args.customer_col,
        ts_col=args.ts_col,
        amount_col=args.amount_col,
        category_col=args.category_col,
        tz=args.tz,
        ts_unit=args.ts_unit,
        at_risk_cycles=args.at_risk_cycles,
        churn_cycles=args.churn_cycles,
        horizon_days=args.rule_horizon_days,
        prior_weight=args.prior_weight,
        prior_days=args.prior_days,
        rfm_bins=args.rfm_bins,
        cuts=cuts,
        actions=getattr(args, "actions", False),
        model=getattr(args, "model", None),
        model_horizon_days=getattr(args, "model_horizon_days", _DEFAULTS["model_horizon_days"]),
        model_penalizer=getattr(args, "model_penalizer", _DEFAULTS["model_penalizer"]),
        on_error=on_error,
        threads=args.threads,
    )


def _cmd_backtest(args: argparse.Namespace) -> int:
    output = pathlib.Path(args.output) if args.output is not None else None
    if output is not None:
        if output.suffix.lower() != ".json":
            format_for(output)
        check_destination(output)
    if args.at_risk_precision > args.target_precision:
        raise ConfigError(
            f"--at-risk-precision ({args.at_risk_precision}) must not exceed "
            f"--target-precision ({args.target_precision})"
        )
    try:
        config = _config(
            customer_col=args.customer_col,
            ts_col=args.ts_col,
            amount_col=args.amount_col,
            category_col=args.category_col,
            tz=args.tz,
            ts_unit=args.ts_unit,
            at_risk_cycles=args.at_risk_cycles,
            churn_cycles=args.churn_cycles,
            horizon_days=args.rule_horizon_days,
            prior_weight=args.prior_weight,
            prior_days=args.prior_days,
            on_error=args.on_error,
            threads=args.threads,
        )
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--horizon-days", "--rule-horizon-days")) from None
    source = _check_input(args.input)
    if output is not None and _same_path(source, output):
        raise ConfigError("--output would overwrite INPUT; choose another file")

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        try:
            result = backtest(
                source, as_of=args.as_of, horizon_days=args.horizon_days,
                allow_partial_horizon=args.allow_partial_horizon, config=config,
                progress=progress,
            )  # fmt: skip
        except ConfigError as exc:
            raise ConfigError(_BACKTEST_NAMES.sub(_option_name, str(exc))) from None
        progress("calibrate")
        calibration = calibrate(
            result, target_precision=args.target_precision,
            at_risk_precision=args.at_risk_precision, min_customers=args.min_customers,
        )  # fmt: skip
        if output is not None:
            progress("write")
            if output.suffix.lower() == ".json":
                write_json_atomic(
                    {**result.to_dict(), "calibration": calibration.to_dict()}, output
                )
            else:
                write_atomic(result.customers, output)
    elapsed = time.perf_counter() - start

    if result.stats.rows_rejected:
        _warn(f"{result.stats.rows_rejected:,} rejected rows left out")
    if not args.quiet:
        print(result.summary())
        print()
        print(calibration.summary())
        print()
        print(f"time {elapsed:.2f} s")
        if output is not None:
            what = (
                "report"
                if output.suffix.lower() == ".json"
                else (f"{result.customers.height:,} rows")
            )
            print(f"wrote {what} to {output}")
    return 0


# Backtest keywords named in its errors -> the command-line options.
_BACKTEST_NAMES = re.compile(r"\b(?:allow_partial_horizon=True|horizon_days|as_of)\b")


def _option_name(match: re.Match[str]) -> str:
    name = match.group(0).removesuffix("=True")
    return "--" + name.replace("_", "-")


def _cmd_churn_rate(args: argparse.Namespace) -> int:
    output = None
    if args.output is not None:
        output = pathlib.Path(args.output)
        format_for(output)
        check_destination(output)
    config = _config(
        customer_col=args.customer_col,
        ts_col=args.ts_col,
        amount_col=args.amount_col,
        category_col=args.category_col,
        tz=args.tz,
        ts_unit=args.ts_unit,
        horizon_days=args.horizon_days,
        on_error=args.on_error,
        threads=args.threads,
    )
    if args.start is not None and args.end is not None and args.start > args.end:
        raise ConfigError(f"--start ({args.start}) is after --end ({args.end})")
    source = _check_input(args.input)
    if output is not None and _same_path(source, output):
        raise ConfigError("--output would overwrite INPUT; choose another file")

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        options = {f: getattr(config, f) for f in ("customer_col", "ts_col", "amount_col",
                   "category_col", "tz", "ts_unit", "on_error", "threads")}  # fmt: skip
        run = run_churn_rate(
            source, start=args.start, end=args.end, horizon_days=config.horizon_days,
            freq=args.freq, progress=progress, **options,
        )  # fmt: skip
        if output is not None:
            progress("write")
            write_atomic(run.table, output)
    elapsed = time.perf_counter() - start
    if args.on_error == "quarantine" and run.prepared.rows_rejected:
        _warn(f"{run.prepared.rows_rejected:,} rejected rows left out of the churn rate")
    if not args.quiet:
        print(format_churn_rate_summary(run, args.freq, elapsed))
        if output is not None:
            print(f"wrote {run.table.height:,} rows to {output}")
    return 0


def _add_funnel(commands: Any) -> None:
    p = commands.add_parser(
        "funnel",
        help="daily PV/UV, pay rate, repurchase rate and the pv -> fav/cart -> buy funnel",
        description=_FUNNEL_DESCRIPTION,
        epilog=_FUNNEL_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_funnel)
    p.add_argument("input", metavar="EVENTS", help="event log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", metavar="OUT",
        help=f"write the daily table here; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    p.add_argument(
        "--funnel-out", metavar="FILE",
        help="write the funnel table (one row per step) here",
    )  # fmt: skip
    columns = p.add_argument_group("columns")
    for option, field, what in (
        ("--user-col", "user_col", "user id column"),
        ("--behaviour-col", "behaviour_col", "behaviour column (pv, fav, cart, buy)"),
        ("--ts-col", "ts_col", "timestamp column"),
        ("--item-col", "item_col", "item column, counted when present"),
        ("--category-col", "category_col", "category column, counted when present"),
    ):
        flags = [option, "--behavior-col"] if field == "behaviour_col" else [option]
        columns.add_argument(
            *flags, dest=field, default=_FUNNEL_DEFAULTS[field], metavar="NAME",
            help=f"{what} (default: {_FUNNEL_DEFAULTS[field]})",
        )  # fmt: skip
    columns.add_argument(
        "--no-item-counts", action="store_true",
        help="do not count distinct items and categories (skips reading those columns)",
    )  # fmt: skip
    columns.add_argument(
        "--csv-columns", metavar="NAMES",
        help="the CSV file has no header row: these comma-separated names are its columns "
        "(the Taobao file: user_id,item_id,category_id,behavior_type,timestamp)",
    )  # fmt: skip
    columns.add_argument(
        "--tz", default=_FUNNEL_DEFAULTS["tz"], metavar="ZONE",
        help="time zone days are cut in; naive timestamps are taken to be in it "
        f"(default: {_FUNNEL_DEFAULTS['tz']}; the Taobao log: Asia/Shanghai)",
    )  # fmt: skip
    columns.add_argument(
        "--ts-unit", choices=TS_UNITS,
        help="unit of integer epoch timestamps (required for them; the Taobao log: s)",
    )  # fmt: skip
    period = p.add_argument_group("period")
    period.add_argument(
        "--start", type=_parse_date, metavar="DATE",
        help="first day counted, inclusive (default: the first day in the data)",
    )  # fmt: skip
    period.add_argument(
        "--end", type=_parse_date, metavar="DATE",
        help="last day counted, inclusive (default: the last day in the data)",
    )  # fmt: skip
    run = p.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"),
        help="stop at the first bad row, or set bad rows aside "
        "(default: raise; quarantine with --rejects)",
    )  # fmt: skip
    run.add_argument(
        "--rejects", metavar="FILE",
        help="write the rejected rows with their reason here (implies --on-error quarantine)",
    )  # fmt: skip
    run.add_argument(
        "--all-days", action="store_true",
        help="print every day (default: at most 31, the first and the last ones)",
    )  # fmt: skip
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _add_generate_events(commands: Any) -> None:
    p = commands.add_parser(
        "generate-events",
        help="write a synthetic user-behaviour event log",
        description=_GENERATE_EVENTS_DESCRIPTION,
        epilog=_GENERATE_EVENTS_EPILOG,
        formatter_class=_Formatter,
    )
    p.set_defaults(handler=_cmd_generate_events)
    p.add_argument("events", type=_positive_int, metavar="N", help="number of events (rows)")
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE",
        help=f"output file; format from the extension ({_EXTENSIONS})",
    )  # fmt: skip
    p.add_argument(
        "--users", type=_positive_int, metavar="U",
        help="number of users (default: N / 100)",
    )  # fmt: skip
    p.add_argument(
        "--days", type=_positive_int, default=9, metavar="D",
        help="length of the period in days, 1..366 (default: 9)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=_parse_date, default=DEFAULT_EVENTS_START, metavar="DATE",
        help=f"first day of the period (default: {DEFAULT_EVENTS_START})",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--taobao-columns", action="store_true",
        help="columns as the public Taobao log: user_id, item_id, category_id, "
        "behavior_type, timestamp (epoch seconds)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _cmd_funnel(args: argparse.Namespace) -> int:
    destinations = [d for d in (args.output, args.funnel_out) if d is not None]
    on_error = args.on_error
    if args.rejects is not None:
        if on_error == "raise":
            raise ConfigError("--rejects needs --on-error quarantine (it is implied when omitted)")
        on_error = "quarantine"
        destinations.append(args.rejects)
    for destination in destinations:
        format_for(destination)
        check_destination(destination)
    for index, a in enumerate(destinations):
        if any(_same_path(a, b) for b in destinations[index + 1 :]):
            raise ConfigError(f"two outputs name the same file: {a}")
    source = _check_input(args.input)
    if any(_same_path(source, d) for d in destinations):
        raise ConfigError("an output would overwrite EVENTS; choose another file")
    events: Any = source
    if args.csv_columns is not None:
        events = _headerless_csv(source, args.csv_columns)

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        result = _run_funnel(events, args, on_error or "raise", progress)
        if args.output is not None:
            progress("write")
            write_atomic(result.daily, args.output)
        if args.funnel_out is not None:
            write_atomic(result.funnel, args.funnel_out)
        if args.rejects is not None and result.rejects is not None:
            write_atomic(result.rejects, args.rejects)
    elapsed = time.perf_counter() - start

    if on_error == "quarantine" and args.rejects is None and result.stats.rows_rejected:
        _warn(f"{result.stats.rows_rejected:,} rejected rows not saved (use --rejects FILE)")
    if not args.quiet:
        print(result.format(max_days=None if args.all_days else 31))
        print(f"time {elapsed:.2f} s")
        if args.output is not None:
            print(f"wrote {result.daily.height:,} days to {args.output}")
        if args.funnel_out is not None:
            print(f"wrote the funnel to {args.funnel_out}")
        if args.rejects is not None and result.rejects is not None:
            print(f"wrote {result.rejects.height:,} rejected rows to {args.rejects}")
    return 0


def _run_funnel(
    events: Any, args: argparse.Namespace, on_error: str, progress: Progress
) -> FunnelResult:
    """funnel() with the options of the command line; errors name the options."""
    try:
        return funnel(
            events,
            user_col=args.user_col,
            item_col=None if args.no_item_counts else args.item_col,
            category_col=None if args.no_item_counts else args.category_col,
            behaviour_col=args.behaviour_col,
            ts_col=args.ts_col,
            tz=args.tz,
            ts_unit=args.ts_unit,
            start=args.start,
            end=args.end,
            on_error=on_error,  # type: ignore[arg-type]
            progress=progress,
        )
    except ConfigError as exc:
        message = _FUNNEL_OPTION_NAMES.sub(lambda m: "--" + m.group(0).replace("_", "-"), str(exc))
        raise ConfigError(message) from None


_FUNNEL_OPTION_NAMES = re.compile(
    r"\b(?:user_col|item_col|category_col|behaviour_col|ts_col|ts_unit|on_error)\b"
)


def _headerless_csv(path: str, names: str) -> pl.LazyFrame:
    columns = [name.strip() for name in names.split(",")]
    if any(not name for name in columns) or len(set(columns)) != len(columns):
        raise ConfigError(f"--csv-columns needs distinct, non-empty names, got {names!r}")
    if pathlib.Path(path).suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise ConfigError("--csv-columns is for CSV files (.csv, .tsv, .txt)")
    separator = "\t" if path.lower().endswith(".tsv") else ","
    return pl.scan_csv(path, has_header=False, new_columns=columns, separator=separator)


def _cmd_generate_events(args: argparse.Namespace) -> int:
    format_for(args.output)
    check_destination(args.output)
    with Progress(enabled=not args.quiet) as progress:
        progress("generate")
        events = generate_events(
            args.events,
            users=args.users,
            days=args.days,
            start=args.start,
            seed=args.seed,
            taobao_columns=args.taobao_columns,
        )
        progress("write")
        path = write_atomic(events, args.output)
    if not args.quiet:
        users = events.get_column("user_id").n_unique()
        print(f"wrote {events.height:,} events of {users:,} users to {path}")
    return 0


# -- helpers -----------------------------------------------------------------


def _config(**options: Any) -> ScoreConfig:
    """A ScoreConfig; its errors name the command-line options, not the fields."""
    try:
        return ScoreConfig(**options)
    except ConfigError as exc:
        message = _OPTION_NAMES.sub(lambda m: "--" + m.group(0).replace("_", "-"), str(exc))
        raise ConfigError(message) from None


# Multi-word ScoreConfig fields that have an option of the same name.
_OPTION_NAMES = re.compile(
    r"\b(?:at_risk_cycles|churn_cycles|horizon_days|prior_weight|prior_days|rfm_bins"
    r"|customer_col|ts_col|amount_col|category_col|ts_unit|on_error"
    r"|model_horizon_days|model_penalizer)\b"
    r"|^actions\b"
)


def _check_input(path: str, what: str = "input file") -> str:
    """The input path as a string; a missing file (not a glob pattern) is an error."""
    if not _GLOB_CHARS.intersection(path):
        if not os.path.exists(path):
            raise FileNotFoundError(2, f"{what} not found", path)
        if os.path.isdir(path):
            name = "INPUT" if what == "input file" else what
            raise ConfigError(f"{name} {path!r} is a folder; give a file")
    return path


def _read_cuts(path: str) -> RfmCuts:
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(2, "--cuts-in file not found", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--cuts-in {path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--cuts-in {path!r}: expected an object with recency/frequency/monetary")
    try:
        return RfmCuts.from_dict(data)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise ConfigError(f"--cuts-in {path!r}: {exc}") from None
        raise ConfigError(f"--cuts-in {path!r}: cut points must be lists of numbers") from None


def _same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _polars_message(exc: Exception) -> str:
    # Polars messages can carry a long query plan; the first paragraph says what failed.
    text = str(exc).strip()
    return text.split("\n\n", 1)[0] or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``churn-engine`` command; returns the exit code.

    0 success, 1 bad data (schema, values, unreadable input), 2 bad usage or
    options (including a missing input file), 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version and argparse usage errors
        return _exit_code(exc.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        _error(
            "choose a command: score, churn-rate, backtest, migration, report, funnel, "
            "products, generate, generate-events or demo"
        )
        return 2
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        _error(str(exc))
        return 2
    except FileNotFoundError as exc:
        what = exc.strerror or "file not found"
        _error(f"{what}: {exc.filename}" if exc.filename else str(exc))
        return 2
    except ChurnEngineError as exc:  # SchemaError, DataError, KernelError
        _error(str(exc))
        return 1
    except pl.exceptions.PolarsError as exc:  # e.g. an unreadable or corrupt input file
        _error(_polars_message(exc))
        return 1
    except OSError as exc:  # permissions, full disk, ...
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
