"""Probabilistic customer-base models: :class:`BetaGeo` (BG/NBD).

Needs SciPy, which churn-engine installs only with the ``models`` extra
(``pip install "churn-engine[models]"``); ``import churn_engine`` never
imports it. The definitions, the likelihood and the parity with lifetimes are
documented in ``docs/models.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .errors import ConfigError, DataError, ModelError, SchemaError

try:
    from scipy.optimize import minimize

    from . import _bgnbd
except ImportError as exc:
    if exc.name is None or exc.name.partition(".")[0] != "scipy":
        raise
    raise ImportError(
        "churn_engine.models needs SciPy, which is an optional dependency: "
        'pip install "churn-engine[models]"'
    ) from exc

__all__ = ["BetaGeo"]

Array = NDArray[np.float64]
ArrayLike = Any  # numpy array, polars/pandas Series, sequence or scalar of numbers
SUMMARY_COLUMNS = ("frequency", "recency", "T")

# lifetimes' defaults: start at log-parameters 0.1 (in time scaled so max T = 1),
# BFGS with tol 1e-7. A final gradient this small is an optimum even when BFGS
# stops on "precision loss" (common at the optimum of a flat objective).
_START = 0.1
_TOL = 1e-7
_ACCEPT_GRADIENT = 1e-5


class BetaGeo:
    """The BG/NBD model of repeat purchasing (Fader, Hardie and Lee, 2005).

    Each customer buys as a Poisson process of rate λ while alive and drops out
    with probability p after each repeat purchase; across customers
    λ ~ Gamma(shape ``r``, rate ``alpha``) and p ~ Beta(``a``, ``b``). Fitted by
    maximum likelihood exactly as lifetimes' ``BetaGeoFitter``.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        Coefficient of an L2 penalty on the parameters, with lifetimes'
        semantics: the objective is the mean negative log-likelihood plus
        ``penalizer_coef × (r² + α² + a² + b²)``, with α measured in time
        scaled so that the largest ``T`` is 1.

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``r``, ``alpha`` (in the time unit of ``recency`` and ``T``),
        ``a`` and ``b``.
    log_likelihood_ : float
        Total (weighted) log-likelihood of the fitted data at ``params_``, in
        the data's time unit, without the penalty.
    n_customers_ : float
        Customers fitted (the sum of the weights).
    n_patterns_ : int
        Distinct (frequency, recency, T) triples the likelihood was summed over.

    Notes
    -----
    ``frequency`` is the number of repeat purchases (purchase occasions after
    the first), ``recency`` the time from the first to the last purchase and
    ``T`` the time from the first purchase to the end of observation: the
    columns of lifetimes' ``summary_data_from_transaction_data``.

    Examples
    --------
    >>> import polars as pl
    >>> from churn_engine.models import BetaGeo
    >>> summary = pl.DataFrame({"customer_id": [1, 2, 3, 4],
    ...                         "frequency": [2, 1, 0, 4],
    ...                         "recency": [30.4, 1.7, 0.0, 20.0],
    ...                         "T": [38.9, 38.9, 38.9, 30.0]})
    >>> model = BetaGeo(penalizer_coef=0.01).fit_summary(summary)
    >>> sorted(model.params_)
    ['a', 'alpha', 'b', 'r']
    >>> model.predict(summary, horizon=10).columns
    ['customer_id', 'p_alive', 'expected_purchases']
    """

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        if not (isinstance(penalizer_coef, int | float) and math.isfinite(penalizer_coef)):
            raise ConfigError(f"penalizer_coef must be a finite number, got {penalizer_coef!r}")
        if penalizer_coef < 0:
            raise ConfigError(f"penalizer_coef must be >= 0, got {penalizer_coef!r}")
        self.penalizer_coef = float(penalizer_coef)
        self.params_: dict[str, float] = {}
        self.log_likelihood_ = math.nan
        self.n_customers_ = 0.0
        self.n_patterns_ = 0

    def __repr__(self) -> str:
        if not self.params_:
            return f"BetaGeo(penalizer_coef={self.penalizer_coef!r}) (not fitted)"
        fitted = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"BetaGeo({fitted}; {self.n_customers_:g} customers)"

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        weights: ArrayLike | None = None,
        initial_params: Mapping[str, float] | Sequence[float] | None = None,
    ) -> BetaGeo:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T : array-like
            Per customer: repeat purchases (integers ≥ 0), time from the first to
            the last purchase (0 when ``frequency`` is 0) and time from the first
            purchase to the end of observation (> 0), in one time unit. NumPy
            arrays, polars or pandas Series, sequences; a scalar applies to all.
        weights : array-like, optional
            Number of customers each row stands for (≥ 0, finite; default 1).
            A row with weight k fits exactly like k identical rows.
        initial_params : mapping or sequence, optional
            Starting ``r, alpha, a, b`` (positive; ``alpha`` in the data's time
            unit). Default: lifetimes' start, e^0.1 for each parameter in time
            scaled so that the largest ``T`` is 1.

        Returns
        -------
        BetaGeo
            ``self``, with ``params_``, ``log_likelihood_`` and the counts set.

        Raises
        ------
        DataError
            A value is invalid (the message names the argument, a row and its value).
        SchemaError
            An argument is not numeric.
        ModelError
            The optimiser did not converge (try a ``penalizer_coef`` > 0).
        """
        arrays = {"frequency": frequency, "recency": recency, "T": T}
        if weights is not None:
            arrays["weights"] = weights
        columns = _validated(arrays)
        x, t, age = columns["frequency"], columns["recency"], columns["T"]
        if weights is None:
            w = np.ones_like(x)
        else:
            w = columns["weights"]
            _check(w < 0, "weights", "negative_weight", "must be >= 0", {"weights": w})
        if x.size == 0 or not w.sum() > 0:
            raise DataError("no customers to fit (empty input or all weights 0)", reason="empty")

        data = _bgnbd.Compressed.build(x, t, age, w)
        # lifetimes fits in time scaled so that the oldest customer has T = 1:
        # the penalty depends on that scale, and it keeps alpha near 1.
        scale = 1.0 / float(data.T.max())
        start = self._start(initial_params, scale)
        result = minimize(
            _bgnbd.objective,
            start,
            args=(data.scaled(scale), self.penalizer_coef),
            jac=True,
            method="BFGS",
            tol=_TOL,
        )
        fitted = np.exp(result.x)
        fitted[1] /= scale
        found = dict(zip(_bgnbd.PARAM_NAMES, fitted.tolist(), strict=True))
        if not (
            np.all(np.isfinite(fitted))
            and (result.success or np.max(np.abs(result.jac)) < _ACCEPT_GRADIENT)
        ):
            raise ModelError(
                f"the BG/NBD fit did not converge ({result.message}; last parameters "
                f"{found}); try penalizer_coef > 0"
            )
        self.params_ = found
        self.log_likelihood_ = _bgnbd.log_likelihood_and_grad(fitted, data)[0]
        self.n_customers_ = data.total_weight
        self.n_patterns_ = int(data.frequency.size)
        return self

    def fit_summary(self, summary: Any, **options: Any) -> BetaGeo:
        """Fit on a per-customer summary with columns ``frequency``, ``recency``, ``T``.

        Parameters
        ----------
        summary : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            For example lifetimes' ``summary_data_from_transaction_data`` output.
        **options
            ``weights`` and ``initial_params``, as in :meth:`fit`.

        Returns
        -------
        BetaGeo
            ``self``, fitted.
        """
        if isinstance(summary, pl.LazyFrame):
            summary = summary.collect()
        x, t, age = _summary_columns(summary)
        return self.fit(x, t, age, **options)

    def _start(self, initial: Mapping[str, float] | Sequence[float] | None, scale: float) -> Array:
        if initial is None:
            return np.full(4, _START)
        if isinstance(initial, Mapping):
            missing = [name for name in _bgnbd.PARAM_NAMES if name not in initial]
            if missing:
                raise ConfigError(f"initial_params is missing {missing}")
            values = [initial[name] for name in _bgnbd.PARAM_NAMES]
        else:
            values = list(initial)
        try:
            start = np.array(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"initial_params must be numbers, got {initial!r}") from exc
        if start.shape != (4,) or not np.all(np.isfinite(start)) or np.any(start <= 0):
            raise ConfigError(
                f"initial_params must be four positive numbers r, alpha, a, b; got {initial!r}"
            )
        start[1] *= scale
        return np.log(start)

    # -------------------------------------------------------------- predictions

    def _fitted(self) -> Array:
        if not self.params_:
            raise ModelError("this BetaGeo is not fitted yet: call fit() or fit_summary() first")
        return np.array([self.params_[name] for name in _bgnbd.PARAM_NAMES])

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """Probability that each customer is still alive at the end of observation.

        ``1 / (1 + [x > 0] · a / (b + x − 1) · ((α + T) / (α + t))^(r + x))``;
        1 for customers without repeat purchases (they cannot have dropped out).

        Parameters
        ----------
        frequency, recency, T : array-like
            As in :meth:`fit`, in the time unit the model was fitted in.

        Returns
        -------
        numpy.ndarray
            float64, one value per customer.
        """
        params = self._fitted()
        c = _validated({"frequency": frequency, "recency": recency, "T": T})
        return _bgnbd.p_alive(params, c["frequency"], c["recency"], c["T"])

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """Expected purchases of each customer in the next ``t`` time units.

        Equation (10) of Fader, Hardie and Lee (2005); lifetimes'
        ``conditional_expected_number_of_purchases_up_to_time``.

        Parameters
        ----------
        t : float or array-like
            Horizon(s), ≥ 0, in the time unit the model was fitted in.
        frequency, recency, T : array-like
            The customers' histories, as in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
            float64, one value per customer.
        """
        params = self._fitted()
        c = _validated({"t": t, "frequency": frequency, "recency": recency, "T": T})
        _check(c["t"] < 0, "t", "negative_horizon", "must be >= 0", {"t": c["t"]})
        return _bgnbd.expected_purchases(params, c["t"], c["frequency"], c["recency"], c["T"])

    def expected_purchases_new(self, t: ArrayLike) -> Array:
        """Expected repeat purchases of a new customer in their first ``t`` time units.

        Equation (9) of Fader, Hardie and Lee (2005); lifetimes'
        ``expected_number_of_purchases_up_to_time``.

        Parameters
        ----------
        t : float or array-like
            Horizon(s), ≥ 0, in the time unit the model was fitted in.

        Returns
        -------
        numpy.ndarray
            float64, one value per horizon.
        """
        params = self._fitted()
        horizon = _validated({"t": t})["t"]
        _check(horizon < 0, "t", "negative_horizon", "must be >= 0", {"t": horizon})
        return _bgnbd.expected_purchases_new(params, horizon)

    def predict(self, summary: Any, horizon: float, *, id_col: str = "customer_id") -> pl.DataFrame:
        """``p_alive`` and ``expected_purchases`` over ``horizon`` for each summary row.

        Parameters
        ----------
        summary : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            Columns ``frequency``, ``recency``, ``T``.
        horizon : float
            Time units ahead (≥ 0) for ``expected_purchases``.
        id_col : str, default "customer_id"
            When the summary has this column (or, for pandas, an index of this
            name, as lifetimes' summaries do) it is returned first, for joins.

        Returns
        -------
        polars.DataFrame
            ``[id_col,] p_alive, expected_purchases``, row for row with ``summary``.
        """
        if isinstance(horizon, bool) or not isinstance(horizon, int | float):
            raise ConfigError(f"horizon must be a number, got {horizon!r}")
        if not (math.isfinite(horizon) and horizon >= 0):
            raise ConfigError(f"horizon must be finite and >= 0, got {horizon!r}")
        if isinstance(summary, pl.LazyFrame):
            summary = summary.collect()
        x, t, age = _summary_columns(summary)
        columns = [
            pl.Series("p_alive", self.p_alive(x, t, age)),
            pl.Series("expected_purchases", self.expected_purchases(horizon, x, t, age)),
        ]
        ids = _id_column(summary, id_col)
        return pl.DataFrame(columns if ids is None else [ids, *columns])


# ------------------------------------------------------------------ validation


def _as_float_array(values: ArrayLike, name: str) -> Array:
    """One argument as a 1-D float64 array (nulls become NaN, caught later)."""
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric():
            raise SchemaError(f"{name} must be numeric, got a polars Series of {values.dtype}")
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind is not None and hasattr(values, "to_numpy"):  # pandas Series / Index
        if kind not in "iuf":
            raise SchemaError(f"{name} must be numeric, got dtype {values.dtype}")
        array: Array = np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
        return array.reshape(-1)
    raw = np.asarray(values)
    if raw.dtype.kind not in "iuf":
        raise SchemaError(f"{name} must be numeric, got {raw.dtype} values")
    if raw.ndim > 1:
        raise DataError(f"{name} must be one-dimensional, got shape {raw.shape}", column=name)
    return np.atleast_1d(raw.astype(np.float64))


def _check(
    bad: NDArray[np.bool_], column: str, reason: str, rule: str, shown: dict[str, Array]
) -> None:
    """Raise DataError naming ``column``, the first bad row and the values in ``shown``."""
    rows = np.flatnonzero(bad)
    if rows.size == 0:
        return
    row = int(rows[0])
    values = ", ".join(f"{name}={float(v[row])!r}" for name, v in shown.items())
    more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
    raise DataError(
        f"{column} {rule}: row {row} has {values}{more}", column=column, reason=reason, row=row
    )


