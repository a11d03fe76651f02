/* eng_hash.h - FNV-1a 64-bit hashing and a qsort comparator for doubles, shared by every layer.
 *
 * FNV-1a is not cryptographic: rlprice uses it for run ids, advisory-lock keys, per-product
 * random streams, MPI shard assignment, checkpoint manifests and hash tables.  Two offset bases
 * exist because both are already baked into stored values:
 *   ENG_FNV1A_BASIS      the standard FNV-1a 64 offset basis (the feature layout's hash);
 *   ENG_FNV1A_BASIS_RLP  one digit short of it, what run ids, lock keys, product streams and
 *                        shard hashes have always used.  Changing it would change every run id
 *                        and the random stream of every seeded run, so it stays.
 * No allocation; no failure. */
#ifndef ENG_HASH_H
#define ENG_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ENG_FNV1A_BASIS 14695981039346656037ULL
#define ENG_FNV1A_BASIS_RLP 1469598103934665603ULL

/* h continued over n bytes at p (p may be NULL when n is 0). */
uint64_t eng_fnv1a(uint64_t h, const void *p, size_t n);

/* h continued over the bytes of the string s without its terminator (NULL: the empty string). */
uint64_t eng_fnv1a_str(uint64_t h, const char *s);

/* qsort comparator: ascending doubles (NaN compares equal to everything; callers sort finite
 * values). */
int eng_cmp_double(const void *a, const void *b);

#endif
