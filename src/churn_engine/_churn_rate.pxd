# cython: language_level=3
"""C declarations of the churn-rate sweep (src/churn_engine/_churn_rate.pyx)."""

from libc.stdint cimport int32_t, int64_t


cdef extern from "churn_status.h":
    int CHURN_OK
    int CHURN_ERR_BAD_CODE


cdef enum:
    # a group's offsets run backwards or past the day array, or its days are
    # not strictly ascending (collect_occasions guarantees both)
    CHURN_RATE_ERR_ORDER = 64


cdef int churn_rate_sweep(int64_t *out_customers, int64_t *out_churned, int64_t *out_new,
                          int64_t *out_newly_churned, int64_t *out_returned,
                          const int64_t *offsets, const int32_t *day, int64_t n_occasions,
                          const int32_t *series, const int64_t *horizon, int64_t n_groups,
                          int64_t n_series, int64_t window_start,
                          int64_t n_days) noexcept nogil
