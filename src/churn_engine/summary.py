"""The lifetimes-compatible summary: ``frequency, recency, T, monetary_value`` per customer.

These are the inputs of the BG/NBD, Pareto/NBD and Gamma-Gamma models, with
exactly the definitions of ``lifetimes.utils.summary_data_from_transaction_data``
(docs/lifetimes.md). The log goes through the score's pipeline (validation,
rejects, the kernel's grouping into purchase occasions); occasion days become
period numbers with vectorised NumPy, and a small ``nogil`` kernel
(``_summary.pyx``) walks each customer's periods once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any, Literal

import numpy as np
import polars as pl

from ._io import open_source
from ._occasions import collect_occasions
from ._prepare import MAX_DAY, _check_tz, _local_naive, parse_as_of
from ._summary import period_summary
from .config import ScoreConfig
from .errors import ConfigError

__all__ = ["FREQUENCIES", "lifetimes_summary"]

AsOf = dt.date | dt.datetime | str | None

#: accepted ``freq`` values -> the period they name (pandas Period aliases)
FREQUENCIES: dict[str, str] = {
    "D": "D", "W": "W", "W-SUN": "W", "M": "M", "Q": "Q", "Q-DEC": "Q",
    "Y": "Y", "Y-DEC": "Y", "A": "Y", "A-DEC": "Y",
}  # fmt: skip
_SUB_DAY = re.compile(r"\d*(h|H|min|T|m|s|S|ms|L|us|U|ns|N)")
_EPOCH = dt.date(1970, 1, 1)
#: a column name no input uses, for the amounts of a summary without amount_col
_NO_AMOUNT = "__churn_no_amount"


def lifetimes_summary(
    data: Any,
    *,
    as_of: AsOf = None,
    freq: str = "D",
    freq_multiplier: float = 1,
    include_first_transaction: bool = False,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
    tz: str = "UTC",
    ts_unit: Literal["s", "ms", "us", "ns"] | None = None,
    on_error: Literal["raise", "quarantine"] = "raise",
    threads: int | None = None,
) -> pl.DataFrame:
    """Per-customer ``frequency, recency, T, monetary_value`` as lifetimes defines them.

    The same numbers as ``lifetimes.utils.summary_data_from_transaction_data(
    transactions, customer_col, ts_col, monetary_value_col=amount_col,
    observation_period_end=as_of, freq=freq, freq_multiplier=freq_multiplier,
    include_first_transaction=include_first_transaction)``, computed by the
    compiled kernel. Time is cut into periods of ``freq`` (pandas Periods:
    days, weeks ending on Sunday, calendar months, quarters, years) in the
    time zone ``tz``:

    - ``frequency``: number of periods with a purchase, minus 1 (the repeat
      purchase periods; not minus 1 with ``include_first_transaction``);
    - ``recency``: last purchase period minus first purchase period;
    - ``T``: the period of ``as_of`` minus the first purchase period;
    - ``monetary_value``: mean over the repeat purchase periods (all periods
      with ``include_first_transaction``) of the period's total amount; 0 when
      there is none.

    ``recency`` and ``T`` are divided by ``freq_multiplier``.

    Parameters
    ----------
    data : path, polars/pyarrow/pandas frame, or Arrow C stream
        The transaction log, as for :func:`churn_engine.score`.
    as_of : date, datetime or ISO string, optional
        lifetimes' ``observation_period_end``; default: the last day in the
        data. As in lifetimes, the whole period that contains ``as_of`` is
        observed (with ``freq="W"`` and a Wednesday, rows up to that Sunday
        count).
    freq : {"D", "W", "M", "Q", "Y"}
        The period; ``"A"``, ``"W-SUN"``, ``"Q-DEC"`` and ``"Y-DEC"`` are
        accepted aliases. Periods shorter than a day are not supported: purchase
        occasions are whole days.
    freq_multiplier : float
        ``recency`` and ``T`` are divided by it (lifetimes' option of the same
        name; e.g. ``freq="D", freq_multiplier=7`` gives weeks with fractions).
    include_first_transaction : bool
        Count the first purchase period in ``frequency`` and
        ``monetary_value`` (lifetimes' option; keep False for its fitters).
    customer_col, ts_col : str
        Input column names.
    amount_col : str or None
        The money column; ``None`` for a summary without ``monetary_value``
        (lifetimes' ``monetary_value_col=None``).
    tz, ts_unit, on_error, threads
        As in :class:`churn_engine.ScoreConfig`. With ``on_error="quarantine"``
        bad rows are left out of the summary.

    Returns
    -------
    polars.DataFrame
        Columns ``customer_col, frequency, recency, T[, monetary_value]``,
        float64 like lifetimes, one row per customer with a purchase up to
        ``as_of``, in ascending customer id. lifetimes returns a pandas frame
        indexed by customer id; ``result.to_pandas().set_index(customer_col)``
        gives the same layout.

    Raises
    ------
    ConfigError
        An unknown or sub-day ``freq``, a bad ``freq_multiplier``, ``as_of``
        or other option.
    SchemaError, DataError
        A missing column, a wrong type or a bad value (see ``score``).

    Notes
    -----
    A refund (negative amount) is not a purchase: it creates no purchase
    period and is not in ``monetary_value`` (lifetimes would add it to the
    period's total). A customer whose rows are all refunds has no row.
    See docs/lifetimes.md.

    Examples
    --------
    >>> import churn_engine, polars as pl, datetime as dt
    >>> log = pl.DataFrame({"customer_id": [1, 1, 1, 2],
    ...                     "ts": [dt.date(2024, 1, 1), dt.date(2024, 1, 1),
    ...                            dt.date(2024, 1, 11), dt.date(2024, 1, 5)],
    ...                     "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> churn_engine.lifetimes_summary(log, as_of="2024-01-31").rows()
    [(1, 1.0, 10.0, 30.0, 20.0), (2, 0.0, 0.0, 26.0, 0.0)]
    """
    period = _period_of(freq)
    multiplier = _check_multiplier(freq_multiplier)
    if not isinstance(include_first_transaction, bool):
        raise ConfigError(
            f"include_first_transaction must be True or False, got {include_first_transaction!r}"
        )
    config = ScoreConfig(
        customer_col=customer_col, ts_col=ts_col,
        amount_col=_NO_AMOUNT if amount_col is None else amount_col,
        tz=tz, ts_unit=ts_unit, on_error=on_error, threads=threads,
    )  # fmt: skip
    source = data
    if amount_col is None:
        # every row is a purchase of 0: periods are counted, money is not reported
        source = open_source(data).with_columns(pl.lit(0, dtype=pl.Int64).alias(_NO_AMOUNT))
    occasions = collect_occasions(source, config, _observation_end(as_of, period, tz))

    names = [customer_col, "frequency", "recency", "T"]
    if amount_col is not None:
        names.append("monetary_value")
    if occasions.n_groups == 0:
        id_dtype = occasions.prepared.id_dtype
        return pl.DataFrame(
            schema={n: id_dtype if n == customer_col else pl.Float64 for n in names}
        )
    as_of_day = occasions.as_of_day
    assert as_of_day is not None  # set whenever there are accepted rows
    as_of_period = int(period.of(np.array([as_of_day], dtype=np.int32))[0])
    frequency, recency, t, monetary = period_summary(
        occasions.offsets, period.of(occasions.day), occasions.amount, as_of_period,
        include_first_transaction, multiplier, threads or 0,
    )  # fmt: skip
    columns = [occasions.customer_ids(customer_col), pl.Series("frequency", frequency),
               pl.Series("recency", recency), pl.Series("T", t)]  # fmt: skip
    if amount_col is not None:
        columns.append(pl.Series("monetary_value", monetary))
    return pl.DataFrame(columns)


# -- periods -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Period:
    """Numbering of pandas Periods of one ``freq`` on day numbers (days since 1970-01-01)."""

    name: str  # "D", "W", "M", "Q" or "Y"

    def of(self, days: np.ndarray) -> np.ndarray:
        """Period number of each day (int32; consecutive periods differ by 1)."""
        if self.name == "D":
            return days
        if self.name == "W":
            # weeks run Monday..Sunday (pandas "W" = "W-SUN"); day -3 is Monday 1969-12-29
            return np.floor_divide(days + np.int32(3), np.int32(7))
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int32)
        if self.name == "M":
            return months
        if self.name == "Q":
            return np.floor_divide(months, np.int32(3))
        return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int32)

    def last_day(self, period: int) -> int:
        """Day number of the last day of ``period``."""
        if self.name == "D":
            return period
        if self.name == "W":
            return 7 * period + 3
        if self.name == "Y":
            start = np.datetime64(period + 1, "Y")
        else:
            start = np.datetime64((period + 1) * (3 if self.name == "Q" else 1), "M")
        return int(start.astype("datetime64[D]").astype(np.int64)) - 1  # the day before


def _period_of(freq: Any) -> _Period:
    if isinstance(freq, str) and freq in FREQUENCIES:
        return _Period(FREQUENCIES[freq])
    accepted = ", ".join(repr(f) for f in FREQUENCIES)
    if isinstance(freq, str) and _SUB_DAY.fullmatch(freq.strip()):
        raise ConfigError(
            f"freq={freq!r}: periods shorter than a day are not supported (purchase occasions "
            f"are whole days); use one of {accepted}"
        )
    if isinstance(freq, str) and re.fullmatch(r"\d+\s*[A-Za-z-]+", freq.strip()):
        raise ConfigError(
            f"freq={freq!r}: multiples of a period are not supported (lifetimes has none "
            f"either); use one of {accepted}, and freq_multiplier to rescale recency and T"
        )
    raise ConfigError(f"freq must be one of {accepted}, got {freq!r}")


def _check_multiplier(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"freq_multiplier must be a positive number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"freq_multiplier must be finite and > 0, got {value!r}")
    return float(value)


def _observation_end(as_of: AsOf, period: _Period, tz: str) -> dt.date | None:
    """The last day of the period that contains ``as_of``: lifetimes observes
    that period in full (it compares period starts, not timestamps)."""
    parsed = parse_as_of(as_of)
    if parsed is None:
        return None
    if isinstance(parsed, dt.datetime):
        _check_tz(tz)
        day = _local_naive(parsed, tz).date()
    else:
        day = parsed
    number = (day - _EPOCH).days
    end = min(period.last_day(int(period.of(np.array([number], dtype=np.int32))[0])), MAX_DAY)
    return _EPOCH + dt.timedelta(days=end)
