# cython: language_level=3
"""The churn-rate sweep (private): every day's customers and churned customers
in one walk over the purchase occasions.

A customer with occasions ``d1 < ... < dk`` (horizon ``H``) is a customer from
``d1`` on, and churned on the days ``[d_i + H, d_(i+1) - 1]`` and
``[dk + H, inf)``: as of the end of day ``t`` the last occasion on or before
``t`` is at least ``H`` days old. Each range becomes two entries of a
difference array over the window of days; one cumulative sum per series then
gives the daily counts. The walk is O(occasions + days), whatever the number
of days asked for, and needs no query per date.

Flows are counted per day too: new customers (first occasion that day),
newly churned (recency reaches ``H`` that day) and returned (churned the day
before, bought that day). Compiler directives are set once, in setup.py.
"""

from libc.stdint cimport int32_t, int64_t

from ._churn_rate cimport CHURN_ERR_BAD_CODE, CHURN_OK, CHURN_RATE_ERR_ORDER

import numpy as np

from .errors import KernelError

#: the kernel works in int64 days; a longer horizon never fires in any window
MAX_HORIZON = 2**31 - 1


def _check(int rc):
    if rc == CHURN_OK:
        return
    if rc == CHURN_ERR_BAD_CODE:
        raise KernelError("churn-engine kernel (churn rate): a group's series is out of range")
    if rc == CHURN_RATE_ERR_ORDER:
        raise KernelError(
            "churn-engine kernel (churn rate): occasion offsets or days are not ascending"
        )
    raise KernelError(f"churn-engine kernel (churn rate): failed with status {rc}")


def sweep(const int64_t[::1] offsets, const int32_t[::1] day, object series,
          const int64_t[::1] horizons, int64_t window_start, int64_t n_days):
    """Daily counts over the days ``window_start .. window_start + n_days - 1``.

    ``offsets``/``day`` are occasions in CSR form (group ``g`` owns
    ``day[offsets[g]:offsets[g + 1]]``, strictly ascending); ``series`` the
    int32 series of each group (its category), or None for one series;
    ``horizons`` the horizon of each series in days (1..MAX_HORIZON). Returns
    int64 arrays of shape ``(n_series, n_days)``: ``customers``, ``churned``
    (stocks at the end of each day) and ``new_customers``, ``newly_churned``,
    ``returned`` (flows during each day).
    """
    cdef int64_t n_groups = offsets.shape[0] - 1
    cdef int64_t n_series = horizons.shape[0], s, i
    cdef const int32_t[::1] series_view
    cdef const int32_t *series_ptr = NULL
    if n_groups < 0 or n_days < 0 or n_series < 1:
        raise ValueError("sweep: need offsets with a leading 0, n_days >= 0 and one horizon")
    for s in range(n_series):
        if not 1 <= horizons[s] <= MAX_HORIZON:
            raise ValueError(f"sweep: horizon {horizons[s]} outside 1..{MAX_HORIZON}")
    if series is not None:
        series_view = series
        if series_view.shape[0] != n_groups:
            raise ValueError("sweep: series needs one entry per group")
        if n_groups:
            series_ptr = &series_view[0]
    elif n_series != 1:
        raise ValueError("sweep: several horizons need a series per group")
    if window_start < -(2**40) or window_start > 2**40 or n_days > 2**40:
        raise ValueError("sweep: window out of range")

    # one spare day per series: a range that ends on the window's last day
    # closes in it
    names = ("customers", "churned", "new_customers", "newly_churned", "returned")
    arrays = {name: np.zeros((n_series, n_days + 1), dtype=np.int64) for name in names}
    cdef int64_t[:, ::1] customers = arrays["customers"]
    cdef int64_t[:, ::1] churned = arrays["churned"]
    cdef int64_t[:, ::1] new = arrays["new_customers"]
    cdef int64_t[:, ::1] newly = arrays["newly_churned"]
    cdef int64_t[:, ::1] returned = arrays["returned"]
    cdef int rc = CHURN_OK
    cdef int64_t run_customers, run_churned
    if n_days == 0:
        return {name: a[:, :0] for name, a in arrays.items()}
    with nogil:
        if n_groups > 0 and offsets[0] != 0:
            rc = CHURN_RATE_ERR_ORDER
        else:
            rc = churn_rate_sweep(&customers[0, 0], &churned[0, 0], &new[0, 0], &newly[0, 0],
                                  &returned[0, 0], &offsets[0],
                                  &day[0] if day.shape[0] else NULL, day.shape[0],
                                  series_ptr, &horizons[0], n_groups, n_series,
                                  window_start, n_days)
        if rc == CHURN_OK:
            for s in range(n_series):
                run_customers = 0
                run_churned = 0
                for i in range(n_days):
                    run_customers += customers[s, i]
                    run_churned += churned[s, i]
                    customers[s, i] = run_customers
                    churned[s, i] = run_churned
    _check(rc)
    return {name: a[:, :n_days] for name, a in arrays.items()}


cdef inline void _add_range(int64_t *delta, int64_t first, int64_t last, int64_t lo,
                            int64_t hi) noexcept nogil:
    """+1 on the days ``first..last`` (inclusive), clamped to the window ``lo..hi``."""
    if first < lo:
        first = lo
    if last > hi:
        last = hi
    if first <= last:
        delta[first - lo] += 1
        delta[last - lo + 1] -= 1


cdef inline void _add_day(int64_t *counts, int64_t t, int64_t lo, int64_t hi) noexcept nogil:
    if lo <= t <= hi:
        counts[t - lo] += 1


cdef int churn_rate_sweep(int64_t *out_customers, int64_t *out_churned, int64_t *out_new,
                          int64_t *out_newly_churned, int64_t *out_returned,
                          const int64_t *offsets, const int32_t *day, int64_t n_occasions,
                          const int32_t *series, const int64_t *horizon, int64_t n_groups,
                          int64_t n_series, int64_t window_start,
                          int64_t n_days) noexcept nogil:
    """Writes difference arrays (customers, churned) and day counts (the
    flows) of shape ``(n_series, n_days + 1)``, zeroed by the caller."""
    cdef int64_t lo = window_start, hi = window_start + n_days - 1
    cdef int64_t stride = n_days + 1
    cdef int64_t g, i, first, end, h, base, d, next_day, stop, churn_from
    cdef int32_t s
    for g in range(n_groups):
        first = offsets[g]
        end = offsets[g + 1]
        if end < first or end > n_occasions:
            return CHURN_RATE_ERR_ORDER
        if end == first:
            continue
        s = series[g] if series != NULL else 0
        if s < 0 or s >= n_series:
            return CHURN_ERR_BAD_CODE
        h = horizon[s]
        base = s * stride
        # all int64: day numbers are int32 and horizons at most 2^31 - 1
        d = day[first]
        _add_range(out_customers + base, d, hi, lo, hi)
        _add_day(out_new + base, d, lo, hi)
        for i in range(first, end):
            d = day[i]
            if i + 1 < end:
                next_day = day[i + 1]
                if next_day <= d:
                    return CHURN_RATE_ERR_ORDER
                stop = next_day - 1
            else:
                next_day = hi + 1  # no next occasion: churned for good
                stop = hi
            churn_from = d + h
            if churn_from <= stop:
                _add_range(out_churned + base, churn_from, stop, lo, hi)
                _add_day(out_newly_churned + base, churn_from, lo, hi)
                _add_day(out_returned + base, next_day, lo, hi)
    return CHURN_OK
