/* tests/test_exp_report_fix.h - the report tests' fixtures (test_exp_report.c,
 * test_exp_report_files.c): a hand-built exp_results with known numbers, file and JSON helpers.
 * Static inline: each test file uses its part. */
#ifndef TEST_EXP_REPORT_FIX_H
#define TEST_EXP_REPORT_FIX_H

#include "test_common.h"
#include "rlp_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>

#include "db_h5store.h"
#include "env_action.h"
#include "env_sim.h"
#include "exp_compare.h"
#include "exp_report.h"
#include "exp_report_int.h"
#include "exp_results.h"
#include "ope.h"

#define TRICKY_ID "<b>o&j\"'s</b>"

/* One estimator value. */
static inline void setv(ope_result *r, ope_est e, double v, double lo, double hi) {
    r->v[e].available = 1;
    r->v[e].estimate = v;
    r->v[e].ci_low = lo;
    r->v[e].ci_high = hi;
    r->v[e].boot_se = (hi - lo) / 4;
    r->v[e].n_used = r->n;
    r->v[e].note[0] = 0;
}

/* A bandit-style result: DR recommended (DM a bit lower), good overlap. */
static inline void bandit(ope_result *r, int n, double dr) {
    ope_config cfg = ope_config_default();
    cfg.n_boot = 200;
    ope_result_init(r, &cfg, n);
    r->q_source = "ridge";
    setv(r, OPE_IPS, dr + 0.002, dr - 0.008, dr + 0.012);
    setv(r, OPE_SNIPS, dr + 0.001, dr - 0.007, dr + 0.009);
    setv(r, OPE_DM, dr - 0.003, dr - 0.006, dr);
    setv(r, OPE_DR, dr, dr - 0.005, dr + 0.005);
    r->recommended = OPE_DR;
    r->overlap.n = n;
    r->overlap.ess = 0.6 * n;
    r->overlap.ess_frac = 0.6;
    r->overlap.max_w = 3;
    r->overlap.max_w_share = 0.05;
    r->overlap.mean_w = 1;
}

static inline void traj(ope_result *r, int m, double v) {
    ope_config cfg = ope_config_default();
    cfg.n_boot = 200;
    ope_result_init(r, &cfg, m);
    setv(r, OPE_PDIS, v + 0.01, v - 0.05, v + 0.07);
    setv(r, OPE_WPDIS, v, v - 0.03, v + 0.03);
    r->recommended = OPE_WPDIS;
    r->overlap.n = m;
    r->overlap.ess_frac = 0.5;
    r->overlap.max_w_share = 0.1;
}

static inline char *dupstr(const char *s) {
    char *p = malloc(strlen(s) + 1);
    assert_non_null(p);
    strcpy(p, s);
    return p;
}

/* Five products: 0 tricky id (trajectory), 1 fine, 2 DQN with poor overlap (DM recommended),
 * 3 skipped (short history), 4 DDPG diverged.  Winners: LinUCB now, DQN long-term. */
