#include "churn_partition.h"
#include "churn_bits.h"
#include "churn_status.h"
#include "churn_threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* bytes staged per partition: 3 cache lines, 8 rows, 12 packed or 16 tight rows */
enum { STAGE_BYTES = 192 };

static inline uint64_t flip(int64_t key) { return (uint64_t)key ^ 0x8000000000000000ULL; }

static inline int64_t key_at(const churn_segment *s, const int32_t *rank_of_code, int64_t i) {
    if (!s->codes) return s->ids[i];
    return rank_of_code ? (int64_t)rank_of_code[s->codes[i]] : (int64_t)s->codes[i];
}

/* Whole cents: beyond this many the code and its double are not exact */
#define CENTS_LIMIT 1e13

/* Whether the n doubles (as bits) are all whole cents, and their smallest
 * and largest number of cents. A loop the compiler vectorizes (a division
 * per amount otherwise costs as much as the rest of the ranges pass): below
 * CENTS_LIMIT, adding 1.5 * 2^52 rounds the scaled amount to an integer,
 * which is then the low bits of the sum's representation; the cents are
 * compared back bit for bit. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static int cents_range(const int64_t *bits, int64_t n, int64_t *lo, int64_t *hi) {
    const double round_magic = 6755399441055744.0;
    int64_t magic_bits;
    memcpy(&magic_bits, &round_magic, 8);
    int64_t low = INT64_MAX, high = INT64_MIN, mismatch = 0, too_large = 0;
    for (int64_t i = 0; i < n; i++) {
        double value;
        memcpy(&value, &bits[i], 8);
        double rounded = value * 100.0 + round_magic;
        int64_t rounded_bits;
        memcpy(&rounded_bits, &rounded, 8);
        /* unsigned: amounts past CENTS_LIMIT give garbage here, not overflow */
        int64_t cents = (int64_t)((uint64_t)rounded_bits - (uint64_t)magic_bits);
        double back = (rounded - round_magic) / 100.0;
        int64_t back_bits;
        memcpy(&back_bits, &back, 8);
        mismatch |= back_bits ^ bits[i]; /* not exact, or -0.0 */
        too_large |= !(fabs(value) < CENTS_LIMIT); /* NaN too */
        low = cents < low ? cents : low;
        high = cents > high ? cents : high;
    }
    if (mismatch || too_large) return 0;
    *lo = low;
    *hi = high;
    return 1;
}

/* Calls body(segment, first, last) for the rows [begin, end) of the global
 * row order, split at segment boundaries. */
#define FOR_ROW_RANGE(segments, n_segments, begin, end, BODY)                    \
    do {                                                                         \
        int64_t base_ = 0;                                                       \
        for (int64_t k_ = 0; k_ < (n_segments) && base_ < (end); k_++) {         \
            const churn_segment *seg = &(segments)[k_];                          \
            int64_t first = (begin) > base_ ? (begin) - base_ : 0;               \
            int64_t last = (end) - base_ < seg->n ? (end) - base_ : seg->n;      \
            if (first < last) { BODY }                                           \
            base_ += seg->n;                                                     \
        }                                                                        \
    } while (0)

