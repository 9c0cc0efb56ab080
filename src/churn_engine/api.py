"""The public entry points: :func:`score` and :class:`Scorer` (orchestration only)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl

from . import _columns, _kernel
from ._occasions import group_prepared
from ._prebound import prepare_source
from ._prepare import Prepared, decode_string_keys, parse_as_of
from ._schema import output_schema
from ._stats import ScoreResult, ScoreStats
from ._threads import kernel_threads
from .config import BUYER_TYPES, RfmCuts, ScoreConfig
from .errors import ModelError

__all__ = ["Scorer", "score"]

AsOf = dt.date | dt.datetime | str | None
Progress = Callable[[str], None]
_EPOCH = dt.date(1970, 1, 1)


class Scorer:
    """Scores transaction logs with one validated :class:`ScoreConfig`.

    Parameters
    ----------
    config : ScoreConfig, optional
        The options; alternatively pass them as keywords.

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({"customer_id": [1, 1, 2],
    ...                     "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 31), dt.date(2024, 1, 5)],
    ...                     "amount": [10.0, 20.0, 5.0]})
    >>> result = churn_engine.Scorer().run(log, as_of="2024-03-01")
    >>> result.customers.select("customer_id", "status", "status_reason").rows()
    [(1, 'active', 'cycles<1.5'), (2, 'at_risk', 'one_time_recency>=1.5x_prior')]
    """

    def __init__(self, config: ScoreConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass either a ScoreConfig or keyword options, not both")
        self.config = config if config is not None else ScoreConfig(**options)

    def run(
        self, data: Any, as_of: AsOf = None, *, progress: Progress | None = None
    ) -> ScoreResult:
        """Score every customer of ``data``.

        Parameters
        ----------
        data : path, polars/pyarrow/pandas frame, or Arrow C stream
            The transaction log (DESIGN.md section 3).
        as_of : date, datetime or ISO string, optional
            Score as of this point; default: the last day in the data.
        progress : callable, optional
            Called with the name of each stage as it starts.
        """
        config = self.config
        timings: dict[str, float] = {}

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            if progress is not None:
                progress(name)
            start = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

        with stage("read"):
            prepared = prepare_source(data, config, parse_as_of(as_of))

        if prepared.n_rows == 0:
            return self._result(prepared, _empty(prepared, config), None, 0, timings)

        threads = kernel_threads(config, prepared.n_rows)
        with stage("group"):
            grouped = group_prepared(prepared, threads, packed=True)
            prepared.drop_row_arrays()  # copied into the kernel's rows
        with stage("statistics"):
            # the rows are not needed after the statistics: given back as they are read
            groups = _kernel.group_statistics(
                grouped, prepared.integer_amounts, threads, consume=True
            )
            no_purchase = grouped.no_purchase
            del grouped
        if len(groups["n_orders"]) == 0:
            return self._result(prepared, _empty(prepared, config), None, no_purchase, timings)
        as_of_day = prepared.as_of_day
        assert as_of_day is not None  # set whenever there are accepted rows
        with stage("status"):
            categories = _category_values(prepared)
            priors = _kernel.category_priors(
                groups["cat"], groups["n_orders"], groups["interval_mean_days"],
                np.array([_nan_if_none(config.fixed_prior_for(c)) for c in categories]),
                threads,
            )  # fmt: skip
            # a horizon beyond int32 days never fires: clamp it for the kernel
            horizons = np.array(
                [min(config.horizon_for(c), 2**31 - 1) for c in categories], dtype=np.int32
            )
            cycles = _kernel.cycle_status(
                groups["cat"], groups["n_orders"], groups["interval_mean_days"],
                groups["last_day"], priors, horizons, as_of_day, config.prior_weight,
                config.at_risk_cycles, config.churn_cycles, threads,
            )  # fmt: skip
        with stage("rfm"):
            cuts = config.cuts or _compute_cuts(groups, cycles, config.rfm_bins, threads)
            scores = _kernel.rfm_scores(
                cycles["recency_days"], groups["n_orders"], groups["monetary_total"],
                np.asarray(cuts.recency), np.asarray(cuts.frequency), np.asarray(cuts.monetary),
                threads,
            )  # fmt: skip
        with stage("assemble"):
            customers = _assemble(prepared, config, groups, cycles, scores, categories, threads)
        return self._result(prepared, customers, cuts, no_purchase, timings)

    def _result(
        self,
        prepared: Prepared,
        customers: pl.DataFrame,
        cuts: RfmCuts | None,
        no_purchase: int,
        timings: dict[str, float],
    ) -> ScoreResult:
        stats = ScoreStats(
            rows_read=prepared.rows_read,
            rows_accepted=prepared.n_rows,
            rows_rejected=prepared.rows_rejected,
            rows_after_as_of=prepared.rows_after_as_of,
            rejected_by_reason=dict(prepared.rejected_by_reason),
            customers=customers.height,
            customers_without_purchase=no_purchase,
            as_of=prepared.as_of,
            as_of_day=(
                None
                if prepared.as_of_day is None
                else _EPOCH + dt.timedelta(days=prepared.as_of_day)
            ),
            timings=timings,
        )
        rejects = prepared.rejects
        if self.config.on_error == "quarantine" and rejects is None:
            rejects = pl.DataFrame(
                schema={"row": pl.Int64, **{c: pl.Null for c in _input_columns(self.config)},
                        "reason": pl.String}
            )  # fmt: skip
        return ScoreResult(customers=customers, cuts=cuts, stats=stats, rejects=rejects)


def score(data: Any, *, as_of: AsOf = None, **options: Any) -> pl.DataFrame:
    """Score every customer of ``data`` (DESIGN.md section 4).

    Returns one row per customer (per customer x category with
    ``category_col``) in ascending ``customer_id`` order. Options are those of
    :class:`ScoreConfig`; use :class:`Scorer` for cut points, stats and rejects.
    With ``actions=True`` (or a replacement table) the columns ``action`` and
    ``action_reason`` follow ``segment`` (docs/actions.md).
    """
    return Scorer(ScoreConfig(**options)).run(data, as_of=as_of).customers


# -- helpers -----------------------------------------------------------------


def _input_columns(config: ScoreConfig) -> list[str]:
    names = [config.customer_col, config.ts_col, config.amount_col]
    if config.category_col is not None:
        names.append(config.category_col)
    return names


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def _category_values(prepared: Prepared) -> list[Any]:
    if prepared.categories is None:
        return [None]
    return prepared.categories.to_list()


def _compute_cuts(
    groups: dict[str, np.ndarray], cycles: dict[str, np.ndarray], bins: int, threads: int
) -> RfmCuts:
    """One radix selection per column, each on all ``threads`` threads; R on
    -recency_days."""
    recency = _kernel.quantile_cuts(cycles["recency_days"], bins, threads, negate=True)
    frequency = _kernel.quantile_cuts(groups["n_orders"], bins, threads)
    monetary = _kernel.quantile_cuts(groups["monetary_total"], bins, threads)
    return RfmCuts(tuple(recency), tuple(frequency), tuple(monetary))


def _customer_ids(prepared: Prepared, keys: np.ndarray, name: str, threads: int = 0) -> pl.Series:
    """Output ids from the kernel's customer keys (``threads``: for decoding
    string keys; 0: all cores)."""
    if prepared.id_key_plan is not None:
        strings = decode_string_keys(keys, prepared.id_key_plan, threads)
        return pl.Series(name, strings, dtype=pl.String).cast(prepared.id_dtype)
    if prepared.id_kind == "string":
        assert prepared.id_dictionary is not None
        return prepared.id_dictionary.gather(keys).alias(name).cast(prepared.id_dtype)
    ids = keys
    if prepared.id_kind == "uint64":
        return pl.Series(name, (ids ^ np.int64(-(2**63))).view(np.uint64))
    return pl.Series(name, ids).cast(prepared.id_dtype)


def _output_ids(prepared: Prepared, config: ScoreConfig, keys: np.ndarray) -> pl.Series:
    """The customer column of a score: :func:`_customer_ids`, without the gather
    when it is the identity (string ids, one group per id, every id with a
    purchase: the groups' keys are then the ranks 0, 1, ..., in order)."""
    name = config.customer_col
    dictionary = prepared.id_dictionary
    if (
        dictionary is not None
        and config.category_col is None
        and len(keys) == len(dictionary)
        and (len(keys) == 0 or keys[-1] == len(keys) - 1)
    ):
        return dictionary.alias(name).cast(prepared.id_dtype)
    return _customer_ids(prepared, keys, name, 0 if config.threads is None else config.threads)


def _assemble(
    prepared: Prepared,
    config: ScoreConfig,
    groups: dict[str, np.ndarray],
    cycles: dict[str, np.ndarray],
    scores: tuple[np.ndarray, np.ndarray, np.ndarray],
    categories: list[Any],
    threads: int,
) -> pl.DataFrame:
    """The output frame, every column made in its output dtype.

    Numeric columns alias the kernel's arrays; string columns are Arrow views
    written from the codes (:mod:`._columns`). Arrays the output does not alias
    are popped from ``groups`` and ``cycles`` and freed once used;
    ``expected_next_day`` is taken over (its null marker becomes 0 in place).
    """
    as_of_day = prepared.as_of_day
    assert as_of_day is not None
    columns: dict[str, pl.Series] = {
        config.customer_col: _output_ids(prepared, config, groups.pop("key"))
    }
    cat = groups.pop("cat")
    if config.category_col is not None:
        assert prepared.categories is not None and prepared.cat_dtype is not None
        columns[config.category_col] = prepared.categories.gather(cat).cast(prepared.cat_dtype)
    del cat
    n_orders = groups["n_orders"]
    money = groups["monetary_total"]

    def floats(name: str) -> pl.Series:
        values = groups[name] if name in groups else cycles[name]
        return pl.Series(name, values, nan_to_null=True)

    def dates(name: str, days: np.ndarray) -> pl.Series:
        return pl.Series(name, days, dtype=pl.Int32).cast(pl.Date)  # same buffer

    columns.update(
        n_orders=pl.Series("n_orders", n_orders),
        n_rows=pl.Series("n_rows", groups["n_rows"]),
        first_purchase=dates("first_purchase", groups["first_day"]),
        last_purchase=dates("last_purchase", groups["last_day"]),
        tenure_days=pl.Series(
            "tenure_days", np.subtract(as_of_day, groups["first_day"], dtype=np.int64)
        ),
        recency_days=pl.Series("recency_days", cycles["recency_days"]),
        monetary_total=pl.Series("monetary_total", money),
        refund_total=pl.Series("refund_total", groups["refund_total"]),
        monetary_mean=pl.Series("monetary_mean", money / n_orders),
        interval_mean_days=floats("interval_mean_days"),
        interval_std_days=floats("interval_std_days"),
        interval_median_days=floats("interval_median_days"),
        cycle_days=floats("cycle_days"),
        cycles_since_last=floats("cycles_since_last"),
        expected_next_purchase=_columns.date_column(
            "expected_next_purchase", cycles.pop("expected_next_day"), _kernel.NULL_DAY, threads
        ),
        days_overdue=floats("days_overdue"),
        r_score=pl.Series("r_score", scores[0]),
        f_score=pl.Series("f_score", scores[1]),
        m_score=pl.Series("m_score", scores[2]),
    )
    columns.update(_string_columns(config, n_orders, cycles, scores, categories, threads))
    if config.model == "bgnbd":
        columns.update(_bgnbd_columns(groups, as_of_day, config))
    schema = _schema_for(prepared, config)
    frame = pl.DataFrame({name: columns.pop(name) for name in schema})
    # every column is made in its dtype: no cast, and a mismatch is a bug
    if columns or list(frame.schema.items()) != list(schema.items()):
        raise AssertionError(f"assembled {dict(frame.schema)} and {list(columns)}, not {schema}")
    return frame


def _string_columns(
    config: ScoreConfig,
    n_orders: np.ndarray,
    cycles: dict[str, np.ndarray],
    scores: tuple[np.ndarray, np.ndarray, np.ndarray],
    categories: list[Any],
    threads: int,
) -> dict[str, pl.Series]:
    """buyer_type, status, status_reason, rfm_code, segment (and the action
    columns): each a table of strings indexed by codes, written as views in
    one parallel pass (``status`` and ``reason`` are popped from ``cycles``)."""
    status_reasons = [config.reason_codes(config.horizon_days)[k] for k in _kernel.REASON_KEYS]
    status_reasons += [config.reason_codes(config.horizon_for(c))["horizon"] for c in categories]
    bins = config.rfm_bins
    codes = [f"{i}{j}{k}" for i in range(1, bins + 1) for j in range(1, bins + 1)
             for k in range(1, bins + 1)]  # fmt: skip
    segment_map = config.effective_segment_map()
    segment_of = {c: name for name, cs in (segment_map or {}).items() for c in cs}
    # digits of the table index (values, low, high, clamp), first most significant:
    # one order is one_time, two or more repeat
    buyer = (n_orders, 1, 1 + len(BUYER_TYPES), True)
    status = (cycles.pop("status"), 0, len(_kernel.STATUS_NAMES), False)
    reason = (cycles.pop("reason"), 0, len(status_reasons), False)
    rfm = [(score, 1, bins + 1, False) for score in scores]  # the code's three digits
    specs: list[_columns.StringSpec] = [
        ("buyer_type", list(BUYER_TYPES), [buyer]),
        ("status", list(_kernel.STATUS_NAMES), [status]),
        ("status_reason", list(status_reasons), [reason]),
        ("rfm_code", list(codes), rfm),
        ("segment", [segment_of.get(c) for c in codes], rfm),
    ]
    table = config.action_table()
    if table is not None:
        # the rule is chosen once per (buyer type, status, RFM code) combination
        keys: list[str | None] = []
        reasons: list[str | None] = []
        for buyer_type in BUYER_TYPES:
            for state in _kernel.STATUS_NAMES:
                for code in codes:
                    action, why = table.choose(buyer_type, state, segment_of.get(code))
                    keys.append(action.key)
                    reasons.append(why)
        specs.append(("action", keys, [buyer, status, *rfm]))
        specs.append(("action_reason", reasons, [buyer, status, *rfm]))
    return {s.name: s for s in _columns.string_columns(specs, threads)}


def _bgnbd_columns(
    groups: dict[str, np.ndarray], as_of_day: int, config: ScoreConfig
) -> dict[str, pl.Series]:
    """BG/NBD ``p_alive`` and ``expected_purchases`` from daily summaries.

    With days as periods, lifetimes' summary is the score's own numbers:
    frequency = n_orders - 1, recency = last - first day, T = as_of - first day.
    Rows with T = 0 (first purchase on the as_of day) carry no information for
    the fit; they are alive and expect what a new customer expects.
    """
    from .models import BetaGeo  # needs SciPy: imported only when asked for

    first = groups["first_day"].astype(np.float64)
    frequency = groups["n_orders"].astype(np.float64) - 1.0
    recency = groups["last_day"].astype(np.float64) - first
    age = as_of_day - first
    seen = age > 0
    horizon_days = config.model_horizon_days
    try:
        model = BetaGeo(penalizer_coef=config.model_penalizer).fit(
            frequency[seen], recency[seen], age[seen]
        )
    except ModelError as exc:
        hint = "model_penalizer (e.g. 0.001)"
        raise ModelError(str(exc).replace("penalizer_coef > 0", hint)) from None
    p_alive = np.ones(len(age))
    expected = np.full(len(age), np.asarray(model.expected_purchases_new(horizon_days)).item())
    p_alive[seen] = model.p_alive(frequency[seen], recency[seen], age[seen])
    expected[seen] = model.expected_purchases(
        horizon_days, frequency[seen], recency[seen], age[seen]
    )
    return {
        "p_alive": pl.Series("p_alive", p_alive),
        "expected_purchases": pl.Series("expected_purchases", expected),
    }


def _schema_for(prepared: Prepared, config: ScoreConfig) -> dict[str, pl.DataType]:
    return output_schema(
        config.customer_col,
        prepared.id_dtype,
        config.category_col,
        prepared.cat_dtype,
        prepared.integer_amounts,
        actions=config.action_table() is not None,
        model=config.model is not None,
    )


def _empty(prepared: Prepared, config: ScoreConfig) -> pl.DataFrame:
    if config.category_col is not None and prepared.cat_dtype is None:
        prepared.cat_dtype = pl.String()
    return pl.DataFrame(schema=_schema_for(prepared, config))
