#!/usr/bin/env python
"""churn-engine against its peers: DuckDB, Polars and the Parquet read floor.

Generates synthetic transaction logs with the project's generator
(``churn_engine._generate.generate_log``: time-ordered rows, sparse int64
ids and, with ``--string-ids``, string ids), writes each to Parquet once
(cached in ``benches/.data/``), then runs every contender in its own
subprocess, so that wall time and peak RSS belong to that contender alone:

=====================  =========  ===========================================
contender              source     what is timed
=====================  =========  ===========================================
io_floor               parquet    ``pyarrow.parquet.read_table`` of the 3 columns
duckdb_parquet         parquet    the section-4 SQL over ``read_parquet(path)``,
                                  result fetched as an Arrow table
duckdb_arrow           memory     the same SQL over a registered Arrow table
polars_lazy            parquet    a lean lazy Polars query over ``scan_parquet``
polars_memory          memory     the same query over an in-memory DataFrame
churn_engine_parquet   parquet    ``churn_engine.Scorer().run(path)``
churn_engine_memory    memory     ``churn_engine.Scorer().run(pyarrow_table)``
---------------------  ---------  -------------------------------------------
churn_engine_polars    memory     ``Scorer().run(polars_df)`` (opt-in)
polars_reference       memory     ``churn_engine._reference.reference_score``,
                                  the plain-Polars test oracle (opt-in)
=====================  =========  ===========================================

"memory" contenders load their input before the timer starts; only the
query and the materialised result (Arrow table / Polars DataFrame) are
timed. Their peak RSS is measured from the loaded state (the kernel's
high-water mark is reset through ``/proc/self/clear_refs`` after loading),
so "above base" is the memory the query needs on top of its input. For
"parquet" contenders "above base" is the peak above the process after its
imports. Each contender runs ``--repeat`` times in its process; the best
wall time is reported (all of them are in the ``--out`` JSON).

Every result is written to Parquet and checked against churn-engine's:
same customers in the same order (after sorting by ``customer_id``), ints,
dates and strings exact, floats within 1e-9 relative (absolute for values
below 1), and ``m_score`` (with ``rfm_code``/``segment``) excused only for
customers whose ``monetary_total`` lies within 1e-9 of an M cut point
(DESIGN.md section 4).

Usage::

    PYTHONPATH=src python benches/peers.py --customers 1000000 --string-ids \
        --repeat 3 --out results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA_DIR = HERE / ".data"
RESULT_TAG = "PEERS_RESULT "
MB = 1024 * 1024

# targets of the issue "Performance: far ahead of DuckDB and Polars"
TARGET_VS_DUCKDB = 8.0  # in memory: duckdb time / churn-engine time >= this
TARGET_VS_POLARS = 20.0  # in memory: polars time / churn-engine time >= this
TARGET_VS_IO_FLOOR = 1.5  # from Parquet: churn-engine time / io_floor time <= this
TARGET_MEMORY = 1.5  # peak RSS above loaded input / input Arrow size <= this
TARGET_STRING_IDS = 2.0  # string-id time / int-id time <= this

FLOAT_RTOL = 1e-9
NOISY = 0.15  # a target whose times ran with more CPU used by others is "unreliable"

DEFAULT_CONTENDERS = (
    "io_floor",
    "duckdb_parquet",
    "duckdb_arrow",
    "polars_lazy",
    "polars_memory",
    "churn_engine_parquet",
    "churn_engine_memory",
)
OPTIONAL_CONTENDERS = ("churn_engine_polars", "polars_reference")


# ---------------------------------------------------------------------------
# environment: the engine on sys.path, machine noise
# ---------------------------------------------------------------------------


def ensure_engine_importable() -> bool:
    """Import churn_engine as installed, else from the in-place build in src/.

    Returns True when src/ had to be put on the path (workers get it too).
    """
    src = str(ROOT / "src")
    try:
        import churn_engine  # noqa: F401

        return False
    except ImportError:
        sys.path.insert(0, src)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [src] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        )
        return True


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy(seconds: float = 0.5) -> float | None:
    """Share of all CPUs busy (0..1) over ``seconds``, while this process sleeps."""
    first = _cpu_jiffies()
    time.sleep(seconds)
    second = _cpu_jiffies()
    if first is None or second is None or second[1] == first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1])


def wait_until_idle(limit_s: float, threshold: float = 0.15) -> float | None:
    """Wait (up to ``limit_s``) until other processes use < ``threshold`` of the CPUs."""
    deadline = time.monotonic() + limit_s
    busy = machine_busy()
    while busy is not None and busy >= threshold and time.monotonic() < deadline:
        busy = machine_busy(1.0)
    return busy


# ---------------------------------------------------------------------------
# process memory
# ---------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Current resident set size."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # best effort


def peak_rss_bytes() -> int:
    """High-water mark of the resident set size (since the last reset)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# the queries of the peers (DESIGN.md section 4, default options)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rules:
    """The default options of ScoreConfig, as literals for the peer queries."""

    at_risk: float
    churn: float
    horizon: int
    weight: float
    bins: int
    reasons: dict[str, str]
    segments: dict[str, str]  # rfm code -> segment

    @classmethod
    def default(cls) -> Rules:
        ensure_engine_importable()
        from churn_engine.config import ScoreConfig

        config = ScoreConfig()
        segment_map = config.effective_segment_map() or {}
        return cls(
            at_risk=config.at_risk_cycles,
            churn=config.churn_cycles,
            horizon=config.horizon_days,
            weight=config.prior_weight,
            bins=config.rfm_bins,
            reasons=config.reason_codes(config.horizon_days),
            segments={code: name for name, codes in segment_map.items() for code in codes},
        )


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_sql(source: str, rules: Rules) -> str:
    """Every section-4 column in one DuckDB query, as an analyst would write it.

    Occasions are the distinct (customer, day) pairs of non-refund rows; gaps
    come from ``lag`` over them. The RFM cut points are the order statistics
    at index ``floor((n - 1) * i / bins)`` (numpy ``method="lower"``), picked
    with ``row_number`` (``quantile_disc`` picks a different element for some
    n). The segment comes from a join on the 125-row segment table.
    """
    b = rules.bins
    r = rules.reasons
    segments = ",\n    ".join(
        f"({_sql_str(code)}, {_sql_str(name)})" for code, name in sorted(rules.segments.items())
    )

    def ranked(name: str, expr: str) -> str:
        return (
            f"{name}_cuts AS (\n"
            f"  SELECT list(v ORDER BY i) AS c FROM (\n"
            f"    SELECT CAST({expr} AS DOUBLE) AS v,\n"
            f"           row_number() OVER (ORDER BY {expr}) - 1 AS k FROM status\n"
            f"  ) JOIN cut_index USING (k)\n"
            f")"
        )

    def score(value: str, cuts: str) -> str:
        terms = " + ".join(f"CAST({value} > {cuts}[{i}] AS INTEGER)" for i in range(1, b))
        return f"CAST(1 + {terms} AS TINYINT)"

    return f"""
WITH
rows AS (
  SELECT customer_id AS cid, CAST(ts AS DATE) AS d, amount FROM {source}
),
facts AS (
  SELECT cid, count(*) AS n_rows, sum(amount) AS monetary_total,
         coalesce(sum(-amount) FILTER (WHERE amount < 0), 0.0) AS refund_total,
         max(d) AS max_d
  FROM rows GROUP BY cid
),
occasions AS (SELECT DISTINCT cid, d FROM rows WHERE amount >= 0),
gaps AS (
  SELECT cid, d, d - lag(d) OVER (PARTITION BY cid ORDER BY d) AS gap FROM occasions
),
intervals AS (
  SELECT cid, count(*) AS n_orders, min(d) AS first_d, max(d) AS last_d,
         avg(gap) AS interval_mean_days,
         stddev_samp(gap) AS interval_std_days,
         median(CAST(gap AS DOUBLE)) AS interval_median_days
  FROM gaps GROUP BY cid
),
params AS (
  SELECT (SELECT max(max_d) FROM facts) AS as_of,
         (SELECT median(interval_mean_days) FROM intervals WHERE n_orders >= 2) AS prior
),
scored AS (
  SELECT f.cid, i.n_orders, f.n_rows, i.first_d, i.last_d,
         p.as_of - i.first_d AS tenure_days,
         p.as_of - i.last_d AS recency_days,
         f.monetary_total, f.refund_total,
         f.monetary_total / i.n_orders AS monetary_mean,
         i.interval_mean_days, i.interval_std_days, i.interval_median_days,
         p.prior,
         CASE WHEN i.n_orders = 1 THEN p.prior
              WHEN p.prior IS NULL THEN i.interval_mean_days
              ELSE (CAST(i.n_orders - 1 AS DOUBLE) * i.interval_mean_days
                    + {rules.weight!r} * p.prior)
                   / (CAST(i.n_orders - 1 AS DOUBLE) + {rules.weight!r})
         END AS cycle_days
  FROM facts f JOIN intervals i USING (cid), params p
),
cycles AS (
  SELECT *,
         CAST(recency_days AS DOUBLE) / cycle_days AS cycles_since_last,
         last_d + CAST(floor(cycle_days + 0.5) AS INTEGER) AS expected_next_purchase,
         greatest(CAST(recency_days AS DOUBLE) - cycle_days, 0.0) AS days_overdue
  FROM scored
),
status AS (
  SELECT *,
         CASE WHEN n_orders = 1 THEN 'one_time' ELSE 'repeat' END AS buyer_type,
         CASE WHEN recency_days >= {rules.horizon} THEN 'churned'
              WHEN n_orders >= 2 AND cycles_since_last >= {rules.churn!r} THEN 'churned'
              WHEN n_orders >= 2 AND cycles_since_last >= {rules.at_risk!r} THEN 'at_risk'
              WHEN n_orders >= 2 THEN 'active'
              WHEN prior IS NULL THEN 'active'
              WHEN recency_days >= {rules.at_risk!r} * prior THEN 'at_risk'
              ELSE 'active' END AS status,
         CASE WHEN recency_days >= {rules.horizon} THEN {_sql_str(r["horizon"])}
              WHEN n_orders >= 2 AND cycles_since_last >= {rules.churn!r}
                   THEN {_sql_str(r["churn_cycles"])}
              WHEN n_orders >= 2 AND cycles_since_last >= {rules.at_risk!r}
                   THEN {_sql_str(r["at_risk_cycles"])}
              WHEN n_orders >= 2 THEN {_sql_str(r["active_cycles"])}
              WHEN prior IS NULL THEN {_sql_str(r["one_time_no_prior"])}
              WHEN recency_days >= {rules.at_risk!r} * prior
                   THEN {_sql_str(r["one_time_at_risk"])}
              ELSE {_sql_str(r["one_time_active"])} END AS status_reason
  FROM cycles
),
cut_index AS (
  SELECT i, ((n - 1) * i) // {b} AS k
  FROM (SELECT count(*) AS n FROM status), range(1, {b}) t(i)
),
{ranked("r", "-recency_days")},
{ranked("f", "n_orders")},
{ranked("m", "monetary_total")},
scores AS (
  SELECT s.*,
         {score("CAST(-s.recency_days AS DOUBLE)", "r_cuts.c")} AS r_score,
         {score("CAST(s.n_orders AS DOUBLE)", "f_cuts.c")} AS f_score,
         {score("s.monetary_total", "m_cuts.c")} AS m_score
  FROM status s, r_cuts, f_cuts, m_cuts
),
segments(rfm_code, segment) AS (VALUES
    {segments}
)
SELECT cid AS customer_id, n_orders, n_rows,
       first_d AS first_purchase, last_d AS last_purchase,
       tenure_days, recency_days, monetary_total, refund_total, monetary_mean,
       interval_mean_days, interval_std_days, interval_median_days,
       cycle_days, cycles_since_last, expected_next_purchase, days_overdue,
       buyer_type, status, status_reason, r_score, f_score, m_score,
       x.rfm_code, g.segment
FROM (SELECT *, CAST(r_score AS VARCHAR) || CAST(f_score AS VARCHAR)
                || CAST(m_score AS VARCHAR) AS rfm_code FROM scores) x
LEFT JOIN segments g USING (rfm_code)
ORDER BY customer_id
"""


