"""Hypothesis strategies for the property suites: transaction logs, options, ``as_of``.

Logs are drawn in two ways:

- :func:`logs` draws the *shape* of a log with hypothesis (how many customers,
  which id, timestamp and amount kinds, how many rows per customer, how many
  refunds, how wide the day range is, whether a big customer or a category
  column is present) and fills in the bulk values with NumPy from a drawn
  seed. This keeps examples with hundreds of customers and thousands of rows
  cheap to generate while every structural choice still shrinks.
- :func:`small_logs` draws every row with hypothesis, for small logs that
  shrink to minimal counterexamples.

Both produce clean data (no nulls, NaN or infinities): validation is tested
elsewhere. Day ranges are narrow on purpose, so same-day rows and heavy ties
in R, F and M are the norm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

from churn_engine import ScoreConfig

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: ids whose UTF-8 byte order is easy to get wrong: prefixes, case, non-ASCII,
#: combining characters, astral-plane characters, NUL and DEL.
TRICKY_STRINGS: tuple[str, ...] = (
    "", "a", "ab", "b", "aa", "a\x00", "A", "Z", "z", "~", "\x7f", "é", "e\u0301", "ä",
    "ß", "ÿ", "\u0100", "中", "中文", "😀", "ab😀", "a😀", "\uffff", " ", "a b",
)  # fmt: skip
#: characters of random string ids: short strings over it share many prefixes
ID_ALPHABET: tuple[str, ...] = ("a", "b", "A", "0", "é", "中", "😀", "\x00")

#: scoring / data time zones: DST in both hemispheres, half-hour DST, odd offsets
ZONES: tuple[str, ...] = (
    "UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
    "Pacific/Chatham", "America/St_Johns",
)  # fmt: skip
#: first days of generated logs: plain, around DST changes, around the epoch
#: (negative day numbers), around a leap day
BASE_DATES: tuple[dt.date, ...] = (
    dt.date(2024, 1, 1), dt.date(2024, 3, 8), dt.date(2024, 3, 29), dt.date(2024, 10, 25),
    dt.date(2024, 10, 31), dt.date(1969, 12, 20), dt.date(2000, 2, 25), dt.date(2023, 4, 5),
)  # fmt: skip

ID_KINDS = ("int64", "int64_sparse", "int32", "uint64", "string", "string_tricky")
TS_KINDS = ("date", "datetime_naive", "datetime_tz")
AMOUNT_KINDS = ("float", "float_int_valued", "float32", "int64", "int32")
_EPOCH = dt.date(1970, 1, 1)
_US_PER_DAY = 86_400_000_000


@dataclasses.dataclass
class Log:
    """A generated log and what strategies for options and ``as_of`` need to know."""

    frame: pl.DataFrame
    id_kind: str
    ts_kind: str
    amount_kind: str
    data_tz: str | None  # time zone of a tz-aware ts column
    category: bool
    first_day: dt.date  # first and last day of the data (UTC/naive calendar)
    last_day: dt.date

    @property
    def categories(self) -> list[Any]:
        if not self.category:
            return []
        return self.frame.get_column("category").unique().sort().to_list()

    def __repr__(self) -> str:  # hypothesis prints failing examples with this
        with pl.Config(tbl_rows=40, tbl_cols=-1, fmt_str_lengths=40):
            return (
                f"Log(id_kind={self.id_kind!r}, ts_kind={self.ts_kind!r}, "
                f"amount_kind={self.amount_kind!r}, data_tz={self.data_tz!r}, "
                f"category={self.category}, days={self.first_day}..{self.last_day}, "
                f"rows={self.frame.height},\nframe={self.frame!r})\n"
                f"# reproduce: pl.DataFrame({self.frame.to_dict(as_series=False)!r}, "
                f"schema={dict(self.frame.schema)!r})"
            )


# ---------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    """n distinct Python ints in [low, high] (high inclusive, may exceed int64)."""
    out: set[int] = set()
    span = high - low + 1
    while len(out) < n:
        # 62 random bits at a time are enough to cover any span up to 2**64
        for _ in range(n - len(out)):
            bits = int(rng.integers(0, 2**62)) << 2 | int(rng.integers(0, 4))
            out.add(low + bits % span)
    return sorted(out)


def _random_strings(rng: np.random.Generator, n: int) -> list[str]:
    out: set[str] = set()
    max_len = 1
    while len(out) < n:
        for _ in range(2 * (n - len(out)) + 4):
            length = int(rng.integers(0, max_len + 1))
            out.add("".join(ID_ALPHABET[i] for i in rng.integers(0, len(ID_ALPHABET), length)))
        max_len += 1
    values = sorted(out)
    picked = rng.choice(len(values), size=n, replace=False)
    return [values[i] for i in picked]


def _ids(rng: np.random.Generator, kind: str, n: int, extremes: bool) -> pl.Series:
    """n distinct customer ids of the given kind, in random order."""
    if kind == "int64":
        start = int(rng.integers(-1000, 1000))
        values: list[Any] = list(range(start, start + n))
        dtype: pl.DataType = pl.Int64()
    elif kind == "int64_sparse":
        values = _unique_ints(rng, n, INT64_MIN, INT64_MAX)
        dtype = pl.Int64()
        edges = [INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1]
    elif kind == "int32":
        values = _unique_ints(rng, n, INT32_MIN, INT32_MAX)
        dtype = pl.Int32()
        edges = [INT32_MIN, INT32_MAX, 0, -1]
    elif kind == "uint64":
        values = _unique_ints(rng, n, 0, UINT64_MAX)
        dtype = pl.UInt64()
        edges = [0, 2**63 - 1, 2**63, UINT64_MAX, 1]
    elif kind == "string":
        values = _random_strings(rng, n)
        dtype = pl.String()
    elif kind == "string_tricky":
        pool = list(TRICKY_STRINGS)
        if n > len(pool):
            extra = [s for s in _random_strings(rng, 2 * n) if s not in TRICKY_STRINGS]
            pool += extra[: n - len(pool)]
        values = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
        dtype = pl.String()
    else:  # pragma: no cover - a typo in a test
        raise ValueError(kind)
    if extremes and kind in ("int64_sparse", "int32", "uint64"):
        chosen = set(values)
        for edge in edges:  # put the edge values in, replacing random ones
            if edge not in chosen and len(chosen) > 0:
                chosen.discard(values[int(rng.integers(0, len(values)))])
                chosen.add(edge)
        values = sorted(chosen)
        while len(values) < n:  # a discarded value may have been an edge itself
            values = sorted(set(values) | set(_unique_ints(rng, n - len(values), 0, 10**6)))
        values = values[:n]
    order = rng.permutation(len(values))
    return pl.Series("customer_id", [values[i] for i in order], dtype=dtype)


def _amounts(rng: np.random.Generator, kind: str, refund: np.ndarray, style: str) -> pl.Series:
    n = len(refund)
    if style == "pool":  # few distinct values: heavy ties in M
        magnitude = rng.choice(np.array([0, 1, 5, 10, 100, 999]), size=n).astype(np.int64)
    elif style == "small":
        magnitude = rng.integers(0, 20, size=n)
    else:
        magnitude = rng.integers(0, 100_000, size=n)
    signed = np.where(refund, -np.maximum(magnitude, 1), magnitude)
    if kind in ("int64", "int32"):
        return pl.Series("amount", signed, dtype=pl.Int64 if kind == "int64" else pl.Int32)
    values = signed.astype(np.float64)
    if kind == "float" and style == "wide":
        values = values / 100.0  # cents: not exactly representable
    if kind == "float" and n and rng.random() < 0.2:
        values[rng.integers(0, n)] = -0.0  # a negative zero is a purchase of 0
    if kind == "float32":
        return pl.Series("amount", (values / 4.0).astype(np.float32), dtype=pl.Float32)
    return pl.Series("amount", values, dtype=pl.Float64)


def _timestamps(
    rng: np.random.Generator, kind: str, days: np.ndarray, unit: str, data_tz: str | None,
    time_style: str,
) -> pl.Series:  # fmt: skip
    day_numbers = pl.Series("day", days, dtype=pl.Int32)
    if kind == "date":
        return day_numbers.cast(pl.Date).alias("ts")
    n = len(days)
    if time_style == "midnight":
        micros = np.zeros(n, dtype=np.int64)
    elif time_style == "few":  # ties within a day
        micros = rng.choice(np.array([0, 12 * 3600, 86_399]), size=n) * 1_000_000
    else:
        micros = rng.integers(0, _US_PER_DAY, size=n)
    stamps = days.astype(np.int64) * _US_PER_DAY + micros
    if unit == "ns":
        values = pl.Series("ts", stamps * 1000 + rng.integers(0, 1000, size=n))
    elif unit == "ms":
        values = pl.Series("ts", stamps // 1000)
    else:
        values = pl.Series("ts", stamps)
    ts = values.cast(pl.Datetime(unit))  # type: ignore[arg-type]
    if data_tz is not None:
        # the generated numbers are UTC instants, shown in the data's zone
        ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(data_tz)
    return ts


@st.composite
def logs(
    draw: st.DrawFn,
    *,
    max_customers: int = 200,
    id_kinds: tuple[str, ...] = ID_KINDS,
    ts_kinds: tuple[str, ...] = TS_KINDS,
    amount_kinds: tuple[str, ...] = AMOUNT_KINDS,
    category: bool | None = None,
    big_customer: bool = True,
    refunds: bool = True,
) -> Log:
    """A transaction log: hypothesis draws its shape, NumPy its bulk values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    n_customers = draw(
        st.one_of(
            st.integers(1, 4),
            st.sampled_from(sorted({min(k, max_customers) for k in (12, 40, 120, max_customers)})),
            st.integers(1, max(1, max_customers)),
        ),
        label="n_customers",
    )
    id_kind = draw(st.sampled_from(id_kinds), label="id_kind")
    ids = _ids(rng, id_kind, n_customers, extremes=draw(st.booleans(), label="extreme_ids"))

    # rows per customer: geometric, plus (sometimes) one customer with many rows
    p_more = draw(st.sampled_from([0.3, 0.6, 0.1, 1.0]), label="p_stop")
    counts = np.minimum(rng.geometric(p_more, size=n_customers), 60)
    if big_customer and draw(st.integers(0, 9), label="big") == 0:
        counts[int(rng.integers(0, n_customers))] = int(rng.integers(200, 3000))
    customer = np.repeat(np.arange(n_customers), counts)
    n_rows = len(customer)

    # days: narrow ranges so that ties are the norm; each customer may buy on
    # only a couple of distinct days (same-day rows)
    base = draw(st.sampled_from(BASE_DATES), label="base_date")
    span = draw(st.sampled_from([1, 3, 10, 40, 150, 800]), label="day_span")
    first = (base - _EPOCH).days
    own_span = rng.choice(np.array([1, 2, 5, span]), size=n_customers)
    own_start = rng.integers(0, span, size=n_customers)
    offsets = own_start[customer] + rng.integers(0, 1 << 30, size=n_rows) % own_span[customer]
    days = (first + np.minimum(offsets, span - 1)).astype(np.int32)

    # refunds: some rows, and some customers (or customer x category) only refunds
    p_refund = draw(st.sampled_from([0.0, 0.05, 0.3]), label="p_refund") if refunds else 0.0
    all_refund = rng.random(n_customers) < (
        draw(st.sampled_from([0.0, 0.1]), label="p_all_refund") if refunds else 0.0
    )
    refund = (rng.random(n_rows) < p_refund) | all_refund[customer]

    amount_kind = draw(st.sampled_from(amount_kinds), label="amount_kind")
    style = draw(st.sampled_from(["pool", "small", "wide"]), label="amount_style")
    amounts = _amounts(rng, amount_kind, refund, style)

    ts_kind = draw(st.sampled_from(ts_kinds), label="ts_kind")
    unit = draw(st.sampled_from(["us", "ms", "ns"]), label="ts_unit")
    data_tz = draw(st.sampled_from(ZONES), label="data_tz") if ts_kind == "datetime_tz" else None
    time_style = draw(st.sampled_from(["midnight", "few", "any"]), label="time_style")
    ts = _timestamps(rng, ts_kind, days, unit, data_tz, time_style)

    columns = [ids.gather(customer), ts, amounts]
    with_category = draw(st.booleans(), label="category") if category is None else category
    if with_category:
        if draw(st.booleans(), label="int_category"):
            pool = pl.Series("category", [3, -1, 10], dtype=pl.Int64)
        else:
            pool = pl.Series("category", ["x", "é", "", "xy"], dtype=pl.String)
        n_cats = draw(st.integers(1, len(pool)), label="n_categories")
        own = rng.integers(0, n_cats, size=n_customers)  # main category of a customer
        other = rng.random(n_rows) < 0.3
        cat_index = np.where(other, rng.integers(0, n_cats, size=n_rows), own[customer])
        columns.append(pool.gather(cat_index))

    frame = pl.DataFrame(columns)
    # rows in a random order (a log is not necessarily sorted by anything)
    if draw(st.booleans(), label="shuffled"):
        frame = frame[rng.permutation(n_rows).tolist()]
    else:
        frame = frame.sort("ts", maintain_order=True)
    return Log(
        frame=frame,
        id_kind=id_kind,
        ts_kind=ts_kind,
        amount_kind=amount_kind,
        data_tz=data_tz,
        category=with_category,
        first_day=base,
        last_day=base + dt.timedelta(days=span - 1),
    )


