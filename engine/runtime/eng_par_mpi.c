/* eng_par_mpi.c - eng_par.h on Open MPI (built when the Makefile finds it; eng_par_none.c
 * otherwise).  Every collective is started non-blocking and polled with MPI_Test until it
 * completes or the timeout passes, so a dead or hung rank cannot block the others forever. */
#include "eng_par.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "eng_util.h"

static int par_on, par_rank, par_size = 1, par_local, par_broken;
static double par_timeout = 600;

int eng_par_built(void) { return 1; }

/* 1 when an MPI launcher started this process (its environment says so). */
static int launched(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int eng_par_init(int *argc, char ***argv) {
    if (par_on || !launched()) return ENG_OK;
    int prov = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &prov) != MPI_SUCCESS)
        return eng_err_set(ENG_EIO, "MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &par_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &par_size);
    MPI_Comm node;
    par_local = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, par_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &par_local);
        MPI_Comm_free(&node);
    }
    par_on = 1;
    return ENG_OK;
}

void eng_par_finalize(void) {
    if (par_on && !par_broken) MPI_Finalize();
    par_on = 0;
}

void eng_par_abort(int code) {
    if (!par_on) return;
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

int eng_par_rank(void) { return par_rank; }
int eng_par_size(void) { return par_size; }
int eng_par_local_rank(void) { return par_local; }
int eng_par_broken(void) { return par_broken; }
void eng_par_set_timeout(double seconds) { par_timeout = seconds > 0 ? seconds : 600; }

void eng_par_describe(char *buf, size_t n) {
    if (!par_on) {
        snprintf(buf, n, "one process (MPI built in, not started by mpirun)");
        return;
    }
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "", host[256] = "";
    int len = 0;
    MPI_Get_library_version(lib, &len);
    char *nl = strpbrk(lib, ",\n");
    if (nl) *nl = '\0';
    gethostname(host, sizeof host - 1);
    snprintf(buf, n, "%s, rank %d of %d (local %d) on %s", lib, par_rank, par_size, par_local, host);
}

/* Wait for req until done or the timeout.  0, or ENG_EIO (the layer is then broken). */
static int wait_req(MPI_Request *req, const char *what) {
    if (par_broken) return eng_err_set(ENG_EIO, "MPI: %s after an earlier failure", what);
    struct timespec t0, now, nap = {0, 100000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long spins = 0;; spins++) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            par_broken = 1;
            return eng_err_set(ENG_EIO, "MPI: %s failed (a rank died?)", what);
        }
        if (done) return ENG_OK;
        if (spins > 1000) nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec) > par_timeout) {
            par_broken = 1;
            return eng_err_set(ENG_EIO, "MPI: no answer from the other ranks in %.0f s during %s (a rank died or hangs)",
                               par_timeout, what);
        }
    }
}

static int started(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return ENG_OK;
    par_broken = 1;
    return eng_err_set(ENG_EIO, "MPI: %s could not start (error %d)", what, rc);
}

int eng_par_barrier(void) {
    if (par_size == 1) return ENG_OK;
    MPI_Request r;
    int st = started(MPI_Ibarrier(MPI_COMM_WORLD, &r), "barrier");
    return st ? st : wait_req(&r, "barrier");
}

static MPI_Op mpi_op(eng_par_op op) { return op == ENG_PAR_SUM ? MPI_SUM : op == ENG_PAR_MIN ? MPI_MIN : MPI_MAX; }

int eng_par_allreduce_i64(int64_t *v, int n, eng_par_op op) {
    if (par_size == 1 || n == 0) return ENG_OK;
    MPI_Request r;
    int st = started(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, mpi_op(op), MPI_COMM_WORLD, &r), "allreduce");
    return st ? st : wait_req(&r, "allreduce");
}

int eng_par_allreduce_f64(double *v, int n, eng_par_op op) {
    if (op == ENG_PAR_SUM) return eng_err_set(ENG_EINVAL, "eng_par: no floating-point SUM (use eng_xsum)");
    if (par_size == 1 || n == 0) return ENG_OK;
    MPI_Request r;
    int st = started(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD, &r), "allreduce");
    return st ? st : wait_req(&r, "allreduce");
}

int eng_par_allreduce_xsum(eng_xsum *x, size_t n) {
    for (size_t i = 0; i < n; i++) eng_xsum_normalize(&x[i]);
    if (par_size == 1 || n == 0) return ENG_OK;
    /* normalised limbs are below 2^32, so adding them over ranks cannot overflow; the pending
     * counter adds to 0 */
    const size_t words = sizeof(eng_xsum) / sizeof(int64_t);
    if (n * words > INT_MAX) return eng_err_set(ENG_EINVAL, "eng_par: %zu accumulators are too many", n);
    int st = eng_par_allreduce_i64((int64_t *)(void *)x, (int)(n * words), ENG_PAR_SUM);
    if (st) return st;
    for (size_t i = 0; i < n; i++) eng_xsum_normalize(&x[i]);
    return ENG_OK;
}

