/* eng_file.c - see eng_file.h. */
#include "eng_file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_status.h"

static int fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return eng_err_set(ENG_ENOMEM, "out of memory");
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return ENG_OK; /* directory fsync is best effort (e.g. unsupported fs) */
    fsync(fd);
    close(fd);
    return ENG_OK;
}

int eng_atomic_commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0) {
        unlink(tmp);
        return eng_err_set(ENG_EIO, "cannot reopen '%s' for fsync: %s", tmp, strerror(errno));
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return eng_err_set(ENG_EIO, "fsync '%s': %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return eng_err_set(ENG_EIO, "rename '%s' -> '%s': %s", tmp, path, strerror(e));
    }
    return fsync_dir_of(path);
}

int eng_atomic_write(const char *path, int (*write_cb)(FILE *f, void *ctx), void *ctx) {
    size_t n = strlen(path) + 32;
    char *tmp = eng_malloc(n);
    if (!tmp) return ENG_ENOMEM;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int st = ENG_OK;
    FILE *f = eng_fopen(tmp, "wb");
    if (!f) { st = ENG_EIO; goto cleanup; }
    st = write_cb(f, ctx);
    if (fflush(f) != 0 && st == ENG_OK) st = eng_err_set(ENG_EIO, "write '%s': %s", tmp, strerror(errno));
    if (fclose(f) != 0 && st == ENG_OK) st = eng_err_set(ENG_EIO, "close '%s': %s", tmp, strerror(errno));
    if (st != ENG_OK) { unlink(tmp); goto cleanup; }
    st = eng_atomic_commit(tmp, path);
cleanup:
    free(tmp);
    return st;
}

int eng_mkdir_p(const char *path) {
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return eng_err_set(ENG_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return eng_err_set(ENG_EIO, "mkdir %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return ENG_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void eng_rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }
