/* tests/test_exp_report.c - the HTML + JSON report of a comparison run (exp_report.h), on a
 * hand-built exp_results with known numbers: sections, numbers, the verdict, escaping, the
 * poor-overlap fallback label, the JSON document, failing writes, and (when chromium is
 * installed) a headless render of the page. */
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
static void setv(ope_result *r, ope_est e, double v, double lo, double hi) {
    r->v[e].available = 1;
    r->v[e].estimate = v;
    r->v[e].ci_low = lo;
    r->v[e].ci_high = hi;
    r->v[e].boot_se = (hi - lo) / 4;
    r->v[e].n_used = r->n;
    r->v[e].note[0] = 0;
}

/* A bandit-style result: DR recommended (DM a bit lower), good overlap. */
static void bandit(ope_result *r, int n, double dr) {
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

static void traj(ope_result *r, int m, double v) {
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

static char *dupstr(const char *s) {
    char *p = malloc(strlen(s) + 1);
    assert_non_null(p);
    strcpy(p, s);
    return p;
}

/* Five products: 0 tricky id (trajectory), 1 fine, 2 DQN with poor overlap (DM recommended),
 * 3 skipped (short history), 4 DDPG diverged.  Winners: LinUCB now, DQN long-term. */
static exp_results *make_results(void) {
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

static char *slurp(const char *path) {
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

static void make_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/report_%s_%d", test_tmpdir(), name, (int)getpid());
    mkdir(buf, 0755);
}

/* Number of entries in dir other than . and .. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void must_contain(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("report lacks \"%s\"", needle);
}

/* The text between the element with id="<id>" and the end of that section (next "<section"). */
static char *section_of(const char *html, const char *id) {
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

static void test_html(void **state) {
    (void)state;
    exp_results *r = make_results();
    char dir[512];
    make_dir(dir, sizeof dir, "html");
    char *hp = NULL, *jp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, &jp), ENG_OK);
    assert_non_null(hp);
    assert_non_null(jp);
    assert_int_equal(access(hp, R_OK), 0);
    assert_int_equal(access(jp, R_OK), 0);
    assert_int_equal(dir_entries(dir), 3); /* report.html, report.json, products.csv.gz: no temp files left */
    char *html = slurp(hp);
    assert_non_null(html);
    static const char *sections[] = {"summary", "policy-value", "uplift", "trajectories", "overlap", "products",
                                     "skipped", "config"};
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "<section id=\"%s\"", sections[k]);
        must_contain(html, pat);
    }
    /* self-contained: no scripts, no external resources */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "src=\"http"));
    assert_null(strstr(html, "url("));
    /* summary facts and numbers */
    must_contain(html, "run-20261122-001");
    must_contain(html, "dominicks preset");
    must_contain(html, "traffic = 1 per period");
    must_contain(html, "5 in all: 4 evaluated (1 with a diverged agent), 1 skipped (short history), 0 failed");
    must_contain(html, "<p class=\"note\">Time: training 12.5 s.</p>"); /* only measured stages */
    must_contain(html, "<span class=\"winner\" id=\"winner-immediate\">LinUCB</span>");
    must_contain(html, "<span class=\"winner\" id=\"winner-longterm\">DQN</span>");
    char *verdict = section_of(html, "summary");
    must_contain(verdict, "Immediate reward (one-step value): LinUCB leads with dr 0.07000 [0.06500, 0.07500] "
                          "against 0.05000 (dr) for the historical prices.");
    must_contain(verdict, "Long-term value (discounted return): DQN leads with wpdis 0.4100 [0.3800, 0.4400]");
    must_contain(verdict, "The two criteria pick different agents.");
    must_contain(verdict, "Liu et al. found LinUCB ahead offline on immediate reward");
    /* LinUCB's interval [0.065, 0.075] overlaps DQN's [0.057, 0.067]; DQN's [0.38, 0.44] is above DDPG's [0.31, 0.37] */
    must_contain(verdict, "overlaps that of DQN (the runner-up)");
    must_contain(verdict, "lies above that of DDPG (the runner-up)");
    free(verdict);
    /* value table: every estimator of LinUCB's total, the recommended highlighted */
    char *pv = section_of(html, "policy-value");
    must_contain(pv, "<td class=\"num rec\">0.07000 [0.06500, 0.07500]</td>");
    must_contain(pv, "0.06700 [0.06400, 0.07000]"); /* DM = dr - 0.003 */
    must_contain(pv, "<td class=\"num rec\">0.4100 [0.3800, 0.4400]</td>");
    must_contain(pv, "<svg");
    free(pv);
    /* products: guarded price with the guard reason names, escaped id */
    char *pt = section_of(html, "products");
    must_contain(pt, "<b>3.99</b>");
    must_contain(pt, "max_up|rounded");
    must_contain(pt, "&lt;b&gt;o&amp;j&quot;&#39;s&lt;/b&gt;");
    free(pt);
    /* the raw id never appears unescaped anywhere */
    assert_null(strstr(html, TRICKY_ID));
    assert_null(strstr(html, "o&j"));
    assert_null(strstr(html, "<b>o"));
    /* poor overlap: C-300's DQN shows the DM estimate with the fallback label, in the overlap section */
    char *ov = section_of(html, "overlap");
    const char *row = strstr(ov, "<td class=\"pid\">C-300</td><td>DQN</td>");
    assert_non_null(row);
    must_contain(row, "0.0444");
    must_contain(row, "DM fallback (poor overlap)");
    must_contain(row, "ESS 0.5 &lt; 30");
    must_contain(row, "1.2%");
    assert_null(strstr(ov, "<td class=\"pid\">B-200</td>")); /* good overlap is not flagged */
    free(ov);
    /* skipped and failed products with why */
    char *sk = section_of(html, "skipped");
    must_contain(sk, "D-short");
    must_contain(sk, "skip_short");
    must_contain(sk, "too little history: 3 training transitions (need 8); pooled model");
    must_contain(sk, "E-div");
    must_contain(sk, "DDPG diverged (NaN in the critic)");
    assert_null(strstr(sk, "B-200"));
    free(sk);
    /* trajectories: a chart for the tricky product, its title escaped */
    char *tr = section_of(html, "trajectories");
    must_contain(tr, "Product &lt;b&gt;o&amp;j&quot;&#39;s&lt;/b&gt;: prices over 6 periods");
    must_contain(tr, "<path");
    free(tr);
    /* the configuration is shown, the password is not */
    must_contain(html, "compare.seed = 7");
    assert_null(strstr(html, "hunter2"));
    free(html);
    free(hp);
    free(jp);
    exp_results_free(r);
}

