#include "churn_sort.h"
#include "churn_bits.h"
#include "churn_introsort.h"
#include "churn_status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- rows by key: LSD radix sort, 8-bit digits ------------------------- */

static inline uint64_t flip(int64_t key) {
    /* flipping the sign bit makes unsigned order equal signed order */
    return (uint64_t)key ^ 0x8000000000000000ULL;
}

/* The key bits that are not the same in every row. */
static uint64_t varying_bits(const churn_row *rows, int64_t n) {
    uint64_t all_or = 0, all_and = ~(uint64_t)0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = flip(rows[i].key);
        all_or |= k;
        all_and &= k;
    }
    return all_or ^ all_and;
}

static void insertion_sort_by_key(churn_row *rows, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        churn_row x = rows[i];
        int64_t j = i;
        while (j > 0 && rows[j - 1].key > x.key) {
            rows[j] = rows[j - 1];
            j--;
        }
        rows[j] = x;
    }
}

static void lsd_sort_by_key(churn_row *rows, churn_row *scratch, int64_t n);

/* One MSD pass on the top 11 varying bits, then each (small) bucket on its
 * own: two passes over short arrays instead of one per 11 bits of the key. */
void churn_sort_by_key(churn_row *rows, churn_row *scratch, int64_t n) {
    if (n < 2) return;
    if (n <= 32) {
        insertion_sort_by_key(rows, n);
        return;
    }
    uint64_t varying = varying_bits(rows, n);
    if (varying == 0) return; /* one key */
    int top = 63;
    while (!((varying >> top) & 1)) top--;
    int shift = top >= 10 ? top - 10 : 0;
    int64_t start[2049];
    memset(start, 0, sizeof(start));
    for (int64_t i = 0; i < n; i++) start[((flip(rows[i].key) >> shift) & 2047) + 1]++;
    for (int d = 0; d < 2048; d++) start[d + 1] += start[d];
    int64_t cursor[2048];
    memcpy(cursor, start, sizeof(cursor));
    for (int64_t i = 0; i < n; i++) scratch[cursor[(flip(rows[i].key) >> shift) & 2047]++] = rows[i];
    memcpy(rows, scratch, (size_t)n * sizeof(churn_row));
    if (shift == 0) return; /* the digit was the whole varying key */
    for (int d = 0; d < 2048; d++) {
        int64_t size = start[d + 1] - start[d];
        if (size <= 32) insertion_sort_by_key(rows + start[d], size);
        else lsd_sort_by_key(rows + start[d], scratch, size);
    }
}

