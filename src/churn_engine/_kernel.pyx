# cython: language_level=3
"""The compiled pass (private): group rows by customer, per-customer statistics,
cycle status and RFM scores.

Every stage is a ``def`` that validates and allocates with the GIL held, then
runs a ``nogil`` C loop that never raises: failures come back as a status code
(csrc/churn_status.h) that :func:`_check` turns into an exception. Stages are
public within the package so tests and benchmarks can exercise each one.
Compiler directives are set once, in setup.py.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport NAN, floor, isinf, isnan, sqrt
from libc.stdint cimport INT32_MIN, INT64_MIN, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from ._kernel cimport (
    CHURN_ERR_BAD_CODE,
    CHURN_ERR_BAD_STRING,
    CHURN_ERR_NOMEM,
    CHURN_ERR_OVERFLOW,
    CHURN_ERR_TOO_MANY,
    CHURN_OK,
    churn_median_int64,
    churn_row,
    churn_select_ranks_double,
    churn_select_ranks_int64,
    churn_group_buffers,
    churn_group_buffers_free,
    churn_group_buffers_init,
    churn_bit_length,
    churn_cents_of,
    churn_column_ranges,
    CHURN_AMOUNTS_CENTS,
    CHURN_AMOUNTS_INT,
    CHURN_AMOUNTS_RAW,
    churn_group_packed_partition,
    churn_group_partition,
    churn_group_tight_partition,
    churn_packed_row,
    churn_packing,
    churn_packing_of,
    churn_partition_rows,
    churn_ranges,
    churn_segment,
    churn_sort_rows,
    churn_str_chunk,
    churn_tight_row,
    churn_str_dict,
    churn_str_dict_bytes,
    churn_str_dict_free,
    churn_str_dict_size,
    churn_str_dict_write,
    churn_str_encode,
    churn_str_hash,
)

import numpy as np

from .errors import DataError, KernelError

# Status and reason codes, shared with api.py (see config.reason_codes).
cdef enum:
    _ACTIVE = 0
    _AT_RISK = 1
    _CHURNED = 2
    _R_CHURN_CYCLES = 0
    _R_AT_RISK_CYCLES = 1
    _R_ACTIVE_CYCLES = 2
    _R_ONE_TIME_AT_RISK = 3
    _R_ONE_TIME_ACTIVE = 4
    _R_ONE_TIME_NO_PRIOR = 5
    _R_HORIZON_BASE = 6

STATUS_NAMES = ("active", "at_risk", "churned")
#: reason code -> key of config.reason_codes(); codes >= REASON_HORIZON_BASE are
#: the horizon rule of category (code - REASON_HORIZON_BASE)
REASON_KEYS = (
    "churn_cycles", "at_risk_cycles", "active_cycles",
    "one_time_at_risk", "one_time_active", "one_time_no_prior",
)
REASON_HORIZON_BASE = _R_HORIZON_BASE
#: null marker of int32 day outputs (expected_next_purchase without a cycle)
NULL_DAY = INT32_MIN


def _check(int rc, str stage):
    if rc == CHURN_OK:
        return
    if rc == CHURN_ERR_NOMEM:
        raise MemoryError(f"churn-engine kernel ({stage}): out of memory")
    if rc == CHURN_ERR_OVERFLOW:
        raise DataError(
            "amount: a customer's money sum overflows (int64 for integer amounts, "
            "float64 otherwise); check the amount column's unit and values",
            column="amount",
            reason="amount_overflow",
        )
    if rc == CHURN_ERR_TOO_MANY:
        raise KernelError(
            f"churn-engine kernel ({stage}): more than 2^31 - 1 rows in one key range; "
            "score the log in parts"
        )
    if rc == CHURN_ERR_BAD_CODE:
        raise KernelError(f"churn-engine kernel ({stage}): customer code out of range")
    if rc == CHURN_ERR_BAD_STRING:
        raise KernelError(
            f"churn-engine kernel ({stage}): string offsets or views outside their buffers"
        )
    raise KernelError(f"churn-engine kernel ({stage}): failed with status {rc}")


# --------------------------------------------------------------------------
# stage 1: group rows by customer (radix partitioning by key range)
# --------------------------------------------------------------------------

cdef enum:
    # 9999-12-31 as days since 1970-01-01: the last date Python represents
    _MAX_DAY = 2932896

cdef enum:
    # rows per partition to aim for: 16K rows of 24 bytes stay in L2
    _PARTITION_ROWS_LOG2 = 14
    _MAX_PARTITION_BITS = 16


ctypedef fused grouped_row:
    churn_row
    churn_packed_row
    churn_tight_row


cdef struct RowDecoder:
    # how the packed rows of one partition hold key, category, day and amount
    uint64_t key_base  # flipped key of offset 0 in the partition
    int key_shift
    int day_bits
    uint64_t cat_mask
    uint64_t day_mask
    int32_t cat_min
    int32_t day_min
    int amount_kind  # of 12-byte rows: CHURN_AMOUNTS_INT or CHURN_AMOUNTS_CENTS
    int64_t amount_base
    bint cents  # every amount is whole cents: sums are taken in cents (any row layout)


cdef inline RowDecoder _decoder_for(const churn_packing *packing, int64_t p,
                                    bint cents=False) noexcept nogil:
    cdef RowDecoder d
    d.key_base = packing.key_min + ((<uint64_t>p) << packing.shift)
    d.key_shift = packing.cat_bits + packing.day_bits  # <= 63: day_bits <= 32, cat_bits <= 31
    d.day_bits = packing.day_bits
    d.cat_mask = ((<uint64_t>1) << packing.cat_bits) - 1
    d.day_mask = ((<uint64_t>1) << packing.day_bits) - 1
    d.cat_min = packing.cat_min
    d.day_min = packing.day_min
    d.amount_kind = packing.amount_kind
    d.amount_base = packing.amount_base
    d.cents = cents
    return d


cdef inline int64_t _row_bytes(bint is_packed, const churn_packing *packing) noexcept nogil:
    """The size of a grouped row: 24 bytes, or packed 16 (raw amounts) or 12."""
    if not is_packed:
        return sizeof(churn_row)
    if packing.amount_kind == CHURN_AMOUNTS_RAW:
        return sizeof(churn_packed_row)
    return sizeof(churn_tight_row)


cdef inline int64_t _key_of(const grouped_row *r, const RowDecoder *d) noexcept nogil:
    if grouped_row is churn_row:
        return r.key
    else:
        return <int64_t>((d.key_base + (r.word >> d.key_shift)) ^ (<uint64_t>1 << 63))


cdef inline int32_t _cat_of(const grouped_row *r, const RowDecoder *d) noexcept nogil:
    if grouped_row is churn_row:
        return r.cat
    else:
        return <int32_t>(<int64_t>((r.word >> d.day_bits) & d.cat_mask) + d.cat_min)


cdef inline int32_t _day_of(const grouped_row *r, const RowDecoder *d) noexcept nogil:
    if grouped_row is churn_row:
        return r.day
    else:
        return <int32_t>(<int64_t>(r.word & d.day_mask) + d.day_min)


cdef inline int64_t _amount_of(const grouped_row *r, const RowDecoder *d) noexcept nogil:
    """The amount's raw 64 bits (int64, or a double's bits)."""
    cdef int64_t code
    cdef double value
    if grouped_row is churn_tight_row:
        if d.amount_kind == CHURN_AMOUNTS_INT:
            return <int64_t>(<uint64_t>r.amount + <uint64_t>d.amount_base)
        value = <double>_cents_of(r, d) / 100.0  # the exact input double (churn_partition.c)
        memcpy(&code, &value, 8)
        return code
    else:
        return r.amount


cdef inline int64_t _cents_of(const churn_tight_row *r, const RowDecoder *d) noexcept nogil:
    """The amount in cents of a 12-byte row whose amounts are cents."""
    cdef int64_t code = <int64_t>r.amount
    return -1 - code if code < d.amount_base else code - d.amount_base


cdef inline int64_t _row_cents(const grouped_row *r, const RowDecoder *d) noexcept nogil:
    """The amount in cents of a row of a log whose amounts are all whole cents."""
    if grouped_row is churn_tight_row:
        if d.amount_kind == CHURN_AMOUNTS_CENTS:
            return _cents_of(r, d)
    return churn_cents_of(_as_double(_amount_of(r, d)))


cdef inline bint _row_is_purchase(const grouped_row *r, const RowDecoder *d,
                                  bint integer_amounts) noexcept nogil:
    if grouped_row is churn_tight_row:
        if d.amount_kind == CHURN_AMOUNTS_CENTS:
            return r.amount >= d.amount_base  # cents >= 0, no division
    return _is_purchase(_amount_of(r, d), integer_amounts)


cdef inline bint _same_customer(const grouped_row *a, const grouped_row *b,
                                const RowDecoder *d) noexcept nogil:
    if grouped_row is churn_row:
        return a.key == b.key
    else:
        return a.word >> d.key_shift == b.word >> d.key_shift


cdef inline bint _same_group(const grouped_row *a, const grouped_row *b,
                             const RowDecoder *d) noexcept nogil:
    """Same (key, cat), within one customer's rows."""
    if grouped_row is churn_row:
        return a.cat == b.cat
    else:
        return a.word >> d.day_bits == b.word >> d.day_bits