static json_object *get(json_object *o, const char *path) {
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

static void test_json(void **state) {
    (void)state;
    exp_results *r = make_results();
    char dir[512];
    make_dir(dir, sizeof dir, "json");
    char *jp = NULL;
    assert_int_equal(exp_report_write(r, dir, NULL, &jp), ENG_OK);
    json_object *doc = json_object_from_file(jp);
    assert_non_null(doc);
    assert_string_equal(json_object_get_string(get(doc, "schema")), "rlprice.report/2");
    assert_string_equal(json_object_get_string(get(doc, "run/id")), "run-20261122-001");
    assert_string_equal(json_object_get_string(get(doc, "run/config/compare.seed")), "7");
    assert_string_equal(json_object_get_string(get(doc, "run/config/db.password")), "***");
    /* only real secrets are redacted, by whole key segment: "passes" is not "pass(word)" */
    assert_string_equal(json_object_get_string(get(doc, "run/config/compare.linucb_passes")), "3");
    assert_string_equal(json_object_get_string(get(doc, "run/config/db.sslkey")), "***");
    assert_string_equal(json_object_get_string(get(doc, "run/config/db.conn")), "***");
    assert_close(json_object_get_double(get(doc, "run/seconds/train")), 12.5, 1e-12, 0);
    assert_int_equal(json_object_get_int(get(doc, "counts/products")), 5);
    assert_int_equal(json_object_get_int(get(doc, "counts/evaluated")), 4);
    assert_int_equal(json_object_get_int(get(doc, "counts/skipped")), 1);
    assert_int_equal(json_object_get_int(get(doc, "counts/diverged")), 1);
    assert_int_equal(json_object_get_int(get(doc, "counts/poor_overlap_immediate")), 1);
    assert_string_equal(json_object_get_string(get(doc, "winner/immediate")), "linucb");
    assert_string_equal(json_object_get_string(get(doc, "winner/longterm")), "dqn");
    /* totals: ope_result_json blocks and the shown estimate */
    assert_close(json_object_get_double(get(doc, "agents/linucb/immediate/estimators/dr/estimate")), 0.07, 1e-12, 0);
    assert_close(json_object_get_double(get(doc, "agents/linucb/immediate/estimators/dr/ci_low")), 0.065, 1e-12, 0);
    assert_string_equal(json_object_get_string(get(doc, "agents/linucb/immediate/estimators/diagnostics/recommended")),
                        "dr");
    assert_close(json_object_get_double(get(doc, "agents/dqn/longterm/shown/estimate")), 0.41, 1e-12, 0);
    assert_string_equal(json_object_get_string(get(doc, "agents/dqn/longterm/shown/estimator")), "wpdis");
    /* products */
    json_object *prods = get(doc, "products");
    assert_int_equal(json_object_array_length(prods), 5);
    assert_string_equal(json_object_get_string(get(prods, "0/id")), TRICKY_ID);
    assert_close(json_object_get_double(get(prods, "0/agents/linucb/price")), 3.99, 1e-12, 0);
    json_object *gr = get(prods, "0/agents/dqn/guard_reasons");
    assert_int_equal(json_object_array_length(gr), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(gr, 0)), "max_up");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(gr, 1)), "rounded");
    /* uplift of LinUCB on product 1: (0.05 + 0.01 + 0.001) - (0.05 + 0.001) = 0.01 under DR */
    assert_close(json_object_get_double(get(prods, "1/agents/linucb/uplift_immediate")), 0.01, 1e-12, 0);
    /* the poor-overlap product: DM shown as a model fallback, flagged */
    assert_string_equal(json_object_get_string(get(prods, "2/agents/dqn/immediate/shown_as")), "model_fallback");
    assert_string_equal(json_object_get_string(get(prods, "2/agents/dqn/immediate/estimator")), "dm");
    assert_close(json_object_get_double(get(prods, "2/agents/dqn/immediate/estimate")), 0.0444, 1e-12, 0);
    assert_true(json_object_get_boolean(get(prods, "2/agents/dqn/immediate/poor_overlap")));
    assert_string_equal(json_object_get_string(get(prods, "2/agents/linucb/immediate/shown_as")), "recommended");
    /* skipped product: status, note, no estimate (null) */
    assert_string_equal(json_object_get_string(get(prods, "3/status")), "skip_short");
    assert_string_equal(json_object_get_string(get(prods, "3/agents/dqn/immediate/shown_as")), "none");
    assert_null(get(prods, "3/agents/dqn/immediate/estimate"));
    /* diverged agent */
    assert_string_equal(json_object_get_string(get(prods, "4/failed_agents/0")), "ddpg");
    assert_null(get(prods, "4/agents/ddpg/uplift_immediate"));
    /* trajectories: product 0 only, NaN as null */
    json_object *tr = get(doc, "trajectories");
    assert_int_equal(json_object_array_length(tr), 1);
    assert_int_equal(json_object_get_int(get(tr, "0/periods")), 6);
    assert_null(get(tr, "0/agents/dqn/0"));
    assert_close(json_object_get_double(get(tr, "0/history/1")), 2.59, 1e-5, 0);
    json_object_put(doc);
    free(jp);
    exp_results_free(r);
}

