# cython: language_level=3
"""The compiled behaviour-funnel pass (private), O(events), single-threaded.

1. :func:`day_histogram`: events per day over the day range.
2. :func:`funnel_pass`: a counting sort of the events by day (each event
   packed in 32 bits as ``user << 2 | behaviour``), then one walk per day that
   keeps, per user, the index of the last day seen and the set of behaviours
   on it (a 4-bit mask). Each user's mask is counted once per day when the
   day ends, so every "distinct users with ..." number of a day is a sum
   over the 16 possible masks; the masks are also OR-ed into a per-user mask
   over the period, and days with a buy are counted per user (up to 2, for
   the repurchase rate).

The ``def`` functions check shapes and allocate with the GIL held; the C
loops run ``nogil``, never raise, and return a status code
(csrc/churn_status.h) that :func:`_check` turns into an exception.
Compiler directives are set once, in setup.py.
"""

from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint32_t, uint64_t

from ._funnel cimport (
    CHURN_ERR_BAD_CODE,
    CHURN_ERR_TOO_MANY,
    CHURN_OK,
    funnel_segment,
    funnel_user,
)

import numpy as np

from .errors import KernelError

#: number of behaviours (pv, fav, cart, buy) and of their subsets (masks)
N_BEHAVIOURS = 4
N_MASKS = 16
#: most distinct users the 32-bit packing allows
MAX_USERS = 1 << 30


def _check(int rc, str stage):
    if rc == CHURN_OK:
        return
    if rc == CHURN_ERR_BAD_CODE:
        raise KernelError(
            f"churn-engine funnel kernel ({stage}): a day, user code or behaviour code "
            "is out of range"
        )
    if rc == CHURN_ERR_TOO_MANY:
        raise KernelError(f"churn-engine funnel kernel ({stage}): too many users or days")
    raise KernelError(f"churn-engine funnel kernel ({stage}): failed with status {rc}")


