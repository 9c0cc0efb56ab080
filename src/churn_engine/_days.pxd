# cython: language_level=3
"""C-level interface of the day-number pass (src/churn_engine/_days.pyx)."""

from libc.stdint cimport int32_t, int64_t

# What a ts segment holds (Arrow timestamp units, or date32 days).
cdef enum:
    TS_DAYS = 0     # int32 days since the epoch (date32): read, not written
    TS_SECONDS = 1
    TS_MILLIS = 2
    TS_MICROS = 3
    TS_NANOS = 4

cdef enum:
    DAYS_BLOCK_ROWS = 65536  # rows per parallel task

# One task: a block of one segment's rows, and what the pass found there.
ctypedef struct DayBlock:
    const void *ts          # int64 timestamps or int32 days, first row of the block
    const int64_t *amounts  # float64 amounts as int64 bits (NULL: not checked)
    int32_t *out_days       # NULL for TS_DAYS
    int64_t n
    int64_t min_day
    int64_t max_day
    bint all_finite

cdef void scan_blocks(DayBlock *blocks, int64_t n_blocks, int unit,
                      int threads) noexcept nogil
