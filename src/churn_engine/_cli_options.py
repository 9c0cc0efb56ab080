"""The options several ``churn-engine`` subcommands share: how they are declared
(argument types, the column, rule, model, actions and run groups) and how
they become a :class:`ScoreConfig` whose errors name the options."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import pathlib
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from ._writers import FORMATS
from .config import TS_UNITS, RfmCuts, ScoreConfig
from .errors import ConfigError

#: The subcommands of the main parser (what ``add_subparsers`` returns).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: An argument group, or a parser itself.
Options: TypeAlias = "argparse._ActionsContainer"

SCORE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ScoreConfig)}
EXTENSIONS = ", ".join(FORMATS)
INPUT_HELP = "transaction log: .parquet, .csv or .arrow"
QUIET_HELP = "print nothing but errors"

#: The ScoreConfig fields of the column options, which have the same names.
COLUMN_FIELDS = ("customer_col", "ts_col", "amount_col", "category_col", "tz", "ts_unit")


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


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r} (e.g. 2026-06-30)") from None


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- declaring the options ---------------------------------------------------


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def add_command(
    commands: Commands,
    name: str,
    *,
    summary: str,
    description: str,
    epilog: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``; ``summary`` is its line in the main help."""
    parser = commands.add_parser(
        name, help=summary, description=description, epilog=epilog, formatter_class=Formatter
    )
    parser.set_defaults(handler=handler)
    return parser


def add_column_options(parser: argparse.ArgumentParser) -> None:
    """Input columns, time zone and epoch unit, as for 'score'."""
    add_log_columns(parser.add_argument_group("columns"))


def add_log_columns(
    columns: Options,
    *,
    category_help: str = "score per customer x category, with per-category priors (default: none)",
    tz_help: str = "time zone days are cut in; naive timestamps are taken to be in it",
) -> None:
    """The transaction log's columns, time zone and epoch unit (``COLUMN_FIELDS``)."""
    for option, field, what in (
        ("--customer-col", "customer_col", "customer id column"),
        ("--ts-col", "ts_col", "timestamp column"),
        ("--amount-col", "amount_col", "amount column (negative = refund)"),
    ):
        columns.add_argument(
            option, default=SCORE_DEFAULTS[field], metavar="NAME",
            help=f"{what} (default: {SCORE_DEFAULTS[field]})",
        )  # fmt: skip
    columns.add_argument("--category-col", metavar="NAME", help=category_help)
    columns.add_argument(
        "--tz", default=SCORE_DEFAULTS["tz"], metavar="ZONE",
        help=f"{tz_help} (default: {SCORE_DEFAULTS['tz']})",
    )  # fmt: skip
    columns.add_argument(
        "--ts-unit", choices=TS_UNITS,
        help="unit of integer epoch timestamps (required for them)",
    )  # fmt: skip