def polars_query(lf: Any, rules: Rules) -> Any:
    """Every section-4 column as one lean lazy Polars query.

    Written for speed rather than for reading (unlike the oracle in
    ``_reference.py``): day numbers as Int32, one group_by for the row facts,
    one over the distinct occasions sorted by (customer, day) with gaps from
    a shift (cheaper than ``diff().over()``), the cut points as order
    statistics of the sorted values, the segment by a join.
    """
    import polars as pl

    b = rules.bins
    r = rules.reasons
    amount, day, cid = pl.col("amount"), pl.col("d"), pl.col("cid")
    rows = lf.select(
        cid=pl.col("customer_id"),
        d=pl.col("ts").dt.date().cast(pl.Int32),
        amount=amount,
    )
    facts = (
        rows.group_by("cid")
        .agg(
            n_rows=pl.len().cast(pl.Int64),
            monetary_total=amount.sum(),
            refund_total=(-amount).filter(amount < 0).sum(),
            max_d=day.max(),
        )
        .with_columns(as_of=pl.col("max_d").max())
    )
    occasions = (
        rows.filter(amount >= 0)
        .select("cid", "d")
        .unique()
        .sort("cid", "d")
        .with_columns(gap=pl.when(cid == cid.shift(1)).then(day - day.shift(1)))
    )
    intervals = occasions.group_by("cid").agg(
        n_orders=pl.len().cast(pl.Int64),
        first_d=day.min(),
        last_d=day.max(),
        interval_mean_days=pl.col("gap").mean(),
        interval_std_days=pl.col("gap").std(ddof=1),
        interval_median_days=pl.col("gap").median(),
    )
    n_orders = pl.col("n_orders")
    k = (n_orders - 1).cast(pl.Float64)
    mean = pl.col("interval_mean_days")
    prior = pl.col("prior")
    w = rules.weight
    scored = (
        facts.join(intervals, on="cid", how="inner")
        .with_columns(
            tenure_days=(pl.col("as_of") - pl.col("first_d")).cast(pl.Int64),
            recency_days=(pl.col("as_of") - pl.col("last_d")).cast(pl.Int64),
            monetary_mean=pl.col("monetary_total") / n_orders,
            prior=mean.filter(n_orders >= 2).median(),
        )
        .with_columns(
            cycle_days=pl.when(n_orders == 1)
            .then(prior)
            .when(prior.is_null())
            .then(mean)
            .otherwise((k * mean + w * prior) / (k + w))
        )
    )
    cycle = pl.col("cycle_days")
    recency = pl.col("recency_days")
    since = pl.col("cycles_since_last")
    scored = scored.with_columns(
        cycles_since_last=recency.cast(pl.Float64) / cycle,
        expected_next_purchase=(pl.col("last_d") + (cycle + 0.5).floor().cast(pl.Int32)).cast(
            pl.Date
        ),
        days_overdue=(recency.cast(pl.Float64) - cycle).clip(lower_bound=0.0),
        buyer_type=pl.when(n_orders == 1).then(pl.lit("one_time")).otherwise(pl.lit("repeat")),
    )
    rules_ = [
        (recency >= rules.horizon, "churned", r["horizon"]),
        ((n_orders >= 2) & (since >= rules.churn), "churned", r["churn_cycles"]),
        ((n_orders >= 2) & (since >= rules.at_risk), "at_risk", r["at_risk_cycles"]),
        (n_orders >= 2, "active", r["active_cycles"]),
        (prior.is_null(), "active", r["one_time_no_prior"]),
        (recency >= rules.at_risk * prior, "at_risk", r["one_time_at_risk"]),
    ]
    status: Any = pl
    reason: Any = pl
    for condition, name, code in rules_:
        status = status.when(condition).then(pl.lit(name))
        reason = reason.when(condition).then(pl.lit(code))
    status = status.otherwise(pl.lit("active"))
    reason = reason.otherwise(pl.lit(r["one_time_active"]))
    scored = scored.with_columns(status=status, status_reason=reason)

    def score(value: pl.Expr) -> pl.Expr:
        ordered = value.sort()
        n = pl.len().cast(pl.Int64)
        below = pl.lit(1, dtype=pl.Int32)
        for i in range(1, b):
            cut = ordered.gather((n - 1) * i // b).first()
            below = below + (value > cut).cast(pl.Int32)
        return below.cast(pl.Int8)

    scored = scored.with_columns(
        r_score=score((-recency).cast(pl.Float64)),
        f_score=score(n_orders.cast(pl.Float64)),
        m_score=score(pl.col("monetary_total")),
    ).with_columns(
        rfm_code=pl.concat_str(
            pl.col("r_score").cast(pl.String),
            pl.col("f_score").cast(pl.String),
            pl.col("m_score").cast(pl.String),
        )
    )
    segments = pl.LazyFrame(
        {"rfm_code": list(rules.segments), "segment": list(rules.segments.values())}
    )
    return (
        scored.join(segments, on="rfm_code", how="left")
        .sort("cid")
        .select(
            pl.col("cid").alias("customer_id"),
            "n_orders",
            "n_rows",
            pl.col("first_d").cast(pl.Date).alias("first_purchase"),
            pl.col("last_d").cast(pl.Date).alias("last_purchase"),
            "tenure_days",
            "recency_days",
            "monetary_total",
            "refund_total",
            "monetary_mean",
            "interval_mean_days",
            "interval_std_days",
            "interval_median_days",
            "cycle_days",
            "cycles_since_last",
            "expected_next_purchase",
            "days_overdue",
            "buyer_type",
            "status",
            "status_reason",
            "r_score",
            "f_score",
            "m_score",
            "rfm_code",
            "segment",
        )
    )


# ---------------------------------------------------------------------------
# contenders (run inside the worker process)
# ---------------------------------------------------------------------------

COLUMNS = ["customer_id", "ts", "amount"]


@dataclasses.dataclass
class Contender:
    kind: str  # "parquet" or "memory"
    imports: Callable[[], None]
    load: Callable[[str], Any]  # path -> input (before the timer)
    run: Callable[[Any], Any]  # input -> result (timed)
    describe: str


def _import_engine() -> None:
    import pyarrow.parquet  # noqa: F401

    import churn_engine  # noqa: F401


def _import_pyarrow() -> None:
    import pyarrow.parquet  # noqa: F401


def _import_duckdb() -> None:
    import duckdb  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _import_polars() -> None:
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _read_arrow(path: str) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=COLUMNS)


