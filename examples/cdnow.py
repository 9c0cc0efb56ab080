"""A worked example on real data: the CDNOW log (docs/cdnow.md).

CDNOW is the online CD shop of Fader, Hardie and Lee's BG/NBD paper: 23,570
customers who made their first purchase in the first quarter of 1997, followed
to 1998-06-30 (69,659 rows). The log ships with lifetimes. This script

1. writes it as ``cdnow.parquet`` (customer_id, ts, amount) into ``--out`` so
   the ``churn-engine`` commands of docs/cdnow.md can read it;
2. scores it as of 1998-06-30 (status mix, reasons, buyer types);
3. backtests the cycle rule at 1997-09-30 (273 days to the end of the data)
   and at 1997-12-31 (181 days), with calibrate's suggestions;
4. puts the cycle rule next to BG/NBD's ``p_alive`` as of 1998-06-30;
5. compares the two as predictions of "no return" on the backtests;
6. fits BG/NBD with churn-engine and with lifetimes on the same summaries.

Run: ``python examples/cdnow.py [--out DIR]`` (needs lifetimes and SciPy:
``pip install ".[test]"``). Everything on stdout is deterministic; docs/cdnow.md
quotes it and tests/test_cdnow_example.py checks that the quotes are current.
Only churn-engine's public API is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

import churn_engine
from churn_engine.models import BetaGeo

END = "1998-06-30"  # the last day of the CDNOW log
BACKTESTS = (("1997-09-30", 273), ("1997-12-31", 181))  # each window ends on END
BANDS = (("<0.3", 0.0, 0.3), ("0.3–0.7", 0.3, 0.7), ("≥0.7", 0.7, 2.0))
# the backtest's cycles buckets (docs/backtest.md), half-open [lo, hi)
BUCKETS = (
    ("0–0.5", 0.0, 0.5),
    ("0.5–1", 0.5, 1.0),
    ("1–1.5", 1.0, 1.5),
    ("1.5–2", 1.5, 2.0),
    ("2–3", 2.0, 3.0),
    ("≥3", 3.0, float("inf")),
)
STATUSES = ("active", "at_risk", "churned")


# -- loading -----------------------------------------------------------------


def load_cdnow() -> pl.DataFrame:
    """CDNOW_master.txt from lifetimes' package data as (customer_id, ts, amount)."""
    from lifetimes.datasets import load_dataset

    raw = load_dataset("CDNOW_master.txt", sep=r"\s+")
    return pl.from_pandas(raw).select(
        pl.col("customer_id").cast(pl.Int64),
        pl.col("date").cast(pl.String).str.to_date("%Y%m%d").alias("ts"),
        pl.col("dollar_value").cast(pl.Float64).alias("amount"),
    )


# -- formatting ---------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def count(value: int) -> str:
    return f"{value:,}"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: Sequence[Sequence[str]], header: Sequence[str], indent: str = "  ") -> str:
    """Text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return (indent + "  ".join([first, *rest])).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def section(title: str) -> None:
    print(f"\n== {title} ==\n")


# -- helpers -------------------------------------------------------------------


def band_of(column: str) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.String)
    for label, low, _ in BANDS:  # the highest bound ends up tested first
        expr = pl.when(pl.col(column) >= low).then(pl.lit(label)).otherwise(expr)
    return expr


def bucket_of(column: str) -> pl.Expr:
    expr = pl.lit("no cycle")
    for label, low, _ in BUCKETS:
        expr = pl.when(pl.col(column) >= low).then(pl.lit(label)).otherwise(expr)
    return expr


def confusion(flagged: pl.Series, gone: pl.Series) -> dict[str, Any]:
    """``flagged`` as a prediction of ``gone`` (did not come back)."""
    tp = int((flagged & gone).sum())
    fp = int((flagged & ~gone).sum())
    fn = int((~flagged & gone).sum())
    tn = int((~flagged & ~gone).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "p": precision, "r": recall, "f1": f1}


def auc(score: pl.Series, positive: pl.Series) -> float:
    """P(a random positive scores above a random negative), ties counted half."""
    ranks = score.rank("average").to_numpy()
    pos = positive.to_numpy()
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def window_purchases(log: pl.DataFrame, as_of: dt.date, end: dt.date) -> pl.DataFrame:
    """Purchase occasions (days with a non-refund row) per customer in (as_of, end]."""
    return (
        log.filter(pl.col("ts") > as_of, pl.col("ts") <= end, pl.col("amount") >= 0)
        .group_by("customer_id")
        .agg(pl.col("ts").n_unique().alias("purchases_in_window"))
    )


def fit_lifetimes(summary: pl.DataFrame) -> dict[str, float]:
    """lifetimes' BetaGeoFitter on the same summary (a test-only dependency)."""
    from lifetimes import BetaGeoFitter

    frame = summary.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])
    return {name: float(fitter.params_[name]) for name in ("r", "alpha", "a", "b")}


