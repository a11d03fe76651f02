/* exp_report_data.c - what the report shows, shared by the HTML and JSON writers: agent names,
 * the estimate shown for a result (with the poor-overlap fallback), counts, uplifts, the verdict,
 * number formatting, HTML escaping and the configuration lines with secrets marked.  See
 * exp_report_int.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eng_util.h"

#include "exp_report_int.h"

static const char *const agent_labels[EXP_N_AGENTS] = {"Historical prices", "Best fixed price", "LinUCB", "DQN",
                                                       "DDPG"};
static const char *const agent_colors[EXP_N_AGENTS] = {"#4d4d4d", "#a6761d", "#1f6fb4", "#c8322b", "#2e8b3e"};

const char *exp_rep_agent_label(int a) { return a >= 0 && a < EXP_N_AGENTS ? agent_labels[a] : "unknown"; }
const char *exp_rep_agent_color(int a) { return a >= 0 && a < EXP_N_AGENTS ? agent_colors[a] : "#888888"; }

static int usable(const ope_value *v) { return v->available && isfinite(v->estimate); }

static exp_shown shown_of(const ope_result *r, int e, exp_show_kind kind) {
    exp_shown s = {kind, e, r->v[e].estimate, r->v[e].ci_low, r->v[e].ci_high};
    return s;
}

exp_shown exp_rep_pick(const ope_result *r) {
    exp_shown none = {EXP_SHOW_NONE, -1, NAN, NAN, NAN};
    if (!r) return none;
    int rec = (int)r->recommended;
    if (rec < 0 || rec >= OPE_N_EST) rec = OPE_DR;
    if (r->overlap.poor) {
        if ((rec == OPE_DM || rec == OPE_FQE) && usable(&r->v[rec])) return shown_of(r, rec, EXP_SHOW_FALLBACK);
        if (usable(&r->v[OPE_DM])) return shown_of(r, OPE_DM, EXP_SHOW_FALLBACK);
        if (usable(&r->v[OPE_FQE])) return shown_of(r, OPE_FQE, EXP_SHOW_FALLBACK);
        if (usable(&r->v[rec])) return shown_of(r, rec, EXP_SHOW_UNRELIABLE);
        for (int e = 0; e < OPE_N_EST; e++)
            if (usable(&r->v[e])) return shown_of(r, e, EXP_SHOW_UNRELIABLE);
        return none;
    }
    if (usable(&r->v[rec])) return shown_of(r, rec, EXP_SHOW_NORMAL);
    /* the recommended one is missing: the first available in a fixed order of preference */
    static const int order[] = {OPE_DR, OPE_KDR, OPE_FQE, OPE_WPDIS, OPE_SNIPS, OPE_SNKIPS, OPE_SWITCH_DR,
                                OPE_DM, OPE_IPS, OPE_KIPS, OPE_PDIS, OPE_REPLAY};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        if (usable(&r->v[order[k]])) return shown_of(r, order[k], EXP_SHOW_NORMAL);
    return none;
}

const char *exp_rep_pick_label(const exp_shown *s) {
    switch (s->kind) {
    case EXP_SHOW_FALLBACK: return s->est == OPE_FQE ? "FQE fallback (poor overlap)" : "DM fallback (poor overlap)";
    case EXP_SHOW_UNRELIABLE: return "poor overlap, no model-based estimate: unreliable";
    case EXP_SHOW_NONE: return "no estimate";
    default: return "";
    }
}

int exp_rep_evaluated(const exp_product_result *p) { return p->status == EXP_OK || p->status == EXP_DIVERGED; }

