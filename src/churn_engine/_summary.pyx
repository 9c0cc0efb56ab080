# cython: language_level=3
"""The compiled part of the lifetimes-style summary (private).

Input: every customer's purchase occasions in CSR form (``offsets`` into
``period`` and ``amount``, periods ascending within a customer; several
occasions may share a period). One ``nogil`` walk per customer gives
lifetimes' four numbers; see :mod:`churn_engine.summary` for the definitions.
Money sums are Kahan-compensated: the mean of a customer's period totals is
then within an ulp or so of the exact value whatever the number of periods
(lifetimes' pandas sums differ from it, and between pandas versions, in the
last bits only).
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t

import numpy as np

from .errors import KernelError

_MESSAGES = {
    SUMMARY_ERR_EMPTY: "a customer without occasions",
    SUMMARY_ERR_UNSORTED: "periods are not ascending within a customer",
    SUMMARY_ERR_AFTER_AS_OF: "a purchase period after the as_of period",
    SUMMARY_ERR_OFFSETS: "offsets outside the occasions",
}


def period_summary(const int64_t[::1] offsets, const int32_t[::1] period,
                   const double[::1] amount, int64_t as_of_period, bint include_first,
                   double multiplier, int threads):
    """``(frequency, recency, T, monetary_value)`` float64 arrays, one entry per group.

    Group ``g`` owns ``period[offsets[g]:offsets[g + 1]]`` (ascending) and the
    matching ``amount`` entries. ``recency`` and ``T`` are divided by
    ``multiplier``.
    """
    cdef int64_t n_groups = offsets.shape[0] - 1, g
    if n_groups < 0 or period.shape[0] != amount.shape[0]:
        raise ValueError("offsets, period and amount do not describe one CSR layout")
    if offsets[0] != 0 or offsets[n_groups] != period.shape[0]:
        raise ValueError("offsets must run from 0 to the number of occasions")
    frequency_arr = np.empty(n_groups, dtype=np.float64)
    recency_arr = np.empty(n_groups, dtype=np.float64)
    t_arr = np.empty(n_groups, dtype=np.float64)
    monetary_arr = np.empty(n_groups, dtype=np.float64)
    if n_groups == 0:
        return frequency_arr, recency_arr, t_arr, monetary_arr
    cdef double[::1] frequency = frequency_arr
    cdef double[::1] recency = recency_arr
    cdef double[::1] t = t_arr
    cdef double[::1] monetary = monetary_arr
    cdef const int32_t *period_ptr = &period[0] if period.shape[0] else NULL
    cdef const double *amount_ptr = &amount[0] if amount.shape[0] else NULL
    cdef int rc
    cdef int32_t[::1] error = np.zeros(1, dtype=np.int32)  # shared by the threads
    cdef int64_t n_occasions = period.shape[0]
    with nogil:
        for g in prange(n_groups, schedule="static", num_threads=threads):
            if offsets[g] < 0 or offsets[g + 1] < offsets[g] or offsets[g + 1] > n_occasions:
                rc = SUMMARY_ERR_OFFSETS
            else:
                rc = summarize_group(
                    &frequency[g], &recency[g], &t[g], &monetary[g],
                    period_ptr + offsets[g], amount_ptr + offsets[g],
                    offsets[g + 1] - offsets[g], as_of_period, include_first, multiplier,
                )
            if rc != SUMMARY_OK:
                error[0] = rc  # any failing group's code will do: each means a bug upstream
    if error[0] != SUMMARY_OK:
        raise KernelError(f"churn-engine summary kernel: {_MESSAGES.get(error[0], error[0])}")
    return frequency_arr, recency_arr, t_arr, monetary_arr


cdef inline void _kahan_add(double *total, double *compensation, double value) noexcept nogil:
    # compensated summation (the step pandas' group_sum uses too)
    cdef double y = value - compensation[0]
    cdef double s = total[0] + y
    compensation[0] = s - total[0] - y
    total[0] = s


cdef int summarize_group(double *out_frequency, double *out_recency, double *out_T,
                         double *out_monetary, const int32_t *period, const double *amount,
                         int64_t n, int64_t as_of_period, bint include_first,
                         double multiplier) noexcept nogil:
    """One customer's summary from its occasions (``n`` of them, periods ascending)."""
    cdef int64_t i, n_periods = 1
    cdef int32_t first, current
    # the current period's money, and the sum of the period sums that count
    cdef double period_sum = 0.0, period_c = 0.0, counted = 0.0, counted_c = 0.0
    if n <= 0:
        return SUMMARY_ERR_EMPTY
    first = period[0]
    current = first
    for i in range(n):
        if period[i] != current:
            if period[i] < current:
                return SUMMARY_ERR_UNSORTED
            # the period just closed counts unless it is the first one (repeat purchases)
            if include_first or n_periods > 1:
                _kahan_add(&counted, &counted_c, period_sum)
            period_sum = 0.0
            period_c = 0.0
            current = period[i]
            n_periods += 1
        _kahan_add(&period_sum, &period_c, amount[i])
    if include_first or n_periods > 1:
        _kahan_add(&counted, &counted_c, period_sum)
    if current > as_of_period:
        return SUMMARY_ERR_AFTER_AS_OF
    if not include_first:
        n_periods -= 1
    out_frequency[0] = <double>n_periods
    out_recency[0] = <double>(current - first) / multiplier
    out_T[0] = <double>(as_of_period - first) / multiplier
    out_monetary[0] = counted / <double>n_periods if n_periods > 0 else 0.0
    return SUMMARY_OK
