/* eng_par_none.c - eng_par.h without MPI: one process; every exchange is a copy (the build
 * without Open MPI, see the Makefile's MPI line). */
#include "eng_par.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"

int eng_par_built(void) { return 0; }
int eng_par_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return ENG_OK;
}
void eng_par_finalize(void) {}
void eng_par_abort(int code) { (void)code; }
int eng_par_rank(void) { return 0; }
int eng_par_size(void) { return 1; }
int eng_par_local_rank(void) { return 0; }
int eng_par_broken(void) { return 0; }
void eng_par_describe(char *buf, size_t n) { snprintf(buf, n, "one process (no MPI in this build)"); }
void eng_par_set_timeout(double seconds) { (void)seconds; }
int eng_par_barrier(void) { return ENG_OK; }
int eng_par_allreduce_i64(int64_t *v, int n, eng_par_op op) {
    (void)v, (void)n, (void)op;
    return ENG_OK;
}
int eng_par_allreduce_f64(double *v, int n, eng_par_op op) {
    (void)v, (void)n;
    return op == ENG_PAR_SUM ? eng_err_set(ENG_EINVAL, "eng_par: no floating-point SUM (use eng_xsum)") : ENG_OK;
}
int eng_par_allreduce_xsum(eng_xsum *x, size_t n) {
    for (size_t i = 0; i < n; i++) eng_xsum_normalize(&x[i]);
    return ENG_OK;
}
int eng_par_bcast(void *buf, size_t n, int root) {
    (void)buf, (void)n;
    return root == 0 ? ENG_OK : eng_err_set(ENG_EINVAL, "eng_par: root %d of 1 process", root);
}
static int copy_out(const void *buf, size_t n, char **out, size_t *counts) {
    *out = eng_malloc(n ? n : 1);
    if (!*out) return ENG_ENOMEM;
    if (n) memcpy(*out, buf, n);
    counts[0] = n;
    return ENG_OK;
}
int eng_par_gatherv(const void *buf, size_t n, int root, char **out, size_t *counts) {
    if (root != 0) return eng_err_set(ENG_EINVAL, "eng_par: root %d of 1 process", root);
    return copy_out(buf, n, out, counts);
}
int eng_par_allgatherv(const void *buf, size_t n, char **out, size_t *counts) { return copy_out(buf, n, out, counts); }
int eng_par_agree(int status) { return status; }