static void lsd_sort_by_key(churn_row *rows, churn_row *scratch, int64_t n) {
    uint64_t varying = varying_bits(rows, n);
    churn_row *src = rows, *dst = scratch;
    enum { DIGIT_BITS = 11, DIGITS = 1 << DIGIT_BITS, MASK = DIGITS - 1 };
    int64_t count[DIGITS];
    for (int shift = 0; shift < 64; shift += DIGIT_BITS) {
        if (((varying >> shift) & MASK) == 0) continue; /* digit constant: skip */
        memset(count, 0, sizeof(count));
        for (int64_t i = 0; i < n; i++) count[(flip(src[i].key) >> shift) & MASK]++;
        int64_t sum = 0;
        for (int d = 0; d < DIGITS; d++) {
            int64_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[count[(flip(src[i].key) >> shift) & MASK]++] = src[i];
        churn_row *t = src; src = dst; dst = t;
    }
    if (src != rows) memcpy(rows, src, (size_t)n * sizeof(churn_row));
}

/* ---- per-customer row order: introsort --------------------------------- */

static inline int row_less(const churn_row *a, const churn_row *b) {
    if (a->cat != b->cat) return a->cat < b->cat;
    if (a->day != b->day) return a->day < b->day;
    return a->amount < b->amount;
}

CHURN_INTROSORT(rows, churn_row, row_less)
CHURN_INTROSORT(packed, churn_packed_row, CHURN_WORD_AMOUNT_LESS)
CHURN_INTROSORT(tight, churn_tight_row, CHURN_WORD_AMOUNT_LESS)

void churn_sort_rows(churn_row *rows, int64_t n) { introsort_rows(rows, n); }

void churn_sort_packed_rows(churn_packed_row *rows, int64_t n) { introsort_packed(rows, n); }

void churn_sort_tight_rows(churn_tight_row *rows, int64_t n) { introsort_tight(rows, n); }

/* ---- selection ---------------------------------------------------------- */

#define DEFINE_SELECT(NAME, T)                                                  \
    T NAME(T *v, int64_t n, int64_t k) {                                        \
        int64_t lo = 0, hi = n - 1;                                             \
        while (hi > lo) {                                                       \
            int64_t mid = lo + (hi - lo) / 2;                                   \
            /* median of three into v[lo] keeps sorted runs from degrading */   \
            if (v[mid] < v[lo]) { T t = v[mid]; v[mid] = v[lo]; v[lo] = t; }    \
            if (v[hi] < v[lo]) { T t = v[hi]; v[hi] = v[lo]; v[lo] = t; }       \
            if (v[hi] < v[mid]) { T t = v[hi]; v[hi] = v[mid]; v[mid] = t; }    \
            T pivot = v[mid];                                                   \
            /* three-way partition: heavy ties (RFM) stay linear */             \
            int64_t lt = lo, gt = hi, i = lo;                                   \
            while (i <= gt) {                                                   \
                if (v[i] < pivot) { T t = v[lt]; v[lt] = v[i]; v[i] = t; lt++; i++; } \
                else if (pivot < v[i]) { T t = v[gt]; v[gt] = v[i]; v[i] = t; gt--; } \
                else i++;                                                       \
            }                                                                   \
            if (k < lt) hi = lt - 1;                                            \
            else if (k > gt) lo = gt + 1;                                       \
            else return v[k];                                                   \
        }                                                                       \
        return v[k];                                                            \
    }

DEFINE_SELECT(churn_select_int64, int64_t)

#define DEFINE_MEDIAN(NAME, SELECT, T)                                          \
    double NAME(T *v, int64_t n) {                                              \
        int64_t k = (n - 1) / 2;                                                \
        if (n <= 16) { /* most customers have few gaps: sort them */           \
            for (int64_t i = 1; i < n; i++) {                                   \
                T x = v[i];                                                     \
                int64_t j = i;                                                  \
                while (j > 0 && x < v[j - 1]) { v[j] = v[j - 1]; j--; }         \
                v[j] = x;                                                       \
            }                                                                   \
            if (n % 2 == 1) return (double)v[k];                                \
            return ((double)v[k] + (double)v[k + 1]) / 2.0;                     \
        }                                                                       \
        T lower = SELECT(v, n, k);                                              \
        if (n % 2 == 1) return (double)lower;                                   \
        T upper = v[k + 1];                                                     \
        for (int64_t i = k + 2; i < n; i++) if (v[i] < upper) upper = v[i];     \
        return ((double)lower + (double)upper) / 2.0;                           \
    }

DEFINE_MEDIAN(churn_median_int64, churn_select_int64, int64_t)

/* ---- many order statistics at once: radix selection on keys ------------- */

/* Values become unsigned keys in the same order: an int64 with its sign bit
 * flipped; a double's bits all flipped when negative, the sign bit set
 * otherwise. A round counts the keys by a digit (up to 16 bits: the top
 * bits of the key, or the top bits that differ between the smallest and
 * largest key, found by a first pass), then gathers the keys of only the
 * digits that hold a wanted rank. Each such digit is the input of the next
 * round, whose keys share one more digit: at most 8 rounds, and after the
 * first one the keys left are usually a small fraction of the input. */

#define KEY_SIGN 0x8000000000000000ULL
/* double keys below key(-inf) or above key(+inf) are NaNs */
#define KEY_MINUS_INF 0x000FFFFFFFFFFFFFULL
#define KEY_PLUS_INF 0xFFF0000000000000ULL
#define SELECT_UNORDERED (-1) /* internal: a NaN among the values */

enum {
    SELECT_SORT_MAX = 64,       /* fewer keys: insertion sort */
    SELECT_LARGE = 1 << 16,     /* more keys: several threads, and doubles skip the range pass */
    CHUNK_MIN = 1 << 15,        /* keys per thread at least */
    DIGIT_BITS_MIN = 8,
    DIGIT_BITS_MAX = 16,
    TOP_DIGIT_SHIFT = 64 - DIGIT_BITS_MAX,
    PREFETCH_AHEAD = 512,       /* items: the hardware prefetcher alone leaves these loops waiting */
    /* Counting a run of equal digits into one histogram waits on each
     * increment; with few digits (F: order counts) runs are common, so they
     * are counted in turn into several histograms, added up after. */
    COUNT_LANES = 4,
    LANES_MAX_DIGITS = 1 << 12,
};

static inline uint64_t key_of_int64(int64_t v) { return (uint64_t)v ^ KEY_SIGN; }
static inline int64_t int64_of_key(uint64_t k) { return (int64_t)(k ^ KEY_SIGN); }
static inline uint64_t key_of_key(uint64_t k) { return k; }

static inline uint64_t key_of_double(double v) {
    double x = v + 0.0; /* -0.0 + 0.0 is +0.0: zero has one key, returned as +0.0 */
    uint64_t b;
    memcpy(&b, &x, sizeof(b));
    return b ^ ((0 - (b >> 63)) | KEY_SIGN);
}

static inline double double_of_key(uint64_t k) {
    uint64_t b = (k & KEY_SIGN) ? k ^ KEY_SIGN : ~k;
    double x;
    memcpy(&x, &b, sizeof(x));
    return x;
}

/* The passes over items [begin, end) of one kind of input. Keys outside
 * [ordered_lo, ordered_hi] have no order (NaN). top_digit: large inputs are
 * counted by the top 16 bits of the key straight away (the sign and exponent
 * of doubles vary), without a pass for the range first. */
typedef struct {
    void (*keys)(const void *values, int64_t begin, int64_t end, uint64_t *dst);
    void (*range)(const void *values, int64_t begin, int64_t end, uint64_t *lo, uint64_t *hi);
    void (*count)(const void *values, int64_t begin, int64_t end, uint64_t lo, int shift,
                  int64_t *hist, int64_t lane_stride);
    void (*gather)(const void *values, int64_t begin, int64_t end, uint64_t lo, int shift,
                   int64_t *cursor, uint64_t *dst);
    uint64_t ordered_lo, ordered_hi;
    int top_digit;
} key_passes;

/* BODY with k = KEY(v[i + u]) for the items in [begin, end), prefetching
 * ahead; u is the item's place in its block of 8 (0 after the last block). */
#define FOR_KEYS(v, begin, end, KEY, BODY)                                             \
    do {                                                                               \
        int64_t i = (begin);                                                           \
        for (; i + 8 <= (end); i += 8) {                                               \
            if (i + PREFETCH_AHEAD < (end)) __builtin_prefetch((v) + i + PREFETCH_AHEAD); \
            for (int u = 0; u < 8; u++) {                                              \
                uint64_t k = KEY((v)[i + u]);                                          \
                BODY                                                                   \
            }                                                                          \
        }                                                                              \
        for (const int u = 0; i < (end); i++) {                                        \
            uint64_t k = KEY((v)[i]);                                                  \
            (void)u;                                                                   \
            BODY                                                                       \
        }                                                                              \
    } while (0)

#define DEFINE_KEY_PASSES(NAME, T, KEY, ORDERED_LO, ORDERED_HI, TOP_DIGIT)             \
    static void NAME##_keys(const void *values, int64_t begin, int64_t end,           \
                            uint64_t *dst) {                                           \
        const T *v = (const T *)values;                                                \
        for (int64_t i = begin; i < end; i++) dst[i - begin] = KEY(v[i]);              \
    }                                                                                  \
    static void NAME##_range(const void *values, int64_t begin, int64_t end,          \
                             uint64_t *out_lo, uint64_t *out_hi) {                     \
        const T *v = (const T *)values;                                                \
        uint64_t lo = ~(uint64_t)0, hi = 0;                                            \
        FOR_KEYS(v, begin, end, KEY, {                                                 \
            lo = k < lo ? k : lo;                                                      \
            hi = k > hi ? k : hi;                                                      \
        });                                                                            \
        *out_lo = lo;                                                                  \
        *out_hi = hi;                                                                  \
    }                                                                                  \
    /* COUNT_LANES histograms lane_stride apart (0: one), used in turn */          \
    static void NAME##_count(const void *values, int64_t begin, int64_t end,          \
                             uint64_t lo, int shift, int64_t *hist,                    \
                             int64_t lane_stride) {                                    \
        const T *v = (const T *)values;                                                \
        FOR_KEYS(v, begin, end, KEY, {                                                 \
            hist[(u % COUNT_LANES) * lane_stride + (int64_t)((k - lo) >> shift)]++;    \
        });                                                                            \
    }                                                                                  \
    /* cursor[digit]: where the next key of that digit goes; < 0: not wanted */      \
    static void NAME##_gather(const void *values, int64_t begin, int64_t end,         \
                              uint64_t lo, int shift, int64_t *cursor, uint64_t *dst) { \
        const T *v = (const T *)values;                                                \
        FOR_KEYS(v, begin, end, KEY, {                                                 \
            int64_t *c = &cursor[(k - lo) >> shift];                                   \
            if (*c >= 0) dst[(*c)++] = k;                                              \
        });                                                                            \
    }                                                                                  \
    static const key_passes NAME = {NAME##_keys,  NAME##_range, NAME##_count,          \
                                    NAME##_gather, ORDERED_LO,  ORDERED_HI, TOP_DIGIT};

DEFINE_KEY_PASSES(int64_passes, int64_t, key_of_int64, 0, ~(uint64_t)0, 0)
DEFINE_KEY_PASSES(double_passes, double, key_of_double, KEY_MINUS_INF, KEY_PLUS_INF, 1)
DEFINE_KEY_PASSES(uint64_passes, uint64_t, key_of_key, 0, ~(uint64_t)0, 0)

typedef struct {
    int64_t rank; /* among the keys of the current round */
    int64_t slot; /* where its key goes in the result */
} wanted_rank;

/* The wanted ranks that fall in one digit of a round. */
typedef struct {
    int64_t digit, first, last; /* wanted ranks [first, last) */
    int64_t below, size;        /* keys in smaller digits, keys in this one */
} wanted_digit;

static void insertion_sort_keys(uint64_t *keys, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        uint64_t x = keys[i];
        int64_t j = i;
        while (j > 0 && keys[j - 1] > x) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = x;
    }
}