def group_rows(list id_segments, object rank_of_code, list day_segments,
               list amount_segments, object cat_segments, int64_t n_rows,
               bint integer_amounts, int threads, bint packed=False):
    """Put rows in ascending customer order.

    ``id_segments`` hold int64 ids, or int32 dictionary codes whose customer
    key is ``rank_of_code[code]`` (the code itself when ``rank_of_code`` is
    None: ranks from :func:`encode_strings`);
    ``amount_segments`` the raw 64 bits of each amount (an int64 view of
    int64 or float64 data). Rows are scattered into partitions by the high
    bits of their key's offset from the smallest key (so partitions are
    ascending key ranges that fit in cache), then each partition is radix
    sorted by key, in parallel. Returns a :class:`Grouped`: ``rows`` is an
    int64 array of 3 * n_rows words holding ``churn_row`` records or, with
    ``packed`` and when the rows' keys, categories and days fit (then
    ``packing`` is set), records only :func:`group_statistics` reads: 12-byte
    ``churn_tight_row`` ones when every amount has a 32-bit code (integers
    spanning less than 2^32, or doubles that are whole cents), 16-byte
    ``churn_packed_row`` ones otherwise.
    """
    rows_arr, offsets_arr, packing_of_rows, cents = _partition_rows(
        id_segments, rank_of_code, day_segments, amount_segments, cat_segments, n_rows, threads,
        packed, integer_amounts,
    )
    if n_rows == 0:
        return Grouped(rows_arr, offsets_arr, np.zeros(1, dtype=np.int64), 0, None, cents)
    cdef int64_t[::1] rows_words = rows_arr
    cdef const int64_t[::1] offsets = offsets_arr
    cdef int64_t n_parts = offsets.shape[0] - 1
    cdef int rc
    cdef bint is_packed = packing_of_rows is not None
    cdef churn_packing packing
    if is_packed:
        packing = packing_of_rows
    else:
        memset(&packing, 0, sizeof(packing))
    cdef bint is_tight = is_packed and packing.amount_kind != CHURN_AMOUNTS_RAW

    # pass 4, per partition while it is in cache: group by key, sort each
    # customer's rows, count the groups; each thread with its own buffers
    cdef int64_t p, n
    cdef RowDecoder decoder
    cdef churn_packed_row *packed_rows = <churn_packed_row *>&rows_words[0]
    cdef churn_tight_row *tight_rows = <churn_tight_row *>&rows_words[0]
    cdef churn_row *rows = <churn_row *>&rows_words[0]
    groups_arr = np.zeros(n_parts, dtype=np.int64)
    no_purchase_arr = np.zeros(n_parts, dtype=np.int64)
    cdef int64_t[::1] groups = groups_arr
    cdef int64_t[::1] no_purchase = no_purchase_arr
    cdef int32_t[::1] error = np.zeros(1, dtype=np.int32)
    cdef churn_group_buffers *buffers = NULL
    with nogil, parallel(num_threads=threads):
        buffers = <churn_group_buffers *>malloc(sizeof(churn_group_buffers))
        if buffers == NULL:
            error[0] = CHURN_ERR_NOMEM
        else:
            churn_group_buffers_init(buffers)
        for p in prange(n_parts, schedule="dynamic"):
            if buffers != NULL:
                n = offsets[p + 1] - offsets[p]
                if is_packed:
                    decoder = _decoder_for(&packing, p)  # assigned: private to the thread
                if is_tight:
                    rc = churn_group_tight_partition(tight_rows + offsets[p], n,
                                                     decoder.key_shift, packing.shift, buffers)
                elif is_packed:
                    rc = churn_group_packed_partition(packed_rows + offsets[p], n,
                                                      decoder.key_shift, packing.shift, buffers)
                else:
                    rc = churn_group_partition(rows + offsets[p], n, buffers)
                if rc != CHURN_OK:
                    error[0] = rc
                elif is_tight:
                    groups[p] = _count_groups(tight_rows + offsets[p], n, integer_amounts,
                                              &no_purchase[p], &decoder)
                elif is_packed:
                    groups[p] = _count_groups(packed_rows + offsets[p], n, integer_amounts,
                                              &no_purchase[p], &decoder)
                else:
                    groups[p] = _partition_groups(rows + offsets[p], n, integer_amounts,
                                                  &no_purchase[p])
        if buffers != NULL:
            churn_group_buffers_free(buffers)
            free(buffers)
    _check(error[0], "group")
    return Grouped(rows_arr, offsets_arr, groups_arr, int(no_purchase_arr.sum()),
                   packing_of_rows, cents)


