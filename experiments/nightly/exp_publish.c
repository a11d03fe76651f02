/* exp_publish.c - report folders of the nightly run (see exp_publish.h). */
#include "exp_publish.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eng_util.h"

int exp_pub_mkdir_p(const char *path) {
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

void exp_pub_rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

void exp_pub_clean_stale(const char *out_dir) {
    DIR *d = opendir(out_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.' || (!strstr(e->d_name, ".tmp.") && !strstr(e->d_name, ".old."))) continue;
        const char *dot = strrchr(e->d_name, '.');
        long pid = dot ? strtol(dot + 1, NULL, 10) : 0;
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
        ENG_DEBUG("nightly: removing %s left by an interrupted run", p);
        exp_pub_rm_rf(p);
    }
    closedir(d);
}

/* The attempt number of an entry "<name>.attempt-<digits>", or -1. */
static long attempt_of(const char *entry, const char *name) {
    size_t nl = strlen(name);
    static const char suf[] = ".attempt-";
    if (strncmp(entry, name, nl) != 0 || strncmp(entry + nl, suf, sizeof suf - 1) != 0) return -1;
    const char *p = entry + nl + sizeof suf - 1;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 9) return -1;
    return strtol(p, NULL, 10);
}

/* Highest attempt folder of name under out_dir (0 when none). */
static long max_attempt(const char *out_dir, const char *name) {
    DIR *d = opendir(out_dir);
    long mx = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long k = attempt_of(e->d_name, name);
        if (k > mx) mx = k;
    }
    closedir(d);
    return mx;
}

/* Point out_dir/link at target (a name in out_dir) by one rename of a fresh symlink. */
static int switch_link(const char *out_dir, const char *link, const char *target) {
    char path[1300], tmp[1400];
    snprintf(path, sizeof path, "%s/%s", out_dir, link);
    snprintf(tmp, sizeof tmp, "%s/.%s.lnk.tmp.%d", out_dir, link, (int)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0) return eng_err_set(ENG_EIO, "symlink %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return eng_err_set(ENG_EIO, "rename %s -> %s: %s", tmp, path, strerror(e));
    }
    return ENG_OK;
}

/* 1 when out_dir/link is a symlink whose target is `entry`. */
static int link_is(const char *out_dir, const char *link, const char *entry) {
    char path[1300], buf[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, link);
    ssize_t k = readlink(path, buf, sizeof buf - 1);
    if (k < 0) return 0;
    buf[k] = '\0';
    return !strcmp(buf, entry);
}

/* Step 4: the name's attempt folders other than keep, unless a link still points at one (a
 * concurrent dry run of the same name). */
static void remove_old_attempts(const char *out_dir, const char *name, long keep) {
    DIR *d = opendir(out_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long k = attempt_of(e->d_name, name);
        if (k < 0 || k == keep || link_is(out_dir, name, e->d_name) || link_is(out_dir, "latest", e->d_name)) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
        exp_pub_rm_rf(p);
    }
    closedir(d);
}

int exp_pub_publish(const char *out_dir, const char *staging, const char *name, int attempt, exp_pub_hook_fn hook,
                    void *hook_ctx, char *final_out, size_t n) {
    char fin[1200], dst[1300], target[300];
    struct stat sb;
    if (snprintf(fin, sizeof fin, "%s/%s", out_dir, name) >= (int)sizeof fin || strlen(name) > 200)
        return eng_err_set(ENG_EINVAL, "report folder name too long: %s", name);
    /* 1. the complete staging folder becomes its attempt folder (a fresh name) */
    long k = max_attempt(out_dir, name) + 1;
    if (attempt > k) k = attempt;
    for (int tries = 0;; tries++, k++) {
        snprintf(target, sizeof target, "%s.attempt-%ld", name, k);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, target);
        if (rename(staging, dst) == 0) break;
        if ((errno != EEXIST && errno != ENOTEMPTY) || tries >= 1000)
            return eng_err_set(ENG_EIO, "publishing the report: rename %s -> %s: %s", staging, dst, strerror(errno));
    }
    if (hook) hook(hook_ctx, 1);
    /* 2. <name> -> the attempt folder; a real folder there (the layout before attempt folders)
     * is kept as attempt 0 first */
    if (lstat(fin, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char legacy[1300];
        snprintf(legacy, sizeof legacy, "%s.attempt-0", fin);
        exp_pub_rm_rf(legacy);
        if (rename(fin, legacy) != 0)
            return eng_err_set(ENG_EIO, "publishing the report: rename %s -> %s: %s", fin, legacy, strerror(errno));
    }
    int st = switch_link(out_dir, name, target);
    if (st) return st;
    if (hook) hook(hook_ctx, 2);
    /* 3. latest -> the same attempt folder */
    if ((st = switch_link(out_dir, "latest", target))) {
        ENG_WARN("nightly: could not update %s/latest: %s", out_dir, eng_err_msg());
        eng_err_clear();
    }
    if (hook) hook(hook_ctx, 3);
    /* 4. the name's older attempts */
    remove_old_attempts(out_dir, name, k);
    snprintf(final_out, n, "%s", fin);
    return ENG_OK;
}