/* Item c * n / chunks, the start of chunk c, without overflow. */
static inline int64_t chunk_begin(int64_t n, int c, int chunks) {
    return n / chunks * c + n % chunks * c / chunks;
}

/* Smallest and largest key, on `chunks` threads. */
static int key_range(const key_passes *p, const void *values, int64_t n, int chunks,
                     uint64_t *out_lo, uint64_t *out_hi) {
    uint64_t *bounds = (uint64_t *)malloc(2 * (size_t)chunks * sizeof(uint64_t));
    if (!bounds) return CHURN_ERR_NOMEM;
#pragma omp parallel for schedule(static, 1) num_threads(chunks) if (chunks > 1)
    for (int c = 0; c < chunks; c++)
        p->range(values, chunk_begin(n, c, chunks), chunk_begin(n, c + 1, chunks),
                 &bounds[2 * c], &bounds[2 * c + 1]);
    uint64_t lo = bounds[0], hi = bounds[1];
    for (int c = 1; c < chunks; c++) {
        lo = bounds[2 * c] < lo ? bounds[2 * c] : lo;
        hi = bounds[2 * c + 1] > hi ? bounds[2 * c + 1] : hi;
    }
    free(bounds);
    *out_lo = lo;
    *out_hi = hi;
    return CHURN_OK;
}

