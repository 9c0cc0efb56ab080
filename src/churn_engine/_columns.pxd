# cython: language_level=3
"""C-level interface of the output-column writer (src/churn_engine/_columns.pyx)."""

from libc.stdint cimport int32_t, int64_t, uint8_t

# Status codes of the nogil loops (never exceptions in nogil code).
cdef enum:
    COLUMNS_OK = 0
    COLUMNS_ERR_CODE = 1  # a code outside its digit's range

cdef enum:
    VIEW_BYTES = 16    # an Arrow string view
    INLINE_BYTES = 12  # strings up to this length live inside their view
    MAX_DIGITS = 8
    BLOCK_ROWS = 1024  # rows per parallel task, a multiple of 8

# One digit of a table index: (value - low) must lie in [0, high - low), or,
# with clamp, values at or above high count as the last digit.
ctypedef struct Digit:
    const void *values  # one int8, int32 or int64 per row
    int width           # bytes per value: 1, 4 or 8
    int64_t low
    int64_t high
    int64_t weight      # place value of the digit in the table index
    bint clamp

# One output column: its digits, the table's entry views and validity, and
# the buffers to write (out_validity NULL when no entry is null).
ctypedef struct Column:
    Digit digits[MAX_DIGITS]
    int n_digits
    const uint8_t *entry_views
    const uint8_t *entry_valid
    uint8_t *out_views
    uint8_t *out_validity

cdef int write_views(int64_t *out_nulls, const Column *columns, int n_columns, int64_t n,
                     int threads) noexcept nogil

cdef int64_t null_days(uint8_t *out_validity, int32_t *days, int32_t null_day, int64_t n,
                       int threads) noexcept nogil
