#include "churn_partition.h"
#include "churn_status.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { STAGE_ROWS = 8 }; /* rows staged per partition: 192 bytes, 3 cache lines */

static inline uint64_t flip(int64_t key) { return (uint64_t)key ^ 0x8000000000000000ULL; }

static inline int64_t key_at(const churn_segment *s, const int32_t *rank_of_code, int64_t i) {
    if (!s->codes) return s->ids[i];
    return rank_of_code ? (int64_t)rank_of_code[s->codes[i]] : (int64_t)s->codes[i];
}

int churn_key_range(const churn_segment *segments, int64_t n_segments,
                    const int32_t *rank_of_code, int64_t n_codes,
                    uint64_t *out_min, uint64_t *out_max) {
    uint64_t lo = ~(uint64_t)0, hi = 0;
    for (int64_t k = 0; k < n_segments; k++) {
        const churn_segment *s = &segments[k];
        if (s->codes && rank_of_code) {
            for (int64_t i = 0; i < s->n; i++)
                if (s->codes[i] < 0 || s->codes[i] >= n_codes) return CHURN_ERR_BAD_CODE;
        }
        for (int64_t i = 0; i < s->n; i++) {
            uint64_t key = flip(key_at(s, rank_of_code, i));
            if (key < lo) lo = key;
            if (key > hi) hi = key;
        }
    }
    *out_min = lo;
    *out_max = hi;
    return CHURN_OK;
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

int churn_partition_rows(churn_row *out, int64_t *part_offsets, int64_t n_parts,
                         uint64_t kmin, int shift, const churn_segment *segments,
                         int64_t n_segments, const int32_t *rank_of_code, int64_t n_rows,
                         int threads) {
    int n_threads = 1;
#ifdef _OPENMP
    n_threads = threads > 0 ? threads : omp_get_max_threads();
#endif
    if (n_rows < (1 << 16)) n_threads = 1; /* not worth waking threads */
    /* counts[t * n_parts + p]: rows of thread t for partition p, then its cursor */
    int64_t *counts = (int64_t *)calloc((size_t)n_threads * (size_t)n_parts, sizeof(int64_t));
    if (!counts) return CHURN_ERR_NOMEM;
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
        churn_row *stage = (churn_row *)malloc((size_t)n_parts * STAGE_ROWS * sizeof(churn_row));
        uint8_t *staged = (uint8_t *)calloc((size_t)n_parts, 1);
        if (!stage || !staged) {
#pragma omp atomic write
            failed = 1;
        } else {
            FOR_ROW_RANGE(segments, n_segments, begin, end, {
                for (int64_t i = first; i < last; i++) {
                    int64_t key = key_at(seg, rank_of_code, i);
                    uint64_t p = (flip(key) - kmin) >> shift;
                    churn_row *slot = &stage[p * STAGE_ROWS + staged[p]];
                    slot->key = key;
                    slot->cat = seg->cats ? seg->cats[i] : 0;
                    slot->day = seg->days[i];
                    slot->amount = seg->amounts[i];
                    if (++staged[p] == STAGE_ROWS) {
                        memcpy(out + mine[p], &stage[p * STAGE_ROWS],
                               STAGE_ROWS * sizeof(churn_row));
                        mine[p] += STAGE_ROWS;
                        staged[p] = 0;
                    }
                }
            });
            for (int64_t p = 0; p < n_parts; p++) {
                memcpy(out + mine[p], &stage[p * STAGE_ROWS], staged[p] * sizeof(churn_row));
                mine[p] += staged[p];
            }
        }
        free(stage);
        free(staged);
    }
    free(counts);
    return failed ? CHURN_ERR_NOMEM : CHURN_OK;
}
