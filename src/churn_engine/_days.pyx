# cython: language_level=3
"""Day numbers of clean Arrow timestamps, in one parallel pass (private).

The fast path of :mod:`._fastprep` hands the Arrow buffers of an in-memory
table here: each row's day since 1970-01-01 is its timestamp floor-divided
by the units in a day (naive timestamps are wall-clock time, so that is the
local day), written as int32. The same pass finds the smallest and largest
day and whether every float amount is finite, so the caller can decide,
without another read, whether the rows are clean enough for the fast path.
One loop per unit keeps the divisor a compile-time constant (the compiler
turns it into a multiplication) and the arithmetic branch-free.
Compiler directives are set once, in setup.py.
"""

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t
from libc.stdlib cimport free, malloc

UNITS = {"days": TS_DAYS, "s": TS_SECONDS, "ms": TS_MILLIS, "us": TS_MICROS, "ns": TS_NANOS}

cdef int64_t _EXPONENT_MASK = 0x7FF0000000000000  # all ones: inf or NaN


def scan_days(list ts_segments, list amount_segments, out_days, str unit, int threads):
    """Day numbers of every row, and the facts that decide the fast path.

    Parameters
    ----------
    ts_segments : list of numpy.ndarray
        Non-empty int64 timestamps in ``unit``, or int32 days (``unit="days"``).
    amount_segments : list of numpy.ndarray or None
        The float64 amounts of the same rows as int64 bits, to check for
        non-finite values; ``None``: not checked (integer amounts).
    out_days : numpy.ndarray or None
        int32, one slot per row of all segments in order: gets the days;
        ``None`` with ``unit="days"`` (the segments are the days already).
    unit : str
        "days", "s", "ms", "us" or "ns".
    threads : int
        OpenMP threads (0: all cores).

    Returns
    -------
    tuple of (int, int, bool)
        The smallest and largest day (int64, so out-of-range days show as
        such) and whether every amount is finite. The segments must not be
        empty.
    """
    cdef int code = UNITS[unit]
    cdef int64_t n_segments = len(ts_segments), n_blocks = 0, total = 0, i, first, n, k
    cdef const int64_t[::1] view64
    cdef const int32_t[::1] view32
    cdef int32_t[::1] out
    cdef DayBlock *blocks
    if n_segments == 0:
        raise ValueError("scan_days needs at least one segment")
    if amount_segments is not None and len(amount_segments) != n_segments:
        raise ValueError("one amount segment per ts segment")
    if (out_days is None) != (code == TS_DAYS):
        raise ValueError("out_days is needed exactly when the segments are timestamps")
    for segment in ts_segments:
        n = len(segment)
        if n == 0:
            raise ValueError("empty ts segment")
        n_blocks += (n + DAYS_BLOCK_ROWS - 1) // DAYS_BLOCK_ROWS
        total += n
    if out_days is not None:
        out = out_days
        if out.shape[0] != total:
            raise ValueError(f"out_days has {out.shape[0]} slots for {total} rows")
    blocks = <DayBlock *>malloc(n_blocks * sizeof(DayBlock))
    if blocks == NULL:
        raise MemoryError()
    try:
        k = 0
        total = 0
        for i in range(n_segments):
            segment = ts_segments[i]
            n = len(segment)
            if amount_segments is not None:
                view64 = amount_segments[i]
                if view64.shape[0] != n:
                    raise ValueError("amount and ts segments differ in length")
            for first in range(0, n, DAYS_BLOCK_ROWS):
                if code == TS_DAYS:
                    view32 = segment
                    blocks[k].ts = &view32[first]
                    blocks[k].out_days = NULL
                else:
                    view64 = segment
                    blocks[k].ts = &view64[first]
                    blocks[k].out_days = &out[total + first]
                if amount_segments is not None:
                    view64 = amount_segments[i]
                    blocks[k].amounts = &view64[first]
                else:
                    blocks[k].amounts = NULL
                blocks[k].n = min(<int64_t>DAYS_BLOCK_ROWS, n - first)
                k += 1
            total += n
        with nogil:
            scan_blocks(blocks, n_blocks, code, threads)
        low, high, finite = INT64_MAX, INT64_MIN, True
        for k in range(n_blocks):
            low = min(low, blocks[k].min_day)
            high = max(high, blocks[k].max_day)
            finite = finite and blocks[k].all_finite
        return low, high, finite
    finally:
        free(blocks)


cdef void scan_blocks(DayBlock *blocks, int64_t n_blocks, int unit,
                      int threads) noexcept nogil:
    """Every block's days, smallest and largest day and amount finiteness."""
    cdef int64_t k
    # dynamic: on shared cores a descheduled thread's blocks go to the others
    for k in prange(n_blocks, num_threads=threads, schedule="dynamic"):
        if unit == TS_DAYS:
            _read_days(&blocks[k])
        elif unit == TS_SECONDS:
            _write_days(&blocks[k], 86400)
        elif unit == TS_MILLIS:
            _write_days(&blocks[k], 86400 * 1000)
        elif unit == TS_MICROS:
            _write_days(&blocks[k], 86400 * 1000000)
        else:
            _write_days(&blocks[k], 86400 * 1000000000)
        _check_amounts(&blocks[k])


@cython.cdivision(True)  # in the debug build too: the correction below assumes C division
cdef inline void _write_days(DayBlock *block, const int64_t per_day) noexcept nogil:
    """Floor division by ``per_day``: inlined at each call with its literal
    divisor. C division truncates toward zero; a negative remainder means the
    quotient must go one lower (1969-12-31T23:00 is day -1, not 0)."""
    cdef const int64_t *ts = <const int64_t *>block.ts
    cdef int32_t *out = block.out_days
    cdef int64_t i, q, low = INT64_MAX, high = INT64_MIN
    for i in range(block.n):
        q = ts[i] // per_day
        q -= (ts[i] - q * per_day) < 0
        out[i] = <int32_t>q  # out-of-range days are refused by the caller
        low = min(low, q)
        high = max(high, q)
    block.min_day = low
    block.max_day = high


cdef inline void _read_days(DayBlock *block) noexcept nogil:
    cdef const int32_t *days = <const int32_t *>block.ts
    cdef int64_t i
    cdef int32_t low = days[0], high = days[0]
    for i in range(block.n):
        low = min(low, days[i])
        high = max(high, days[i])
    block.min_day = low
    block.max_day = high


cdef inline void _check_amounts(DayBlock *block) noexcept nogil:
    cdef const int64_t *bits = block.amounts
    cdef int64_t i, bad = 0
    if bits != NULL:
        for i in range(block.n):
            bad |= (bits[i] & _EXPONENT_MASK) == _EXPONENT_MASK
    block.all_finite = not bad
