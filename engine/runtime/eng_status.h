/* eng_status.h - status codes, the per-thread error message and the checked allocation / fopen
 * wrappers (part of the shared runtime, see eng_util.h). */
#ifndef ENG_STATUS_H
#define ENG_STATUS_H

#include <stddef.h>
#include <stdio.h>

/* ---- status codes ------------------------------------------------------- */
enum {
    ENG_OK = 0,
    ENG_EINVAL = -1,   /* bad argument or configuration */
    ENG_ENOMEM = -2,   /* allocation failed */
    ENG_EIO = -3,      /* file or stream error */
    ENG_EFORMAT = -4,  /* malformed / corrupt / wrong-version input */
    ENG_EDEVICE = -5,  /* accelerator missing or failed */
    ENG_EDB = -6,      /* database error */
    ENG_ENUM = -7,     /* non-finite numbers (divergence) */
    ENG_ENOTFOUND = -8, /* missing file, product, key */
    ENG_EBUSY = -9      /* held by someone else (e.g. another run of the same run id) */
};

/* Name of a status code ("EINVAL", ...); static string. */
const char *eng_status_name(int status);

/* Record the last error for this thread (printf-style).  Always returns `status`,
 * so a failure path can be written `return eng_err_set(ENG_EIO, "...", ...);`. */
int eng_err_set(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Last error message recorded on this thread ("" when none). Static per-thread buffer. */
const char *eng_err_msg(void);
void eng_err_clear(void);


/* ---- checked wrappers (report file:line in the error message) ------------- */
/* Return NULL and set the error (ENG_ENOMEM) on failure; caller frees with free(). */
void *eng_malloc_(size_t n, const char *file, int line);
void *eng_calloc_(size_t count, size_t size, const char *file, int line);
#define eng_malloc(n) eng_malloc_((n), __FILE__, __LINE__)
#define eng_calloc(c, s) eng_calloc_((c), (s), __FILE__, __LINE__)
/* fopen that records "path: strerror" with file:line on failure and returns NULL. */
FILE *eng_fopen_(const char *path, const char *mode, const char *file, int line);
#define eng_fopen(p, m) eng_fopen_((p), (m), __FILE__, __LINE__)

#endif