/* res[want[j].slot] = the key of rank want[j].rank (want sorted by rank,
 * m >= 1) among the n keys of `values`. */
static int select_round(uint64_t *res, const key_passes *p, const void *values, int64_t n,
                        const wanted_rank *want, int64_t m, int threads) {
    if (n <= SELECT_SORT_MAX) {
        uint64_t keys[SELECT_SORT_MAX];
        p->keys(values, 0, n, keys);
        insertion_sort_keys(keys, n);
        if (keys[0] < p->ordered_lo || keys[n - 1] > p->ordered_hi) return SELECT_UNORDERED;
        for (int64_t j = 0; j < m; j++) res[want[j].slot] = keys[want[j].rank];
        return CHURN_OK;
    }
    int chunks = 1;
#ifdef _OPENMP
    if (n >= SELECT_LARGE) chunks = threads > 0 ? threads : omp_get_max_threads();
#endif
    (void)threads;
    /* a histogram per chunk: keep chunks large, whatever `threads` asks for */
    if (chunks > n / CHUNK_MIN) chunks = (int)(n / CHUNK_MIN);
    if (chunks < 1) chunks = 1;
    int rc;
    uint64_t lo = 0, hi = ~(uint64_t)0;
    int shift = TOP_DIGIT_SHIFT, top_digit = p->top_digit && n >= SELECT_LARGE;
    if (!top_digit) {
        rc = key_range(p, values, n, chunks, &lo, &hi);
        if (rc != CHURN_OK) return rc;
        if (lo < p->ordered_lo || hi > p->ordered_hi) return SELECT_UNORDERED;
        if (lo == hi) { /* all equal */
            for (int64_t j = 0; j < m; j++) res[want[j].slot] = lo;
            return CHURN_OK;
        }
        int bits = churn_bit_length(hi - lo);
        int digit_bits = churn_bit_length((uint64_t)n);
        if (digit_bits < DIGIT_BITS_MIN) digit_bits = DIGIT_BITS_MIN;
        if (digit_bits > DIGIT_BITS_MAX) digit_bits = DIGIT_BITS_MAX;
        if (digit_bits > bits) digit_bits = bits;
        shift = bits - digit_bits;
    }
    int64_t n_digits = (int64_t)((hi - lo) >> shift) + 1;
    int lanes = n_digits <= LANES_MAX_DIGITS ? COUNT_LANES : 1;
    /* hist[c * n_digits + d]: keys of chunk c with digit d, then its cursor;
     * lane l > 0 of chunk c's count at row l * chunks + c */
    int64_t *hist = (int64_t *)calloc((size_t)lanes * (size_t)chunks * (size_t)n_digits,
                                      sizeof(int64_t));
    wanted_digit *digits = (wanted_digit *)malloc((size_t)m * sizeof(wanted_digit));
    if (!hist || !digits) {
        free(hist);
        free(digits);
        return CHURN_ERR_NOMEM;
    }
    int64_t lane_stride = lanes > 1 ? (int64_t)chunks * n_digits : 0;
#pragma omp parallel for schedule(static, 1) num_threads(chunks) if (chunks > 1)
    for (int c = 0; c < chunks; c++) {
        int64_t *mine = hist + (int64_t)c * n_digits;
        p->count(values, chunk_begin(n, c, chunks), chunk_begin(n, c + 1, chunks), lo, shift,
                 mine, lane_stride);
        for (int l = 1; l < lanes; l++)
            for (int64_t d = 0; d < n_digits; d++) mine[d] += mine[l * lane_stride + d];
    }

    /* the digits holding the wanted ranks; the other digits' cursors are -1 */
    int64_t n_wanted = 0, below = 0, j = 0, gathered = 0;
    int64_t extreme = 0; /* top digit: keys in the digits of NaN and infinity */
    for (int64_t d = 0; d < n_digits; d++) {
        int64_t size = 0;
        for (int c = 0; c < chunks; c++) size += hist[(int64_t)c * n_digits + d];
        if (top_digit && (d <= (int64_t)(p->ordered_lo >> shift) ||
                          d >= (int64_t)(p->ordered_hi >> shift)))
            extreme += size;
        if (j < m && want[j].rank < below + size) {
            wanted_digit *w = &digits[n_wanted++];
            w->digit = d;
            w->first = j;
            while (j < m && want[j].rank < below + size) j++;
            w->last = j;
            w->below = below;
            w->size = size;
            for (int c = 0; c < chunks; c++) { /* chunk c's keys go after chunk c - 1's */
                int64_t *cell = &hist[(int64_t)c * n_digits + d];
                int64_t count = *cell;
                *cell = gathered;
                gathered += count;
            }
        } else {
            for (int c = 0; c < chunks; c++) hist[(int64_t)c * n_digits + d] = -1;
        }
        below += size;
    }

    rc = CHURN_OK;
    if (extreme > 0) { /* rare: infinities or NaNs; the range tells */
        uint64_t least, most;
        rc = key_range(p, values, n, chunks, &least, &most);
        if (rc == CHURN_OK && (least < p->ordered_lo || most > p->ordered_hi))
            rc = SELECT_UNORDERED;
    }
    if (rc == CHURN_OK && shift == 0) { /* the digit is the whole key */
        for (int64_t w = 0; w < n_wanted; w++)
            for (j = digits[w].first; j < digits[w].last; j++)
                res[want[j].slot] = lo + (uint64_t)digits[w].digit;
    }
    if (rc != CHURN_OK || shift == 0) {
        free(hist);
        free(digits);
        return rc;
    }
    uint64_t *keys = (uint64_t *)malloc((size_t)gathered * sizeof(uint64_t));
    wanted_rank *sub = (wanted_rank *)malloc((size_t)m * sizeof(wanted_rank));
    if (!keys || !sub) rc = CHURN_ERR_NOMEM;
    if (rc == CHURN_OK) {
#pragma omp parallel for schedule(static, 1) num_threads(chunks) if (chunks > 1)
        for (int c = 0; c < chunks; c++)
            p->gather(values, chunk_begin(n, c, chunks), chunk_begin(n, c + 1, chunks), lo, shift,
                      hist + (int64_t)c * n_digits, keys);
    }
    free(hist);
    int64_t offset = 0;
    for (int64_t w = 0; w < n_wanted && rc == CHURN_OK; w++) {
        const wanted_digit *digit = &digits[w];
        int64_t k = digit->last - digit->first;
        for (j = 0; j < k; j++) {
            sub[j].rank = want[digit->first + j].rank - digit->below;
            sub[j].slot = want[digit->first + j].slot;
        }
        rc = select_round(res, &uint64_passes, keys + offset, digit->size, sub, k, threads);
        offset += digit->size;
    }
    free(keys);
    free(sub);
    free(digits);
    return rc;
}

