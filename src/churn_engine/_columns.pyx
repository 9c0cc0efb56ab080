# cython: language_level=3
"""Output columns written straight into Arrow buffers (private).

A score's string columns (status, reasons, RFM codes, segments, actions, buyer
type) each take their value from a small table indexed by a few small integer
codes per row. A Polars gather would first copy the codes into an index array,
then gather the views; here one ``nogil`` pass computes the index and writes
the row's 16-byte Arrow string view. Each table entry is turned into its view
once (strings of at most 12 bytes inline, longer ones pointing into one data
buffer holding the table's long strings), so a row costs one 16-byte copy.
The buffers become a pyarrow ``string_view`` array that Polars takes over
without a copy (its String columns are views too).

:func:`date_column` does the same for a date column whose nulls are marked by
a sentinel day: a validity bitmap instead of a copy plus a scatter of nulls.
Compiler directives are set once, in setup.py.
"""

import struct

from cython.parallel cimport prange
from libc.stdint cimport INT32_MAX, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset

import numpy as np
import polars as pl
import pyarrow as pa

from .errors import KernelError

_WIDTHS = {np.dtype(np.int8): 1, np.dtype(np.int32): 4, np.dtype(np.int64): 8}
# a view: int32 length, then 12 inline bytes (zero padded) or a 4-byte prefix,
# buffer index and offset; native byte order, as the Arrow C data interface
_INLINE_VIEW = struct.Struct("=i12s")
_LONG_VIEW = struct.Struct("=i4sii")


def string_columns(list specs, int threads):
    """String Series from tables of strings indexed by small codes.

    Parameters
    ----------
    specs : list of (name, table, digits)
        One per column: its name (also used in error messages), its values
        (``str``, or ``None`` for null) and the digits of the index into them.
        Row i of the column is ``table[index(i)]`` with ``index(i)`` written in
        mixed radix, first digit most significant: ``digits`` is a list of
        ``(values, low, high, clamp)``, digit ``values[i] - low`` must lie in
        ``[0, high - low)``, or with ``clamp`` values at or above ``high``
        count as ``high - 1``. ``values`` are int8, int32 or int64 arrays, of
        one length across every column; a table has one entry per combination
        of its digits.
    threads : int
        OpenMP threads (0: all cores). Every column is written in one parallel
        loop: one start and one barrier for them all.

    Returns
    -------
    list of polars.Series
        The columns, String dtype, in the order of ``specs``.

    Raises
    ------
    KernelError
        A value outside its digit's range (naming the column, row and value).
    """
    cdef Py_ssize_t n_columns = len(specs), c
    cdef int64_t n = -1
    if n_columns == 0:
        return []
    for name, _table, digits in specs:
        for values, _low, _high, _clamp in digits:
            if not isinstance(values, np.ndarray) or values.ndim != 1:
                raise TypeError(f"{name}: codes must be one-dimensional NumPy arrays")
            if n not in (-1, len(values)):
                raise ValueError(f"{name}: code arrays of different lengths")
            n = len(values)
    spec_bytes = np.zeros(n_columns * sizeof(Column), dtype=np.uint8)
    cdef uint8_t[::1] spec_view = spec_bytes
    cdef Column *columns = <Column *>&spec_view[0]
    keep = []  # whatever the C structs point into
    outputs = []
    for c in range(n_columns):
        name, table, digits = specs[c]
        outputs.append(_prepare(&columns[c], name, table, digits, n, keep))
    cdef int64_t n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    nulls_arr = np.zeros(n_columns * n_blocks, dtype=np.int64)
    cdef int64_t[::1] nulls = nulls_arr
    cdef int rc = COLUMNS_OK
    if n > 0:
        with nogil:
            rc = write_views(&nulls[0], columns, <int>n_columns, n, threads)
    if rc != COLUMNS_OK:
        for name, _table, digits in specs:
            _raise_bad_code(name, digits)
        raise AssertionError("write_views failed on codes that are in range")
    series = []
    for c in range(n_columns):
        views_buffer, validity_buffer, long_strings = outputs[c]
        buffers = [validity_buffer, views_buffer, pa.py_buffer(long_strings)]
        null_count = int(nulls_arr[c * n_blocks : (c + 1) * n_blocks].sum())
        array = pa.Array.from_buffers(pa.string_view(), n, buffers, null_count=null_count)
        series.append(pl.Series(specs[c][0], array))
    return series


