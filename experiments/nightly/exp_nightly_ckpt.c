/* exp_nightly_ckpt.c - checkpoints versioned by the run date they were trained for (see
 * exp_nightly.h and docs/checkpoints.md, "Versions by run date"): the run of date D writes
 * <root>/D/ and warm-starts from the newest <root>/<date> before D, never from D itself, so a
 * retry of D starts from exactly what its first attempt started from. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eng_util.h"
#include "exp_nightly.h"

/* Days of a folder name that is exactly a date ("YYYY-MM-DD"); -1 otherwise. */
static int32_t dated(const char *name) {
    int32_t d;
    if (strlen(name) != 10 || name[4] != '-' || name[7] != '-') return -1;
    return exp_date_parse(name, &d) == ENG_OK ? d : -1;
}

/* Sorted (ascending) dates of the dated sub-folders of root into *out (malloc'd, caller frees).
 * Returns the count (0 when root is missing) or -1 on allocation failure (error set). */
static int list_dates(const char *root, int32_t **out) {
    *out = NULL;
    DIR *dir = opendir(root);
    if (!dir) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        int32_t d = dated(e->d_name);
        if (d < 0) continue;
        char p[2048];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", root, e->d_name);
        if (lstat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int32_t *v = realloc(*out, (size_t)cap * sizeof *v);
            if (!v) {
                closedir(dir);
                free(*out);
                *out = NULL;
                eng_err_set(ENG_ENOMEM, "checkpoints: out of memory listing %s", root);
                return -1;
            }
            *out = v;
        }
        (*out)[n++] = d;
    }
    closedir(dir);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of folders */
        for (int j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
            int32_t t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return n;
}

int exp_nightly_ckpt_dirs(const char *root, int32_t date, char *target, size_t n_target, char *source,
                          size_t n_source) {
    char d[16];
    int32_t *dates = NULL;
    if (!root || !*root || !target || !source) return eng_err_set(ENG_EINVAL, "checkpoints: no folder");
    exp_date_format(date, d);
    if (snprintf(target, n_target, "%s/%s", root, d) >= (int)n_target)
        return eng_err_set(ENG_EINVAL, "checkpoint folder too long: %s", root);
    source[0] = '\0';
    int n = list_dates(root, &dates);
    if (n < 0) return ENG_ENOMEM;
    for (int i = n - 1; i >= 0; i--)
        if (dates[i] < date) {
            exp_date_format(dates[i], d);
            snprintf(source, n_source, "%s/%s", root, d);
            break;
        }
    free(dates);
    /* create root and target (mkdir -p of the last two levels is enough after root's parents) */
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", root);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return eng_err_set(ENG_EIO, "mkdir %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    if (mkdir(target, 0777) != 0 && errno != EEXIST)
        return eng_err_set(ENG_EIO, "mkdir %s: %s", target, strerror(errno));
    return ENG_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int exp_nightly_ckpt_prune(const char *root, int32_t date, int32_t keep_date, int keep) {
    int32_t *dates = NULL;
    if (!root || !*root || keep <= 0) return 0;
    int n = list_dates(root, &dates), removed = 0;
    if (n < 0) return -1;
    /* the `keep` newest folders up to `date` stay, and so do keep_date and everything after date */
    int kept = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (dates[i] > date || dates[i] == keep_date) continue;
        if (kept < keep) {
            kept++;
            continue;
        }
        char d[16], p[2048];
        exp_date_format(dates[i], d);
        snprintf(p, sizeof p, "%s/%s", root, d);
        if (nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0) {
            ENG_DEBUG("nightly: removed the checkpoints %s (keeping %d dates)", p, keep);
            removed++;
        } else {
            ENG_WARN("nightly: could not remove the old checkpoints %s: %s", p, strerror(errno));
        }
    }
    free(dates);
    return removed;
}