def _read_polars(path: str) -> Any:
    import polars as pl

    return pl.read_parquet(path, columns=COLUMNS)


def _duckdb_run(data: Any) -> Any:
    con, sql, _ = data
    return con.sql(sql).to_arrow_table()


def _duckdb_load(source: str) -> Callable[[str], Any]:
    def load(path: str) -> Any:
        import duckdb

        con = duckdb.connect()
        if source == "arrow":
            table = _read_arrow(path)
            con.register("src", table)
            return con, duckdb_sql("src", RULES[0]), table
        return con, duckdb_sql(f"read_parquet({_sql_str(path)})", RULES[0]), None

    return load


def _polars_run(data: Any) -> Any:
    import polars as pl

    lf = pl.scan_parquet(data) if isinstance(data, str) else data.lazy()
    return polars_query(lf, RULES[0]).collect()


def _reference_run(data: Any) -> Any:
    from churn_engine._reference import reference_score
    from churn_engine.config import ScoreConfig

    return reference_score(data, ScoreConfig()).customers


def _engine_run(data: Any) -> Any:
    import churn_engine

    result = churn_engine.Scorer().run(data)
    _LAST_TIMINGS.clear()
    _LAST_TIMINGS.update(result.stats.timings)
    return result.customers


_LAST_TIMINGS: dict[str, float] = {}


