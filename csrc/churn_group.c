#define _DEFAULT_SOURCE /* madvise */
#include "churn_group.h"
#include "churn_status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void churn_group_buffers_init(churn_group_buffers *b) { memset(b, 0, sizeof(*b)); }

void churn_group_buffers_free(churn_group_buffers *b) {
    free(b->slot_keys);
    free(b->slot_codes);
    free(b->row_codes);
    free(b->counts);
    free(b->uniques);
    free(b->scratch);
    memset(b, 0, sizeof(*b));
}

static int reserve(churn_group_buffers *b, int64_t n) {
    if (n <= b->capacity) return CHURN_OK;
    int64_t capacity = b->capacity ? b->capacity : 1024;
    while (capacity < n) capacity *= 2;
    int64_t slots = 2 * capacity;
    churn_group_buffers_free(b);
    b->slot_keys = (int64_t *)malloc((size_t)slots * sizeof(int64_t));
    b->slot_codes = (int32_t *)malloc((size_t)slots * sizeof(int32_t));
    b->row_codes = (int32_t *)malloc((size_t)capacity * sizeof(int32_t));
    b->counts = (int64_t *)malloc((size_t)capacity * sizeof(int64_t));
    b->uniques = (churn_row *)malloc((size_t)capacity * sizeof(churn_row));
    b->scratch = (churn_row *)malloc((size_t)capacity * sizeof(churn_row));
    if (!b->slot_keys || !b->slot_codes || !b->row_codes || !b->counts ||
        !b->uniques || !b->scratch) {
        churn_group_buffers_free(b);
        return CHURN_ERR_NOMEM;
    }
    b->capacity = capacity;
    b->slots = slots;
    return CHURN_OK;
}

static inline uint64_t slot_of(int64_t key, uint64_t mask) {
    /* multiplicative hashing; the high bits of the product are the best mixed */
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
    return (h ^ (h >> 29)) & mask;
}

/* Local codes of n keys (the 64 bits at the start of each row_bytes-long
 * row, shifted right by shift): row_codes, counts, uniques (key, code in
 * .day). Then the distinct keys are ordered and counts become each code's
 * first position. Returns the number of codes. */
static int32_t code_and_place(churn_group_buffers *b, const void *rows, size_t row_bytes,
                              int shift, int64_t n) {
    /* a table of at least 2n slots, but no bigger than needed for this n */
    uint64_t slots = 16;
    while ((int64_t)slots < 2 * n) slots *= 2;
    uint64_t mask = slots - 1;
    memset(b->slot_codes, 0xff, slots * sizeof(int32_t));

    int32_t n_codes = 0;
    const char *row = (const char *)rows;
    for (int64_t i = 0; i < n; i++, row += row_bytes) {
        uint64_t word;
        memcpy(&word, row, 8); /* 12-byte rows leave words unaligned */
        int64_t key = (int64_t)(word >> shift);
        uint64_t s = slot_of(key, mask);
        int32_t code;
        for (;;) {
            code = b->slot_codes[s];
            if (code < 0 || b->slot_keys[s] == key) break;
            s = (s + 1) & mask;
        }
        if (code < 0) {
            code = n_codes++;
            b->slot_codes[s] = code;
            b->slot_keys[s] = key;
            b->uniques[code].key = key;
            b->uniques[code].day = code;
            b->counts[code] = 0;
        }
        b->counts[code]++;
        b->row_codes[i] = code;
    }
    if (n_codes == 1) return 1; /* one customer: nothing to move */

    /* order the distinct keys only, then turn counts into start positions */
    churn_sort_by_key(b->uniques, b->scratch, n_codes);
    int64_t start = 0;
    for (int32_t r = 0; r < n_codes; r++) {
        int32_t code = b->uniques[r].day;
        int64_t c = b->counts[code];
        b->counts[code] = start;
        start += c;
    }
    return n_codes;
}

int churn_group_partition(churn_row *rows, int64_t n, churn_group_buffers *b) {
    if (n < 2) return CHURN_OK;
    if (n > INT32_MAX) return CHURN_ERR_TOO_MANY; /* local codes are int32 */
    if (reserve(b, n) != CHURN_OK) return CHURN_ERR_NOMEM;
    if (code_and_place(b, rows, sizeof(churn_row), 0, n) == 1) return CHURN_OK;
    for (int64_t i = 0; i < n; i++) b->scratch[b->counts[b->row_codes[i]]++] = rows[i];
    memcpy(rows, b->scratch, (size_t)n * sizeof(churn_row));
    return CHURN_OK;
}

/* churn_group_packed_partition for records of type T (a uint64_t word
 * first), each customer's rows then sorted by SORT. */
