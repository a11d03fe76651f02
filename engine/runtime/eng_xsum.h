/* eng_xsum.h - exact sums of doubles (a "superaccumulator"), so that a sum over products does
 * not depend on the order the products are added in, nor on how they are split across the
 * ranks of an MPI run (docs/mpi.md, "Exact sums").
 *
 * An accumulator holds the exact sum of every finite double added to it as ENG_XSUM_LIMBS
 * signed 64-bit limbs of 32 bits each (limb i weighs 2^(32 i - 1074)), plus counts of NaN,
 * +Inf and -Inf.  Adding is exact; eng_xsum_round turns the exact value into a double by a
 * fixed rule, so equal exact sums always give bit-identical doubles.  eng_xsum_allreduce
 * (eng_par.h) adds the accumulators of every rank exactly.  No allocation: the struct is
 * the caller's (about 560 bytes). */
#ifndef ENG_XSUM_H
#define ENG_XSUM_H

#include <stddef.h>
#include <stdint.h>

#define ENG_XSUM_LIMBS 67

typedef struct eng_xsum {
    int64_t limb[ENG_XSUM_LIMBS];
    int64_t n_nan, n_pinf, n_ninf; /* non-finite terms */
    int64_t pending;               /* adds since the last carry normalisation */
} eng_xsum;

/* Zero n accumulators. */
void eng_xsum_zero(eng_xsum *x, size_t n);
/* Add one double exactly. */
void eng_xsum_add(eng_xsum *x, double v);
/* Add every accumulator of src into dst (both n long), exactly. */
void eng_xsum_merge(eng_xsum *dst, const eng_xsum *src, size_t n);
/* Carry-normalise: limbs 0..LIMBS-2 in [0, 2^32), the top limb signed.  The normalised form
 * of a value is unique (eng_xsum_round depends on the value only). */
void eng_xsum_normalize(eng_xsum *x);
/* The sum as a double: NaN when a NaN (or both infinities) was added, +-Inf when one
 * infinity was, else the exact sum rounded (within an ulp or two; always the same double
 * for the same exact sum). */
double eng_xsum_round(const eng_xsum *x);

#endif
