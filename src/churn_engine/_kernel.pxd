# cython: language_level=3
"""C declarations shared by the compiled kernel (csrc/ helpers)."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t


cdef extern from "churn_status.h":
    int CHURN_OK
    int CHURN_ERR_NOMEM
    int CHURN_ERR_OVERFLOW
    int CHURN_ERR_TOO_MANY
    int CHURN_ERR_BAD_CODE
    int CHURN_ERR_BAD_STRING


cdef extern from "churn_bits.h":
    int churn_bit_length(uint64_t x) nogil


cdef extern from "churn_sort.h":
    ctypedef struct churn_row:
        int64_t key
        int32_t cat
        int32_t day
        int64_t amount
    ctypedef struct churn_packed_row:
        uint64_t word
        int64_t amount
    ctypedef struct churn_tight_row:
        uint64_t word
        uint32_t amount
    void churn_sort_rows(churn_row *rows, int64_t n) nogil
    int64_t churn_select_int64(int64_t *values, int64_t n, int64_t k) nogil
    double churn_median_int64(int64_t *values, int64_t n) nogil
    int churn_select_ranks_double(double *out, const double *values, int64_t n,
                                  const int64_t *ranks, int64_t n_ranks, int threads) nogil
    int churn_select_ranks_int64(int64_t *out, const int64_t *values, int64_t n,
                                 const int64_t *ranks, int64_t n_ranks, int threads) nogil


cdef extern from "churn_group.h":
    ctypedef struct churn_group_buffers:
        int64_t capacity
    void churn_group_buffers_init(churn_group_buffers *b) nogil
    void churn_group_buffers_free(churn_group_buffers *b) nogil
    int churn_group_partition(churn_row *rows, int64_t n, churn_group_buffers *b) nogil
    int churn_group_packed_partition(churn_packed_row *rows, int64_t n, int key_shift,
                                     int key_bits, churn_group_buffers *b) nogil
    int churn_group_tight_partition(churn_tight_row *rows, int64_t n, int key_shift,
                                    int key_bits, churn_group_buffers *b) nogil
    ctypedef struct churn_release_state:
        int64_t mark
    int churn_release_init(churn_release_state *s, void *base, int64_t row_bytes,
                           const int64_t *part_offsets, int64_t n_parts) nogil
    void churn_release_done(churn_release_state *s, int64_t p) nogil
    void churn_release_free(churn_release_state *s) nogil


cdef extern from "churn_partition.h":
    ctypedef struct churn_segment:
        const int64_t *ids
        const int32_t *codes
        const int32_t *days
        const int64_t *amounts
        const int32_t *cats
        int64_t n
    ctypedef struct churn_ranges:
        uint64_t key_min
        uint64_t key_max
        int32_t day_min
        int32_t day_max
        int32_t cat_min
        int32_t cat_max
        int64_t amount_min
        int64_t amount_max
        int amounts_coded
    ctypedef struct churn_packing:
        uint64_t key_min
        int shift
        int cat_bits
        int day_bits
        int32_t cat_min
        int32_t day_min
        int amount_kind
        int64_t amount_base
    int CHURN_AMOUNTS_RAW
    int CHURN_AMOUNTS_INT
    int CHURN_AMOUNTS_CENTS
    int64_t churn_cents_of(double value) nogil
    int churn_column_ranges(churn_ranges *out, const churn_segment *segments,
                            int64_t n_segments, const int32_t *rank_of_code, int64_t n_codes,
                            int amount_kind, int64_t n_rows, int threads) nogil
    int churn_packing_of(churn_packing *out, const churn_ranges *ranges, int shift,
                         int amount_kind) nogil
    int churn_partition_rows(void *out, int64_t *part_offsets, int64_t n_parts, uint64_t kmin,
                             int shift, const churn_packing *packing,
                             const churn_segment *segments, int64_t n_segments,
                             const int32_t *rank_of_code, int64_t n_rows, int threads) nogil


cdef extern from "churn_strings.h":
    int CHURN_STR_UTF8
    int CHURN_STR_LARGE_UTF8
    int CHURN_STR_VIEW
    ctypedef struct churn_str_chunk:
        int32_t kind
        int64_t n
        const int32_t *offsets32
        const int64_t *offsets64
        const uint8_t *data
        int64_t data_len
        const uint8_t *views
        const uint8_t *const *buffers
        const int64_t *buffer_lens
        int64_t n_buffers
    ctypedef struct churn_str_dict:
        pass
    int churn_str_encode(int32_t *out_ranks, churn_str_dict **out_dict,
                         const churn_str_chunk *chunks, int64_t n_chunks, int threads,
                         int part_bits, uint64_t hash_mask) nogil
    int64_t churn_str_dict_size(const churn_str_dict *d) nogil
    int64_t churn_str_dict_bytes(const churn_str_dict *d) nogil
    void churn_str_dict_write(const churn_str_dict *d, int64_t *out_offsets,
                              uint8_t *out_data) nogil
    void churn_str_dict_free(churn_str_dict *d) nogil
    uint64_t churn_str_hash(const uint8_t *data, int64_t n) nogil
    ctypedef struct churn_str_packer:
        int n_active
        int bits
        uint8_t byte[17]
        uint8_t width[17]
    ctypedef struct churn_str_key_plan:
        int fits
        churn_str_packer packer
        uint64_t hi_mask, lo_mask, len_mask
    int churn_str_key_plan_of(churn_str_key_plan *out, const churn_str_chunk *chunks,
                              int64_t n_chunks, int threads) nogil
    int churn_str_keys(int64_t *out_keys, const churn_str_key_plan *plan,
                       const churn_str_chunk *chunks, int64_t n_chunks, int threads,
                       int portable) nogil
    int64_t churn_str_keys_long_bytes(const int64_t *keys, int64_t n,
                                      const churn_str_key_plan *plan, int threads) nogil
    void churn_str_keys_write_views(uint8_t *out_views, uint8_t *out_data, const int64_t *keys,
                                    int64_t n, const churn_str_key_plan *plan,
                                    int threads) nogil