int eng_par_bcast(void *buf, size_t n, int root) {
    if (par_size == 1) return ENG_OK;
    if (n > INT_MAX) return eng_err_set(ENG_EINVAL, "eng_par: broadcast of %zu bytes is too big", n);
    MPI_Request r;
    int st = started(MPI_Ibcast(buf, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &r), "broadcast");
    return st ? st : wait_req(&r, "broadcast");
}

/* Sizes of every rank, displacements, total; 0 or a failure. */
static int sizes_of(size_t n, int all, int root, int64_t *sz, int *cnt, int *disp, size_t *total) {
    int64_t mine = (int64_t)n;
    MPI_Request r;
    int st = all ? started(MPI_Iallgather(&mine, 1, MPI_INT64_T, sz, 1, MPI_INT64_T, MPI_COMM_WORLD, &r), "gather")
                 : started(MPI_Igather(&mine, 1, MPI_INT64_T, sz, 1, MPI_INT64_T, root, MPI_COMM_WORLD, &r), "gather");
    if (st || (st = wait_req(&r, "gather"))) return st;
    *total = 0;
    if (!all && par_rank != root) return ENG_OK;
    for (int i = 0; i < par_size; i++) {
        disp[i] = (int)*total;
        cnt[i] = (int)sz[i];
        *total += (size_t)sz[i];
        if (*total > INT_MAX) return eng_err_set(ENG_EINVAL, "eng_par: gather of %zu bytes is too big", *total);
    }
    return ENG_OK;
}

static int gather_any(const void *buf, size_t n, int all, int root, char **out, size_t *counts) {
    *out = NULL;
    if (n > INT_MAX) return eng_err_set(ENG_EINVAL, "eng_par: %zu bytes from one rank is too big", n);
    int64_t *sz = calloc((size_t)par_size, sizeof *sz);
    int *cnt = calloc((size_t)par_size, sizeof *cnt), *disp = calloc((size_t)par_size, sizeof *disp);
    size_t total = 0;
    int st = !sz || !cnt || !disp ? eng_err_set(ENG_ENOMEM, "eng_par: out of memory") : ENG_OK;
    if (!st) st = sizes_of(n, all, root, sz, cnt, disp, &total);
    const int mine = all || par_rank == root;
    char *o = NULL;
    if (!st && mine && !(o = eng_malloc(total ? total : 1))) st = ENG_ENOMEM;
    if (!st) {
        MPI_Request r;
        st = all ? started(MPI_Iallgatherv(buf, (int)n, MPI_BYTE, o, cnt, disp, MPI_BYTE, MPI_COMM_WORLD, &r), "gather")
                 : started(MPI_Igatherv(buf, (int)n, MPI_BYTE, o, cnt, disp, MPI_BYTE, root, MPI_COMM_WORLD, &r),
                           "gather");
        if (!st) st = wait_req(&r, "gather");
    }
    if (!st && mine) {
        for (int i = 0; i < par_size; i++) counts[i] = (size_t)sz[i];
        *out = o;
        o = NULL;
    }
    free(o);
    free(sz);
    free(cnt);
    free(disp);
    return st;
}

int eng_par_gatherv(const void *buf, size_t n, int root, char **out, size_t *counts) {
    if (par_size == 1) {
        *out = eng_malloc(n ? n : 1);
        if (!*out) return ENG_ENOMEM;
        if (n) memcpy(*out, buf, n);
        counts[0] = n;
        return ENG_OK;
    }
    return gather_any(buf, n, 0, root, out, counts);
}

int eng_par_allgatherv(const void *buf, size_t n, char **out, size_t *counts) {
    if (par_size == 1) return eng_par_gatherv(buf, n, 0, out, counts);
    return gather_any(buf, n, 1, 0, out, counts);
}

int eng_par_agree(int status) {
    if (par_size == 1) return status;
    int64_t first = status ? par_rank : par_size;
    int st = eng_par_allreduce_i64(&first, 1, ENG_PAR_MIN);
    if (st) return st;
    if (first >= par_size) return ENG_OK;
    struct { int32_t status; char msg[1000]; } m;
    memset(&m, 0, sizeof m);
    if (first == par_rank) {
        m.status = status;
        snprintf(m.msg, sizeof m.msg, "%s", eng_err_msg());
    }
    if ((st = eng_par_bcast(&m, sizeof m, (int)first))) return st;
    return eng_err_set(m.status ? m.status : ENG_EIO, "rank %d: %s", (int)first, m.msg);
}
