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

This module is the entry point (``main``, ``build_parser``, the exit codes);
each command is in a private module with its ``add_..._parser`` and handler:
``_cli_score`` (score, generate, demo), ``_cli_analyses`` (migration,
backtest, churn-rate), ``_cli_report``, ``_cli_products`` and ``_cli_funnel``
(funnel, generate-events). What they share: ``_cli_options`` (argument types,
option groups, options to ScoreConfig), ``_cli_common`` (file checks,
messages), ``_cli_progress`` and ``_cli_summary``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import polars as pl

from . import __version__
from ._cli_analyses import add_backtest_parser, add_churn_rate_parser, add_migration_parser
from ._cli_common import DEFAULT_END as DEFAULT_END
from ._cli_common import PROG, error
from ._cli_common import Progress as Progress
from ._cli_funnel import DEFAULT_EVENTS_START as DEFAULT_EVENTS_START
from ._cli_funnel import add_funnel_parser, add_generate_events_parser
from ._cli_options import Formatter
from ._cli_options import parse_as_of as parse_as_of
from ._cli_products import add_products_parser
from ._cli_report import add_report_parser
from ._cli_score import add_demo_parser, add_generate_parser, add_score_parser
from ._cli_summary import format_churn_rate_summary, format_summary
from .errors import ChurnEngineError, ConfigError

__all__ = ["build_parser", "format_churn_rate_summary", "format_summary", "main"]

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

# In the order of the commands list of --help.
_ADD_COMMANDS = (
    add_score_parser,
    add_migration_parser,
    add_report_parser,
    add_generate_parser,
    add_products_parser,
    add_demo_parser,
    add_backtest_parser,
    add_churn_rate_parser,
    add_funnel_parser,
    add_generate_events_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``churn-engine`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Batch customer-churn scoring: purchase cycles, churn status, RFM segments.",
        epilog=_MAIN_EPILOG,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add_command in _ADD_COMMANDS:
        add_command(commands)
    return parser


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
        error(
            "choose a command: score, churn-rate, backtest, migration, report, funnel, "
            "products, generate, generate-events or demo"
        )
        return 2
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        error(str(exc))
        return 2
    except FileNotFoundError as exc:
        what = exc.strerror or "file not found"
        error(f"{what}: {exc.filename}" if exc.filename else str(exc))
        return 2
    except ChurnEngineError as exc:  # SchemaError, DataError, KernelError
        error(str(exc))
        return 1
    except pl.exceptions.PolarsError as exc:  # e.g. an unreadable or corrupt input file
        error(_polars_message(exc))
        return 1
    except OSError as exc:  # permissions, full disk, ...
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
