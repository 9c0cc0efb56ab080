/* Sorting and selection helpers for the kernel: ranks of unique ids, the
 * per-customer row order, and order statistics (medians, RFM cut points). */
#ifndef CHURN_SORT_H
#define CHURN_SORT_H

#include <stdint.h>

/* One accepted input row, as the kernel groups it. `key` is the customer
 * (the id, or the rank of a string id); `amount` holds the raw 64 bits of
 * the value (int64, or a double's bits): ordering a customer's rows by them
 * gives a fixed summation order whatever the input order. */
typedef struct {
    int64_t key;
    int32_t cat;
    int32_t day;
    int64_t amount;
} churn_row;

/* A row in 16 bytes instead of 24: the key's offset inside its partition,
 * the category and the day offset packed into one word, most significant
 * first, so the word orders rows by (key, cat, day); see churn_partition.h. */
typedef struct {
    uint64_t word;
    int64_t amount;
} churn_packed_row;

/* A packed row in 12 bytes: the word, and the amount as a 32-bit code that
 * orders like its raw 64 bits (see churn_packing). Unaligned words are fine
 * on the machines the kernel targets and are read through memcpy or the
 * packed struct, never through a plain uint64_t pointer. */
typedef struct __attribute__((packed)) {
    uint64_t word;
    uint32_t amount;
} churn_tight_row;

/* The order of packed rows: the word orders by (key, cat, day), see
 * churn_partition.h; the amount (raw bits, or a code ordering like them)
 * breaks ties. */
#define CHURN_WORD_AMOUNT_LESS(a, b) \
    ((a)->word != (b)->word ? (a)->word < (b)->word : (a)->amount < (b)->amount)

/* Sorts one customer's rows by (cat, day, amount bits); keys are equal. */
void churn_sort_rows(churn_row *rows, int64_t n);

/* Sorts packed rows by (word, amount bits): (key, cat, day, amount bits). */
void churn_sort_packed_rows(churn_packed_row *rows, int64_t n);

/* The same for 12-byte rows: by (word, amount code). */
void churn_sort_tight_rows(churn_tight_row *rows, int64_t n);

/* Stable sort of rows by key (signed order): radix passes that skip digits
 * the same in every row, insertion sort for short runs. scratch holds n rows. */
void churn_sort_by_key(churn_row *rows, churn_row *scratch, int64_t n);

/* Quickselect: rearranges values so values[k] is the k-th smallest, smaller
 * ones before it and larger ones after; returns values[k]. */
int64_t churn_select_int64(int64_t *values, int64_t n, int64_t k);

/* Median of values (mean of the two middle ones for an even count); reorders
 * values. n must be >= 1. */
double churn_median_int64(int64_t *values, int64_t n);

/* Several order statistics in one go, by radix selection on order-preserving
 * keys (values are not modified): out[j] = the value of 0-based rank
 * ranks[j] in ascending order, for n_ranks ranks in any order (repeats
 * allowed), each in [0, n). The passes over the values run on `threads`
 * threads (<= 0: OpenMP's default) when there are many. Doubles: -0.0 and
 * 0.0 are the same value, returned as +0.0; if any value is NaN every out[j]
 * is NaN (as numpy.quantile). Returns CHURN_OK or CHURN_ERR_NOMEM. */
int churn_select_ranks_double(double *out, const double *values, int64_t n,
                              const int64_t *ranks, int64_t n_ranks, int threads);
int churn_select_ranks_int64(int64_t *out, const int64_t *values, int64_t n,
                             const int64_t *ranks, int64_t n_ranks, int threads);

#endif
