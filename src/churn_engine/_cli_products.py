"""``churn-engine products``: sell-through rate and product classes of the
items of a log, and the classes the churned customers bought."""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from typing import Any

from . import products
from ._cli_common import (
    PROG,
    Progress,
    check_input,
    check_table_output,
    refuse_overwrite,
    same_path,
    warn,
)
from ._cli_options import (
    EXTENSIONS,
    INPUT_HELP,
    SCORE_DEFAULTS,
    Commands,
    add_command,
    add_log_columns,
    add_run_options,
    column_config,
    config_from_options,
    naming_options,
    parse_as_of,
)
from ._io import open_source
from ._writers import write_atomic
from .errors import ConfigError

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

_RULE_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(products.ProductRules)
}

# ProductRules fields named in its errors -> the command-line options.
_RULE_NAMES = re.compile(
    r"\b(?:volume_high_quantile|volume_low_quantile|margin_high_quantile|margin_low_quantile"
    r"|repeat_share_quantile|sell_through_days|rising_recent_days|rising_baseline_days"
    r"|rising_ratio|rising_min_orders|lookback_days)\b"
)


def add_products_parser(commands: Commands) -> None:
    p = add_command(
        commands, "products", summary="sell-through rate and product classes of the items",
        description=_PRODUCTS_DESCRIPTION, epilog=_PRODUCTS_EPILOG, handler=cmd_products,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    p.add_argument(
        "-o", "--output", metavar="OUTPUT",
        help=f"write the item table here; format from the extension ({EXTENSIONS})",
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
    add_log_columns(
        columns,
        category_help="score per customer x category (statuses and buyer types per category)",
        tz_help="time zone days are cut in",
    )
    _add_product_rule_options(p)
    status = p.add_argument_group("status rules (as for 'score')")
    for option, field, metavar, kind in (
        ("--at-risk-cycles", "at_risk_cycles", "X", float),
        ("--churn-cycles", "churn_cycles", "X", float),
        ("--horizon-days", "horizon_days", "DAYS", int),
    ):
        status.add_argument(
            option, type=kind, default=SCORE_DEFAULTS[field], metavar=metavar,
            help=f"(default: {SCORE_DEFAULTS[field]})",
        )  # fmt: skip
    add_run_options(p, on_error_default="raise", quiet="no progress lines")


def _add_product_rule_options(p: argparse.ArgumentParser) -> None:
    rules = p.add_argument_group("product rules (quantiles are over the items sold)")
    rules.add_argument(
        "--volume", choices=("units", "orders"), default=_RULE_DEFAULTS["volume"],
        help=f"volume measure (default: {_RULE_DEFAULTS['volume']})",
    )  # fmt: skip
    for name, kind, metavar, what in (
        ("volume_high_quantile", float, "Q", "high volume: at least this quantile"),
        ("volume_low_quantile", float, "Q", "low volume: at most this quantile"),
        ("margin_high_quantile", float, "Q", "high margin: at least this quantile"),
        ("margin_low_quantile", float, "Q", "low margin: at most this quantile"),
        ("repeat_share_quantile", float, "Q", "profit: repeat-buyer share at least this quantile"),
        ("sell_through_days", int, "DAYS", "sell-through: sold in the last DAYS"),
        ("rising_recent_days", int, "DAYS", "rising: the recent window"),
        ("rising_baseline_days", int, "DAYS", "rising: the baseline window before it"),
    ):
        rules.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=_RULE_DEFAULTS[name],
            metavar=metavar, help=f"{what} (default: {_RULE_DEFAULTS[name]})",
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


def cmd_products(args: argparse.Namespace) -> int:
    outputs = [path for path in (args.output, args.mix_out) if path is not None]
    for path in outputs:
        check_table_output(path)
    if len(outputs) == 2 and same_path(*outputs):
        raise ConfigError("--output and --mix-out name the same file")
    try:
        rules = products.ProductRules(
            volume=args.volume,
            **{name: getattr(args, name) for name in _RULE_DEFAULTS
               if name not in ("volume", "thresholds")},
        )  # fmt: skip
    except ConfigError as exc:
        raise naming_options(exc, _RULE_NAMES) from None
    options = dict(
        **column_config(args),
        at_risk_cycles=args.at_risk_cycles,
        churn_cycles=args.churn_cycles,
        horizon_days=args.horizon_days,
        on_error=args.on_error,
        threads=args.threads,
    )
    config_from_options(**options)  # option errors name the command-line options
    source = check_input(args.input)
    refuse_overwrite(source, outputs, "an output would overwrite INPUT; choose another file")
    catalog = None
    if args.catalog is not None:
        catalog = open_source(check_input(args.catalog)).collect()

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
        warn(f"{sum(result.rejected_by_reason.values()):,} rows were set aside")
    print(result)
    if not args.quiet:
        print(f"time {elapsed:.2f} s")
        if args.output is not None:
            print(f"wrote {result.items.height:,} items to {args.output}")
        if args.mix_out is not None:
            print(f"wrote the status x class table to {args.mix_out}")
    return 0