#define GROUP_PACKED(T, SORT)                                                               \
    do {                                                                                    \
        if (n < 2) return CHURN_OK;                                                         \
        if (n > INT32_MAX) return CHURN_ERR_TOO_MANY;                                       \
        /* dense keys (string ranks, consecutive ids): few enough possible key             \
         * offsets to count them directly, no hashing and no sort of the keys */           \
        int direct = key_bits <= 24 && ((int64_t)1 << key_bits) <= 2 * n;                   \
        int64_t n_keys = direct ? (int64_t)1 << key_bits : 0;                               \
        if (reserve(b, n > n_keys ? n : n_keys) != CHURN_OK) return CHURN_ERR_NOMEM;        \
        /* scratch holds n churn_rows, room for n packed rows */                            \
        T *scratch = (T *)b->scratch;                                                       \
        if (direct) {                                                                       \
            int64_t *next = b->counts;                                                      \
            memset(next, 0, (size_t)n_keys * sizeof(int64_t));                              \
            for (int64_t i = 0; i < n; i++) next[rows[i].word >> key_shift]++;              \
            int64_t start = 0;                                                              \
            for (int64_t k = 0; k < n_keys; k++) {                                          \
                int64_t c = next[k];                                                        \
                next[k] = start;                                                            \
                start += c;                                                                 \
            }                                                                               \
            for (int64_t i = 0; i < n; i++) scratch[next[rows[i].word >> key_shift]++] = rows[i]; \
            memcpy(rows, scratch, (size_t)n * sizeof(T));                                   \
        } else if (code_and_place(b, rows, sizeof(T), key_shift, n) > 1) {                  \
            for (int64_t i = 0; i < n; i++) scratch[b->counts[b->row_codes[i]]++] = rows[i]; \
            memcpy(rows, scratch, (size_t)n * sizeof(T));                                   \
        }                                                                                   \
        /* then each customer's rows by (cat, day, amount): time-ordered logs give  \
         * them in order already, which is checked on the way */                            \
        int64_t start = 0;                                                                  \
        while (start < n) {                                                                 \
            uint64_t key = rows[start].word >> key_shift;                                   \
            int64_t end = start + 1;                                                        \
            int in_order = 1;                                                               \
            while (end < n && rows[end].word >> key_shift == key) {                         \
                in_order &= !CHURN_WORD_AMOUNT_LESS(&rows[end], &rows[end - 1]);            \
                end++;                                                                      \
            }                                                                               \
            if (!in_order) SORT(rows + start, end - start);                                 \
            start = end;                                                                    \
        }                                                                                   \
        return CHURN_OK;                                                                    \
    } while (0)

int churn_group_packed_partition(churn_packed_row *rows, int64_t n, int key_shift,
                                 int key_bits, churn_group_buffers *b) {
    GROUP_PACKED(churn_packed_row, churn_sort_packed_rows);
}

int churn_group_tight_partition(churn_tight_row *rows, int64_t n, int key_shift,
                                int key_bits, churn_group_buffers *b) {
    GROUP_PACKED(churn_tight_row, churn_sort_tight_rows);
}

enum { RELEASE_BLOCK = 2 << 20 };

int churn_release_init(churn_release_state *s, void *base, int64_t row_bytes,
                       const int64_t *part_offsets, int64_t n_parts) {
    memset(s, 0, sizeof(*s));
    s->done = (uint8_t *)calloc((size_t)(n_parts > 0 ? n_parts : 1), 1);
    if (!s->done) return CHURN_ERR_NOMEM;
    s->part_offsets = part_offsets;
    s->n_parts = n_parts;
    s->row_bytes = row_bytes;
    s->base = (char *)base;
    s->released = ((uintptr_t)base + RELEASE_BLOCK - 1) & ~(uintptr_t)(RELEASE_BLOCK - 1);
    return CHURN_OK;
}

void churn_release_done(churn_release_state *s, int64_t p) {
    __atomic_store_n(&s->done[p], 1, __ATOMIC_RELEASE);
    /* one thread at a time advances the mark; a busy lock means the other
     * thread is doing it, and it will see this partition too or a later one
     * will (what is left at the end goes with the buffer) */
    if (__atomic_exchange_n(&s->lock, 1, __ATOMIC_ACQUIRE)) return;
    int64_t mark = s->mark;
    while (mark < s->n_parts && __atomic_load_n(&s->done[mark], __ATOMIC_ACQUIRE)) mark++;
    s->mark = mark;
    uintptr_t end = (uintptr_t)(s->base + s->part_offsets[mark] * s->row_bytes);
    end &= ~(uintptr_t)(RELEASE_BLOCK - 1);
    if (end > s->released) {
        madvise((void *)s->released, end - s->released, MADV_DONTNEED); /* a hint */
        s->released = end;
    }
    __atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
}

void churn_release_free(churn_release_state *s) {
    free(s->done);
    s->done = NULL;
}