# -- the six steps ---------------------------------------------------------------


def cycle_facts(scores: pl.DataFrame) -> str:
    """The shop's prior cycle, how regular the gaps are, where the one-time buyers stand."""
    prior = scores.filter(pl.col("n_orders") > 1).select(pl.col("interval_mean_days").median())
    # std / mean of a customer's gaps: 0 for a fixed rhythm, 1 for memoryless (Poisson) gaps
    cv = scores.filter(pl.col("n_orders") >= 3).select(
        (pl.col("interval_std_days") / pl.col("interval_mean_days")).median()
    )
    one = (
        scores.filter(pl.col("n_orders") == 1)
        .select(
            pl.col("recency_days", "cycles_since_last").min().name.suffix("_lo"),
            pl.col("recency_days", "cycles_since_last").max().name.suffix("_hi"),
        )
        .row(0, named=True)
    )
    return (
        f"shop prior cycle (median mean gap of the repeat buyers) {prior.item():g} days; median "
        f"std/mean of the gaps (3+ orders) {cv.item():.2f}; one-time buyers last bought "
        f"{one['recency_days_lo']}..{one['recency_days_hi']} days ago "
        f"({one['cycles_since_last_lo']:.1f}..{one['cycles_since_last_hi']:.1f} prior cycles)"
    )


def describe_log(log: pl.DataFrame) -> None:
    facts = log.select(
        customers=pl.col("customer_id").n_unique(),
        start=pl.col("ts").min(),
        end=pl.col("ts").max(),
        first_lo=pl.col("ts").min().over("customer_id").min(),
        first_hi=pl.col("ts").min().over("customer_id").max(),
        zero=(pl.col("amount") == 0).sum(),
        refunds=(pl.col("amount") < 0).sum(),
    ).row(0, named=True)
    print(
        f"CDNOW master log: {log.height:,} rows, {facts['customers']:,} customers, "
        f"{facts['start']} .. {facts['end']}; first purchases {facts['first_lo']} .. "
        f"{facts['first_hi']}; {facts['zero']} rows with amount 0 (a purchase of $0 is a "
        f"purchase), {facts['refunds']} refunds"
    )


def step_scores(log: pl.DataFrame) -> None:
    section(f"1. Scores as of {END}: score(log, as_of='{END}')")
    scores = churn_engine.score(log, as_of=END)
    n = scores.height
    counts = scores.group_by("status", "status_reason").len()
    rows = []
    for row in counts.sort("status", "status_reason").iter_rows(named=True):
        rows.append([row["status"], row["status_reason"], count(row["len"]), pct(row["len"] / n)])
    print("status and reason")
    print(table(rows, ["status", "status_reason", "customers", "share"]))
    print("\nbuyer type x status")
    rows = []
    for buyer in ("one_time", "repeat"):
        part = scores.filter(pl.col("buyer_type") == buyer)
        cells = [count(int((part["status"] == s).sum())) for s in STATUSES]
        rows.append([buyer, *cells, count(part.height), pct(part.height / n)])
    rows.append(
        ["all", *(count(int((scores["status"] == s).sum())) for s in STATUSES), count(n), "100.0 %"]
    )
    print(table(rows, ["buyer_type", *STATUSES, "customers", "share"]))
    print()
    print(cycle_facts(scores))


def step_backtests(log: pl.DataFrame) -> dict[str, churn_engine.BacktestResult]:
    results = {}
    for number, (as_of, horizon) in enumerate(BACKTESTS, start=2):
        section(
            f"{number}. Backtest: churn-engine backtest cdnow.parquet --as-of {as_of} "
            f"--horizon-days {horizon}"
        )
        result = churn_engine.backtest(log, as_of=as_of, horizon_days=horizon)
        print(result)
        print()
        print(churn_engine.calibrate(result))
        print()
        print(cycle_facts(result.customers))
        results[as_of] = result
    return results


