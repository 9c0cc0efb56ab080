"""``churn-engine report``: score a log and write a self-contained HTML report."""

from __future__ import annotations

import argparse
import time

from ._cli_common import PROG, Progress, check_input, refuse_overwrite
from ._cli_options import (
    INPUT_HELP,
    Commands,
    add_column_options,
    add_command,
    add_rule_options,
    add_run_options,
    parse_as_of,
    score_config,
)
from .report import DEFAULT_TITLE, check_html_destination, report

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


def add_report_parser(commands: Commands) -> None:
    p = add_command(
        commands, "report",
        summary="write an HTML report with charts (self-contained, opens offline)",
        description=_REPORT_DESCRIPTION, epilog=_REPORT_EPILOG, handler=cmd_report,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
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
    add_column_options(p)
    add_rule_options(p)
    add_run_options(p)


def cmd_report(args: argparse.Namespace) -> int:
    output = check_html_destination(args.output)
    config = score_config(args, args.on_error or "raise")
    source = check_input(args.input)
    refuse_overwrite(source, [output])
    events = None
    if args.events is not None:
        events = check_input(args.events, what="--events file")
        refuse_overwrite(
            events, [output], "--output would overwrite the --events file; choose another file"
        )

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        path = report(source, output, as_of=args.as_of, events=events, title=args.title,
                      progress=progress, config=config)  # fmt: skip
    elapsed = time.perf_counter() - start
    if not args.quiet:
        size = path.stat().st_size
        print(f"wrote the report to {path} ({size / 1024:,.0f} KiB) in {elapsed:.1f} s")
    return 0
