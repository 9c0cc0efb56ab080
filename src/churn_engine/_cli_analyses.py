"""The analyses of a transaction log over time: ``churn-engine migration``
(two dates), ``backtest`` (a past date against what came next) and
``churn-rate`` (every day of a window)."""

from __future__ import annotations

import argparse
import pathlib
import re
import time

from ._backtest import backtest, calibrate
from ._cli_common import PROG, Progress, check_input, check_table_output, refuse_overwrite, warn
from ._cli_options import (
    COLUMN_FIELDS,
    EXTENSIONS,
    INPUT_HELP,
    SCORE_DEFAULTS,
    Commands,
    add_actions_option,
    add_column_options,
    add_command,
    add_cycle_rule_options,
    add_log_columns,
    add_rule_options,
    add_run_options,
    column_config,
    config_from_options,
    cycle_rule_config,
    fraction,
    naming_options,
    parse_as_of,
    parse_date,
    positive_int,
    score_config,
)
from ._cli_summary import format_churn_rate_summary
from ._migration import migration
from ._rate import FREQS, run_churn_rate
from ._writers import check_destination, write_atomic, write_json_atomic
from .errors import ConfigError

# Runs that print the summary only leave bad rows out and count them.
_COUNT_BAD_ROWS = "leave bad rows out and count them"

# -- migration ---------------------------------------------------------------

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


def add_migration_parser(commands: Commands) -> None:
    p = add_command(
        commands, "migration",
        summary="who moved between statuses and segments from one date to another",
        description=_MIGRATION_DESCRIPTION, epilog=_MIGRATION_EPILOG, handler=cmd_migration,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
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
        help=f"write one row per customer here; format from the extension ({EXTENSIONS})",
    )  # fmt: skip
    add_actions_option(p, "at --to to each customer of OUTPUT")
    add_column_options(p)
    add_rule_options(p)
    add_run_options(p)


def cmd_migration(args: argparse.Namespace) -> int:
    output = _table_output(args.output)
    config = score_config(args, args.on_error or "raise")
    source = check_input(args.input)
    refuse_overwrite(source, [output])

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
        warn(f"{rejected:,} rejected rows were not used")
    if not args.quiet:
        print(moves)
        print(f"{'time':<28}{f'{elapsed:.2f} s':>12}")
        if output is not None:
            print(f"wrote {moves.customers.height:,} rows to {output}")
    return 0


# -- backtest ----------------------------------------------------------------

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

# Backtest keywords named in its errors -> the command-line options.
_BACKTEST_NAMES = re.compile(r"\b(?:allow_partial_horizon=True|horizon_days|as_of)\b")