static int by_rank(const void *a, const void *b) {
    int64_t x = ((const wanted_rank *)a)->rank, y = ((const wanted_rank *)b)->rank;
    return (x > y) - (x < y);
}

/* res[j] = the key of rank ranks[j]. */
static int select_keys(uint64_t *res, const key_passes *p, const void *values, int64_t n,
                       const int64_t *ranks, int64_t n_ranks, int threads) {
    wanted_rank *want = (wanted_rank *)malloc((size_t)n_ranks * sizeof(wanted_rank));
    if (!want) return CHURN_ERR_NOMEM;
    for (int64_t j = 0; j < n_ranks; j++) {
        want[j].rank = ranks[j];
        want[j].slot = j;
    }
    qsort(want, (size_t)n_ranks, sizeof(wanted_rank), by_rank);
    int rc = select_round(res, p, values, n, want, n_ranks, threads);
    free(want);
    return rc;
}

int churn_select_ranks_double(double *out, const double *values, int64_t n,
                              const int64_t *ranks, int64_t n_ranks, int threads) {
    if (n_ranks <= 0) return CHURN_OK;
    uint64_t *res = (uint64_t *)malloc((size_t)n_ranks * sizeof(uint64_t));
    if (!res) return CHURN_ERR_NOMEM;
    int rc = select_keys(res, &double_passes, values, n, ranks, n_ranks, threads);
    for (int64_t j = 0; j < n_ranks && rc != CHURN_ERR_NOMEM; j++)
        out[j] = rc == SELECT_UNORDERED ? NAN : double_of_key(res[j]);
    free(res);
    return rc == SELECT_UNORDERED ? CHURN_OK : rc;
}

int churn_select_ranks_int64(int64_t *out, const int64_t *values, int64_t n,
                             const int64_t *ranks, int64_t n_ranks, int threads) {
    if (n_ranks <= 0) return CHURN_OK;
    uint64_t *res = (uint64_t *)malloc((size_t)n_ranks * sizeof(uint64_t));
    if (!res) return CHURN_ERR_NOMEM;
    int rc = select_keys(res, &int64_passes, values, n, ranks, n_ranks, threads);
    for (int64_t j = 0; j < n_ranks && rc == CHURN_OK; j++) out[j] = int64_of_key(res[j]);
    free(res);
    return rc;
}