/* The comparison's deployment evidence: history valued by its on-policy mean, per-product shrunk
 * and raw uplifts with intervals, pooled ESS and uplift in the summary, FQE from a sample. */
static void set_uplift(ope_value *v, double est, double lo, double hi) {
    v->available = 1;
    v->estimate = est;
    v->ci_low = lo;
    v->ci_high = hi;
    v->boot_se = (hi - lo) / 4;
    snprintf(v->note, sizeof v->note, "test");
}

static void test_uplift_fields(void **state) {
    (void)state;
    exp_results *r = make_results();
    /* history's one-step value: the on-policy mean (IPS with weights 1) */
    for (int i = 0; i < r->n_products; i++)
        if (r->products[i].status != EXP_SKIP_SHORT) r->products[i].immediate[EXP_AGENT_HISTORY].recommended = OPE_IPS;
    r->total_immediate[EXP_AGENT_HISTORY].recommended = OPE_IPS;
    setv(&r->total_immediate[EXP_AGENT_HISTORY], OPE_IPS, 0.0511, 0.0490, 0.0530);
    r->total_immediate[EXP_AGENT_HISTORY].overlap.n = 400;
    r->total_immediate[EXP_AGENT_HISTORY].overlap.ess = 400;
    r->total_immediate[EXP_AGENT_LINUCB].overlap.n = 400;
    r->total_immediate[EXP_AGENT_LINUCB].overlap.ess = 37.25;
    set_uplift(&r->total_uplift[EXP_AGENT_LINUCB], 0.0123, 0.0042, 0.0201);
    for (int a = 0; a < EXP_N_AGENTS; a++) r->eb_mean[a] = r->eb_tau2[a] = NAN;
    r->eb_mean[EXP_AGENT_LINUCB] = 0.25;
    r->eb_tau2[EXP_AGENT_LINUCB] = 0.01;
    r->eb_n[EXP_AGENT_LINUCB] = 3;
    /* B-200 (product 1): LinUCB's shrunk uplift is positive, DQN's is not; C-300 (2) LinUCB raw only */
    set_uplift(&r->products[1].uplift[EXP_AGENT_LINUCB], 0.0187, -0.0021, 0.0395);
    set_uplift(&r->products[1].uplift_shrunk[EXP_AGENT_LINUCB], 0.0142, 0.0031, 0.0253);
    set_uplift(&r->products[1].uplift[EXP_AGENT_DQN], -0.0066, -0.0301, 0.0170);
    set_uplift(&r->products[1].uplift_shrunk[EXP_AGENT_DQN], -0.0012, -0.0098, 0.0074);
    set_uplift(&r->products[2].uplift[EXP_AGENT_LINUCB], 0.0051, -0.0100, 0.0202);
    set_uplift(&r->products[2].uplift_shrunk[EXP_AGENT_LINUCB], 0.0049, -0.0040, 0.0138);
    /* FQE on a sample of 2 of the 4 evaluated products */
    r->fqe_products = 2;
    r->fqe_eligible = 4;
    r->seconds_fqe = 3.5;
    for (int a = 0; a < EXP_N_AGENTS; a++) setv(&r->total_longterm[a], OPE_FQE, 0.29 + 0.01 * a, 0.2, 0.4);
    char dir[512];
    make_dir(dir, sizeof dir, "uplift");
    char *hp = NULL, *jp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, &jp), ENG_OK);
    char *html = slurp(hp);
    assert_non_null(html);
    char *sm = section_of(html, "summary");
    /* pooled evidence table: LinUCB's pooled ESS and pooled uplift, 1 of 2 shrunk lower bounds > 0 */
    const char *pe = strstr(sm, "id=\"pooled-evidence\"");
    assert_non_null(pe);
    const char *lr = strstr(pe, "<td>LinUCB</td>");
    assert_non_null(lr);
    must_contain(lr, "<td class=\"num\">400</td><td class=\"num\">37.25</td>"
                     "<td class=\"num\">0.01230 [0.004200, 0.02010]</td><td class=\"num\">1 of 2</td>");
    must_contain(pe, "reference (on-policy mean)");
    must_contain(sm, "over a seeded random sample of 2 of the 4 evaluated products (compare.fqe_products)");
    /* the verdict names history's estimate as the on-policy mean */
    must_contain(sm, "against 0.05110 (on-policy mean) for the historical prices.");
    free(sm);
    char *pv = section_of(html, "policy-value");
    must_contain(pv, "0.05110 [0.04900, 0.05300] <span class=\"note\">on-policy mean</span>");
    must_contain(pv, "Historical prices (on-policy mean)"); /* chart label */
    must_contain(pv, "<th>fqe</th>");
    must_contain(pv, "0.3300 [0.2000, 0.4000]"); /* DQN's FQE in the long-term table */
    must_contain(pv, "fqe: mean over a seeded random sample of 2 of 4 products");
    free(pv);
    /* uplift section: the shrunk strips, the table and the interval chart of the top products */
    char *up = section_of(html, "uplift");
    must_contain(up, "Per-product shrunk uplift over the historical prices: immediate reward");
    const char *ul = strstr(up, "<tr><td>LinUCB</td>");
    assert_non_null(ul);
    /* 2 products, median shrunk (0.0142 + 0.0049) / 2, 1 of 2 positive, median raw, pooled */
    must_contain(ul, "<td class=\"num\">2</td><td class=\"num\">0.009550</td><td class=\"num\">1 of 2</td>"
                     "<td class=\"num\">0.01190</td><td class=\"num\">0.01230 [0.004200, 0.02010]</td>");
    must_contain(up, "Products with the highest shrunk lower bounds");
    must_contain(up, "B-200 linucb shrunk");
    must_contain(up, "B-200 linucb raw");
    free(up);
    /* per-product table: shrunk and raw intervals, a positive lower bound emphasised */
    char *pt = section_of(html, "products");
    must_contain(pt, "uplift: <span class=\"winner\">0.01420 [0.003100, 0.02530]</span> "
                     "<span class=\"note\">shrunk; raw 0.01870 [-0.002100, 0.03950]</span>");
    must_contain(pt, "uplift: <span>-0.001200 [-0.009800, 0.007400]</span>");
    free(pt);
    free(html);
    /* JSON: per-product raw and shrunk uplift objects, pooled evidence, the FQE sample */
    json_object *doc = json_object_from_file(jp);
    assert_non_null(doc);
    json_object *prods = get(doc, "products");
    assert_close(json_object_get_double(get(prods, "1/agents/linucb/uplift_shrunk/estimate")), 0.0142, 1e-12, 0);
    assert_close(json_object_get_double(get(prods, "1/agents/linucb/uplift_shrunk/ci_low")), 0.0031, 1e-12, 0);
    assert_close(json_object_get_double(get(prods, "1/agents/linucb/uplift_raw/ci_high")), 0.0395, 1e-12, 0);
    /* uplift_immediate is the paired uplift where the comparison has one */
    assert_close(json_object_get_double(get(prods, "1/agents/linucb/uplift_immediate")), 0.0187, 1e-12, 0);
    assert_null(get(prods, "0/agents/linucb/uplift_shrunk"));
    assert_string_equal(json_object_get_string(get(prods, "1/agents/history/immediate/estimator_label")),
                        "on-policy mean");
    assert_string_equal(json_object_get_string(get(prods, "1/agents/history/immediate/estimator")), "ips");
    assert_close(json_object_get_double(get(doc, "agents/linucb/pooled_ess")), 37.25, 1e-12, 0);
    assert_int_equal(json_object_get_int(get(doc, "agents/linucb/pooled_rows")), 400);
    assert_close(json_object_get_double(get(doc, "agents/linucb/uplift_pooled/estimate")), 0.0123, 1e-12, 0);
    assert_null(get(doc, "agents/history/uplift_pooled"));
    assert_close(json_object_get_double(get(doc, "agents/linucb/eb_prior_mean")), 0.25, 1e-12, 0);
    assert_int_equal(json_object_get_int(get(doc, "run/fqe/products")), 2);
    assert_int_equal(json_object_get_int(get(doc, "run/fqe/eligible")), 4);
    assert_true(json_object_get_boolean(get(doc, "run/fqe/sampled")));
    assert_close(json_object_get_double(get(doc, "agents/dqn/longterm/estimators/fqe/estimate")), 0.32, 1e-12, 0);
    json_object_put(doc);
    free(hp);
    free(jp);
    exp_results_free(r);
}

