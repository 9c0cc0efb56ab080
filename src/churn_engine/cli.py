"""The ``churn-engine`` command (also ``python -m churn_engine``).

Subcommands:

- ``score INPUT -o OUTPUT``: score a transaction log (Parquet, CSV or Arrow
  IPC) and write one row per customer;
- ``generate --customers N -o FILE``: write a synthetic transaction log;
- ``products INPUT``: sell-through rate and product classes of the items;
- ``demo``: generate a sample, score it and print a summary.

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
from ._generate import generate_log
from ._io import open_source
from ._stats import ScoreResult
from ._writers import FORMATS, check_destination, format_for, write_atomic, write_json_atomic
from .config import BUYER_TYPES, STATUSES, TS_UNITS, RfmCuts, ScoreConfig
from .errors import ChurnEngineError, ConfigError

__all__ = ["build_parser", "format_summary", "main"]

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
    (churned / scored customers), customers by buyer type and by segment
    (most common first); the time taken.

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

Rows after --as-of are not used. A date means the end of that day; a
datetime is taken as is. Bad rows stop the run with an error naming the
column and an example row, unless --on-error quarantine (implied by
--rejects) moves them to the rejects table. --cuts-out saves the RFM cut
points as JSON; --cuts-in reuses them so scores stay comparable across runs.
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

_DEMO_EPILOG = f"""\
examples:
  {PROG} demo
  {PROG} demo --customers 1000000 --dir ./demo
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
    rules = p.add_argument_group("rules")
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
        "--horizon-days", type=int, default=_DEFAULTS["horizon_days"], metavar="DAYS",
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
    rules.add_argument(
        "--rfm-bins", type=int, default=_DEFAULTS["rfm_bins"], metavar="N",
        help=f"RFM score levels, 2..9; segments need 5 (default: {_DEFAULTS['rfm_bins']})",
    )  # fmt: skip
    rules.add_argument(
        "--cuts-in", metavar="JSON",
        help="reuse RFM cut points saved by --cuts-out instead of computing them",
    )  # fmt: skip
    rules.add_argument("--cuts-out", metavar="JSON", help="save the RFM cut points used as JSON")
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
    run.add_argument("--threads", type=int, metavar="N", help="worker threads (default: all cores)")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

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
    return parser


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
    cuts = _read_cuts(args.cuts_in) if args.cuts_in is not None else None
    config = _config(
        customer_col=args.customer_col,
        ts_col=args.ts_col,
        amount_col=args.amount_col,
        category_col=args.category_col,
        tz=args.tz,
        ts_unit=args.ts_unit,
        at_risk_cycles=args.at_risk_cycles,
        churn_cycles=args.churn_cycles,
        horizon_days=args.horizon_days,
        prior_weight=args.prior_weight,
        prior_days=args.prior_days,
        rfm_bins=args.rfm_bins,
        cuts=cuts,
        on_error=on_error or "raise",
        threads=args.threads,
    )
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
    r"|customer_col|ts_col|amount_col|category_col|ts_unit|on_error)\b"
)


def _check_input(path: str) -> str:
    """The input path as a string; a missing file (not a glob pattern) is an error."""
    if not _GLOB_CHARS.intersection(path):
        if not os.path.exists(path):
            raise FileNotFoundError(2, "input file not found", path)
        if os.path.isdir(path):
            raise ConfigError(f"INPUT {path!r} is a folder; give a file")
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
        _error("choose a command: score, generate, products or demo")
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