def add_backtest_parser(commands: Commands) -> None:
    p = add_command(
        commands, "backtest",
        summary="check the status against who came back; suggest cycle thresholds",
        description=_BACKTEST_DESCRIPTION, epilog=_BACKTEST_EPILOG, handler=cmd_backtest,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument(
        "--as-of", type=parse_as_of, required=True, metavar="DATE",
        help="score with the rows up to this ISO date (end of day) or datetime",
    )  # fmt: skip
    p.add_argument(
        "--horizon-days", type=positive_int, default=365, metavar="N",
        help="label window: came back = a purchase in the N days after the as_of day "
        "(default: 365)",
    )  # fmt: skip
    p.add_argument(
        "--allow-partial-horizon", action="store_true",
        help="accept a window that runs past the end of the data (returns after it are missed)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", metavar="FILE",
        help=f"write the report (.json) or the labelled customers ({EXTENSIONS})",
    )  # fmt: skip
    calibration = p.add_argument_group("calibration")
    calibration.add_argument(
        "--target-precision", type=fraction, default=0.9, metavar="P",
        help="suggest the smallest churn_cycles whose repeat buyers did not come back "
        "with at least this precision (default: 0.9)",
    )  # fmt: skip
    calibration.add_argument(
        "--at-risk-precision", type=fraction, default=0.75, metavar="P",
        help="the same for at_risk_cycles (default: 0.75)",
    )  # fmt: skip
    calibration.add_argument(
        "--min-customers", type=positive_int, default=100, metavar="N",
        help="a threshold must flag at least N repeat buyers (default: 100)",
    )  # fmt: skip
    add_column_options(p)
    rules = p.add_argument_group("rules (the status being tested)")
    add_cycle_rule_options(rules, "--rule-horizon-days")
    add_run_options(p, on_error_default="raise", bad_rows=_COUNT_BAD_ROWS)


def cmd_backtest(args: argparse.Namespace) -> int:
    output = pathlib.Path(args.output) if args.output is not None else None
    if output is not None:
        if output.suffix.lower() != ".json":
            check_table_output(output)
        else:
            check_destination(output)
    if args.at_risk_precision > args.target_precision:
        raise ConfigError(
            f"--at-risk-precision ({args.at_risk_precision}) must not exceed "
            f"--target-precision ({args.target_precision})"
        )
    try:
        config = config_from_options(
            **column_config(args),
            **cycle_rule_config(args),
            on_error=args.on_error,
            threads=args.threads,
        )
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--horizon-days", "--rule-horizon-days")) from None
    source = check_input(args.input)
    refuse_overwrite(source, [output])

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        try:
            result = backtest(
                source, as_of=args.as_of, horizon_days=args.horizon_days,
                allow_partial_horizon=args.allow_partial_horizon, config=config,
                progress=progress,
            )  # fmt: skip
        except ConfigError as exc:
            raise naming_options(exc, _BACKTEST_NAMES) from None
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
        warn(f"{result.stats.rows_rejected:,} rejected rows left out")
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


# -- churn-rate --------------------------------------------------------------

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


def add_churn_rate_parser(commands: Commands) -> None:
    p = add_command(
        commands, "churn-rate", summary="the churn rate on every day (week, month) of a window",
        description=_CHURN_RATE_DESCRIPTION, epilog=_CHURN_RATE_EPILOG, handler=cmd_churn_rate,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help=f"write the table here; format from the extension ({EXTENSIONS}) "
        "(default: print the summary only)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=parse_date, metavar="DATE",
        help="first day (default: the first day of the data + the horizon)",
    )  # fmt: skip
    p.add_argument(
        "--end", type=parse_date, metavar="DATE",
        help="last day; later rows are not used (default: the last day of the data)",
    )  # fmt: skip
    p.add_argument(
        "--horizon-days", type=int, default=SCORE_DEFAULTS["horizon_days"], metavar="DAYS",
        help=f"churned after DAYS without a purchase (default: {SCORE_DEFAULTS['horizon_days']})",
    )  # fmt: skip
    p.add_argument(
        "--freq", choices=FREQS, default="D",
        help="one row per day, week (Monday..Sunday) or month; a week or month row holds "
        "the rate on its last day and the flows summed over it (default: D)",
    )  # fmt: skip
    add_log_columns(
        p.add_argument_group("columns"),
        category_help="one curve per category (a customer counts in each category bought in)",
        tz_help="time zone days are cut in",
    )
    add_run_options(p, on_error_default="raise", bad_rows=_COUNT_BAD_ROWS)


def cmd_churn_rate(args: argparse.Namespace) -> int:
    output = _table_output(args.output)
    config = config_from_options(
        **column_config(args),
        horizon_days=args.horizon_days,
        on_error=args.on_error,
        threads=args.threads,
    )
    if args.start is not None and args.end is not None and args.start > args.end:
        raise ConfigError(f"--start ({args.start}) is after --end ({args.end})")
    source = check_input(args.input)
    refuse_overwrite(source, [output])

    start = time.perf_counter()
    with Progress(enabled=not args.quiet) as progress:
        options = {f: getattr(config, f) for f in (*COLUMN_FIELDS, "on_error", "threads")}
        run = run_churn_rate(
            source, start=args.start, end=args.end, horizon_days=config.horizon_days,
            freq=args.freq, progress=progress, **options,
        )  # fmt: skip
        if output is not None:
            progress("write")
            write_atomic(run.table, output)
    elapsed = time.perf_counter() - start
    if args.on_error == "quarantine" and run.prepared.rows_rejected:
        warn(f"{run.prepared.rows_rejected:,} rejected rows left out of the churn rate")
    if not args.quiet:
        print(format_churn_rate_summary(run, args.freq, elapsed))
        if output is not None:
            print(f"wrote {run.table.height:,} rows to {output}")
    return 0


def _table_output(path: str | None) -> pathlib.Path | None:
    """-o OUTPUT as a path, checked (see check_table_output); None without -o."""
    if path is None:
        return None
    output = pathlib.Path(path)
    check_table_output(output)
    return output
