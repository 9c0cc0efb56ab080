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

/* How the amounts' 64 bits are read when they may be coded in 32 bits:
 * not at all, as int64 values, or as float64 values that are whole cents
 * (each the double nearest to c / 100 for an integer c, -0.0 excluded:
 * (double)c / 100.0 gives the same bits back). */
enum { CHURN_AMOUNTS_RAW = 0, CHURN_AMOUNTS_INT = 1, CHURN_AMOUNTS_CENTS = 2 };

/* The number of cents of an amount that is whole cents (rounded, for any
 * double below 1e13 in magnitude). */
static inline int64_t churn_cents_of(double value) {
    double scaled = value * 100.0;
    return (int64_t)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
}

/* What the rows span: flipped keys (unsigned order = signed key order),
 * days, categories (0 and 0 without categories) and, when asked for, the
 * amounts' codes (the integer, or the number of cents): amounts_coded is 0
 * when some amount has none (not whole cents, or too large). */
typedef struct {
    uint64_t key_min, key_max;
    int32_t day_min, day_max;
    int32_t cat_min, cat_max;
    int64_t amount_min, amount_max;
    int amounts_coded;
} churn_ranges;

/* The ranges of all rows (n_rows >= 1), on all threads; the amounts' codes
 * as amount_kind (CHURN_AMOUNTS_*) reads them. Returns CHURN_ERR_BAD_CODE
 * for a dictionary code outside [0, n_codes) (with a rank_of_code). */
int churn_column_ranges(churn_ranges *out, const churn_segment *segments, int64_t n_segments,
                        const int32_t *rank_of_code, int64_t n_codes, int amount_kind,
                        int64_t n_rows, int threads);

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
    /* CHURN_AMOUNTS_RAW: 16-byte churn_packed_row records, the amount's raw
     * bits; otherwise 12-byte churn_tight_row records, the amount as a
     * uint32 code that orders like the raw bits (as int64): an integer
     * amount a is a - amount_base; an amount of c cents is -1 - c when
     * c < 0 (doubles below zero order by magnitude), amount_base + c
     * otherwise, amount_base being the number of negative codes. */
    int amount_kind;
    int64_t amount_base;
} churn_packing;

/* The packing of rows spanning `ranges` in partitions of 2^shift keys;
 * returns 0 when key offset, category and day offset do not fit 64 bits.
 * The amounts are coded when ranges has their codes (amount_kind as for
 * churn_column_ranges) and the codes fit 32 bits. */
int churn_packing_of(churn_packing *out, const churn_ranges *ranges, int shift,
                     int amount_kind);

/* Scatters all rows into out (n_rows records: churn_row, or with a packing
 * churn_packed_row or churn_tight_row) by partition and writes the partition starts to
 * part_offsets (n_parts + 1 entries). */
int churn_partition_rows(void *out, int64_t *part_offsets, int64_t n_parts, uint64_t kmin,
                         int shift, const churn_packing *packing,
                         const churn_segment *segments, int64_t n_segments,
                         const int32_t *rank_of_code, int64_t n_rows, int threads);

#endif
