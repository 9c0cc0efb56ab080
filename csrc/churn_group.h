/* Grouping one partition of rows by customer key, in cache.
 *
 * A partition holds the rows of a contiguous key range (see group_rows in
 * _kernel.pyx). Its rows are put in ascending key order with a small open-
 * addressing hash table (key -> local code), a sort of the distinct keys
 * only, and one counting-sort scatter: about 5x fewer memory passes than a
 * radix sort over all 64 key bits.
 */
#ifndef CHURN_GROUP_H
#define CHURN_GROUP_H

#include <stdint.h>

#include "churn_sort.h"

/* Per-thread buffers, grown on demand and reused across partitions. */
typedef struct {
    int64_t capacity;   /* rows the buffers below can take */
    int64_t slots;      /* hash slots (power of two, >= 2 * capacity) */
    int64_t *slot_keys;
    int32_t *slot_codes;
    int32_t *row_codes;
    int64_t *counts;     /* per local code, then start positions */
    churn_row *uniques;  /* distinct keys (code in .day) */
    churn_row *scratch;  /* n rows */
} churn_group_buffers;

void churn_group_buffers_init(churn_group_buffers *b);
void churn_group_buffers_free(churn_group_buffers *b);

/* Reorders rows into ascending key order; rows of one key keep their order.
 * Returns CHURN_OK or CHURN_ERR_NOMEM. */
int churn_group_partition(churn_row *rows, int64_t n, churn_group_buffers *b);

/* The same for packed rows whose key offset is word >> key_shift (the
 * category and day bits: at most 31 + 32) and below 2^key_bits; each
 * customer's rows then ordered by (cat, day, amount bits): the whole
 * partition ends in (word, amount) order. Keys dense enough are counted
 * directly instead of hashed. */
int churn_group_packed_partition(churn_packed_row *rows, int64_t n, int key_shift,
                                 int key_bits, churn_group_buffers *b);
/* The same for 12-byte rows (the amount code breaks ties). */
int churn_group_tight_partition(churn_tight_row *rows, int64_t n, int key_shift,
                                int key_bits, churn_group_buffers *b);

/* Gives consumed rows back to the system while a pass still runs, so a
 * pass that reads a large buffer partition by partition does not hold it all
 * until the end. Partitions finish out of order on several threads; the
 * memory below the first unfinished partition is released in whole 2 MiB
 * blocks (huge pages are never split, few system calls). */
typedef struct {
    const int64_t *part_offsets; /* n_parts + 1 row offsets */
    int64_t n_parts;
    int64_t row_bytes;
    char *base;         /* first row */
    uint8_t *done;      /* per partition */
    int64_t mark;       /* partitions [0, mark) are done */
    uintptr_t released; /* pages below this address are released */
    int lock;
} churn_release_state;

/* Returns CHURN_OK or CHURN_ERR_NOMEM. */
int churn_release_init(churn_release_state *s, void *base, int64_t row_bytes,
                       const int64_t *part_offsets, int64_t n_parts);
/* Marks partition p consumed and releases what can be released. */
void churn_release_done(churn_release_state *s, int64_t p);
void churn_release_free(churn_release_state *s);

#endif
