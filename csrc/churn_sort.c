#include "churn_sort.h"
#include "churn_status.h"

#include <stdlib.h>
#include <string.h>

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

static void insertion_sort_rows(churn_row *rows, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        churn_row x = rows[i];
        int64_t j = i;
        while (j > 0 && row_less(&x, &rows[j - 1])) {
            rows[j] = rows[j - 1];
            j--;
        }
        rows[j] = x;
    }
}

static void sift_down_rows(churn_row *rows, int64_t start, int64_t n) {
    int64_t root = start;
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && row_less(&rows[child], &rows[child + 1])) child++;
        if (!row_less(&rows[root], &rows[child])) return;
        churn_row t = rows[root]; rows[root] = rows[child]; rows[child] = t;
        root = child;
    }
}

static void heap_sort_rows(churn_row *rows, int64_t n) {
    for (int64_t s = n / 2 - 1; s >= 0; s--) sift_down_rows(rows, s, n);
    for (int64_t end = n - 1; end > 0; end--) {
        churn_row t = rows[0]; rows[0] = rows[end]; rows[end] = t;
        sift_down_rows(rows, 0, end);
    }
}

static void intro_sort_rows(churn_row *rows, int64_t n, int depth) {
    while (n > 24) {
        if (depth-- == 0) {
            heap_sort_rows(rows, n);
            return;
        }
        /* median of three as pivot, Hoare partition */
        int64_t mid = n / 2;
        churn_row *a = &rows[0], *b = &rows[mid], *c = &rows[n - 1];
        churn_row pivot;
        if (row_less(a, b)) pivot = row_less(b, c) ? *b : (row_less(a, c) ? *c : *a);
        else pivot = row_less(a, c) ? *a : (row_less(b, c) ? *c : *b);
        int64_t i = -1, j = n;
        for (;;) {
            do i++; while (row_less(&rows[i], &pivot));
            do j--; while (row_less(&pivot, &rows[j]));
            if (i >= j) break;
            churn_row t = rows[i]; rows[i] = rows[j]; rows[j] = t;
        }
        /* recurse into the smaller side, loop on the larger */
        int64_t left = j + 1;
        if (left < n - left) {
            intro_sort_rows(rows, left, depth);
            rows += left;
            n -= left;
        } else {
            intro_sort_rows(rows + left, n - left, depth);
            n = left;
        }
    }
    insertion_sort_rows(rows, n);
}

void churn_sort_rows(churn_row *rows, int64_t n) {
    int depth = 0;
    for (int64_t m = n; m > 1; m >>= 1) depth += 2;
    intro_sort_rows(rows, n, depth);
}

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

DEFINE_SELECT(churn_select_double, double)
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

DEFINE_MEDIAN(churn_median_double, churn_select_double, double)
DEFINE_MEDIAN(churn_median_int64, churn_select_int64, int64_t)