def _partition_rows(list id_segments, object rank_of_code, list day_segments,
                    list amount_segments, object cat_segments, int64_t n_rows, int threads,
                    bint packed=False, bint integer_amounts=False):
    """Passes 1-3 of :func:`group_rows`: validate the segments, find the key
    range, scatter the rows into key-range partitions. Returns ``(rows,
    part_offsets, packing, cents)``: packing is None unless ``packed`` was
    asked for and the rows fit packed records; cents tells whether every
    float amount is whole cents."""
    cdef Py_ssize_t n_segments = len(id_segments), k
    if len(day_segments) != n_segments or len(amount_segments) != n_segments or (
        cat_segments is not None and len(cat_segments) != n_segments
    ):
        raise ValueError("all columns need the same segments")
    cdef bint dense = rank_of_code is not None or any(
        getattr(ids, "dtype", None) == np.int32 for ids in id_segments
    )
    cdef const int32_t[::1] ranks
    cdef const int32_t *rank_ptr = NULL
    cdef int64_t n_codes = 0
    if rank_of_code is not None:
        ranks = rank_of_code
        n_codes = ranks.shape[0]
        if n_codes:
            rank_ptr = &ranks[0]
        elif n_rows:
            _check(CHURN_ERR_BAD_CODE, "group")  # no code is valid

    cdef int64_t total = 0, n
    for k in range(n_segments):
        n = len(id_segments[k])
        if len(day_segments[k]) != n or len(amount_segments[k]) != n or (
            cat_segments is not None and len(cat_segments[k]) != n
        ):
            raise ValueError("segment lengths differ between columns")
        total += n
    if total != n_rows:
        raise ValueError("segments do not add up to n_rows")

    if n_rows == 0:
        return np.empty(0, dtype=np.int64), np.zeros(2, dtype=np.int64), None, False
    cdef churn_ranges ranges
    cdef churn_packing packing
    cdef uint64_t kmin = 0, kmax = 0
    cdef int rc = CHURN_OK, bits, pbits, shift
    segments_arr = np.zeros(n_segments * (sizeof(churn_segment) // 8 + 1), dtype=np.int64)
    cdef int64_t[::1] segment_words = segments_arr
    cdef churn_segment *segments = <churn_segment *>&segment_words[0]
    cdef Py_ssize_t n_views = 0
    for k in range(n_segments):
        if _segment_view(&segments[n_views], id_segments[k], day_segments[k],
                         amount_segments[k], None if cat_segments is None else cat_segments[k],
                         dense):
            n_views += 1

    # float amounts are always checked for whole cents: the statistics sum
    # those exactly, whatever the row layout
    cdef int amount_kind = CHURN_AMOUNTS_CENTS
    if integer_amounts:
        amount_kind = CHURN_AMOUNTS_INT if packed else CHURN_AMOUNTS_RAW
    with nogil:
        rc = churn_column_ranges(&ranges, segments, n_views, rank_ptr, n_codes, amount_kind,
                                 n_rows, threads)
    _check(rc, "group")
    kmin = ranges.key_min
    kmax = ranges.key_max
    bits = churn_bit_length(kmax - kmin)
    pbits = churn_bit_length(<uint64_t>(n_rows >> _PARTITION_ROWS_LOG2))
    if pbits > _MAX_PARTITION_BITS:
        pbits = _MAX_PARTITION_BITS
    if pbits > bits:
        pbits = bits
    shift = bits - pbits
    if shift > 63:  # keys spanning all 64 bits: C shifts stop at 63
        shift = 63
        pbits = bits - shift
    cdef int64_t n_parts = (<int64_t>1) << pbits
    offsets_arr = np.zeros(n_parts + 1, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    cdef bint is_packed = packed and churn_packing_of(&packing, &ranges, shift, amount_kind)
    rows_arr = np.empty((_row_bytes(is_packed, &packing) * n_rows + 7) // 8, dtype=np.int64)
    cdef int64_t[::1] rows_words = rows_arr
    with nogil:
        rc = churn_partition_rows(&rows_words[0], &offsets[0], n_parts, kmin, shift,
                                  &packing if is_packed else NULL, segments, n_views,
                                  rank_ptr, n_rows, threads)
    _check(rc, "group")
    cdef bint cents = amount_kind == CHURN_AMOUNTS_CENTS and ranges.amounts_coded
    return rows_arr, offsets_arr, (packing if is_packed else None), cents


class Grouped:
    """Rows in customer order (``churn_row`` records in an int64 array, or
    when ``packing`` is set ``churn_packed_row`` records, or
    ``churn_tight_row`` ones if its ``amount_kind`` is not 0), partition
    boundaries, groups with a purchase per partition, and the number of
    groups without one, and whether every float amount is whole cents (then
    money is summed in cents)."""

    __slots__ = ("cents", "groups", "no_purchase", "packing", "part_offsets", "rows")

    def __init__(self, rows, part_offsets, groups, no_purchase, packing, cents=False):
        self.rows = rows
        self.part_offsets = part_offsets
        self.groups = groups
        self.no_purchase = no_purchase
        self.packing = packing
        self.cents = cents


cdef bint _segment_view(churn_segment *view, ids, days, amounts, cats, bint dense) except -1:
    """Fills view with the segment's buffers; False for an empty segment."""
    cdef const int64_t[::1] id_values
    cdef const int32_t[::1] code_values
    cdef const int32_t[::1] day_values = days
    cdef const int64_t[::1] amount_values = amounts
    cdef const int32_t[::1] cat_values
    view.n = day_values.shape[0]
    if view.n == 0:
        return False
    view.ids = NULL
    view.codes = NULL
    if dense:
        code_values = ids
        view.codes = &code_values[0]
    else:
        id_values = ids
        view.ids = &id_values[0]
    view.days = &day_values[0]
    view.amounts = &amount_values[0]
    view.cats = NULL
    if cats is not None:
        cat_values = cats
        view.cats = &cat_values[0]
    return True


# --------------------------------------------------------------------------
# stage 0 (string ids): dense ranks in byte order
# --------------------------------------------------------------------------

#: kinds of string chunk for :func:`encode_strings`
STRING_UTF8 = 0
STRING_LARGE_UTF8 = 1
STRING_VIEW = 2

# stands in for the data of an empty buffer (C must not get NULL + offset)
cdef uint8_t _EMPTY_BYTES[1]


cdef const uint8_t *_bytes_of(const uint8_t[::1] values) noexcept:
    return &values[0] if values.shape[0] else _EMPTY_BYTES


cdef class _StringChunks:
    """The kernel's view (``churn_str_chunk``) of string chunks given as
    ``(kind, n, locator, buffers)`` (see :func:`encode_strings`); keeps the
    chunks, whose buffers it points into, alive."""

    cdef churn_str_chunk *views
    cdef const uint8_t **buffer_ptrs
    cdef int64_t *buffer_lens
    cdef Py_ssize_t n_chunks, n_rows
    cdef list chunks

    def __cinit__(self, list chunks):
        cdef Py_ssize_t k, j, n_buffers = 0, used = 0
        cdef const int32_t[::1] offsets32
        cdef const int64_t[::1] offsets64
        cdef const uint8_t[::1] raw
        self.chunks = chunks
        self.n_chunks = len(chunks)
        self.n_rows = 0
        self.views = <churn_str_chunk *>calloc(self.n_chunks + 1, sizeof(churn_str_chunk))
        for chunk in chunks:
            n_buffers += len(chunk[3])
        self.buffer_ptrs = <const uint8_t **>calloc(n_buffers + 1, sizeof(uint8_t *))
        self.buffer_lens = <int64_t *>calloc(n_buffers + 1, sizeof(int64_t))
        if self.views == NULL or self.buffer_ptrs == NULL or self.buffer_lens == NULL:
            raise MemoryError("churn-engine kernel (strings): out of memory")
        for k in range(self.n_chunks):
            kind, n, locator, buffers = chunks[k]
            self.views[k].kind = kind
            self.views[k].n = n
            if n < 0:
                raise ValueError("a chunk with a negative length")
            self.n_rows += n
            if kind == STRING_VIEW:
                raw = locator
                if raw.shape[0] != 16 * n:
                    raise ValueError("string views: 16 bytes per string expected")
                self.views[k].views = _bytes_of(raw)
                self.views[k].buffers = self.buffer_ptrs + used
                self.views[k].buffer_lens = self.buffer_lens + used
                self.views[k].n_buffers = len(buffers)
                for j in range(len(buffers)):
                    raw = buffers[j]
                    self.buffer_ptrs[used] = _bytes_of(raw)
                    self.buffer_lens[used] = raw.shape[0]
                    used += 1
            elif kind == STRING_UTF8 or kind == STRING_LARGE_UTF8:
                if len(buffers) != 1:
                    raise ValueError("utf8 strings: one data buffer expected")
                if kind == STRING_UTF8:
                    offsets32 = locator
                    if offsets32.shape[0] != n + 1:
                        raise ValueError("utf8 strings: n + 1 offsets expected")
                    self.views[k].offsets32 = &offsets32[0]
                else:
                    offsets64 = locator
                    if offsets64.shape[0] != n + 1:
                        raise ValueError("large_utf8 strings: n + 1 offsets expected")
                    self.views[k].offsets64 = &offsets64[0]
                raw = buffers[0]
                self.views[k].data = _bytes_of(raw)
                self.views[k].data_len = raw.shape[0]
            else:
                raise ValueError(f"unknown string chunk kind {kind!r}")

    def __dealloc__(self):
        free(self.views)
        free(self.buffer_ptrs)
        free(self.buffer_lens)


def encode_strings(int32_t[::1] out_ranks, list chunks, int threads, int part_bits=-1,
                   uint64_t hash_mask=0xFFFFFFFFFFFFFFFF):
    """Rank every string among the distinct ones, in ascending byte order.

    ``chunks``: Arrow string arrays without nulls, in row order, each as
    ``(kind, n, locator, buffers)``: ``STRING_UTF8`` / ``STRING_LARGE_UTF8``
    with int32 / int64 offsets (``n + 1``, the array's offset applied) and
    ``buffers = [data]``; ``STRING_VIEW`` with the ``16 * n`` bytes of views
    and the variadic data buffers; buffers as uint8 arrays. Writes each row's
    rank to ``out_ranks`` (all rows, chunk after chunk) and returns the
    distinct strings in rank order as large_utf8 buffers ``(offsets, data)``.
    ``part_bits`` (partitions, default from the row count) and ``hash_mask``
    (ANDed into every hash) exist for tests.
    """
    cdef _StringChunks strings = _StringChunks(chunks)
    cdef churn_str_dict *dictionary = NULL
    cdef int rc = CHURN_OK
    if out_ranks.shape[0] != strings.n_rows:
        raise ValueError("out_ranks needs one entry per row")
    try:
        with nogil:
            rc = churn_str_encode(&out_ranks[0] if strings.n_rows else NULL, &dictionary,
                                  strings.views, strings.n_chunks, threads, part_bits,
                                  hash_mask)
        _check(rc, "encode")
        offsets_arr = np.empty(churn_str_dict_size(dictionary) + 1, dtype=np.int64)
        data_arr = np.empty(churn_str_dict_bytes(dictionary), dtype=np.uint8)
        _write_dictionary(dictionary, offsets_arr, data_arr)
        return offsets_arr, data_arr
    finally:
        churn_str_dict_free(dictionary)


def string_key_plan(list chunks, int threads):
    """How each string of ``chunks`` (as for :func:`encode_strings`) becomes
    an int64 key that orders and compares like its bytes: a uint8 array
    holding the plan, or None when the strings do not fit one (a string
    longer than 16 bytes, more than 63 bits that vary, no string at all)."""
    cdef _StringChunks strings = _StringChunks(chunks)
    plan_arr = np.zeros(sizeof(churn_str_key_plan), dtype=np.uint8)
    cdef uint8_t[::1] plan_bytes = plan_arr
    cdef churn_str_key_plan *plan = <churn_str_key_plan *>&plan_bytes[0]
    cdef int rc
    with nogil:
        rc = churn_str_key_plan_of(plan, strings.views, strings.n_chunks, threads)
    _check(rc, "encode")
    return plan_arr if plan.fits else None


cdef const churn_str_key_plan *_plan_of(const uint8_t[::1] plan_bytes) except NULL:
    """The plan in a :func:`string_key_plan` array, checked to be one (a
    wrong array would index its tables out of bounds)."""
    if plan_bytes.shape[0] != sizeof(churn_str_key_plan):
        raise ValueError("not a string key plan")
    cdef const churn_str_key_plan *plan = <const churn_str_key_plan *>&plan_bytes[0]
    cdef int k, bits = 0
    if plan.fits != 1 or not 0 <= plan.packer.n_active <= 17:
        raise ValueError("not a string key plan")
    for k in range(plan.packer.n_active):
        if plan.packer.byte[k] > 16 or not 1 <= plan.packer.width[k] <= 8:
            raise ValueError("not a string key plan")
        bits += plan.packer.width[k]
    if bits != plan.packer.bits or bits > 63 or plan.len_mask > 0xFF or (
        _popcount(plan.hi_mask) + _popcount(plan.lo_mask) + _popcount(plan.len_mask) != bits
    ):  # the pext path shifts by these counts
        raise ValueError("not a string key plan")
    return plan


cdef int _popcount(uint64_t x) noexcept:
    cdef int n = 0
    while x:
        x &= x - 1
        n += 1
    return n


def string_keys(int64_t[::1] out_keys, const uint8_t[::1] plan, list chunks, int threads,
                bint portable=False):
    """Writes the key of every row of ``chunks`` under ``plan`` (from
    :func:`string_key_plan` of the same strings) to ``out_keys``.
    ``portable``: byte tables instead of the pext instruction (tests)."""
    cdef _StringChunks strings = _StringChunks(chunks)
    cdef const churn_str_key_plan *key_plan = _plan_of(plan)
    cdef int rc
    if out_keys.shape[0] != strings.n_rows:
        raise ValueError("out_keys needs one entry per row")
    with nogil:
        rc = churn_str_keys(&out_keys[0] if strings.n_rows else NULL, key_plan, strings.views,
                            strings.n_chunks, threads, portable)
    _check(rc, "encode")


def string_keys_decode(const int64_t[::1] keys, const uint8_t[::1] plan, int threads=1):
    """The strings of ``keys`` under ``plan`` as Arrow string_view buffers
    ``(views, data)``: 16 bytes a key, strings longer than 12 bytes in
    ``data`` (buffer 0). Every key must be one the plan gave (the kernel's
    group keys are)."""
    cdef const churn_str_key_plan *key_plan = _plan_of(plan)
    cdef int64_t n = keys.shape[0], i, long_bytes
    cdef uint64_t limit = (<uint64_t>1) << key_plan.packer.bits  # bits <= 63
    for i in range(n):
        if keys[i] < 0 or <uint64_t>keys[i] >= limit:
            raise ValueError(f"string key {keys[i]} is not one of the plan's")
    views_arr = np.empty(16 * n, dtype=np.uint8)
    cdef uint8_t[::1] views = views_arr
    with nogil:
        long_bytes = churn_str_keys_long_bytes(&keys[0] if n else NULL, n, key_plan, threads)
    data_arr = np.empty(long_bytes, dtype=np.uint8)
    cdef uint8_t[::1] data = data_arr
    if n:
        with nogil:
            churn_str_keys_write_views(&views[0], _mutable_bytes(data), &keys[0], n, key_plan,
                                       threads)
    return views_arr, data_arr


cdef void _write_dictionary(const churn_str_dict *dictionary, int64_t[::1] offsets,
                            uint8_t[::1] data):
    with nogil:
        churn_str_dict_write(dictionary, &offsets[0], _mutable_bytes(data))


cdef uint8_t *_mutable_bytes(uint8_t[::1] values) noexcept nogil:
    return &values[0] if values.shape[0] else _EMPTY_BYTES


def string_hash(const uint8_t[::1] value):
    """The kernel's hash of one string's bytes (for tests)."""
    return churn_str_hash(_bytes_of(value), value.shape[0])


# --------------------------------------------------------------------------
# stage 3: per-group statistics
# --------------------------------------------------------------------------

cdef extern from *:
    bint __builtin_add_overflow(int64_t a, int64_t b, int64_t *r) nogil
    bint __builtin_sub_overflow(int64_t a, int64_t b, int64_t *r) nogil


cdef struct GroupStats:
    int64_t *key
    int32_t *cat
    int64_t *n_orders
    int64_t *n_rows
    int32_t *first_day
    int32_t *last_day
    double *money_f
    double *refund_f
    int64_t *money_i
    int64_t *refund_i
    double *interval_mean
    double *interval_std
    double *interval_median


cdef inline bint _is_purchase(int64_t bits, bint integer_amounts) noexcept nogil:
    cdef double value
    if integer_amounts:
        return bits >= 0
    memcpy(&value, &bits, 8)
    return value >= 0.0


cdef inline double _as_double(int64_t bits) noexcept nogil:
    cdef double value
    memcpy(&value, &bits, 8)
    return value


cdef int64_t _count_groups(const grouped_row *rows, int64_t n, bint integer_amounts,
                           int64_t *no_purchase, const RowDecoder *decoder) noexcept nogil:
    """Groups with a purchase among rows in order; a group is a run of one
    (key, cat). Groups without a purchase are added to no_purchase."""
    cdef int64_t i = 0, j, groups = 0
    cdef bint bought
    while i < n:
        j = i
        bought = False
        while j < n and _same_customer(&rows[j], &rows[i], decoder) and _same_group(
            &rows[j], &rows[i], decoder
        ):
            if not bought and _row_is_purchase(&rows[j], decoder, integer_amounts):
                bought = True
            j += 1
        if bought:
            groups += 1
        else:
            no_purchase[0] += 1
        i = j
    return groups


# cent sums up to 2^53 become doubles exactly, then one rounding by / 100
cdef int64_t _EXACT_CENTS = 9007199254740992


cdef void _float_sums(const grouped_row *rows, int64_t n, const RowDecoder *decoder,
                      double *money, double *refund) noexcept nogil:
    """Money and refund sums of one group's rows as doubles, in row order."""
    cdef int64_t j
    cdef double value
    money[0] = 0.0
    refund[0] = 0.0
    for j in range(n):
        value = _as_double(_amount_of(&rows[j], decoder))
        money[0] = money[0] + value
        if not value >= 0.0:
            refund[0] = refund[0] - value


cdef int _customer_stats(GroupStats *out, int64_t *next_group, const grouped_row *rows,
                         int64_t n, bint integer_amounts, int64_t *gaps,
                         const RowDecoder *decoder) noexcept nogil:
    """Writes the statistics of one customer's groups (rows sorted) from index
    next_group[0], advancing it.

    When every amount of the log is whole cents (``decoder.cents``, whatever
    the row layout) the money sums are taken in integer cents, exactly, and
    each rounded once to a double (a group whose sums pass 2^53 cents is
    summed as doubles instead): the order of the rows cannot change the
    result, and 0.10 + 0.20 gives 0.30 as a DECIMAL sum does."""
    cdef int64_t g = next_group[0]
    cdef int64_t i = 0, j, t, k, n_orders, gap_sum
    cdef int32_t prev_day, first_day, day
    cdef double money_f, refund_f, mean, ss, dev
    cdef int64_t money_i, refund_i, amount, cents, money_c, refund_c
    cdef bint purchase, inexact
    cdef bint exact = decoder.cents and not integer_amounts
    while i < n:
        j = i
        n_orders = 0
        gap_sum = 0
        prev_day = 0
        first_day = 0
        money_f = 0.0
        refund_f = 0.0
        money_i = 0
        refund_i = 0
        money_c = 0
        refund_c = 0
        inexact = False
        while j < n and _same_group(&rows[j], &rows[i], decoder):
            if exact:
                cents = _row_cents(&rows[j], decoder)
                purchase = cents >= 0
                inexact |= __builtin_add_overflow(money_c, cents, &money_c)
                if not purchase:
                    inexact |= __builtin_sub_overflow(refund_c, cents, &refund_c)
            else:
                amount = _amount_of(&rows[j], decoder)
                purchase = _is_purchase(amount, integer_amounts)
                if integer_amounts:
                    if __builtin_add_overflow(money_i, amount, &money_i):
                        return CHURN_ERR_OVERFLOW
                    if not purchase:
                        if amount == INT64_MIN or __builtin_sub_overflow(refund_i, amount,
                                                                         &refund_i):
                            return CHURN_ERR_OVERFLOW
                else:
                    money_f = money_f + _as_double(amount)
                    if not purchase:
                        refund_f = refund_f - _as_double(amount)
            if purchase:
                day = _day_of(&rows[j], decoder)
                if n_orders == 0:
                    first_day = day
                    n_orders = 1
                elif day != prev_day:
                    gaps[n_orders - 1] = <int64_t>day - prev_day
                    gap_sum += gaps[n_orders - 1]
                    n_orders += 1
                prev_day = day
            j += 1
        if exact:
            if inexact or not -_EXACT_CENTS <= money_c <= _EXACT_CENTS or refund_c > _EXACT_CENTS:
                _float_sums(rows + i, j - i, decoder, &money_f, &refund_f)
            else:
                money_f = <double>money_c / 100.0
                refund_f = <double>refund_c / 100.0
        if not integer_amounts and (isinf(money_f) or isinf(refund_f)):
            return CHURN_ERR_OVERFLOW
        if n_orders > 0:
            out.key[g] = _key_of(&rows[i], decoder)
            out.cat[g] = _cat_of(&rows[i], decoder)
            out.n_orders[g] = n_orders
            out.n_rows[g] = j - i
            out.first_day[g] = first_day
            out.last_day[g] = prev_day
            if integer_amounts:
                out.money_i[g] = money_i
                out.refund_i[g] = refund_i
            else:
                out.money_f[g] = money_f
                out.refund_f[g] = refund_f
            k = n_orders - 1
            if k == 0:
                out.interval_mean[g] = NAN
                out.interval_std[g] = NAN
                out.interval_median[g] = NAN
            else:
                mean = <double>gap_sum / <double>k
                out.interval_mean[g] = mean
                if k == 1:
                    out.interval_std[g] = NAN
                else:
                    ss = 0.0
                    for t in range(k):
                        dev = <double>gaps[t] - mean
                        ss = ss + dev * dev
                    out.interval_std[g] = sqrt(ss / <double>(k - 1))
                out.interval_median[g] = churn_median_int64(gaps, k)
            g += 1
        i = j
    next_group[0] = g
    return CHURN_OK


def group_statistics(grouped, bint integer_amounts, int threads, bint consume=False):
    """Per-group statistics of the rows grouped by :func:`group_rows`.

    Returns a dict of arrays, one entry per group with at least one purchase,
    in (customer, category) order. With ``consume`` the rows are not needed
    afterwards (a score): each partition's pages are given back to the system
    as soon as it is summarised, so the rows and the statistics are never
    held in full at the same time, and ``grouped.rows`` is dropped.
    """
    cdef int64_t[::1] rows_words = grouped.rows
    cdef const int64_t[::1] part_offsets = grouped.part_offsets
    cdef const int64_t[::1] part_groups = grouped.groups
    cdef int64_t n_parts = part_offsets.shape[0] - 1
    cdef int64_t *words = &rows_words[0] if rows_words.shape[0] else NULL
    cdef bint is_packed = grouped.packing is not None
    cdef churn_packing packing
    if is_packed:
        packing = grouped.packing
    else:
        memset(&packing, 0, sizeof(packing))  # the decoder of 24-byte rows is not read
    cdef bint is_tight = is_packed and packing.amount_kind != CHURN_AMOUNTS_RAW
    starts_arr = np.zeros(n_parts + 1, dtype=np.int64)
    cdef int64_t[::1] group_start = starts_arr
    cdef int64_t p, n_groups, n
    cdef int32_t[::1] error = np.zeros(1, dtype=np.int32)
    cdef int rc
    cdef GapBuffer *gaps = NULL
    cdef bint cents = grouped.cents
    cdef RowDecoder decoder = _decoder_for(&packing, 0, cents)
    cdef GroupStats out
    with nogil:
        for p in range(n_parts):
            group_start[p + 1] = group_start[p] + part_groups[p]
    n_groups = group_start[n_parts]

    result = statistics_arrays(n_groups, integer_amounts)
    # money sums are checked for overflow in groups without a purchase (no
    # output row) too, so every partition with rows is visited
    _fill_pointers(&out, result, integer_amounts, n_groups)

    cdef churn_release_state release
    if consume:
        _check(churn_release_init(&release, words, _row_bytes(is_packed, &packing),
                                  &part_offsets[0], n_parts),
               "statistics")
    # each thread with its own gap buffer, grown to the longest customer it meets
    with nogil, parallel(num_threads=threads):
        gaps = <GapBuffer *>calloc(1, sizeof(GapBuffer))
        if gaps == NULL:
            error[0] = CHURN_ERR_NOMEM
        for p in prange(n_parts, schedule="dynamic"):
            n = part_offsets[p + 1] - part_offsets[p]
            if gaps != NULL and n > 0:
                if is_packed:
                    decoder = _decoder_for(&packing, p, cents)  # assigned: private to the thread
                if is_tight:
                    rc = _partition_stats(&out, group_start[p],
                                          <churn_tight_row *>words + part_offsets[p], n,
                                          integer_amounts, gaps, &decoder)
                elif is_packed:
                    rc = _partition_stats(&out, group_start[p],
                                          <churn_packed_row *>words + part_offsets[p], n,
                                          integer_amounts, gaps, &decoder)
                else:
                    rc = _partition_stats(&out, group_start[p],
                                          <churn_row *>words + part_offsets[p], n,
                                          integer_amounts, gaps, &decoder)
                if rc != CHURN_OK:
                    error[0] = rc
                if consume:
                    churn_release_done(&release, p)
        if gaps != NULL:
            free(gaps.values)
            free(gaps)
    if consume:
        churn_release_free(&release)
        del rows_words
        grouped.rows = None
    _check(error[0], "statistics")
    return result


def statistics_arrays(int64_t n, bint integer_amounts):
    """The (uninitialised) output arrays of :func:`group_statistics`, n
    entries each (n = 0: the statistics of a log without accepted rows)."""
    money = np.int64 if integer_amounts else np.float64
    return {
        "key": np.empty(n, dtype=np.int64),
        "cat": np.empty(n, dtype=np.int32),
        "n_orders": np.empty(n, dtype=np.int64),
        "n_rows": np.empty(n, dtype=np.int64),
        "first_day": np.empty(n, dtype=np.int32),
        "last_day": np.empty(n, dtype=np.int32),
        "monetary_total": np.empty(n, dtype=money),
        "refund_total": np.empty(n, dtype=money),
        "interval_mean_days": np.empty(n, dtype=np.float64),
        "interval_std_days": np.empty(n, dtype=np.float64),
        "interval_median_days": np.empty(n, dtype=np.float64),
    }


cdef struct GapBuffer:
    int64_t *values
    int64_t capacity


cdef int _reserve_gaps(GapBuffer *gaps, int64_t n) noexcept nogil:
    cdef int64_t *grown
    if n <= gaps.capacity:
        return CHURN_OK
    grown = <int64_t *>realloc(gaps.values, n * sizeof(int64_t))
    if grown == NULL:
        return CHURN_ERR_NOMEM
    gaps.values = grown
    gaps.capacity = n
    return CHURN_OK


cdef RowDecoder _NO_DECODER  # 24-byte rows need none (zeroed, never read)


cdef int64_t _partition_groups(churn_row *rows, int64_t n, bint integer_amounts,
                               int64_t *no_purchase) noexcept nogil:
    """Sorts the rows of every customer of a key-sorted partition; returns
    the number of groups with a purchase."""
    cdef int64_t i = 0, j
    while i < n:
        j = i + 1
        while j < n and rows[j].key == rows[i].key:
            j += 1
        if j - i > 1:
            churn_sort_rows(rows + i, j - i)
        i = j
    return _count_groups(rows, n, integer_amounts, no_purchase, &_NO_DECODER)


cdef int _partition_stats(GroupStats *out, int64_t first_group, const grouped_row *rows,
                          int64_t n, bint integer_amounts, GapBuffer *gaps,
                          const RowDecoder *decoder) noexcept nogil:
    cdef int64_t i = 0, j, g = first_group
    cdef int rc
    while i < n:
        j = i + 1
        while j < n and _same_customer(&rows[j], &rows[i], decoder):
            j += 1
        rc = _reserve_gaps(gaps, j - i)
        if rc != CHURN_OK:
            return rc
        rc = _customer_stats(out, &g, rows + i, j - i, integer_amounts, gaps.values, decoder)
        if rc != CHURN_OK:
            return rc
        i = j
    return CHURN_OK


cdef void _fill_pointers(GroupStats *out, dict arrays, bint integer_amounts,
                         int64_t n_groups) except *:
    cdef int64_t[::1] key = arrays["key"]
    if n_groups == 0:  # nothing will be written
        memset(out, 0, sizeof(GroupStats))
        return
    cdef int32_t[::1] cat = arrays["cat"]
    cdef int64_t[::1] n_orders = arrays["n_orders"]
    cdef int64_t[::1] n_rows = arrays["n_rows"]
    cdef int32_t[::1] first_day = arrays["first_day"]
    cdef int32_t[::1] last_day = arrays["last_day"]
    cdef double[::1] mean = arrays["interval_mean_days"]
    cdef double[::1] std = arrays["interval_std_days"]
    cdef double[::1] median = arrays["interval_median_days"]
    cdef double[::1] money_f
    cdef double[::1] refund_f
    cdef int64_t[::1] money_i
    cdef int64_t[::1] refund_i
    out.key = &key[0]
    out.cat = &cat[0]
    out.n_orders = &n_orders[0]
    out.n_rows = &n_rows[0]
    out.first_day = &first_day[0]
    out.last_day = &last_day[0]
    out.interval_mean = &mean[0]
    out.interval_std = &std[0]
    out.interval_median = &median[0]
    out.money_f = NULL
    out.refund_f = NULL
    out.money_i = NULL
    out.refund_i = NULL
    if integer_amounts:
        money_i = arrays["monetary_total"]
        refund_i = arrays["refund_total"]
        out.money_i = &money_i[0]
        out.refund_i = &refund_i[0]
    else:
        money_f = arrays["monetary_total"]
        refund_f = arrays["refund_total"]
        out.money_f = &money_f[0]
        out.refund_f = &refund_f[0]


# --------------------------------------------------------------------------
# occasions: each group's purchase days, for analyses beyond the score
# --------------------------------------------------------------------------

def occasions(grouped, const int64_t[::1] occasion_offsets, bint integer_amounts,
              int threads):
    """Every group's purchase occasions, in the group order of :func:`group_statistics`.

    ``occasion_offsets`` is ``[0, cumsum(n_orders)]`` of that order. Returns
    ``(day, amount)``: the occasion days (ascending within a group) and the
    sum of the purchase amounts (refunds excluded) of each occasion, summed in
    the kernel's fixed row order. Call after :func:`group_statistics`, which
    leaves every customer's rows sorted.
    """
    if grouped.packing is not None:
        raise ValueError("occasions need rows grouped without packed=True")
    cdef int64_t[::1] rows_words = grouped.rows
    cdef const int64_t[::1] part_offsets = grouped.part_offsets
    cdef const int64_t[::1] part_groups = grouped.groups
    cdef int64_t n_parts = part_offsets.shape[0] - 1
    cdef churn_row *rows = <churn_row *>&rows_words[0] if rows_words.shape[0] else NULL
    cdef int64_t n_groups = occasion_offsets.shape[0] - 1
    cdef int64_t n_occasions = occasion_offsets[n_groups]
    starts_arr = np.zeros(n_parts + 1, dtype=np.int64)
    cdef int64_t[::1] group_start = starts_arr
    day_arr = np.empty(n_occasions, dtype=np.int32)
    amount_arr = np.zeros(n_occasions, dtype=np.float64)
    cdef int32_t[::1] day = day_arr
    cdef double[::1] amount = amount_arr
    cdef int32_t[::1] error = np.zeros(1, dtype=np.int32)
    cdef int64_t p
    with nogil:
        for p in range(n_parts):
            group_start[p + 1] = group_start[p] + part_groups[p]
    if group_start[n_parts] != n_groups:
        raise ValueError("occasion_offsets does not match the grouped rows")
    if n_occasions == 0:
        return day_arr, amount_arr
    with nogil:
        for p in prange(n_parts, schedule="dynamic", num_threads=threads):
            if part_offsets[p + 1] > part_offsets[p]:
                if _partition_occasions(&day[0], &amount[0], &occasion_offsets[0],
                                        group_start[p], rows + part_offsets[p],
                                        part_offsets[p + 1] - part_offsets[p],
                                        integer_amounts) != CHURN_OK:
                    error[0] = CHURN_ERR_BAD_CODE
    _check(error[0], "occasions")
    return day_arr, amount_arr


cdef int _partition_occasions(int32_t *out_day, double *out_amount,
                              const int64_t *occasion_offsets, int64_t first_group,
                              const churn_row *rows, int64_t n,
                              bint integer_amounts) noexcept nogil:
    """Same walk as _customer_stats: groups are (key, cat) runs with a purchase."""
    cdef int64_t i = 0, j, g = first_group, pos = 0, end = 0, count
    cdef int64_t bits
    cdef int32_t prev_day = 0
    while i < n:
        j = i
        count = 0
        while j < n and rows[j].key == rows[i].key and rows[j].cat == rows[i].cat:
            bits = rows[j].amount
            if _is_purchase(bits, integer_amounts):
                if count == 0:
                    pos = occasion_offsets[g]
                    end = occasion_offsets[g + 1]
                if count == 0 or rows[j].day != prev_day:
                    if pos + count >= end:
                        return CHURN_ERR_BAD_CODE
                    prev_day = rows[j].day
                    out_day[pos + count] = prev_day
                    count += 1
                out_amount[pos + count - 1] += (
                    <double>bits if integer_amounts else _as_double(bits)
                )
            j += 1
        if count > 0:
            if pos + count != end:
                return CHURN_ERR_BAD_CODE
            g += 1
        i = j
    return CHURN_OK


# --------------------------------------------------------------------------
# stage 4: priors, cycles and status
# --------------------------------------------------------------------------

def category_priors(const int32_t[::1] cat, const int64_t[::1] n_orders,
                    const double[::1] interval_mean, const double[::1] fixed_prior,
                    int threads=1):
    """Prior cycle per category: ``fixed_prior[c]`` when not NaN, else the
    median of ``interval_mean`` over the category's groups with a gap (NaN
    when there is none; NaN when one of them is NaN): the middle value, or
    the mean of the two middle ones for an even count, by radix selection on
    ``threads`` threads."""
    cdef int64_t n = cat.shape[0], i, c, size, slot, kept, n_cats = fixed_prior.shape[0]
    priors_arr = np.full(n_cats, np.nan)
    cdef double[::1] priors = priors_arr
    starts_arr = np.zeros(n_cats + 1, dtype=np.int64)
    cdef int64_t[::1] starts = starts_arr
    cdef int64_t middle[2]
    cdef double middle_values[2]
    cdef int rc = CHURN_OK
    cdef bint repeat
    if n == 0 or n_cats == 0:
        for c in range(n_cats):
            if not isnan(fixed_prior[c]):
                priors[c] = fixed_prior[c]
        return priors_arr
    # the values of each category's groups with a gap, category after category;
    # branch-free, as whether a group has a gap is a coin toss to the CPU
    cdef double[::1] values_arr = np.empty(n + 1, dtype=np.float64)  # + 1: where the rest go
    cdef double *values = &values_arr[0]
    cdef const int32_t *cats = &cat[0]
    cdef const int64_t *orders = &n_orders[0]
    cdef const double *means = &interval_mean[0]
    cdef int64_t *cursor
    cdef int64_t[::1] cursor_view
    if n_cats == 1:  # no category column: one pass
        with nogil:
            kept = 0
            for i in range(n):
                values[kept] = means[i]
                kept += orders[i] >= 2
            starts[1] = kept
    else:
        cursor_view = np.zeros(n_cats, dtype=np.int64)
        cursor = &cursor_view[0]
        with nogil:
            for i in range(n):
                cursor[cats[i]] += orders[i] >= 2
            for c in range(n_cats):
                starts[c + 1] = starts[c] + cursor[c]
                cursor[c] = starts[c]
            for i in range(n):
                repeat = orders[i] >= 2
                slot = cursor[cats[i]] if repeat else n
                values[slot] = means[i]
                cursor[cats[i]] += repeat
    with nogil:
        for c in range(n_cats):
            size = starts[c + 1] - starts[c]
            if not isnan(fixed_prior[c]):
                priors[c] = fixed_prior[c]
            elif size > 0:
                middle[0] = (size - 1) // 2
                middle[1] = size // 2
                rc = churn_select_ranks_double(middle_values, &values[starts[c]], size, middle,
                                               2, threads)
                if rc != CHURN_OK:
                    break
                if size % 2 == 1:
                    priors[c] = middle_values[0]
                else:
                    priors[c] = (middle_values[0] + middle_values[1]) / 2.0
    _check(rc, "status")
    return priors_arr


def cycle_status(const int32_t[::1] cat, const int64_t[::1] n_orders,
                 const double[::1] interval_mean, const int32_t[::1] last_day,
                 const double[::1] priors, const int32_t[::1] horizon_days,
                 int32_t as_of_day, double prior_weight, double at_risk_cycles,
                 double churn_cycles, int threads):
    """cycle_days, cycles_since_last, expected next day, days_overdue, status
    and reason codes per group (DESIGN.md section 4, status rules 1-3)."""
    cdef int64_t n = cat.shape[0], i
    cycle_arr = np.empty(n, dtype=np.float64)
    since_arr = np.empty(n, dtype=np.float64)
    next_arr = np.empty(n, dtype=np.int32)
    overdue_arr = np.empty(n, dtype=np.float64)
    status_arr = np.empty(n, dtype=np.int8)
    reason_arr = np.empty(n, dtype=np.int32)
    recency_arr = np.empty(n, dtype=np.int64)
    cdef double[::1] cycle = cycle_arr
    cdef double[::1] since = since_arr
    cdef int32_t[::1] next_day = next_arr
    cdef double[::1] overdue = overdue_arr
    cdef int8_t[::1] status = status_arr
    cdef int32_t[::1] reason = reason_arr
    cdef int64_t[::1] recency = recency_arr
    cdef double k, prior, c, rec, next_value
    cdef int32_t g
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            g = cat[i]
            k = <double>(n_orders[i] - 1)
            prior = priors[g]
            recency[i] = <int64_t>as_of_day - last_day[i]
            rec = <double>recency[i]
            if k == 0:
                c = prior
            elif isnan(prior):
                c = interval_mean[i]
            else:
                c = (k * interval_mean[i] + prior_weight * prior) / (k + prior_weight)
                if isinf(c):  # the sum overflowed (a huge prior): the mean itself is finite
                    c = ((k / (k + prior_weight)) * interval_mean[i]
                         + (prior_weight / (k + prior_weight)) * prior)
            cycle[i] = c
            if isnan(c):
                since[i] = NAN
                next_day[i] = INT32_MIN
                overdue[i] = NAN
            else:
                since[i] = rec / c
                next_value = <double>last_day[i] + floor(c + 0.5)
                # beyond 9999-12-31 (a huge configured prior) there is no date
                next_day[i] = (
                    <int32_t>next_value if next_value <= _MAX_DAY else INT32_MIN
                )
                overdue[i] = rec - c if rec > c else 0.0
            if rec >= horizon_days[g]:
                status[i] = _CHURNED
                reason[i] = _R_HORIZON_BASE + g
            elif k > 0:
                if since[i] >= churn_cycles:
                    status[i] = _CHURNED
                    reason[i] = _R_CHURN_CYCLES
                elif since[i] >= at_risk_cycles:
                    status[i] = _AT_RISK
                    reason[i] = _R_AT_RISK_CYCLES
                else:
                    status[i] = _ACTIVE
                    reason[i] = _R_ACTIVE_CYCLES
            elif isnan(prior):
                status[i] = _ACTIVE
                reason[i] = _R_ONE_TIME_NO_PRIOR
            elif rec >= at_risk_cycles * prior:
                status[i] = _AT_RISK
                reason[i] = _R_ONE_TIME_AT_RISK
            else:
                status[i] = _ACTIVE
                reason[i] = _R_ONE_TIME_ACTIVE
    return {
        "recency_days": recency_arr,
        "cycle_days": cycle_arr,
        "cycles_since_last": since_arr,
        "expected_next_day": next_arr,
        "days_overdue": overdue_arr,
        "status": status_arr,
        "reason": reason_arr,
    }


# --------------------------------------------------------------------------
# stage 5: RFM cut points and scores
# --------------------------------------------------------------------------

def quantile_cuts(values, int bins, int threads=1, bint negate=False):
    """The ``i/bins`` order statistics, i = 1..bins-1: the element at index
    ``((n - 1) * i) // bins`` of the sorted values, as
    ``numpy.quantile(values, i / bins, method="lower")``, float64 or int64
    values (others are cast to int64). All of them by one radix selection
    (csrc/churn_sort.c), no copy and no sort, on ``threads`` threads; for
    integers of a small range (R: days, F: order counts) that is one count.
    ``negate``: the cuts of ``-values`` (R is scored on -recency_days),
    without making that array. A float64 zero comes back as +0.0; a NaN
    makes every cut NaN."""
    cdef int64_t n = values.shape[0], i
    if n == 0:
        raise ValueError("quantile_cuts needs at least one value")
    cuts = np.empty(bins - 1, dtype=np.float64)
    if bins < 2:
        return cuts
    ranks_arr = (n - 1) * np.arange(1, bins, dtype=np.int64) // bins
    if negate:  # rank k of -values is minus rank n - 1 - k of values
        ranks_arr = (n - 1) - ranks_arr
    cdef const int64_t[::1] ranks = ranks_arr
    cdef double[::1] out = cuts
    cdef const double[::1] floats
    cdef const int64_t[::1] ints
    cdef int64_t[::1] int_cuts
    cdef int rc
    if values.dtype == np.float64:
        floats = np.ascontiguousarray(values)
        with nogil:
            rc = churn_select_ranks_double(&out[0], &floats[0], n, &ranks[0], bins - 1, threads)
    else:
        ints = np.ascontiguousarray(values, dtype=np.int64)
        int_cuts = np.empty(bins - 1, dtype=np.int64)
        with nogil:
            rc = churn_select_ranks_int64(&int_cuts[0], &ints[0], n, &ranks[0], bins - 1, threads)
            for i in range(bins - 1):
                out[i] = <double>int_cuts[i]
    _check(rc, "rfm")
    if negate:
        cuts = -cuts + 0.0  # + 0.0: -(+0.0) is -0.0
    return cuts


def rfm_scores(const int64_t[::1] recency_days, const int64_t[::1] n_orders, money,
               const double[::1] r_cuts, const double[::1] f_cuts, const double[::1] m_cuts,
               int threads):
    """Scores 1..bins: 1 + number of cut points strictly below the value
    (R on -recency_days). Returns ``(r, f, m)`` int8 arrays."""
    cdef int64_t n = recency_days.shape[0], i
    cdef int bins = r_cuts.shape[0] + 1
    r_arr = np.empty(n, dtype=np.int8)
    f_arr = np.empty(n, dtype=np.int8)
    m_arr = np.empty(n, dtype=np.int8)
    cdef int8_t[::1] r = r_arr
    cdef int8_t[::1] f = f_arr
    cdef int8_t[::1] m = m_arr
    cdef const double[::1] money_f
    cdef const int64_t[::1] money_i
    cdef const double *mf = NULL
    cdef const int64_t *mi = NULL
    cdef bint integer_money = money.dtype != np.float64
    if n == 0:
        return r_arr, f_arr, m_arr
    if integer_money:
        money_i = money
        mi = &money_i[0]
    else:
        money_f = money
        mf = &money_f[0]
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            r[i] = _score(-<double>recency_days[i], &r_cuts[0], bins - 1)
            f[i] = _score(<double>n_orders[i], &f_cuts[0], bins - 1)
            if integer_money:
                m[i] = _score(<double>mi[i], &m_cuts[0], bins - 1)
            else:
                m[i] = _score(mf[i], &m_cuts[0], bins - 1)
    return r_arr, f_arr, m_arr


cdef inline int8_t _score(double value, const double *cuts, int n_cuts) noexcept nogil:
    cdef int8_t s = 1
    cdef int j
    for j in range(n_cuts):
        if cuts[j] < value:
            s += 1
    return s