static void test_format(void **state) {
    (void)state;
    exp_results *r = make_results();
    /* a tie-free history win: no agent beats the historical prices */
    r->winner_immediate = EXP_AGENT_HISTORY;
    r->winner_longterm = EXP_AGENT_HISTORY;
    char dir[512];
    make_dir(dir, sizeof dir, "hist");
    char *hp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, NULL), ENG_OK);
    char *html = slurp(hp);
    assert_non_null(html);
    must_contain(html, "Immediate reward (one-step value): no agent beats the historical prices");
    must_contain(html, "The same agent leads on both criteria.");
    free(html);
    free(hp);
    exp_results_free(r);
}

static void test_write_fails(void **state) {
    (void)state;
    exp_results *r = make_results();
    char parent[512], dir[600];
    make_dir(parent, sizeof parent, "fail");
    snprintf(dir, sizeof dir, "%s/missing", parent);
    char *hp = (char *)"sentinel", *jp = (char *)"sentinel";
    int st = exp_report_write(r, dir, &hp, &jp);
    assert_true(st < 0);
    assert_null(hp);
    assert_null(jp);
    assert_true(strlen(eng_err_msg()) > 0);
    assert_int_equal(dir_entries(parent), 0); /* nothing written, no temp files */
    assert_int_equal(exp_report_write(NULL, parent, NULL, NULL), ENG_EINVAL);
    assert_int_equal(exp_report_write(r, NULL, NULL, NULL), ENG_EINVAL);
    /* a read-only directory (skipped as root, who can write anyway) */
    if (geteuid() != 0) {
        chmod(parent, 0555);
        assert_true(exp_report_write(r, parent, NULL, NULL) < 0);
        chmod(parent, 0755);
        assert_int_equal(dir_entries(parent), 0);
    }
    exp_results_free(r);
}