def step_agreement(log: pl.DataFrame) -> None:
    section(f"4. Cycle rule and BG/NBD p_alive as of {END}: score(..., model='bgnbd')")
    scores = churn_engine.score(log, as_of=END, model="bgnbd").with_columns(
        band_of("p_alive").alias("band")
    )
    groups = ["buyer_type", "status", "status_reason"]
    stats = scores.group_by(groups).agg(
        pl.len().alias("n"),
        pl.col("p_alive").mean().alias("mean"),
        pl.col("p_alive").median().alias("median"),
        pl.col("p_alive").min().alias("min"),
        pl.col("p_alive").max().alias("max"),
        *(
            (pl.col("band") == label).sum().alias(label)
            for label, _, _ in BANDS  # the cross table status x p_alive band
        ),
    )
    stats = stats.sort(groups)
    print("p_alive per buyer type, status and reason, and the customers per p_alive band")
    rows = [
        [
            f"{r['buyer_type']} {r['status']} {r['status_reason']}",
            count(r["n"]),
            num(r["mean"]),
            num(r["median"]),
            num(r["min"]),
            num(r["max"]),
            *(count(r[label]) for label, _, _ in BANDS),
        ]
        for r in stats.iter_rows(named=True)
    ]
    totals = [count(int((scores["band"] == label).sum())) for label, _, _ in BANDS]
    rows.append(["all", count(scores.height), "", "", "", "", *totals])
    print(
        table(
            rows,
            ["buyer type, status, reason", "customers", "mean", "median", "min", "max"]
            + [f"p {label}" for label, _, _ in BANDS],
        )
    )
    repeat = scores.filter(pl.col("buyer_type") == "repeat")
    rho = repeat.select(pl.corr("cycles_since_last", "p_alive", method="spearman")).item()
    print(f"\nrepeat buyers: Spearman correlation of cycles_since_last and p_alive {rho:.3f}")
    churned = repeat["status"] == "churned"
    dead = repeat["p_alive"] < 0.5
    rows = [
        ["churned", count(int((churned & dead).sum())), count(int((churned & ~dead).sum()))],
        ["not churned", count(int((~churned & dead).sum())), count(int((~churned & ~dead).sum()))],
    ]
    print(table(rows, ["repeat buyers", "p_alive < 0.5", "p_alive >= 0.5"]))
    agree = int((churned == dead).sum())
    print(
        f"  the two agree on {agree:,} of {repeat.height:,} repeat buyers "
        f"({pct(agree / repeat.height)})"
    )

    print("\nwhere they disagree: a typical customer of each group (p_alive nearest its median)")
    cases: list[tuple[str, pl.Expr]] = [
        (
            "one-time, churned (365 days), p_alive = 1",
            (pl.col("buyer_type") == "one_time") & (pl.col("status") == "churned"),
        ),
        (
            "repeat, churned (cycles), p_alive >= 0.7",
            (pl.col("status_reason") == "cycles>=2.0") & (pl.col("p_alive") >= 0.7),
        ),
        (
            "repeat, churned (365 days), p_alive >= 0.3",
            (pl.col("buyer_type") == "repeat")
            & (pl.col("status_reason") == "no_purchase_365d")
            & (pl.col("p_alive") >= 0.3),
        ),
        (
            "repeat, active, p_alive < 0.7",
            (pl.col("status") == "active") & (pl.col("p_alive") < 0.7),
        ),
    ]
    rows = []
    for label, condition in cases:
        group = scores.filter(condition)
        median = group["p_alive"].median()
        typical = group.sort((pl.col("p_alive") - median).abs(), pl.col("customer_id")).row(
            0, named=True
        )
        rows.append(
            [
                label,
                count(group.height),
                str(typical["customer_id"]),
                str(typical["n_orders"]),
                f"{typical['first_purchase']}",
                f"{typical['last_purchase']}",
                str(typical["recency_days"]),
                num(typical["cycle_days"], 1),
                num(typical["cycles_since_last"], 2),
                num(typical["p_alive"]),
                num(typical["expected_purchases"], 2),
            ]
        )
    print(
        table(
            rows,
            [
                "group",
                "customers",
                "id",
                "orders",
                "first",
                "last",
                "recency",
                "cycle",
                "cycles",
                "p_alive",
                "E[90 d]",
            ],
        )
    )