@st.composite
def small_logs(draw: st.DrawFn, *, max_rows: int = 25) -> Log:
    """A small log with every row drawn by hypothesis (shrinks well)."""
    id_kind = draw(st.sampled_from(["int64", "string"]))
    if id_kind == "int64":
        id_values = st.one_of(
            st.integers(-3, 3),
            st.sampled_from([INT64_MIN, INT64_MAX]),
            st.integers(INT64_MIN, INT64_MAX),
        )
    else:
        id_values = st.one_of(st.sampled_from(TRICKY_STRINGS), st.text(max_size=3))
    integer_amounts = draw(st.booleans())
    amount_values = (
        st.integers(-50, 50)
        if integer_amounts
        else st.one_of(
            st.integers(-50, 50).map(float),
            st.floats(-1000, 1000, allow_nan=False, allow_infinity=False),
        )
    )
    base = draw(st.sampled_from(BASE_DATES))
    span = draw(st.integers(1, 30))
    rows = draw(
        st.lists(
            st.tuples(id_values, st.integers(0, span - 1), amount_values),
            min_size=1,
            max_size=max_rows,
        )
    )
    ids, offsets, amounts = zip(*rows, strict=True)
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(ids, dtype=pl.Int64 if id_kind == "int64" else pl.String),
            "ts": [base + dt.timedelta(days=d) for d in offsets],
            "amount": pl.Series(amounts, dtype=pl.Int64 if integer_amounts else pl.Float64),
        }
    )
    return Log(
        frame=frame,
        id_kind=id_kind,
        ts_kind="date",
        amount_kind="int64" if integer_amounts else "float",
        data_tz=None,
        category=False,
        first_day=base,
        last_day=base + dt.timedelta(days=span - 1),
    )


