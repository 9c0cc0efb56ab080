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
from libc.math cimport NAN, floor, isnan, sqrt
from libc.stdint cimport INT32_MIN, INT64_MIN, int8_t, int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ._kernel cimport (
    CHURN_ERR_BAD_CODE,
    CHURN_ERR_NOMEM,
    CHURN_ERR_OVERFLOW,
    CHURN_ERR_TOO_MANY,
    CHURN_OK,
    churn_hash,
    churn_hash_encode,
    churn_hash_free,
    churn_hash_init,
    churn_median_double,
    churn_median_int64,
    churn_rank_int64,
    churn_row,
    churn_select_double,
    churn_select_int64,
    churn_sort_rows,
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
            "amount: a customer's integer money sum overflows int64; "
            "cast the amount column to float64 to score it",
            column="amount",
            reason="amount_overflow",
        )
    if rc == CHURN_ERR_TOO_MANY:
        raise KernelError(f"churn-engine kernel ({stage}): more than 2^31 - 1 customers")
    if rc == CHURN_ERR_BAD_CODE:
        raise KernelError(f"churn-engine kernel ({stage}): customer code out of range")
    raise KernelError(f"churn-engine kernel ({stage}): failed with status {rc}")


# --------------------------------------------------------------------------
# stage 1: dense customer codes
# --------------------------------------------------------------------------

