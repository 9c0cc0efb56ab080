"""The user-behaviour event log commands: ``churn-engine funnel`` (daily
PV/UV, pay and repurchase rates, the pv -> fav/cart -> buy funnel) and
``generate-events`` (a synthetic event log)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import pathlib
import re
import time
from typing import Any

import polars as pl

from ._cli_common import (
    PROG,
    Progress,
    check_input,
    check_table_output,
    refuse_overwrite,
    same_path,
    warn_unsaved_rejects,
    write_generated,
)
from ._cli_options import (
    EXTENSIONS,
    Commands,
    add_command,
    add_quiet_option,
    add_run_options,
    naming_options,
    parse_date,
    positive_int,
    rejects_on_error,
)
from ._generate_events import generate_events
from ._prepare_events import FunnelOptions
from ._writers import write_atomic
from .config import TS_UNITS
from .errors import ConfigError
from .funnel import FunnelResult, funnel

DEFAULT_EVENTS_START = dt.date(2017, 11, 25)

# -- funnel ------------------------------------------------------------------

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

_FUNNEL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(FunnelOptions)}

# funnel() keywords named in its errors -> the command-line options.
_FUNNEL_OPTION_NAMES = re.compile(
    r"\b(?:user_col|item_col|category_col|behaviour_col|ts_col|ts_unit|on_error)\b"
)


def add_funnel_parser(commands: Commands) -> None:
    p = add_command(
        commands, "funnel",
        summary="daily PV/UV, pay rate, repurchase rate and the pv -> fav/cart -> buy funnel",
        description=_FUNNEL_DESCRIPTION, epilog=_FUNNEL_EPILOG, handler=cmd_funnel,
    )  # fmt: skip
    p.add_argument("input", metavar="EVENTS", help="event log: .parquet, .csv or .arrow")
    p.add_argument(
        "-o", "--output", metavar="OUT",
        help=f"write the daily table here; format from the extension ({EXTENSIONS})",
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
        "--start", type=parse_date, metavar="DATE",
        help="first day counted, inclusive (default: the first day in the data)",
    )  # fmt: skip
    period.add_argument(
        "--end", type=parse_date, metavar="DATE",
        help="last day counted, inclusive (default: the last day in the data)",
    )  # fmt: skip
    run = add_run_options(p, rejects=True, threads=False, quiet=None)
    run.add_argument(
        "--all-days", action="store_true",
        help="print every day (default: at most 31, the first and the last ones)",
    )  # fmt: skip
    add_quiet_option(run)


def cmd_funnel(args: argparse.Namespace) -> int:
    destinations = [d for d in (args.output, args.funnel_out) if d is not None]
    on_error = rejects_on_error(args)
    if args.rejects is not None:
        destinations.append(args.rejects)
    for destination in destinations:
        check_table_output(destination)
    for index, a in enumerate(destinations):
        if any(same_path(a, b) for b in destinations[index + 1 :]):
            raise ConfigError(f"two outputs name the same file: {a}")
    source = check_input(args.input)
    refuse_overwrite(source, destinations, "an output would overwrite EVENTS; choose another file")
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

    warn_unsaved_rejects(on_error, args.rejects, result.stats.rows_rejected)
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
        raise naming_options(exc, _FUNNEL_OPTION_NAMES) from None


def _headerless_csv(path: str, names: str) -> pl.LazyFrame:
    columns = [name.strip() for name in names.split(",")]
    if any(not name for name in columns) or len(set(columns)) != len(columns):
        raise ConfigError(f"--csv-columns needs distinct, non-empty names, got {names!r}")
    if pathlib.Path(path).suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise ConfigError("--csv-columns is for CSV files (.csv, .tsv, .txt)")
    separator = "\t" if path.lower().endswith(".tsv") else ","
    return pl.scan_csv(path, has_header=False, new_columns=columns, separator=separator)


# -- generate-events ---------------------------------------------------------

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


def add_generate_events_parser(commands: Commands) -> None:
    p = add_command(
        commands, "generate-events", summary="write a synthetic user-behaviour event log",
        description=_GENERATE_EVENTS_DESCRIPTION, epilog=_GENERATE_EVENTS_EPILOG,
        handler=cmd_generate_events,
    )  # fmt: skip
    p.add_argument("events", type=positive_int, metavar="N", help="number of events (rows)")
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE",
        help=f"output file; format from the extension ({EXTENSIONS})",
    )  # fmt: skip
    p.add_argument(
        "--users", type=positive_int, metavar="U",
        help="number of users (default: N / 100)",
    )  # fmt: skip
    p.add_argument(
        "--days", type=positive_int, default=9, metavar="D",
        help="length of the period in days, 1..366 (default: 9)",
    )  # fmt: skip
    p.add_argument(
        "--start", type=parse_date, default=DEFAULT_EVENTS_START, metavar="DATE",
        help=f"first day of the period (default: {DEFAULT_EVENTS_START})",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--taobao-columns", action="store_true",
        help="columns as the public Taobao log: user_id, item_id, category_id, "
        "behavior_type, timestamp (epoch seconds)",
    )  # fmt: skip
    add_quiet_option(p)


def cmd_generate_events(args: argparse.Namespace) -> int:
    generate = functools.partial(
        generate_events,
        args.events,
        users=args.users,
        days=args.days,
        start=args.start,
        seed=args.seed,
        taobao_columns=args.taobao_columns,
    )
    events, path = write_generated(args.output, generate, quiet=args.quiet)
    if not args.quiet:
        users = events.get_column("user_id").n_unique()
        print(f"wrote {events.height:,} events of {users:,} users to {path}")
    return 0