# ---------------------------------------------------------------------------
# options and as_of
# ---------------------------------------------------------------------------


def _by_r_score_map(bins: int) -> dict[str, list[str]]:
    """A valid segment map for any number of bins: one segment per R score."""
    levels = range(1, bins + 1)
    return {f"R{r}": [f"{r}{f}{m}" for f in levels for m in levels] for r in levels}


@st.composite
def configs(draw: st.DrawFn, log: Log, *, threads: int | bool | None = False) -> ScoreConfig:
    """Options for scoring ``log`` (``threads=False``: draw it too)."""
    bins = draw(st.one_of(st.just(5), st.integers(2, 9)), label="rfm_bins")
    at_risk = draw(
        st.one_of(st.sampled_from([1.5, 1.0, 0.5, 2.0]), st.floats(0.1, 5.0)), label="at_risk"
    )
    churn = at_risk + draw(
        st.one_of(st.sampled_from([0.5, 0.0, 1.0]), st.floats(0.0, 3.0)), label="churn_extra"
    )
    options: dict[str, Any] = {
        "rfm_bins": bins,
        "at_risk_cycles": at_risk,
        "churn_cycles": churn,
        "horizon_days": draw(st.one_of(st.just(365), st.integers(1, 400)), label="horizon_days"),
        "prior_weight": draw(
            st.one_of(st.sampled_from([1.0, 0.0, 0.5, 3.0]), st.floats(0.0, 20.0)),
            label="prior_weight",
        ),
        "prior_days": draw(
            st.one_of(st.none(), st.sampled_from([7.0, 30.0]), st.floats(0.25, 200.0)),
            label="prior_days",
        ),
        "tz": draw(st.sampled_from(ZONES), label="tz"),
    }
    if bins != 5 and draw(st.booleans(), label="segment_map"):
        options["segment_map"] = _by_r_score_map(bins)
    if log.category:
        options["category_col"] = "category"
        categories = log.categories
        if categories and draw(st.booleans(), label="category_horizons"):
            keys = draw(st.lists(st.sampled_from(categories), unique=True), label="horizon_keys")
            options["category_horizon_days"] = {k: draw(st.integers(1, 60)) for k in keys}
        if categories and draw(st.booleans(), label="category_priors"):
            keys = draw(st.lists(st.sampled_from(categories), unique=True), label="prior_keys")
            options["category_prior_days"] = {k: draw(st.floats(0.5, 50.0)) for k in keys}
    options["threads"] = (
        draw(st.sampled_from([None, 1, 2]), label="threads") if threads is False else threads
    )
    return ScoreConfig(**options)