cdef tuple _prepare(Column *column, str name, list table, list digits, int64_t n, list keep):
    """Fills ``column`` (digits, entry views, output buffers); returns the
    output buffers: views, validity (None when the table has no None) and
    the long strings' data."""
    cdef Py_ssize_t n_digits = len(digits)
    cdef int64_t entries = 1
    cdef int k
    if not 1 <= n_digits <= MAX_DIGITS:
        raise ValueError(f"{name}: between 1 and {MAX_DIGITS} digits, got {n_digits}")
    column.n_digits = <int>n_digits
    for k in range(n_digits - 1, -1, -1):  # last digit first: weights grow leftwards
        values, low, high, clamp = digits[k]
        width = _WIDTHS.get(values.dtype)
        if width is None:
            raise TypeError(f"{name}: codes must be int8, int32 or int64, not {values.dtype}")
        if not -(2**62) <= low <= high <= low + 2**31:
            raise ValueError(f"{name}: digit range [{low}, {high}) is not a small range")
        values = np.ascontiguousarray(values)
        keep.append(values)
        column.digits[k].values = _data(values, width)
        column.digits[k].width = width
        column.digits[k].low = low
        column.digits[k].high = high
        column.digits[k].weight = entries
        column.digits[k].clamp = bool(clamp)
        entries *= high - low
        if entries > 2**31:
            raise ValueError(f"{name}: more than 2^31 table entries")
    if entries != len(table):
        raise ValueError(f"{name}: the digits index {entries} entries, the table has {len(table)}")
    if n > 0 and entries == 0:  # no entry to point at: every row is out of range
        _raise_bad_code(name, digits)

    entry_views, entry_valid, long_strings = _entry_views(name, table)
    keep += [entry_views, entry_valid]
    column.entry_views = _bytes_of(entry_views)
    column.entry_valid = _bytes_of(entry_valid)
    views_buffer = pa.allocate_buffer(n * VIEW_BYTES)  # Arrow's pool: 64-byte aligned
    column.out_views = _mutable_bytes_of(views_buffer)
    validity_buffer = None
    column.out_validity = NULL
    if not entry_valid.all():
        validity_buffer = pa.allocate_buffer((n + 7) // 8)
        column.out_validity = _mutable_bytes_of(validity_buffer)
    return views_buffer, validity_buffer, long_strings


cdef const uint8_t *_bytes_of(const uint8_t[::1] values) except? NULL:
    return &values[0] if values.shape[0] else NULL


cdef uint8_t *_mutable_bytes_of(buffer) except? NULL:
    """Address of a mutable pyarrow buffer (which outlives the call)."""
    cdef uint8_t[::1] values = np.frombuffer(buffer, dtype=np.uint8)
    return &values[0] if values.shape[0] else NULL


def date_column(str name, days_arr, int32_t null_day, int threads):
    """The Date Series ``name`` of ``days`` (since 1970-01-01), null where
    ``days`` is ``null_day``.

    ``days`` is taken over without a copy: its ``null_day`` entries become 0 in
    place, so that the value under a null is a valid date like any other.
    """
    cdef int32_t[::1] days = days_arr  # int32, writable
    cdef int64_t n = days.shape[0], nulls = 0
    validity_buffer = pa.allocate_buffer((n + 7) // 8)
    cdef uint8_t *validity = _mutable_bytes_of(validity_buffer)
    if n > 0:
        with nogil:
            nulls = null_days(validity, &days[0], null_day, n, threads)
    buffers = [None if nulls == 0 else validity_buffer, pa.py_buffer(days_arr)]
    array = pa.Array.from_buffers(pa.date32(), n, buffers, null_count=nulls)
    return pl.Series(name, array)


cdef const void *_data(values, int width) except? NULL:
    """Address of the first value (NULL for an empty array)."""
    cdef const int8_t[::1] v8
    cdef const int32_t[::1] v32
    cdef const int64_t[::1] v64
    if len(values) == 0:
        return NULL
    if width == 1:
        v8 = values
        return &v8[0]
    if width == 4:
        v32 = values
        return &v32[0]
    v64 = values
    return &v64[0]


def _entry_views(str name, list table):
    """Each entry's 16-byte view, whether it is valid, and the data buffer
    that the views of strings longer than 12 bytes point into (buffer 0)."""
    views = bytearray(len(table) * VIEW_BYTES)  # zeros: inline padding is zero
    valid = np.ones(len(table), dtype=np.uint8)
    long_strings = bytearray()
    for k, value in enumerate(table):
        if value is None:
            valid[k] = 0  # a null's view stays all zeros (length 0)
            continue
        if not isinstance(value, str):
            raise TypeError(f"{name}: table entries must be str or None, got {value!r}")
        encoded = value.encode()
        if len(encoded) <= INLINE_BYTES:
            _INLINE_VIEW.pack_into(views, k * VIEW_BYTES, len(encoded), encoded)
        else:
            if len(long_strings) + len(encoded) > INT32_MAX:
                raise ValueError(f"{name}: the table's strings exceed 2 GiB")
            _LONG_VIEW.pack_into(views, k * VIEW_BYTES, len(encoded), encoded[:4], 0,
                                 len(long_strings))
            long_strings += encoded
    return np.frombuffer(views, dtype=np.uint8), valid, bytes(long_strings)


def _raise_bad_code(str name, list digits):
    """The first row with a value outside its digit's range, as a KernelError
    (nothing when every row is in range)."""
    bad = np.zeros(len(digits[0][0]), dtype=bool)
    for values, low, high, clamp in digits:
        bad |= values < low
        bad |= (high <= low) if clamp else (values >= high)
    rows = np.flatnonzero(bad)
    if len(rows) == 0:
        return
    row = int(rows[0])
    shown = ", ".join(
        f"{values[row]} (allowed {low}..{'' if clamp else high - 1})"
        for values, low, high, clamp in digits
    )
    raise KernelError(f"churn-engine kernel (column {name}): row {row} has code {shown}")


ctypedef fused code_t:
    int8_t
    int32_t
    int64_t


cdef int write_views(int64_t *out_nulls, const Column *columns, int n_columns, int64_t n,
                     int threads) noexcept nogil:
    """Writes every column's views (and validity): row i of a column gets the
    view of its entry sum_k digit_k(i) * weight_k. One task per column and
    block of BLOCK_ROWS rows (a multiple of 8: no two threads write the same
    validity byte); ``out_nulls[task]`` gets the task's number of nulls. A
    block with a code out of range gets zero views and the return value is
    COLUMNS_ERR_CODE."""
    cdef int64_t n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS, task, first, done
    cdef int error = COLUMNS_OK
    cdef int *error_at = &error  # shared by the threads
    # dynamic: on shared cores a descheduled thread's blocks go to the others
    for task in prange(n_columns * n_blocks, num_threads=threads, schedule="dynamic"):
        first = (task % n_blocks) * BLOCK_ROWS
        done = _write_block(&columns[task // n_blocks], first, min(BLOCK_ROWS, n - first))
        if done < 0:
            error_at[0] = COLUMNS_ERR_CODE
        out_nulls[task] = done
    return error


cdef int64_t _write_block(const Column *column, int64_t first, int64_t count) noexcept nogil:
    """Rows ``first .. first + count - 1`` of one column: their number of
    nulls, or -1 when a code is out of range. One pass per digit builds the
    entry indexes (simple loops the compiler vectorizes), one more copies the
    views."""
    cdef uint64_t index[BLOCK_ROWS]
    cdef uint64_t bad = 0
    cdef int64_t j, b, nulls = 0
    cdef int k
    cdef uint8_t bits
    cdef const Digit *digit
    cdef uint8_t *out_views = column.out_views + first * VIEW_BYTES
    cdef uint8_t *out_validity
    cdef const uint8_t *entry_views = column.entry_views
    cdef const uint8_t *entry_valid = column.entry_valid
    memset(index, 0, BLOCK_ROWS * sizeof(uint64_t))
    for k in range(column.n_digits):
        digit = &column.digits[k]
        if digit.width == 1:
            bad |= _add_digit(index, <const int8_t *>digit.values + first, count, digit)
        elif digit.width == 4:
            bad |= _add_digit(index, <const int32_t *>digit.values + first, count, digit)
        else:
            bad |= _add_digit(index, <const int64_t *>digit.values + first, count, digit)
    if bad:
        memset(out_views, 0, count * VIEW_BYTES)
        return -1
    for j in range(count):
        memcpy(out_views + j * VIEW_BYTES, entry_views + index[j] * VIEW_BYTES, VIEW_BYTES)
    if column.out_validity == NULL:
        return 0
    out_validity = column.out_validity + first // 8
    for j in range(0, count, 8):
        bits = 0
        for b in range(min(8, count - j)):
            bits |= entry_valid[index[j + b]] << b
            nulls += 1 - entry_valid[index[j + b]]
        out_validity[j // 8] = bits
    return nulls


cdef inline uint64_t _add_digit(uint64_t *index, const code_t *values, int64_t count,
                                const Digit *digit) noexcept nogil:
    """index[j] += digit(values[j]) * weight; nonzero when a value is out of
    range. Unsigned arithmetic: an out-of-range value wraps (defined) and is
    caught by the single ``>= size`` test."""
    cdef uint64_t bad = 0, u
    cdef uint64_t low = <uint64_t>digit.low, size = <uint64_t>(digit.high - digit.low)
    cdef uint64_t weight = <uint64_t>digit.weight
    cdef int64_t high = digit.high, j
    if digit.clamp:
        for j in range(count):
            u = <uint64_t>values[j] - low
            if values[j] >= high:
                u = size - 1
            bad |= u >= size
            index[j] += u * weight
    else:
        for j in range(count):
            u = <uint64_t>values[j] - low
            bad |= u >= size
            index[j] += u * weight
    return bad


cdef int64_t null_days(uint8_t *out_validity, int32_t *days, int32_t null_day, int64_t n,
                       int threads) noexcept nogil:
    """Validity bits of ``days != null_day``; ``null_day`` entries become 0.
    Returns the number of nulls. Blocks of rows as in write_views."""
    cdef int64_t n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS, block, first, last, i, j
    cdef int64_t nulls = 0
    cdef uint8_t bits
    for block in prange(n_blocks, num_threads=threads, schedule="dynamic"):
        first = block * BLOCK_ROWS
        last = min(first + BLOCK_ROWS, n)
        for i in range(first, last, 8):
            bits = 0
            for j in range(i, min(i + 8, last)):
                if days[j] == null_day:
                    days[j] = 0
                    nulls += 1
                else:
                    bits = bits | <uint8_t>(1 << (j - i))
            out_validity[i // 8] = bits
    return nulls
