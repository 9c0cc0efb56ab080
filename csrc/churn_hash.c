#include "churn_hash.h"
#include "churn_status.h"

#include <stdlib.h>
#include <string.h>

/* Fibonacci hashing: multiply by 2^64/phi and keep the top bits; spreads
 * sequential and sparse ids alike. */
static inline uint64_t slot_of(int64_t key, int shift) {
    return ((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> shift;
}

static int log2_ceil(int64_t n) {
    int bits = 0;
    while (((int64_t)1 << bits) < n) bits++;
    return bits;
}

static int allocate(churn_hash *t, int64_t capacity) {
    t->keys = (int64_t *)malloc((size_t)capacity * sizeof(int64_t));
    t->codes = (int32_t *)malloc((size_t)capacity * sizeof(int32_t));
    if (!t->keys || !t->codes) {
        free(t->keys);
        free(t->codes);
        t->keys = NULL;
        t->codes = NULL;
        return CHURN_ERR_NOMEM;
    }
    memset(t->codes, 0xff, (size_t)capacity * sizeof(int32_t));
    t->capacity = capacity;
    return CHURN_OK;
}

int churn_hash_init(churn_hash *t, int64_t expected) {
    memset(t, 0, sizeof(*t));
    if (expected < 16) expected = 16;
    int64_t capacity = (int64_t)1 << log2_ceil(expected * 2);
    if (allocate(t, capacity) != CHURN_OK) return CHURN_ERR_NOMEM;
    t->uniques_capacity = expected;
    t->uniques = (int64_t *)malloc((size_t)expected * sizeof(int64_t));
    if (!t->uniques) {
        churn_hash_free(t);
        return CHURN_ERR_NOMEM;
    }
    return CHURN_OK;
}

void churn_hash_free(churn_hash *t) {
    free(t->keys);
    free(t->codes);
    free(t->uniques);
    memset(t, 0, sizeof(*t));
}

static int grow(churn_hash *t) {
    int64_t *old_keys = t->keys;
    int32_t *old_codes = t->codes;
    int64_t old_capacity = t->capacity;
    if (allocate(t, old_capacity * 2) != CHURN_OK) {
        t->keys = old_keys;
        t->codes = old_codes;
        return CHURN_ERR_NOMEM;
    }
    int shift = 64 - log2_ceil(t->capacity);
    uint64_t mask = (uint64_t)t->capacity - 1;
    for (int64_t i = 0; i < old_capacity; i++) {
        if (old_codes[i] < 0) continue;
        uint64_t s = slot_of(old_keys[i], shift);
        while (t->codes[s] >= 0) s = (s + 1) & mask;
        t->keys[s] = old_keys[i];
        t->codes[s] = old_codes[i];
    }
    free(old_keys);
    free(old_codes);
    return CHURN_OK;
}

int churn_hash_encode(churn_hash *t, int32_t *out_codes, const int64_t *ids, int64_t n) {
    int shift = 64 - log2_ceil(t->capacity);
    uint64_t mask = (uint64_t)t->capacity - 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t key = ids[i];
        uint64_t s = slot_of(key, shift);
        int32_t code;
        for (;;) {
            code = t->codes[s];
            if (code < 0 || t->keys[s] == key) break;
            s = (s + 1) & mask;
        }
        if (code < 0) {
            if (t->size >= INT32_MAX) return CHURN_ERR_TOO_MANY;
            if (t->size == t->uniques_capacity) {
                int64_t cap = t->uniques_capacity * 2;
                int64_t *grown = (int64_t *)realloc(t->uniques, (size_t)cap * sizeof(int64_t));
                if (!grown) return CHURN_ERR_NOMEM;
                t->uniques = grown;
                t->uniques_capacity = cap;
            }
            code = (int32_t)t->size;
            t->uniques[code] = key;
            t->size++;
            t->keys[s] = key;
            t->codes[s] = code;
            if (t->size * 2 > t->capacity) {
                if (grow(t) != CHURN_OK) return CHURN_ERR_NOMEM;
                shift = 64 - log2_ceil(t->capacity);
                mask = (uint64_t)t->capacity - 1;
            }
        }
        out_codes[i] = code;
    }
    return CHURN_OK;
}
