# cython: language_level=3
"""C declarations shared by the compiled kernel (csrc/ helpers)."""

from libc.stdint cimport int32_t, int64_t


cdef extern from "churn_status.h":
    int CHURN_OK
    int CHURN_ERR_NOMEM
    int CHURN_ERR_OVERFLOW
    int CHURN_ERR_TOO_MANY
    int CHURN_ERR_BAD_CODE


cdef extern from "churn_hash.h":
    ctypedef struct churn_hash:
        int64_t *uniques
        int64_t size
    int churn_hash_init(churn_hash *table, int64_t expected) nogil
    void churn_hash_free(churn_hash *table) nogil
    int churn_hash_encode(churn_hash *table, int32_t *out_codes,
                          const int64_t *ids, int64_t n) nogil


cdef extern from "churn_sort.h":
    ctypedef struct churn_row:
        int32_t cat
        int32_t day
        int64_t amount
    int churn_rank_int64(int32_t *out_rank, const int64_t *keys, int64_t n) nogil
    void churn_sort_rows(churn_row *rows, int64_t n) nogil
    double churn_select_double(double *values, int64_t n, int64_t k) nogil
    int64_t churn_select_int64(int64_t *values, int64_t n, int64_t k) nogil
    double churn_median_double(double *values, int64_t n) nogil
    double churn_median_int64(int64_t *values, int64_t n) nogil
