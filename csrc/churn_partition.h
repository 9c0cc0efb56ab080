/* Radix partitioning of input rows by customer key range.
 *
 * Rows go to partition (flip(key) - kmin) >> shift, so partitions are
 * ascending key ranges and, grouped one by one, give rows in customer order.
 * The scatter runs on all threads over contiguous row ranges, each thread
 * staging rows in small per-partition buffers and writing them out a few
 * cache lines at a time (software write-combining), which keeps thousands
 * of partitions from thrashing the cache and the TLB.
 */
#ifndef CHURN_PARTITION_H
#define CHURN_PARTITION_H

#include <stdint.h>

#include "churn_sort.h"

/* One aligned slice of the input columns. Exactly one of ids (int64 ids)
 * and codes (int32 dictionary codes, key = rank_of_code[code], or the code
 * itself when rank_of_code is NULL) is set; cats may be NULL. */
typedef struct {
    const int64_t *ids;
    const int32_t *codes;
    const int32_t *days;
    const int64_t *amounts;
    const int32_t *cats;
    int64_t n;
} churn_segment;

/* Smallest and largest flipped key (unsigned order = signed key order).
 * Returns CHURN_ERR_BAD_CODE for a dictionary code outside [0, n_codes)
 * (with a rank_of_code). */
int churn_key_range(const churn_segment *segments, int64_t n_segments,
                    const int32_t *rank_of_code, int64_t n_codes,
                    uint64_t *out_min, uint64_t *out_max);

/* Scatters all rows into out (n_rows records) by partition and writes the
 * partition starts to part_offsets (n_parts + 1 entries). */
int churn_partition_rows(churn_row *out, int64_t *part_offsets, int64_t n_parts,
                         uint64_t kmin, int shift, const churn_segment *segments,
                         int64_t n_segments, const int32_t *rank_of_code, int64_t n_rows,
                         int threads);

#endif
