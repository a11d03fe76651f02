/* eng_util.c - see eng_util.h. */
#include "eng_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_err[1024];
static eng_log_level g_level = ENG_LOG_INFO;

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

void eng_log_set_level(eng_log_level lvl) { g_level = lvl; }
eng_log_level eng_log_get_level(void) { return g_level; }

void eng_log(eng_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (lvl > g_level) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rlprice: %s: %s\n", names[lvl], buf);
}

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

/* splitmix64 */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void eng_rng_seed(eng_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t eng_rng_u64(eng_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double eng_rng_uniform(eng_rng *r) { return (double)(eng_rng_u64(r) >> 11) * 0x1.0p-53; }

double eng_rng_normal(eng_rng *r) {
    double u1 = eng_rng_uniform(r), u2 = eng_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t eng_rng_below(eng_rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = eng_rng_u64(r); while (x >= lim);
    return x % n;
}

uint64_t eng_seed_derive(uint64_t base, uint64_t i) {
    uint64_t x = base ^ (0xd1b54a32d192ed03ULL * (i + 1));
    splitmix64(&x);
    return splitmix64(&x);
}

double eng_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t eng_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u;
}

char *eng_fmt_double(char out[32], double v) {
    if (isnan(v)) { snprintf(out, 32, "none"); return out; }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    return out;
}

char *eng_fmt_float(char out[32], float v) {
    if (isnan(v)) { snprintf(out, 32, "none"); return out; }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)v);
        if (strtof(out, NULL) == v) break;
    }
    return out;
}

int eng_parse_decimal(const char *s, double *out) {
    if (!s) return ENG_EFORMAT;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return ENG_EFORMAT;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return ENG_EFORMAT;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return ENG_EFORMAT;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) return ENG_EFORMAT;
    *out = v;
    return ENG_OK;
}