exp_rep_counts exp_rep_count(const exp_results *r) {
    exp_rep_counts c = {0};
    c.total = r->n_products;
    for (int i = 0; i < r->n_products; i++) {
        const exp_product_result *p = &r->products[i];
        c.ok += p->status == EXP_OK;
        c.skipped += p->status == EXP_SKIP_SHORT;
        c.diverged += p->status == EXP_DIVERGED;
        c.failed += p->status == EXP_FAILED || (p->status != EXP_OK && p->status != EXP_SKIP_SHORT &&
                                                p->status != EXP_DIVERGED);
        if (!exp_rep_evaluated(p)) continue;
        c.evaluated++;
        int pi = 0, pl = 0;
        for (int a = 0; a < EXP_N_AGENTS; a++) {
            pi |= p->immediate[a].overlap.poor != 0;
            pl |= p->longterm[a].overlap.poor != 0;
        }
        c.poor_immediate += pi;
        c.poor_longterm += pl;
    }
    return c;
}

const char *exp_rep_est_label(int a, int est, int longterm) {
    if (a == EXP_AGENT_HISTORY && est == OPE_IPS && !longterm) return "on-policy mean";
    const char *s = est >= 0 && est < OPE_N_EST ? ope_est_name((ope_est)est) : NULL;
    return s ? s : "none";
}

double exp_rep_uplift(const exp_product_result *p, int a, int longterm) {
    if (!exp_rep_evaluated(p) || a <= EXP_AGENT_HISTORY || a >= EXP_N_AGENTS) return NAN;
    if (p->agent_failed & (1u << a)) return NAN;
    if (!longterm && usable(&p->uplift[a])) return p->uplift[a].estimate;
    const ope_result *ra = longterm ? &p->longterm[a] : &p->immediate[a];
    const ope_result *rh = longterm ? &p->longterm[EXP_AGENT_HISTORY] : &p->immediate[EXP_AGENT_HISTORY];
    exp_shown s = exp_rep_pick(ra);
    if (s.kind == EXP_SHOW_NONE) return NAN;
    double h = usable(&rh->v[s.est]) ? rh->v[s.est].estimate : exp_rep_pick(rh).value;
    return isfinite(h) ? s.value - h : NAN;
}

/* The agent with the best shown total other than `skip`, or -1. */
static int runner_up(const ope_result *tot, int skip) {
    int best = -1;
    double bv = -INFINITY;
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        if (a == skip) continue;
        exp_shown s = exp_rep_pick(&tot[a]);
        if (s.kind != EXP_SHOW_NONE && s.value > bv) bv = s.value, best = a;
    }
    return best;
}

static size_t verdict_part(char *buf, size_t n, const char *what, const ope_result *tot, int w, int lt) {
    char v[32], lo[32], hi[32], hv[32];
    if (w < 0 || w >= EXP_N_AGENTS) return (size_t)snprintf(buf, n, "%s: no verdict (no agent could be evaluated). ", what);
    exp_shown s = exp_rep_pick(&tot[w]);
    if (s.kind == EXP_SHOW_NONE) return (size_t)snprintf(buf, n, "%s: no verdict (no estimate for any agent). ", what);
    exp_rep_fmt(s.value, v, sizeof v);
    exp_rep_fmt(s.lo, lo, sizeof lo);
    exp_rep_fmt(s.hi, hi, sizeof hi);
    size_t k;
    if (w == EXP_AGENT_HISTORY) {
        k = (size_t)snprintf(buf, n, "%s: no agent beats the historical prices (%s %s [%s, %s]).", what,
                             exp_rep_est_label(w, s.est, lt), v, lo, hi);
    } else {
        exp_shown h = exp_rep_pick(&tot[EXP_AGENT_HISTORY]);
        exp_rep_fmt(h.value, hv, sizeof hv);
        k = (size_t)snprintf(buf, n, "%s: %s leads with %s %s [%s, %s] against %s (%s) for the historical prices.",
                             what, exp_rep_agent_label(w), exp_rep_est_label(w, s.est, lt), v, lo, hi, hv,
                             exp_rep_est_label(EXP_AGENT_HISTORY, h.est, lt));
    }
    if (k >= n) return n ? n - 1 : 0;
    int ru = runner_up(tot, w);
    if (ru >= 0) {
        exp_shown o = exp_rep_pick(&tot[ru]);
        int overlap = isfinite(s.lo) && isfinite(o.hi) && s.lo <= o.hi;
        size_t m = (size_t)snprintf(buf + k, n - k,
                                    overlap ? " Its interval overlaps that of %s (the runner-up), so the lead is "
                                              "not clear at this sample size. "
                                            : " Its interval lies above that of %s (the runner-up). ",
                                    exp_rep_agent_label(ru));
        k = m >= n - k ? n - 1 : k + m;
    } else {
        size_t m = (size_t)snprintf(buf + k, n - k, " ");
        k = m >= n - k ? n - 1 : k + m;
    }
    return k;
}