static inline exp_results *make_results(void) {
    exp_results *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->run_id = dupstr("run-20261122-001");
    r->run_date = dupstr("2026-11-22");
    r->config_text = dupstr("compare.seed = 7\ndb.password = hunter2\nope.n_boot = 200\ncompare.linucb_passes = 3\n"
                            "db.sslkey = /etc/k.pem\ndb.conn = host=x password=y\n");
    r->reward_text = dupstr("Reward: difference of revenue conversion rates; no traffic column, so traffic = 1 "
                            "per period (revenue per period) was used.");
    r->data_source = dupstr("dominicks preset");
    r->n_products = 5;
    r->products = calloc(5, sizeof *r->products);
    assert_non_null(r->products);
    static const char *ids[5] = {TRICKY_ID, "B-200", "C-300", "D-short", "E-div"};
    static const exp_status st[5] = {EXP_OK, EXP_OK, EXP_OK, EXP_SKIP_SHORT, EXP_DIVERGED};
    for (int i = 0; i < 5; i++) {
        exp_product_result *p = &r->products[i];
        p->index = i;
        p->product_id = dupstr(ids[i]);
        p->status = st[i];
        p->incumbent_price = 2.49 + i;
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            p->price[a] = p->incumbent_price + 0.5 * (a - 2);
            p->guard_reasons[a] = ENV_GR_ROUNDED;
            if (st[i] == EXP_SKIP_SHORT) {
                ope_config cfg = ope_config_default();
                ope_result_init(&p->immediate[a], &cfg, 0);
                ope_result_init(&p->longterm[a], &cfg, 0);
                continue;
            }
            /* agent a's immediate value: history 0.05, then + 0.005 a (+ product offset) */
            bandit(&p->immediate[a], 40, 0.05 + 0.005 * a + 0.001 * i);
            traj(&p->longterm[a], 4, 0.3 + 0.02 * a);
        }
        p->price[EXP_AGENT_LINUCB] = 3.99;
        p->guard_reasons[EXP_AGENT_DQN] = ENV_GR_MAX_UP | ENV_GR_ROUNDED;
    }
    snprintf(r->products[3].note, sizeof r->products[3].note,
             "too little history: 3 training transitions (need 8); pooled model");
    /* product 2: DQN's weights are poor: DM is recommended, IS values flagged */
    ope_result *poor = &r->products[2].immediate[EXP_AGENT_DQN];
    poor->overlap.poor = 1;
    poor->overlap.ess_frac = 0.012;
    poor->overlap.max_w_share = 0.61;
    poor->overlap.unsupported_mass = 0.2;
    snprintf(poor->overlap.reason, sizeof poor->overlap.reason, "ESS 0.5 < 30");
    poor->recommended = OPE_DM;
    setv(poor, OPE_DM, 0.0444, 0.0401, 0.0488);
    /* product 4: DDPG diverged */
    r->products[4].agent_failed = 1u << EXP_AGENT_DDPG;
    snprintf(r->products[4].note, sizeof r->products[4].note, "DDPG diverged (NaN in the critic); held at the incumbent");
    /* product 0: a trajectory of 6 periods */
    exp_product_result *p0 = &r->products[0];
    p0->n_periods = 6;
    p0->hist_price = malloc(6 * sizeof(float));
    assert_non_null(p0->hist_price);
    for (int t = 0; t < 6; t++) p0->hist_price[t] = 2.49f + 0.1f * (float)(t % 3);
    for (int a = 1; a < EXP_N_AGENTS; a++) {
        p0->agent_price[a] = malloc(6 * sizeof(float));
        assert_non_null(p0->agent_price[a]);
        for (int t = 0; t < 6; t++) p0->agent_price[a][t] = t == 0 ? NAN : 2.29f + 0.1f * (float)a;
    }
    /* totals */
    static const double now[EXP_N_AGENTS] = {0.05, 0.055, 0.07, 0.062, 0.058};
    static const double later[EXP_N_AGENTS] = {0.3, 0.31, 0.32, 0.41, 0.34};
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        bandit(&r->total_immediate[a], 4, now[a]);
        traj(&r->total_longterm[a], 4, later[a]);
    }
    r->winner_immediate = EXP_AGENT_LINUCB;
    r->winner_longterm = EXP_AGENT_DQN;
    r->seconds_train = 12.5;
    return r;
}

static inline char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static inline void make_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/report_%s_%d", test_tmpdir(), name, (int)getpid());
    mkdir(buf, 0755);
}

/* Number of entries in dir other than . and .. */
static inline int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static inline void must_contain(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("report lacks \"%s\"", needle);
}

/* The text between the element with id="<id>" and the end of that section (next "<section"). */
static inline char *section_of(const char *html, const char *id) {
    char pat[128];
    snprintf(pat, sizeof pat, "<section id=\"%s\"", id);
    const char *s = strstr(html, pat);
    if (!s) {
        fail_msg("no section %s", id);
        return NULL; /* not reached: fail_msg jumps out; the compiler does not know it */
    }
    const char *e = strstr(s + 1, "<section");
    size_t n = e ? (size_t)(e - s) : strlen(s);
    char *out = malloc(n + 1);
    assert_non_null(out);
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

static inline json_object *get(json_object *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok(buf, "/"); k; k = strtok(NULL, "/")) {
        json_object *n = NULL;
        if (json_object_is_type(o, json_type_array)) n = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &n)) fail_msg("JSON lacks %s (at %s)", path, k);
        o = n;
    }
    return o;
}


/* products.csv.gz (gunzipped into a string, caller frees), or NULL when it cannot be read. */
static inline char *gunzip_file(const char *path) {
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t n = 0, cap = 1 << 16;
    char *s = malloc(cap);
    assert_non_null(s);
    int k;
    while ((k = gzread(g, s + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)k;
        if (cap - n < 4096) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
    }
    gzclose(g);
    s[n] = 0;
    return s;
}

static inline int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}
#endif
