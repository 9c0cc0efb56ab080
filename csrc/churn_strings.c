#define _DEFAULT_SOURCE /* madvise */
#include "churn_strings.h"
#include "churn_bits.h"
#include "churn_status.h"
#include "churn_threads.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- memory and threads --------------------------------------------------- */

/* Big arrays go on huge pages where the system allows it: their accesses
 * are partly random (with 4 KiB pages nearly each one a TLB miss) and a
 * first touch costs a page fault per 4 KiB. */
static void *big_alloc(size_t size) {
    if (size < ((size_t)4 << 20)) return malloc(size ? size : 1);
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, size) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
    return p;
}

/* One allocation handed out front to back: the encoder's big arrays reuse
 * memory it has already touched (a fresh page costs a fault and zeroing,
 * often more than the work done on it). */
typedef struct {
    uint8_t *base;
    size_t size, used;
} workspace;

/* size bytes of the workspace, 64-byte aligned, or NULL when they do not
 * fit (the workspace is unchanged then). Each take may pad up to 63 bytes. */
static void *workspace_take(workspace *ws, size_t size) {
    if (!ws->base) return NULL;
    uintptr_t at = (uintptr_t)ws->base + ws->used;
    size_t offset = (size_t)(((at + 63) & ~(uintptr_t)63) - (uintptr_t)ws->base);
    if (offset > ws->size || size > ws->size - offset) return NULL;
    ws->used = offset + size;
    return ws->base + offset;
}

/* size bytes from the workspace, or when they do not fit a big_alloc of
 * their own, which *owned then holds (to free); NULL when out of memory. */
static void *workspace_take_or_alloc(workspace *ws, size_t size, void **owned) {
    void *p = workspace_take(ws, size);
    if (p) return p;
    *owned = big_alloc(size);
    return *owned;
}

/* Gives the workspace's pages past its first keep bytes back to the system
 * (a hint; big workspaces only): what outlives the call sits at the front,
 * and the caller allocates right after. */
static void workspace_give_back_tail(workspace *ws, size_t keep) {
#ifdef MADV_DONTNEED
    long page = sysconf(_SC_PAGESIZE);
    if (!ws->base || ws->size < ((size_t)4 << 20) || page <= 0) return;
    uintptr_t mask = (uintptr_t)page - 1;
    uintptr_t from = ((uintptr_t)ws->base + keep + mask) & ~mask;
    uintptr_t to = ((uintptr_t)ws->base + ws->size) & ~mask;
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
#else
    (void)ws;
    (void)keep;
#endif
}

static inline int team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- reading strings ------------------------------------------------------ */

static inline int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Where string i of a utf8 or large_utf8 chunk starts and ends in its data. */
static inline void offsets_at(const churn_str_chunk *c, int64_t i, int64_t *start, int64_t *end) {
    if (c->kind == CHURN_STR_UTF8) {
        *start = c->offsets32[i];
        *end = c->offsets32[i + 1];
    } else {
        *start = c->offsets64[i];
        *end = c->offsets64[i + 1];
    }
}

/* String i of chunk c (check_chunk accepted c). */
static inline const uint8_t *str_at(const churn_str_chunk *c, int64_t i, int64_t *len) {
    if (c->kind == CHURN_STR_VIEW) {
        const uint8_t *v = c->views + 16 * i;
        int32_t n = load_i32(v);
        *len = n;
        if (n <= 12) return v + 4;
        return c->buffers[load_i32(v + 8)] + load_i32(v + 12);
    }
    int64_t start, end;
    offsets_at(c, i, &start, &end);
    *len = end - start;
    return c->data + start;
}

/* Every string of the chunk inside its buffers (Arrow data from pyarrow or
 * Polars always is; this keeps a malformed array from reading out of bounds). */
static int check_chunk(const churn_str_chunk *c) {
    if (c->n < 0) return CHURN_ERR_BAD_STRING;
    if (c->n == 0) return CHURN_OK;
    if (c->kind == CHURN_STR_VIEW) {
        if (!c->views) return CHURN_ERR_BAD_STRING;
        for (int64_t i = 0; i < c->n; i++) {
            const uint8_t *v = c->views + 16 * i;
            int32_t n = load_i32(v);
            if (n < 0) return CHURN_ERR_BAD_STRING;
            if (n <= 12) continue;
            int32_t buffer = load_i32(v + 8), offset = load_i32(v + 12);
            if (buffer < 0 || buffer >= c->n_buffers || offset < 0 || !c->buffers[buffer] ||
                (int64_t)offset + n > c->buffer_lens[buffer])
                return CHURN_ERR_BAD_STRING;
        }
        return CHURN_OK;
    }
    if (c->kind != CHURN_STR_UTF8 && c->kind != CHURN_STR_LARGE_UTF8) return CHURN_ERR_BAD_STRING;
    if (c->kind == CHURN_STR_UTF8 ? !c->offsets32 : !c->offsets64) return CHURN_ERR_BAD_STRING;
    int64_t prev = c->kind == CHURN_STR_UTF8 ? c->offsets32[0] : c->offsets64[0];
    if (prev < 0) return CHURN_ERR_BAD_STRING;
    for (int64_t i = 1; i <= c->n; i++) {
        int64_t next = c->kind == CHURN_STR_UTF8 ? c->offsets32[i] : c->offsets64[i];
        if (next < prev) return CHURN_ERR_BAD_STRING;
        prev = next;
    }
    if (prev > c->data_len || (prev > 0 && !c->data)) return CHURN_ERR_BAD_STRING;
    return CHURN_OK;
}

/* Calls BODY with (chunk c, its rows [first, last), global row of its first
 * row base_) for the global rows [begin, end). A break in BODY (outside an
 * inner loop) ends the walk. */
#define FOR_ROW_RANGE(chunks, n_chunks, begin, end, BODY)                          \
    do {                                                                           \
        int64_t base_ = 0;                                                         \
        for (int64_t k_ = 0; k_ < (n_chunks) && base_ < (end); k_++) {             \
            const churn_str_chunk *c = &(chunks)[k_];                              \
            int64_t first = (begin) > base_ ? (begin) - base_ : 0;                 \
            int64_t last = (end) - base_ < c->n ? (end) - base_ : c->n;            \
            if (first < last) { BODY }                                             \
            base_ += c->n;                                                         \
        }                                                                          \
    } while (0)

/* ---- hashing -------------------------------------------------------------- */

/* The n bytes at p (0 < n <= 8) as a little-endian integer, zero padded,
 * reading only those bytes (and no memcpy call of a variable size). */
static inline uint64_t load_tail(const uint8_t *p, int64_t n) {
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return (uint64_t)lo | ((uint64_t)hi << (8 * (n - 4))); /* overlap: same bytes */
    }
    return (uint64_t)p[0] | ((uint64_t)p[n / 2] << (8 * (n / 2))) |
           ((uint64_t)p[n - 1] << (8 * (n - 1)));
}

/* Byte equality of two strings of length len. */
static inline int same_bytes(const uint8_t *a, const uint8_t *b, int64_t len) {
    if (len <= 8) return len == 0 || load_tail(a, len) == load_tail(b, len);
    if (len <= 16)
        return load64(a) == load64(b) && load_tail(a + 8, len - 8) == load_tail(b + 8, len - 8);
    return memcmp(a, b, (size_t)len) == 0;
}

static inline uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t mix_word(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x87C37B91114253D5ULL;
    return h ^ (h >> 31);
}

/* One multiply per 8 bytes, each step a bijection of the state (no input
 * zeroes it), then a full avalanche; the length is mixed in first, so
 * zero-padded tails of different lengths differ. */
uint64_t churn_str_hash(const uint8_t *bytes, int64_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)len * 0xC2B2AE3D27D4EB4FULL);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) h = mix_word(h, load64(bytes + i));
    if (i < len) h = mix_word(h, load_tail(bytes + i, len - i));
    return fmix64(h);
}

static inline uint64_t low_bytes(uint64_t w, int64_t n) { /* 0 < n <= 8 */
    return n >= 8 ? w : w & ((((uint64_t)1) << (8 * n)) - 1);
}

/* churn_str_hash of a string of length <= 12 given as two words of its
 * bytes (w0: bytes 0..7, w1: bytes 8..11; bytes past len are ignored). */
static inline uint64_t hash_short(uint64_t w0, uint32_t w1, int64_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)len * 0xC2B2AE3D27D4EB4FULL);
    if (len > 8) h = mix_word(mix_word(h, w0), low_bytes(w1, len - 8));
    else if (len > 0) h = mix_word(h, low_bytes(w0, len));
    return fmix64(h);
}