def encode_int_ids(list id_segments, int64_t n_rows):
    """Dense codes of int64 ids through a C hash table.

    Returns ``(row_codes, sorted_ids, rank_of_code)``: ``row_codes[i]`` is the
    code of row i (first-seen order), ``sorted_ids`` the distinct ids in
    ascending order and ``rank_of_code[c]`` the position of code c's id in it.
    """
    cdef churn_hash table
    cdef int32_t[::1] codes = np.empty(n_rows, dtype=np.int32)
    cdef const int64_t[::1] segment
    cdef int64_t pos = 0, n, n_ids
    cdef int rc
    _check(churn_hash_init(&table, n_rows // 4 + 16), "encode")
    try:
        for segment in id_segments:
            n = segment.shape[0]
            if n == 0:
                continue
            if pos + n > n_rows:
                raise ValueError("id segments hold more rows than n_rows")
            with nogil:
                rc = churn_hash_encode(&table, &codes[pos], &segment[0], n)
            _check(rc, "encode")
            pos += n
        if pos != n_rows:
            raise ValueError("id segments hold fewer rows than n_rows")
        n_ids = table.size
        sorted_ids_arr = np.empty(n_ids, dtype=np.int64)
        rank_arr = np.empty(n_ids, dtype=np.int32)
        if n_ids:
            _rank_and_sort(sorted_ids_arr, rank_arr, table.uniques, n_ids)
    finally:
        churn_hash_free(&table)
    return np.asarray(codes), sorted_ids_arr, rank_arr


cdef void _rank_and_sort(int64_t[::1] sorted_ids, int32_t[::1] rank,
                         const int64_t *uniques, int64_t n) except *:
    cdef int rc
    cdef int64_t c
    with nogil:
        rc = churn_rank_int64(&rank[0], uniques, n)
        if rc == CHURN_OK:
            for c in range(n):
                sorted_ids[rank[c]] = uniques[c]
    _check(rc, "rank")


# --------------------------------------------------------------------------
# stage 2: group rows by customer (counting sort by rank)
# --------------------------------------------------------------------------

def group_rows(list code_segments, const int32_t[::1] rank_of_code, list day_segments,
               list amount_segments, object cat_segments, int64_t n_rows):
    """Scatter rows into customer order.

    ``code_segments`` hold int32 customer codes, ``amount_segments`` the raw
    64 bits of each amount (an int64 view of int64 or float64 data). Returns
    ``(rows, offsets)``: ``rows`` is an int64 array of 2 * n_rows words holding
    ``churn_row`` records, customer r's rows are ``offsets[r]:offsets[r+1]``.
    """
    cdef int64_t n_customers = rank_of_code.shape[0]
    offsets_arr = np.zeros(n_customers + 1, dtype=np.int64)
    rows_arr = np.empty(2 * n_rows, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    cdef int64_t[::1] rows_words = rows_arr
    cdef churn_row *rows = <churn_row *>&rows_words[0] if n_rows else NULL
    cdef int64_t[::1] cursor
    cdef const int32_t[::1] codes
    cdef const int32_t[::1] days
    cdef const int64_t[::1] amounts
    cdef const int32_t[::1] cats
    cdef const int32_t *cat_ptr
    cdef int64_t pos, n, r, total
    cdef int rc = CHURN_OK
    n_segments = len(code_segments)
    if len(day_segments) != n_segments or len(amount_segments) != n_segments or (
        cat_segments is not None and len(cat_segments) != n_segments
    ):
        raise ValueError("all columns need the same segments")

    # count rows per customer
    pos = 0
    for codes in code_segments:
        n = codes.shape[0]
        if n == 0:
            continue
        with nogil:
            rc = _count_rows(&offsets[1], &codes[0], &rank_of_code[0], n_customers, n)
        _check(rc, "group")
        pos += n
    if pos != n_rows:
        raise ValueError("code segments do not add up to n_rows")
    with nogil:
        total = 0
        for r in range(n_customers + 1):
            total = total + offsets[r]
            offsets[r] = total
    cursor = offsets_arr[:n_customers].copy()

    # scatter
    for k in range(n_segments):
        codes = code_segments[k]
        days = day_segments[k]
        amounts = amount_segments[k]
        n = codes.shape[0]
        if days.shape[0] != n or amounts.shape[0] != n:
            raise ValueError("segment lengths differ between columns")
        if n == 0:
            continue
        cat_ptr = NULL
        if cat_segments is not None:
            cats = cat_segments[k]
            if cats.shape[0] != n:
                raise ValueError("segment lengths differ between columns")
            cat_ptr = &cats[0]
        with nogil:
            _scatter_rows(rows, &cursor[0], &codes[0], &rank_of_code[0], &days[0],
                          &amounts[0], cat_ptr, n)
    return rows_arr, offsets_arr


cdef int _count_rows(int64_t *counts, const int32_t *codes, const int32_t *rank_of_code,
                     int64_t n_codes, int64_t n) noexcept nogil:
    cdef int64_t i
    cdef int32_t c
    for i in range(n):
        c = codes[i]
        if c < 0 or c >= n_codes:
            return CHURN_ERR_BAD_CODE
        counts[rank_of_code[c]] += 1
    return CHURN_OK


cdef void _scatter_rows(churn_row *rows, int64_t *cursor, const int32_t *codes,
                        const int32_t *rank_of_code, const int32_t *days,
                        const int64_t *amounts, const int32_t *cats,
                        int64_t n) noexcept nogil:
    cdef int64_t i, p
    for i in range(n):
        p = cursor[rank_of_code[codes[i]]]
        cursor[rank_of_code[codes[i]]] = p + 1
        rows[p].cat = cats[i] if cats != NULL else 0
        rows[p].day = days[i]
        rows[p].amount = amounts[i]


# --------------------------------------------------------------------------
# stage 3: per-group statistics
# --------------------------------------------------------------------------

cdef extern from *:
    bint __builtin_add_overflow(int64_t a, int64_t b, int64_t *r) nogil
    bint __builtin_sub_overflow(int64_t a, int64_t b, int64_t *r) nogil


cdef struct GroupStats:
    int32_t *customer
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


cdef int64_t _sort_and_count(churn_row *rows, int64_t n, bint integer_amounts,
                             int32_t *no_purchase) noexcept nogil:
    """Sorts one customer's rows; returns the number of groups with a purchase."""
    cdef int64_t i = 0, j, groups = 0
    cdef bint bought
    if n > 1:
        churn_sort_rows(rows, n)
    while i < n:
        j = i
        bought = False
        while j < n and rows[j].cat == rows[i].cat:
            if not bought and _is_purchase(rows[j].amount, integer_amounts):
                bought = True
            j += 1
        if bought:
            groups += 1
        else:
            no_purchase[0] += 1
        i = j
    return groups


cdef int _customer_stats(GroupStats *out, int64_t g, int32_t customer,
                         const churn_row *rows, int64_t n, bint integer_amounts,
                         int64_t *gaps) noexcept nogil:
    """Writes the statistics of one customer's groups (rows sorted) from index g."""
    cdef int64_t i = 0, j, t, k, n_orders, gap_sum
    cdef int32_t prev_day, first_day
    cdef double money_f, refund_f, mean, ss, dev
    cdef int64_t money_i, refund_i, amount
    cdef bint purchase
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
        while j < n and rows[j].cat == rows[i].cat:
            amount = rows[j].amount
            purchase = _is_purchase(amount, integer_amounts)
            if integer_amounts:
                if __builtin_add_overflow(money_i, amount, &money_i):
                    return CHURN_ERR_OVERFLOW
                if not purchase:
                    if amount == INT64_MIN or __builtin_sub_overflow(refund_i, amount, &refund_i):
                        return CHURN_ERR_OVERFLOW
            else:
                money_f = money_f + _as_double(amount)
                if not purchase:
                    refund_f = refund_f - _as_double(amount)
            if purchase:
                if n_orders == 0:
                    first_day = rows[j].day
                    n_orders = 1
                elif rows[j].day != prev_day:
                    gaps[n_orders - 1] = <int64_t>rows[j].day - prev_day
                    gap_sum += gaps[n_orders - 1]
                    n_orders += 1
                prev_day = rows[j].day
            j += 1
        if n_orders > 0:
            out.customer[g] = customer
            out.cat[g] = rows[i].cat
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
    return CHURN_OK


def group_statistics(int64_t[::1] rows_words, const int64_t[::1] offsets,
                     bint integer_amounts, int threads):
    """Per-group statistics of grouped rows (see :func:`group_rows`).

    Sorts each customer's rows in place by (category, day, amount), so money
    sums do not depend on the input row order. Returns a dict of arrays, one
    entry per group with at least one purchase, in (customer, category)
    order, and the number of groups without a purchase.
    """
    cdef int64_t n_customers = offsets.shape[0] - 1
    cdef churn_row *rows = <churn_row *>&rows_words[0] if rows_words.shape[0] else NULL
    groups_arr = np.zeros(n_customers + 1, dtype=np.int64)
    cdef int64_t[::1] group_start = groups_arr
    cdef int64_t r, max_rows = 0, n_groups, total
    no_purchase_arr = np.zeros(n_customers, dtype=np.int32)
    cdef int32_t[::1] no_purchase = no_purchase_arr
    cdef int32_t[::1] error = np.zeros(1, dtype=np.int32)
    cdef int rc
    cdef int64_t *gaps = NULL
    cdef GroupStats out

    # pass 1: sort each customer's rows, count groups
    with nogil:
        for r in prange(n_customers, num_threads=threads, schedule="guided"):
            group_start[r + 1] = _sort_and_count(
                rows + offsets[r], offsets[r + 1] - offsets[r], integer_amounts, &no_purchase[r]
            )
    with nogil:
        total = 0
        for r in range(n_customers + 1):
            total = total + group_start[r]
            group_start[r] = total
            if r < n_customers and offsets[r + 1] - offsets[r] > max_rows:
                max_rows = offsets[r + 1] - offsets[r]
    n_groups = total

    result = {
        "customer": np.empty(n_groups, dtype=np.int32),
        "cat": np.empty(n_groups, dtype=np.int32),
        "n_orders": np.empty(n_groups, dtype=np.int64),
        "n_rows": np.empty(n_groups, dtype=np.int64),
        "first_day": np.empty(n_groups, dtype=np.int32),
        "last_day": np.empty(n_groups, dtype=np.int32),
        "monetary_total": np.empty(n_groups, dtype=np.int64 if integer_amounts else np.float64),
        "refund_total": np.empty(n_groups, dtype=np.int64 if integer_amounts else np.float64),
        "interval_mean_days": np.empty(n_groups, dtype=np.float64),
        "interval_std_days": np.empty(n_groups, dtype=np.float64),
        "interval_median_days": np.empty(n_groups, dtype=np.float64),
    }
    if n_groups == 0:
        return result, int(no_purchase_arr.sum())
    _fill_pointers(&out, result, integer_amounts)

    # pass 2: statistics, each thread with its own gap buffer
    with nogil, parallel(num_threads=threads):
        gaps = <int64_t *>malloc((max_rows + 1) * sizeof(int64_t))
        if gaps == NULL:
            error[0] = CHURN_ERR_NOMEM
        for r in prange(n_customers, schedule="guided"):
            if gaps != NULL and group_start[r + 1] > group_start[r]:
                rc = _customer_stats(&out, group_start[r], <int32_t>r, rows + offsets[r],
                                     offsets[r + 1] - offsets[r], integer_amounts, gaps)
                if rc != CHURN_OK:
                    error[0] = rc
        free(gaps)
    _check(error[0], "statistics")
    return result, int(no_purchase_arr.sum())


cdef void _fill_pointers(GroupStats *out, dict arrays, bint integer_amounts) except *:
    cdef int32_t[::1] customer = arrays["customer"]
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
    out.customer = &customer[0]
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
# stage 4: priors, cycles and status
# --------------------------------------------------------------------------

def category_priors(const int32_t[::1] cat, const int64_t[::1] n_orders,
                    const double[::1] interval_mean, const double[::1] fixed_prior):
    """Prior cycle per category: ``fixed_prior[c]`` when not NaN, else the
    median of ``interval_mean`` over the category's groups with a gap (NaN
    when there is none)."""
    cdef int64_t n = cat.shape[0], i, c, n_cats = fixed_prior.shape[0]
    priors_arr = np.full(n_cats, np.nan)
    cdef double[::1] priors = priors_arr
    starts_arr = np.zeros(n_cats + 1, dtype=np.int64)
    cdef int64_t[::1] starts = starts_arr
    cdef double[::1] values = np.empty(n, dtype=np.float64)
    cdef int64_t[::1] cursor
    with nogil:
        for i in range(n):
            if n_orders[i] >= 2:
                starts[cat[i] + 1] += 1
        for c in range(n_cats):
            starts[c + 1] += starts[c]
    cursor = starts_arr[:n_cats].copy()
    with nogil:
        for i in range(n):
            if n_orders[i] >= 2:
                values[cursor[cat[i]]] = interval_mean[i]
                cursor[cat[i]] += 1
        for c in range(n_cats):
            if not isnan(fixed_prior[c]):
                priors[c] = fixed_prior[c]
            elif starts[c + 1] > starts[c]:
                priors[c] = churn_median_double(&values[starts[c]], starts[c + 1] - starts[c])
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
    cdef double k, prior, c, rec
    cdef int32_t g
    with nogil:
        for i in prange(n, num_threads=threads, schedule="static"):
            g = cat[i]
            k = <double>(n_orders[i] - 1)
            prior = priors[g]
            rec = <double>(as_of_day - last_day[i])
            recency[i] = as_of_day - last_day[i]
            if k == 0:
                c = prior
            elif isnan(prior):
                c = interval_mean[i]
            else:
                c = (k * interval_mean[i] + prior_weight * prior) / (k + prior_weight)
            cycle[i] = c
            if isnan(c):
                since[i] = NAN
                next_day[i] = INT32_MIN
                overdue[i] = NAN
            else:
                since[i] = rec / c
                next_day[i] = last_day[i] + <int32_t>floor(c + 0.5)
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

def quantile_cuts(values, int bins):
    """The ``i/bins`` order statistics, i = 1..bins-1, by selection (no full
    sort): the element at index ``((n - 1) * i) // bins`` of the sorted values,
    as ``numpy.quantile(values, i / bins, method="lower")``."""
    cdef int64_t n = values.shape[0], k, prev = 0, i
    cuts = np.empty(bins - 1, dtype=np.float64)
    cdef double[::1] out = cuts
    cdef double[::1] work_f
    cdef int64_t[::1] work_i
    if n == 0:
        raise ValueError("quantile_cuts needs at least one value")
    if values.dtype == np.float64:
        work_f = np.array(values, dtype=np.float64, copy=True)
        with nogil:
            for i in range(1, bins):
                k = ((n - 1) * i) // bins
                # earlier selections leave larger values after `prev`
                out[i - 1] = churn_select_double(&work_f[prev], n - prev, k - prev)
                prev = k
    else:
        work_i = np.array(values, dtype=np.int64, copy=True)
        with nogil:
            for i in range(1, bins):
                k = ((n - 1) * i) // bins
                out[i - 1] = <double>churn_select_int64(&work_i[prev], n - prev, k - prev)
                prev = k
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