def dst_sensitive(wall: dt.datetime, tz: str) -> bool:
    """True when the naive wall time ``wall`` is ambiguous or missing in ``tz``."""
    zone = zoneinfo.ZoneInfo(tz)
    early = wall.replace(tzinfo=zone, fold=0)
    late = wall.replace(tzinfo=zone, fold=1)
    return early.utcoffset() != late.utcoffset()


@st.composite
def as_ofs(draw: st.DrawFn, log: Log, tz: str) -> dt.date | dt.datetime | None:
    """``None``, a date or a datetime (naive or aware) inside, before or after the data.

    With a tz-aware ts column, wall times in ``tz`` that a DST change makes
    ambiguous or missing are avoided: there the engine compares wall clocks
    while the contract compares instants (a known engine bug, tested on its
    own in test_engine_vs_reference.py).
    """
    kind = draw(st.sampled_from(["none", "date", "datetime", "datetime_aware"]), label="as_of")
    if kind == "none":
        return None
    span = (log.last_day - log.first_day).days
    # mostly inside the data (late more often than early), sometimes after it,
    # now and then before it
    where = draw(
        st.sampled_from(["last", "late", "middle", "any", "late", "after", "first", "before"]),
        label="as_of_day",
    )
    offset = {
        "last": span,
        "late": span - span // 10,
        "middle": span // 2,
        "after": span + 3,
        "first": 0,
        "before": -30,
    }.get(where)
    if offset is None:
        offset = draw(st.integers(-2, span + 2), label="as_of_offset")
    day = log.first_day + dt.timedelta(days=offset)
    if kind == "date":
        return day
    seconds = draw(
        st.one_of(st.sampled_from([0, 86_399, 43_200]), st.integers(0, 86_399)),
        label="as_of_seconds",
    )
    micros = draw(st.one_of(st.just(0), st.integers(0, 999_999)), label="as_of_micros")
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds, microseconds=micros)
    if log.data_tz is not None:
        for _ in range(3):
            if not dst_sensitive(wall, tz):
                break
            wall += dt.timedelta(hours=3)
    if kind == "datetime":
        return wall  # naive: wall-clock time in tz
    aware = wall.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    zone = draw(st.sampled_from(ZONES), label="as_of_zone")
    return aware.astimezone(zoneinfo.ZoneInfo(zone))


@dataclasses.dataclass
class Case:
    """A log, the options to score it with and the ``as_of`` point."""

    log: Log
    config: ScoreConfig
    as_of: dt.date | dt.datetime | None


@st.composite
def cases(
    draw: st.DrawFn,
    log_strategy: st.SearchStrategy[Log] | None = None,
    *,
    threads: int | bool | None = False,
) -> Case:
    log = draw(log_strategy if log_strategy is not None else logs())
    config = draw(configs(log, threads=threads))
    return Case(log=log, config=config, as_of=draw(as_ofs(log, config.tz)))