int churn_column_ranges(churn_ranges *out, const churn_segment *segments, int64_t n_segments,
                        const int32_t *rank_of_code, int64_t n_codes, int amount_kind,
                        int64_t n_rows, int threads) {
    int n_threads = churn_threads_for(threads, n_rows);
    churn_ranges all = {~(uint64_t)0, 0,         INT32_MAX, INT32_MIN, INT32_MAX,
                        INT32_MIN,    INT64_MAX, INT64_MIN, amount_kind != CHURN_AMOUNTS_RAW};
    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        int64_t begin = n_rows * t / n_threads, end = n_rows * (t + 1) / n_threads;
        churn_ranges r = all;
        int bad = 0;
        FOR_ROW_RANGE(segments, n_segments, begin, end, {
            if (seg->codes && rank_of_code) {
                for (int64_t i = first; i < last; i++)
                    bad |= seg->codes[i] < 0 || seg->codes[i] >= n_codes;
            }
            if (!bad) {
                for (int64_t i = first; i < last; i++) {
                    uint64_t key = flip(key_at(seg, rank_of_code, i));
                    r.key_min = key < r.key_min ? key : r.key_min;
                    r.key_max = key > r.key_max ? key : r.key_max;
                }
            }
            for (int64_t i = first; i < last; i++) {
                int32_t day = seg->days[i];
                r.day_min = day < r.day_min ? day : r.day_min;
                r.day_max = day > r.day_max ? day : r.day_max;
            }
            if (seg->cats) {
                for (int64_t i = first; i < last; i++) {
                    int32_t cat = seg->cats[i];
                    r.cat_min = cat < r.cat_min ? cat : r.cat_min;
                    r.cat_max = cat > r.cat_max ? cat : r.cat_max;
                }
            } else {
                r.cat_min = r.cat_max = 0;
            }
            if (r.amounts_coded) {
                int64_t lo = INT64_MAX;
                int64_t hi = INT64_MIN;
                if (amount_kind == CHURN_AMOUNTS_INT) {
                    for (int64_t i = first; i < last; i++) {
                        int64_t a = seg->amounts[i];
                        lo = a < lo ? a : lo;
                        hi = a > hi ? a : hi;
                    }
                } else {
                    r.amounts_coded = cents_range(seg->amounts + first, last - first, &lo, &hi);
                }
                r.amount_min = lo < r.amount_min ? lo : r.amount_min;
                r.amount_max = hi > r.amount_max ? hi : r.amount_max;
            }
        });
#pragma omp critical
        {
            failed |= bad;
            if (r.key_min < all.key_min) all.key_min = r.key_min;
            if (r.key_max > all.key_max) all.key_max = r.key_max;
            if (r.day_min < all.day_min) all.day_min = r.day_min;
            if (r.day_max > all.day_max) all.day_max = r.day_max;
            if (r.cat_min < all.cat_min) all.cat_min = r.cat_min;
            if (r.cat_max > all.cat_max) all.cat_max = r.cat_max;
            if (r.amount_min < all.amount_min) all.amount_min = r.amount_min;
            if (r.amount_max > all.amount_max) all.amount_max = r.amount_max;
            all.amounts_coded &= r.amounts_coded;
        }
    }
    *out = all;
    return failed ? CHURN_ERR_BAD_CODE : CHURN_OK;
}

/* x << n and x >> n for n up to 64 (C leaves a shift by 64 undefined) */
static inline uint64_t shl(uint64_t x, int n) { return n >= 64 ? 0 : x << n; }
static inline uint64_t shr(uint64_t x, int n) { return n >= 64 ? 0 : x >> n; }
static inline uint64_t low_mask(int n) { return n >= 64 ? ~(uint64_t)0 : shl(1, n) - 1; }

/* The largest amount code of the rows (see churn_packing), in base the
 * amount_base; UINT64_MAX when the codes do not fit 32 bits. */
static uint64_t amount_code_max(const churn_ranges *r, int amount_kind, int64_t *base) {
    if (amount_kind == CHURN_AMOUNTS_RAW || !r->amounts_coded) return UINT64_MAX;
    if (amount_kind == CHURN_AMOUNTS_INT) {
        *base = r->amount_min;
        uint64_t span = (uint64_t)r->amount_max - (uint64_t)r->amount_min;
        return span <= UINT32_MAX ? span : UINT64_MAX;
    }
    /* cents: |codes| < 1e15, no overflow below */
    int64_t negatives = r->amount_min < 0 ? -r->amount_min : 0;
    int64_t top = r->amount_max >= 0 ? negatives + r->amount_max : negatives - 1;
    *base = negatives;
    return top <= (int64_t)UINT32_MAX ? (uint64_t)top : UINT64_MAX;
}

int churn_packing_of(churn_packing *out, const churn_ranges *ranges, int shift,
                     int amount_kind) {
    if (ranges->cat_min < 0) return 0; /* categories are ranks */
    int cat_bits = churn_bit_length((uint64_t)(ranges->cat_max - ranges->cat_min));
    int day_bits = churn_bit_length((uint64_t)((int64_t)ranges->day_max - ranges->day_min));
    if (shift + cat_bits + day_bits > 64) return 0;
    out->key_min = ranges->key_min;
    out->shift = shift;
    out->cat_bits = cat_bits;
    out->day_bits = day_bits;
    out->cat_min = ranges->cat_min;
    out->day_min = ranges->day_min;
    int64_t base = 0;
    int coded = amount_code_max(ranges, amount_kind, &base) != UINT64_MAX;
    out->amount_kind = coded ? amount_kind : CHURN_AMOUNTS_RAW;
    out->amount_base = coded ? base : 0;
    return 1;
}

/* The uint32 code of a row's amount under a packing that codes amounts
 * (every amount has one: churn_column_ranges checked them). */
static inline uint32_t packed_amount(const churn_packing *pk, int64_t bits) {
    if (pk->amount_kind == CHURN_AMOUNTS_INT)
        return (uint32_t)((uint64_t)bits - (uint64_t)pk->amount_base);
    double value;
    memcpy(&value, &bits, 8);
    int64_t code = churn_cents_of(value);
    return (uint32_t)(code < 0 ? -1 - code : pk->amount_base + code);
}

