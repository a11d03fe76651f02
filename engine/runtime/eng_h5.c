/* eng_h5.c - see eng_h5.h. */
#include "eng_h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_file.h"
#include "eng_status.h"

void eng_h5_quiet_begin(eng_h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void eng_h5_quiet_end(const eng_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

int eng_h5_atomic_write(const char *path, int (*write_cb)(hid_t f, void *ctx), void *ctx) {
    size_t n = strlen(path) + 32;
    char *tmp = eng_malloc(n);
    if (!tmp) return ENG_ENOMEM;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int rc;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = eng_err_set(ENG_EIO, "%s: cannot create", tmp);
        goto cleanup;
    }
    rc = write_cb(f, ctx);
    if (H5Fclose(f) < 0 && !rc) rc = eng_err_set(ENG_EIO, "%s: close failed", tmp);
    if (rc) {
        unlink(tmp);
        goto cleanup;
    }
    rc = eng_atomic_commit(tmp, path);
cleanup:
    free(tmp);
    return rc;
}
