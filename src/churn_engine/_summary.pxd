# cython: language_level=3
"""C-level interface of the lifetimes-style summary kernel (src/churn_engine/_summary.pyx)."""

from libc.stdint cimport int32_t, int64_t

# Status codes of summarize_group (never exceptions in nogil code).
cdef enum:
    SUMMARY_OK = 0
    SUMMARY_ERR_EMPTY = 1       # a group without occasions
    SUMMARY_ERR_UNSORTED = 2    # periods not ascending within a group
    SUMMARY_ERR_AFTER_AS_OF = 3  # a period after the as_of period
    SUMMARY_ERR_OFFSETS = 4     # a group's offsets outside the occasion arrays

cdef int summarize_group(double *out_frequency, double *out_recency, double *out_T,
                         double *out_monetary, const int32_t *period, const double *amount,
                         int64_t n, int64_t as_of_period, bint include_first,
                         double multiplier) noexcept nogil
