/* How many OpenMP threads a pass over n_rows rows takes, shared by the C files. */
#ifndef CHURN_THREADS_H
#define CHURN_THREADS_H

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* threads (0: all cores), or one for fewer than 2^16 rows: not worth waking threads */
static inline int churn_threads_for(int threads, int64_t n_rows) {
    int n_threads = 1;
#ifdef _OPENMP
    n_threads = threads > 0 ? threads : omp_get_max_threads();
#endif
    return n_rows < (1 << 16) ? 1 : n_threads;
}

#endif