static inline uint64_t pack_word(const churn_packing *pk, uint64_t offset, int32_t cat,
                                 int32_t day) {
    return shl(offset, pk->cat_bits + pk->day_bits) |
           shl((uint64_t)((int64_t)cat - pk->cat_min), pk->day_bits) |
           (uint64_t)((int64_t)day - pk->day_min);
}

/* The scatter loop of churn_partition_rows for records of type T: FILL
 * writes row i of segment seg (key, partition p) to *slot; full stages go
 * out a few cache lines at a time (software write-combining). */
#define SCATTER(T, FILL)                                                                \
    do {                                                                                \
        T *rows = (T *)out, *slots = (T *)stage;                                        \
        FOR_ROW_RANGE(segments, n_segments, begin, end, {                               \
            for (int64_t i = first; i < last; i++) {                                    \
                int64_t key = key_at(seg, rank_of_code, i);                             \
                uint64_t p = (flip(key) - kmin) >> shift;                               \
                T *slot = &slots[p * (uint64_t)stage_rows + staged[p]];                 \
                FILL                                                                    \
                if (++staged[p] == stage_rows) {                                        \
                    memcpy(rows + mine[p], &slots[p * (uint64_t)stage_rows], STAGE_BYTES); \
                    mine[p] += stage_rows;                                              \
                    staged[p] = 0;                                                      \
                }                                                                       \
            }                                                                           \
        });                                                                             \
        for (int64_t p = 0; p < n_parts; p++) {                                         \
            memcpy(rows + mine[p], &slots[p * stage_rows], staged[p] * sizeof(T));      \
            mine[p] += staged[p];                                                       \
        }                                                                               \
    } while (0)

int churn_partition_rows(void *out, int64_t *part_offsets, int64_t n_parts, uint64_t kmin,
                         int shift, const churn_packing *packing,
                         const churn_segment *segments, int64_t n_segments,
                         const int32_t *rank_of_code, int64_t n_rows, int threads) {
    int n_threads = churn_threads_for(threads, n_rows);
    /* counts[t * n_parts + p]: rows of thread t for partition p, then its cursor */
    int64_t *counts = (int64_t *)calloc((size_t)n_threads * (size_t)n_parts, sizeof(int64_t));
    if (!counts) return CHURN_ERR_NOMEM;
    const int tight = packing && packing->amount_kind != CHURN_AMOUNTS_RAW;
    const int stage_rows =
        (int)(STAGE_BYTES / (tight     ? sizeof(churn_tight_row)
                             : packing ? sizeof(churn_packed_row)
                                       : sizeof(churn_row)));
    int failed = 0;

#pragma omp parallel num_threads(n_threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        int64_t begin = n_rows * t / n_threads, end = n_rows * (t + 1) / n_threads;
        int64_t *mine = counts + (int64_t)t * n_parts;
        FOR_ROW_RANGE(segments, n_segments, begin, end, {
            for (int64_t i = first; i < last; i++)
                mine[(flip(key_at(seg, rank_of_code, i)) - kmin) >> shift]++;
        });
#pragma omp barrier
#pragma omp single
        {
            int64_t start = 0;
            for (int64_t p = 0; p < n_parts; p++) {
                part_offsets[p] = start;
                for (int u = 0; u < n_threads; u++) {
                    int64_t c = counts[(int64_t)u * n_parts + p];
                    counts[(int64_t)u * n_parts + p] = start;
                    start += c;
                }
            }
            part_offsets[n_parts] = start;
        }
        uint8_t *stage = (uint8_t *)malloc((size_t)n_parts * STAGE_BYTES);
        uint8_t *staged = (uint8_t *)calloc((size_t)n_parts, 1);
        if (!stage || !staged) {
#pragma omp atomic write
            failed = 1;
        } else if (tight) {
            SCATTER(churn_tight_row, {
                uint64_t offset = flip(key) - kmin;
                slot->word = pack_word(packing, offset - shl(p, shift),
                                       seg->cats ? seg->cats[i] : 0, seg->days[i]);
                slot->amount = packed_amount(packing, seg->amounts[i]);
            });
        } else if (packing) {
            SCATTER(churn_packed_row, {
                uint64_t offset = flip(key) - kmin;
                slot->word = pack_word(packing, offset - shl(p, shift),
                                       seg->cats ? seg->cats[i] : 0, seg->days[i]);
                slot->amount = seg->amounts[i];
            });
        } else {
            SCATTER(churn_row, {
                slot->key = key;
                slot->cat = seg->cats ? seg->cats[i] : 0;
                slot->day = seg->days[i];
                slot->amount = seg->amounts[i];
            });
        }
        free(stage);
        free(staged);
    }
    free(counts);
    return failed ? CHURN_ERR_NOMEM : CHURN_OK;
}
