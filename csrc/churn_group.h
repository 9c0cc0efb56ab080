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

/* Gives the whole pages inside [begin, begin + bytes) back to the system
 * (their contents are no longer needed), so a pass that consumes a large
 * buffer partition by partition does not hold it all until the end. */
void churn_release_pages(void *begin, int64_t bytes);

#endif