/* Headless Chromium: render the page, check the DOM has every section and nothing logged an
 * error.  Skipped when chromium is not installed. */
static void test_chromium(void **state) {
    (void)state;
    const char *bin = NULL;
    static const char *cands[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
    for (size_t k = 0; k < sizeof cands / sizeof cands[0]; k++)
        if (access(cands[k], X_OK) == 0) {
            bin = cands[k];
            break;
        }
    if (!bin) {
        printf("SKIP: chromium not installed (apt-get install chromium); headless render not checked\n");
        skip();
    }
    exp_results *r = make_results();
    char dir[512];
    make_dir(dir, sizeof dir, "chromium");
    char *hp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, NULL), ENG_OK);
    char cmd[4096], dom[600], log[600], shot[600];
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(log, sizeof log, "%s/chromium.log", dir);
    snprintf(shot, sizeof shot, "%s/report.png", dir);
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--user-data-dir='%s/profile' --enable-logging=stderr --v=0 --dump-dom 'file://%s' >'%s' 2>'%s'",
             bin, dir, hp, dom, log);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    char *d = slurp(dom), *l = slurp(log);
    assert_non_null(d);
    assert_non_null(l);
    static const char *ids[] = {"summary", "policy-value", "uplift", "trajectories", "overlap", "products",
                                "skipped", "config", "verdict", "product-table", "overlap-flagged"};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "id=\"%s\"", ids[k]);
        if (!strstr(d, pat)) fail_msg("rendered DOM lacks %s", pat);
    }
    /* the tricky id survives as text, escaped again when serialised */
    must_contain(d, "&lt;b&gt;o&amp;j\"'s&lt;/b&gt;");
    assert_null(strstr(d, TRICKY_ID));
    if (strstr(l, "Uncaught") || strstr(l, ":CONSOLE")) fail_msg("chromium logged a page error:\n%s", l);
    /* a screenshot as a last check that the page renders (kept for a person to look at) */
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--user-data-dir='%s/profile' --hide-scrollbars --window-size=1200,3000 --screenshot='%s' 'file://%s' "
             ">/dev/null 2>&1",
             bin, dir, shot, hp);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    struct stat sb;
    assert_int_equal(stat(shot, &sb), 0);
    assert_true(sb.st_size > 10000);
    free(d);
    free(l);
    free(hp);
    exp_results_free(r);
}

/* `rlprice report --cache FILE --out DIR` end to end on a small simulated history (small
 * budgets), then usage errors. */
static void test_command(void **state) {
    (void)state;
    db_history *h = NULL;
    env_sim_log *lg = NULL;
    assert_int_equal(env_sim_generate(ENV_SIM_PRESET_DEFAULT, NULL, 3, 30, 1, 18000, 5, &h, &lg), 0);
    env_sim_log_free(lg);
    char dir[512], cache[600], out[600];
    make_dir(dir, sizeof dir, "cmd");
    snprintf(cache, sizeof cache, "%s/hist.h5", dir);
    snprintf(out, sizeof out, "%s/out", dir); /* created by the command */
    assert_int_equal(db_history_save_h5(h, cache), 0);
    db_history_free(h);
    char *argv[] = {"report", "--cache", cache, "--device", "cpu", "--out", out, "--dqn_steps", "8",
                    "--ddpg_steps=8", "--ope.n_boot", "20", "--total_boot", "30", "--dqn.hidden1", "16",
                    "--ddpg.hidden1", "16", NULL};
    assert_int_equal(exp_cmd_report((int)(sizeof argv / sizeof argv[0]) - 1, argv), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/report.json", out);
    json_object *doc = json_object_from_file(path);
    assert_non_null(doc);
    assert_int_equal(json_object_get_int(get(doc, "counts/products")), 3);
    assert_int_equal(json_object_array_length(get(doc, "products")), 3);
    must_contain(json_object_get_string(get(doc, "run/data_source")), "hist.h5");
    assert_string_equal(json_object_get_string(get(doc, "run/config/compare.dqn_steps")), "8");
    const char *w = json_object_get_string(get(doc, "winner/immediate"));
    assert_non_null(w);
    assert_true(json_object_object_get_ex(get(doc, "agents"), w, NULL));
    json_object_put(doc);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = slurp(path);
    assert_non_null(html);
    must_contain(html, "<section id=\"overlap\"");
    free(html);
    /* usage: no --out; two sources; a missing cache file; an unknown setting */
    char *a1[] = {"report", "--cache", cache, NULL};
    assert_int_equal(exp_cmd_report(3, a1), 2);
    char *a2[] = {"report", "--cache", cache, "--preset", "dominicks", "--out", out, NULL};
    assert_int_equal(exp_cmd_report(7, a2), 2);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope.h5", dir);
    char *a3[] = {"report", "--cache", missing, "--out", out, NULL};
    assert_int_equal(exp_cmd_report(5, a3), 2);
    char *a4[] = {"report", "--cache", cache, "--no_such_setting", "1", "--out", out, NULL};
    assert_int_equal(exp_cmd_report(7, a4), 2);
}

/* secrets by whole key segment; settings printed as typed (shortest form, "none" when unset) */
static void test_settings_as_typed(void **state) {
    (void)state;
    assert_true(exp_rep_secret_key("db.password"));
    assert_true(exp_rep_secret_key("PG_PASSFILE"));
    assert_true(exp_rep_secret_key("db.passfile"));
    assert_true(exp_rep_secret_key("db.sslpassword"));
    assert_true(exp_rep_secret_key("api_secret"));
    assert_false(exp_rep_secret_key("compare.linucb_passes"));
    assert_false(exp_rep_secret_key("bypass"));
    assert_false(exp_rep_secret_key("compass.heading"));
    exp_compare_cfg c = exp_compare_default();
    c.grid.band = 0.25;
    c.train_frac = 0.8;
    char *t = exp_compare_cfg_text(&c);
    assert_non_null(t);
    assert_non_null(strstr(t, "compare.train_frac = 0.8\n"));
    assert_non_null(strstr(t, "guard.default_max_change_pct = 25\n")); /* the default limit */
    assert_null(strstr(t, "00000000"));
    assert_null(strstr(t, "99999999"));
    assert_null(strstr(t, "nan"));
    free(t);
    c.guard.default_max_change_pct = NAN; /* no limit: written "none", never "nan" */
    assert_non_null(t = exp_compare_cfg_text(&c));
    assert_non_null(strstr(t, "guard.default_max_change_pct = none\n"));
    assert_null(strstr(t, "nan"));
    free(t);
    char b[32];
    assert_string_equal(eng_fmt_float(b, 0.001f), "0.001");
    assert_string_equal(eng_fmt_double(b, 0.8), "0.8");
    assert_string_equal(eng_fmt_double(b, NAN), "none");
    exp_compare_cfg_free(&c);
}

/* products.csv.gz (gunzipped into a string, caller frees), or NULL when it cannot be read. */
static char *gunzip_file(const char *path) {
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

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The full table beside the report: every product, documented columns, quoting, decisions. */
static void test_products_csv(void **state) {
    (void)state;
    exp_results *r = make_results();
    char dir[512], path[700];
    make_dir(dir, sizeof dir, "csv");
    exp_report_decision dec[5];
    for (int i = 0; i < 5; i++) dec[i] = (exp_report_decision){"incumbent", "hold:no_significant_uplift", 2.49 + i, NAN, NAN, NAN};
    dec[1] = (exp_report_decision){"linucb", "deploy:linucb|rounded", 3.99, 0.0142, 0.0031, 0.0253};
    assert_int_equal(exp_report_write_ex(r, dec, dir, NULL, NULL), ENG_OK);
    snprintf(path, sizeof path, "%s/products.csv.gz", dir);
    char *csv = gunzip_file(path);
    assert_non_null(csv);
    assert_int_equal(count_lines(csv), 6); /* header + 5 products */
    assert_true(!strncmp(csv, "product_id,status,incumbent_price,history_value,history_longterm,fixed_price,fixed_guard,"
                              "fixed_value,fixed_longterm,fixed_uplift,fixed_uplift_low,fixed_uplift_high,fixed_uplift_raw,"
                              "fixed_poor_overlap,fixed_failed,linucb_price,",
                         200));
    must_contain(csv, ",dqn_price,");
    must_contain(csv, ",ddpg_price,");
    must_contain(csv, ",decision_agent,decision_price,decision_reason,decision_uplift,decision_ci_low,decision_ci_high,"
                      "note\n");
    must_contain(csv, "\n\"<b>o&j\"\"'s</b>\",ok,2.49,"); /* quoted, the quote doubled */
    must_contain(csv, "\nB-200,ok,3.49,");
    must_contain(csv, ",linucb,3.99,deploy:linucb|rounded,0.0142,0.0031,0.0253,\n");
    must_contain(csv, ",max_up|rounded,"); /* the DQN guard reasons */
    must_contain(csv, "\nE-div,diverged,6.49,");
    must_contain(csv, ",incumbent,6.49,hold:no_significant_uplift,,,,DDPG diverged");
    free(csv);
    /* without decisions (rlprice report) the decision columns are empty */
    assert_int_equal(exp_report_write(r, dir, NULL, NULL), ENG_OK);
    csv = gunzip_file(path);
    assert_non_null(csv);
    must_contain(csv, "\nB-200,ok,3.49,");
    assert_null(strstr(csv, "deploy:linucb"));
    free(csv);
    exp_results_free(r);
}

/* At scale the HTML and JSON list 200 products (top, bottom, a sample); the CSV has them all. */
static void test_bounded_listing(void **state) {
    (void)state;
    exp_results *r = make_results();
    const int N = 1000;
    exp_product_result *ps = calloc((size_t)N, sizeof *ps);
    assert_non_null(ps);
    for (int i = 0; i < N; i++) {
        ps[i] = r->products[1]; /* flat apart from the id (no trajectory) */
        char id[32];
        snprintf(id, sizeof id, "P%04d", i);
        ps[i].product_id = dupstr(id);
        ps[i].index = i;
        /* LinUCB's shrunk lower bound rises with the index, shuffled a little */
        double lo = 0.001 * ((i * 7) % N) - 0.5;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB] = (ope_value){0};
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].available = 1;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].estimate = lo + 0.01;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].ci_low = lo;
        ps[i].uplift_shrunk[EXP_AGENT_LINUCB].ci_high = lo + 0.02;
    }
    for (int i = 0; i < r->n_products; i++) free(r->products[i].product_id), free(r->products[i].hist_price);
    for (int a = 0; a < EXP_N_AGENTS; a++) free(r->products[0].agent_price[a]);
    free(r->products);
    r->products = ps;
    r->n_products = N;
    char dir[512], path[700];
    make_dir(dir, sizeof dir, "bounded");
    char *hp = NULL, *jp = NULL;
    assert_int_equal(exp_report_write(r, dir, &hp, &jp), ENG_OK);
    json_object *doc = json_object_from_file(jp);
    assert_non_null(doc);
    assert_int_equal(json_object_get_int(get(doc, "product_list/total")), N);
    assert_int_equal(json_object_get_int(get(doc, "product_list/listed")), 200);
    assert_string_equal(json_object_get_string(get(doc, "product_list/file")), "products.csv.gz");
    json_object *prods = get(doc, "products");
    assert_int_equal(json_object_array_length(prods), 200);
    int n_role[4] = {0};
    for (int k = 0; k < 200; k++) {
        json_object *p = json_object_array_get_idx(prods, (size_t)k);
        const char *role = json_object_get_string(get(p, "listed_as"));
        int idx = json_object_get_int(get(p, "index"));
        double lo = 0.001 * ((idx * 7) % N) - 0.5;
        if (!strcmp(role, "top")) { /* the 50 highest: 0.450 .. 0.499 */
            n_role[1]++;
            assert_true(lo > 0.4495);
        } else if (!strcmp(role, "bottom")) { /* the 50 lowest: -0.500 .. -0.451 */
            n_role[2]++;
            assert_true(lo < -0.4505);
        } else if (!strcmp(role, "sample")) {
            n_role[3]++;
            assert_true(lo > -0.4505 && lo < 0.4495);
        } else {
            n_role[0]++;
        }
    }
    assert_int_equal(n_role[0], 0);
    assert_int_equal(n_role[1], 50);
    assert_int_equal(n_role[2], 50);
    assert_int_equal(n_role[3], 100);
    json_object_put(doc);
    char *html = slurp(hp);
    assert_non_null(html);
    must_contain(html, "id=\"product-selection\"");
    must_contain(html, "200 of 1000 products are listed");
    int rows = 0;
    for (const char *q = strstr(html, "id=\"product-table\""); q && (q = strstr(q + 1, "<tr><td class=\"pid\">"));)
        rows++;
    assert_int_equal(rows, 200);
    free(html);
    snprintf(path, sizeof path, "%s/products.csv.gz", dir);
    char *csv = gunzip_file(path);
    assert_non_null(csv);
    assert_int_equal(count_lines(csv), N + 1);
    must_contain(csv, "\nP0001,ok,");
    free(csv);
    free(hp);
    free(jp);
    exp_results_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html),        cmocka_unit_test(test_json),
        cmocka_unit_test(test_uplift_fields),     cmocka_unit_test(test_format),
        cmocka_unit_test(test_write_fails), cmocka_unit_test(test_chromium),
        cmocka_unit_test(test_command),     cmocka_unit_test(test_products_csv),
        cmocka_unit_test(test_bounded_listing), cmocka_unit_test(test_settings_as_typed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