void exp_rep_verdict(const exp_results *r, char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    size_t k = verdict_part(buf, n, "Immediate reward (one-step value)", r->total_immediate, (int)r->winner_immediate, 0);
    k += verdict_part(buf + k, n - k, "Long-term value (discounted return)", r->total_longterm, (int)r->winner_longterm, 1);
    if (k >= n - 1) return;
    const char *same = r->winner_immediate == r->winner_longterm ? "The same agent leads on both criteria. "
                                                                 : "The two criteria pick different agents. ";
    snprintf(buf + k, n - k,
             "%sFor comparison, Liu et al. found LinUCB ahead offline on immediate reward while the "
             "reinforcement-learning agents (DQN, DDPG) led in the online test, where long-term effects "
             "count: an offline one-step lead does not settle which agent earns more over time.",
             same);
}

void exp_rep_fmt(double v, char *buf, size_t n) {
    if (!isfinite(v)) {
        snprintf(buf, n, "n/a");
        return;
    }
    if (v == 0) {
        snprintf(buf, n, "0");
        return;
    }
    double a = fabs(v);
    if (a < 1e-4 || a >= 1e6) {
        snprintf(buf, n, "%.3e", v);
        return;
    }
    int dec = 3 - (int)floor(log10(a));
    if (dec < 0) dec = 0;
    if (dec > 8) dec = 8;
    snprintf(buf, n, "%.*f", dec, v);
}

void exp_rep_fmt_price(double v, char *buf, size_t n) {
    if (isfinite(v)) snprintf(buf, n, "%.2f", v);
    else snprintf(buf, n, "n/a");
}

void exp_rep_fmt_pct(double v, char *buf, size_t n) {
    if (isfinite(v)) snprintf(buf, n, "%.1f%%", 100.0 * v);
    else snprintf(buf, n, "n/a");
}

void exp_rep_esc(FILE *f, const char *s) {
    if (!s) return;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((*c < 0x20 && *c != '\t' && *c != '\n') || *c == 0x7f) fputs("&#xFFFD;", f);
            else fputc(*c, f);
        }
    }
}

int exp_rep_secret_key(const char *key) {
    /* whole segments of the key (split at '.', '_', '-', ' '), case-insensitive */
    static const char *const words[] = {"password", "passwd", "passfile", "passphrase", "pwd", "secret",
                                        "sslkey", "sslpassword", "token", "apikey", "credentials"};
    const char *s = key;
    while (*s) {
        while (*s && strchr("._- \t", *s)) s++;
        size_t n = strcspn(s, "._- \t");
        if (!n) break;
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
            if (strlen(words[w]) == n && !strncasecmp(s, words[w], n)) return 1;
        s += n;
    }
    return 0;
}

int exp_rep_config_lines(const char *text, exp_rep_config_fn fn, void *ctx) {
    const char *s = text ? text : "";
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), s);
        char *eq = strchr(line, '=');
        int secret = 0;
        if (eq) {
            *eq = 0;
            secret = exp_rep_secret_key(line);
            *eq = '=';
            secret = secret || strstr(eq, "password=") != NULL || strstr(eq, "sslpassword=") != NULL;
        }
        int rc = fn(ctx, line, eq ? (int)(eq - line) : -1, secret);
        if (rc) return rc;
        s += len + (nl ? 1 : 0);
    }
    return 0;
}

