/* Open-addressing hash table: int64 customer id -> dense code (first-seen order).
 *
 * Linear probing over a power-of-two table, grown at 50% load, so a lookup
 * touches one or two cache lines. Codes are int32: a run has < 2^31 customers.
 */
#ifndef CHURN_HASH_H
#define CHURN_HASH_H

#include <stdint.h>

typedef struct {
    int64_t *keys;     /* slot -> id */
    int32_t *codes;    /* slot -> code, -1 when empty */
    int64_t *uniques;  /* code -> id, in first-seen order */
    int64_t capacity;  /* power of two */
    int64_t size;      /* number of codes handed out */
    int64_t uniques_capacity;
} churn_hash;

/* 0 on success, CHURN_ERR_NOMEM when memory runs out. */
int churn_hash_init(churn_hash *table, int64_t expected);
void churn_hash_free(churn_hash *table);

/* Writes the code of every id into out_codes; new ids get the next code. */
int churn_hash_encode(churn_hash *table, int32_t *out_codes, const int64_t *ids, int64_t n);

#endif
