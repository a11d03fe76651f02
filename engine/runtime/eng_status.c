/* eng_status.c - see eng_status.h. */
#include "eng_status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_err[1024];
const char *eng_status_name(int s) {
    switch (s) {
    case ENG_OK: return "OK";
    case ENG_EINVAL: return "EINVAL";
    case ENG_ENOMEM: return "ENOMEM";
    case ENG_EIO: return "EIO";
    case ENG_EFORMAT: return "EFORMAT";
    case ENG_EDEVICE: return "EDEVICE";
    case ENG_EDB: return "EDB";
    case ENG_ENUM: return "ENUM";
    case ENG_ENOTFOUND: return "ENOTFOUND";
    case ENG_EBUSY: return "EBUSY";
    default: return "EUNKNOWN";
    }
}

int eng_err_set(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return status;
}

const char *eng_err_msg(void) { return g_err; }
void eng_err_clear(void) { g_err[0] = '\0'; }

void *eng_malloc_(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) eng_err_set(ENG_ENOMEM, "%s:%d: out of memory allocating %zu bytes", file, line, n);
    return p;
}

void *eng_calloc_(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) eng_err_set(ENG_ENOMEM, "%s:%d: out of memory allocating %zu x %zu bytes", file, line, count, size);
    return p;
}

FILE *eng_fopen_(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) eng_err_set(ENG_EIO, "%s:%d: cannot open '%s' (mode %s): %s", file, line, path, mode, strerror(errno));
    return f;
}

