"""BG/NBD numerics: log-likelihood with its gradient, predictions, simulation.

Plain NumPy/SciPy on validated float64 arrays; :mod:`churn_engine.models` does
the validation and owns the public API. The formulas are those of Fader, Hardie
and Lee (2005), "Counting Your Customers the Easy Way", written exactly as
lifetimes' ``BetaGeoFitter`` writes them so the two agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, hyp2f1

Array = NDArray[np.float64]
PARAM_NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class Compressed:
    """Customers collapsed to distinct (frequency, recency, T) triples.

    The likelihood is a weighted sum of one term per customer, and customers
    with the same triple have the same term, so summing ``weight × term`` over
    the distinct triples gives the same objective with far fewer rows. The
    terms that only depend on the frequency (the gamma functions) are further
    evaluated once per distinct frequency: ``freq_values[freq_index]`` is
    ``frequency``. Rows are sorted, so the ``n_zero`` rows with frequency 0
    come first.
    """

    frequency: Array
    recency: Array
    T: Array
    weight: Array
    freq_values: Array
    freq_index: NDArray[np.intp]
    freq_weight: Array
    total_weight: float
    n_zero: int

    @classmethod
    def build(cls, frequency: Array, recency: Array, T: Array, weight: Array) -> Compressed:
        frame = (
            pl.LazyFrame({"x": frequency, "t": recency, "T": T, "w": weight})
            .filter(pl.col("w") > 0)
            .group_by("x", "t", "T")
            .agg(pl.col("w").sum())
            # a fixed row order makes the floating-point sums reproducible
            .sort("x", "t", "T")
            .collect()
        )
        x = frame["x"].to_numpy()
        w = frame["w"].to_numpy()
        freq_values, freq_index = np.unique(x, return_inverse=True)
        return cls(
            frequency=x,
            recency=frame["t"].to_numpy(),
            T=frame["T"].to_numpy(),
            weight=w,
            freq_values=freq_values,
            freq_index=freq_index,
            freq_weight=np.bincount(freq_index, weights=w, minlength=freq_values.size).astype(
                np.float64
            ),
            total_weight=float(w.sum()),
            n_zero=int(np.searchsorted(x, 0.0, side="right")),
        )

    def scaled(self, factor: float) -> Compressed:
        """The same customers with recency and T multiplied by ``factor``."""
        return Compressed(
            frequency=self.frequency,
            recency=self.recency * factor,
            T=self.T * factor,
            weight=self.weight,
            freq_values=self.freq_values,
            freq_index=self.freq_index,
            freq_weight=self.freq_weight,
            total_weight=self.total_weight,
            n_zero=self.n_zero,
        )


def log_likelihood_and_grad(params: Array, data: Compressed) -> tuple[float, Array]:
    """Total weighted log-likelihood and its gradient in (r, alpha, a, b).

    Per customer (x = frequency, t = recency):

    ``ll = A1 + A2 + log(exp(A3) + [x > 0] exp(A4))`` with
    ``A1 = lnΓ(r+x) − lnΓ(r) + r ln α``,
    ``A2 = lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x)``,
    ``A3 = −(r+x) ln(α+T)``,
    ``A4 = ln a − ln(b + max(x, 1) − 1) − (r+x) ln(α+t)``.
    """
    r, alpha, a, b = (float(p) for p in params)
    xs, wx = data.freq_values, data.freq_weight
    x, t, T, w = data.frequency, data.recency, data.T, data.weight
    W = data.total_weight

    # A1 + A2 depend on x only: one evaluation per distinct frequency
    a1 = gammaln(r + xs) - gammaln(r)
    a2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    ll = float(wx @ (a1 + a2)) + W * r * np.log(alpha)
    d_r = float(wx @ (digamma(r + xs) - digamma(r))) + W * np.log(alpha)
    d_alpha = W * r / alpha
    d_a = float(wx @ (digamma(a + b) - digamma(a + b + xs)))
    d_b = float(wx @ (digamma(a + b) + digamma(b + xs) - digamma(b) - digamma(a + b + xs)))

    # log(exp(A3) + [x > 0] exp(A4)), the only per-row term. Rows are sorted by
    # x, so the customers without repeat purchases (only A3) come first.
    k = data.n_zero
    log_alpha_T0 = np.log(alpha + T[:k])
    ll -= r * float(w[:k] @ log_alpha_T0)
    d_r -= float(w[:k] @ log_alpha_T0)
    d_alpha -= r * float(w[:k] @ (1.0 / (alpha + T[:k])))

    x, t, T, w = x[k:], t[k:], T[k:], w[k:]
    b_x = b + np.maximum(xs, 1.0) - 1.0  # per distinct x; x = 0 is not used here
    log_b_x = np.log(b_x)[data.freq_index[k:]]
    r_x = r + x
    log_alpha_T = np.log(alpha + T)
    log_alpha_t = np.log(alpha + t)
    a3 = -r_x * log_alpha_T
    a4 = np.log(a) - log_b_x - r_x * log_alpha_t
    mix = np.logaddexp(a3, a4)
    # share of the "dropped out after t" (A4) branch; 1 − p4 is "alive at T"
    p4 = np.exp(a4 - mix)
    wp4 = w * p4
    ll += float(w @ mix)
    d_r -= float(w @ log_alpha_T) + float(wp4 @ (log_alpha_t - log_alpha_T))
    inv_T = 1.0 / (alpha + T)
    d_alpha -= float((w * r_x) @ (inv_T + p4 * (1.0 / (alpha + t) - inv_T)))
    d_a += float(wp4.sum()) / a
    d_b -= float(wp4 @ (1.0 / b_x)[data.freq_index[k:]])
    return ll, np.array([d_r, d_alpha, d_a, d_b])


def objective(log_params: Array, data: Compressed, penalizer: float) -> tuple[float, Array]:
    """lifetimes' objective: mean negative log-likelihood + penalizer × Σ params².

    Optimised over log-parameters (so they stay positive); returns the value
    and its gradient with respect to ``log_params``.
    """
    params = np.exp(log_params)
    ll, grad = log_likelihood_and_grad(params, data)
    value = -ll / data.total_weight + penalizer * float(params @ params)
    gradient = -params * grad / data.total_weight + 2.0 * penalizer * params * params
    return value, gradient


def p_alive(params: Array, x: Array, t: Array, T: Array) -> Array:
    """P(alive | x, t, T) (Fader, Hardie and Lee 2008, note 021); 1 when x = 0."""
    r, alpha, a, b = params
    log_div = (r + x) * np.log((alpha + T) / (alpha + t)) + np.log(
        a / (b + np.maximum(x, 1.0) - 1.0)
    )
    return np.where(x == 0, 1.0, expit(-log_div))


def expected_purchases(params: Array, horizon: Array, x: Array, t: Array, T: Array) -> Array:
    """E[purchases in (T, T + horizon] | x, t, T]: equation (10) of Fader et al. (2005)."""
    r, alpha, a, b = params
    hyp_a = r + x
    hyp_b = b + x
    hyp_c = a + b + x - 1.0
    z = horizon / (alpha + T + horizon)
    hyp_a, hyp_b, hyp_c, z = np.broadcast_arrays(hyp_a, hyp_b, hyp_c, z)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ln_hyp = np.log(hyp2f1(hyp_a, hyp_b, hyp_c, z))
        # 2F1 overflows for large x; there Euler's transformation
        # 2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z) stays finite
        over = np.isinf(ln_hyp)
        if over.any():
            a_, b_, c_, z_ = hyp_a[over], hyp_b[over], hyp_c[over], z[over]
            ln_hyp[over] = np.log(hyp2f1(c_ - a_, c_ - b_, c_, z_)) + (c_ - a_ - b_) * np.log1p(-z_)
    first = (a + b + x - 1.0) / (a - 1.0)
    second = 1.0 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + horizon + T)))
    # lifetimes multiplies by (x > 0), which gives NaN when x = 0 and b = 1
    # (0 · a/0); the x = 0 term is simply absent.
    dropout_odds = a / (b + np.maximum(x, 1.0) - 1.0) * ((alpha + T) / (alpha + t)) ** (r + x)
    denominator = 1.0 + np.where(x > 0, dropout_odds, 0.0)
    result: Array = first * second / denominator
    return result


def expected_purchases_new(params: Array, horizon: Array) -> Array:
    """E[repeat purchases in (0, horizon]] of a new customer: equation (9)."""
    r, alpha, a, b = params
    hyp = hyp2f1(r, b, a + b - 1.0, horizon / (alpha + horizon))
    result: Array = (a + b - 1.0) / (a - 1.0) * (1.0 - hyp * (alpha / (alpha + horizon)) ** r)
    return result


def simulate(params: Array, T: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    """Draw (frequency, recency) of customers of ages ``T`` from the BG/NBD model.

    λ ~ Gamma(r, rate α), p ~ Beta(a, b); purchases arrive as a Poisson process
    of rate λ and after each repeat purchase the customer drops out with
    probability p, so the number of repeat purchases before dropping out is
    K ~ Geometric(p) on 1, 2, ... Then x = min(N(T), K) and, the arrival times
    being N(T) sorted uniforms on (0, T), t = T × Beta(x, N(T) − x + 1).
    """
    r, alpha, a, b = params
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * T)
    frequency = np.minimum(arrivals, rng.geometric(p)).astype(np.float64)
    positive = frequency > 0
    recency = np.zeros(n)
    recency[positive] = T[positive] * rng.beta(
        frequency[positive], arrivals[positive] - frequency[positive] + 1.0
    )
    return frequency, recency