def _validated(arrays: dict[str, ArrayLike]) -> dict[str, Array]:
    """Convert, check lengths (scalars broadcast) and check the BG/NBD domain."""
    columns = {name: _as_float_array(values, name) for name, values in arrays.items()}
    lengths = {name: c.size for name, c in columns.items() if c.size != 1}
    if len(set(lengths.values())) > 1:
        raise DataError(f"arguments have different lengths: {lengths}", reason="length_mismatch")
    n = next(iter(lengths.values()), 1)
    columns = {name: np.broadcast_to(c, (n,)) for name, c in columns.items()}
    for name, c in columns.items():
        _check(~np.isfinite(c), name, "not_finite", "must be finite (not null/NaN/inf)", {name: c})
    if "frequency" in columns:
        x, t, age = columns["frequency"], columns["recency"], columns["T"]
        _check(x < 0, "frequency", "negative_frequency", "must be >= 0", {"frequency": x})
        _check(
            x != np.floor(x),
            "frequency",
            "frequency_not_integer",
            "must be whole numbers",
            {"frequency": x},
        )
        _check(age <= 0, "T", "non_positive_T", "must be > 0", {"T": age})
        _check(t < 0, "recency", "negative_recency", "must be >= 0", {"recency": t})
        _check(t > age, "recency", "recency_after_T", "must be <= T", {"recency": t, "T": age})
        _check(
            (x == 0) & (t != 0),
            "recency",
            "recency_without_repeat",
            "must be 0 when frequency is 0",
            {"frequency": x, "recency": t},
        )
    return columns


def _summary_columns(summary: Any) -> tuple[Array, Array, Array]:
    columns = getattr(summary, "columns", None)
    if columns is None:
        raise SchemaError(
            f"summary must be a polars or pandas DataFrame, got {type(summary).__name__}"
        )
    missing = [name for name in SUMMARY_COLUMNS if name not in list(columns)]
    if missing:
        raise SchemaError(
            f"summary is missing column(s) {missing}; it needs {list(SUMMARY_COLUMNS)} "
            "(lifetimes' summary_data_from_transaction_data gives them)"
        )
    x, t, age = (_as_float_array(summary[name], name) for name in SUMMARY_COLUMNS)
    return x, t, age


def _id_column(summary: Any, id_col: str) -> pl.Series | None:
    if id_col in list(summary.columns):
        if isinstance(summary, pl.DataFrame):
            return summary[id_col]
        return pl.Series(id_col, summary[id_col].to_numpy())
    index = getattr(summary, "index", None)
    if index is not None and getattr(index, "name", None) == id_col:
        return pl.Series(id_col, index.to_numpy())
    return None