cdef funnel_segment *_segments(object user_segments, list day_segments,
                               object behaviour_segments, list keep_alive,
                               Py_ssize_t *n_views) except NULL:
    """A C array of segment views (held by keep_alive); empty segments skipped.
    Without user_segments and behaviour_segments only the days are set."""
    cdef Py_ssize_t n = len(day_segments), k
    cdef bint days_only = user_segments is None and behaviour_segments is None
    if not days_only and (len(user_segments) != n or len(behaviour_segments) != n):
        raise ValueError("all columns need the same segments")
    words = np.zeros(max(1, n) * (sizeof(funnel_segment) // 8 + 1), dtype=np.int64)
    keep_alive.append(words)
    cdef int64_t[::1] word_view = words
    cdef funnel_segment *views = <funnel_segment *>&word_view[0]
    cdef const int64_t[::1] ids
    cdef const int32_t[::1] codes
    cdef const int32_t[::1] days
    cdef const uint8_t[::1] behaviours
    n_views[0] = 0
    for k in range(n):
        days = day_segments[k]
        if days.shape[0] == 0:
            continue
        keep_alive.append(day_segments[k])
        views[n_views[0]].ids = NULL
        views[n_views[0]].codes = NULL
        views[n_views[0]].behaviours = NULL
        views[n_views[0]].days = &days[0]
        views[n_views[0]].n = days.shape[0]
        if days_only:
            n_views[0] += 1
            continue
        users = user_segments[k]
        behaviours = behaviour_segments[k]
        if users.shape[0] != days.shape[0] or behaviours.shape[0] != days.shape[0]:
            raise ValueError("segment lengths differ between columns")
        keep_alive.append(users)
        keep_alive.append(behaviour_segments[k])
        if users.dtype == np.int64:
            ids = users
            views[n_views[0]].ids = &ids[0]
        elif users.dtype == np.int32:
            codes = users
            views[n_views[0]].codes = &codes[0]
        else:
            raise TypeError(f"user segments must be int64 ids or int32 codes, not {users.dtype}")
        views[n_views[0]].behaviours = &behaviours[0]
        n_views[0] += 1
    return views


# --------------------------------------------------------------------------
# pass 1: events per day
# --------------------------------------------------------------------------

cdef int _histogram(int64_t *out_counts, int64_t n_range, const funnel_segment *segments,
                    Py_ssize_t n_segments, int32_t min_day) noexcept nogil:
    cdef Py_ssize_t s
    cdef int64_t i, d
    for s in range(n_segments):
        for i in range(segments[s].n):
            d = <int64_t>segments[s].days[i] - min_day
            if d < 0 or d >= n_range:
                return CHURN_ERR_BAD_CODE
            out_counts[d] += 1
    return CHURN_OK


def day_histogram(int64_t[::1] out_counts, list day_segments, int32_t min_day):
    """Adds the number of events of day ``min_day + i`` to ``out_counts[i]``.

    A day outside ``[min_day, min_day + len(out_counts))`` is an error.
    """
    cdef Py_ssize_t n_views = 0
    keep_alive = []
    cdef funnel_segment *segments = _segments(None, day_segments, None, keep_alive, &n_views)
    cdef int rc
    cdef int64_t n_range = out_counts.shape[0]
    if n_views == 0:
        return
    with nogil:
        rc = _histogram(&out_counts[0] if n_range else NULL, n_range, segments, n_views,
                        min_day)
    _check(rc, "day histogram")


# --------------------------------------------------------------------------
# pass 2: counting sort by day, then one walk per day
# --------------------------------------------------------------------------

cdef int _scatter(uint32_t *packed, int64_t *cursor, int64_t *out_events,
                  const funnel_segment *segments, Py_ssize_t n_segments, int64_t user_base,
                  const int32_t *day_index, const int64_t *day_ends, int64_t n_range,
                  int32_t min_day, uint64_t n_users) noexcept nogil:
    """Places each event at its day's cursor as ``user << 2 | behaviour`` and
    counts events per day and behaviour. A day with more events than its slot
    (``day_ends``) is an error, never a write past it."""
    cdef Py_ssize_t s
    cdef int64_t i, d, k
    cdef uint64_t user
    cdef uint8_t b
    for s in range(n_segments):
        for i in range(segments[s].n):
            d = <int64_t>segments[s].days[i] - min_day
            if d < 0 or d >= n_range:
                return CHURN_ERR_BAD_CODE
            k = day_index[d]
            if k < 0:
                return CHURN_ERR_BAD_CODE
            if segments[s].ids != NULL:
                # unsigned: ids below the base wrap to huge values and fail the test
                user = <uint64_t>segments[s].ids[i] - <uint64_t>user_base
            else:
                user = <uint64_t><int64_t>segments[s].codes[i]
            b = segments[s].behaviours[i]
            if user >= n_users or b > 3 or cursor[k] >= day_ends[k]:
                return CHURN_ERR_BAD_CODE
            packed[cursor[k]] = <uint32_t>((user << 2) | b)
            cursor[k] += 1
            out_events[4 * k + b] += 1
    return CHURN_OK


cdef void _walk_days(int64_t *out_day_masks, funnel_user *users, int32_t *touched,
                     const uint32_t *packed, const int64_t *day_offsets,
                     int64_t n_days) noexcept nogil:
    """Per day: each user's behaviour mask, counted once when the day ends."""
    cdef int64_t k, i, n_touched, t
    cdef uint32_t event, stamp
    cdef funnel_user *user
    cdef uint8_t mask
    for k in range(n_days):
        stamp = <uint32_t>(k + 1)
        n_touched = 0
        for i in range(day_offsets[k], day_offsets[k + 1]):
            event = packed[i]
            user = &users[event >> 2]
            if user.stamp != stamp:
                user.stamp = stamp
                user.day_mask = 0
                touched[n_touched] = <int32_t>(event >> 2)
                n_touched += 1
            user.day_mask |= <uint8_t>(1 << (event & 3))
        for t in range(n_touched):
            user = &users[touched[t]]
            mask = user.day_mask
            out_day_masks[16 * k + mask] += 1
            user.all_mask |= mask
            if (mask & 8) and user.buy_days < 2:
                user.buy_days += 1


cdef void _period_counts(int64_t *out_user_masks, int64_t *out_buy_days,
                         const funnel_user *users, int64_t n_users) noexcept nogil:
    cdef int64_t u
    for u in range(n_users):
        out_user_masks[users[u].all_mask] += 1
        out_buy_days[users[u].buy_days] += 1


def funnel_pass(int64_t[:, ::1] out_events, int64_t[:, ::1] out_day_masks,
                int64_t[::1] out_user_masks, int64_t[::1] out_buy_days,
                list user_segments, int64_t user_base, list day_segments,
                list behaviour_segments, const int32_t[::1] day_index,
                const int64_t[::1] day_offsets, int32_t min_day, int64_t n_users):
    """Adds the funnel counts of the events to the outputs.

    Parameters
    ----------
    out_events : int64[n_days, 4]
        Events per day and behaviour (0 pv, 1 fav, 2 cart, 3 buy).
    out_day_masks : int64[n_days, 16]
        Users per day and behaviour set (bit b set: the user did behaviour b
        that day); row sums are the day's distinct users.
    out_user_masks : int64[16]
        Users per behaviour set over the whole period; entry 0 counts user
        codes below ``n_users`` without any event.
    out_buy_days : int64[3]
        Users with a buy on 0, 1, and 2 or more days (same codes as above).
    user_segments : list of int64 ids (code = id - user_base) or int32 codes
    day_segments : list of int32 days since 1970-01-01
    behaviour_segments : list of uint8 behaviour codes 0..3
    day_index : int32[n_range]
        ``day - min_day`` -> index of the day in the outputs (-1: no events).
    day_offsets : int64[n_days + 1]
        Start of each day's events in day order (prefix sums of the counts).
    n_users : int
        Every user code is in ``[0, n_users)``; at most :data:`MAX_USERS`.
    """
    cdef int64_t n_days = day_offsets.shape[0] - 1
    cdef int64_t n_range = day_index.shape[0]
    if n_days < 0:
        raise ValueError("day_offsets needs n_days + 1 entries")
    if out_events.shape[0] != n_days or out_events.shape[1] != 4:
        raise ValueError("out_events must have shape (n_days, 4)")
    if out_day_masks.shape[0] != n_days or out_day_masks.shape[1] != 16:
        raise ValueError("out_day_masks must have shape (n_days, 16)")
    if out_user_masks.shape[0] != 16 or out_buy_days.shape[0] != 3:
        raise ValueError("out_user_masks needs 16 entries and out_buy_days 3")
    if n_users < 0 or n_users > MAX_USERS or n_days >= INT32_MAX:
        _check(CHURN_ERR_TOO_MANY, "funnel")
    cdef Py_ssize_t n_views = 0
    keep_alive = []
    cdef funnel_segment *segments = _segments(
        user_segments, day_segments, behaviour_segments, keep_alive, &n_views
    )
    cdef int64_t n_events = day_offsets[n_days] if n_days else 0
    cdef int64_t total = sum(len(s) for s in day_segments)
    if total != n_events or (n_days and day_offsets[0] != 0):
        raise ValueError("day_offsets do not add up to the number of events")
    cdef int64_t k, widest = 0
    for k in range(n_days):
        if day_offsets[k + 1] < day_offsets[k]:
            raise ValueError("day_offsets must be ascending")
        widest = max(widest, day_offsets[k + 1] - day_offsets[k])

    packed_arr = np.empty(max(1, n_events), dtype=np.uint32)
    cursor_arr = np.asarray(day_offsets)[:n_days].copy()
    users_arr = np.zeros(max(1, n_users) * sizeof(funnel_user), dtype=np.uint8)
    touched_arr = np.empty(max(1, widest), dtype=np.int32)
    cdef uint32_t[::1] packed = packed_arr
    cdef int64_t[::1] cursor = cursor_arr
    cdef uint8_t[::1] user_bytes = users_arr
    cdef int32_t[::1] touched = touched_arr
    cdef funnel_user *users = <funnel_user *>&user_bytes[0]
    cdef int rc = CHURN_OK
    with nogil:
        if n_views:
            rc = _scatter(&packed[0], &cursor[0] if n_days else NULL,
                          &out_events[0, 0] if n_days else NULL, segments, n_views,
                          user_base, &day_index[0] if n_range else NULL,
                          &day_offsets[1] if n_days else NULL,
                          n_range, min_day, <uint64_t>n_users)
        if rc == CHURN_OK and n_days:
            _walk_days(&out_day_masks[0, 0], users, &touched[0], &packed[0], &day_offsets[0],
                       n_days)
        if rc == CHURN_OK:
            _period_counts(&out_user_masks[0], &out_buy_days[0], users, n_users)
    _check(rc, "funnel")


# --------------------------------------------------------------------------
# distinct integer values (items, categories) in a bit set
# --------------------------------------------------------------------------

cdef extern from *:
    int __builtin_popcount(unsigned int x) nogil


cdef int _mark_values(uint8_t *bits, uint64_t n_bits, const int64_t *values, int64_t n,
                      int64_t base) noexcept nogil:
    """Sets bit ``value - base`` of every value (no branch on whether it was set)."""
    cdef int64_t i
    cdef uint64_t v
    for i in range(n):
        v = <uint64_t>values[i] - <uint64_t>base
        if v >= n_bits:
            return CHURN_ERR_BAD_CODE
        bits[v >> 3] |= <uint8_t>(1 << (v & 7))
    return CHURN_OK


cdef int64_t _popcount(const uint8_t *bits, int64_t n_bytes) noexcept nogil:
    cdef int64_t i, total = 0
    for i in range(n_bytes):
        total += __builtin_popcount(bits[i])
    return total


def count_distinct(uint8_t[::1] out_bits, list value_segments, int64_t base):
    """The number of distinct values in int64 segments, marked in ``out_bits``
    (a zeroed bit set: value v is bit ``v - base``). A value outside
    ``[base, base + 8 * len(out_bits))`` is an error."""
    cdef int64_t n_bytes = out_bits.shape[0]
    cdef uint64_t n_bits = <uint64_t>n_bytes * 8
    cdef int64_t distinct = 0
    cdef const int64_t[::1] values
    cdef int rc = CHURN_OK
    if n_bytes == 0:
        if any(len(segment) for segment in value_segments):
            _check(CHURN_ERR_BAD_CODE, "count distinct")
        return 0
    for segment in value_segments:
        values = segment
        if values.shape[0] == 0:
            continue
        with nogil:
            rc = _mark_values(&out_bits[0], n_bits, &values[0], values.shape[0], base)
        _check(rc, "count distinct")
    with nogil:
        distinct = _popcount(&out_bits[0], n_bytes)
    return distinct