PREDICTORS: list[tuple[str, Callable[[pl.DataFrame], pl.Series]]] = [
    ("status == churned", lambda f: f["status"] == "churned"),
    ("status != active", lambda f: f["status"] != "active"),
    ("p_alive < 0.5", lambda f: f["p_alive"] < 0.5),
]
RATE_HEADER = ["customers", "returned", "return rate", "mean p_alive", "expected", "actual"]


def with_model(
    log: pl.DataFrame, result: churn_engine.BacktestResult, horizon: int
) -> pl.DataFrame:
    """The backtest's customers with BG/NBD fitted on what was known at ``as_of``.

    Adds ``p_alive``, ``expected_purchases`` (over the window), the purchase
    days actually made in the window and ``gone`` (did not come back).
    """
    as_of = result.as_of_day.isoformat()
    summary = churn_engine.lifetimes_summary(log, as_of=as_of, freq="D")
    model = BetaGeo().fit_summary(summary)
    params = ", ".join(f"{k} = {v:.4g}" for k, v in model.params_.items())
    print(f"BG/NBD on lifetimes_summary(log, as_of={as_of!r}, freq='D'): {params}")
    predicted = model.predict(summary, horizon=horizon)
    # score(model="bgnbd") fits the same daily summary: its columns must be these
    same = churn_engine.score(log, as_of=as_of, model="bgnbd", model_horizon_days=horizon)
    identical = same.select("customer_id", "p_alive", "expected_purchases").equals(predicted)
    print(f"  equal to score(log, as_of={as_of!r}, model='bgnbd'): {identical}")
    made = window_purchases(log, result.as_of_day, result.horizon_end)
    frame: pl.DataFrame = (
        result.customers.join(predicted, on="customer_id", how="left")
        .join(made, on="customer_id", how="left")
        .with_columns(pl.col("purchases_in_window").fill_null(0), gone=~pl.col("returned"))
    )
    return frame


def metric_rows(frame: pl.DataFrame, as_of: str) -> list[list[str]]:
    rows = []
    for scope in ("all", "repeat"):
        part = frame if scope == "all" else frame.filter(pl.col("buyer_type") == "repeat")
        for name, predictor in PREDICTORS:
            m = confusion(predictor(part), part["gone"])
            rows.append(
                [f"{as_of} {scope}", name, count(m["tp"]), count(m["fp"]), count(m["fn"]),
                 count(m["tn"]), pct(m["p"]), pct(m["r"]), num(m["f1"])]
            )  # fmt: skip
    return rows


def auc_row(frame: pl.DataFrame, as_of: str) -> list[str]:
    repeat = frame.filter(pl.col("buyer_type") == "repeat")
    gone = repeat["gone"]
    return [
        as_of,
        count(repeat.height),
        num(auc(repeat["cycles_since_last"], gone)),
        num(auc(repeat["recency_days"].cast(pl.Float64), gone)),
        num(auc(-repeat["p_alive"], gone)),
        num(auc(-repeat["expected_purchases"], gone)),
    ]


def rate_rows(
    part: pl.DataFrame, key: str, labels: Sequence[str], prefix: str = ""
) -> list[list[str]]:
    """Per label of ``key``: customers, returns, mean p_alive, expected and actual purchases."""
    rows = []
    for label in labels:
        group = part.filter(pl.col(key) == label)
        if group.height == 0:
            continue
        means = group.select(
            pl.col("returned", "p_alive", "expected_purchases", "purchases_in_window").mean()
        ).row(0)
        rows.append(
            [prefix + label, count(group.height), count(int(group["returned"].sum())),
             pct(means[0]), num(means[1]), num(means[2], 2), num(means[3], 2)]
        )  # fmt: skip
    return rows


