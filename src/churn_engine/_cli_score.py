"""``churn-engine score``, and the commands that make a log to score:
``generate`` (a synthetic log) and ``demo`` (generate, score, summarise)."""

from __future__ import annotations

import argparse
import functools
import pathlib
import tempfile
import time

from . import api
from ._cli_common import (
    DEFAULT_END,
    PROG,
    Progress,
    check_input,
    check_table_output,
    refuse_overwrite,
    same_path,
    warn,
    warn_unsaved_rejects,
    write_generated,
)
from ._cli_options import (
    EXTENSIONS,
    INPUT_HELP,
    Commands,
    add_actions_option,
    add_column_options,
    add_command,
    add_model_options,
    add_quiet_option,
    add_rule_options,
    add_run_options,
    parse_as_of,
    parse_date,
    positive_int,
    rejects_on_error,
    score_config,
)
from ._cli_summary import format_summary
from ._generate import generate_log
from ._writers import check_destination, write_atomic, write_json_atomic
from .config import ScoreConfig
from .errors import ConfigError
from .report import report

# -- score -------------------------------------------------------------------

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


def add_score_parser(commands: Commands) -> None:
    p = add_command(
        commands, "score", summary="score the customers of a transaction log",
        description=_SCORE_DESCRIPTION, epilog=_SCORE_EPILOG, handler=cmd_score,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT",
        help=f"scores file; format from the extension ({EXTENSIONS})",
    )  # fmt: skip
    p.add_argument(
        "--as-of", type=parse_as_of, metavar="DATE",
        help="score as of this ISO date or datetime (default: the last day in the data)",
    )  # fmt: skip
    add_actions_option(p, "(action, action_reason columns)")
    add_column_options(p)
    rules = add_rule_options(p)
    rules.add_argument("--cuts-out", metavar="JSON", help="save the RFM cut points used as JSON")
    add_model_options(p)
    add_run_options(p, rejects=True)


def cmd_score(args: argparse.Namespace) -> int:
    output = pathlib.Path(args.output)
    check_table_output(output)
    on_error = rejects_on_error(args)
    if args.rejects is not None:
        check_table_output(args.rejects)
        if same_path(args.rejects, output):
            raise ConfigError("--rejects and --output name the same file")
    if args.cuts_out is not None:
        check_destination(args.cuts_out)
    config = score_config(args, on_error or "raise")
    source = check_input(args.input)
    refuse_overwrite(source, [output])

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
        warn(f"no rejects table was produced; {args.rejects} not written")
    if args.cuts_out is not None and result.cuts is None:
        warn(f"no customer was scored, so there are no cut points; {args.cuts_out} not written")
    warn_unsaved_rejects(on_error, args.rejects, result.stats.rows_rejected)
    if not args.quiet:
        print(format_summary(result, elapsed))
        print(f"wrote {result.customers.height:,} rows to {output}")
        if args.rejects is not None and result.rejects is not None:
            print(f"wrote {result.rejects.height:,} rejected rows to {args.rejects}")
        if args.cuts_out is not None and result.cuts is not None:
            print(f"wrote RFM cut points to {args.cuts_out}")
    return 0


# -- generate ----------------------------------------------------------------

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


def add_generate_parser(commands: Commands) -> None:
    p = add_command(
        commands, "generate", summary="write a synthetic transaction log",
        description=_GENERATE_DESCRIPTION, epilog=_GENERATE_EPILOG, handler=cmd_generate,
    )  # fmt: skip
    p.add_argument(
        "--customers", type=positive_int, required=True, metavar="N",
        help="number of customers (about 5.4 rows each)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE",
        help=f"output file; format from the extension ({EXTENSIONS})",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--end", type=parse_date, default=DEFAULT_END, metavar="DATE",
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
        "--n-items", type=positive_int, default=2_000, metavar="N",
        help="number of items with --items (default: 2000)",
    )  # fmt: skip
    add_quiet_option(p)


def cmd_generate(args: argparse.Namespace) -> int:
    generate = functools.partial(
        generate_log,
        args.customers,
        seed=args.seed,
        end=args.end,
        years=args.years,
        string_ids=args.string_ids,
        categories=args.categories,
        items=args.items,
        n_items=args.n_items,
    )
    log, path = write_generated(args.output, generate, quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {log.height:,} rows for {args.customers:,} customers to {path}")
    return 0


# -- demo --------------------------------------------------------------------

_DEMO_DESCRIPTION = """\
Generate a sample transaction log, score it, print a summary and write the
HTML report. The files (transactions.parquet, scores.parquet and
report.html) are kept in a new temporary folder, or in --dir, so that you can
look at them.
"""

_DEMO_EPILOG = f"""\
examples:
  {PROG} demo
  {PROG} demo --customers 1000000 --dir ./demo
"""


def add_demo_parser(commands: Commands) -> None:
    p = add_command(
        commands, "demo", summary="generate a sample, score it and print a summary",
        description=_DEMO_DESCRIPTION, epilog=_DEMO_EPILOG, handler=cmd_demo,
    )  # fmt: skip
    p.add_argument(
        "--customers", type=positive_int, default=100_000, metavar="N",
        help="number of customers (default: 100000)",
    )  # fmt: skip
    p.add_argument(
        "--dir", metavar="DIR",
        help="folder for the files, created if needed (default: a new temporary folder)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_quiet_option(p, "no progress lines")


def cmd_demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        folder = pathlib.Path(args.dir)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--dir {args.dir!r} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="churn-engine-demo-"))
    log_path = folder / "transactions.parquet"
    scores_path = folder / "scores.parquet"
    report_path = folder / "report.html"

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
        report(str(log_path), report_path, as_of=DEFAULT_END,
               progress=lambda stage: progress(f"report: {stage}"))  # fmt: skip

    print(format_summary(result, elapsed))
    print()
    print(f"transactions: {log_path}  ({n_rows:,} rows, {args.customers:,} customers)")
    print(f"scores:       {scores_path}  ({result.customers.height:,} rows)")
    snippet = f"import polars as pl; print(pl.read_parquet({str(scores_path)!r}))"
    print(f'look at them: python -c "{snippet}"')
    print(f"report:       {report_path}  (open it in a browser)")
    print(f"next:         {PROG} backtest {log_path} --as-of 2025-06-30")
    return 0