def _io_floor_run(path: str) -> Any:
    table = _read_arrow(path)
    _IO_FLOOR_SIZE[0] = table.nbytes
    return None


_IO_FLOOR_SIZE = [0]
RULES: list[Rules] = []  # set by the worker from --rules (no churn_engine import needed)

CONTENDERS: dict[str, Contender] = {
    "io_floor": Contender(
        "parquet", _import_pyarrow, lambda p: p, _io_floor_run,
        "pyarrow.parquet.read_table(path, columns=[customer_id, ts, amount])",
    ),
    "duckdb_parquet": Contender(
        "parquet", _import_duckdb, _duckdb_load("parquet"), _duckdb_run,
        "DuckDB SQL over read_parquet(path) -> .to_arrow_table()",
    ),
    "duckdb_arrow": Contender(
        "memory", _import_duckdb, _duckdb_load("arrow"), _duckdb_run,
        "DuckDB SQL over a registered pyarrow.Table -> .to_arrow_table()",
    ),
    "polars_lazy": Contender(
        "parquet", _import_polars, lambda p: p, _polars_run,
        "lean lazy Polars query over scan_parquet(path) -> collect()",
    ),
    "polars_memory": Contender(
        "memory", _import_polars, _read_polars, _polars_run,
        "the same lazy query over df.lazy() -> collect()",
    ),
    "churn_engine_parquet": Contender(
        "parquet", _import_engine, lambda p: p, _engine_run, "Scorer().run(path)",
    ),
    "churn_engine_memory": Contender(
        "memory", _import_engine, _read_arrow, _engine_run, "Scorer().run(pyarrow.Table)",
    ),
    "churn_engine_polars": Contender(
        "memory", _import_engine, _read_polars, _engine_run, "Scorer().run(polars.DataFrame)",
    ),
    "polars_reference": Contender(
        "memory", _import_engine, _read_polars, _reference_run,
        "churn_engine._reference.reference_score (eager plain Polars oracle)",
    ),
}  # fmt: skip


