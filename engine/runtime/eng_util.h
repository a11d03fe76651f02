/* eng_util.h - status codes, error messages, logging, checked wrappers, RNG, timing.
 *
 * Shared by every layer of rlprice.  Conventions (see README "Code conventions"):
 *   - functions return 0 (ENG_OK) on success and a negative ENG_E* code on failure;
 *   - on failure they record a human-readable message with eng_err_set(), which the
 *     command prints; library code never calls exit();
 *   - "caller frees" / "callee owns" is stated on every function that allocates.
 */
#ifndef ENG_UTIL_H
#define ENG_UTIL_H

#include <stddef.h>
#include <stdint.h>
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

/* ---- logging -------------------------------------------------------------- */
typedef enum { ENG_LOG_ERROR = 0, ENG_LOG_WARN = 1, ENG_LOG_INFO = 2, ENG_LOG_DEBUG = 3 } eng_log_level;
void eng_log_set_level(eng_log_level lvl);
eng_log_level eng_log_get_level(void);
/* Writes "rlprice: <level>: message\n" to stderr when lvl <= current level. */
void eng_log(eng_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ENG_ERROR(...) eng_log(ENG_LOG_ERROR, __VA_ARGS__)
#define ENG_WARN(...) eng_log(ENG_LOG_WARN, __VA_ARGS__)
#define ENG_INFO(...) eng_log(ENG_LOG_INFO, __VA_ARGS__)
#define ENG_DEBUG(...) eng_log(ENG_LOG_DEBUG, __VA_ARGS__)

/* ---- checked wrappers (report file:line in the error message) ------------- */
/* Return NULL and set the error (ENG_ENOMEM) on failure; caller frees with free(). */
void *eng_malloc_(size_t n, const char *file, int line);
void *eng_calloc_(size_t count, size_t size, const char *file, int line);
#define eng_malloc(n) eng_malloc_((n), __FILE__, __LINE__)
#define eng_calloc(c, s) eng_calloc_((c), (s), __FILE__, __LINE__)
/* fopen that records "path: strerror" with file:line on failure and returns NULL. */
FILE *eng_fopen_(const char *path, const char *mode, const char *file, int line);
#define eng_fopen(p, m) eng_fopen_((p), (m), __FILE__, __LINE__)

/* Atomically replace `path` by a file written through `write_cb` to a temp name in the
 * same directory: write, fflush, fsync, rename, fsync(dir).  On any failure the temp
 * file is removed and `path` is untouched.  Returns 0 or a negative status. */
int eng_atomic_write(const char *path, int (*write_cb)(FILE *f, void *ctx), void *ctx);
/* Make `tmp` durable and move it over `path` (fsync file, rename, fsync directory).
 * For writers that need the path (e.g. HDF5). Removes `tmp` on failure. */
int eng_atomic_commit(const char *tmp, const char *path);

/* ---- RNG: xoshiro256** seeded by splitmix64; fully reproducible ------------ */
typedef struct eng_rng { uint64_t s[4]; } eng_rng;
void eng_rng_seed(eng_rng *r, uint64_t seed);
uint64_t eng_rng_u64(eng_rng *r);
double eng_rng_uniform(eng_rng *r);           /* [0, 1) */
double eng_rng_normal(eng_rng *r);            /* N(0, 1), Box-Muller */
uint64_t eng_rng_below(eng_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
/* Derive an independent stream for index `i` (e.g. product i) from a base seed. */
uint64_t eng_seed_derive(uint64_t base, uint64_t i);

/* ---- time ------------------------------------------------------------------ */
double eng_now(void); /* monotonic seconds */

/* A setting as typed: the shortest decimal that reads back as the same double / float
 * (0.8, not 0.80000000000000004; 0.001f, not 0.00100000005); NaN as "none" (unset).
 * Writes into out[32]; returns out. */
char *eng_fmt_double(char out[32], double v);
char *eng_fmt_float(char out[32], float v);
/* Peak resident set size of this process in bytes (0 when unknown). */
size_t eng_peak_rss(void);

/* ---- numbers in text ------------------------------------------------------- */
/* Parse a plain decimal number: [+-]digits[.digits][(e|E)[+-]digits] (or .digits), the whole
 * string, no blanks.  Unlike strtod it refuses hexadecimal ("0x1"), "inf", "nan" and leading
 * spaces, and a value that overflows.  Returns 0 (*out set) or ENG_EFORMAT (*out untouched;
 * no message recorded: the caller names the field). */
int eng_parse_decimal(const char *s, double *out);

#endif