def print_rates(frame: pl.DataFrame, result: churn_engine.BacktestResult) -> None:
    frame = frame.with_columns(
        band_of("p_alive").alias("band"), bucket_of("cycles_since_last").alias("bucket")
    )
    print(
        f"\nas of {result.as_of_day}, {result.horizon_days} days: return rate per p_alive band; "
        "expected = BG/NBD expected purchases in the window, actual = purchase days in it "
        "(means per customer)"
    )
    bands = [label for label, _, _ in BANDS]
    rows = []
    for buyer in ("one_time", "repeat"):
        rows += rate_rows(frame.filter(pl.col("buyer_type") == buyer), "band", bands, f"{buyer} ")
    rows += rate_rows(frame, "band", bands, "all ")
    print(table(rows, ["buyers, p_alive", *RATE_HEADER]))

    print(f"\nas of {result.as_of_day}, repeat buyers: the same per cycles_since_last bucket")
    repeat = frame.filter(pl.col("buyer_type") == "repeat")
    rows = rate_rows(repeat, "bucket", [label for label, _, _ in BUCKETS])
    print(table(rows, ["cycles since last", *RATE_HEADER]))
    # the buckets are the backtest's own (docs/backtest.md)
    own = result.by_buyer_type_cycles.filter(
        pl.col("buyer_type") == "repeat", pl.col("customers") > 0
    )
    assert [count(c) for c in own["customers"]] == [row[1] for row in rows]


def step_head_to_head(log: pl.DataFrame, results: dict[str, churn_engine.BacktestResult]) -> None:
    section("5. Head to head on the backtests: status vs BG/NBD fitted at the same as_of")
    frames = {as_of: with_model(log, results[as_of], horizon) for as_of, horizon in BACKTESTS}

    print('\n"no return" predicted by each rule (positive = did not come back in the window)')
    rows = [row for as_of, frame in frames.items() for row in metric_rows(frame, as_of)]
    header = ["as_of, customers", "prediction", "tp", "fp", "fn", "tn", "precision", "recall"]
    print(table(rows, [*header, "F1"]))

    print("\nranking the repeat buyers by risk: AUC (0.5 = chance, 1 = perfect)")
    rows = [auc_row(frame, as_of) for as_of, frame in frames.items()]
    header = ["as_of", "repeat buyers", "cycles_since_last", "recency_days", "1 - p_alive"]
    print(table(rows, [*header, "-expected_purchases"]))

    first = BACKTESTS[0][0]
    print_rates(frames[first], results[first])

    print("\nexpected and actual purchases in the window, in total")
    rows = []
    for as_of, frame in frames.items():
        for buyer in ("one_time", "repeat"):
            part = frame.filter(pl.col("buyer_type") == buyer)
            expected = float(part["expected_purchases"].sum())
            actual = int(part["purchases_in_window"].sum())
            rows.append([f"{as_of} {buyer}", count(part.height), f"{expected:,.0f}",
                         count(actual), pct(expected / actual - 1.0)])  # fmt: skip
    print(table(rows, ["as_of, buyers", "customers", "expected", "actual", "expected/actual - 1"]))


def step_parameters(log: pl.DataFrame) -> None:
    section("6. BG/NBD parameters (per day): churn-engine vs lifetimes' BetaGeoFitter")
    rows = []
    worst = 0.0
    for as_of in (BACKTESTS[0][0], END):
        summary = churn_engine.lifetimes_summary(log, as_of=as_of, freq="D")
        ours = BetaGeo().fit_summary(summary)
        theirs = fit_lifetimes(summary)
        label = f"lifetimes_summary(as_of={as_of!r}, freq='D')"
        rows.append([label, "churn-engine", *(f"{v:.7g}" for v in ours.params_.values())])
        rows.append(["", "lifetimes", *(f"{theirs[k]:.7g}" for k in ours.params_)])
        for key, value in ours.params_.items():
            worst = max(worst, abs(value / theirs[key] - 1.0))
        print(f"{label}: {summary.height:,} customers, log-likelihood {ours.log_likelihood_:,.1f}")
    print()
    print(table(rows, ["summary", "fitted by", "r", "alpha", "a", "b"]))
    shown = "below 1e-9" if worst < 1e-9 else f"{worst:.1e}"
    print(f"\nlargest relative difference of a parameter: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=".", metavar="DIR", help="where to write cdnow.parquet (default: .)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    log = load_cdnow()
    path = out / "cdnow.parquet"
    log.write_parquet(path)
    print(f"wrote {path}", file=sys.stderr)  # stderr: stdout does not depend on --out
    describe_log(log)
    step_scores(log)
    results = step_backtests(log)
    step_agreement(log)
    step_head_to_head(log, results)
    step_parameters(log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
