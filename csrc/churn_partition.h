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

/* What the rows span: flipped keys (unsigned order = signed key order),
 * days and categories (0 and 0 without categories). */
typedef struct {
    uint64_t key_min, key_max;
    int32_t day_min, day_max;
    int32_t cat_min, cat_max;
} churn_ranges;

/* The ranges of all rows (n_rows >= 1), on all threads. Returns
 * CHURN_ERR_BAD_CODE for a dictionary code outside [0, n_codes) (with a
 * rank_of_code). */
int churn_column_ranges(churn_ranges *out, const churn_segment *segments, int64_t n_segments,
                        const int32_t *rank_of_code, int64_t n_codes, int64_t n_rows,
                        int threads);

/* How a churn_packed_row (churn_sort.h) holds a row: the word is
 * (key offset in the partition, cat - cat_min, day - day_min) in shift,
 * cat_bits and day_bits bits, and the partition gives the key's high bits
 * back. Used when the three fit 64 bits: always for ranked string ids, and
 * for integer ids unless they spread over nearly the whole int64 range. The
 * grouped rows are the largest buffer of a score; a third fewer bytes to
 * scatter and to touch fresh is a third less of its dearest pass. */
typedef struct {
    uint64_t key_min; /* flipped */
    int shift;        /* partition p holds key offsets [p << shift, (p + 1) << shift) */
    int cat_bits;
    int day_bits;
    int32_t cat_min;
    int32_t day_min;
} churn_packing;

/* The packing of rows spanning `ranges` in partitions of 2^shift keys;
 * returns 0 when key offset, category and day offset do not fit 64 bits. */
int churn_packing_of(churn_packing *out, const churn_ranges *ranges, int shift);

/* Scatters all rows into out (n_rows records: churn_row, or churn_packed_row
 * with a packing) by partition and writes the partition starts to
 * part_offsets (n_parts + 1 entries). */
int churn_partition_rows(void *out, int64_t *part_offsets, int64_t n_parts, uint64_t kmin,
                         int shift, const churn_packing *packing,
                         const churn_segment *segments, int64_t n_segments,
                         const int32_t *rank_of_code, int64_t n_rows, int threads);

#endif