def add_rule_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The status and RFM rule options shared by score, migration and report."""
    rules = parser.add_argument_group("rules")
    add_cycle_rule_options(rules, "--horizon-days")
    rules.add_argument(
        "--rfm-bins", type=int, default=SCORE_DEFAULTS["rfm_bins"], metavar="N",
        help=f"RFM score levels, 2..9; segments need 5 (default: {SCORE_DEFAULTS['rfm_bins']})",
    )  # fmt: skip
    rules.add_argument(
        "--cuts-in", metavar="JSON",
        help="reuse RFM cut points saved by --cuts-out instead of computing them",
    )  # fmt: skip
    return rules


def add_cycle_rule_options(rules: Options, horizon_option: str) -> None:
    """The status rule options; the no-purchase horizon is ``horizon_option``
    (``--rule-horizon-days`` for backtest, where --horizon-days is the label window)."""
    rules.add_argument(
        "--at-risk-cycles", type=float, default=SCORE_DEFAULTS["at_risk_cycles"], metavar="X",
        help=f"at risk after X purchase cycles without a purchase "
        f"(default: {SCORE_DEFAULTS['at_risk_cycles']})",
    )  # fmt: skip
    rules.add_argument(
        "--churn-cycles", type=float, default=SCORE_DEFAULTS["churn_cycles"], metavar="X",
        help=f"churned after X cycles (default: {SCORE_DEFAULTS['churn_cycles']})",
    )  # fmt: skip
    rules.add_argument(
        horizon_option, type=int, default=SCORE_DEFAULTS["horizon_days"], metavar="DAYS",
        dest="rule_horizon_days",
        help=f"churned after DAYS without a purchase, whatever the cycle "
        f"(default: {SCORE_DEFAULTS['horizon_days']})",
    )  # fmt: skip
    rules.add_argument(
        "--prior-weight", type=float, default=SCORE_DEFAULTS["prior_weight"], metavar="W",
        help=f"weight of the prior cycle against a customer's own gaps "
        f"(default: {SCORE_DEFAULTS['prior_weight']})",
    )  # fmt: skip
    rules.add_argument(
        "--prior-days", type=float, metavar="DAYS",
        help="fixed prior cycle (default: median mean gap of the repeat buyers)",
    )  # fmt: skip


def add_actions_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--actions", nargs="?", const=True, default=False, metavar="TABLE",
        help=f"add the suggested action {what}; TABLE (.yaml, .yml or .json) replaces the "
        "default action table (put it after INPUT, or write --actions=TABLE)",
    )  # fmt: skip


def add_model_options(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model", choices=("bgnbd",),
        help="also fit the BG/NBD model and add p_alive and expected_purchases (needs SciPy: "
        'pip install "churn-engine[models]")',
    )  # fmt: skip
    model.add_argument(
        "--model-horizon-days", type=float, default=SCORE_DEFAULTS["model_horizon_days"],
        metavar="DAYS",
        help="days ahead for expected_purchases "
        f"(default: {SCORE_DEFAULTS['model_horizon_days']:g})",
    )  # fmt: skip
    model.add_argument(
        "--model-penalizer", type=float, default=SCORE_DEFAULTS["model_penalizer"], metavar="X",
        help="L2 penalty of the fit, e.g. 0.001 when it does not converge (default: 0)",
    )  # fmt: skip


def add_run_options(
    parser: argparse.ArgumentParser,
    *,
    rejects: bool = False,
    on_error_default: str | None = None,
    bad_rows: str = "set bad rows aside",
    threads: bool = True,
    quiet: str | None = QUIET_HELP,
) -> argparse._ArgumentGroup:
    """The "run" group: --on-error (``bad_rows`` says what quarantine does),
    with ``rejects`` --rejects FILE, --threads, and -q/--quiet unless ``quiet``
    is None (to add options before it)."""
    run = parser.add_argument_group("run")
    run.add_argument(
        "--on-error", choices=("raise", "quarantine"), default=on_error_default,
        help=f"stop at the first bad row, or {bad_rows} "
        + ("(default: raise; quarantine with --rejects)" if rejects else "(default: raise)"),
    )  # fmt: skip
    if rejects:
        run.add_argument(
            "--rejects", metavar="FILE",
            help="write the rejected rows with their reason here (implies --on-error quarantine)",
        )  # fmt: skip
    if threads:
        run.add_argument(
            "--threads", type=int, metavar="N", help="worker threads (default: all cores)"
        )
    if quiet is not None:
        add_quiet_option(run, quiet)
    return run


def add_quiet_option(options: Options, what: str = QUIET_HELP) -> None:
    options.add_argument("-q", "--quiet", action="store_true", help=what)


# -- from the options to a config --------------------------------------------


def rejects_on_error(args: argparse.Namespace) -> str | None:
    """--on-error, which --rejects FILE implies (and which must not be 'raise' with it)."""
    if args.rejects is None:
        return args.on_error
    if args.on_error == "raise":
        raise ConfigError("--rejects needs --on-error quarantine (it is implied when omitted)")
    return "quarantine"


def column_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ScoreConfig fields of the column options (``add_log_columns``)."""
    return {field: getattr(args, field) for field in COLUMN_FIELDS}


def cycle_rule_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ScoreConfig fields of the status rule options (``add_cycle_rule_options``)."""
    return {
        "at_risk_cycles": args.at_risk_cycles,
        "churn_cycles": args.churn_cycles,
        "horizon_days": args.rule_horizon_days,
        "prior_weight": args.prior_weight,
        "prior_days": args.prior_days,
    }


def score_config(args: argparse.Namespace, on_error: str) -> ScoreConfig:
    """The ScoreConfig of the column, rule and run options of score/migration/report."""
    cuts = _read_cuts(args.cuts_in) if args.cuts_in is not None else None
    return config_from_options(
        **column_config(args),
        **cycle_rule_config(args),
        rfm_bins=args.rfm_bins,
        cuts=cuts,
        actions=getattr(args, "actions", False),
        model=getattr(args, "model", None),
        model_horizon_days=getattr(
            args, "model_horizon_days", SCORE_DEFAULTS["model_horizon_days"]
        ),
        model_penalizer=getattr(args, "model_penalizer", SCORE_DEFAULTS["model_penalizer"]),
        on_error=on_error,
        threads=args.threads,
    )


def config_from_options(**options: Any) -> ScoreConfig:
    """A ScoreConfig; its errors name the command-line options, not the fields."""
    try:
        return ScoreConfig(**options)
    except ConfigError as exc:
        raise naming_options(exc, _SCORE_FIELDS) from None


# Multi-word ScoreConfig fields that have an option of the same name.
_SCORE_FIELDS = re.compile(
    r"\b(?:at_risk_cycles|churn_cycles|horizon_days|prior_weight|prior_days|rfm_bins"
    r"|customer_col|ts_col|amount_col|category_col|ts_unit|on_error"
    r"|model_horizon_days|model_penalizer)\b"
    r"|^actions\b"
)


def naming_options(exc: ConfigError, keywords: re.Pattern[str]) -> ConfigError:
    """``exc`` with the ``keywords`` it names written as the options they came
    from: ``churn_cycles`` as ``--churn-cycles``, ``allow_partial_horizon=True``
    as ``--allow-partial-horizon``."""
    return ConfigError(keywords.sub(_option_name, str(exc)))


def _option_name(match: re.Match[str]) -> str:
    name = match.group(0).removesuffix("=True")
    return "--" + name.replace("_", "-")


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
