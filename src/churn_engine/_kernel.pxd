# cython: language_level=3
"""C declarations shared by the compiled kernel (csrc/ helpers)."""

from libc.stdint cimport int32_t, int64_t


cdef extern from "churn_status.h":
    int CHURN_OK
    int CHURN_ERR_NOMEM
    int CHURN_ERR_OVERFLOW
    int CHURN_ERR_TOO_MANY
    int CHURN_ERR_BAD_CODE


cdef extern from "churn_sort.h":
    ctypedef struct churn_row:
        int64_t key
        int32_t cat
        int32_t day
        int64_t amount
    void churn_sort_rows(churn_row *rows, int64_t n) nogil
    void churn_sort_by_key(churn_row *rows, churn_row *scratch, int64_t n) nogil
    double churn_select_double(double *values, int64_t n, int64_t k) nogil
    int64_t churn_select_int64(int64_t *values, int64_t n, int64_t k) nogil
    double churn_median_double(double *values, int64_t n) nogil
    double churn_median_int64(int64_t *values, int64_t n) nogil


cdef extern from "churn_group.h":
    ctypedef struct churn_group_buffers:
        int64_t capacity
    void churn_group_buffers_init(churn_group_buffers *b) nogil
    void churn_group_buffers_free(churn_group_buffers *b) nogil
    int churn_group_partition(churn_row *rows, int64_t n, churn_group_buffers *b) nogil
