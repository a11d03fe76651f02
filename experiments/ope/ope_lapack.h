/* ope_lapack.h - the one LAPACK routine the estimators use, declared once.
 * LAPACK's Cholesky solve, exported by OpenBLAS (no LAPACKE header on this system).  The
 * trailing length is gfortran's hidden length of the character argument. */
#ifndef OPE_LAPACK_H
#define OPE_LAPACK_H

#include <stddef.h>

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info, size_t uplo_len);

#endif