/* ---- the listed products -------------------------------------------------------------- */

const char *exp_rep_role_name(int role) {
    static const char *const names[] = {"all", "top", "bottom", "sample"};
    return role >= 0 && role <= EXP_ROLE_SAMPLE ? names[role] : "?";
}

double exp_rep_score(const exp_product_result *p) {
    double best = NAN;
    if (!exp_rep_evaluated(p)) return NAN;
    for (int a = EXP_AGENT_FIXED; a < EXP_N_AGENTS; a++) {
        const ope_value *v = &p->uplift_shrunk[a];
        if ((p->agent_failed & (1u << a)) || !v->available || !isfinite(v->ci_low)) continue;
        if (!(v->ci_low <= best)) best = v->ci_low; /* also replaces NaN */
    }
    return best;
}

typedef struct scored { double s; int i; } scored;

/* Descending score, then ascending index (a total order: the selection is reproducible). */
static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

int exp_rep_select(const exp_results *r, int **idx, unsigned char **role, int *n) {
    const int N = r->n_products;
    *idx = NULL;
    *role = NULL;
    *n = 0;
    if (N <= 0) return ENG_OK;
    unsigned char *rl = calloc((size_t)N, 1); /* role + 1 of each product, 0 = not listed */
    scored *sc = malloc(sizeof *sc * (size_t)N);
    int m = 0, st = ENG_OK;
    if (!rl || !sc) {
        st = eng_err_set(ENG_ENOMEM, "report: out of memory (product selection)");
        goto done;
    }
    if (N <= EXP_REP_LIST_ALL) {
        for (int i = 0; i < N; i++) rl[i] = 1 + EXP_ROLE_ALL;
    } else {
        int ns = 0;
        for (int i = 0; i < N; i++) {
            double s = exp_rep_score(&r->products[i]);
            if (isfinite(s)) sc[ns++] = (scored){s, i};
        }
        qsort(sc, (size_t)ns, sizeof *sc, cmp_scored);
        for (int k = 0; k < ns && k < EXP_REP_TOP; k++) rl[sc[k].i] = 1 + EXP_ROLE_TOP;
        for (int k = ns - 1; k >= 0 && k >= ns - EXP_REP_TOP; k--)
            if (!rl[sc[k].i]) rl[sc[k].i] = 1 + EXP_ROLE_BOTTOM;
        int rest = 0;
        for (int i = 0; i < N; i++) rest += !rl[i];
        /* every (rest / EXP_REP_SAMPLE)-th of the others, the first one in the middle of its step */
        const double step = rest > EXP_REP_SAMPLE ? (double)rest / EXP_REP_SAMPLE : 1.0;
        double next = step / 2;
        for (int i = 0, j = 0; i < N; i++) {
            if (rl[i]) continue;
            if (j++ >= (long)next || rest <= EXP_REP_SAMPLE) {
                rl[i] = 1 + EXP_ROLE_SAMPLE;
                next += step;
            }
        }
    }
    for (int i = 0; i < N; i++) m += rl[i] != 0;
    int *ix = malloc(sizeof *ix * (size_t)m);
    unsigned char *ro = malloc((size_t)m);
    if (!ix || !ro) {
        free(ix);
        free(ro);
        st = eng_err_set(ENG_ENOMEM, "report: out of memory (product selection)");
        goto done;
    }
    for (int i = 0, k = 0; i < N; i++)
        if (rl[i]) ix[k] = i, ro[k++] = (unsigned char)(rl[i] - 1);
    *idx = ix;
    *role = ro;
    *n = m;
done:
    free(rl);
    free(sc);
    return st;
}
