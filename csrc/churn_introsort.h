/* Introsort (median-of-three quicksort, heapsort past a depth limit,
 * insertion sort for short runs) over an array of records, instantiated
 * per record type: CHURN_INTROSORT(name, type, less) defines
 * `static void introsort_name(type *a, int64_t n)`, with less(&x, &y) a
 * strict weak order. Used for the rows of one customer, which are few
 * except for the rare heavy buyer. */
#ifndef CHURN_INTROSORT_H
#define CHURN_INTROSORT_H

#include <stdint.h>

#define CHURN_INTROSORT(NAME, T, LESS)                                                   \
    static void insertion_sort_##NAME(T *a, int64_t n) {                                 \
        for (int64_t i = 1; i < n; i++) {                                                \
            T x = a[i];                                                                  \
            int64_t j = i;                                                               \
            while (j > 0 && LESS(&x, &a[j - 1])) {                                       \
                a[j] = a[j - 1];                                                         \
                j--;                                                                     \
            }                                                                            \
            a[j] = x;                                                                    \
        }                                                                                \
    }                                                                                    \
    static void sift_down_##NAME(T *a, int64_t root, int64_t n) {                        \
        for (;;) {                                                                       \
            int64_t child = 2 * root + 1;                                                \
            if (child >= n) return;                                                      \
            if (child + 1 < n && LESS(&a[child], &a[child + 1])) child++;                \
            if (!LESS(&a[root], &a[child])) return;                                      \
            T t = a[root]; a[root] = a[child]; a[child] = t;                             \
            root = child;                                                                \
        }                                                                                \
    }                                                                                    \
    static void heap_sort_##NAME(T *a, int64_t n) {                                      \
        for (int64_t s = n / 2 - 1; s >= 0; s--) sift_down_##NAME(a, s, n);              \
        for (int64_t end = n - 1; end > 0; end--) {                                      \
            T t = a[0]; a[0] = a[end]; a[end] = t;                                       \
            sift_down_##NAME(a, 0, end);                                                 \
        }                                                                                \
    }                                                                                    \
    static void intro_sort_##NAME(T *a, int64_t n, int depth) {                          \
        while (n > 24) {                                                                 \
            if (depth-- == 0) {                                                          \
                heap_sort_##NAME(a, n);                                                  \
                return;                                                                  \
            }                                                                            \
            /* median of three as pivot, Hoare partition */                              \
            int64_t mid = n / 2;                                                         \
            T *x = &a[0], *y = &a[mid], *z = &a[n - 1];                                  \
            T pivot;                                                                     \
            if (LESS(x, y)) pivot = LESS(y, z) ? *y : (LESS(x, z) ? *z : *x);            \
            else pivot = LESS(x, z) ? *x : (LESS(y, z) ? *z : *y);                       \
            int64_t i = -1, j = n;                                                       \
            for (;;) {                                                                   \
                do i++; while (LESS(&a[i], &pivot));                                     \
                do j--; while (LESS(&pivot, &a[j]));                                     \
                if (i >= j) break;                                                       \
                T t = a[i]; a[i] = a[j]; a[j] = t;                                       \
            }                                                                            \
            /* recurse into the smaller side, loop on the larger */                      \
            int64_t left = j + 1;                                                        \
            if (left < n - left) {                                                       \
                intro_sort_##NAME(a, left, depth);                                       \
                a += left;                                                               \
                n -= left;                                                               \
            } else {                                                                     \
                intro_sort_##NAME(a + left, n - left, depth);                            \
                n = left;                                                                \
            }                                                                            \
        }                                                                                \
        insertion_sort_##NAME(a, n);                                                     \
    }                                                                                    \
    static void introsort_##NAME(T *a, int64_t n) {                                      \
        int depth = 0;                                                                   \
        for (int64_t m = n; m > 1; m >>= 1) depth += 2;                                  \
        intro_sort_##NAME(a, n, depth);                                                  \
    }

#endif