def _input_bytes(data: Any) -> int | None:
    if isinstance(data, tuple):  # duckdb: (connection, sql, table or None)
        data = data[2]
    if hasattr(data, "nbytes"):
        return int(data.nbytes)
    if hasattr(data, "estimated_size"):
        return int(data.estimated_size())
    return None


def _write_result(result: Any, path: str) -> None:
    if result is None:
        return
    if hasattr(result, "write_parquet"):
        result.write_parquet(path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(result, path)


def worker(
    name: str, source: str, result_path: str | None, repeat: int, profile: bool, rules: str
) -> None:
    RULES.append(Rules(**json.loads(rules)))
    contender = CONTENDERS[name]
    contender.imports()
    gc.collect()
    base_rss = rss_bytes()
    data = contender.load(source)
    gc.collect()
    loaded_rss = rss_bytes()
    peak_reset = reset_peak_rss()
    times: list[float] = []
    cpu_times: list[float] = []
    timings: list[dict[str, float]] = []
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = contender.run(data)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        timings.append(dict(_LAST_TIMINGS))
    peak = peak_rss_bytes()
    input_bytes = _IO_FLOOR_SIZE[0] if name == "io_floor" else _input_bytes(data)
    rows = None if result is None else (result.num_rows if hasattr(result, "num_rows")
                                        else result.height)  # fmt: skip
    if result_path:
        _write_result(result, result_path)
    profile_text = None
    if profile:
        import cProfile
        import io
        import pstats

        result = None
        gc.collect()
        prof = cProfile.Profile()
        prof.enable()
        contender.run(data)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
        profile_text = out.getvalue()
    best = min(range(repeat), key=lambda i: times[i])
    report = {
        "name": name,
        "kind": contender.kind,
        "describe": contender.describe,
        "times": times,
        "best": times[best],
        "cpu_times": cpu_times,
        "best_cpu": cpu_times[best],
        "median": statistics.median(times),
        "timings": timings[best] or None,
        "base_rss": base_rss,
        "loaded_rss": loaded_rss,
        "peak_rss": peak,
        "peak_reset": peak_reset,
        # memory variants: peak above the loaded input; parquet: above the imports
        "above_base": peak - (loaded_rss if peak_reset else base_rss),
        "input_bytes": input_bytes if contender.kind == "memory" or name == "io_floor" else None,
        "result_rows": rows,
        "profile": profile_text,
    }
    print(RESULT_TAG + json.dumps(report), flush=True)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def _generator_hash() -> str:
    source = (ROOT / "src" / "churn_engine" / "_generate.py").read_bytes()
    return hashlib.sha1(source).hexdigest()[:8]


def data_path(data_dir: Path, customers: int, string_ids: bool, seed: int) -> Path:
    ids = "str" if string_ids else "int"
    return data_dir / f"log_{customers}c_seed{seed}_{ids}_{_generator_hash()}.parquet"


def make_data(path: str, customers: int, string_ids: bool, seed: int) -> None:
    """Generate a log and write it to Parquet (pyarrow defaults: snappy, 1 Mi rows/group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn_engine._generate import generate_log

    table = generate_log(customers, seed=seed, string_ids=string_ids).to_arrow()
    schema = pa.schema(
        [
            ("customer_id", pa.string() if string_ids else pa.int64()),
            ("ts", pa.timestamp("us")),
            ("amount", pa.float64()),
        ]
    )
    table = table.select(COLUMNS).cast(schema)
    tmp = path + ".tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def ensure_data(data_dir: Path, customers: int, string_ids: bool, seed: int) -> Path:
    path = data_path(data_dir, customers, string_ids, seed)
    if path.exists():
        print(f"using cached {path}", flush=True)
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"generating {customers:,} customers ({'string' if string_ids else 'int'} ids) "
          f"-> {path}", flush=True)  # fmt: skip
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--make-data", str(path), "--customers", str(customers),
           "--seed", str(seed)] + (["--string-ids"] if string_ids else [])  # fmt: skip
    subprocess.run(cmd, check=True)
    print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return path


# ---------------------------------------------------------------------------
# checking
# ---------------------------------------------------------------------------


def check(engine: Any, other: Any, m_cuts: list[float]) -> dict[str, Any]:
    """Compare a peer's result with churn-engine's (both polars DataFrames)."""
    import polars as pl

    problems: dict[str, int] = {}
    if set(other.columns) != set(engine.columns):
        missing = sorted(set(engine.columns) - set(other.columns))
        extra = sorted(set(other.columns) - set(engine.columns))
        return {"equal": False, "error": f"columns differ: missing {missing}, extra {extra}"}
    if other.height != engine.height:
        return {"equal": False, "error": f"{other.height} rows, churn-engine has {engine.height}"}
    try:
        other = other.select(engine.columns).cast(dict(engine.schema), strict=True)
    except pl.exceptions.PolarsError as exc:
        return {"equal": False, "error": f"cannot cast to churn-engine's schema: {exc}"}
    a = engine.sort("customer_id", maintain_order=True)
    b = other.sort("customer_id", maintain_order=True)
    frame = pl.DataFrame(
        {f"a_{c}": a.get_column(c) for c in a.columns}
        | {f"b_{c}": b.get_column(c) for c in b.columns}
    )
    masks = {}
    for name, dtype in engine.schema.items():
        x, y = pl.col(f"a_{name}"), pl.col(f"b_{name}")
        if dtype.is_float():
            scale = pl.max_horizontal(x.abs(), y.abs(), pl.lit(1.0))
            close = (x - y).abs() <= FLOAT_RTOL * scale
            differ = (x.is_null() != y.is_null()) | (
                x.is_not_null() & y.is_not_null() & ~(close | (x.is_nan() & y.is_nan()))
            )
        else:
            differ = x.ne_missing(y)
        masks[name] = differ.alias(name)
    diff = frame.select(*masks.values())
    # M scores may differ only where monetary_total is within 1e-9 of a cut point
    money = frame.get_column("a_monetary_total").cast(pl.Float64)
    near = pl.Series([False] * frame.height)
    for cut in m_cuts:
        near = near | ((money - cut).abs() <= FLOAT_RTOL * max(abs(cut), 1.0))
    excusable = diff.get_column("m_score") & near
    excused = int(excusable.sum())
    for name in diff.columns:
        column = diff.get_column(name)
        if name in ("m_score", "rfm_code", "segment"):
            column = column & ~excusable
        n_bad = int(column.sum())
        if n_bad:
            problems[name] = n_bad
    report: dict[str, Any] = {"equal": not problems, "mismatches": problems, "excused": excused}
    if problems:
        first = next(iter(problems))
        bad_rows = frame.filter(diff.get_column(first)).head(3)
        report["example"] = {
            first: bad_rows.select("a_customer_id", f"a_{first}", f"b_{first}").rows()
        }
    return report


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------


def run_contender(name: str, path: Path, result_dir: Path, args: argparse.Namespace) -> dict:
    result_path = result_dir / f"{name}.parquet"
    cmd = [sys.executable, __file__, "--worker", name, "--source", str(path),
           "--result", str(result_path), "--repeat", str(args.repeat),
           "--rules", json.dumps(dataclasses.asdict(Rules.default()))]  # fmt: skip
    if args.profile and name.startswith("churn_engine"):
        cmd.append("--profile")
    busy_before = wait_until_idle(args.wait_idle) if args.wait_idle else machine_busy()
    jiffies_before, child_cpu_before = _cpu_jiffies(), _children_cpu_s()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {args.timeout} s"}
    elapsed = time.perf_counter() - start
    jiffies_after, child_cpu = _cpu_jiffies(), _children_cpu_s() - child_cpu_before
    others = None
    if jiffies_before and jiffies_after and jiffies_after[1] > jiffies_before[1]:
        # CPU used by everything else while the worker ran, as a share of all CPUs
        hz = os.sysconf("SC_CLK_TCK")
        total_s = (jiffies_after[1] - jiffies_before[1]) / hz
        busy_s = (jiffies_after[0] - jiffies_before[0]) / hz
        others = max(0.0, (busy_s - child_cpu) / total_s)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        return {"name": name, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    report = json.loads(lines[-1][len(RESULT_TAG) :])
    report["process_s"] = elapsed
    report["machine_busy_before"] = busy_before
    report["others_cpu_share"] = others
    report["result_path"] = str(result_path) if result_path.exists() else None
    return report


def run_dataset(customers: int, string_ids: bool, args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl
    import pyarrow.parquet as pq

    path = ensure_data(args.data_dir, customers, string_ids, args.seed)
    meta = pq.ParquetFile(path).metadata
    dataset = {
        "customers": customers,
        "ids": "string" if string_ids else "int",
        "path": str(path),
        "rows": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "file_bytes": path.stat().st_size,
    }
    print(f"\n== {customers:,} customers, {'string' if string_ids else 'int'} ids: "
          f"{meta.num_rows:,} rows, {meta.num_row_groups} row groups, "
          f"{path.stat().st_size / MB:.1f} MB Parquet", flush=True)  # fmt: skip
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="churn-peers-") as tmp:
        for name in args.contenders:
            print(f"  {name} ...", end=" ", flush=True)
            report = run_contender(name, path, Path(tmp), args)
            attempts = 1
            while (
                args.max_noise is not None
                and attempts < args.attempts
                and (report.get("others_cpu_share") or 0.0) > args.max_noise
            ):
                print(f"noisy ({report['others_cpu_share']:.0%}), again ...", end=" ", flush=True)
                again = run_contender(name, path, Path(tmp), args)
                attempts += 1
                if "error" in again or (again.get("others_cpu_share") or 0.0) < (
                    report.get("others_cpu_share") or 0.0
                ):
                    report = again
            report["attempts"] = attempts
            results[name] = report
            if "error" in report:
                print(f"FAILED: {report['error']}", flush=True)
            else:
                print(f"{report['best']:.3f} s", flush=True)
            if report.get("profile"):
                print(report["profile"])
        # check every result against churn-engine's
        reference_name = next(
            (n for n in ("churn_engine_memory", "churn_engine_parquet", "churn_engine_polars")
             if results.get(n, {}).get("result_path")), None,
        )  # fmt: skip
        if reference_name and not args.skip_check:
            import churn_engine

            engine = pl.read_parquet(results[reference_name]["result_path"])
            # the M cut points, recomputed with the engine's own definition
            cuts = churn_engine._kernel.quantile_cuts(
                engine.get_column("monetary_total").to_numpy(), 5
            )
            for name, report in results.items():
                if name == "io_floor" or report.get("result_path") is None:
                    continue
                other = pl.read_parquet(report["result_path"])
                report["check"] = check(engine, other, [float(c) for c in cuts])
                report["checked_against"] = reference_name
    for report in results.values():
        report.pop("result_path", None)
    if "io_floor" in results and "input_bytes" in results["io_floor"]:
        dataset["arrow_bytes"] = results["io_floor"]["input_bytes"]
    dataset["results"] = results
    print_table(dataset)
    return dataset


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _engine_for(kind: str) -> str:
    return "churn_engine_memory" if kind == "memory" else "churn_engine_parquet"


def print_table(dataset: dict[str, Any]) -> None:
    results = dataset["results"]
    header = (
        f"{'contender':<22} {'source':<8} {'wall s':>8} {'cpu s':>7} {'peak RSS MB':>12} "
        f"{'above base MB':>14} {'input MB':>9} {'ratio':>7} {'noise':>6}  equal?"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<22} FAILED: {r['error'][:100]}")
            continue
        engine = results.get(_engine_for(r["kind"]), {})
        ratio = r["best"] / engine["best"] if engine.get("best") else None
        check_ = r.get("check")
        equal = "n/a" if check_ is None else ("yes" if check_["equal"] else "NO")
        if check_ and check_.get("excused"):
            equal += f" ({check_['excused']} M excused)"
        if check_ and not check_["equal"]:
            equal += " " + str(check_.get("error") or check_.get("mismatches"))
        input_mb = None if r.get("input_bytes") is None else r["input_bytes"] / MB
        others = r.get("others_cpu_share")
        noise = "-" if others is None else f"{others:.0%}"
        print(f"{name:<22} {r['kind']:<8} {r['best']:>8.3f} {r['best_cpu']:>7.2f} "
              f"{r['peak_rss'] / MB:>12.0f} "
              f"{r['above_base'] / MB:>14.0f} {_fmt(input_mb, '.0f'):>9} "
              f"{_fmt(ratio, '.2f'):>7} {noise:>6}  {equal}")  # fmt: skip
    print(
        "wall s: best of --repeat runs; cpu s: its user+sys CPU (all threads); noise: CPU\n"
        "share used by other processes meanwhile (high values make the times unreliable)"
    )
    for name in ("churn_engine_memory", "churn_engine_parquet"):
        t = results.get(name, {}).get("timings")
        if t:
            total = sum(t.values())
            parts = ", ".join(f"{k} {v:.3f}" for k, v in t.items())
            print(f"{name} stages (s): {parts} (sum {total:.3f})")


def evaluate_targets(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = []

    def best(ds: dict[str, Any], name: str) -> float | None:
        r = ds["results"].get(name, {})
        return r.get("best")

    def noisy(*reports: dict[str, Any]) -> bool:
        return any((r.get("others_cpu_share") or 0.0) > NOISY for r in reports)

    for ds in datasets:
        label = f"{ds['customers']:,} customers, {ds['ids']} ids"
        res = ds["results"]
        engine_mem = best(ds, "churn_engine_memory")
        engine_pq = best(ds, "churn_engine_parquet")
        for peer, goal, title in (
            ("duckdb_arrow", TARGET_VS_DUCKDB, "in memory: >= 8x faster than DuckDB"),
            ("polars_memory", TARGET_VS_POLARS, "in memory: >= 20x faster than Polars"),
        ):
            other = best(ds, peer)
            if engine_mem and other:
                value = other / engine_mem
                targets.append({
                    "dataset": label, "target": title, "value": value,
                    "shown": f"{value:.2f}x", "met": value >= goal,
                    "noisy": noisy(res[peer], res["churn_engine_memory"]),
                })  # fmt: skip
        floor = best(ds, "io_floor")
        if engine_pq and floor:
            value = engine_pq / floor
            targets.append({
                "dataset": label,
                "target": "from Parquet: <= 1.5x io_floor time",
                "value": value,
                "shown": f"{value:.2f}x",
                "met": value <= TARGET_VS_IO_FLOOR,
                "noisy": noisy(res["io_floor"], res["churn_engine_parquet"]),
            })  # fmt: skip
        mem = res.get("churn_engine_memory", {})
        if mem.get("input_bytes") and "above_base" in mem:
            value = mem["above_base"] / mem["input_bytes"]
            targets.append({
                "dataset": label,
                "target": "peak RSS above loaded input <= 1.5x input Arrow size",
                "value": value,
                "shown": f"{value:.2f}x ({mem['above_base'] / MB:.0f} MB over "
                         f"{mem['input_bytes'] / MB:.0f} MB)",
                "met": value <= TARGET_MEMORY,
                "noisy": False,
            })  # fmt: skip
    by_size: dict[int, dict[str, dict]] = {}
    for ds in datasets:
        by_size.setdefault(ds["customers"], {})[ds["ids"]] = ds
    for customers, pair in by_size.items():
        if "int" in pair and "string" in pair:
            for name in ("churn_engine_memory", "churn_engine_parquet"):
                t_int, t_str = best(pair["int"], name), best(pair["string"], name)
                if t_int and t_str:
                    value = t_str / t_int
                    targets.append({
                        "dataset": f"{customers:,} customers",
                        "target": f"string ids within 2x of int ids ({name})",
                        "value": value,
                        "shown": f"{value:.2f}x",
                        "met": value <= TARGET_STRING_IDS,
                        "noisy": noisy(pair["int"]["results"][name],
                                       pair["string"]["results"][name]),
                    })  # fmt: skip
    return targets


def engine_source_state() -> dict[str, Any]:
    """The git commit and which engine sources differ from it (others edit them)."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "src", "csrc", "setup.py").splitlines()
    diff = git("diff", "HEAD", "--", "src", "csrc", "setup.py")
    built = {}
    try:
        import churn_engine._kernel as kernel

        so = Path(kernel.__file__)
        built[so.name] = hashlib.sha1(so.read_bytes()).hexdigest()[:12]
    except (ImportError, OSError, TypeError):
        pass
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_files": dirty,
        "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None,
        "compiled": built,  # the extension actually imported (built in place or installed)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--customers",
        type=int,
        action="append",
        help="customers per generated log (repeatable; default 1000000)",
    )
    parser.add_argument(
        "--string-ids", action="store_true", help="also run logs with string customer ids"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per contender (in one process); the best is reported",
    )
    parser.add_argument("--out", type=Path, help="write machine-readable results (JSON)")
    parser.add_argument(
        "--skip-check", action="store_true", help="do not compare the results with churn-engine's"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma-separated; also available: {', '.join(OPTIONAL_CONTENDERS)}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="cache of generated Parquet logs (default benches/.data)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds per contender process"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each contender, wait up to SECONDS for other processes "
        "to use < 15%% of the CPUs",
    )
    parser.add_argument(
        "--max-noise",
        type=float,
        default=None,
        metavar="SHARE",
        help="rerun a contender whose noise (CPU share of other processes during its run) "
        "exceeds SHARE, e.g. 0.1; keep the quietest run",
    )
    parser.add_argument(
        "--attempts", type=int, default=3, help="most runs per contender with --max-noise"
    )
    parser.add_argument(
        "--no-int-ids",
        action="store_true",
        help="skip the int-id logs (with --string-ids: string ids only)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one extra churn-engine run"
    )
    # internal
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--make-data", help=argparse.SUPPRESS)
    parser.add_argument("--rules", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)  # fmt: skip

    if args.make_data:
        make_data(args.make_data, (args.customers or [1_000_000])[0], args.string_ids, args.seed)
        return 0
    if args.worker:
        worker(args.worker, args.source, args.result, args.repeat, args.profile, args.rules)
        return 0

    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; known: {list(CONTENDERS)}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    customers = args.customers or [1_000_000]
    ensure_engine_importable()
    source_before = engine_source_state()

    datasets = []
    for n in customers:
        kinds = ([] if args.no_int_ids else [False]) + ([True] if args.string_ids else [])
        for string_ids in kinds:
            datasets.append(run_dataset(n, string_ids, args))

    source_after = engine_source_state()
    if source_after != source_before:
        print("\nWARNING: the engine's sources changed during the run (git diff differs); "
              "the contenders may have run different engine builds")  # fmt: skip
    targets = evaluate_targets(datasets)
    print("\nTargets (issue: Performance: far ahead of DuckDB and Polars)")
    for t in targets:
        print(
            f"  [{'met' if t['met'] else 'NOT met':>7}] {t['dataset']}: {t['target']}: {t['shown']}"
            + ("  (unreliable: other processes were busy, see noise)" if t["noisy"] else "")
        )
    unequal = [
        f"{ds['customers']:,}/{ds['ids']}/{name}"
        for ds in datasets for name, r in ds["results"].items()
        if r.get("check") and not r["check"]["equal"]
    ]  # fmt: skip
    print(
        "  results equal to churn-engine's: "
        + ("all" if not unequal else "NO: " + ", ".join(unequal))
    )

    if args.out:
        import duckdb
        import numpy
        import polars
        import pyarrow

        payload = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "processor": platform.processor(),
                "python": platform.python_version(),
            },
            "versions": {
                "duckdb": duckdb.__version__,
                "polars": polars.__version__,
                "pyarrow": pyarrow.__version__,
                "numpy": numpy.__version__,
            },
            "repeat": args.repeat,
            "engine_source": source_before,
            "engine_source_changed_during_run": source_after != source_before,
            "datasets": datasets,
            "targets": targets,
        }
        args.out.write_text(json.dumps(payload, indent=2, default=str))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