/* churn_str_hash of an inline string view (length <= 12) from its two words
 * of inline bytes: the same value without byte-wise tail loads. */
static inline uint64_t hash_inline_view(const uint8_t *view, int64_t len) {
    uint32_t w1;
    memcpy(&w1, view + 12, 4);
    return hash_short(load64(view + 4), w1, len);
}

static inline uint32_t partition_of(uint64_t h, int part_bits) {
    return part_bits ? (uint32_t)(h >> (64 - part_bits)) : 0;
}

/* ---- sorting the distinct strings ----------------------------------------- */

typedef struct {
    const uint8_t *ptr;
    int64_t len;
} str_ref;

/* A distinct string being sorted: `code` indexes the str_ref table. At a
 * depth of the 8-byte chunk sort, key holds the string's next 8 bytes
 * big-endian (zero padded) and tail how many bytes are left: 0..8, or 9 for
 * "more than 8"; order by (key, tail) is byte order from that depth, up to
 * ties with tail 9. In the packed sort (below) key is the packed window. */
typedef struct {
    uint64_t key;
    int32_t code;
    int32_t tail;
} str_item;

static inline uint64_t big_endian_word(const uint8_t *s, int64_t n) { /* n <= 8 bytes, padded */
    uint64_t key = 0;
    if (n >= 8) {
        memcpy(&key, s, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        key = __builtin_bswap64(key);
#endif
        return key;
    }
    for (int64_t j = 0; j < n; j++) key |= (uint64_t)s[j] << (56 - 8 * j);
    return key;
}

static inline void fill_item(str_item *it, const str_ref *refs, int64_t depth) {
    int64_t rest = refs[it->code].len - depth;
    it->key = big_endian_word(refs[it->code].ptr + depth, rest < 8 ? rest : 8);
    it->tail = rest > 8 ? 9 : (int32_t)rest;
}

/* Byte order of two strings from depth on (their first depth bytes equal). */
static int compare_from(const str_ref *refs, int32_t a, int32_t b, int64_t depth) {
    int64_t la = refs[a].len - depth, lb = refs[b].len - depth;
    int64_t m = la < lb ? la : lb;
    int c = m > 0 ? memcmp(refs[a].ptr + depth, refs[b].ptr + depth, (size_t)m) : 0;
    if (c) return c;
    return (la > lb) - (la < lb);
}

static inline int item_less(const str_ref *refs, const str_item *a, const str_item *b,
                            int64_t depth) {
    if (a->key != b->key) return a->key < b->key;
    if (a->tail != b->tail) return a->tail < b->tail;
    if (a->tail < 9) return 0;
    return compare_from(refs, a->code, b->code, depth + 8) < 0;
}

static void insertion_sort_items(const str_ref *refs, str_item *a, int64_t n, int64_t depth) {
    for (int64_t i = 1; i < n; i++) {
        str_item x = a[i];
        int64_t j = i;
        while (j > 0 && item_less(refs, &x, &a[j - 1], depth)) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void insertion_sort_by_key(str_item *a, int64_t n) {
    for (int64_t i = 1; i < n; i++) {
        str_item x = a[i];
        int64_t j = i;
        while (j > 0 && a[j - 1].key > x.key) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

enum { SMALL_RANGE = 16, DIGIT_BITS = 11, DIGITS = 1 << DIGIT_BITS };

/* LSD radix sort by key over the digits that hold bits of `bits` (the
 * other key bits are equal in every item). */
static void radix_by_key(str_item *a, str_item *scratch, int64_t n, uint64_t bits) {
    str_item *src = a, *dst = scratch;
    int64_t count[DIGITS];
    for (int shift = 0; shift < 64; shift += DIGIT_BITS) {
        if (!(bits & ((uint64_t)(DIGITS - 1) << shift))) continue;
        memset(count, 0, sizeof(count));
        for (int64_t i = 0; i < n; i++) count[(src[i].key >> shift) & (DIGITS - 1)]++;
        int64_t sum = 0;
        for (int d = 0; d < DIGITS; d++) {
            int64_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[count[(src[i].key >> shift) & (DIGITS - 1)]++] = src[i];
        str_item *tmp = src;
        src = dst;
        dst = tmp;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(str_item));
}

static uint64_t varying_key_bits(const str_item *a, int64_t n) {
    uint64_t all_or = 0, all_and = ~(uint64_t)0;
    for (int64_t i = 0; i < n; i++) {
        all_or |= a[i].key;
        all_and &= a[i].key;
    }
    return all_or ^ all_and;
}

/* Pending ranges of items whose first `depth` bytes are equal (an explicit
 * stack: long shared prefixes must not recurse deeply). */
typedef struct {
    int64_t start, n, depth;
} str_range;

typedef struct {
    str_range *items;
    int64_t size, capacity;
} range_stack;

static int push_range(range_stack *s, int64_t start, int64_t n, int64_t depth) {
    if (s->size == s->capacity) {
        int64_t capacity = s->capacity ? 2 * s->capacity : 64;
        str_range *grown = (str_range *)realloc(s->items, (size_t)capacity * sizeof(str_range));
        if (!grown) return CHURN_ERR_NOMEM;
        s->items = grown;
        s->capacity = capacity;
    }
    s->items[s->size].start = start;
    s->items[s->size].n = n;
    s->items[s->size].depth = depth;
    s->size++;
    return CHURN_OK;
}

/* Sorts a run of items whose first `depth` bytes are equal: at once when
 * short, else later (queued). */
static int sort_later(const str_ref *refs, str_item *items, int64_t start, int64_t n,
                      int64_t depth, range_stack *stack) {
    if (n < 2) return CHURN_OK;
    if (n > SMALL_RANGE) return push_range(stack, start, n, depth);
    for (int64_t k = 0; k < n; k++) fill_item(&items[start + k], refs, depth);
    insertion_sort_items(refs, items + start, n, depth);
    return CHURN_OK;
}

/* items[start..start+n) sorted by key at depth: order each run of equal
 * keys by tail; the strings of a run that go on past these 8 bytes are then
 * sorted from depth + 8. */
static int settle_runs(const str_ref *refs, str_item *items, int64_t start, int64_t n,
                       int64_t depth, range_stack *stack) {
    str_item *a = items + start;
    int64_t i = 0;
    while (i < n) {
        int64_t j = i + 1;
        while (j < n && a[j].key == a[i].key) j++;
        if (j - i > 1) {
            /* tails are 0..9: a counting sort keeps long runs linear */
            int64_t count[11] = {0};
            for (int64_t k = i; k < j; k++) count[a[k].tail + 1]++;
            for (int d = 0; d < 10; d++) count[d + 1] += count[d];
            if (count[10] - count[9] != j - i) { /* not all tails 9: reorder */
                str_item local[SMALL_RANGE];
                str_item *tmp = j - i <= SMALL_RANGE
                                    ? local
                                    : (str_item *)malloc((size_t)(j - i) * sizeof(str_item));
                if (!tmp) return CHURN_ERR_NOMEM;
                int64_t cursor[10];
                memcpy(cursor, count, sizeof(cursor));
                for (int64_t k = i; k < j; k++) tmp[cursor[a[k].tail]++] = a[k];
                memcpy(a + i, tmp, (size_t)(j - i) * sizeof(str_item));
                if (tmp != local) free(tmp);
            }
            int64_t more = count[10] - count[9]; /* tail 9: at the end of the run */
            if (sort_later(refs, items, start + j - more, more, depth + 8, stack) != CHURN_OK)
                return CHURN_ERR_NOMEM;
        }
        i = j;
    }
    return CHURN_OK;
}

/* Sorts the queued ranges (and those they queue) by 8-byte chunks. */
static int drain(const str_ref *refs, str_item *items, str_item *scratch, range_stack *stack) {
    while (stack->size) {
        str_range r = stack->items[--stack->size];
        str_item *a = items + r.start;
        for (int64_t i = 0; i < r.n; i++) fill_item(&a[i], refs, r.depth);
        uint64_t bits = varying_key_bits(a, r.n);
        if (bits) radix_by_key(a, scratch + r.start, r.n, bits); /* ranges are disjoint */
        int rc = settle_runs(refs, items, r.start, r.n, r.depth, stack);
        if (rc != CHURN_OK) return rc;
    }
    return CHURN_OK;
}

/* The first 16 bytes of a string (zero padded) as two big-endian words, and
 * its length capped at 17 ("more than 16"): ordering by (hi, lo, tail) is
 * byte order, up to ties between strings longer than 16 bytes. */
typedef struct {
    uint64_t hi, lo;
    uint32_t tail;
} window;

static inline window window_of(const str_ref *ref) {
    window w;
    int64_t len = ref->len;
    w.hi = big_endian_word(ref->ptr, len < 8 ? len : 8);
    w.lo = len > 8 ? big_endian_word(ref->ptr + 8, len < 16 ? len - 8 : 8) : 0;
    w.tail = len > 16 ? 17 : (uint32_t)len;
    return w;
}

static inline uint32_t window_byte(const window *w, int j) { /* 0..15, 16: the tail */
    if (j < 8) return (uint32_t)(w->hi >> (56 - 8 * j)) & 0xff;
    if (j < 16) return (uint32_t)(w->lo >> (120 - 8 * j)) & 0xff;
    return w->tail;
}

/* Packs the window bits that are not the same in every string into one
 * integer, in order: dropping bits equal everywhere keeps the order. Byte
 * tables instead of a pext instruction: portable, 17 lookups at most. */
typedef churn_str_packer packer;

static void packer_init(packer *pk, const window *varying) {
    pk->n_active = 0;
    pk->bits = 0;
    for (int j = 0; j < 17; j++) {
        uint32_t mask = window_byte(varying, j);
        if (!mask) continue;
        int k = pk->n_active++;
        pk->byte[k] = (uint8_t)j;
        pk->width[k] = (uint8_t)__builtin_popcount(mask);
        pk->bits += pk->width[k];
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t packed = 0;
            for (int bit = 7; bit >= 0; bit--)
                if ((mask >> bit) & 1) packed = (packed << 1) | ((v >> bit) & 1);
            pk->table[k][v] = (uint8_t)packed;
        }
    }
}

static inline uint64_t pack(const packer *pk, const window *w) {
    uint64_t key = 0;
    for (int k = 0; k < pk->n_active; k++)
        key = (key << pk->width[k]) | pk->table[k][window_byte(w, pk->byte[k])];
    return key;
}

/* Sorted by packed key: a run of equal keys holds strings equal in their
 * first 16 bytes and longer (distinct strings): sort them from byte 16. */
static int settle_packed_runs(const str_ref *refs, str_item *items, int64_t start, int64_t n,
                              range_stack *stack) {
    str_item *a = items + start;
    int64_t i = 0;
    while (i < n) {
        int64_t j = i + 1;
        while (j < n && a[j].key == a[i].key) j++;
        /* (a tail below 17 in a run would mean equal strings: none here) */
        if (a[i].tail == 17 && sort_later(refs, items, start + i, j - i, 16, stack) != CHURN_OK)
            return CHURN_ERR_NOMEM;
        i = j;
    }
    return CHURN_OK;
}

/* items[0..n) (codes set) into ascending byte order of their strings.
 *
 * The first 16 bytes and the length, packed to their varying bits, make
 * one integer key when they fit in 64 bits (ids like "C0004812305" take
 * 40): an integer sort, and 8-byte chunks from byte 16 for ties only.
 * Otherwise 8-byte chunks from the start, deeper chunks for ties only.
 * Either way one parallel MSD pass on the key's top varying bits, then the
 * buckets in parallel, each by LSD radix passes on the bits that vary. */
static int sort_strings(const str_ref *refs, str_item *items, str_item *scratch, int64_t n,
                        int n_threads) {
    if (n < 2) return CHURN_OK;
    if (n < 4 * DIGITS) n_threads = 1;
    int64_t *counts = (int64_t *)calloc((size_t)n_threads * DIGITS, sizeof(int64_t));
    int64_t *start = (int64_t *)calloc(DIGITS + 1, sizeof(int64_t));
    uint64_t *reduce = (uint64_t *)calloc(6 * (size_t)n_threads, sizeof(uint64_t));
    packer *pk = (packer *)malloc(sizeof(packer));
    int failed = CHURN_OK;
    if (!counts || !start || !reduce || !pk) {
        failed = CHURN_ERR_NOMEM;
        goto done;
    }
    int packed = 0, shift = 0;
    uint64_t bits = 0;
#pragma omp parallel num_threads(n_threads)
    {
        /* the window bits that vary, per block (locals: no false sharing) */
        for (int blk = thread_id(); blk < n_threads; blk += team_size()) {
            int64_t lo = n * blk / n_threads, hi = n * (blk + 1) / n_threads;
            uint64_t r[6] = {0, ~(uint64_t)0, 0, ~(uint64_t)0, 0, ~(uint64_t)0};
            for (int64_t i = lo; i < hi; i++) {
                window w = window_of(&refs[items[i].code]);
                r[0] |= w.hi, r[1] &= w.hi, r[2] |= w.lo, r[3] &= w.lo;
                r[4] |= w.tail, r[5] &= w.tail;
            }
            memcpy(reduce + 6 * blk, r, sizeof(r));
        }
#pragma omp barrier
#pragma omp single
        {
            uint64_t r[6] = {0, ~(uint64_t)0, 0, ~(uint64_t)0, 0, ~(uint64_t)0};
            for (int u = 0; u < n_threads; u++)
                for (int k = 0; k < 6; k++)
                    r[k] = k % 2 ? r[k] & reduce[6 * u + k] : r[k] | reduce[6 * u + k];
            window varying = {r[0] ^ r[1], r[2] ^ r[3], (uint32_t)(r[4] ^ r[5])};
            packer_init(pk, &varying);
            packed = pk->bits <= 64;
        }
        /* the keys, and the bits that vary in them */
        for (int blk = thread_id(); blk < n_threads; blk += team_size()) {
            int64_t lo = n * blk / n_threads, hi = n * (blk + 1) / n_threads;
            uint64_t block_or = 0, block_and = ~(uint64_t)0;
            for (int64_t i = lo; i < hi; i++) {
                if (packed) {
                    window w = window_of(&refs[items[i].code]);
                    items[i].key = pack(pk, &w);
                    items[i].tail = (int32_t)w.tail;
                } else {
                    fill_item(&items[i], refs, 0);
                }
                block_or |= items[i].key;
                block_and &= items[i].key;
            }
            reduce[6 * blk] = block_or;
            reduce[6 * blk + 1] = block_and;
        }
#pragma omp barrier
#pragma omp single
        {
            uint64_t all_or = 0, all_and = ~(uint64_t)0;
            for (int u = 0; u < n_threads; u++) {
                all_or |= reduce[6 * u];
                all_and &= reduce[6 * u + 1];
            }
            bits = all_or ^ all_and;
            if (bits) {
                int top = 63;
                while (!((bits >> top) & 1)) top--;
                shift = top >= DIGIT_BITS - 1 ? top - (DIGIT_BITS - 1) : 0;
            }
        }
        /* MSD pass: bucket counts per block, then each block scatters */
        for (int blk = thread_id(); blk < n_threads; blk += team_size()) {
            int64_t lo = n * blk / n_threads, hi = n * (blk + 1) / n_threads;
            int64_t *mine = counts + (int64_t)blk * DIGITS;
            for (int64_t i = lo; i < hi; i++) mine[(items[i].key >> shift) & (DIGITS - 1)]++;
        }
#pragma omp barrier
#pragma omp single
        {
            int64_t sum = 0;
            for (int d = 0; d < DIGITS; d++) {
                start[d] = sum;
                for (int u = 0; u < n_threads; u++) {
                    int64_t c = counts[(int64_t)u * DIGITS + d];
                    counts[(int64_t)u * DIGITS + d] = sum;
                    sum += c;
                }
            }
            start[DIGITS] = sum;
        }
        for (int blk = thread_id(); blk < n_threads; blk += team_size()) {
            int64_t lo = n * blk / n_threads, hi = n * (blk + 1) / n_threads;
            int64_t *mine = counts + (int64_t)blk * DIGITS;
            for (int64_t i = lo; i < hi; i++)
                scratch[mine[(items[i].key >> shift) & (DIGITS - 1)]++] = items[i];
        }
#pragma omp barrier
        /* each bucket back into items, sorted on the bits below its digit */
        uint64_t below = bits & ((((uint64_t)1) << shift) - 1);
        range_stack stack = {NULL, 0, 0};
        int rc = CHURN_OK;
#pragma omp for schedule(dynamic)
        for (int d = 0; d < DIGITS; d++) {
            int64_t lo = start[d], m = start[d + 1] - lo;
            if (m == 0) continue;
            memcpy(items + lo, scratch + lo, (size_t)m * sizeof(str_item));
            if (m < 2 || rc != CHURN_OK) continue;
            if (packed) {
                if (m <= SMALL_RANGE) insertion_sort_by_key(items + lo, m);
                else if (below) radix_by_key(items + lo, scratch + lo, m, below);
                rc = settle_packed_runs(refs, items, lo, m, &stack);
            } else if (m <= SMALL_RANGE) {
                insertion_sort_items(refs, items + lo, m, 0);
            } else {
                if (below) radix_by_key(items + lo, scratch + lo, m, below);
                rc = settle_runs(refs, items, lo, m, 0, &stack);
            }
            if (rc == CHURN_OK) rc = drain(refs, items, scratch, &stack);
        }
        if (rc != CHURN_OK) {
#pragma omp atomic write
            failed = rc;
        }
        free(stack.items);
    }
done:
    free(counts);
    free(start);
    free(reduce);
    free(pk);
    return failed;
}

/* ---- records -------------------------------------------------------------- */

/* A string copied after its length, which takes one byte below 255 and
 * nine bytes (255, then the int64 length) from there. */
static inline int64_t record_size(int64_t len) { return (len < 255 ? 1 : 9) + len; }

static inline uint8_t *put_header(uint8_t *out, int64_t len) {
    if (len < 255) {
        *out++ = (uint8_t)len;
        return out;
    }
    *out++ = 255;
    memcpy(out, &len, 8);
    return out + 8;
}

static inline const uint8_t *get_record(const uint8_t *in, int64_t *len) {
    if (in[0] < 255) {
        *len = in[0];
        return in + 1;
    }
    memcpy(len, in + 1, 8);
    return in + 9;
}

/* ---- step 1: rows into partitions by hash --------------------------------- */

/* bytes staged per partition before they are appended together (software
 * write combining: a thousand partitions thrash neither cache nor TLB) */
enum { STAGE_BYTES = 128, TARGET_PART_ROWS_LOG2 = 15, MAX_PART_BITS = 12 };

/* Each partition's stage has 16 spare bytes: short strings are copied with
 * fixed-size moves that may write a little past their record. */
enum { STAGE_STRIDE = STAGE_BYTES + 16 };

/* The records of one (block of rows, partition): a slice of the block's
 * region, sized from a sample of the block, then, if that fills up, a spill
 * buffer grown on demand (the region's records come first). */
typedef struct {
    uint8_t *region;
    int64_t region_used, region_capacity;
    uint8_t *spill;
    int64_t spill_used, spill_capacity;
} record_buffer;

/* Appends head then tail (whole records, never split between the region
 * and the spill buffer). */
static int append(record_buffer *buf, const uint8_t *head, int64_t n_head, const uint8_t *tail,
                  int64_t n_tail) {
    int64_t n = n_head + n_tail;
    uint8_t *out;
    if (!buf->spill && buf->region_used + n <= buf->region_capacity) {
        out = buf->region + buf->region_used;
        buf->region_used += n;
    } else {
        if (buf->spill_used + n > buf->spill_capacity) {
            int64_t capacity = buf->spill_capacity ? 2 * buf->spill_capacity : 4096;
            if (capacity < buf->spill_used + n) capacity = buf->spill_used + n;
            uint8_t *spill = (uint8_t *)realloc(buf->spill, (size_t)capacity);
            if (!spill) return CHURN_ERR_NOMEM;
            buf->spill = spill;
            buf->spill_capacity = capacity;
        }
        out = buf->spill + buf->spill_used;
        buf->spill_used += n;
    }
    memcpy(out, head, (size_t)n_head);
    if (n_tail) memcpy(out + n_head, tail, (size_t)n_tail);
    return CHURN_OK;
}

/* Record bytes to expect per partition from the rows [begin, end): a
 * partition's share of the rows (plus four standard deviations) times the
 * mean record size of a sample. */
static int64_t region_per_partition(const churn_str_chunk *chunks, int64_t n_chunks,
                                    int64_t begin, int64_t end, int64_t n_parts) {
    int64_t sample = 0, sampled = 0;
    FOR_ROW_RANGE(chunks, n_chunks, begin, end, {
        for (int64_t i = first; i < last && sampled < 4096; i++, sampled++) {
            int64_t len;
            str_at(c, i, &len);
            sample += record_size(len);
        }
    });
    if (!sampled) return 0;
    double rows = (double)(end - begin) / (double)n_parts;
    return (int64_t)((rows + 4.0 * __builtin_sqrt(rows) + 16.0) * (double)sample /
                     (double)sampled) + 64;
}

/* One row: its partition, rows per partition, its record staged or appended. */
static inline int scatter_row(const uint8_t *s, int64_t len, uint64_t hash_mask, int part_bits,
                              uint8_t *stage, uint16_t *staged, record_buffer *bufs,
                              int64_t *rows, uint16_t *part_of_row) {
    uint32_t p = partition_of(churn_str_hash(s, len) & hash_mask, part_bits);
    *part_of_row = (uint16_t)p;
    rows[p]++;
    int64_t size = record_size(len);
    uint8_t *mine = stage + (size_t)p * STAGE_STRIDE;
    int rc = CHURN_OK;
    if (staged[p] + size > STAGE_BYTES) {
        rc = append(&bufs[p], mine, staged[p], NULL, 0);
        staged[p] = 0;
    }
    if (rc != CHURN_OK) return rc;
    if (size > STAGE_BYTES) {
        uint8_t header[9];
        return append(&bufs[p], header, put_header(header, len) - header, s, len);
    }
    uint8_t *out = mine + staged[p];
    *out = (uint8_t)len; /* len < STAGE_BYTES: a one-byte header */
    memcpy(out + 1, s, (size_t)(size - 1));
    staged[p] = (uint16_t)(staged[p] + size);
    return CHURN_OK;
}

/* Step 1 for the rows [begin, end): each row's partition (part_of), rows per
 * partition (rows) and each partition's records (bufs). */
/* Stages one string of at most 12 bytes (given zero-padded to 12) in
 * partition p: a fixed-size copy, as the stage has room past its end. */
static inline int stage_short(uint8_t *stage, uint16_t *staged, record_buffer *bufs, uint32_t p,
                              const uint8_t *padded, int64_t len) {
    uint8_t *mine = stage + (size_t)p * STAGE_STRIDE;
    if (staged[p] + 1 + len > STAGE_BYTES) {
        int rc = append(&bufs[p], mine, staged[p], NULL, 0);
        staged[p] = 0;
        if (rc != CHURN_OK) return rc;
    }
    uint8_t *out = mine + staged[p];
    out[0] = (uint8_t)len;
    memcpy(out + 1, padded, 12);
    staged[p] = (uint16_t)(staged[p] + 1 + len);
    return CHURN_OK;
}

static int scatter_block(const churn_str_chunk *chunks, int64_t n_chunks, int64_t begin,
                         int64_t end, int part_bits, uint64_t hash_mask, uint16_t *part_of,
                         int64_t *rows, record_buffer *bufs) {
    int64_t n_parts = ((int64_t)1) << part_bits;
    uint8_t *stage = (uint8_t *)malloc((size_t)n_parts * STAGE_STRIDE);
    uint16_t *staged = (uint16_t *)calloc((size_t)n_parts, sizeof(uint16_t));
    int rc = stage && staged ? CHURN_OK : CHURN_ERR_NOMEM;
    FOR_ROW_RANGE(chunks, n_chunks, begin, end, {
        if (rc != CHURN_OK) break;
        if (c->kind == CHURN_STR_VIEW) {
            /* the common case on its own: short ids inline in their views */
            for (int64_t i = first; i < last; i++) {
                const uint8_t *v = c->views + 16 * i;
                int64_t len = load_i32(v);
                if (len > 12) {
                    rc = scatter_row(c->buffers[load_i32(v + 8)] + load_i32(v + 12), len,
                                     hash_mask, part_bits, stage, staged, bufs, rows,
                                     &part_of[base_ + i]);
                    if (rc != CHURN_OK) break;
                    continue;
                }
                uint32_t p = partition_of(hash_inline_view(v, len) & hash_mask, part_bits);
                part_of[base_ + i] = (uint16_t)p;
                rows[p]++;
                rc = stage_short(stage, staged, bufs, p, v + 4, len);
                if (rc != CHURN_OK) break;
            }
        } else {
            /* short utf8 strings like inline views: two zero-padded words,
             * staged with a fixed-size copy */
            for (int64_t i = first; i < last; i++) {
                int64_t len;
                const uint8_t *s = str_at(c, i, &len);
                if (len > 12) {
                    rc = scatter_row(s, len, hash_mask, part_bits, stage, staged, bufs, rows,
                                     &part_of[base_ + i]);
                    if (rc != CHURN_OK) break;
                    continue;
                }
                uint64_t w0 = len ? load_tail(s, len < 8 ? len : 8) : 0;
                uint32_t w1 = len > 8 ? (uint32_t)load_tail(s + 8, len - 8) : 0;
                uint32_t p = partition_of(hash_short(w0, w1, len) & hash_mask, part_bits);
                part_of[base_ + i] = (uint16_t)p;
                rows[p]++;
                uint8_t padded[12];
                memcpy(padded, &w0, 8);
                memcpy(padded + 8, &w1, 4);
                rc = stage_short(stage, staged, bufs, p, padded, len);
                if (rc != CHURN_OK) break;
            }
        }
    });
    for (int64_t p = 0; p < n_parts && rc == CHURN_OK; p++)
        if (staged[p]) rc = append(&bufs[p], stage + (size_t)p * STAGE_STRIDE, staged[p], NULL, 0);
    free(stage);
    free(staged);
    return rc;
}

/* ---- step 2: dense codes per partition ------------------------------------ */

typedef struct {
    uint64_t hash;
    int64_t pos; /* of its bytes in the arena */
    int64_t len;
} distinct;

/* One thread's table for the partition at hand (buffers reused across
 * partitions). The arena holds the distinct strings as records. */
typedef struct {
    int32_t *slots;
    int64_t n_slots;      /* allocated */
    int64_t n_slots_used; /* in use: a power of two */
    uint64_t mask;        /* n_slots_used - 1 */
    int32_t n_codes;
    int status;
    distinct *codes; /* per local code */
    int64_t capacity;
    uint8_t *arena;
    int64_t arena_size, arena_capacity;
} part_table;

static void part_table_free(part_table *b) {
    free(b->slots);
    free(b->codes);
    free(b->arena);
    memset(b, 0, sizeof(*b));
}

static int grow_codes(part_table *b) {
    int64_t capacity = b->capacity ? 2 * b->capacity : 1024;
    distinct *codes = (distinct *)realloc(b->codes, (size_t)capacity * sizeof(distinct));
    if (!codes) return CHURN_ERR_NOMEM;
    b->codes = codes;
    b->capacity = capacity;
    return CHURN_OK;
}

static int reserve_arena(part_table *b, int64_t more) {
    if (b->arena_size + more <= b->arena_capacity) return CHURN_OK;
    int64_t capacity = b->arena_capacity ? b->arena_capacity : 1 << 16;
    while (capacity < b->arena_size + more) capacity *= 2;
    uint8_t *arena = (uint8_t *)realloc(b->arena, (size_t)capacity);
    if (!arena) return CHURN_ERR_NOMEM;
    b->arena = arena;
    b->arena_capacity = capacity;
    return CHURN_OK;
}

/* n_slots (a power of two) slots in use, the codes 0..n_codes re-inserted. */
static int resize_slots(part_table *b, int64_t n_slots, int32_t n_codes) {
    if (n_slots > b->n_slots) {
        free(b->slots);
        b->slots = (int32_t *)malloc((size_t)n_slots * sizeof(int32_t));
        if (!b->slots) {
            b->n_slots = 0;
            return CHURN_ERR_NOMEM;
        }
        b->n_slots = n_slots;
    }
    memset(b->slots, 0xff, (size_t)n_slots * sizeof(int32_t));
    b->n_slots_used = n_slots;
    b->mask = (uint64_t)n_slots - 1;
    for (int32_t code = 0; code < n_codes; code++) {
        uint64_t s = b->codes[code].hash & b->mask;
        while (b->slots[s] >= 0) s = (s + 1) & b->mask;
        b->slots[s] = code;
    }
    return CHURN_OK;
}

static void group_begin(part_table *b, int64_t n_rows) {
    /* room for n_rows / 2 distinct strings (ids repeat); grown on demand */
    int64_t n_slots = 64;
    while (n_slots < n_rows && n_slots < (1 << 16)) n_slots *= 2;
    b->n_codes = 0;
    b->arena_size = 0;
    b->status = resize_slots(b, n_slots, 0);
}

/* The local codes of the records in [records, end), in order; returns how
 * many records there were. Strings are equal when their bytes are: the hash
 * only picks the slot and skips most comparisons. */
static int64_t group_feed(part_table *b, const uint8_t *records, const uint8_t *end,
                          int32_t *local_codes, uint64_t hash_mask) {
    int64_t e = 0;
    if (b->status != CHURN_OK) return e;
    for (const uint8_t *next = records; next < end; e++) {
        int64_t len;
        const uint8_t *s = get_record(next, &len);
        next = s + len;
        uint64_t h = churn_str_hash(s, len) & hash_mask;
        uint64_t slot = h & b->mask;
        int32_t code;
        for (;;) {
            code = b->slots[slot];
            if (code < 0) break;
            const distinct *d = &b->codes[code];
            if (d->hash == h && d->len == len && same_bytes(b->arena + d->pos, s, len)) break;
            slot = (slot + 1) & b->mask;
        }
        if (code < 0) {
            if (b->n_codes == INT32_MAX) {
                b->status = CHURN_ERR_TOO_MANY;
                return e;
            }
            if ((b->n_codes == b->capacity && grow_codes(b) != CHURN_OK) ||
                reserve_arena(b, record_size(len)) != CHURN_OK) {
                b->status = CHURN_ERR_NOMEM;
                return e;
            }
            code = b->n_codes++;
            uint8_t *bytes = put_header(b->arena + b->arena_size, len);
            if (len) memcpy(bytes, s, (size_t)len);
            b->codes[code].hash = h;
            b->codes[code].pos = bytes - b->arena;
            b->codes[code].len = len;
            b->arena_size += record_size(len);
            b->slots[slot] = code;
            if (2 * (int64_t)b->n_codes > b->n_slots_used &&
                resize_slots(b, 2 * b->n_slots_used, b->n_codes) != CHURN_OK) {
                b->status = CHURN_ERR_NOMEM; /* the load stays under 1/2 */
                return e;
            }
        }
        local_codes[e] = code;
    }
    return e;
}

/* ---- the dictionary ------------------------------------------------------- */

struct churn_str_dict {
    int64_t size, bytes;
    int threads;
    int64_t n_parts;
    uint8_t **arenas; /* per partition: its distinct strings, as records */
    str_ref *sorted;  /* per rank: in the sort's scratch memory, not an allocation */
    void *sorted_memory; /* the allocation holding sorted: the encoder's workspace
                          * or the scratch array's own */
};

void churn_str_dict_free(churn_str_dict *d) {
    if (!d) return;
    if (d->arenas)
        for (int64_t p = 0; p < d->n_parts; p++) free(d->arenas[p]);
    free(d->arenas);
    free(d->sorted_memory);
    free(d);
}

int64_t churn_str_dict_size(const churn_str_dict *d) { return d->size; }
int64_t churn_str_dict_bytes(const churn_str_dict *d) { return d->bytes; }

void churn_str_dict_write(const churn_str_dict *d, int64_t *out_offsets, uint8_t *out_data) {
    out_offsets[0] = 0;
    for (int64_t r = 0; r < d->size; r++) out_offsets[r + 1] = out_offsets[r] + d->sorted[r].len;
#pragma omp parallel for num_threads(d->threads) schedule(static)
    for (int64_t r = 0; r < d->size; r++)
        if (d->sorted[r].len)
            memcpy(out_data + out_offsets[r], d->sorted[r].ptr, (size_t)d->sorted[r].len);
}

/* ---- the whole encoding --------------------------------------------------- */

int churn_str_encode(int32_t *out_ranks, churn_str_dict **out_dict,
                     const churn_str_chunk *chunks, int64_t n_chunks, int threads,
                     int part_bits, uint64_t hash_mask) {
    *out_dict = NULL;
    int64_t n_rows = 0;
    for (int64_t k = 0; k < n_chunks; k++) {
        int rc = check_chunk(&chunks[k]);
        if (rc != CHURN_OK) return rc;
        n_rows += chunks[k].n;
    }
    churn_str_dict *dict = (churn_str_dict *)calloc(1, sizeof(churn_str_dict));
    if (!dict) return CHURN_ERR_NOMEM;
    dict->threads = 1;
    if (n_rows == 0) {
        *out_dict = dict;
        return CHURN_OK;
    }
    if (part_bits < 0) {
        part_bits = churn_bit_length((uint64_t)n_rows >> TARGET_PART_ROWS_LOG2);
        if (part_bits > MAX_PART_BITS) part_bits = MAX_PART_BITS;
    }
    if (part_bits > 16) part_bits = 16; /* part_of holds uint16 */
    int64_t n_parts = ((int64_t)1) << part_bits;
    /* the rows are cut into n_blocks ranges, the same in every pass whatever
     * the number of threads OpenMP actually gives */
    int n_blocks = 1;
#ifdef _OPENMP
    n_blocks = threads > 0 ? threads : omp_get_max_threads();
#endif
    if (n_rows < (1 << 16)) n_blocks = 1; /* not worth waking threads */
    int n_threads = n_blocks;
    dict->threads = n_threads;

    int rc = CHURN_OK;
    size_t cells = (size_t)n_blocks * (size_t)n_parts;
    int64_t *row_cursor = (int64_t *)calloc(cells, sizeof(int64_t)); /* [block][part] */
    record_buffer *bufs = (record_buffer *)calloc(cells, sizeof(record_buffer));
    int64_t *part_rows = (int64_t *)calloc((size_t)n_parts + 1, sizeof(int64_t)); /* starts */
    uint16_t *part_of = (uint16_t *)big_alloc((size_t)n_rows * sizeof(uint16_t));
    int32_t *part_codes = (int32_t *)calloc((size_t)n_parts, sizeof(int32_t));
    int64_t *part_base = (int64_t *)malloc((size_t)(n_parts + 1) * sizeof(int64_t));
    dict->arenas = (uint8_t **)calloc((size_t)n_parts, sizeof(uint8_t *));
    dict->n_parts = n_parts;
    /* One workspace holds step 1's records, then whichever of the arrays of
     * steps 3 and 4 fit in it; each *_own holds an array that got its own
     * allocation instead. */
    workspace ws = {NULL, 0, 0};
    str_ref *refs = NULL;
    str_item *items = NULL, *scratch = NULL;
    int32_t *rank_of = NULL, *row_ranks = NULL;
    void *refs_own = NULL, *items_own = NULL, *scratch_own = NULL, *rank_of_own = NULL,
         *row_ranks_own = NULL;
    /* step 2's local codes go to out_ranks (partition-major) until step 4:
     * memory written in the end anyway, rather than n_rows fresh int32 */
    int32_t *local_codes = out_ranks;
    size_t scratch_end = 0; /* in the workspace: where the dictionary's part ends */
    if (!row_cursor || !bufs || !part_rows || !part_of || !part_codes || !part_base ||
        !dict->arenas) {
        rc = CHURN_ERR_NOMEM;
        goto done;
    }

    /* step 1's records: a slice of the workspace per (block, partition),
     * sized from a sample of the block's rows */
    for (int blk = 0; blk < n_blocks; blk++) {
        int64_t begin = n_rows * blk / n_blocks, end = n_rows * (blk + 1) / n_blocks;
        int64_t per_part = region_per_partition(chunks, n_chunks, begin, end, n_parts);
        for (int64_t p = 0; p < n_parts; p++)
            bufs[(size_t)blk * (size_t)n_parts + (size_t)p].region_capacity = per_part;
        ws.size += (size_t)(per_part * n_parts) + 63; /* + its take's alignment */
    }
    ws.base = (uint8_t *)big_alloc(ws.size);
    if (!ws.base) {
        rc = CHURN_ERR_NOMEM;
        goto done;
    }
    for (int blk = 0; blk < n_blocks; blk++) {
        record_buffer *block_bufs = bufs + (int64_t)blk * n_parts;
        int64_t per_part = block_bufs[0].region_capacity;
        uint8_t *region = (uint8_t *)workspace_take(&ws, (size_t)(per_part * n_parts));
        for (int64_t p = 0; p < n_parts; p++) block_bufs[p].region = region + p * per_part;
    }

    /* step 1: hash every row, copy its string into its partition */
#pragma omp parallel num_threads(n_threads)
    for (int blk = thread_id(); blk < n_blocks; blk += team_size()) {
        int64_t begin = n_rows * blk / n_blocks, end = n_rows * (blk + 1) / n_blocks;
        size_t first_cell = (size_t)blk * (size_t)n_parts;
        int mine = scatter_block(chunks, n_chunks, begin, end, part_bits, hash_mask, part_of,
                                 row_cursor + first_cell, bufs + first_cell);
        if (mine != CHURN_OK) {
#pragma omp atomic write
            rc = mine;
        }
    }
    if (rc != CHURN_OK) goto done;
    /* rows per (block, partition) -> where their codes go: partition-major,
     * so a partition's rows are contiguous and in row order */
    int64_t row_start = 0;
    for (int64_t p = 0; p < n_parts; p++) {
        part_rows[p] = row_start;
        for (int blk = 0; blk < n_blocks; blk++) {
            size_t cell = (size_t)blk * (size_t)n_parts + (size_t)p;
            int64_t rows = row_cursor[cell];
            row_cursor[cell] = row_start;
            row_start += rows;
        }
    }
    part_rows[n_parts] = row_start;

    /* step 2: local codes per partition; its distinct strings kept */
#pragma omp parallel num_threads(n_threads)
    {
        part_table b;
        memset(&b, 0, sizeof(b));
        int mine = CHURN_OK;
#pragma omp for schedule(dynamic)
        for (int64_t p = 0; p < n_parts; p++) {
            if (mine != CHURN_OK) continue;
            group_begin(&b, part_rows[p + 1] - part_rows[p]);
            int32_t *codes = local_codes + part_rows[p];
            for (int blk = 0; blk < n_blocks; blk++) {
                record_buffer *buf = &bufs[(size_t)blk * (size_t)n_parts + (size_t)p];
                codes += group_feed(&b, buf->region, buf->region + buf->region_used, codes,
                                    hash_mask);
                codes += group_feed(&b, buf->spill, buf->spill + buf->spill_used, codes,
                                    hash_mask);
                free(buf->spill); /* done with these records */
                buf->spill = NULL;
            }
            mine = b.status;
            if (mine != CHURN_OK) continue;
            part_codes[p] = b.n_codes;
            dict->arenas[p] = (uint8_t *)malloc(b.arena_size ? (size_t)b.arena_size : 1);
            if (!dict->arenas[p]) mine = CHURN_ERR_NOMEM;
            else if (b.arena_size) memcpy(dict->arenas[p], b.arena, (size_t)b.arena_size);
        }
        if (mine != CHURN_OK) {
#pragma omp atomic write
            rc = mine;
        }
        part_table_free(&b);
    }
    if (rc != CHURN_OK) goto done;
    ws.used = 0; /* every record is read: the workspace is free again */

    /* global codes: partition after partition */
    int64_t size = 0;
    for (int64_t p = 0; p < n_parts; p++) {
        part_base[p] = size;
        size += part_codes[p];
    }
    part_base[n_parts] = size;
    if (size > INT32_MAX) {
        rc = CHURN_ERR_TOO_MANY;
        goto done;
    }
    dict->size = size;
    /* scratch first: after the sort it holds the dictionary (dict->sorted);
     * then rank_of, read until the end; refs and items last: step 4's
     * partition-major ranks take their place */
    scratch = (str_item *)workspace_take_or_alloc(&ws, (size_t)size * sizeof(str_item),
                                                   &scratch_own);
    scratch_end = ws.used;
    rank_of = (int32_t *)workspace_take_or_alloc(&ws, (size_t)size * sizeof(int32_t),
                                                 &rank_of_own);
    size_t kept_past_step3 = ws.used;
    refs = (str_ref *)workspace_take_or_alloc(&ws, (size_t)size * sizeof(str_ref), &refs_own);
    items = (str_item *)workspace_take_or_alloc(&ws, (size_t)size * sizeof(str_item),
                                                &items_own);
    if (!refs || !items || !scratch || !rank_of) {
        rc = CHURN_ERR_NOMEM;
        goto done;
    }
    int64_t bytes = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : bytes)
    for (int64_t p = 0; p < n_parts; p++) {
        const uint8_t *next = dict->arenas[p];
        for (int64_t g = part_base[p]; g < part_base[p + 1]; g++) {
            next = get_record(next, &refs[g].len);
            refs[g].ptr = next;
            next += refs[g].len;
            bytes += refs[g].len;
            items[g].code = (int32_t)g;
        }
    }
    dict->bytes = bytes;

    /* step 3: ranks of the distinct strings */
    rc = sort_strings(refs, items, scratch, size, n_threads);
    if (rc != CHURN_OK) goto done;
    _Static_assert(sizeof(str_ref) == sizeof(str_item), "sorted reuses scratch entry for entry");
    dict->sorted = (str_ref *)scratch; /* the sort is done with it */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t r = 0; r < size; r++) {
        int32_t code = items[r].code;
        rank_of[code] = (int32_t)r;
        dict->sorted[r] = refs[code];
    }
    ws.used = kept_past_step3; /* refs and items are done */
    refs = NULL;
    items = NULL;

    /* step 4: every row's rank. Local codes become ranks partition by
     * partition (a small slice of rank_of each), then the partitions are
     * read back in row order: the scatter of step 1 replayed. */
    row_ranks = (int32_t *)workspace_take_or_alloc(&ws, (size_t)n_rows * sizeof(int32_t),
                                                   &row_ranks_own); /* partition-major */
    if (!row_ranks) {
        rc = CHURN_ERR_NOMEM;
        goto done;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic)
    for (int64_t p = 0; p < n_parts; p++) {
        const int32_t *ranks = rank_of + part_base[p];
        for (int64_t e = part_rows[p]; e < part_rows[p + 1]; e++)
            row_ranks[e] = ranks[local_codes[e]];
    }
#pragma omp parallel num_threads(n_threads)
    for (int blk = thread_id(); blk < n_blocks; blk += team_size()) {
        int64_t begin = n_rows * blk / n_blocks, end = n_rows * (blk + 1) / n_blocks;
        int64_t *cursor = row_cursor + (int64_t)blk * n_parts;
        for (int64_t row = begin; row < end; row++)
            out_ranks[row] = row_ranks[cursor[part_of[row]]++];
    }

done:
    if (bufs)
        for (size_t cell = 0; cell < cells; cell++) free(bufs[cell].spill);
    free(bufs);
    free(row_cursor);
    free(part_rows);
    free(part_of);
    free(part_codes);
    free(part_base);
    free(refs_own);
    free(items_own);
    free(rank_of_own);
    free(row_ranks_own);
    if (rc == CHURN_OK) {
        /* the dictionary keeps the allocation that holds sorted (in scratch) */
        dict->sorted_memory = scratch_own ? scratch_own : ws.base;
        if (scratch_own) free(ws.base);
        else workspace_give_back_tail(&ws, scratch_end);
        *out_dict = dict;
    } else {
        free(scratch_own);
        free(ws.base);
        churn_str_dict_free(dict);
    }
    return rc;
}

/* ---- short strings as integer keys ---------------------------------------- */

static inline uint64_t be64(const uint8_t *p) {
    uint64_t v = load64(p);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* The first n bytes (0..8, clamped) of a big-endian word, the rest zeroed. */
static inline uint64_t top_bytes(uint64_t word, int64_t n) {
    if (n >= 8) return word;
    if (n <= 0) return 0;
    return word & ~(~(uint64_t)0 >> (8 * n));
}

/* hi and lo of the window of the len (<= 16) bytes at s, which end before
 * end: two loads when 16 bytes can be read, else byte by byte. */
static inline void load_window(const uint8_t *s, int64_t len, const uint8_t *end, uint64_t *hi,
                               uint64_t *lo) {
    if (end - s >= 16) {
        *hi = top_bytes(be64(s), len);
        *lo = top_bytes(be64(s + 8), len - 8);
    } else {
        *hi = big_endian_word(s, len < 8 ? len : 8);
        *lo = len > 8 ? big_endian_word(s + 8, len - 8) : 0;
    }
}

/* The shape of a chunk (kind, buffers present), in constant time: the
 * offsets and views themselves are checked row by row by row_window, inside
 * the parallel passes, rather than by check_chunk's pass on one thread. */
static int check_chunk_shape(const churn_str_chunk *c) {
    if (c->n < 0) return CHURN_ERR_BAD_STRING;
    if (c->n == 0) return CHURN_OK;
    if (c->kind == CHURN_STR_VIEW) return c->views ? CHURN_OK : CHURN_ERR_BAD_STRING;
    if (c->kind != CHURN_STR_UTF8 && c->kind != CHURN_STR_LARGE_UTF8) return CHURN_ERR_BAD_STRING;
    if (c->kind == CHURN_STR_UTF8 ? !c->offsets32 : !c->offsets64) return CHURN_ERR_BAD_STRING;
    return c->data ? CHURN_OK : CHURN_ERR_BAD_STRING;
}

/* Row i of a chunk of a checked shape: its length (-1 when its offsets or
 * view point outside their buffers) and, when it is at most 16, its window
 * words. */
static inline int64_t row_window(const churn_str_chunk *c, int64_t i, uint64_t *hi, uint64_t *lo) {
    if (c->kind == CHURN_STR_VIEW) {
        const uint8_t *v = c->views + 16 * i;
        int64_t len = load_i32(v);
        if (len < 0) return -1;
        if (len <= 12) { /* inline: the view's 12 bytes from v + 4 */
            uint32_t w1;
            memcpy(&w1, v + 12, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            w1 = __builtin_bswap32(w1);
#endif
            *hi = top_bytes(be64(v + 4), len);
            *lo = top_bytes((uint64_t)w1 << 32, len - 8);
            return len;
        }
        int32_t buffer = load_i32(v + 8), offset = load_i32(v + 12);
        if (buffer < 0 || buffer >= c->n_buffers || offset < 0 || !c->buffers[buffer] ||
            (int64_t)offset + len > c->buffer_lens[buffer])
            return -1;
        if (len > 16) return len;
        const uint8_t *s = c->buffers[buffer] + offset;
        load_window(s, len, c->buffers[buffer] + c->buffer_lens[buffer], hi, lo);
        return len;
    }
    int64_t start, end;
    offsets_at(c, i, &start, &end);
    if (start < 0 || end < start || end > c->data_len) return -1;
    int64_t len = end - start;
    if (len <= 16) load_window(c->data + start, len, c->data + c->data_len, hi, lo);
    return len;
}

int churn_str_key_plan_of(churn_str_key_plan *out, const churn_str_chunk *chunks,
                          int64_t n_chunks, int threads) {
    memset(out, 0, sizeof(*out));
    int64_t n_rows = 0;
    for (int64_t k = 0; k < n_chunks; k++) {
        int rc = check_chunk_shape(&chunks[k]);
        if (rc != CHURN_OK) return rc;
        n_rows += chunks[k].n;
    }
    if (n_rows == 0) return CHURN_OK; /* nothing to key: does not fit */
    int n_threads = churn_threads_for(threads, n_rows);
    uint64_t any[3] = {0, 0, 0}, all[3] = {~(uint64_t)0, ~(uint64_t)0, ~(uint64_t)0};
    int too_long = 0, bad = 0;
#pragma omp parallel num_threads(n_threads)
    {
        int t = thread_id(), team = team_size();
        int64_t begin = n_rows * t / team, end = n_rows * (t + 1) / team;
        uint64_t my_any[3] = {0, 0, 0}, my_all[3] = {~(uint64_t)0, ~(uint64_t)0, ~(uint64_t)0};
        int mine_too_long = 0, mine_bad = 0;
        FOR_ROW_RANGE(chunks, n_chunks, begin, end, {
            for (int64_t i = first; i < last; i++) {
                uint64_t hi;
                uint64_t lo;
                int64_t len = row_window(c, i, &hi, &lo);
                if (len < 0 || len > 16) { /* bad, or too long: either ends the pass */
                    mine_bad = len < 0;
                    mine_too_long = 1;
                    break;
                }
                my_any[0] |= hi;
                my_all[0] &= hi;
                my_any[1] |= lo;
                my_all[1] &= lo;
                my_any[2] |= (uint64_t)len;
                my_all[2] &= (uint64_t)len;
            }
            if (mine_too_long) break;
        });
#pragma omp critical
        {
            too_long |= mine_too_long;
            bad |= mine_bad;
            for (int k = 0; k < 3; k++) {
                any[k] |= my_any[k];
                all[k] &= my_all[k];
            }
        }
    }
    if (bad) return CHURN_ERR_BAD_STRING;
    /* a string longer than 16 bytes: no plan; the encoder, which checks every
     * row (also those this pass did not reach), takes the column */
    if (too_long) return CHURN_OK;
    window varying = {any[0] ^ all[0], any[1] ^ all[1], (uint32_t)(any[2] ^ all[2])};
    packer_init(&out->packer, &varying);
    if (out->packer.bits > 63) return CHURN_OK;
    /* decoded views put strings of 13-16 bytes in one buffer of int32 offsets */
    if ((all[2] | varying.tail) > 12 && n_rows > INT32_MAX / 16) return CHURN_OK;
    out->fits = 1;
    out->hi_mask = varying.hi;
    out->lo_mask = varying.lo;
    out->len_mask = varying.tail;
    window fixed = {all[0] & ~varying.hi, all[1] & ~varying.lo, (uint32_t)(all[2] & ~varying.tail)};
    for (int j = 0; j < 17; j++) out->constant[j] = (uint8_t)window_byte(&fixed, j);
    for (int k = 0; k < out->packer.n_active; k++) {
        int j = out->packer.byte[k];
        uint32_t mask = window_byte(&varying, j);
        for (uint32_t v = 0; v < (1u << out->packer.width[k]); v++) {
            uint32_t byte = out->constant[j];
            int next = out->packer.width[k] - 1; /* v's bits, most significant first */
            for (int bit = 7; bit >= 0; bit--)
                if ((mask >> bit) & 1) byte |= ((v >> next--) & 1) << bit;
            out->unpack[k][v] = (uint8_t)byte;
        }
    }
    return CHURN_OK;
}

/* The window words of the bits the plan holds constant. */
static void constant_words(const churn_str_key_plan *plan, uint64_t *hi, uint64_t *lo,
                           uint64_t *len) {
    *hi = *lo = 0;
    for (int j = 0; j < 8; j++) {
        *hi = (*hi << 8) | plan->constant[j];
        *lo = (*lo << 8) | plan->constant[8 + j];
    }
    *len = plan->constant[16];
}

/* The keys of the rows [begin, end); 0 when a row is not one the plan
 * describes (longer than 16 bytes, or a bit the plan holds constant differs:
 * its key would stand for another string). */
#define KEYS_OF_ROWS(KEY)                                                        \
    uint64_t fixed_hi;                                                           \
    uint64_t fixed_lo;                                                           \
    uint64_t fixed_len;                                                          \
    constant_words(plan, &fixed_hi, &fixed_lo, &fixed_len);                      \
    FOR_ROW_RANGE(chunks, n_chunks, begin, end, {                                \
        for (int64_t i = first; i < last; i++) {                                 \
            uint64_t hi;                                                         \
            uint64_t lo;                                                         \
            int64_t len = row_window(c, i, &hi, &lo);                            \
            if (len < 0 || len > 16 || ((hi & ~plan->hi_mask) ^ fixed_hi) |                 \
                                ((lo & ~plan->lo_mask) ^ fixed_lo) |             \
                                (((uint64_t)len & ~plan->len_mask) ^ fixed_len)) { \
                ok = 0;                                                          \
                break;                                                           \
            }                                                                    \
            out_keys[base_ + i] = (int64_t)(KEY);                                \
        }                                                                        \
        if (!ok) break;                                                          \
    })

static inline uint64_t key_by_tables(const churn_str_key_plan *plan, uint64_t hi, uint64_t lo,
                                     int64_t len) {
    window w = {hi, lo, (uint32_t)len};
    return pack(&plan->packer, &w);
}

static int keys_by_tables(int64_t *out_keys, const churn_str_key_plan *plan,
                          const churn_str_chunk *chunks, int64_t n_chunks, int64_t begin,
                          int64_t end) {
    int ok = 1;
    KEYS_OF_ROWS(key_by_tables(plan, hi, lo, len));
    return ok;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CHURN_HAVE_PEXT 1
/* pext keeps the selected bits in order: the byte tables' key, at once */
__attribute__((target("bmi2"))) static inline uint64_t pext_key(
    uint64_t hi, uint64_t lo, int64_t len, uint64_t hi_mask, uint64_t lo_mask, uint64_t len_mask,
    int lo_bits, int len_bits) {
    return ((_pext_u64(hi, hi_mask) << lo_bits) << len_bits) |
           (_pext_u64(lo, lo_mask) << len_bits) | _pext_u64((uint64_t)len, len_mask);
}

__attribute__((target("bmi2"))) static int keys_by_pext(int64_t *out_keys,
                                                         const churn_str_key_plan *plan,
                                                         const churn_str_chunk *chunks,
                                                         int64_t n_chunks, int64_t begin,
                                                         int64_t end) {
    int ok = 1;
    const uint64_t hi_mask = plan->hi_mask, lo_mask = plan->lo_mask, len_mask = plan->len_mask;
    const int lo_bits = __builtin_popcountll(lo_mask), len_bits = __builtin_popcountll(len_mask);
    KEYS_OF_ROWS(pext_key(hi, lo, len, hi_mask, lo_mask, len_mask, lo_bits, len_bits));
    return ok;
}
#endif

int churn_str_keys(int64_t *out_keys, const churn_str_key_plan *plan,
                   const churn_str_chunk *chunks, int64_t n_chunks, int threads, int portable) {
    int64_t n_rows = 0;
    for (int64_t k = 0; k < n_chunks; k++) {
        int rc = check_chunk_shape(&chunks[k]);
        if (rc != CHURN_OK) return rc;
        n_rows += chunks[k].n;
    }
    if (n_rows && !plan->fits) return CHURN_ERR_BAD_STRING;
    int use_pext = 0;
#ifdef CHURN_HAVE_PEXT
    use_pext = !portable && __builtin_cpu_supports("bmi2");
#endif
    (void)portable;
    int n_threads = churn_threads_for(threads, n_rows), ok = 1;
#pragma omp parallel num_threads(n_threads)
    {
        int t = thread_id(), team = team_size();
        int64_t begin = n_rows * t / team, end = n_rows * (t + 1) / team;
        int mine;
#ifdef CHURN_HAVE_PEXT
        if (use_pext) mine = keys_by_pext(out_keys, plan, chunks, n_chunks, begin, end);
        else
#endif
            mine = keys_by_tables(out_keys, plan, chunks, n_chunks, begin, end);
        if (!mine) {
#pragma omp atomic write
            ok = 0;
        }
    }
    (void)use_pext;
    return ok ? CHURN_OK : CHURN_ERR_BAD_STRING;
}

/* The window bytes of a key (the string, then its length at w[16]). */
static inline int64_t key_window(const churn_str_key_plan *plan, uint64_t key, uint8_t w[17]) {
    memcpy(w, plan->constant, 17);
    for (int k = plan->packer.n_active - 1; k >= 0; k--) {
        int width = plan->packer.width[k];
        w[plan->packer.byte[k]] = plan->unpack[k][key & ((1u << width) - 1)];
        key >>= width;
    }
    return w[16] <= 16 ? w[16] : 16; /* more only for a key no string gave */
}

/* Whether a plan's strings can be longer than 12 bytes (out of line). */
static inline int may_be_long(const churn_str_key_plan *plan) {
    if (!plan->len_mask) return plan->constant[16] > 12;
    return (plan->constant[16] | plan->len_mask) > 12;
}

int64_t churn_str_keys_long_bytes(const int64_t *keys, int64_t n, const churn_str_key_plan *plan,
                                  int threads) {
    if (!may_be_long(plan)) return 0;
    int64_t bytes = 0;
#pragma omp parallel for num_threads(churn_threads_for(threads, n)) schedule(static) \
    reduction(+ : bytes)
    for (int64_t i = 0; i < n; i++) {
        uint8_t w[17];
        int64_t len = key_window(plan, (uint64_t)keys[i], w);
        bytes += len > 12 ? len : 0;
    }
    return bytes;
}

enum { VIEW_BLOCK = 1 << 16 };

void churn_str_keys_write_views(uint8_t *out_views, uint8_t *out_data, const int64_t *keys,
                                int64_t n, const churn_str_key_plan *plan, int threads) {
    int64_t n_blocks = (n + VIEW_BLOCK - 1) / VIEW_BLOCK;
    int64_t *block_start = NULL; /* where each block's long strings go in out_data */
    if (may_be_long(plan) && n_blocks > 1) {
        block_start = (int64_t *)calloc((size_t)n_blocks + 1, sizeof(int64_t));
        if (!block_start) n_blocks = 1; /* no room for the starts: one block, one thread */
    }
    int64_t block_rows = n_blocks > 1 ? VIEW_BLOCK : n;
    int n_threads = n_blocks > 1 ? churn_threads_for(threads, n) : 1;
    if (block_start) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t b = 0; b < n_blocks; b++) {
            int64_t last = (b + 1) * block_rows < n ? (b + 1) * block_rows : n, bytes = 0;
            for (int64_t i = b * block_rows; i < last; i++) {
                uint8_t w[17];
                int64_t len = key_window(plan, (uint64_t)keys[i], w);
                bytes += len > 12 ? len : 0;
            }
            block_start[b + 1] = bytes;
        }
        for (int64_t b = 0; b < n_blocks; b++) block_start[b + 1] += block_start[b];
    }
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t last = (b + 1) * block_rows < n ? (b + 1) * block_rows : n;
        int64_t at = block_start ? block_start[b] : 0;
        for (int64_t i = b * block_rows; i < last; i++) {
            uint8_t w[17];
            int32_t len = (int32_t)key_window(plan, (uint64_t)keys[i], w);
            uint8_t *v = out_views + 16 * i;
            memset(v, 0, 16);
            memcpy(v, &len, 4);
            if (len <= 12) {
                memcpy(v + 4, w, (size_t)len);
            } else { /* prefix, buffer 0, offset: the plan keeps offsets in int32 */
                int32_t buffer = 0, offset = (int32_t)at;
                memcpy(v + 4, w, 4);
                memcpy(v + 8, &buffer, 4);
                memcpy(v + 12, &offset, 4);
                memcpy(out_data + at, w, (size_t)len);
                at += len;
            }
        }
    }
    free(block_start);
}
