/* String customer ids -> dense ranks in ascending UTF-8 byte order.
 *
 * Reads Arrow string arrays in place (utf8, large_utf8, string_view; slices
 * honoured through the pointers given) and writes each row's rank among the
 * distinct strings, never with a hash table bigger than the cache:
 *
 *   1. hash every string (rows read in order, a block of rows per thread)
 *      and copy it into its partition, chosen by the top bits of the hash
 *      (staged, so a thousand partitions stay cheap);
 *   2. per partition, a small open-addressing table gives each string a
 *      local code and keeps one copy of each distinct string (equality by
 *      bytes, never by hash alone: collisions only cost time);
 *   3. sort the distinct strings by bytes: their first 16 bytes packed to
 *      the bits that vary make an integer key (radix sort), deeper 8-byte
 *      chunks only for ties;
 *   4. write each row's rank, reading the partitions back in row order.
 *
 * Step 1's records take one workspace allocation, which then holds (when
 * they fit) the arrays of steps 3 and 4 and the dictionary: fresh pages
 * cost far more to touch than pages the call has already used.
 *
 * Then churn_str_dict_write gives the distinct strings in rank order.
 */
#ifndef CHURN_STRINGS_H
#define CHURN_STRINGS_H

#include <stdint.h>

enum { CHURN_STR_UTF8 = 0, CHURN_STR_LARGE_UTF8 = 1, CHURN_STR_VIEW = 2 };

/* One Arrow string array without nulls. The pointers already include the
 * array's offset: string i is at offsets32/offsets64[i]..[i + 1] in data
 * (data_len bytes), or described by the 16-byte view views + 16 * i whose
 * out-of-line bytes live in buffers[k] (buffer_lens[k] bytes). */
typedef struct {
    int32_t kind;
    int64_t n;
    const int32_t *offsets32;
    const int64_t *offsets64;
    const uint8_t *data;
    int64_t data_len;
    const uint8_t *views;
    const uint8_t *const *buffers;
    const int64_t *buffer_lens;
    int64_t n_buffers;
} churn_str_chunk;

/* The distinct strings of an encoding (opaque). */
typedef struct churn_str_dict churn_str_dict;

/* Writes the rank of every row (chunks one after the other) to out_ranks and
 * the distinct strings to *out_dict (free with churn_str_dict_free).
 * part_bits < 0 picks the partition count from the row count; hash_mask is
 * ANDed into every hash (all ones in use; tests pass small masks to force
 * collisions). Returns CHURN_OK, CHURN_ERR_NOMEM, CHURN_ERR_TOO_MANY (more
 * than 2^31 - 1 distinct strings, or chunks too long) or CHURN_ERR_BAD_STRING
 * (offsets or views outside their buffers). On failure out_ranks may hold
 * intermediate values (it serves as scratch space). */
int churn_str_encode(int32_t *out_ranks, churn_str_dict **out_dict,
                     const churn_str_chunk *chunks, int64_t n_chunks, int threads,
                     int part_bits, uint64_t hash_mask);

int64_t churn_str_dict_size(const churn_str_dict *dict);  /* distinct strings */
int64_t churn_str_dict_bytes(const churn_str_dict *dict); /* their total bytes */

/* The distinct strings in ascending byte order, as large_utf8 buffers:
 * out_offsets (size + 1 entries) and out_data (bytes). */
void churn_str_dict_write(const churn_str_dict *dict, int64_t *out_offsets, uint8_t *out_data);

void churn_str_dict_free(churn_str_dict *dict);

/* ---- short strings as integer keys ----------------------------------------
 *
 * When every string has at most 16 bytes, its bytes zero-padded to 16 and
 * its length order the strings as their bytes do; dropping the bits that are
 * the same in every string keeps that order. When the bits left fit 63, each
 * string becomes an int64 key that orders and compares like the string
 * (ids like "C0004812305" take 40 bits): the kernel then groups string ids
 * as it groups integer ids, with no hash table of strings and no sort of
 * them, and the output decodes the keys of the customers it writes. */

/* Which window bits vary and where they go in a key: the window is the
 * string's 16 bytes (zero padded) and its length as a 17th byte. */
typedef struct {
    int n_active;     /* window bytes with a varying bit */
    int bits;         /* key bits in all */
    uint8_t byte[17]; /* the active bytes' window positions, in order */
    uint8_t width[17];
    uint8_t table[17][256]; /* a window byte -> its varying bits */
} churn_str_packer;

typedef struct {
    int fits; /* 1: every string has <= 16 bytes and the key <= 63 bits */
    churn_str_packer packer;
    uint64_t hi_mask, lo_mask, len_mask; /* the varying bits of the window's words */
    uint8_t constant[17];                /* the bits no string changes, per window byte */
    uint8_t unpack[17][256];             /* varying bits -> window byte (constants set) */
} churn_str_key_plan;

/* The plan of the strings of all chunks; out->fits says whether they fit.
 * Returns CHURN_OK or CHURN_ERR_BAD_STRING. */
int churn_str_key_plan_of(churn_str_key_plan *out, const churn_str_chunk *chunks,
                          int64_t n_chunks, int threads);

/* Every row's key (chunks one after the other), for a plan that fits these
 * strings. portable: byte tables instead of the BMI2 pext instruction (the
 * same keys; tests compare the two). Returns CHURN_OK or CHURN_ERR_BAD_STRING
 * (a string the plan does not describe: longer than 16 bytes, or differing in
 * a bit the plan holds constant). */
int churn_str_keys(int64_t *out_keys, const churn_str_key_plan *plan,
                   const churn_str_chunk *chunks, int64_t n_chunks, int threads, int portable);

/* The strings of n keys of a plan as an Arrow string_view array: 16 bytes a
 * key in out_views; strings of 13 to 16 bytes go to out_data (buffer 0),
 * which churn_str_keys_long_bytes sizes. Keys no string gave decode to
 * strings of at most 16 bytes, never out of bounds. */
int64_t churn_str_keys_long_bytes(const int64_t *keys, int64_t n, const churn_str_key_plan *plan,
                                  int threads);
void churn_str_keys_write_views(uint8_t *out_views, uint8_t *out_data, const int64_t *keys,
                                int64_t n, const churn_str_key_plan *plan, int threads);

/* The hash used to partition and to probe (exposed for tests). */
uint64_t churn_str_hash(const uint8_t *bytes, int64_t len);

#endif
